"""What goes on the report page of a simulation, an exploration and a sweep, summary first, in the terminal
report's order: totals and comparison, notes and legend, then the figures and the per-layer tables."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import TYPE_CHECKING, Sequence

from codesign.report.html import FigureBlock, Heading, HtmlTable, Items, Page, Text
from codesign.report.tables import (FigureTable, comparison_table, energy_table, explore_comparison_table,
                                    latency_table, pareto_table, roofline_table)

if TYPE_CHECKING:  # pragma: no cover
    from codesign.arch import ArchSpec
    from codesign.explore import ExploreResult
    from codesign.sweep import SweepResult
    from sim.results import SimResult

__all__ = ["sim_page", "sim_files", "explore_page", "explore_files", "sweep_page", "sweep_files",
           "dram_bytes_per_cycle", "slug"]


def dram_bytes_per_cycle(arch: "ArchSpec") -> Fraction:
    """DRAM bandwidth of ``arch`` in bytes per cycle (the roofline's slope)."""
    return Fraction(arch.dram.bits_per_cycle) / 8


def slug(text: str) -> str:
    """A file-name-safe form of a variant name ('unstructured:0.5' -> 'unstructured-0.5')."""
    return re.sub(r"[^A-Za-z0-9._]+", "-", text).strip("-.") or "variant"


def _numeric(columns: Sequence[str], text_columns: Sequence[str]) -> frozenset[int]:
    return frozenset(i for i, c in enumerate(columns) if c not in text_columns)


def _sim_figures(runs: Sequence["SimResult"], bandwidth: Fraction, prefix: str = "",
                 label: str = "") -> list[FigureTable]:
    head = f"{label}: " if label else ""
    flows = ", ".join(run.dataflow.upper() for run in runs)
    return [latency_table(runs, f"{prefix}latency", f"{head}latency per layer ({flows})"),
            energy_table(runs, f"{prefix}energy", f"{head}energy by memory level and operand ({flows})"),
            roofline_table(runs, bandwidth, f"{prefix}roofline", f"{head}roofline ({flows})")]


def sim_page(runs: Sequence["SimResult"], arch: "ArchSpec", model: str | None = None,
             longest: int | None = None) -> Page:
    """The report of ``codesign sim``: totals (and the dataflow comparison), each run's longest layers, notes,
    legend; figures: comparison, latency per layer, energy by level and operand, roofline; every layer folded."""
    from codesign.sim_report import (DEFAULT_LONGEST, LAYER_COLUMNS, LEGEND, LONGEST_COLUMNS, TOTALS_COLUMNS,
                                     grouped_notes, layer_cells, longest_cells, longest_layers, longest_scope,
                                     options_line, totals_cells, units_line)

    run = runs[0]
    several = len(runs) > 1
    best_c = min(r.cycles for r in runs) if several else None
    best_e = min(r.energy_pj for r in runs) if several else None
    title = f"{model} on {run.arch}" if model else f"simulation on {run.arch}"
    subtitle = (f"{', '.join(r.dataflow.upper() for r in runs)} (objective: {run.objective}); {run.pes} PEs; "
                f"{units_line(runs)}")
    blocks: list = [Heading("Summary"),
                    HtmlTable(TOTALS_COLUMNS, tuple(tuple(totals_cells(r, best_c, best_e)) for r in runs),
                              caption=("* best latency and energy" if several else ""),
                              numeric=_numeric(TOTALS_COLUMNS, ("dataflow",)))]
    count = DEFAULT_LONGEST if longest is None else longest
    for r in runs:
        blocks.append(Heading(f"{r.dataflow.upper()}: {longest_scope(r, count)}"))
        shown = longest_layers(r, count)
        blocks.append(HtmlTable(LONGEST_COLUMNS, tuple(tuple(longest_cells(r, layer)) for layer in shown),
                                numeric=_numeric(LONGEST_COLUMNS, ("layer", "op", "GLB")),
                                caption="longest first; share: of the dataflow's cycles"))
        blocks.append(Text(options_line(r), "muted"))
        notes = grouped_notes(r)
        if notes:
            blocks.append(Items(tuple(notes), "note"))
    blocks += [Heading("Legend"), Items(LEGEND, "muted")]
    if several:
        blocks += [Heading("Dataflow comparison"), FigureBlock(comparison_table(runs))]
    for table in _sim_figures(runs, dram_bytes_per_cycle(arch)):
        blocks += [Heading(table.title[0].upper() + table.title[1:]), FigureBlock(table)]
    blocks.append(Heading("Every layer"))
    for r in runs:
        blocks.append(HtmlTable(LAYER_COLUMNS, tuple(tuple(layer_cells(layer)) for layer in r.layers),
                                caption=f"{r.dataflow.upper()}: all {len(r.layers)} layers in network order",
                                numeric=_numeric(LAYER_COLUMNS, ("layer", "op", "GLB")), folded=True))
    downloads = (("results.json", "every run, layer by layer (as --json writes it)"),
                 ("results.csv", "one row per layer per dataflow (as --csv writes it)"))
    return Page("sim", title, subtitle, tuple(blocks), downloads, {"model": model, "arch": run.arch,
                                                                   "dataflows": [r.dataflow for r in runs]})


def sim_files(runs: Sequence["SimResult"], compare: bool | None = None) -> dict[str, str]:
    """The full results beside a sim report: what --json and --csv write (``compare``: the comparison document,
    default when there are several runs)."""
    from codesign.sim_report import csv_text, json_text

    compare = len(runs) > 1 if compare is None else compare
    return {"results.json": json_text(runs, compare), "results.csv": csv_text(runs)}


def _explore_arch(result: "ExploreResult", dataflow: str, array: str) -> "ArchSpec":
    for variant in result.archs:
        if variant.dataflow == dataflow and variant.array == array:
            return variant.arch
    return result.archs[0].arch


def explore_page(result: "ExploreResult") -> Page:
    """The report of ``codesign explore``: every run's totals and each variant's winner, notes; figures: all runs
    side by side, then per variant (on its winner's array) latency per layer, energy and roofline."""
    from codesign.sim_report import _si

    columns = ("variant", "array", "dataflow", "cycles", "latency ms", "energy", "EDP", "DRAM B", "util",
               "weight density", "eff. MACs")
    rows, strong = [], set()
    for run in result.runs:
        variant = next(v for v in result.variants if v.name == run.variant)
        if run.winner:
            strong.add(len(rows))
        rows.append((run.variant, run.array, run.dataflow.upper() + (" *" if run.winner else ""), _si(run.cycles),
                     f"{run.latency_ms:.3f}", _si(run.energy_pj), _si(run.edp), _si(run.dram_bytes),
                     f"{run.utilization:.1%}", f"{variant.weight_density:.3f}", _si(variant.effective_macs)))
    blocks: list = [Heading("Summary"),
                    HtmlTable(columns, tuple(rows), numeric=_numeric(columns, ("variant", "array", "dataflow")),
                              strong=frozenset(strong),
                              caption=f"* winner of each variant by {result.objective}; energy in "
                                      f"{result.energy_unit}, EDP in cycles x {result.energy_unit}")]
    winners = []
    for variant in result.variants:
        best = result.winner(variant.name)
        if best is not None:
            winners.append(f"{variant.name}: {best.dataflow.upper()} on {best.array} wins ({_si(best.cycles)} cycles, "
                           f"{best.latency_ms:.3f} ms, {_si(best.energy_pj)} {result.energy_unit})")
    blocks.append(Items(tuple(winners)))
    notes = [f"note: {note}" for note in result.notes] + [f"skipped: {item.line()}" for item in result.skipped]
    if notes:
        blocks.append(Items(tuple(notes), "note"))
    blocks += [Heading("Dataflows x pruning"), FigureBlock(explore_comparison_table(result))]
    for variant in result.variants:
        best = result.winner(variant.name)
        if best is None:
            continue
        runs = [run for run in result.runs_of(variant.name) if run.array == best.array]
        bandwidth = dram_bytes_per_cycle(_explore_arch(result, best.dataflow, best.array))
        blocks.append(Heading(f"{variant.name} on {best.array}"))
        for table in _sim_figures([run.result for run in runs], bandwidth, f"{slug(variant.name)}-",
                                  f"{variant.name} on {best.array}"):
            blocks.append(FigureBlock(table))
    downloads = (("results.json", "every run, layer winners and reasons (as --json writes it)"),
                 ("results.csv", "one row per layer per run (as --csv writes it)"))
    subtitle = (f"{len(result.variants)} variants x {', '.join(f.upper() for f in result.dataflows)} on "
                f"{', '.join(result.arrays)} (objective: {result.objective})")
    return Page("explore", f"{result.model} on {result.arch}: dataflows x pruning", subtitle, tuple(blocks),
                downloads, {"model": result.model, "arch": result.arch})


def explore_files(result: "ExploreResult") -> dict[str, str]:
    from codesign.explore_report import csv_text, json_text

    return {"results.json": json_text(result), "results.csv": csv_text(result)}


def sweep_page(result: "SweepResult") -> Page:
    """The report of ``codesign sweep``: every point's figures, the Pareto front starred, notes; the Pareto plot."""
    from codesign.sweep_report import point_cells, point_columns

    columns = point_columns(result)
    rows = tuple(tuple(point_cells(result, point)) for point in result.points)
    strong = frozenset(i for i, point in enumerate(result.points) if point.pareto)
    unit = result.points[0].energy_unit if result.points else "pJ"
    blocks: list = [Heading("Summary"),
                    HtmlTable(columns, rows, numeric=_numeric(columns, ("dataflow", "array", "fits")), strong=strong,
                              caption=f"* Pareto front of throughput, energy and SQNR; energy in {unit} per "
                                      "inference; PEs built at each point's width (1 bit: an XNOR-popcount array)")]
    notes = sorted({note for point in result.points for note in point.notes}) + list(result.notes)
    if notes:
        blocks.append(Items(tuple(notes), "note"))
    blocks += [Heading("Pareto front"), FigureBlock(pareto_table(result))]
    downloads = (("results.json", "every point (as --json writes it)"),
                 ("results.csv", "one row per point (as --csv writes it)"))
    board = f" on {result.board}" if result.board else ""
    return Page("sweep", f"{result.model} on {result.arch}{board}: bit-width sweep",
                f"{len(result.points)} points", tuple(blocks), downloads,
                {"model": result.model, "arch": result.arch, "board": result.board})


def sweep_files(result: "SweepResult") -> dict[str, str]:
    from codesign.sweep_report import csv_text, json_text

    return {"results.json": json_text(result), "results.csv": csv_text(result)}
