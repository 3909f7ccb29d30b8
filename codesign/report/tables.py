"""The data behind each report figure, as plain tables: the figure is drawn from exactly these rows, and the
report writes them beside it as JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from codesign.explore import ExploreResult
    from codesign.sweep import SweepResult
    from sim.results import SimResult

__all__ = ["FigureTable", "LEVELS", "OPERANDS", "STALL_KINDS", "latency_table", "energy_table", "roofline_table",
           "comparison_table", "explore_comparison_table", "pareto_table"]

LEVELS = ("dram", "glb", "noc", "rf")  # memory levels, outermost first (sim/results.py)
OPERANDS = ("weight", "input", "output")
# What a layer's cycles are made of: cycles = compute + DRAM stall + GLB stall + output-path stall (sim/engine.py)
STALL_KINDS = ("dram_stall_cycles", "glb_stall_cycles", "lane_stall_cycles")


@dataclass(frozen=True)
class FigureTable:
    """One figure's data: ``kind`` picks the plot, ``name`` the file stem; ``meta`` holds the scalars the plot
    needs besides the rows (peak MACs per cycle, DRAM bandwidth, units)."""

    kind: str
    name: str
    title: str
    caption: str
    columns: tuple[str, ...]
    rows: tuple[tuple, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)

    def records(self) -> list[dict]:
        return [dict(zip(self.columns, row)) for row in self.rows]

    def to_dict(self) -> dict:
        return {"figure": self.name, "kind": self.kind, "title": self.title, "caption": self.caption,
                "meta": _plain(self.meta), "columns": list(self.columns), "rows": [_plain(r) for r in self.records()]}

    def json_text(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def csv_text(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        for row in self.rows:
            writer.writerow(["" if value is None else _cell(value) for value in row])
        return out.getvalue()


def _plain(value):
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Fraction):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _cell(value) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (float, Fraction)):
        return f"{float(value):.6g}"
    return str(value)


def _flows(runs: Sequence["SimResult"]) -> str:
    return ", ".join(run.dataflow.upper() for run in runs)


def latency_table(runs: Sequence["SimResult"], name: str = "latency", title: str | None = None) -> FigureTable:
    """Every layer with cycles of its own, per dataflow: compute cycles and each kind of stall."""
    rows = []
    for run in runs:
        for layer in run.layers:
            if layer.cycles <= 0:
                continue  # fused layers (their cycles are their producer's) and pure views
            rows.append((run.dataflow, layer.name, layer.op, layer.unit, layer.cycles, layer.compute_cycles,
                         layer.dram_stall_cycles, layer.glb_stall_cycles, layer.lane_stall_cycles))
    fused = sum(1 for layer in runs[0].layers if layer.fused_into) if runs else 0
    caption = ("Cycles of each layer in network order, split into compute and the stalls on top of it: waiting for "
               "DRAM, for the global buffer's ports, or for the fused output path. ")
    if fused:
        caption += f"The {fused} layers fused into their producer's output path have no cycles of their own."
    return FigureTable("latency", name, title or f"Latency per layer ({_flows(runs)})", caption,
                       ("dataflow", "layer", "op", "unit", "cycles", "compute_cycles") + STALL_KINDS, tuple(rows),
                       {"clock_mhz": runs[0].clock_mhz if runs else None})


def energy_table(runs: Sequence["SimResult"], name: str = "energy", title: str | None = None) -> FigureTable:
    """The network's energy per dataflow, by memory level and operand, plus the MACs'."""
    rows = []
    for run in runs:
        totals: dict[tuple[str, str], float] = {(level, op): 0.0 for level in LEVELS for op in OPERANDS}
        for layer in run.layers:
            for level, item in layer.energy_pj.items():
                if isinstance(item, Mapping):
                    for operand, value in item.items():
                        totals[(level, operand)] = totals.get((level, operand), 0.0) + float(value)
                else:  # 'mac': the arithmetic
                    totals[(level, "compute")] = totals.get((level, "compute"), 0.0) + float(item)
        rows += [(run.dataflow, level, operand, value) for (level, operand), value in totals.items()]
    unit = runs[0].energy_unit if runs else "pJ"
    caption = (f"Energy of the whole network in {unit}, by memory level (DRAM, global buffer, network on chip, "
               "register files) and by the operand moved there, beside the arithmetic's own (mac). "
               f"Table: {runs[0].energy_table if runs else ''}.")
    return FigureTable("energy", name, title or f"Energy by memory level and operand ({_flows(runs)})", caption,
                       ("dataflow", "level", "operand", "energy"), tuple(rows), {"energy_unit": unit})


def _compute_peak(layer) -> float | None:
    """The layer's MACs per cycle with every PE busy: MACs / (MAC slots / PEs); slots = utilization x PEs x cycles
    (sim/engine.py), so packed lanes raise the peak and multi-pass operands lower it."""
    busy = layer.utilization * layer.cycles  # = slots / PEs
    return layer.macs / busy if busy > 0 else None


def roofline_table(runs: Sequence["SimResult"], dram_bytes_per_cycle: float | Fraction, name: str = "roofline",
                   title: str | None = None) -> FigureTable:
    """Every array layer on the roofline (Williams et al., CACM 2009): operational intensity in MACs per
    compulsory DRAM byte against MACs per cycle attained; its compute peak and its own roofline bound."""
    rows, skipped = [], 0
    for run in runs:
        for layer in run.layers:
            if layer.unit != "array" or layer.macs <= 0 or layer.cycles <= 0:
                continue
            peak = _compute_peak(layer)
            intensity = layer.macs / layer.compulsory_dram_bytes if layer.compulsory_dram_bytes else None
            if intensity is None:
                skipped += 1
            bound = layer.macs / layer.roofline_cycles if layer.roofline_cycles else None
            rows.append((run.dataflow, layer.name, layer.op, layer.macs, layer.compulsory_dram_bytes, intensity,
                         layer.cycles, layer.macs / layer.cycles, peak, layer.roofline_cycles, bound))
    vector = sum(1 for layer in runs[0].layers if layer.unit == "vector" and layer.cycles > 0) if runs else 0
    pes = runs[0].pes if runs else 0
    bandwidth = float(dram_bytes_per_cycle)
    caption = (f"Each layer that runs on the array at its operational intensity (MACs per compulsory DRAM byte, "
               f"i.e. per 'min DRAM B') and the MACs per cycle it attains. Roofs: the compute peak, {pes} PEs at one "
               f"MAC each per cycle (a layer with packed lanes or several passes per MAC has its own, drawn too), "
               f"and DRAM at {bandwidth:g} bytes per cycle. The distance below the roof is what the mapping loses "
               "to tiling, fill and drain, and stalls.")
    if vector:
        caption += f" The {vector} layers on the vector unit have no MACs and are not placed."
    if skipped:
        caption += f" {skipped} layers with no compulsory DRAM bytes (all operands on chip) are not placed."
    return FigureTable("roofline", name, title or f"Roofline ({_flows(runs)})", caption,
                       ("dataflow", "layer", "op", "macs", "compulsory_dram_bytes", "intensity_macs_per_byte",
                        "cycles", "macs_per_cycle", "peak_macs_per_cycle", "roofline_cycles", "bound_macs_per_cycle"),
                       tuple(rows), {"pes": pes, "dram_bytes_per_cycle": bandwidth})


def comparison_table(runs: Sequence["SimResult"], name: str = "comparison") -> FigureTable:
    """The network's totals side by side, one row per dataflow."""
    rows = tuple((run.dataflow, run.cycles, run.latency_ms, run.energy_pj, run.cycles * run.energy_pj,
                  run.utilization, run.stall_cycles, run.dram_bytes, run.compulsory_dram_bytes, run.roofline_cycles)
                 for run in runs)
    unit = runs[0].energy_unit if runs else "pJ"
    caption = (f"Totals of the network under each dataflow on {runs[0].arch if runs else ''}: latency, energy "
               f"({unit}), DRAM traffic beside its compulsory minimum, and the share of MAC slots used.")
    return FigureTable("comparison", name, "Dataflow comparison", caption,
                       ("dataflow", "cycles", "latency_ms", "energy", "edp", "utilization", "stall_cycles",
                        "dram_bytes", "compulsory_dram_bytes", "roofline_cycles"), rows, {"energy_unit": unit})


