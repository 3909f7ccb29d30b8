"""Report figures: each a pure function of one ``FigureTable`` to a Matplotlib figure (Agg, no display), drawn
from exactly the rows the report writes beside it."""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Callable

import matplotlib

matplotlib.use("Agg")  # files only, never a window; set before pyplot loads

from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from codesign.report.tables import LEVELS, OPERANDS, FigureTable  # noqa: E402

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["PLOTS", "DPI", "figure", "png_bytes", "latency_figure", "energy_figure", "roofline_figure",
           "comparison_figure", "explore_comparison_figure", "pareto_figure"]

DPI = 100
STALL_COLORS = {"compute_cycles": "#4c72b0", "dram_stall_cycles": "#dd8452", "glb_stall_cycles": "#55a868",
                "lane_stall_cycles": "#8172b3"}
STALL_LABELS = {"compute_cycles": "compute", "dram_stall_cycles": "DRAM stall", "glb_stall_cycles": "GLB stall",
                "lane_stall_cycles": "output-path stall"}
OPERAND_COLORS = {"weight": "#4c72b0", "input": "#dd8452", "output": "#55a868", "compute": "#c44e52"}
FLOW_COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _si(value: float, _pos=None) -> str:
    for unit, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:g}{unit}"
    return f"{value:g}"


def _si3(value: float) -> str:
    """A value for a label: three significant digits and an SI prefix ('1.44G')."""
    for unit, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"


SI = FuncFormatter(_si)


def _flows(table: FigureTable, column: str = "dataflow") -> list[str]:
    index = table.columns.index(column)
    return list(dict.fromkeys(row[index] for row in table.rows))


def _empty(table: FigureTable, text: str) -> Figure:
    fig = Figure(figsize=(6, 1.2), dpi=DPI)
    fig.text(0.5, 0.5, text, ha="center", va="center")
    fig.suptitle(table.title)
    return fig


def latency_figure(table: FigureTable) -> Figure:
    """Horizontal bars, one per layer in network order, stacked compute / DRAM / GLB / output-path stall; a
    panel per dataflow, layers shared."""
    records = table.records()
    flows = _flows(table)
    if not records:
        return _empty(table, "no layer has cycles of its own")
    layers = list(dict.fromkeys(r["layer"] for r in records))
    kinds = [k for k in STALL_COLORS if any(r[k] for r in records)] or ["compute_cycles"]
    height = max(2.8, 0.15 * len(layers) + 1.6)
    fig = Figure(figsize=(2.4 + 3.6 * len(flows), height), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, len(flows), sharey=True, squeeze=False)[0]
    position = {name: i for i, name in enumerate(layers)}
    for ax, flow in zip(axes, flows):
        mine = [r for r in records if r["dataflow"] == flow]
        ys = [position[r["layer"]] for r in mine]
        left = [0.0] * len(mine)
        for kind in kinds:
            values = [r[kind] for r in mine]
            ax.barh(ys, values, left=left, height=0.8, color=STALL_COLORS[kind], label=STALL_LABELS[kind])
            left = [a + b for a, b in zip(left, values)]
        total = sum(r["cycles"] for r in mine)
        ax.set_title(f"{flow.upper()}: {_si3(total)} cycles", fontsize=10)
        ax.xaxis.set_major_formatter(SI)
        ax.set_xlabel("cycles")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(layers)), layers, fontsize=7)
    axes[0].set_ylim(len(layers) - 0.5, -0.5)  # first layer on top
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(kinds), fontsize=8, frameon=False)
    fig.suptitle(table.title)
    return fig


def energy_figure(table: FigureTable) -> Figure:
    """Per dataflow, a bar per memory level (and the MACs), stacked by operand."""
    records = table.records()
    flows = _flows(table)
    if not records:
        return _empty(table, "no energy")
    unit = table.meta.get("energy_unit", "pJ")
    places = list(dict.fromkeys(list(LEVELS) + [r["level"] for r in records]))  # memory levels, then 'mac'
    operands = list(dict.fromkeys(list(OPERANDS) + [r["operand"] for r in records]))
    fig = Figure(figsize=(1.2 + 3.4 * len(flows), 3.6), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, len(flows), sharey=True, squeeze=False)[0]
    for ax, flow in zip(axes, flows):
        mine = [r for r in records if r["dataflow"] == flow]
        bottom = [0.0] * len(places)
        for index, operand in enumerate(operands):
            values = [sum(r["energy"] for r in mine if r["level"] == place and r["operand"] == operand)
                      for place in places]
            if not any(values):
                continue
            color = OPERAND_COLORS.get(operand, FLOW_COLORS[index % len(FLOW_COLORS)])
            ax.bar(range(len(places)), values, bottom=bottom, color=color, label=operand)
            bottom = [a + b for a, b in zip(bottom, values)]
        ax.set_xticks(range(len(places)), [p.upper() if p != "mac" else "MAC" for p in places])
        ax.set_title(f"{flow.upper()}: {_si3(sum(r['energy'] for r in mine))} {unit}", fontsize=10)
        ax.yaxis.set_major_formatter(SI)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylim(0, axes[0].get_ylim()[1] * 1.06)
    axes[0].set_ylabel(f"energy ({unit})")
    axes[0].legend(fontsize=8)
    fig.suptitle(table.title)
    return fig


