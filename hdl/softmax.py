"""Streaming softmax unit: max-subtract, exp LUT, accumulate, reciprocal LUT, multiply.

The structure (subtract the running max so exp never overflows, exp from a table, one reciprocal of
the sum, one multiply per element) is the usual LUT softmax of FPGA/ASIC accelerators, e.g.
B. Yuan, "Efficient hardware architecture of softmax layer in deep neural network", SOCC 2016, and
J. R. Stevens et al., "Softermax", DAC 2021. The bit-exact model and the error bound below are this
module's own derivation (docs/hdl-units.md).

Numbers: input codes x_i are signed ``in_bits`` integers, real value x_i * in_scale.
  d_i  = max_j x_j - x_i                               (0 .. 2**in_bits - 1)
  e_i  = EXP[min(d_i, 2**exp_in_bits - 1)]             EXP[q] = round((2**exp_bits - 1) * exp(-q * in_scale))
  S    = sum_i e_i = M * 2**p, M in [1, 2)             (p = index of S's leading one; S >= 2**exp_bits - 1)
  a    = the recip_in_bits bits of S below its leading one (M truncated)
  r    = RECIP[a] = round(2**(recip_bits-1) / (1 + (a + 1/2) / 2**recip_in_bits))   (interval midpoint)
  y_i  = min(round_half_up(e_i * r / 2**(p + recip_bits - 1 - out_bits)), 2**out_bits - 1)
Output y_i is unsigned ``out_bits`` with real value y_i / 2**out_bits.
"""

from __future__ import annotations

import math

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from codesign.errors import HdlError
from hdl.lut import LutActivation

__all__ = ["MAX_VECTOR", "SoftmaxUnit"]

MAX_VECTOR = 4096


