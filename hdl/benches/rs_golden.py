"""Golden passes of the row-stationary array: data, the stream beats that carry them, the psums and cycles.

A pass (docs/rs-array.md) gives every PE set ``r`` filter rows of ``p`` filters x ``q`` channels x ``taps``
and ``r + (e - 1) * max_stride`` input rows of ``q`` channels x ``(out_cols - 1) * U + taps`` (U the pass's
stride); set column j returns output row j,

    psum[j, f, x] = sum_{i, c, s} w[i, f, c, s] * in[i + U*j, c, U*x + s]

computed here with numpy on Python ints. ``conv_passes`` cuts a whole convolution into such passes (output
rows by e, filters by p, channels by q, filter rows by r, filter-row segments by taps) dealt to the sets
pass by pass, and ``assemble`` adds their psums back into the output, which must equal ``conv2d``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from codesign.contract import rs_timing
from hdl.rs_pe import RsParams

__all__ = ["RsPass", "operand_limits", "random_pass", "expected_psums", "filter_beats", "input_beats",
           "psum_beats", "busiest_nonzeros", "predicted_cycles", "predicted_interval", "predicted_sequence",
           "conv2d", "ConvTiling", "conv_passes", "assemble", "pack_lanes", "unpack_lanes"]


def operand_limits(bits: int, is_signed: bool) -> tuple[int, int]:
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if is_signed else (0, (1 << bits) - 1)


@dataclass
class RsPass:
    """One pass: command sizes and every set's data (object arrays of Python ints)."""

    p: int
    q: int
    taps: int
    out_cols: int
    weights: np.ndarray  # (sets, r, p, q, taps)
    inputs: np.ndarray  # (sets, r + (e - 1) * max_stride, q, (out_cols - 1) * stride + taps)
    units: list = field(default_factory=list)  # conv tiling: the unit each set runs (None: idle)
    stride: int = 1

    @property
    def command(self) -> dict[str, int]:
        return {"p": self.p, "q": self.q, "taps": self.taps, "out_cols": self.out_cols, "stride": self.stride}

    @property
    def new_inputs(self) -> int:
        """Inputs per channel each column after the first takes: ``min(stride, taps)``."""
        return rs_timing.new_inputs(self.taps, self.stride)


def random_pass(params: RsParams, rng: np.random.Generator, p: int, q: int, taps: int, out_cols: int,
                zero_share: float = 0.0, extreme: bool = False, zero_pattern: np.ndarray | None = None,
                stride: int = 1) -> RsPass:
    """Random operands over their whole range (``extreme``: only the range's ends), a share of weights set to
    zero, or exactly the zeros of ``zero_pattern`` (a boolean (sets, r, p, q, taps) mask, True = zero)."""
    params.check_pass(p, q, taps, out_cols, stride)
    w_lo, w_hi = operand_limits(params.weight_bits, params.weight_signed)
    a_lo, a_hi = operand_limits(params.activation_bits, params.activation_signed)
    w_shape = (params.sets, params.set_rows, p, q, taps)
    a_shape = (params.sets, params.diagonals, q, rs_timing.input_width(taps, out_cols, stride))
    if extreme:
        weights = rng.choice([w_lo, w_hi], size=w_shape)
        inputs = rng.choice([a_lo, a_hi], size=a_shape)
    else:
        weights = rng.integers(w_lo, w_hi + 1, size=w_shape)
        inputs = rng.integers(a_lo, a_hi + 1, size=a_shape)
    weights = weights.astype(object)
    if zero_pattern is not None:
        weights[np.asarray(zero_pattern, dtype=bool)] = 0
    elif zero_share:
        weights[rng.random(w_shape) < zero_share] = 0
    return RsPass(p, q, taps, out_cols, weights, inputs.astype(object), stride=stride)


