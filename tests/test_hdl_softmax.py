"""Streaming softmax: RTL equals the bit-exact model, the model is within its bound of float softmax."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.errors import HdlError
from hdl.benches.unit_golden import softmax_cycles, softmax_period
from hdl.softmax import SoftmaxUnit

# Numpy-model uses build components without elaborating them.
pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


def _run(unit: SoftmaxUnit, vectors, ready_pattern=None, mark_last=True):
    """Stream ``vectors`` through the unit; return (outputs per vector, cycles per vector)."""
    outputs, cycles = [], []

    async def testbench(ctx):
        tick = 0
        for v in vectors:
            start, got = tick, []
            for i, x in enumerate(v):
                ctx.set(unit.x, int(x))
                ctx.set(unit.x_valid, 1)
                ctx.set(unit.x_last, mark_last and i == len(v) - 1)
                while not ctx.get(unit.x_ready):
                    await ctx.tick()
                    tick += 1
                await ctx.tick()
                tick += 1
            ctx.set(unit.x_valid, 0)
            while True:
                ready = 1 if ready_pattern is None else ready_pattern[tick % len(ready_pattern)]
                ctx.set(unit.y_ready, ready)
                fire = ctx.get(unit.y_valid) and ready
                last = ctx.get(unit.y_last)
                if fire:
                    got.append(ctx.get(unit.y))
                await ctx.tick()
                tick += 1
                if fire and last:
                    break
            outputs.append(got)
            cycles.append(tick - start)

    sim = Simulator(unit)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return outputs, cycles


def test_rtl_equals_the_bit_exact_model_and_repeats_every_3n_plus_4_edges():
    """Each vector is offered as soon as the last one's output is out, so the edges per vector are the
    period, 3n + 4: the last output 3n + 3 edges after the first accept, the next accept one edge later."""
    unit = SoftmaxUnit(8)
    rng = np.random.default_rng(3)
    vectors = [rng.integers(-128, 128, size=n) for n in (1, 2, 5, 8, 3)]
    vectors += [np.array([127, -128, 0, 127]), np.full(6, -128), np.arange(-4, 4)]
    outputs, cycles = _run(unit, vectors)
    for v, got, n_cycles in zip(vectors, outputs, cycles):
        assert got == list(unit.model(v))
        assert n_cycles == softmax_period(len(v)) == softmax_cycles(len(v)) + 1


def test_output_backpressure_does_not_change_the_values():
    unit = SoftmaxUnit(6, in_bits=6, in_scale=0.125, exp_in_bits=6, exp_bits=10, recip_in_bits=6,
                       recip_bits=10, out_bits=7)
    rng = np.random.default_rng(4)
    vectors = [rng.integers(-32, 32, size=n) for n in (6, 4, 1)]
    outputs, cycles = _run(unit, vectors, ready_pattern=[1, 0, 0, 1, 1, 0, 1])
    assert outputs == [list(unit.model(v)) for v in vectors]
    assert all(c > softmax_period(len(v)) for c, v in zip(cycles, vectors) if len(v) > 1)


def test_a_vector_ends_at_n_max_elements_without_x_last():
    unit = SoftmaxUnit(4)
    vector = np.array([10, -3, 7, 7])
    outputs, _ = _run(unit, [vector], mark_last=False)
    assert outputs == [list(unit.model(vector))]


vectors = st.integers(1, 16).flatmap(
    lambda n: st.lists(st.integers(-128, 127), min_size=n, max_size=n))


@settings(max_examples=300, deadline=None)
@given(vectors)
def test_model_is_within_the_stated_bound_of_float_softmax(x):
    unit = _DEFAULT
    error = np.max(np.abs(unit.model(x) / 2**unit.out_bits - unit.reference(x)))
    assert error <= unit.error_bound(len(x))


_DEFAULT = SoftmaxUnit(16)


def test_default_bound_is_under_two_output_lsbs():
    assert _DEFAULT.error_bound(16) < 2 / 2**_DEFAULT.out_bits


def test_bound_is_tight_enough_to_catch_a_wrong_reciprocal():
    """A unit that ignored the mantissa (r for M = 1) would leave the bound: the bound can fail."""
    unit = _DEFAULT
    x = np.array([0, -2, -1, -3, 0, -1])   # sum of exps far from a power of two
    model = unit.model(x) / 2**unit.out_bits
    e = unit.exp_lut.table()[np.max(x) - x]
    crude = e / 2.0**(int(e.sum()).bit_length() - 1)   # 1/S replaced by 1/2**p
    assert np.max(np.abs(model - unit.reference(x))) <= unit.error_bound(len(x))
    assert np.max(np.abs(crude - unit.reference(x))) > unit.error_bound(len(x))


@pytest.mark.parametrize("make, message", [
    (lambda: SoftmaxUnit(0), "n_max=0"),
    (lambda: SoftmaxUnit(5000), "n_max=5000"),
    (lambda: SoftmaxUnit(8, in_bits=1), "in_bits=1"),
    (lambda: SoftmaxUnit(8, in_scale=-0.5), "in_scale"),
    (lambda: SoftmaxUnit(8, in_scale=float("inf")), "in_scale"),
    (lambda: SoftmaxUnit(8, exp_bits=6, recip_in_bits=8), "recip_in_bits=8"),
    (lambda: SoftmaxUnit(8, exp_bits=4, recip_in_bits=3, recip_bits=4, out_bits=8), "out_bits \\+ 3"),
    (lambda: _DEFAULT.model(np.zeros(17, dtype=int)), "vector of 1..16"),
    (lambda: _DEFAULT.model(np.array([0.5])), "integers"),
    (lambda: _DEFAULT.model(np.array([200])), "integers in -128..127"),
])
def test_bad_parameters_raise_a_one_line_hdl_error(make, message):
    with pytest.raises(HdlError, match=message) as info:
        make()
    assert "\n" not in str(info.value)


def test_a_one_element_unit_outputs_one_for_every_vector():
    """n_max = 1 (buffers padded to two entries, so no zero-width address): softmax of one element is 1."""
    unit = SoftmaxUnit(1)
    outputs, cycles = _run(unit, [np.array([5]), np.array([-128]), np.array([127])])
    assert outputs == [list(unit.model(v)) for v in ([5], [-128], [127])] == [[255]] * 3
    assert cycles == [softmax_period(1)] * 3
