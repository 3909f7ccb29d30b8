"""Binarized compute units: XNOR-popcount PEs and arrays, and the folded batch-norm threshold unit.

Bit convention: a bit 1 stands for +1 and a bit 0 for -1. For two packed words of n valid bits the
{-1,+1} dot product is ``2 * popcount(xnor(a, w) & mask) - n`` (XNOR-Net, Rastegari et al., ECCV 2016;
FINN, Umuroglu et al., FPGA 2017). Bits at or above ``n_valid`` are masked out, so a reduction of
length K that is not a multiple of ``word_bits`` ends with a partial word (run-time ``n_valid``).

A binarized conv is the im2col GEMM of +-1 patches and +-1 filters; a binarized ViT linear layer is
the same GEMM over tokens: rows of the array take activation words, columns take weight words.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from codesign.errors import HdlError

__all__ = [
    "MAX_WORD_BITS", "MAX_ACC_BITS", "MAX_ARRAY_DIM", "dot_bits", "acc_bits_for", "xnor_dot",
    "XnorPopcountPE", "XnorPopcountArray", "ThresholdUnit", "XnorThresholdArray", "fold_batchnorm",
    "to_bits", "pack_words", "valid_bits_per_word", "xnor_popcount_dot", "im2col_pm1",
]

MAX_WORD_BITS = 1024
MAX_ACC_BITS = 64
MAX_ARRAY_DIM = 64


def _check_int(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise HdlError(f"{name} must be an integer, got {value!r}")
    if not low <= int(value) <= high:
        raise HdlError(f"{name}={value} is outside the supported range {low}..{high}")
    return int(value)


def _rejected(component) -> None:
    """Mark a component whose parameters were refused as used, so Amaranth does not warn about it."""
    component._MustUse__used = True


def dot_bits(word_bits: int) -> int:
    """Width of a signed value holding one word's dot product, which lies in [-word_bits, word_bits]."""
    return int(word_bits).bit_length() + 1


def acc_bits_for(k: int) -> int:
    """Smallest signed accumulator width holding any {-1,+1} dot product of length ``k``."""
    return int(k).bit_length() + 1


def _popcount(bits):
    """Balanced adder tree over single bits: depth log2(n), each level one bit wider."""
    level = [bit.as_unsigned() for bit in bits]
    while len(level) > 1:
        paired = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def xnor_dot(m: Module, a, w, n_valid, word_bits: int):
    """Add to ``m`` the combinational {-1,+1} dot product of the low ``n_valid`` bits of ``a`` and ``w``."""
    mask = Cat(*[n_valid > i for i in range(word_bits)])
    agree = Signal(word_bits)
    m.d.comb += agree.eq(~(a ^ w) & mask)
    dot = Signal(signed(dot_bits(word_bits)))
    m.d.comb += dot.eq((_popcount(agree) << 1) - n_valid)
    return dot


