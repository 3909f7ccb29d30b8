"""The pipelined PEs the arrays are built of: the product is registered before the adder (hdl.pe.PRODUCT_STAGES),
the OS product is gated by the valid bits travelling beside its operands, and the arrays keep the cycle contract."""

from __future__ import annotations

import pytest
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.errors import HdlError
from codesign.pe import PeSpec
from hdl.pe import PRODUCT_STAGES, OsPe, WsPe


def _pe(multiplier="dsp"):
    return PeSpec(weight_bits=8, activation_bits=8, weight_signed=True, activation_signed=True, multiplier=multiplier)


def _run(pe, steps, names):
    """Drive ``pe`` with one dict of inputs per edge; the named outputs after each edge."""
    outputs = []

    async def bench(ctx):
        for inputs in steps:
            for name, value in inputs.items():
                ctx.set(getattr(pe, name), value)
            await ctx.tick()
            outputs.append({name: ctx.get(getattr(pe, name)) for name in names})

    sim = Simulator(pe)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return outputs


def test_one_product_stage():
    assert PRODUCT_STAGES == 1


@settings(max_examples=8, deadline=None)
@given(st.sampled_from(["dsp", "logic"]), st.data())
def test_pipelined_ws_pe_adds_the_product_of_the_act_one_edge_earlier(kind, data):
    weight = data.draw(st.integers(-128, 127))
    acts = data.draw(st.lists(st.integers(-128, 127), min_size=2, max_size=6))
    psums = data.draw(st.lists(st.integers(-50000, 50000), min_size=len(acts), max_size=len(acts)))
    steps = [{"weight_in": weight, "weight_load": 1}]
    steps += [{"weight_load": 0, "weight_in": 0, "act_in": a, "psum_in": 0} for a in acts[:1]]
    steps += [{"act_in": a, "psum_in": p} for a, p in zip(acts[1:] + [0], psums)]
    out = _run(WsPe(_pe(kind), 4, pipelined=True), steps, ("psum_out", "act_out"))
    # the act of edge j is multiplied on edge j, added to the psum presented on edge j + 1
    for j, a in enumerate(acts):
        assert out[2 + j]["psum_out"] == psums[j] + a * weight
        assert out[1 + j]["act_out"] == a


@pytest.mark.parametrize("kind", ["dsp", "logic"])
def test_pipelined_os_pe_accumulates_only_products_whose_operands_were_both_valid(kind):
    base = {"clear": 0, "copy": 0, "bank_shift": 0, "acc_in": 0, "held_in": 0}
    steps = [
        {**base, "act_in": 3, "weight_in": 5, "act_valid_in": 1, "weight_valid_in": 1},
        {"act_in": 7, "weight_in": 7, "act_valid_in": 0, "weight_valid_in": 1},  # no beat: adds nothing
        {"act_in": 7, "weight_in": 7, "act_valid_in": 1, "weight_valid_in": 0},  # lane beyond n: adds nothing
        {"act_in": -2, "weight_in": 4, "act_valid_in": 1, "weight_valid_in": 1},
        {"act_in": 0, "weight_in": 0, "act_valid_in": 0, "weight_valid_in": 0},
        {"clear": 1},
        {"clear": 0},
    ]
    out = _run(OsPe(_pe(kind), 8, pipelined=True), steps, ("acc", "act_valid_out", "weight_valid_out"))
    assert [o["acc"] for o in out] == [0, 15, 15, 15, 7, 0, 0]
    assert [o["act_valid_out"] for o in out][:4] == [1, 0, 1, 1]
    assert [o["weight_valid_out"] for o in out][:4] == [1, 1, 0, 1]


@pytest.mark.parametrize("cls", [WsPe, OsPe])
def test_pipelined_must_be_a_bool(cls):
    with pytest.raises(HdlError, match="pipelined"):
        cls(_pe(), 4, pipelined=1)