def expected_psums(rs_pass: RsPass, params: RsParams) -> np.ndarray:
    """(sets, e, p, out_cols): psum[j, f, x] = sum_{i, c, s} w[i, f, c, s] * in[i + U*j, c, U*x + s]."""
    r, e, u = params.set_rows, params.set_cols, rs_pass.stride
    out = np.zeros((params.sets, e, rs_pass.p, rs_pass.out_cols), dtype=object)
    for j in range(e):
        for i in range(r):
            for s in range(rs_pass.taps):
                window = rs_pass.inputs[:, i + u * j, :, s:s + (rs_pass.out_cols - 1) * u + 1:u]  # (sets, q, Q)
                out[:, j] += np.einsum("zfc,zcx->zfx", rs_pass.weights[:, i, :, :, s], window)
    return out


def _lanes(values: np.ndarray) -> list[int]:
    return [int(v) for v in np.asarray(values).reshape(-1)]


def filter_beats(rs_pass: RsPass) -> list[list[int]]:
    """The ``filters`` stream: one beat per (f, c, s), lane set*r + i carrying w[set, i, f, c, s]."""
    w = rs_pass.weights
    return [_lanes(w[:, :, f, c, s]) for f in range(rs_pass.p) for c in range(rs_pass.q) for s in range(rs_pass.taps)]


def input_beats(rs_pass: RsPass) -> list[list[int]]:
    """The ``inputs`` stream: the windows' prime (c, s: in[.., c, s]), then per output column x = 1..Q-1, for
    each channel c, its n = min(U, taps) new inputs in[.., c, U*x + s], s = taps-n .. taps-1; lane set*D + d
    carries input row d."""
    a, taps, u, n = rs_pass.inputs, rs_pass.taps, rs_pass.stride, rs_pass.new_inputs
    beats = [_lanes(a[:, :, c, s]) for c in range(rs_pass.q) for s in range(taps)]
    beats += [_lanes(a[:, :, c, u * x + s]) for x in range(1, rs_pass.out_cols) for c in range(rs_pass.q)
              for s in range(taps - n, taps)]
    return beats


def psum_beats(expected: np.ndarray) -> list[list[int]]:
    """The ``psums`` stream: per output column x, one beat per filter f, lane set*e + j."""
    _, _, p, cols = expected.shape
    return [_lanes(expected[:, :, f, x]) for x in range(cols) for f in range(p)]


def busiest_nonzeros(rs_pass: RsPass, params: RsParams) -> int | None:
    """The most weights any PE walks when zero weights are skipped (None: dense walk). The PEs of set row i
    all hold filter row i, so the busiest is the set row with the most nonzero weights."""
    if not params.skip_zero_weights:
        return None
    counts = (rs_pass.weights != 0).reshape(params.sets * params.set_rows, -1).sum(axis=1)
    return int(counts.max())


def predicted_cycles(rs_pass: RsPass, params: RsParams) -> int:
    return rs_timing.pass_cycles(rs_pass.p, rs_pass.q, rs_pass.taps, rs_pass.out_cols,
                                 busiest_nonzeros(rs_pass, params), rs_pass.stride)


def predicted_interval(rs_pass: RsPass, params: RsParams) -> int:
    return rs_timing.issue_interval(rs_pass.p, rs_pass.q, rs_pass.taps, rs_pass.out_cols,
                                    busiest_nonzeros(rs_pass, params), rs_pass.stride)


def predicted_sequence(passes: list[RsPass], params: RsParams) -> int:
    return rs_timing.sequence_cycles([(x.p, x.q, x.taps, x.out_cols, busiest_nonzeros(x, params), x.stride)
                                      for x in passes])


def pack_lanes(values: list[int], bits: int) -> int:
    """Lanes into one payload integer, lane 0 in the lowest bits (two's complement within each lane)."""
    mask, word = (1 << bits) - 1, 0
    for lane, value in enumerate(values):
        word |= (int(value) & mask) << (lane * bits)
    return word


def unpack_lanes(word: int, lanes: int, bits: int, is_signed: bool) -> list[int]:
    mask, out = (1 << bits) - 1, []
    for lane in range(lanes):
        value = (int(word) >> (lane * bits)) & mask
        if is_signed and value >> (bits - 1):
            value -= 1 << bits
        out.append(value)
    return out


