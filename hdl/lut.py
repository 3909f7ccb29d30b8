"""LUT-based activations: a ROM of a numpy function sampled on a fixed input grid, quantized to codes.

Quantization (both sides affine, endpoints exactly on the grid):
  input code q in [0, 2**in_bits - 1]  ->  x(q) = in_lo + q * in_step,  in_step = (in_hi - in_lo) / (2**in_bits - 1)
  table[q] = clip(floor((f(x(q)) - out_lo) / out_step + 1/2), 0, 2**out_bits - 1)   (round half up)
  output code y -> out_lo + y * out_step,  out_step = (out_hi - out_lo) / (2**out_bits - 1)
On the grid the dequantized table is within out_step / 2 of f wherever f stays inside out_range
(clipping adds the distance by which f leaves it); ``error_bound()`` states this per instance.
A two's-complement input with a range symmetric around 0, in_range = (-2**(n-1) * s, (2**(n-1) - 1) * s),
becomes the address by inverting its top bit (offset binary).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from codesign.errors import HdlError

__all__ = ["MAX_IN_BITS", "MAX_OUT_BITS", "FUNCTIONS", "TYPICAL_RANGES", "LutActivation", "lut_table"]

MAX_IN_BITS = 14
MAX_OUT_BITS = 32

_erf = np.frompyfunc(math.erf, 1, 1)


def _gelu(x):
    """GELU with the exact Gaussian CDF (Hendrycks & Gimpel, 2016): x * Phi(x)."""
    return x * 0.5 * (1.0 + _erf(np.asarray(x, dtype=np.float64) / math.sqrt(2.0)).astype(np.float64))


FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
    "gelu": _gelu,
    "silu": lambda x: x / (1.0 + np.exp(-x)),
    # h-swish (Howard et al., MobileNetV3, 2019): x * relu6(x + 3) / 6
    "hswish": lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0,
    "exp": np.exp,
}


# (in_range, out_range) per named function: where it does its work, and an output range holding it there
# (`codesign hdl --unit lut` uses them when --in-range / --out-range are not given).
TYPICAL_RANGES: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "sigmoid": ((-8.0, 8.0), (0.0, 1.0)),
    "tanh": ((-4.0, 4.0), (-1.0, 1.0)),
    "gelu": ((-4.0, 4.0), (-0.2, 4.0)),  # min of GELU: about -0.170
    "silu": ((-6.0, 6.0), (-0.3, 6.0)),  # min of SiLU: about -0.278
    "hswish": ((-4.0, 4.0), (-0.4, 4.0)),  # min of h-swish: -0.375
    "exp": ((-8.0, 2.0), (0.0, float(np.exp(2.0)))),
}


def _check_bits(name: str, value, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise HdlError(f"{name} must be an integer, got {value!r}")
    if not 1 <= int(value) <= high:
        raise HdlError(f"{name}={value} is outside the supported range 1..{high}")
    return int(value)


def _check_range(name: str, value) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise HdlError(f"{name} must be a pair (low, high) of numbers, got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or not lo < hi:
        raise HdlError(f"{name}=({lo}, {hi}) must be finite with low < high")
    return lo, hi


class LutActivation(wiring.Component):
    """ROM activation: ``y = table[x]``, registered (latency 1, block RAM on FPGAs) or combinational.

    ``function`` is a name from ``FUNCTIONS`` or a numpy callable. Ports: ``x`` (in_bits, the input
    code), ``y`` (out_bits, the output code). ``latency``: 1 = synchronous read (``rst`` unused: after
    every edge y = table[x at that edge], in reset or not), 0 = asynchronous (no clock, no reset).
    """

    def __init__(self, function, in_bits: int, out_bits: int, in_range, out_range, *, latency: int = 1):
        try:
            self._configure(function, in_bits, out_bits, in_range, out_range, latency)
        except HdlError:
            self._MustUse__used = True  # a rejected design is not an unused one: no warning
            raise
        super().__init__({"x": In(self.in_bits), "y": Out(self.out_bits)})

    def _configure(self, function, in_bits, out_bits, in_range, out_range, latency) -> None:
        if isinstance(function, str):
            if function not in FUNCTIONS:
                raise HdlError(f"unknown LUT function {function!r}; known: {', '.join(sorted(FUNCTIONS))}")
            self.name, self.function = function, FUNCTIONS[function]
        elif callable(function):
            self.name, self.function = getattr(function, "__name__", "function"), function
        else:
            raise HdlError(f"LUT function must be a name or a callable, got {function!r}")
        self.in_bits = _check_bits("in_bits", in_bits, MAX_IN_BITS)
        self.out_bits = _check_bits("out_bits", out_bits, MAX_OUT_BITS)
        self.in_range = _check_range("in_range", in_range)
        self.out_range = _check_range("out_range", out_range)
        if latency not in (0, 1):
            raise HdlError(f"latency must be 0 or 1, got {latency!r}")
        self.latency = latency
        self.in_step = (self.in_range[1] - self.in_range[0]) / (2**self.in_bits - 1)
        self.out_step = (self.out_range[1] - self.out_range[0]) / (2**self.out_bits - 1)
        self._values = self._evaluate()
        self._table = self._quantize(self._values)

    def grid(self) -> np.ndarray:
        """Real input x(q) of every address q."""
        return self.in_range[0] + np.arange(2**self.in_bits, dtype=np.float64) * self.in_step

    def _call(self, x: np.ndarray) -> np.ndarray:
        try:
            with np.errstate(all="ignore"):
                values = np.asarray(self.function(x), dtype=np.float64)
        except Exception as exc:  # a user callable may fail in any way; report it as bad input
            raise HdlError(f"LUT function {self.name} failed on its input range: {exc}") from None
        if values.shape != x.shape:
            raise HdlError(f"LUT function {self.name} must map an array elementwise "
                           f"(got shape {values.shape} for {x.shape})")
        bad = ~np.isfinite(values)
        if bad.any():
            raise HdlError(f"LUT function {self.name} is not finite over in_range {self.in_range} "
                           f"(e.g. at x={x[bad][0]:g})")
        return values

    def _evaluate(self) -> np.ndarray:
        """f on the grid; finiteness is also checked on a 16x finer grid and at 0, where poles sit."""
        lo, hi = self.in_range
        probe = np.linspace(lo, hi, 16 * 2**self.in_bits + 1)
        if lo < 0 < hi:
            probe = np.append(probe, 0.0)
        self._call(probe)
        return self._call(self.grid())

    def _quantize(self, values: np.ndarray) -> np.ndarray:
        codes = np.floor((values - self.out_range[0]) / self.out_step + 0.5)
        return np.clip(codes, 0, 2**self.out_bits - 1).astype(np.int64)

    def table(self) -> np.ndarray:
        """The ROM contents: output code of every input code (int64)."""
        return self._table.copy()

    def quantize_input(self, x) -> np.ndarray:
        """Nearest input code of real inputs (saturating at the range ends)."""
        q = np.floor((np.asarray(x, dtype=np.float64) - self.in_range[0]) / self.in_step + 0.5)
        return np.clip(q, 0, 2**self.in_bits - 1).astype(np.int64)

    def dequantize(self, codes) -> np.ndarray:
        """Real value of output codes."""
        return self.out_range[0] + np.asarray(codes, dtype=np.float64) * self.out_step

    def table_error(self) -> float:
        """Largest |dequantized table - f| over the input grid."""
        return float(np.max(np.abs(self.dequantize(self._table) - self._values)))

    def error_bound(self) -> float:
        """Stated bound on ``table_error``: out_step / 2 plus how far f leaves out_range on the grid."""
        lo, hi = self.out_range
        overshoot = np.maximum(np.maximum(lo - self._values, self._values - hi), 0.0)
        return self.out_step / 2 + float(np.max(overshoot))

    def elaborate(self, platform):
        m = Module()
        m.submodules.rom = rom = memory.Memory(shape=self.out_bits, depth=2**self.in_bits,
                                               init=[int(v) for v in self._table])
        port = rom.read_port(domain="sync" if self.latency else "comb")
        m.d.comb += [port.addr.eq(self.x), self.y.eq(port.data)]
        return m


def lut_table(function, in_bits: int, out_bits: int, in_range, out_range) -> np.ndarray:
    """The ROM contents of ``LutActivation(function, in_bits, out_bits, in_range, out_range)`` (int64 output code of
    every input code), without building a design: the table a compiler or golden model uses is the RTL's."""
    unit = LutActivation(function, in_bits, out_bits, in_range, out_range)
    unit._MustUse__used = True  # only its table is wanted; it is never elaborated
    return unit.table()
