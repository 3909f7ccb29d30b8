"""SCALE-Sim v3 side by side with our compute cycles, on GEMM and conv shapes and on whole networks.

SCALE-Sim runs as a subprocess in its own venv (``bench/setup_peers.sh``), through its Python API with
``save_disk_space=True``; its config, topology and layout files are generated into a temp dir. Every
systematic difference between its cycles and ours has a closed form (``difference_terms``), derived in
bench/README.peers.md. Usage:

    .venv/bin/python bench/peer_scalesim.py --networks ""     # shapes only, a few minutes
    .venv/bin/python bench/peer_scalesim.py --closed-form     # networks, its closed form, no run
    .venv/bin/python bench/peer_scalesim.py                   # shapes and networks (long)
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
if str(REPO_DIR) not in sys.path:
    sys.path.insert(0, str(REPO_DIR))

from codesign.atomic_write import write_text_atomic  # noqa: E402
from codesign.errors import CodesignError  # noqa: E402
from codesign.workload import ConvDims, GemmDims, Workload  # noqa: E402

SCALESIM_PYTHON = BENCH_DIR / ".venv-scalesim" / "bin" / "python"
DATAFLOWS = ("ws", "os")
ARRAYS = (8, 16, 32)
NETWORKS = ("resnet18", "mobilenetv2")

# Large SRAMs and InterfaceBandwidth CALC: SCALE-Sim then never stalls on reads, so its "Total Cycles"
# are compute cycles (we check its "Stall Cycles" column is 0).
SRAM_KB = (1024, 1024, 512)


class PeerError(RuntimeError):
    """SCALE-Sim is missing or failed; the message says which and how to fix it."""


# ---------------------------------------------------------------------------------------------
# SCALE-Sim's inputs: one topology row per layer
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvRow:
    """One SCALE-Sim topology row: ``name, H, W, R, S, C, N, stride`` (no padding, batch 1).

    A name containing ``DP`` makes SCALE-Sim split the row into C single-channel layers (depthwise).
    """

    name: str
    ifmap_h: int
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int
    filters: int
    stride: int

    @property
    def depthwise(self) -> bool:
        return "DP" in self.name

    def ofmap_hw(self) -> tuple[int, int]:
        """Output size by SCALE-Sim's rule, ceil((H - R + stride) / stride) (topology_utils)."""
        out_h = math.ceil((self.ifmap_h - self.filter_h + self.stride) / self.stride)
        out_w = math.ceil((self.ifmap_w - self.filter_w + self.stride) / self.stride)
        return out_h, out_w

    def gemms(self) -> list[GemmDims]:
        """The GEMM(s) SCALE-Sim simulates for this row: M = E*F, K = R*S*C, N = filters."""
        out_h, out_w = self.ofmap_hw()
        if self.depthwise:
            return [GemmDims(batch=self.channels, m=out_h * out_w, k=self.filter_h * self.filter_w, n=self.filters)]
        return [GemmDims(batch=1, m=out_h * out_w, k=self.filter_h * self.filter_w * self.channels, n=self.filters)]

    def simulated_layers(self) -> int:
        """How many layers SCALE-Sim runs for this row (C for a depthwise row, else 1)."""
        return self.channels if self.depthwise else 1

    def csv(self) -> str:
        return (f"{self.name},{self.ifmap_h},{self.ifmap_w},{self.filter_h},{self.filter_w},"
                f"{self.channels},{self.filters},{self.stride},")


def _safe_name(name: str) -> str:
    """A topology name SCALE-Sim parses: no commas or spaces, and no accidental ``DP``."""
    cleaned = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name)
    return cleaned.replace("DP", "Dp") or "layer"


