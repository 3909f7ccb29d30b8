"""The integer MAC PE (built from a ``codesign.pe.PeSpec``): accumulator width, both multipliers,
both PE kinds, and bad parameters."""

from __future__ import annotations

import math

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.errors import BitWidthError, HdlError, SpecError
from codesign.pe import PeKind, PeSpec, accumulator_bits, operand_range
from hdl.pe import OsPe, WsPe, accumulator_shape, activation_shape, shift_add_product, weight_shape


def _pe(wb=8, ab=8, ws=True, as_=True, multiplier="dsp", **kw):
    return PeSpec(weight_bits=wb, activation_bits=ab, weight_signed=ws, activation_signed=as_,
                  multiplier=multiplier, **kw)


def _fits(value: int, bits: int, is_signed: bool) -> bool:
    if is_signed:
        return -(1 << (bits - 1)) <= value < (1 << (bits - 1))
    return 0 <= value < (1 << bits)


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 16), st.integers(2, 16), st.booleans(), st.booleans(), st.integers(1, 5000))
def test_accumulator_is_the_narrowest_width_that_holds_every_extreme_sum(wb, ab, ws, as_, max_k):
    bits = accumulator_bits(wb, ab, ws, as_, max_k)
    w_lo, w_hi = operand_range(wb, ws)
    a_lo, a_hi = operand_range(ab, as_)
    extremes = [max_k * w * a for w in (w_lo, w_hi) for a in (a_lo, a_hi)]
    is_signed = ws or as_
    assert all(_fits(x, bits, is_signed) for x in extremes)
    assert bits == 1 or not all(_fits(x, bits - 1, is_signed) for x in extremes)
    assert bits <= wb + ab + math.ceil(math.log2(max_k))  # the textbook bound, never exceeded


def _product_values(wb, ab, ws, as_, kind):
    """Every product of the two formats through the configured multiplier, in one combinational sim."""
    pe = _pe(wb, ab, ws, as_, kind)
    m = Module()
    act, weight = Signal(activation_shape(pe)), Signal(weight_shape(pe))
    from hdl.pe import product

    out = product(m, pe, act, weight)
    pairs = [(w, a) for w in range(*_span(wb, ws)) for a in range(*_span(ab, as_))]
    got = []

    async def bench(ctx):
        for w, a in pairs:
            ctx.set(weight, w)
            ctx.set(act, a)
            got.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return pairs, got


def _span(bits, is_signed):
    lo, hi = operand_range(bits, is_signed)
    return lo, hi + 1


@pytest.mark.parametrize("kind", ["dsp", "logic"])
@pytest.mark.parametrize("ws,as_", [(True, True), (False, False), (True, False), (False, True)])
def test_multiplier_is_exact_over_every_3x4_bit_operand_pair(kind, ws, as_):
    pairs, got = _product_values(3, 4, ws, as_, kind)
    assert got == [w * a for w, a in pairs]


def test_shift_and_add_builds_one_partial_product_per_weight_bit():
    a, w = Signal(8), Signal(5)
    value = shift_add_product(a, w, 5, False)
    assert value.shape().width >= 8 + 5


def _run_pe(pe, steps):
    """Drive ``pe`` with a list of input dicts, one per edge; return outputs after each edge."""
    outputs = []

    async def bench(ctx):
        for inputs in steps:
            for name, value in inputs.items():
                ctx.set(getattr(pe, name), value)
            await ctx.tick()
            outputs.append({name: ctx.get(getattr(pe, name)) for name, _ in pe.signature.members.items()
                            if name in ("psum_out", "act_out", "acc", "held", "weight_out")})

    sim = Simulator(pe)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return outputs


