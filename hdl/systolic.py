"""Weight-stationary and output-stationary systolic arrays of ``rows`` x ``cols`` integer PEs.

Operand skew is inside the arrays, so their users present and receive whole, unskewed rows:
  - ``WsArray`` takes one row of A per edge (A[i, 0..rows-1]) and returns the matching row of
    C = A @ W a fixed ``rows + cols - 1`` register stages later, deskewed, with ``out_valid``.
  - ``OsArray`` takes one column of A and one row of B per edge and accumulates their outer product
    in place; the last product of a beat lands ``rows + cols - 1`` edges after the beat's edge. A
    finished tile is copied into a result bank that drains row by row while the next tile computes.
The timing of each is derived term by term in docs/core-protocol.md. Both are built from an
``ArrayConfig`` (shape, a ``codesign.pe.PeSpec``, the reduction length, the DSP split); which one a
``GemmCore`` instantiates is looked up in ``hdl.arrays.ARRAY_KINDS``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from amaranth.hdl import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from codesign.errors import HdlError
from codesign.pe import PeSpec
from hdl.pe import OsPe, WsPe, accumulator_shape, activation_shape, check_pe, weight_shape

__all__ = ["ArrayConfig", "WsArray", "OsArray"]


def _check_size(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise HdlError(f"array {name}={value!r} must be a positive integer")


@dataclass(frozen=True)
class ArrayConfig:
    """Array shape, the PE it is built from, the reduction its accumulators hold, and how many PEs
    get a hard multiplier.

    ``pe`` is an integer-MAC ``codesign.pe.PeSpec``; ``reduction`` the longest sum of products one
    accumulator sees (WS: the rows; OS: the largest streamed k), which sets the accumulator width.
    ``dsp_pes`` = None gives every PE ``pe.multiplier``; an int gives the first ``dsp_pes`` PEs
    (row-major) ``"dsp"`` and the rest ``"logic"`` (for FPGAs with fewer DSP blocks than PEs).
    Raises HdlError / BitWidthError for what the generator cannot build.
    """

    rows: int
    cols: int
    reduction: int
    pe: PeSpec = field(default_factory=PeSpec)
    dsp_pes: int | None = None

    def __post_init__(self) -> None:
        _check_size("rows", self.rows)
        _check_size("cols", self.cols)
        check_pe(self.pe, self.reduction, "a systolic array")
        if self.dsp_pes is not None and (
            isinstance(self.dsp_pes, bool) or not isinstance(self.dsp_pes, int) or not 0 <= self.dsp_pes <= self.rows * self.cols
        ):
            raise HdlError(f"dsp_pes={self.dsp_pes!r} must be between 0 and rows*cols={self.rows * self.cols}")

    def pe_at(self, row: int, col: int) -> PeSpec:
        """The spec of PE(row, col): ``pe``, with its multiplier set by ``dsp_pes`` if that is given."""
        if self.dsp_pes is None:
            return self.pe
        return dataclasses.replace(self.pe, multiplier="dsp" if row * self.cols + col < self.dsp_pes else "logic")

    @property
    def dsp_count(self) -> int:
        """PEs whose multiplier is a DSP block."""
        return sum(self.pe_at(r, c).multiplier == "dsp" for r in range(self.rows) for c in range(self.cols))

    @property
    def weight_shape(self):
        return weight_shape(self.pe)

    @property
    def activation_shape(self):
        return activation_shape(self.pe)

    @property
    def accumulator_shape(self):
        return accumulator_shape(self.pe, self.reduction)


def _delay(m: Module, value, stages: int, name: str):
    """``value`` through ``stages`` registers (none: ``value`` itself)."""
    current = value
    for stage in range(stages):
        reg = Signal.like(value, name=f"{name}_d{stage}") if hasattr(value, "shape") else Signal(len(value), name=f"{name}_d{stage}")
        m.d.sync += reg.eq(current)
        current = reg
    return current


class WsArray(wiring.Component):
    """Weight-stationary array: PE(r, c) holds W[r, c]; activations flow right, partial sums down.

    ``acts`` (one row of A) presented on the edge where ``in_valid`` is high enters row skew
    registers (row r delayed r edges); the bottom partial sums are deskewed (column c delayed
    ``cols - 1 - c`` edges), so the row of results is on ``psums`` with ``out_valid`` high during
    the cycle after edge ``e + OUTPUT_STAGES - 1``, where e is the input edge. Bit r of
    ``weight_load`` loads ``weights`` into PE row r. Built of ``WsPe`` from ``config`` (an
    ``ArrayConfig``; HdlError otherwise).
    """

    def __init__(self, config: ArrayConfig):
        if not isinstance(config, ArrayConfig):
            raise HdlError(f"WsArray needs an ArrayConfig, not {type(config).__name__}")
        self.config = config
        super().__init__(
            {
                "acts": In(data.ArrayLayout(config.activation_shape, config.rows)),
                "in_valid": In(1),
                "weights": In(data.ArrayLayout(config.weight_shape, config.cols)),
                "weight_load": In(config.rows),
                "psums": Out(data.ArrayLayout(config.accumulator_shape, config.cols)),
                "out_valid": Out(1),
            }
        )

    @property
    def output_stages(self) -> int:
        """Register stages from ``acts`` to ``psums``: PE(0,0)'s product, rows-1 down, cols-1 right-or-deskew
        (each PE's own partial-sum register is its product stage moved, the last one taken on ``psum_next``)."""
        return self.config.rows + self.config.cols - 1

    def elaborate(self, platform):
        m = Module()
        rows, cols = self.config.rows, self.config.cols
        pes = [[WsPe(self.config.pe_at(r, c), self.config.reduction, pipelined=True) for c in range(cols)]
               for r in range(rows)]
        for r in range(rows):
            for c in range(cols):
                m.submodules[f"pe_{r}_{c}"] = pes[r][c]
                pe = pes[r][c]
                m.d.comb += [pe.weight_in.eq(self.weights[c]), pe.weight_load.eq(self.weight_load[r])]
                if c == 0:
                    m.d.comb += pe.act_in.eq(_delay(m, self.acts[r], r, f"skew_r{r}"))
                else:
                    m.d.comb += pe.act_in.eq(pes[r][c - 1].act_out)
                if r == 0:
                    m.d.comb += pe.psum_in.eq(0)
                else:
                    m.d.comb += pe.psum_in.eq(pes[r - 1][c].psum_out)
        # The product stage adds one edge to every partial sum; the last deskew register gives it back: the
        # row leaves on the edge column cols-1 computes it (its ``psum_next``), the other columns one
        # register short of their deskew (``psum_out`` is ``psum_next`` one edge later).
        for c in range(cols):
            bottom = pes[rows - 1][c]
            last = bottom.psum_next if c == cols - 1 else _delay(m, bottom.psum_out, cols - 2 - c, f"deskew_c{c}")
            m.d.comb += self.psums[c].eq(last)
        m.d.comb += self.out_valid.eq(_delay(m, self.in_valid, self.output_stages, "valid"))
        return m


class OsArray(wiring.Component):
    """Output-stationary array: PE(r, c) accumulates C[r, c]; A moves right, B moves down.

    ``acts`` (a column of A) and ``weights`` (a row of B) enter the skew as they are, with one valid
    bit per lane (``act_valid`` bit r: lane r carries a beat; ``weight_valid`` bit c: lane c is in the
    tile) travelling beside them; each PE registers its product, zero unless both bits are set, so the
    beat handshake never sits in front of a multiplier. A is skewed by row, B by column, so PE(r, c)
    registers A[r, t] * B[t, c] on edge e + r + c and adds it on edge e + 1 + r + c for the beat on edge e. ``clear`` zeroes all accumulators. ``copy`` moves the
    accumulators, as this edge's MACs leave them, one row up into the result bank (row r of the bank
    takes accumulator row r + 1, zeros at the bottom) while ``top_row`` (accumulator row 0, this
    edge's MAC included) is taken by the caller on that edge, so the copy may share the last MAC's edge;
    ``bank_shift`` moves the bank up one row, and ``bank_top`` is its row 0. So the m rows of a tile
    leave as ``top_row`` on the copy edge, then ``bank_top`` on m - 1 shifts, while the
    accumulators are cleared and reused (docs/core-protocol.md, "Overlap"). Built of ``OsPe`` from
    ``config`` (an ``ArrayConfig``; HdlError otherwise).
    """

    def __init__(self, config: ArrayConfig):
        if not isinstance(config, ArrayConfig):
            raise HdlError(f"OsArray needs an ArrayConfig, not {type(config).__name__}")
        self.config = config
        super().__init__(
            {
                "acts": In(data.ArrayLayout(config.activation_shape, config.rows)),
                "act_valid": In(config.rows),
                "weights": In(data.ArrayLayout(config.weight_shape, config.cols)),
                "weight_valid": In(config.cols),
                "clear": In(1),
                "copy": In(1),
                "bank_shift": In(1),
                "top_row": Out(data.ArrayLayout(config.accumulator_shape, config.cols)),
                "bank_top": Out(data.ArrayLayout(config.accumulator_shape, config.cols)),
            }
        )

    @property
    def last_mac_delay(self) -> int:
        """Edges from a beat's edge to its last MAC (PE(rows-1, cols-1)): product register + skew + hops."""
        return self.config.rows + self.config.cols - 1

    def elaborate(self, platform):
        m = Module()
        rows, cols = self.config.rows, self.config.cols
        pes = [[OsPe(self.config.pe_at(r, c), self.config.reduction, pipelined=True) for c in range(cols)]
               for r in range(rows)]
        for r in range(rows):
            for c in range(cols):
                m.submodules[f"pe_{r}_{c}"] = pe = pes[r][c]
                m.d.comb += [pe.clear.eq(self.clear), pe.copy.eq(self.copy), pe.bank_shift.eq(self.bank_shift)]
                if c == 0:
                    m.d.comb += [pe.act_in.eq(_delay(m, self.acts[r], r, f"skew_r{r}")),
                                 pe.act_valid_in.eq(_delay(m, self.act_valid[r], r, f"skew_valid_r{r}"))]
                else:
                    m.d.comb += [pe.act_in.eq(pes[r][c - 1].act_out), pe.act_valid_in.eq(pes[r][c - 1].act_valid_out)]
                if r == 0:
                    m.d.comb += [pe.weight_in.eq(_delay(m, self.weights[c], c, f"skew_c{c}")),
                                 pe.weight_valid_in.eq(_delay(m, self.weight_valid[c], c, f"skew_valid_c{c}"))]
                else:
                    m.d.comb += [pe.weight_in.eq(pes[r - 1][c].weight_out),
                                 pe.weight_valid_in.eq(pes[r - 1][c].weight_valid_out)]
                m.d.comb += [pe.acc_in.eq(pes[r + 1][c].acc_next if r + 1 < rows else 0),
                             pe.held_in.eq(pes[r + 1][c].held if r + 1 < rows else 0)]
        for c in range(cols):
            m.d.comb += [self.top_row[c].eq(pes[0][c].acc_next), self.bank_top[c].eq(pes[0][c].held)]
        return m
