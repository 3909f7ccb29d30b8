"""The row-stationary PE: filter, input and partial-sum scratchpads and the 1-D row primitive.

One PE convolves ``p`` filters x ``q`` channels of a ``taps``-long filter-row segment over one input row
(Chen, Emer, Sze, ISCA 2016, Sec. IV-A; JSSC 2017): its filter scratchpad holds the ``p*q*taps`` weights of
the pass (a small memory, each entry with its filter, channel and tap; only the nonzero ones when zero
weights are skipped, so the walk visits nothing else), its input scratchpad the sliding window of ``taps``
inputs per channel (registers, advanced ``stride`` inputs per output column), its psum scratchpad the ``p`` sums of
the current output column. One multiplier per PE, one MAC per edge. ``RsParams`` fixes everything the PE
and the array (``hdl.rs_array``) are built from; docs/rs-array.md describes both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amaranth.hdl import Array, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from codesign.contract import rs_timing
from codesign.errors import BitWidthError, HdlError
from codesign.pe import PeKind, PeSpec, accumulator_bits
from hdl.pe import MAX_OPERAND_BITS, MIN_OPERAND_BITS, check_multiplier, product

__all__ = ["RsWidthError", "MAX_ARRAY_SIDE", "MAX_FILTER_RF_WORDS", "MAX_INPUT_RF_WORDS", "MAX_PSUM_RF_WORDS",
           "MAX_OUT_COLS", "MAX_STRIDE", "RsParams", "rs_params_from_arch", "RsPe"]

MAX_ARRAY_SIDE = 64
MAX_FILTER_RF_WORDS = 4096  # a memory per PE
MAX_INPUT_RF_WORDS = 64  # registers shifted every column
MAX_PSUM_RF_WORDS = 64  # registers
MAX_OUT_COLS = 4096  # output columns (Q) of one pass
MAX_STRIDE = 8  # convolution stride of a pass (AlexNet conv1: 4)


class RsWidthError(HdlError, BitWidthError):
    """An operand width outside what the RS generator builds (both a hardware and a bit-width error)."""


def _int_in(name: str, value: Any, low: int, high: int, why: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise HdlError(f"RS array {name}={value!r} must be an integer in {low}..{high}{why}")
    return value


@dataclass(frozen=True)
class RsParams:
    """Everything ``RsArray`` and ``RsPe`` are built from.

    ``rows`` x ``cols`` PEs folded into PE sets of ``set_rows`` (r, filter rows) x ``set_cols`` (e, output
    rows), ``(rows // r) * (cols // e)`` of them (None: one set of the whole array); operand widths 2..16
    and signedness as ``codesign.pe.PeSpec`` spells them; scratchpad words per PE (``*_rf_words``, the spec's);
    ``max_out_cols`` the longest output row (Q) of one pass; ``multiplier`` 'dsp' or 'logic';
    ``skip_zero_weights`` (the filter walk visits nonzero weights only) and ``gate_zero_activations``
    (a zero input does not update the psum); ``max_stride`` the largest convolution stride U a pass may
    command (set row i, set column j reads input row i + U*j, so a set takes ``r + (e-1)*max_stride`` input
    rows). Raises HdlError (RsWidthError for widths).
    """

    rows: int = 3
    cols: int = 4
    set_rows: int | None = None
    set_cols: int | None = None
    weight_bits: int = 8
    activation_bits: int = 8
    weight_signed: bool = True
    activation_signed: bool = True
    weight_rf_words: int = 16
    activation_rf_words: int = 8
    psum_rf_words: int = 4
    max_out_cols: int = 64
    multiplier: str = "dsp"
    skip_zero_weights: bool = False
    gate_zero_activations: bool = False
    max_stride: int = 1

    def __post_init__(self) -> None:
        _int_in("rows", self.rows, 1, MAX_ARRAY_SIDE)
        _int_in("cols", self.cols, 1, MAX_ARRAY_SIDE)
        if self.set_rows is None:
            object.__setattr__(self, "set_rows", self.rows)
        if self.set_cols is None:
            object.__setattr__(self, "set_cols", self.cols)
        _int_in("set_rows", self.set_rows, 1, self.rows, " (the array's rows)")
        _int_in("set_cols", self.set_cols, 1, self.cols, " (the array's columns)")
        for name in ("weight_bits", "activation_bits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not MIN_OPERAND_BITS <= value <= MAX_OPERAND_BITS:
                raise RsWidthError(f"RS array {name}={value!r} is outside the {MIN_OPERAND_BITS}..{MAX_OPERAND_BITS} "
                                   "bits the generator builds")
        for name in ("weight_signed", "activation_signed", "skip_zero_weights", "gate_zero_activations"):
            if not isinstance(getattr(self, name), bool):
                raise HdlError(f"RS array {name}={getattr(self, name)!r} must be True or False")
        low = rs_timing.MIN_SEGMENT_TAPS
        for name, high in (("weight_rf_words", MAX_FILTER_RF_WORDS), ("activation_rf_words", MAX_INPUT_RF_WORDS)):
            value = getattr(self, name)
            if isinstance(value, int) and not isinstance(value, bool) and value < low:
                raise HdlError(f"RS array {name}={value} is too small for any filter-row segment: a PE needs at least "
                               f"{low} words to hold {low} taps of a row")
            _int_in(name, value, low, high)
        _int_in("psum_rf_words", self.psum_rf_words, 1, MAX_PSUM_RF_WORDS)
        _int_in("max_out_cols", self.max_out_cols, 1, MAX_OUT_COLS)
        _int_in("max_stride", self.max_stride, 1, MAX_STRIDE)
        check_multiplier(self.multiplier)

    # -- derived sizes -------------------------------------------------------------------------------------
    @property
    def sets_down(self) -> int:
        return self.rows // self.set_rows

    @property
    def sets_across(self) -> int:
        return self.cols // self.set_cols

    @property
    def sets(self) -> int:
        """PE sets running concurrently: ``(rows // r) * (cols // e)``."""
        return self.sets_down * self.sets_across

    @property
    def pes(self) -> int:
        """PEs built: those inside a set (the rest of a ragged fold would never be used)."""
        return self.sets * self.set_rows * self.set_cols

    @property
    def diagonals(self) -> int:
        """Input rows (input lanes) of one set: ``r + (e - 1) * max_stride`` (``r + e - 1`` at stride 1)."""
        return self.set_rows + (self.set_cols - 1) * self.max_stride

    @property
    def max_p(self) -> int:
        return min(self.psum_rf_words, self.weight_rf_words)

    @property
    def max_q(self) -> int:
        """Channels of a pass: ``q*taps`` fits both the input and (with p >= 1) the filter scratchpad."""
        return min(self.activation_rf_words, self.weight_rf_words)

    @property
    def max_taps(self) -> int:
        return min(self.weight_rf_words, self.activation_rf_words)

    @property
    def pe_reduction(self) -> int:
        """Longest sum one psum scratchpad word holds: ``q*taps <= min(weight, input RF)`` products."""
        return min(self.weight_rf_words, self.activation_rf_words)

    @property
    def signed(self) -> bool:
        return self.weight_signed or self.activation_signed

    @property
    def weight_shape(self) -> Shape:
        return signed(self.weight_bits) if self.weight_signed else unsigned(self.weight_bits)

    @property
    def activation_shape(self) -> Shape:
        return signed(self.activation_bits) if self.activation_signed else unsigned(self.activation_bits)

    def acc_bits_for(self, reduction: int) -> int:
        """The narrowest sum of ``reduction`` products of these operands."""
        return accumulator_bits(self.weight_bits, self.activation_bits, self.weight_signed, self.activation_signed,
                                reduction)

    @property
    def psum_bits(self) -> int:
        """Width of an output lane: exact for a set column's ``r * q * taps`` products."""
        return self.acc_bits_for(self.set_rows * self.pe_reduction)

    @property
    def psum_shape(self) -> Shape:
        return signed(self.psum_bits) if self.signed else unsigned(self.psum_bits)

    @property
    def pe(self) -> PeSpec:
        """The PE's operands as a ``codesign.pe.PeSpec`` (for the shared multiplier builder)."""
        return PeSpec(weight_bits=self.weight_bits, activation_bits=self.activation_bits,
                      accumulator_bits=self.psum_bits, weight_rf_words=self.weight_rf_words,
                      activation_rf_words=self.activation_rf_words, psum_rf_words=self.psum_rf_words,
                      kind=PeKind.INT_MAC, weight_signed=self.weight_signed,
                      activation_signed=self.activation_signed, multiplier=self.multiplier)

    @property
    def top_name(self) -> str:
        """Verilog module name, e.g. ``rs_3x4_s3x4_i8xi8``."""
        w = "i" if self.weight_signed else "u"
        a = "i" if self.activation_signed else "u"
        return (f"rs_{self.rows}x{self.cols}_s{self.set_rows}x{self.set_cols}_"
                f"{w}{self.weight_bits}x{a}{self.activation_bits}")

    def check_pass(self, p: int, q: int, taps: int, out_cols: int, stride: int = 1) -> None:
        """HdlError unless the pass fits the scratchpads, ``out_cols <= max_out_cols`` and
        ``stride <= max_stride``."""
        if isinstance(stride, bool) or not isinstance(stride, int) or not 1 <= stride <= self.max_stride:
            raise HdlError(f"pass stride={stride!r} is outside the array's 1..{self.max_stride} (max_stride)")
        try:
            rs_timing.check_pass(p, q, taps, out_cols, self.weight_rf_words, self.activation_rf_words,
                                 self.psum_rf_words)
        except ValueError as exc:
            raise HdlError(str(exc)) from None
        if out_cols > self.max_out_cols:
            raise HdlError(f"pass out_cols={out_cols} is above the array's max_out_cols={self.max_out_cols}")

    def as_dict(self) -> dict[str, Any]:
        """The build parameters a manifest lists."""
        return {
            "dataflow": "rs", "rows": self.rows, "cols": self.cols, "set_rows": self.set_rows,
            "set_cols": self.set_cols, "sets": self.sets, "pes": self.pes,
            "weight_bits": self.weight_bits, "activation_bits": self.activation_bits,
            "weight_signed": self.weight_signed, "activation_signed": self.activation_signed,
            "weight_rf_words": self.weight_rf_words, "activation_rf_words": self.activation_rf_words,
            "psum_rf_words": self.psum_rf_words, "max_out_cols": self.max_out_cols,
            "psum_bits": self.psum_bits, "multiplier": self.multiplier,
            "skip_zero_weights": self.skip_zero_weights, "gate_zero_activations": self.gate_zero_activations,
            "max_stride": self.max_stride,
        }


def rs_params_from_arch(arch: Any, *, set_rows: int | None = None, set_cols: int | None = None,
                        max_out_cols: int = 256, multiplier: str | None = None,
                        signed: bool | None = None, max_stride: int = 1) -> RsParams:
    """The RS array of ``arch`` (a ``codesign.arch.ArchSpec``): its shape, PE widths and scratchpads, zero
    skipping of weights when ``sparsity.weights.action`` is ``skip``, gating of zero activations when
    ``sparsity.activations.action`` is ``gate`` or ``skip``. HdlError when the arch does not list rs."""
    name = getattr(arch, "name", "?")
    supports = getattr(arch, "supports", None)
    if supports is not None:
        from codesign.arch import Dataflow

        if not supports(Dataflow("rs")):
            listed = ", ".join(getattr(d, "value", str(d)) for d in arch.dataflows)
            raise HdlError(f"arch {name!r} does not support dataflow 'rs' (row stationary); it lists {listed}")
    pe = arch.pe
    if pe.kind is not PeKind.INT_MAC:
        raise HdlError(f"arch {name!r}: no RS generator for PE kind {pe.kind.value!r} (it builds int_mac PEs)")
    sparsity = getattr(arch, "sparsity", None)
    w_action = getattr(getattr(getattr(sparsity, "weights", None), "action", None), "value", "none")
    a_action = getattr(getattr(getattr(sparsity, "activations", None), "action", None), "value", "none")
    ws_, as_ = (pe.weight_signed, pe.activation_signed) if signed is None else (signed, signed)
    return RsParams(arch.rows, arch.cols, set_rows, set_cols, pe.weight_bits, pe.activation_bits, ws_, as_,
                    pe.weight_rf_words, pe.activation_rf_words, pe.psum_rf_words, max_out_cols,
                    pe.multiplier if multiplier is None else multiplier,
                    skip_zero_weights=w_action == "skip", gate_zero_activations=a_action in ("gate", "skip"),
                    max_stride=max_stride)


def entry_layout(params: RsParams) -> data.StructLayout:
    """One filter-scratchpad entry: the weight, its filter, its channel's window base (c*taps) and its tap."""
    return data.StructLayout({
        "weight": params.weight_shape,
        "f": unsigned(max(1, (params.max_p - 1).bit_length())),
        "base": unsigned(max(1, (params.activation_rf_words - 1).bit_length())),
        "s": unsigned(max(1, (params.max_taps - 1).bit_length())),
    })


class RsPe(wiring.Component):
    """One RS PE (module docstring). The array's controller drives it; every port is one edge's worth.

    Fill: ``fill_start`` (a new pass: the scratchpad empties), ``fill_we`` with ``fill_word`` and its
    filter ``fill_f``, channel base ``fill_base`` (c*taps) and tap ``fill_s``; the entry is kept unless
    zero weights are skipped and it is zero; ``nonzeros`` counts the kept entries. ``prime_we`` writes
    ``prime_word`` into the input window at ``prime_addr``. Walk: ``mac_en`` with ``slot`` MACs entry
    ``slot`` if it exists. ``col_end`` moves the psums into the drain buffer (the MAC still registered
    follows on the next edge) and clears them, and ``shift`` advances each channel's window ``stride`` inputs: word a takes word
    a+stride, or the staged input ``stage[a]`` where ``is_last[a]`` (one of a channel's last min(stride, taps)
    taps, the ones the next column reads anew). ``next_slot`` is the slot of the next edge (the filter
    scratchpad is read one edge ahead). ``drain`` shifts the drain buffer; ``drain_word`` is its head, this
    PE's share of the psum the array sums up the set column.
    """

    def __init__(self, params: RsParams):
        if not isinstance(params, RsParams):
            raise HdlError(f"RsPe needs RsParams, not {type(params).__name__}")
        self.params = p = params
        layout = entry_layout(p)
        self._layout = layout
        super().__init__({
            "fill_start": In(1),
            "fill_we": In(1),
            "fill_word": In(p.weight_shape),
            "fill_f": In(layout["f"].shape),
            "fill_base": In(layout["base"].shape),
            "fill_s": In(layout["s"].shape),
            "nonzeros": Out(range(p.weight_rf_words + 1)),
            "prime_we": In(1),
            "prime_addr": In(range(p.activation_rf_words)),
            "prime_word": In(p.activation_shape),
            "shift": In(1),
            "stride": In(range(p.max_stride + 1)),
            "is_last": In(p.activation_rf_words),
            "stage": In(data.ArrayLayout(p.activation_shape, p.activation_rf_words)),
            "mac_en": In(1),
            "slot": In(range(p.weight_rf_words + 2)),
            "next_slot": In(range(p.weight_rf_words + 2)),
            "col_end": In(1),
            "drain": In(1),
            "drain_word": Out(p.psum_shape),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        pe_acc = p.acc_bits_for(p.pe_reduction)
        psum_shape = signed(pe_acc) if p.signed else unsigned(pe_acc)

        # Filter scratchpad: entries written in arrival order, read synchronously one edge ahead of the walk
        # (address ``next_slot``, the slot of the next edge), so it maps to RAM with a registered output; the
        # read is transparent for a write on the same edge (the fill's last beat may write entry 0).
        rf = m.submodules.filter_rf = memory.Memory(shape=self._layout, depth=p.weight_rf_words, init=[])
        wr = rf.write_port()
        rd = rf.read_port(domain="sync", transparent_for=(wr,))
        keep = self.fill_we
        if p.skip_zero_weights:
            keep = self.fill_we & (self.fill_word != 0)
        m.d.comb += [
            wr.addr.eq(self.nonzeros),
            wr.en.eq(keep & (self.nonzeros < p.weight_rf_words)),
            wr.data.weight.eq(self.fill_word),
            wr.data.f.eq(self.fill_f),
            wr.data.base.eq(self.fill_base),
            wr.data.s.eq(self.fill_s),
            rd.addr.eq(self.next_slot),
        ]
        with m.If(self.fill_start):
            m.d.sync += self.nonzeros.eq(0)
        with m.Elif(keep & (self.nonzeros < p.weight_rf_words)):
            m.d.sync += self.nonzeros.eq(self.nonzeros + 1)

        # Input scratchpad: q windows of taps words, channel c's tap s at c*taps + s.
        window = Array(Signal(p.activation_shape, name=f"in{a}") for a in range(p.activation_rf_words))
        with m.If(self.prime_we):
            m.d.sync += window[self.prime_addr].eq(self.prime_word)
        with m.Elif(self.shift):
            for a in range(p.activation_rf_words):
                def ahead(u):  # word a + u of the window; beyond it only new (staged) words are read
                    return window[a + u] if a + u < p.activation_rf_words else self.stage[a]
                nxt = ahead(1)
                for u in range(2, p.max_stride + 1):
                    nxt = Mux(self.stride == u, ahead(u), nxt)
                m.d.sync += window[a].eq(Mux(self.is_last[a], self.stage[a], nxt))

        # The row primitive: one MAC per edge, psum[f] += w * in[c][j + s], in two stages: the entry's input
        # is selected and multiplied on its slot's edge, the product registered and added one edge later.
        entry = rd.data
        act = Signal(p.activation_shape)
        m.d.comb += act.eq(window[entry.base + entry.s])
        prod = product(m, p.pe, act, entry.weight)
        on = self.mac_en & (self.slot < self.nonzeros)
        if p.gate_zero_activations:
            on = on & (act != 0)
        prod_r = Signal.like(prod, name="product_r")
        mac_r = Signal()  # the registered product is a MAC to add
        f_r = Signal.like(entry.f, name="f_r")
        tail = Signal()  # ... of the column that ended on the previous edge: it belongs in the drain buffer
        m.d.sync += [prod_r.eq(prod), mac_r.eq(on), f_r.eq(entry.f), tail.eq(self.col_end)]
        psums = Array(Signal(psum_shape, name=f"psum{f}") for f in range(p.max_p))
        acc_next = Signal(psum_shape)
        m.d.comb += acc_next.eq(psums[f_r] + prod_r)
        into_psums = mac_r & ~tail

        # Drain buffer: the finished column's psums, shifted out one per edge up the set column. The column's
        # last MAC is still in the product register on the edge after col_end: it waits beside the buffer
        # (``pend``, its word's place in the line ``pend_at``) and is added to that word as it leaves.
        out = [Signal(psum_shape, name=f"out{f}") for f in range(p.max_p)]
        with m.If(self.col_end):
            for f in range(p.max_p):
                m.d.sync += [out[f].eq(Mux(into_psums & (f_r == f), acc_next, psums[f])), psums[f].eq(0)]
        with m.Else():
            with m.If(into_psums):
                m.d.sync += psums[f_r].eq(acc_next)
            with m.If(self.drain):
                for f in range(p.max_p):
                    m.d.sync += out[f].eq(out[f + 1] if f + 1 < p.max_p else 0)
        pend = Signal.like(prod, name="pend")
        pend_at = Signal.like(f_r, name="pend_at")
        pend_on = Signal()
        late = mac_r & tail  # the registered product is the ended column's
        held, held_at, held_on = Mux(late, prod_r, pend), Mux(late, f_r, pend_at), late | pend_on
        leaves = held_on & (held_at == 0)
        with m.If(self.drain & leaves):
            m.d.sync += pend_on.eq(0)
        with m.Else():
            m.d.sync += [pend.eq(held), pend_on.eq(held_on),
                         pend_at.eq(Mux(self.drain, held_at - 1, held_at))]
        m.d.comb += self.drain_word.eq(out[0] + Mux(leaves, held, 0))
        return m
