"""Reports of simulation results: the per-layer table, the dataflow comparison, JSON and CSV text."""

from __future__ import annotations

import csv
import io
import json
from typing import Sequence

from sim.results import SimResult

__all__ = [
    "CSV_COLUMNS", "json_document", "json_text", "csv_text", "onchip_mark", "options_line", "grouped_notes", "print_run",
    "print_comparison"
]

CSV_COLUMNS = ("dataflow", "layer", "op", "macs", "cycles", "compute_cycles", "stall_cycles", "utilization",
               "energy_pj", "dram_bytes", "compulsory_dram_bytes", "roofline_cycles", "fused_into", "onchip_inputs",
               "output_onchip")


def json_document(runs: Sequence[SimResult], compare: bool) -> dict:
    """One run's object, or ``{"arch", "runs": [...]}`` for a comparison of dataflows."""
    if not compare:
        return runs[0].to_dict()
    return {"arch": runs[0].arch, "dataflow": "all", "runs": [run.to_dict() for run in runs]}


def json_text(runs: Sequence[SimResult], compare: bool) -> str:
    return json.dumps(json_document(runs, compare), indent=2) + "\n"


def csv_text(runs: Sequence[SimResult]) -> str:
    """One row per layer per dataflow, then a TOTAL row per dataflow."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for run in runs:
        for layer in run.layers:
            writer.writerow([run.dataflow, layer.name, layer.op, layer.macs, layer.cycles, layer.compute_cycles,
                             layer.stall_cycles, f"{layer.utilization:.6f}", f"{layer.total_energy_pj:.6g}",
                             layer.dram_bytes, layer.compulsory_dram_bytes, layer.roofline_cycles,
                             layer.fused_into or "", " ".join(layer.onchip_inputs), int(layer.output_onchip)])
        writer.writerow([run.dataflow, "TOTAL", "", run.macs, run.cycles, run.compute_cycles, run.stall_cycles,
                         f"{run.utilization:.6f}", f"{run.energy_pj:.6g}", run.dram_bytes,
                         run.compulsory_dram_bytes, run.roofline_cycles, "", "", ""])
    return out.getvalue()


def _si(value: float) -> str:
    for unit, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{unit}"
    if abs(value) >= 1e18:
        return f"{value:.3e}"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _short(name: str) -> str:
    """The last named component of a layer name ('stages.0.conv1' -> 'conv1', 'stem.0' -> 'stem.0'): the
    producer sits just above; the JSON and CSV carry the full name."""
    parts = [part for part in name.replace("/", ".").split(".") if part]
    short = parts[-1] if parts else name
    for part in reversed(parts[:-1]):
        if not short.split(".")[0].isdigit():
            break
        short = f"{part}.{short}"
    return short


def onchip_mark(layer) -> str:
    """Which of a layer's tensors stayed in the GLB: 'in', 'out', 'in+out' or ''."""
    marks = (["in"] if layer.onchip_inputs else []) + (["out"] if layer.output_onchip else [])
    return "+".join(marks)


def options_line(run: SimResult) -> str:
    """One line on fusion and residency: what ran in output paths and which tensors stayed on chip."""
    fused = sum(1 for layer in run.layers if layer.fused_into)
    kept = sum(1 for layer in run.layers if layer.output_onchip)
    fusion = f"fusion on: {fused} layers ran in their producer's output path" if run.fuse else "fusion off"
    onchip = (f"on-chip activations on: {kept} layer outputs stayed in the global buffer" if run.onchip_activations
              else "on-chip activations off: every output goes to DRAM")
    return f"{fusion}; {onchip} (column GLB: inputs read from it / output left in it)"


def grouped_notes(run: SimResult, shown: int = 3) -> list[str]:
    """One line per distinct note: the layer it is about, or "N layers (a, b, c, ...)" when it repeats (the JSON
    keeps every layer's notes)."""
    by_note: dict[str, list[str]] = {}
    for layer in run.layers:
        for note in layer.notes:
            by_note.setdefault(note, []).append(layer.name)
    lines = []
    for note, names in by_note.items():
        if len(names) == 1:
            lines.append(f"{names[0]}: {note}")
        else:
            more = ", ..." if len(names) > shown else ""
            lines.append(f"{len(names)} layers ({', '.join(names[:shown])}{more}): {note}")
    return lines


def print_run(run: SimResult, console=None, max_layers: int | None = None) -> None:
    """Per-layer table of one run and its totals; fused layers show their producer in place of cycles; findings
    (notes) listed under it."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"{run.arch} / {run.dataflow.upper()} (objective: {run.objective})")
    table.add_column("layer", no_wrap=True, overflow="ellipsis", max_width=32)
    table.add_column("op", no_wrap=True, overflow="ellipsis", max_width=10)
    for name in ("MACs", "cycles", "stall", "util", "energy", "DRAM B", "min DRAM B", "roofline"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("GLB", justify="left", no_wrap=True)
    layers = run.layers if max_layers is None else run.layers[:max_layers]
    for layer in layers:
        if layer.fused_into:
            table.add_row(layer.name, layer.op, "", f"[dim]fused → {_short(layer.fused_into)}[/dim]", "", "",
                          _si(layer.total_energy_pj), _si(layer.dram_bytes), _si(layer.compulsory_dram_bytes), "", "")
            continue
        table.add_row(layer.name, layer.op, _si(layer.macs), _si(layer.cycles), _si(layer.stall_cycles),
                      f"{layer.utilization:.1%}", _si(layer.total_energy_pj), _si(layer.dram_bytes),
                      _si(layer.compulsory_dram_bytes), _si(layer.roofline_cycles), onchip_mark(layer))
    if max_layers is not None and len(run.layers) > max_layers:
        table.add_row(f"... {len(run.layers) - max_layers} more layers", "", "", "", "", "", "", "", "", "", "")
    table.add_section()
    table.add_row("TOTAL", "", _si(run.macs), _si(run.cycles), _si(run.stall_cycles), f"{run.utilization:.1%}",
                  _si(run.energy_pj), _si(run.dram_bytes), _si(run.compulsory_dram_bytes), _si(run.roofline_cycles), "")
    console.print(table)
    console.print(options_line(run))
    for line in grouped_notes(run):
        console.print(f"[yellow]note[/yellow] {line}")
    console.print(f"latency {run.latency_ms:.3f} ms at {run.clock_mhz:g} MHz; energy in {run.energy_unit}, table {run.energy_table}")


def print_comparison(runs: Sequence[SimResult], console=None) -> None:
    """One row per dataflow: the totals side by side, best latency and energy marked."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    best_cycles = min(run.cycles for run in runs)
    best_energy = min(run.energy_pj for run in runs)
    table = Table(title=f"dataflow comparison on {runs[0].arch}")
    for name in ("dataflow", "cycles", "latency ms", "energy", "EDP (cycles x energy)", "utilization",
                 "DRAM bytes", "roofline cycles"):
        table.add_column(name, justify="left" if name == "dataflow" else "right")
    for run in runs:
        mark_c = " *" if run.cycles == best_cycles else ""
        mark_e = " *" if run.energy_pj == best_energy else ""
        table.add_row(run.dataflow.upper(), f"{_si(run.cycles)}{mark_c}", f"{run.latency_ms:.3f}",
                      f"{_si(run.energy_pj)}{mark_e}", _si(run.cycles * run.energy_pj), f"{run.utilization:.1%}",
                      _si(run.dram_bytes), _si(run.roofline_cycles))
    console.print(table)
    console.print(f"* best; energy in {runs[0].energy_unit}")