@settings(max_examples=8, deadline=None)
@given(st.sampled_from(["dsp", "logic"]), st.data())
def test_ws_pe_adds_act_times_stationary_weight_to_the_incoming_psum(kind, data):
    pe = _pe(8, 8, True, True, kind)
    weight = data.draw(st.integers(-128, 127))
    stream = data.draw(st.lists(st.tuples(st.integers(-128, 127), st.integers(-50000, 50000)), min_size=1, max_size=6))
    steps = [{"weight_in": weight, "weight_load": 1}] + [
        {"weight_load": 0, "weight_in": 0, "act_in": a, "psum_in": p} for a, p in stream
    ]
    out = _run_pe(WsPe(pe, 4), steps)
    for (a, p), after in zip(stream, out[1:]):
        assert after["psum_out"] == p + a * weight
        assert after["act_out"] == a


@pytest.mark.parametrize("kind", ["dsp", "logic"])
def test_os_pe_accumulates_and_clears_while_its_result_bank_copies_and_shifts(kind):
    pe = _pe(4, 4, False, False, kind)
    steps = [
        {"act_in": 15, "weight_in": 15, "clear": 0, "copy": 0, "bank_shift": 0, "acc_in": 0, "held_in": 0},
        {"act_in": 15, "weight_in": 15},
        {"act_in": 15, "weight_in": 15},  # 3 * 225: the largest sum it is built for
        {"act_in": 2, "weight_in": 3, "clear": 1, "copy": 1, "acc_in": 9},  # new tile; bank takes the PE below
        {"act_in": 1, "weight_in": 5, "clear": 0, "copy": 0, "bank_shift": 1, "held_in": 4},
        {"act_in": 0, "weight_in": 0, "bank_shift": 0, "held_in": 0},
    ]
    out = _run_pe(OsPe(pe, 3), steps)
    assert [o["acc"] for o in out] == [225, 450, 675, 0, 5, 5]
    assert [o["held"] for o in out] == [0, 0, 0, 9, 4, 4]
    assert out[0]["act_out"] == 15 and out[0]["weight_out"] == 15


@pytest.mark.parametrize("cls", [WsPe, OsPe])
@pytest.mark.parametrize("bits", [1, 17, 32])
def test_operand_bits_outside_2_to_16_are_a_bit_width_error(cls, bits):
    with pytest.raises(BitWidthError, match="weight_bits=.*2..16"):
        cls(_pe(wb=bits), 4)
    with pytest.raises(BitWidthError, match="activation_bits=.*2..16"):
        cls(_pe(ab=bits), 4)


@pytest.mark.parametrize("bits", [0, -3])
def test_non_positive_bits_are_rejected_by_the_spec_itself(bits):
    with pytest.raises(SpecError, match="weight_bits"):
        _pe(wb=bits)


@pytest.mark.parametrize("cls", [WsPe, OsPe])
def test_unknown_multiplier_empty_reduction_and_other_kinds_are_errors(cls):
    with pytest.raises(SpecError, match="multiplier"):
        _pe(multiplier="lut")
    with pytest.raises(HdlError, match="reduction length 0"):
        cls(_pe(), 0)
    with pytest.raises(HdlError, match="no generator for PE kind 'xnor_popcount'"):
        cls(_pe(wb=1, ab=1, kind=PeKind.XNOR_POPCOUNT), 4)
    with pytest.raises(HdlError, match="PeSpec"):
        cls("int8", 4)


@pytest.mark.parametrize("ws,as_", [(True, True), (False, False), (True, False), (False, True)])
def test_pe_ports_follow_the_spec_and_the_reduction(ws, as_):
    pe = _pe(6, 5, ws, as_)
    ws_pe = WsPe(pe, 16)
    assert ws_pe.weight_in.shape() == weight_shape(pe) and ws_pe.act_in.shape() == activation_shape(pe)
    assert ws_pe.psum_out.shape() == accumulator_shape(pe, 16)
    assert accumulator_shape(pe, 16).width == pe.accumulator_bits_for(16)
    assert accumulator_shape(pe, 16).signed == (ws or as_)