def roofline_figure(table: FigureTable) -> Figure:
    """Log-log roofline: the DRAM slope and each compute peak, every placed layer a marker by dataflow."""
    records = table.records()
    placed = [r for r in records if r["intensity_macs_per_byte"] and r["macs_per_cycle"] > 0]
    if not placed:
        return _empty(table, "no array layer to place")
    flows = _flows(table)
    bandwidth = float(table.meta["dram_bytes_per_cycle"])
    peaks = sorted({round(r["peak_macs_per_cycle"], 1) for r in placed if r["peak_macs_per_cycle"]})
    xs = [r["intensity_macs_per_byte"] for r in placed]
    lo, hi = min(xs) / 2, max(xs) * 2
    top = max(peaks + [r["macs_per_cycle"] for r in placed])
    lo = min(lo, peaks[0] / bandwidth / 4) if peaks else lo
    hi = max(hi, peaks[-1] / bandwidth * 4) if peaks else hi
    fig = Figure(figsize=(7.5, 5.0), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    nominal = float(table.meta.get("pes") or 0)
    for peak in peaks:
        roof = [min(peak, bandwidth * x) for x in grid]
        main = math.isclose(peak, nominal, rel_tol=1e-3) or len(peaks) == 1
        ax.plot(grid, roof, color="black", lw=1.6 if main else 1.0, ls="-" if main else "--")
        per_pe = f" ({peak / nominal:g} per PE)" if nominal and not math.isclose(peak, nominal, rel_tol=1e-3) else ""
        ax.annotate(f"peak {peak:g} MACs/cycle{per_pe}", (hi, peak), xytext=(-4, 3), textcoords="offset points",
                    ha="right", va="bottom", fontsize=8)
    knee = (peaks[0] if peaks else top) / bandwidth  # where the DRAM slope meets the lowest roof
    ax.annotate(f"DRAM {bandwidth:g} B/cycle", (knee / 8, bandwidth * knee / 8), xytext=(-6, 6),
                textcoords="offset points", ha="right", fontsize=8)
    for index, flow in enumerate(flows):
        mine = [r for r in placed if r["dataflow"] == flow]
        ax.scatter([r["intensity_macs_per_byte"] for r in mine], [r["macs_per_cycle"] for r in mine],
                   s=22, marker=MARKERS[index % len(MARKERS)], color=FLOW_COLORS[index % len(FLOW_COLORS)],
                   alpha=0.8, label=f"{flow.upper()} ({len(mine)} layers)", edgecolors="none")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ymin = min(r["macs_per_cycle"] for r in placed) / 2
    ax.set_ylim(max(ymin, 1e-3), top * 2)
    ax.set_xlabel("operational intensity (MACs per compulsory DRAM byte)")
    ax.set_ylabel("attained MACs per cycle")
    ax.grid(which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(table.title)
    return fig


def _bars(ax: "Axes", labels: list[str], values: list[float], best: float | None, ylabel: str, fmt) -> None:
    colors = [FLOW_COLORS[i % len(FLOW_COLORS)] for i in range(len(values))]
    bars = ax.bar(range(len(values)), values, color=colors)
    for bar, value in zip(bars, values):
        if best is not None and value == best:
            bar.set_edgecolor("black")
            bar.set_linewidth(2)
        ax.annotate(fmt(value), (bar.get_x() + bar.get_width() / 2, value), xytext=(0, 2),
                    textcoords="offset points", ha="center", fontsize=8)
    ax.set_xticks(range(len(values)), labels)
    ax.set_ylabel(ylabel)
    ax.yaxis.set_major_formatter(SI)
    ax.set_ylim(0, max(values + [0]) * 1.15 or 1)
    ax.grid(axis="y", alpha=0.3)


def comparison_figure(table: FigureTable) -> Figure:
    """Four panels, a bar per dataflow: latency, energy, DRAM bytes (compulsory minimum dashed), utilization;
    the best latency and energy outlined."""
    records = table.records()
    if not records:
        return _empty(table, "no run")
    unit = table.meta.get("energy_unit", "pJ")
    labels = [r["dataflow"].upper() for r in records]
    fig = Figure(figsize=(11, 3.4), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, 4)
    latency = [r["latency_ms"] for r in records]
    energy = [r["energy"] for r in records]
    _bars(axes[0], labels, latency, min(latency), "latency (ms)", lambda v: f"{v:.2f}")
    _bars(axes[1], labels, energy, min(energy), f"energy ({unit})", _si3)
    dram = [r["dram_bytes"] for r in records]
    _bars(axes[2], labels, dram, None, "DRAM bytes", _si3)
    for i, r in enumerate(records):
        axes[2].hlines(r["compulsory_dram_bytes"], i - 0.4, i + 0.4, colors="black", linestyles="--",
                       label="compulsory" if i == 0 else None)
    axes[2].legend(fontsize=8, loc="lower right")
    _bars(axes[3], labels, [100 * r["utilization"] for r in records], None, "utilization (%)",
          lambda v: f"{v:.1f}%")
    fig.suptitle(table.title)
    return fig


def explore_comparison_figure(table: FigureTable) -> Figure:
    """Two panels, latency and energy: a group per variant (and array), a bar per dataflow; winners outlined."""
    records = table.records()
    if not records:
        return _empty(table, "no run")
    unit = table.meta.get("energy_unit", "pJ")
    arrays = _flows(table, "array")
    groups = list(dict.fromkeys((r["variant"], r["array"]) for r in records))
    flows = _flows(table)
    width = 0.8 / max(len(flows), 1)
    fig = Figure(figsize=(max(7.0, 1.4 * len(groups) + 3), 3.8), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, column, label in ((axes[0], "latency_ms", "latency (ms)"), (axes[1], "energy", f"energy ({unit})")):
        for fi, flow in enumerate(flows):
            xs, ys, edges = [], [], []
            for gi, group in enumerate(groups):
                match = [r for r in records if (r["variant"], r["array"]) == group and r["dataflow"] == flow]
                if match:
                    xs.append(gi - 0.4 + width * (fi + 0.5))
                    ys.append(match[0][column])
                    edges.append(match[0]["winner"])
            bars = ax.bar(xs, ys, width=width * 0.95, color=FLOW_COLORS[fi % len(FLOW_COLORS)], label=flow.upper())
            for bar, won in zip(bars, edges):
                if won:
                    bar.set_edgecolor("black")
                    bar.set_linewidth(2)
        names = [f"{v}\n{a}" if len(arrays) > 1 else v for v, a in groups]
        ax.set_xticks(range(len(groups)), names, fontsize=8)
        ax.set_ylabel(label)
        ax.yaxis.set_major_formatter(SI)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(table.title)
    return fig


def pareto_figure(table: FigureTable) -> Figure:
    """Throughput against energy per inference (log), colour = SQNR, marker = dataflow; the Pareto front (of
    throughput, energy and SQNR together) drawn larger and outlined; each point labelled with its bits."""
    from matplotlib.lines import Line2D

    records = table.records()
    if not records:
        return _empty(table, "no point")
    unit = table.meta.get("energy_unit", "pJ")
    flows = _flows(table)
    several = len(_flows(table, "array")) > 1
    finite = [r["sqnr_db"] for r in records if r["sqnr_db"] is not None and math.isfinite(r["sqnr_db"])]
    vmin, vmax = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if vmin == vmax:
        vmin, vmax = vmin - 1, vmax + 1
    fig = Figure(figsize=(7.5, 5.0), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    mappable = None
    handles = []
    for index, flow in enumerate(flows):
        mine = [r for r in records if r["dataflow"] == flow]
        marker = MARKERS[index % len(MARKERS)]
        colors = [min(max(r["sqnr_db"], vmin), vmax) if r["sqnr_db"] is not None else math.nan for r in mine]
        mappable = ax.scatter([r["inferences_per_s"] for r in mine], [r["energy_per_inference"] for r in mine],
                              c=colors, cmap="viridis", vmin=vmin, vmax=vmax, marker=marker,
                              s=[80 if r["pareto"] else 30 for r in mine],
                              edgecolors=["black" if r["pareto"] else "none" for r in mine], linewidths=1.2,
                              plotnonfinite=True)
        handles.append(Line2D([], [], ls="", marker=marker, color="#888888", label=flow.upper()))
    handles.append(Line2D([], [], ls="", marker="o", markersize=9, markerfacecolor="none", markeredgecolor="black",
                          label="Pareto front"))
    for r in records:
        label = f"{r['bits']}b" + (f" {r['array']}" if several else "")
        ax.annotate(label, (r["inferences_per_s"], r["energy_per_inference"]), xytext=(5, 4),
                    textcoords="offset points", fontsize=8)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(SI)
    ax.yaxis.set_minor_formatter(SI)
    ax.tick_params(axis="y", which="minor", labelsize=7)
    ax.xaxis.set_major_formatter(SI)
    ax.set_xlabel("inferences per second")
    ax.set_ylabel(f"energy per inference ({unit})")
    ax.grid(which="both", alpha=0.25)
    ax.legend(handles=handles, fontsize=8)
    if mappable is not None and finite:
        fig.colorbar(mappable, ax=ax, label="SQNR (dB)")
    fig.suptitle(table.title)
    return fig


PLOTS: dict[str, Callable[[FigureTable], Figure]] = {
    "latency": latency_figure, "energy": energy_figure, "roofline": roofline_figure,
    "comparison": comparison_figure, "explore_comparison": explore_comparison_figure, "pareto": pareto_figure,
}


def figure(table: FigureTable) -> Figure:
    """The figure of ``table``, by its kind."""
    return PLOTS[table.kind](table)


def png_bytes(fig: Figure) -> tuple[bytes, int, int]:
    """The figure as PNG, with its width and height in pixels."""
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI)
    data = out.getvalue()
    # The PNG header holds the true size (IHDR: width, height as big-endian 32-bit at bytes 16..24).
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return data, width, height