def conv_rows(name: str, dims: ConvDims) -> list[ConvRow]:
    """SCALE-Sim rows for one of our convolutions, pre-padded so its output size equals ours.

    SCALE-Sim has no padding and computes E = ceil((H - R + s) / s); PyTorch drops the rows a stride
    does not reach. Feeding H' = (P - 1) * s + R (the padded rows the output actually reads) gives
    E = P exactly. Depthwise (groups == C): one ``DP`` row (SCALE-Sim splits it per channel) with
    K/C filters each; other grouped convs: one row per group.
    """
    if dims.n != 1:
        raise ValueError(f"{name}: SCALE-Sim simulates batch 1 only, got batch {dims.n}")
    if dims.dilation != (1, 1):
        raise ValueError(f"{name}: SCALE-Sim has no dilation, got {dims.dilation}")
    stride_h, stride_w = dims.stride
    if stride_h != stride_w:
        raise ValueError(f"{name}: SCALE-Sim takes one stride for both axes, got {dims.stride}")
    ifmap_h = (dims.p - 1) * stride_h + dims.r
    ifmap_w = (dims.q - 1) * stride_w + dims.s
    base = _safe_name(name)
    groups = dims.groups
    if groups == 1:
        return [ConvRow(base, ifmap_h, ifmap_w, dims.r, dims.s, dims.c, dims.k, stride_h)]
    if groups == dims.c:
        return [ConvRow(f"{base}_DP", ifmap_h, ifmap_w, dims.r, dims.s, dims.c, dims.k // groups, stride_h)]
    return [ConvRow(f"{base}_g{g}", ifmap_h, ifmap_w, dims.r, dims.s, dims.c // groups, dims.k // groups, stride_h)
            for g in range(groups)]


def gemm_rows(name: str, dims: GemmDims) -> list[ConvRow]:
    """A GEMM as conv rows the way SCALE-Sim's own GEMM reader does: H=M, W=K, R=1, S=K, C=1, N=N."""
    base = _safe_name(name)
    names = [base] if dims.batch == 1 else [f"{base}_b{b}" for b in range(dims.batch)]
    return [ConvRow(row, dims.m, dims.k, 1, dims.k, 1, dims.n, 1) for row in names]


def layer_rows(name: str, dims: ConvDims | GemmDims) -> list[ConvRow]:
    return conv_rows(name, dims) if isinstance(dims, ConvDims) else gemm_rows(name, dims)


TOPOLOGY_HEADER = "Layer name,IFMAP Height,IFMAP Width,Filter Height,Filter Width,Channels,Num Filter,Strides,"
LAYOUT_HEADER = ("Layer name,IFMAP Height Intraline Factor,IFMAP Width Intraline Factor,Filter Height Intraline "
                 "Factor,Filter Width Intraline Factor,Channel Intraline Factor,Num Filter Intraline Factor,")


def topology_csv(rows: Sequence[ConvRow]) -> str:
    return "\n".join([TOPOLOGY_HEADER, *(row.csv() for row in rows)]) + "\n"


def config_ini(run_name: str, rows: int, cols: int, dataflow: str, sram_kb: tuple[int, int, int] = SRAM_KB) -> str:
    """A SCALE-Sim config: every section its reader requires, custom layouts and sparsity off."""
    if dataflow not in DATAFLOWS:
        raise ValueError(f"SCALE-Sim comparison covers {DATAFLOWS}, got {dataflow!r}")
    ifmap_kb, filter_kb, ofmap_kb = sram_kb
    return "\n".join([
        "[general]", f"run_name = {run_name}", "",
        "[architecture_presets]", f"ArrayHeight = {rows}", f"ArrayWidth = {cols}",
        f"IfmapSramSzkB = {ifmap_kb}", f"FilterSramSzkB = {filter_kb}", f"OfmapSramSzkB = {ofmap_kb}",
        "IfmapOffset = 0", "FilterOffset = 10000000", "OfmapOffset = 20000000",
        f"Dataflow = {dataflow}", "Bandwidth = 10", "ReadRequestBuffer = 32", "WriteRequestBuffer = 32", "",
        "[layout]", "IfmapCustomLayout = False", "IfmapSRAMBankBandwidth = 10", "IfmapSRAMBankNum = 10",
        "IfmapSRAMBankPort = 2", "FilterCustomLayout = False", "FilterSRAMBankBandwidth = 10",
        "FilterSRAMBankNum = 10", "FilterSRAMBankPort = 2", "",
        "[sparsity]", "SparsitySupport = false", "SparseRep = ellpack_block", "OptimizedMapping = false",
        "BlockSize = 8", "RandomNumberGeneratorSeed = 40", "",
        "[run_presets]", "InterfaceBandwidth = CALC", "UseRamulatorTrace = False", "",
    ])


# ---------------------------------------------------------------------------------------------
# Cycle models: SCALE-Sim's closed form, ours, and the terms between them
# ---------------------------------------------------------------------------------------------


def _folds(dataflow: str, gemm: GemmDims, rows: int, cols: int) -> tuple[int, int, int, int]:
    """(spatial on rows Sr, spatial on cols Sc, temporal T, folds) of SCALE-Sim's mapping."""
    if dataflow == "ws":
        sr, sc, t = gemm.k, gemm.n, gemm.m
    elif dataflow == "os":
        sr, sc, t = gemm.m, gemm.n, gemm.k
    else:
        raise ValueError(f"no SCALE-Sim mapping for dataflow {dataflow!r}")
    return sr, sc, t, math.ceil(sr / rows) * math.ceil(sc / cols)


def scalesim_model_cycles(dataflow: str, gemm: GemmDims, rows: int, cols: int) -> int:
    """SCALE-Sim's reported Total Cycles without stalls, summed over ``gemm.batch`` layers.

    Per fold: WS 2R + C + T - 2, OS T + R + C - 2 (SCALE-Sim paper, arXiv 2504.15377 / 1811.02883);
    every fold costs the full array; each layer reports one cycle fewer (0-based last cycle, issue #125).
    """
    _, _, t, folds = _folds(dataflow, gemm, rows, cols)
    return gemm.batch * (folds * _scalesim_fold_cycles(dataflow, t, rows, cols) - 1)


def our_compute_cycles(dataflow: str, gemm: GemmDims, rows: int, cols: int) -> int:
    """Our compute cycles of the GEMM(s) with the streamed dimension whole (codesign.contract.gemm_timing)."""
    from codesign.contract.gemm_timing import gemm_compute_cycles

    return gemm_compute_cycles(dataflow, gemm.m, gemm.k, gemm.n, rows, cols, batch=gemm.batch)


@dataclass(frozen=True)
class DifferenceTerms:
    """ours - SCALE-Sim's reported cycles, split into its explained parts (they sum exactly)."""

    off_by_one: int  # +1 per SCALE-Sim layer: it reports the last cycle's 0-based index
    fold_padding: int  # WS: -(folds*R - Σk) it charges a partial row fold as a full one
    output_drain: int  # OS: +m of the last tile, the only drain not hidden behind a next tile; SCALE-Sim omits it
    tile_constant: int  # per tile, WS +2: our k + m + R + C against its 2R + C + T - 2; OS 0: our issue
    # interval k + R + C - 2 is its fold T + R + C - 2
    tile_gaps: int  # WS: +1 between consecutive tiles (TILE_GAP_CYCLES); OS none (the next tile issues before the drain)

    @property
    def total(self) -> int:
        return self.off_by_one + self.fold_padding + self.output_drain + self.tile_constant + self.tile_gaps


def _scalesim_fold_cycles(dataflow: str, t: int, rows: int, cols: int) -> int:
    return 2 * rows + cols + t - 2 if dataflow == "ws" else t + rows + cols - 2


def per_tile_constant(dataflow: str, rows: int, cols: int) -> int:
    """What one full tile costs us (codesign.contract.tile_timing) beyond SCALE-Sim's fold with the same T, drain and gaps aside.

    WS: tile_cycles k + m + R + C, 2 above SCALE-Sim's fold; OS: issue_interval k + R + C - 2 (back to back
    the drain overlaps the next tile), equal to its fold. Taken from the contract, not assumed.
    """
    from codesign.contract.tile_timing import issue_interval, tile_cycles

    t = rows  # any streamed length: both sides grow by one cycle per streamed element
    if dataflow == "ws":
        ours = tile_cycles(dataflow, t, rows, cols, rows, cols)
    else:
        ours = issue_interval(dataflow, rows, t, cols, rows, cols)
    return ours - _scalesim_fold_cycles(dataflow, t, rows, cols)


def difference_terms(dataflow: str, gemm: GemmDims, rows: int, cols: int) -> DifferenceTerms:
    """The closed-form split of ``our_compute_cycles - scalesim_model_cycles`` (see README.peers.md).

    We run a batch (depthwise groups) as one back-to-back tile sequence; SCALE-Sim runs one layer each.
    """
    from codesign.contract.tile_timing import TILE_GAP_CYCLES

    sr, sc, _, folds = _folds(dataflow, gemm, rows, cols)
    constant = per_tile_constant(dataflow, rows, cols)
    tiles = gemm.batch * folds  # with the streamed dimension whole, our tiles are SCALE-Sim's folds
    col_folds, row_folds = math.ceil(sc / cols), math.ceil(sr / rows)
    if dataflow == "ws":  # Σ k over tiles = K per column fold; SCALE-Sim charges R per row fold
        padding, drain, gaps = -gemm.batch * col_folds * (row_folds * rows - sr), 0, (tiles - 1) * TILE_GAP_CYCLES
    else:  # only the last tile's m rows (the last row fold) drain after the last issue; no gaps
        padding, drain, gaps = 0, (sr - 1) % rows + 1, 0
    return DifferenceTerms(
        off_by_one=gemm.batch,
        fold_padding=padding,
        output_drain=drain,
        tile_constant=constant * tiles,
        tile_gaps=gaps,
    )


# ---------------------------------------------------------------------------------------------
# Running SCALE-Sim
# ---------------------------------------------------------------------------------------------

# A child's own peak RSS: VmHWM of its address space. wait4's ru_maxrss is not usable here: Linux carries
# the forking parent's high-water mark across exec, so a parent holding torch would inflate every child.
PEAK_RSS_SNIPPET = r"""
def _print_peak_rss():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                print("PEAK_RSS_KB", int(line.split()[1]), flush=True)
"""

_DRIVER = PEAK_RSS_SNIPPET + r"""
import sys
from scalesim.scale_sim import scalesim
config, topology, layout, top = sys.argv[1:5]
sim = scalesim(save_disk_space=True, verbose=False, config=config, topology=topology, layout=layout,
               input_type_gemm=False)
sim.run_scale(top_path=top)
_print_peak_rss()
"""


@dataclass(frozen=True)
class ScaleSimRun:
    """One SCALE-Sim run: per simulated layer (Total Cycles, Stall Cycles), wall time, its peak RSS (VmHWM)."""

    cycles: tuple[int, ...]
    stalls: tuple[int, ...]
    wall_s: float
    peak_rss_mb: float


def require_scalesim() -> Path:
    if not SCALESIM_PYTHON.exists():
        raise PeerError(f"SCALE-Sim venv missing ({SCALESIM_PYTHON}); run: bash bench/setup_peers.sh")
    return SCALESIM_PYTHON


def run_child(argv: Sequence[str], cwd: str | None = None, timeout_s: float | None = None) -> tuple[float, float, str, str, int]:
    """Run a child process; (wall seconds, its peak RSS in MB, stdout, stderr, exit code).

    The peak is the ``PEAK_RSS_KB`` line the child prints (PEAK_RSS_SNIPPET); NaN if it printed none.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(argv), cwd=cwd, stdout=out, stderr=err)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        peaks = [int(line.split()[1]) for line in stdout.splitlines() if line.startswith("PEAK_RSS_KB ")]
        peak_mb = peaks[-1] / 1024.0 if peaks else float("nan")
        return wall, peak_mb, stdout, stderr, proc.returncode


def parse_compute_report(text: str) -> tuple[list[int], list[int]]:
    """(Total Cycles, Stall Cycles) per layer from COMPUTE_REPORT.csv (get_total_cycles() is broken)."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = [cell.strip() for cell in lines[0].split(",")]
    total_col, stall_col = header.index("Total Cycles"), header.index("Stall Cycles")
    totals, stalls = [], []
    for line in lines[1:]:
        cells = [cell.strip() for cell in line.split(",")]
        totals.append(int(float(cells[total_col])))
        stalls.append(int(float(cells[stall_col])))
    return totals, stalls


def run_scalesim(rows_in: Sequence[ConvRow], rows: int, cols: int, dataflow: str,
                 timeout_s: float | None = None) -> ScaleSimRun:
    """Run SCALE-Sim on ``rows_in`` (one topology) on a rows x cols array; per simulated layer cycles."""
    python = require_scalesim()
    with tempfile.TemporaryDirectory(prefix="scalesim-") as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "config.cfg").write_text(config_ini("run", rows, cols, dataflow))
        (tmp_path / "topology.csv").write_text(topology_csv(rows_in))
        (tmp_path / "layout.csv").write_text(LAYOUT_HEADER + "\n")
        (tmp_path / "driver.py").write_text(_DRIVER)
        wall, rss_mb, out, err, code = run_child(
            [str(python), "driver.py", "config.cfg", "topology.csv", "layout.csv", str(tmp_path / "out")],
            cwd=tmp, timeout_s=timeout_s)
        report = tmp_path / "out" / "run" / "COMPUTE_REPORT.csv"
        if code != 0 or not report.exists():
            tail = (err or out).strip().splitlines()[-3:]
            raise PeerError(f"SCALE-Sim failed (exit {code}): {' | '.join(tail)}")
        totals, stalls = parse_compute_report(report.read_text())
    expected = sum(row.simulated_layers() for row in rows_in)
    if len(totals) != expected:
        raise PeerError(f"SCALE-Sim reported {len(totals)} layers, expected {expected}")
    return ScaleSimRun(tuple(totals), tuple(stalls), wall, rss_mb)


# ---------------------------------------------------------------------------------------------
# Cases: shapes and networks
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One layer to compare: our dims and the SCALE-Sim rows that stand for it."""

    name: str
    dims: ConvDims | GemmDims
    rows: tuple[ConvRow, ...] = field(default=())

    @property
    def gemm(self) -> GemmDims:
        return self.dims.gemm()


def make_case(name: str, dims: ConvDims | GemmDims) -> Case:
    return Case(name, dims, tuple(layer_rows(name, dims)))


def _conv(k: int, c: int, hw: int, r: int, stride: int = 1, groups: int = 1) -> ConvDims:
    pad = r // 2
    out = (hw + 2 * pad - r) // stride + 1
    return ConvDims(n=1, k=k, c=c, p=out, q=out, r=r, s=r, h=hw, w=hw, groups=groups,
                    stride=(stride, stride), padding=(pad, pad))


def shape_cases() -> list[Case]:
    """GEMM and conv shapes chosen to hit full folds, partial folds and tiny layers on 8/16/32 arrays."""
    gemms = {
        "gemm_64x64x64": GemmDims(1, 64, 64, 64),
        "gemm_100x75x50": GemmDims(1, 100, 75, 50),
        "gemm_256x512x128": GemmDims(1, 256, 512, 128),
        "gemm_1x512x1000": GemmDims(1, 1, 512, 1000),
        "gemm_49x33x17": GemmDims(1, 49, 33, 17),
    }
    convs = {
        "conv3x3_c64_k64_28": _conv(64, 64, 28, 3),
        "conv3x3_c3_k32_s2_56": _conv(32, 3, 56, 3, stride=2),
        "conv1x1_c96_k24_28": _conv(24, 96, 28, 1),
        "conv5x5_c20_k50_16": _conv(50, 20, 16, 5),
        "dwconv3x3_c32_28": _conv(32, 32, 28, 3, groups=32),
    }
    return [make_case(name, dims) for name, dims in {**gemms, **convs}.items()]


def network_cases(workload: Workload) -> list[Case]:
    """The conv / linear layers of a captured Workload (shapes exactly as we captured them)."""
    cases = []
    for layer in workload.mac_layers():
        if layer.dims is None:
            continue
        cases.append(make_case(layer.name, layer.dims))
    return cases


def capture_network(name: str) -> Workload:
    import codesign
    from codesign import zoo

    module, inputs = zoo.build(name)
    return codesign.from_torch(module, inputs)


# ---------------------------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerComparison:
    case: str
    dataflow: str
    array: int
    scalesim: int  # measured, summed over the layer's SCALE-Sim layers
    scalesim_model: int  # its closed form
    ours: int
    terms: DifferenceTerms
    stalls: int

    @property
    def delta_pct(self) -> float:
        return 100.0 * (self.ours - self.scalesim) / self.scalesim

    @property
    def adjusted(self) -> int:
        """SCALE-Sim's measured cycles plus every explained term: equals ours when the model is right."""
        return self.scalesim + self.terms.total


def compare(cases: Sequence[Case], array: int, dataflow: str, run: ScaleSimRun) -> list[LayerComparison]:
    """Split ``run``'s per-layer cycles back onto ``cases`` and set them beside ours."""
    out, cursor = [], 0
    for case in cases:
        simulated = sum(row.simulated_layers() for row in case.rows)
        measured = sum(run.cycles[cursor:cursor + simulated])
        stalls = sum(run.stalls[cursor:cursor + simulated])
        cursor += simulated
        gemms = [g for row in case.rows for g in row.gemms()]
        model = sum(scalesim_model_cycles(dataflow, g, array, array) for g in gemms)
        gemm = case.gemm
        ours = our_compute_cycles(dataflow, gemm, array, array)
        out.append(LayerComparison(case.name, dataflow, array, measured, model, ours,
                                   difference_terms(dataflow, gemm, array, array), stalls))
    return out


@dataclass(frozen=True)
class Totals:
    scalesim: int
    scalesim_model: int
    ours: int
    adjusted: int
    off_by_one: int
    fold_padding: int
    output_drain: int
    tile_constant: int
    tile_gaps: int
    stalls: int

    @property
    def delta_pct(self) -> float:
        return 100.0 * (self.ours - self.scalesim) / self.scalesim

    @property
    def adjusted_delta_pct(self) -> float:
        return 100.0 * (self.ours - self.adjusted) / self.adjusted


def totals(rows: Iterable[LayerComparison]) -> Totals:
    rows = list(rows)
    return Totals(
        scalesim=sum(r.scalesim for r in rows), scalesim_model=sum(r.scalesim_model for r in rows),
        ours=sum(r.ours for r in rows), adjusted=sum(r.adjusted for r in rows),
        off_by_one=sum(r.terms.off_by_one for r in rows), fold_padding=sum(r.terms.fold_padding for r in rows),
        output_drain=sum(r.terms.output_drain for r in rows), tile_constant=sum(r.terms.tile_constant for r in rows),
        tile_gaps=sum(r.terms.tile_gaps for r in rows), stalls=sum(r.stalls for r in rows),
    )


def _pct(value: float) -> str:
    return f"{value:+.2f}%"


def layer_table(rows: Sequence[LayerComparison]) -> str:
    lines = ["| layer | df | array | SCALE-Sim | its closed form | ours | ours - it | off-by-one | fold pad | "
             "OS drain | tile const | gaps | explained? |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        t = r.terms
        ok = "yes" if r.adjusted == r.ours else f"no ({r.ours - r.adjusted:+d})"
        lines.append(f"| {r.case} | {r.dataflow} | {r.array} | {r.scalesim} | {r.scalesim_model} | {r.ours} | "
                     f"{_pct(r.delta_pct)} | {t.off_by_one} | {t.fold_padding} | {t.output_drain} | "
                     f"{t.tile_constant} | {t.tile_gaps} | {ok} |")
    return "\n".join(lines)


def totals_table(named: Sequence[tuple[str, str, int, Totals]]) -> str:
    lines = ["| network | df | array | SCALE-Sim | ours | ours vs SCALE-Sim | off-by-one | fold pad | OS drain | "
             "tile const | gaps | SCALE-Sim + explained | ours vs adjusted | stalls |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for network, dataflow, array, t in named:
        lines.append(f"| {network} | {dataflow} | {array} | {t.scalesim} | {t.ours} | {_pct(t.delta_pct)} | "
                     f"{t.off_by_one} | {t.fold_padding} | {t.output_drain} | {t.tile_constant} | {t.tile_gaps} | "
                     f"{t.adjusted} | {_pct(t.adjusted_delta_pct)} | {t.stalls} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def _csv_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arrays", default="8,16,32", help="square array sizes for the shapes")
    parser.add_argument("--network-arrays", default="32", help="square array sizes for the networks")
    parser.add_argument("--dataflows", default="ws,os")
    parser.add_argument("--networks", default=",".join(NETWORKS), help="zoo names, or '' for shapes only")
    parser.add_argument("--out", default=str(REPO_DIR / "build" / "bench" / "scalesim.md"))
    parser.add_argument("--json", default=None, help="also write every comparison as JSON here")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per SCALE-Sim run")
    parser.add_argument("--closed-form", action="store_true",
                        help="networks only, SCALE-Sim's cycles from its closed form instead of running it")
    args = parser.parse_args(argv)
    if args.closed_form:
        try:
            return closed_form_main(args)
        except (CodesignError, ValueError) as exc:
            print(f"peer_scalesim: error: {exc}", file=sys.stderr)
            return 2
    try:
        require_scalesim()
        dataflows = _csv_list(args.dataflows)
        for dataflow in dataflows:
            if dataflow not in DATAFLOWS:
                raise PeerError(f"dataflow {dataflow!r} not in {DATAFLOWS}")
        arrays = [int(a) for a in _csv_list(args.arrays)]
        network_arrays = [int(a) for a in _csv_list(args.network_arrays)]
        sections, summary, records = [], [], []

        shapes = shape_cases()
        shape_rows: list[LayerComparison] = []
        for array in arrays:
            for dataflow in dataflows:
                run = run_scalesim([row for case in shapes for row in case.rows], array, array, dataflow, args.timeout)
                shape_rows += compare(shapes, array, dataflow, run)
                print(f"shapes {dataflow} {array}x{array}: {run.wall_s:.1f} s", file=sys.stderr)
        sections.append("## GEMM and conv shapes\n\n" + layer_table(shape_rows))

        for network in _csv_list(args.networks):
            workload = capture_network(network)
            cases = network_cases(workload)
            for array in network_arrays:
                for dataflow in dataflows:
                    run = run_scalesim([row for case in cases for row in case.rows], array, array, dataflow,
                                       args.timeout)
                    rows = compare(cases, array, dataflow, run)
                    summary.append((network, dataflow, array, totals(rows)))
                    sections.append(f"## {network}, {dataflow.upper()}, {array}x{array} (SCALE-Sim "
                                    f"{run.wall_s:.1f} s, {run.peak_rss_mb:.0f} MB)\n\n" + layer_table(rows))
                    records += [dict(network=network, **_record(r)) for r in rows]
                    print(f"{network} {dataflow} {array}x{array}: SCALE-Sim {run.wall_s:.1f} s "
                          f"{run.peak_rss_mb:.0f} MB; ours vs it {_pct(summary[-1][3].delta_pct)}", file=sys.stderr)
        records += [dict(network="shapes", **_record(r)) for r in shape_rows]
    except (PeerError, CodesignError, ValueError) as exc:  # bad input or a failed peer: one line
        print(f"peer_scalesim: error: {exc}", file=sys.stderr)
        return 2
    text = "# SCALE-Sim v3 side by side (compute cycles)\n\n"
    if summary:
        text += "## Per network\n\n" + totals_table(summary) + "\n\n"
    text += "\n\n".join(sections) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, text)
    if args.json:
        write_text_atomic(args.json, json.dumps(records, indent=1) + "\n")
    if summary:
        print(totals_table(summary))
    return 0


def closed_form_run(cases: Sequence[Case], array: int, dataflow: str) -> ScaleSimRun:
    """What SCALE-Sim reports without stalls, per simulated layer, from its closed form (no run)."""
    cycles = [scalesim_model_cycles(dataflow, GemmDims(1, g.m, g.k, g.n), array, array)
              for case in cases for row in case.rows for g in row.gemms() for _ in range(g.batch)]
    return ScaleSimRun(tuple(cycles), (0,) * len(cycles), 0.0, 0.0)


def engine_arch(array: int, dataflow: str, glb_bytes: int | None = None):
    """A square array for ``sim.engine``: fpga-16x16 widened; ``glb_bytes=None`` makes the buffer and DRAM
    large enough that no mapping has to split the streamed dimension (SCALE-Sim's setting)."""
    from dataclasses import replace

    from codesign.arch_loader import load_arch

    base = load_arch("fpga-16x16")
    glb = replace(base.glb, size_bytes=glb_bytes or 64 * 2**20, word_bits=8 * array)
    dram = base.dram if glb_bytes else replace(base.dram, bytes_per_cycle=1024)
    return replace(base, name=f"fpga-{array}x{array}", rows=array, cols=array, glb=glb, dram=dram)


def engine_compute_cycles(workload: Workload, cases: Sequence[Case], array: int, dataflow: str,
                          glb_bytes: int | None = None) -> int:
    """Compute cycles of ``cases``' layers as ``sim.engine.simulate`` maps them (mapping search included)."""
    from sim.engine import simulate

    names = {case.name for case in cases}
    result = simulate(workload, engine_arch(array, dataflow, glb_bytes), dataflow, objective="latency")
    return sum(layer.compute_cycles for layer in result.layers if layer.name in names)


def closed_form_main(args: argparse.Namespace) -> int:
    """Per-network totals on every array with SCALE-Sim's closed form standing in for its run."""
    summary, engine_lines = [], []
    arrays, dataflows = [int(a) for a in _csv_list(args.arrays)], _csv_list(args.dataflows)
    for dataflow in dataflows:
        if dataflow not in DATAFLOWS:
            raise ValueError(f"dataflow {dataflow!r} not in {DATAFLOWS}")
    for network in _csv_list(args.networks):
        workload = capture_network(network)
        cases = network_cases(workload)
        for array in arrays:
            for dataflow in dataflows:
                rows = compare(cases, array, dataflow, closed_form_run(cases, array, dataflow))
                summary.append((network, dataflow, array, totals(rows)))
                model = summary[-1][3].ours
                free = engine_compute_cycles(workload, cases, array, dataflow)
                tight = engine_compute_cycles(workload, cases, array, dataflow, glb_bytes=512 * 1024)
                engine_lines.append(f"| {network} | {dataflow} | {array} | {model} | {free} | "
                                    f"{_pct(100.0 * (free - model) / model)} | {tight} | "
                                    f"{_pct(100.0 * (tight - model) / model)} |")
    text = ("# Per network, SCALE-Sim's cycles from its closed form (not a run)\n\n"
            + totals_table(summary).replace("| SCALE-Sim |", "| SCALE-Sim closed form |", 1) + "\n\n"
            + "# Our array model against our engine's searched mappings (compute cycles)\n\n"
            + "| network | df | array | array model, stream whole | engine, unconstrained GLB | vs model | "
              "engine, 512 KiB GLB, 2 B/cycle DRAM | vs model |\n|---|---|---|---:|---:|---:|---:|---:|\n"
            + "\n".join(engine_lines) + "\n")
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, text)
    return 0


def _record(r: LayerComparison) -> dict:
    return dict(layer=r.case, dataflow=r.dataflow, array=r.array, scalesim=r.scalesim,
                scalesim_model=r.scalesim_model, ours=r.ours, adjusted=r.adjusted, stalls=r.stalls,
                **{f"term_{k}": v for k, v in r.terms.__dict__.items()})


if __name__ == "__main__":
    sys.exit(main())