def explore_comparison_table(result: "ExploreResult", name: str = "comparison") -> FigureTable:
    """Every run of an exploration: variant, array and dataflow against its totals; each variant's winner."""
    rows = tuple((run.variant, run.array, run.dataflow, run.cycles, run.latency_ms, run.energy_pj, run.edp,
                  run.utilization, run.dram_bytes, run.effective_macs, bool(run.winner)) for run in result.runs)
    caption = (f"Every variant under every dataflow (and array shape) on {result.arch}: latency and energy "
               f"({result.energy_unit}); the winner of each variant by {result.objective} is outlined.")
    return FigureTable("explore_comparison", name, "Dataflows x pruning", caption,
                       ("variant", "array", "dataflow", "cycles", "latency_ms", "energy", "edp", "utilization",
                        "dram_bytes", "effective_macs", "winner"), rows,
                       {"energy_unit": result.energy_unit, "objective": result.objective})


def pareto_table(result: "SweepResult", name: str = "pareto") -> FigureTable:
    """Every sweep point: throughput, energy per inference and SQNR; the Pareto front marked."""
    rows = tuple((p.bits, p.dataflow, p.array, p.inferences_per_s, p.energy_per_inference, p.sqnr_db,
                  p.top1_agreement, p.utilization, p.fits, bool(p.pareto)) for p in result.points)
    unit = result.points[0].energy_unit if result.points else "pJ"
    board = f" on {result.board}" if result.board else ""
    caption = (f"Each bit-width, dataflow and array shape of the sweep on {result.arch}{board}: inferences per "
               f"second against energy per inference ({unit}), coloured by the accuracy proxy (SQNR against "
               "float32). Outlined and larger: the Pareto front of throughput, energy and SQNR together, so a "
               "point on it can sit above another in this plane when its SQNR is higher.")
    return FigureTable("pareto", name, "Bit-width sweep: Pareto front", caption,
                       ("bits", "dataflow", "array", "inferences_per_s", "energy_per_inference", "sqnr_db",
                        "top1_agreement", "utilization", "fits", "pareto"), rows, {"energy_unit": unit})