def _int_param(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise HdlError(f"{name} must be an integer, got {value!r}")
    if not low <= int(value) <= high:
        raise HdlError(f"{name}={value} is outside the supported range {low}..{high}")
    return int(value)


def _neg_exp(t):
    return np.exp(-np.asarray(t, dtype=np.float64))


def _reciprocal_of_mantissa(t):
    return 1.0 / (1.0 + np.asarray(t, dtype=np.float64))


class SoftmaxUnit(wiring.Component):
    """Softmax over vectors of 1..``n_max`` signed codes, streamed in and streamed out.

    Ports: ``x``/``x_valid``/``x_last``/``x_ready`` in (a vector ends at ``x_last`` or at its
    ``n_max``-th element); ``y``/``y_valid``/``y_last``/``y_ready`` out. A vector of n elements takes
    n load edges, n + 2 exp edges, 2 normalize edges, and n output edges while ``y_ready`` is high: its
    last output transfers 3n + 3 edges after the edge accepting its first element, and the next vector's
    first element is accepted one edge later (period 3n + 4; docs/hdl-units.md).
    """

    def __init__(self, n_max: int = 16, *, in_bits: int = 8, in_scale: float = 1 / 16,
                 exp_in_bits: int = 8, exp_bits: int = 12, recip_in_bits: int = 8,
                 recip_bits: int = 12, out_bits: int = 8):
        try:
            self.n_max = _int_param("n_max", n_max, 1, MAX_VECTOR)
            self.in_bits = _int_param("in_bits", in_bits, 2, 16)
            self.exp_in_bits = _int_param("exp_in_bits", exp_in_bits, 1, 12)
            self.exp_bits = _int_param("exp_bits", exp_bits, 2, 24)
            self.recip_in_bits = _int_param("recip_in_bits", recip_in_bits, 1, min(12, self.exp_bits - 1))
            self.recip_bits = _int_param("recip_bits", recip_bits, 2, 24)
            self.out_bits = _int_param("out_bits", out_bits, 1, 24)
            if not (isinstance(in_scale, (int, float)) and math.isfinite(in_scale) and in_scale > 0):
                raise HdlError(f"in_scale must be a positive finite number, got {in_scale!r}")
            self.in_scale = float(in_scale)
            if self.exp_bits + self.recip_bits < self.out_bits + 3:
                raise HdlError(f"exp_bits + recip_bits ({self.exp_bits} + {self.recip_bits}) must be at "
                               f"least out_bits + 3 = {self.out_bits + 3}")
            e_max = 2**self.exp_in_bits - 1
            self.exp_lut = LutActivation(_neg_exp, self.exp_in_bits, self.exp_bits,
                                         (0.0, e_max * self.in_scale), (0.0, 1.0))
            half = 0.5 / 2**self.recip_in_bits
            r_one = 2**(self.recip_bits - 1)
            self.recip_lut = LutActivation(_reciprocal_of_mantissa, self.recip_in_bits, self.recip_bits,
                                           (half, 1.0 - half), (0.0, (2**self.recip_bits - 1) / r_one))
        except HdlError:
            self._MustUse__used = True  # a rejected design is not an unused one: no warning
            raise
        self.sum_bits = (self.n_max * (2**self.exp_bits - 1)).bit_length()
        super().__init__({
            "x": In(signed(self.in_bits)),
            "x_valid": In(1),
            "x_last": In(1),
            "x_ready": Out(1),
            "y": Out(self.out_bits),
            "y_valid": Out(1),
            "y_last": Out(1),
            "y_ready": In(1),
        })

    # --- numpy models ----------------------------------------------------------------------------

    def _check_vector(self, codes) -> np.ndarray:
        x = np.asarray(codes)
        if x.ndim != 1 or not 1 <= x.size <= self.n_max:
            raise HdlError(f"softmax input must be a vector of 1..{self.n_max} codes, got shape {x.shape}")
        low, high = -(2**(self.in_bits - 1)), 2**(self.in_bits - 1) - 1
        if not np.issubdtype(x.dtype, np.integer) or x.min() < low or x.max() > high:
            raise HdlError(f"softmax input codes must be integers in {low}..{high}")
        return x.astype(np.int64)

    def model(self, codes) -> np.ndarray:
        """Bit-exact model of the unit: output codes of one vector of input codes."""
        x = self._check_vector(codes)
        exp_table, recip_table = self.exp_lut.table(), self.recip_lut.table()
        d = np.minimum(x.max() - x, 2**self.exp_in_bits - 1)
        e = [int(v) for v in exp_table[d]]
        total = sum(e)
        p = total.bit_length() - 1
        a = (total >> (p - self.recip_in_bits)) & (2**self.recip_in_bits - 1)
        r = int(recip_table[a])
        shift = p + self.recip_bits - 1 - self.out_bits - 1
        cap = 2**self.out_bits - 1
        return np.array([min(((ei * r >> shift) + 1) >> 1, cap) for ei in e], dtype=np.int64)

    def reference(self, codes) -> np.ndarray:
        """Float softmax of the dequantized input (what the unit approximates)."""
        x = self._check_vector(codes) * self.in_scale
        z = np.exp(x - x.max())
        return z / z.sum()

    def error_bound(self, n: int) -> float:
        """Bound on |y_i / 2**out_bits - softmax_i| for vectors of length n (docs/hdl-units.md).

        max(delta * (1 + n) / (2**exp_bits - 1) + eps_r + 2**-(out_bits + 1), 2**-out_bits), with delta
        the largest exp-table error in codes (saturation included) and eps_r the largest relative error
        of the reciprocal table over each mantissa interval.
        """
        n = _int_param("n", n, 1, self.n_max)
        one = 2**self.exp_bits - 1
        d = np.arange(2**self.in_bits)
        exact = one * np.exp(-d * self.in_scale)
        table = self.exp_lut.table()[np.minimum(d, 2**self.exp_in_bits - 1)]
        delta = float(np.max(np.abs(table - exact)))
        steps = 2**self.recip_in_bits
        a = np.arange(steps)
        r = self.recip_lut.table() / 2**(self.recip_bits - 1)
        eps_r = float(max(np.max(np.abs(r * (1 + a / steps) - 1)),
                          np.max(np.abs(r * (1 + (a + 1) / steps) - 1))))
        return max(delta * (1 + n) / one + eps_r + 2.0**-(self.out_bits + 1), 2.0**-self.out_bits)

    # --- hardware --------------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        m.submodules.exp_lut = exp_lut = self.exp_lut
        m.submodules.recip_lut = recip_lut = self.recip_lut
        # At least two entries: a one-entry memory has a zero-width address, which Verilog cannot declare.
        depth = max(self.n_max, 2)
        m.submodules.xbuf = xbuf = memory.Memory(shape=signed(self.in_bits), depth=depth, init=[])
        m.submodules.ebuf = ebuf = memory.Memory(shape=self.exp_bits, depth=depth, init=[])
        # synchronous reads, so both buffers map to block RAM
        x_wr, x_rd = xbuf.write_port(), xbuf.read_port()
        e_wr, e_rd = ebuf.write_port(), ebuf.read_port()

        count = Signal(range(self.n_max + 1))      # elements loaded so far / vector length
        idx = Signal(range(self.n_max + 1))        # next element to issue (exp) or send (out)
        x_max = Signal(signed(self.in_bits))
        # exp pipeline: stage 1 has the buffered x (for s1_idx), stage 2 the exp-LUT value (for s2_idx)
        s1_valid, s2_valid = Signal(), Signal()
        s1_idx, s2_idx = Signal(range(depth)), Signal(range(depth))
        total = Signal(self.sum_bits)
        lead = Signal(range(self.sum_bits))
        recip = Signal(self.recip_bits)
        shift = Signal(range(self.sum_bits + self.recip_bits))

        e_sat = 2**self.exp_in_bits - 1
        diff = Signal(self.in_bits + 1)
        m.d.comb += [
            x_wr.addr.eq(count), x_wr.data.eq(self.x),
            x_rd.addr.eq(idx),
            diff.eq(x_max - x_rd.data),
            exp_lut.x.eq(Mux(diff > e_sat, e_sat, diff)),
            e_wr.addr.eq(s2_idx), e_wr.data.eq(exp_lut.y), e_wr.en.eq(s2_valid),
            e_rd.addr.eq(idx),
        ]
        # leading one of the sum, and the recip_in_bits mantissa bits below it
        for i in range(self.sum_bits):
            with m.If(total[i]):
                m.d.comb += lead.eq(i)
        mantissa_shift = Signal(range(self.sum_bits))  # >= 0 in NORM, where S >= 2**(exp_bits - 1)
        m.d.comb += [
            mantissa_shift.eq(lead - self.recip_in_bits),
            recip_lut.x.eq((total >> mantissa_shift)[:self.recip_in_bits]),
        ]

        product = Signal(self.exp_bits + self.recip_bits)
        rounded = Signal(self.exp_bits + self.recip_bits)
        cap = 2**self.out_bits - 1
        m.d.comb += [
            product.eq(e_rd.data * recip),
            rounded.eq(((product >> shift) + 1) >> 1),
            self.y.eq(Mux(rounded > cap, cap, rounded)),
        ]

        with m.FSM():
            with m.State("LOAD"):
                m.d.comb += self.x_ready.eq(1)
                with m.If(self.x_valid):
                    m.d.comb += x_wr.en.eq(1)
                    m.d.sync += count.eq(count + 1)
                    with m.If((count == 0) | (self.x > x_max)):
                        m.d.sync += x_max.eq(self.x)
                    with m.If(self.x_last | (count == self.n_max - 1)):
                        m.d.sync += [idx.eq(0), total.eq(0), count.eq(count + 1)]
                        m.next = "EXP"
            with m.State("EXP"):
                issue = idx < count
                m.d.sync += [s1_valid.eq(issue), s1_idx.eq(idx), s2_valid.eq(s1_valid), s2_idx.eq(s1_idx)]
                with m.If(issue):
                    m.d.sync += idx.eq(idx + 1)
                with m.If(s2_valid):
                    m.d.sync += total.eq(total + exp_lut.y)
                with m.If(~issue & ~s1_valid):
                    m.next = "NORM"
            with m.State("NORM"):
                # recip_lut reads the mantissa address this cycle; the shift follows the leading one
                m.d.sync += shift.eq(lead + self.recip_bits - 1 - self.out_bits - 1)
                m.next = "RECIP"
            with m.State("RECIP"):
                m.d.sync += [recip.eq(recip_lut.y), idx.eq(0)]
                m.d.comb += e_rd.addr.eq(0)
                m.next = "OUT"
            with m.State("OUT"):
                # the buffer read is registered: address the element shown on the next cycle
                last = idx == count - 1
                m.d.comb += [self.y_valid.eq(1), self.y_last.eq(last)]
                with m.If(self.y_ready):
                    m.d.comb += e_rd.addr.eq(idx + 1)
                    m.d.sync += idx.eq(idx + 1)
                    with m.If(last):
                        m.d.sync += count.eq(0)
                        m.next = "LOAD"
        return m