# -- a whole convolution -------------------------------------------------------------------------------------

def conv2d(x: np.ndarray, w: np.ndarray, stride: int = 1) -> np.ndarray:
    """Direct convolution (no padding): x (C, H, W), w (K, C, R, S) -> (K, (H-R)//U+1, (W-S)//U+1)."""
    c, h, wd = x.shape
    k, _, r, s = w.shape
    ph, pw = (h - r) // stride + 1, (wd - s) // stride + 1
    out = np.zeros((k, ph, pw), dtype=object)
    for dr in range(r):
        for ds in range(s):
            out += np.einsum("kc,cpq->kpq", w[:, :, dr, ds].astype(object),
                             x[:, dr:dr + (ph - 1) * stride + 1:stride, ds:ds + (pw - 1) * stride + 1:stride]
                             .astype(object))
    return out


@dataclass(frozen=True)
class ConvTiling:
    p: int  # filters per PE
    q: int  # channels per PE
    taps: int  # filter-row segment (S')


def _chunks(total: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(size, total - start)) for start in range(0, total, size)]


def conv_passes(x: np.ndarray, w: np.ndarray, params: RsParams, tiling: ConvTiling, stride: int = 1) -> list[RsPass]:
    """The passes computing ``conv2d(x, w, stride)``: units of e output rows x p filters x q channels x r filter
    rows x a taps-segment of each filter row (docs/simulator.md section 5), ``params.sets`` units per pass (the
    last pass's idle sets get zeros). Each pass covers the whole output width Q."""
    c, h, wd = x.shape
    k, _, r_all, s_all = w.shape
    out_rows, out_cols = (h - r_all) // stride + 1, (wd - s_all) // stride + 1
    r, e = params.set_rows, params.set_cols
    units = []
    for e0, en in _chunks(out_rows, e):
        for k0, kn in _chunks(k, tiling.p):
            for c0, cn in _chunks(c, tiling.q):
                for r0, rn in _chunks(r_all, r):
                    for s0, sn in _chunks(s_all, tiling.taps):
                        units.append((e0, en, k0, kn, c0, cn, r0, rn, s0, sn))
    passes = []
    width = rs_timing.input_width(tiling.taps, out_cols, stride)
    for start in range(0, len(units), params.sets):
        batch = units[start:start + params.sets]
        weights = np.zeros((params.sets, r, tiling.p, tiling.q, tiling.taps), dtype=object)
        inputs = np.zeros((params.sets, params.diagonals, tiling.q, width), dtype=object)
        for z, (e0, en, k0, kn, c0, cn, r0, rn, s0, sn) in enumerate(batch):
            weights[z, :rn, :kn, :cn, :sn] = np.transpose(w[k0:k0 + kn, c0:c0 + cn, r0:r0 + rn, s0:s0 + sn],
                                                          (2, 0, 1, 3))
            for d in range(params.diagonals):
                row = e0 * stride + r0 + d  # set row i, column j: input row (e0 + j)*U + r0 + i
                if row >= h:
                    continue
                cols = x[c0:c0 + cn, row, s0:min(wd, s0 + width)]
                inputs[z, d, :cn, :cols.shape[1]] = cols
        passes.append(RsPass(tiling.p, tiling.q, tiling.taps, out_cols, weights, inputs,
                             units=batch + [None] * (params.sets - len(batch)), stride=stride))
    return passes


def assemble(passes: list[RsPass], psums: list[np.ndarray], out_shape: tuple[int, int, int]) -> np.ndarray:
    """Add every unit's psums (sets, e, p, Q) into the output (K, P, Q): the folds over channels, filter
    rows and segments accumulate, the partial units' extra rows and filters are dropped."""
    out = np.zeros(out_shape, dtype=object)
    for rs_pass, got in zip(passes, psums):
        for z, unit in enumerate(rs_pass.units):
            if unit is None:
                continue
            e0, en, k0, kn, *_ = unit
            out[k0:k0 + kn, e0:e0 + en, :] += np.transpose(got[z, :en, :kn, :], (1, 0, 2))
    return out
