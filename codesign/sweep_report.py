"""Reports of a bit-width sweep: the table (Pareto front marked), JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from codesign.sweep import SweepResult

__all__ = ["CSV_COLUMNS", "json_text", "csv_text", "point_columns", "point_cells", "print_sweep"]

CSV_COLUMNS = ("bits", "dataflow", "array", "cycles", "latency_ms", "inferences_per_s", "clock_mhz",
               "energy_per_inference", "energy_unit", "dram_bytes", "glb_bytes", "utilization", "sqnr_db",
               "top1_agreement", "top1_accuracy", "fits", "pareto")


def json_text(result: "SweepResult") -> str:
    return json.dumps(result.to_dict(), indent=2) + "\n"


def csv_text(result: "SweepResult") -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for point in result.points:
        row = point.to_dict()
        writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
    return out.getvalue()


def _si(value: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{unit}"
    return f"{value:.3g}"


def _sqnr(value: float | None) -> str:
    if value is None:
        return ""
    return "inf" if math.isinf(value) and value > 0 else f"{value:.1f}"


def point_columns(result: "SweepResult") -> list[str]:
    """The columns of the sweep table (with a board: fit and resource shares)."""
    columns = ["bits", "dataflow", "array", "MHz", "inf/s", "latency ms", "energy/inf", "DRAM B", "GLB B", "util",
               "SQNR dB", "top-1 agree"]
    return columns + (["fits", "LUT", "DSP", "BRAM"] if result.board else [])


def point_cells(result: "SweepResult", point) -> list[str]:
    """One point as the cells of ``point_columns``; the Pareto front starred."""
    star = " *" if point.pareto else ""
    agree = "" if point.top1_agreement is None else f"{point.top1_agreement:.2f}"
    row = [str(point.bits), point.dataflow.upper(), point.array, f"{point.clock_mhz:.1f}",
           f"{point.inferences_per_s:.1f}{star}",
           f"{point.latency_ms:.3f}", _si(point.energy_per_inference), _si(point.dram_bytes),
           _si(point.glb_bytes), f"{point.utilization:.1%}", _sqnr(point.sqnr_db), agree]
    if result.board:
        used = point.resources

        def share(kind: str) -> str:
            item = used.get(kind)
            return f"{item['used'] / item['available']:.0%}" if item and item.get("available") else ""

        row += ["yes" if point.fits else ("no" if point.fits is False else "?"),
                share("luts"), share("dsps"), share("brams")]
    return row


def print_sweep(result: "SweepResult", console=None) -> None:
    """Summary first: one row per point, the Pareto front starred; then the notes."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    board = f" on {result.board}" if result.board else ""
    table = Table(title=f"{result.model} on {result.arch}{board}: bit-width sweep")
    for name in point_columns(result):
        table.add_column(name, justify="left" if name in ("dataflow", "array", "fits") else "right")
    for point in result.points:
        table.add_row(*point_cells(result, point))
    console.print(table)
    unit = result.points[0].energy_unit if result.points else "pJ"
    clock = ("; MHz: the post-route clock the design reaches on the board (hdl.fmax: its build, else the model), "
             "at most the spec's" if result.board else "; MHz: the spec's clock")
    console.print(f"* Pareto front of throughput, energy and SQNR; energy in {unit} per inference; PEs built at "
                  f"each point's width (1 bit: an XNOR-popcount array){clock}", soft_wrap=True)
    notes = list(result.notes) + sorted({note for point in result.points for note in point.notes} - set(result.notes))
    for note in notes:
        console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