class XnorPopcountPE(wiring.Component):
    """One binarized PE: ``dot`` of the current words (combinational) and a registered accumulator.

    Ports: ``a``, ``w`` packed words; ``n_valid`` (0..word_bits) valid low bits this beat (a larger
    value, which the port can hold unless word_bits + 1 is a power of two, counts every bit and still
    subtracts n_valid: outside the contract); ``en`` accumulates the beat; ``clear`` starts a new sum
    (with ``en``: acc <= dot, without: acc <= 0); ``rst`` clears ``acc``.
    ``acc`` wraps modulo 2**acc_bits: choose ``acc_bits >= acc_bits_for(K)``.
    """

    def __init__(self, word_bits: int = 32, acc_bits: int = 16):
        try:
            self.word_bits = _check_int("word_bits", word_bits, 1, MAX_WORD_BITS)
            self.acc_bits = _check_int("acc_bits", acc_bits, dot_bits(self.word_bits), MAX_ACC_BITS)
        except HdlError:
            _rejected(self)
            raise
        super().__init__({
            "a": In(self.word_bits),
            "w": In(self.word_bits),
            "n_valid": In(range(self.word_bits + 1)),
            "en": In(1),
            "clear": In(1),
            "dot": Out(signed(dot_bits(self.word_bits))),
            "acc": Out(signed(self.acc_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        dot = xnor_dot(m, self.a, self.w, self.n_valid, self.word_bits)
        m.d.comb += self.dot.eq(dot)
        base = Mux(self.clear, 0, self.acc)
        with m.If(self.en):
            m.d.sync += self.acc.eq(base + dot)
        with m.Elif(self.clear):
            m.d.sync += self.acc.eq(0)
        return m


class XnorPopcountArray(wiring.Component):
    """``rows`` x ``cols`` XNOR-popcount PEs; PE (r, c) accumulates the dot of ``a[r]`` and ``w[c]``.

    Operands are broadcast along rows and columns (output stationary): one beat feeds one packed word
    of the reduction to every PE, so a K-long reduction takes ceil(K / word_bits) beats and ``acc[r][c]``
    holds the result one clock after the last beat. ``n_valid``, ``en`` and ``clear`` are shared.
    """

    def __init__(self, rows: int, cols: int, word_bits: int = 32, acc_bits: int = 16):
        try:
            self.rows = _check_int("rows", rows, 1, MAX_ARRAY_DIM)
            self.cols = _check_int("cols", cols, 1, MAX_ARRAY_DIM)
            self.word_bits = _check_int("word_bits", word_bits, 1, MAX_WORD_BITS)
            self.acc_bits = _check_int("acc_bits", acc_bits, dot_bits(self.word_bits), MAX_ACC_BITS)
        except HdlError:
            _rejected(self)
            raise
        super().__init__({
            "a": In(self.word_bits).array(self.rows),
            "w": In(self.word_bits).array(self.cols),
            "n_valid": In(range(self.word_bits + 1)),
            "en": In(1),
            "clear": In(1),
            "acc": Out(signed(self.acc_bits)).array(self.rows, self.cols),
        })

    def elaborate(self, platform):
        m = Module()
        for r in range(self.rows):
            for c in range(self.cols):
                pe = XnorPopcountPE(self.word_bits, self.acc_bits)
                m.submodules[f"pe_{r}_{c}"] = pe
                m.d.comb += [
                    pe.a.eq(self.a[r]),
                    pe.w.eq(self.w[c]),
                    pe.n_valid.eq(self.n_valid),
                    pe.en.eq(self.en),
                    pe.clear.eq(self.clear),
                    self.acc[r][c].eq(pe.acc),
                ]
        return m


class ThresholdUnit(wiring.Component):
    """Batch norm + sign folded into an integer compare: ``out[c] = (dot[c] >= thr[c]) xor flip[c]``.

    ``out`` packs the ``channels`` 1-bit activations (bit 1 = +1) into one word, ready to be the next
    layer's activation word. Thresholds and flips are ports, loaded per layer (see ``fold_batchnorm``;
    pass it ``k`` so thresholds fit the acc_bits + 1 bits of ``thr``). ``acc_bits`` 2..64.
    Combinational: no clock, no reset.
    """

    def __init__(self, channels: int, acc_bits: int = 16):
        try:
            self.channels = _check_int("channels", channels, 1, MAX_WORD_BITS)
            self.acc_bits = _check_int("acc_bits", acc_bits, 2, MAX_ACC_BITS)
        except HdlError:
            _rejected(self)
            raise
        super().__init__({
            "dot": In(signed(self.acc_bits)).array(self.channels),
            "thr": In(signed(self.acc_bits + 1)).array(self.channels),
            "flip": In(self.channels),
            "out": Out(self.channels),
        })

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.out.eq(Cat(*[(self.dot[c] >= self.thr[c]) ^ self.flip[c]
                                      for c in range(self.channels)]))
        return m


class XnorThresholdArray(wiring.Component):
    """A binarized layer engine: an ``XnorPopcountArray`` whose sums go through per-column thresholds.

    Columns are output channels, so ``thr[c]`` and ``flip[c]`` are shared by all rows; ``out[r]``
    packs row r's ``cols`` 1-bit activations (combinational from the registered ``acc``).
    """

    def __init__(self, rows: int, cols: int, word_bits: int = 32, acc_bits: int = 16):
        try:
            self.array = XnorPopcountArray(rows, cols, word_bits, acc_bits)
        except HdlError:
            _rejected(self)
            raise
        self.rows, self.cols, self.word_bits, self.acc_bits = rows, cols, word_bits, acc_bits
        super().__init__({
            "a": In(word_bits).array(rows),
            "w": In(word_bits).array(cols),
            "n_valid": In(range(word_bits + 1)),
            "en": In(1),
            "clear": In(1),
            "thr": In(signed(acc_bits + 1)).array(cols),
            "flip": In(cols),
            "acc": Out(signed(acc_bits)).array(rows, cols),
            "out": Out(cols).array(rows),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.array = array = self.array
        m.d.comb += [array.n_valid.eq(self.n_valid), array.en.eq(self.en), array.clear.eq(self.clear)]
        m.d.comb += [array.a[r].eq(self.a[r]) for r in range(self.rows)]
        m.d.comb += [array.w[c].eq(self.w[c]) for c in range(self.cols)]
        for r in range(self.rows):
            unit = ThresholdUnit(self.cols, self.acc_bits)
            m.submodules[f"threshold_{r}"] = unit
            m.d.comb += [unit.flip.eq(self.flip), self.out[r].eq(unit.out)]
            for c in range(self.cols):
                m.d.comb += [unit.dot[c].eq(array.acc[r][c]), unit.thr[c].eq(self.thr[c]),
                             self.acc[r][c].eq(array.acc[r][c])]
        return m


def fold_batchnorm(gamma, beta, mean, var, eps: float = 1e-5, *, k: int | None = None):
    """Fold ``sign(BN(x))`` over an integer dot ``x`` into ``(thresholds, flips)`` (sign(0) = +1).

    BN(x) = gamma * (x - mean) / sqrt(var + eps) + beta >= 0  <=>  with tau = mean - beta * sigma / gamma,
    gamma > 0: x >= ceil(tau)             -> thr = ceil(tau),      flip = 0;
    gamma < 0: x <= tau <=> not x >= floor(tau) + 1 -> thr = floor(tau) + 1, flip = 1;
    gamma = 0: constant sign(beta)        -> thr = always-true,    flip = (beta < 0).
    With ``k`` (the reduction length, |x| <= k) thresholds are clamped to [-k, k + 1], so they fit
    a ``ThresholdUnit`` with ``acc_bits >= acc_bits_for(k)``; without it, always-true is -2**31.
    """
    arrays = [np.asarray(v, dtype=np.float64) for v in (gamma, beta, mean, var)]
    try:
        gamma, beta, mean, var = np.broadcast_arrays(*arrays)
    except ValueError:
        raise HdlError("fold_batchnorm: gamma, beta, mean and var have incompatible shapes") from None
    if not all(np.all(np.isfinite(v)) for v in (gamma, beta, mean, var)) or not np.isfinite(eps):
        raise HdlError("fold_batchnorm: batch-norm parameters must be finite")
    if np.any(var + eps <= 0):
        raise HdlError("fold_batchnorm: var + eps must be positive")
    sigma = np.sqrt(var + eps)
    safe_gamma = np.where(gamma == 0, 1.0, gamma)
    with np.errstate(over="ignore"):  # |tau| overflowing to inf still clips to always/never
        tau = mean - beta * sigma / safe_gamma
    lowest = -(2**31) if k is None else -int(k)
    highest = 2**31 - 1 if k is None else int(k) + 1
    thr = np.where(gamma > 0, np.ceil(tau), np.floor(tau) + 1)
    thr = np.where(gamma == 0, lowest, thr)
    thr = np.clip(thr, lowest, highest).astype(np.int64)
    flips = np.where(gamma == 0, beta < 0, gamma < 0).astype(np.uint8)
    return thr, flips


# --- numpy golden models -------------------------------------------------------------------------

def to_bits(pm1) -> np.ndarray:
    """{-1,+1} array -> {0,1} bits (1 = +1)."""
    arr = np.asarray(pm1)
    if not np.all((arr == 1) | (arr == -1)):
        raise HdlError("binarized values must be -1 or +1")
    return (arr > 0).astype(np.uint8)


def pack_words(bits, word_bits: int) -> np.ndarray:
    """Pack the last axis of a {0,1} array into little-endian words (bit i of word j = element j*wb+i).

    Returns shape (..., ceil(K / word_bits)) of Python ints (object dtype) so any word width fits.
    """
    bits = np.asarray(bits, dtype=np.uint8)
    k = bits.shape[-1]
    n_words = -(-k // word_bits)
    padded = np.zeros(bits.shape[:-1] + (n_words * word_bits,), dtype=np.uint8)
    padded[..., :k] = bits
    grouped = padded.reshape(bits.shape[:-1] + (n_words, word_bits))
    out = np.zeros(grouped.shape[:-1], dtype=object)
    for i in range(word_bits):
        out = out + (grouped[..., i].astype(object) << i)
    return out


def valid_bits_per_word(k: int, word_bits: int) -> list[int]:
    """``n_valid`` of each beat of a K-long reduction: full words then the remainder."""
    n_words = -(-k // word_bits)
    return [min(word_bits, k - j * word_bits) for j in range(n_words)]


def xnor_popcount_dot(a_word: int, w_word: int, n_valid: int) -> int:
    """Golden model of one PE beat: 2 * popcount(xnor(a, w) & mask) - n_valid."""
    mask = (1 << n_valid) - 1
    agree = ~(int(a_word) ^ int(w_word)) & mask
    return 2 * bin(agree).count("1") - n_valid


def im2col_pm1(x, kernel: int, stride: int = 1, pad: int = 0, pad_value: int = -1) -> np.ndarray:
    """im2col of a +-1 tensor x[C, H, W] -> patches[P, C * kernel * kernel], order (c, ky, kx).

    Padding uses ``pad_value`` (+-1: a binarized net has no zero), rows in raster order of outputs.
    """
    x = np.asarray(x)
    c, h, w = x.shape
    xp = np.full((c, h + 2 * pad, w + 2 * pad), pad_value, dtype=np.int64)
    xp[:, pad:pad + h, pad:pad + w] = x
    oh = (h + 2 * pad - kernel) // stride + 1
    ow = (w + 2 * pad - kernel) // stride + 1
    rows = []
    for oy in range(oh):
        for ox in range(ow):
            patch = xp[:, oy * stride:oy * stride + kernel, ox * stride:ox * stride + kernel]
            rows.append(patch.reshape(-1))
    return np.array(rows, dtype=np.int64)
