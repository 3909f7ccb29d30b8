"""Reports of simulation results, summary first: the totals of each dataflow side by side, the longest layers,
the full per-layer table on request, grouped notes and a legend; JSON and CSV text."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Sequence

from sim.results import SimResult

__all__ = [
    "CSV_COLUMNS", "DEFAULT_LONGEST", "LEGEND", "TOTALS_COLUMNS", "LAYER_COLUMNS", "LONGEST_COLUMNS", "json_document",
    "json_text", "csv_text", "onchip_mark", "options_line", "grouped_notes", "totals_cells", "layer_cells",
    "longest_cells", "longest_scope", "longest_layers", "units_line", "print_totals", "print_longest", "print_run",
    "print_legend", "print_sim", "print_comparison"
]

DEFAULT_LONGEST = 10  # layers shown per dataflow without --layers (the longest)

# What the columns that are not plain counts mean (sim/engine.py; docs/simulator.md sections 6 and 12).
LEGEND = (
    "stall: cycles a layer waits on top of its compute: for DRAM, for the global buffer's ports, or for its fused "
    "output path (cycles = compute + stall)",
    "util: MAC slots used / (PEs x cycles); a packed lane does several MACs in one slot",
    "min DRAM B: compulsory DRAM traffic, every weight read once and every network input and output moved once "
    "(with on-chip activations, tensors between layers need not touch DRAM); DRAM B above it is refetch and spill",
    "roofline: the fewest cycles the layer could take, the longest of its MACs on every PE, its fused element "
    "operations on the vector lanes, and its compulsory DRAM bytes at full bandwidth",
)

TOTALS_COLUMNS = ("dataflow", "cycles", "latency ms", "energy", "EDP", "util", "stall", "DRAM B", "min DRAM B",
                  "roofline")
LAYER_COLUMNS = ("layer", "op", "MACs", "cycles", "stall", "util", "energy", "DRAM B", "min DRAM B", "roofline",
                 "GLB")
LONGEST_COLUMNS = LAYER_COLUMNS[:4] + ("share",) + LAYER_COLUMNS[4:]  # share: of the run's cycles

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


def _merged(values: Sequence[str]) -> str:
    """One percentage, or their range when they differ ('2.0%-12.5%')."""
    lo = min(values, key=lambda v: float(v.rstrip("%")))
    hi = max(values, key=lambda v: float(v.rstrip("%")))
    return lo if lo == hi else f"{lo}-{hi}"


_PERCENT = re.compile(r"\d+(?:\.\d+)?%")


def grouped_notes(run: SimResult, shown: int = 3) -> list[str]:
    """One line per distinct note: the layer it is about, or "N layers (a, b, c, ...)" when it repeats; notes that
    differ only in a percentage are one line with the range (the JSON keeps every layer's notes)."""
    by_note: dict[str, list[tuple[str, list[str]]]] = {}
    for layer in run.layers:
        for note in layer.notes:
            template = _PERCENT.sub("{}", note.replace("{", "{{").replace("}", "}}"))
            by_note.setdefault(template, []).append((layer.name, _PERCENT.findall(note)))
    lines = []
    for template, found in by_note.items():
        names = list(dict.fromkeys(name for name, _ in found))
        slots = list(zip(*(values for _, values in found)))
        note = template.format(*(_merged(values) for values in slots))
        if len(names) == 1:
            lines.append(f"{names[0]}: {note}")
        else:
            more = ", ..." if len(names) > shown else ""
            lines.append(f"{len(names)} layers ({', '.join(names[:shown])}{more}): {note}")
    return lines


def totals_cells(run: SimResult, best_cycles: float | None = None, best_energy: float | None = None) -> list[str]:
    """One dataflow's totals as the cells of TOTALS_COLUMNS; the best latency and energy starred."""
    mark_c = " *" if best_cycles is not None and run.cycles == best_cycles else ""
    mark_e = " *" if best_energy is not None and run.energy_pj == best_energy else ""
    return [run.dataflow.upper(), f"{_si(run.cycles)}{mark_c}", f"{run.latency_ms:.3f}",
            f"{_si(run.energy_pj)}{mark_e}", _si(run.cycles * run.energy_pj), f"{run.utilization:.1%}",
            _si(run.stall_cycles), _si(run.dram_bytes), _si(run.compulsory_dram_bytes), _si(run.roofline_cycles)]


def layer_cells(layer) -> list[str]:
    """One layer as the cells of LAYER_COLUMNS (a fused layer shows its producer in place of cycles)."""
    if layer.fused_into:
        return [layer.name, layer.op, "", f"fused → {_short(layer.fused_into)}", "", "", _si(layer.total_energy_pj),
                _si(layer.dram_bytes), _si(layer.compulsory_dram_bytes), "", ""]
    return [layer.name, layer.op, _si(layer.macs), _si(layer.cycles), _si(layer.stall_cycles),
            f"{layer.utilization:.1%}", _si(layer.total_energy_pj), _si(layer.dram_bytes),
            _si(layer.compulsory_dram_bytes), _si(layer.roofline_cycles), onchip_mark(layer)]


def longest_cells(run: SimResult, layer) -> list[str]:
    """One layer as the cells of LONGEST_COLUMNS: its share of the run's cycles after its cycles."""
    cells = layer_cells(layer)
    share = f"{layer.cycles / run.cycles:.1%}" if run.cycles else ""
    return cells[:4] + [share] + cells[4:]


def longest_scope(run: SimResult, count: int) -> str:
    """What a longest-layers table shows: 'the 10 longest of 38 layers with cycles' or 'all 5 layers ...'."""
    timed = sum(1 for layer in run.layers if layer.cycles > 0)
    shown = min(count, timed)
    if shown < timed:
        return f"the {shown} longest of {timed} layers with cycles"
    return f"all {timed} layers with cycles"


def longest_layers(run: SimResult, count: int) -> list:
    """The ``count`` layers with the most cycles, longest first (ties in network order)."""
    timed = [layer for layer in run.layers if layer.cycles > 0]
    return sorted(timed, key=lambda layer: -layer.cycles)[:count]


def units_line(runs: Sequence[SimResult]) -> str:
    """The clock, energy unit and table the totals are in."""
    run = runs[0]
    return (f"latency at {run.clock_mhz:g} MHz; energy in {run.energy_unit}, table {run.energy_table}; "
            "EDP in cycles x energy")


def _say(console, text: str, style: str | None = None) -> None:
    """A line that a narrow terminal may wrap but a pipe or file never cuts."""
    console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)


def _console(console=None):
    from rich.console import Console

    return console or Console()


def print_totals(runs: Sequence[SimResult], console=None, model: str | None = None) -> None:
    """The summary: one row per dataflow with the network's totals; with several, the best latency and energy
    starred."""
    from rich.table import Table

    console = _console(console)
    several = len(runs) > 1
    best_cycles = min(run.cycles for run in runs) if several else None
    best_energy = min(run.energy_pj for run in runs) if several else None
    run = runs[0]
    name = "dataflow comparison" if several else "totals"
    where = f"{model} on {run.arch}" if model else run.arch
    # The heading is a line of its own: a table title wraps at the table's width, and model paths are long.
    console.print(f"{where}: {name} (objective: {run.objective})", soft_wrap=True, highlight=False, markup=False)
    table = Table()
    for column in TOTALS_COLUMNS:
        table.add_column(column, justify="left" if column == "dataflow" else "right", no_wrap=True)
    for item in runs:
        table.add_row(*_texts(totals_cells(item, best_cycles, best_energy)))
    console.print(table)
    _say(console, ("* best; " if several else "") + units_line(runs))


def print_comparison(runs: Sequence[SimResult], console=None) -> None:
    """The dataflows' totals side by side (``print_totals``)."""
    print_totals(runs, console)


def _texts(cells: Sequence[str]) -> list:
    """Cells as rich Text (a layer name is never read as markup); a fused layer's producer dimmed."""
    from rich.text import Text

    return [Text(cell, style="dim" if cell.startswith("fused →") else "") for cell in cells]


def _layer_table(title: str, with_share: bool):
    from rich.table import Table

    table = Table(title=title)
    table.add_column("layer", no_wrap=True, overflow="ellipsis")
    table.add_column("op", no_wrap=True, overflow="ellipsis")
    for name in LAYER_COLUMNS[2:-1]:
        table.add_column(name, justify="right", no_wrap=True)
        if with_share and name == "cycles":
            table.add_column("share", justify="right", no_wrap=True)
    table.add_column("GLB", justify="left", no_wrap=True)
    return table


def _run_footer(run: SimResult, console) -> None:
    _say(console, options_line(run))
    for line in grouped_notes(run):
        console.print("[yellow]note[/yellow] ", end="")
        _say(console, line)


def print_longest(run: SimResult, console=None, count: int = DEFAULT_LONGEST) -> None:
    """The ``count`` longest layers of one run, longest first, with their share of the run's cycles; then the
    fusion line and the run's notes."""
    console = _console(console)
    table = _layer_table(f"{run.dataflow.upper()}: {longest_scope(run, count)}, longest first (--layers: every "
                         "layer)", True)
    for layer in longest_layers(run, count):
        table.add_row(*_texts(longest_cells(run, layer)))
    console.print(table)
    _run_footer(run, console)


def print_run(run: SimResult, console=None, max_layers: int | None = None) -> None:
    """Per-layer table of one run in network order and its totals; fused layers show their producer in place of
    cycles; findings (notes) listed under it."""
    console = _console(console)
    table = _layer_table(f"{run.arch} / {run.dataflow.upper()} (objective: {run.objective}): every layer", False)
    layers = run.layers if max_layers is None else run.layers[:max_layers]
    for layer in layers:
        table.add_row(*_texts(layer_cells(layer)))
    if max_layers is not None and len(run.layers) > max_layers:
        table.add_row(f"... {len(run.layers) - max_layers} more layers", *[""] * (len(LAYER_COLUMNS) - 1))
    table.add_section()
    table.add_row("TOTAL", "", _si(run.macs), _si(run.cycles), _si(run.stall_cycles), f"{run.utilization:.1%}",
                  _si(run.energy_pj), _si(run.dram_bytes), _si(run.compulsory_dram_bytes), _si(run.roofline_cycles), "")
    console.print(table)
    _run_footer(run, console)


def print_legend(console=None) -> None:
    """What stall, util, min DRAM B and roofline mean, one line each."""
    console = _console(console)
    for line in LEGEND:
        _say(console, line, "dim")


def print_sim(runs: Sequence[SimResult], console=None, *, layers: bool = False, max_rows: int | None = None,
              model: str | None = None) -> None:
    """The whole terminal report, summary first: the totals (and comparison), then per dataflow its longest
    layers (``max_rows`` of them, default 10) or, with ``layers``, every layer in network order (the first
    ``max_rows``), then the legend."""
    console = _console(console)
    print_totals(runs, console, model)
    for run in runs:
        console.print()
        if layers:
            print_run(run, console, max_layers=max_rows)
        else:
            print_longest(run, console, DEFAULT_LONGEST if max_rows is None else max_rows)
    console.print()
    print_legend(console)
