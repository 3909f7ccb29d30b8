"""LUT activations: the ROM returns its quantized table, and the table is within its stated error of f."""

from __future__ import annotations

import math

import numpy as np
import pytest
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.errors import HdlError
from hdl.lut import FUNCTIONS, LutActivation

# Scalar definitions written independently of the registry's numpy code.
SCALAR = {
    "sigmoid": lambda x: 1 / (1 + math.exp(-x)),
    "tanh": math.tanh,
    "gelu": lambda x: 0.5 * x * (1 + math.erf(x / math.sqrt(2))),
    "silu": lambda x: x / (1 + math.exp(-x)),
    "hswish": lambda x: x * min(max(x + 3, 0), 6) / 6,
    "exp": math.exp,
}
# in_range, out_range covering f over the input range
RANGES = {
    "sigmoid": ((-8, 8), (0, 1)),
    "tanh": ((-4, 4), (-1, 1)),
    "gelu": ((-4, 4), (-0.2, 4)),
    "silu": ((-6, 6), (-0.3, 6)),
    "hswish": ((-4, 4), (-0.4, 4)),
    "exp": ((-8, 2), (0, math.exp(2))),
}

# Numpy-model uses (tables, bounds) build components without elaborating them.
pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


def _read_rom(lut: LutActivation) -> list[int]:
    out: list[int] = []

    async def testbench(ctx):
        for q in range(2**lut.in_bits):
            ctx.set(lut.x, q)
            if lut.latency:
                await ctx.tick()
            out.append(ctx.get(lut.y))

    sim = Simulator(lut)
    if lut.latency:
        sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return out


def test_registry_holds_the_named_activations():
    assert set(FUNCTIONS) >= set(SCALAR)


@pytest.mark.parametrize("name", sorted(SCALAR))
def test_registry_functions_match_their_definitions(name):
    x = np.linspace(-6, 2, 97)
    expected = np.array([SCALAR[name](v) for v in x])
    assert np.allclose(FUNCTIONS[name](x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(SCALAR))
def test_rom_returns_its_table_at_every_address(name):
    in_range, out_range = RANGES[name]
    lut = LutActivation(name, 6, 8, in_range, out_range)
    assert _read_rom(lut) == list(lut.table())


def test_combinational_rom_returns_its_table_without_a_clock():
    lut = LutActivation("sigmoid", 5, 7, (-6, 6), (0, 1), latency=0)
    assert _read_rom(lut) == list(lut.table())


@pytest.mark.parametrize("name", sorted(SCALAR))
@pytest.mark.parametrize("bits", [(8, 8), (10, 12)])
def test_table_is_within_half_an_output_step_of_the_real_function(name, bits):
    in_range, out_range = RANGES[name]
    lut = LutActivation(name, bits[0], bits[1], in_range, out_range)
    step = (out_range[1] - out_range[0]) / (2**bits[1] - 1)
    grid = in_range[0] + np.arange(2**bits[0]) * (in_range[1] - in_range[0]) / (2**bits[0] - 1)
    real = np.array([SCALAR[name](v) for v in grid])
    error = np.max(np.abs(out_range[0] + lut.table() * step - real))
    assert lut.error_bound() == pytest.approx(step / 2)
    assert error <= step / 2 * (1 + 1e-9)


def test_values_outside_the_output_range_saturate_and_the_bound_says_so():
    lut = LutActivation("tanh", 6, 6, (-3, 3), (-0.5, 0.5))
    table = lut.table()
    assert table[0] == 0 and table[-1] == 63
    overshoot = math.tanh(3) - 0.5
    assert lut.error_bound() == pytest.approx(lut.out_step / 2 + overshoot)
    assert lut.table_error() <= lut.error_bound() * (1 + 1e-9)


@settings(max_examples=60, deadline=None)
@given(
    coeffs=st.lists(st.floats(-3, 3), min_size=1, max_size=4),
    lo=st.floats(-10, 9), width=st.floats(0.01, 10),
    in_bits=st.integers(1, 9), out_bits=st.integers(1, 16),
)
def test_any_numpy_callable_gets_a_table_within_its_stated_bound(coeffs, lo, width, in_bits, out_bits):
    def poly(x):
        return np.polyval(coeffs, x)

    grid = np.linspace(lo, lo + width, 33)
    low, high = float(poly(grid).min()) - 0.5, float(poly(grid).max()) + 0.5
    lut = LutActivation(poly, in_bits, out_bits, (lo, lo + width), (low, high))
    assert lut.table().min() >= 0 and lut.table().max() <= 2**out_bits - 1
    assert lut.table_error() <= lut.error_bound() * (1 + 1e-9) + 1e-12


def test_input_quantization_maps_grid_points_to_their_own_address():
    lut = LutActivation("gelu", 7, 8, (-4, 4), (-0.2, 4))
    assert np.array_equal(lut.quantize_input(lut.grid()), np.arange(128))
    assert list(lut.quantize_input([-100, 100])) == [0, 127]


@pytest.mark.parametrize("make, message", [
    (lambda: LutActivation("sigmoid", 0, 8, (-1, 1), (0, 1)), "in_bits=0"),
    (lambda: LutActivation("sigmoid", 15, 8, (-1, 1), (0, 1)), "in_bits=15"),
    (lambda: LutActivation("sigmoid", 8, 33, (-1, 1), (0, 1)), "out_bits=33"),
    (lambda: LutActivation("sigmoid", 8, 8, (1, -1), (0, 1)), "low < high"),
    (lambda: LutActivation("sigmoid", 8, 8, (0, float("nan")), (0, 1)), "finite"),
    (lambda: LutActivation("sigmoid", 8, 8, 3, (0, 1)), "pair"),
    (lambda: LutActivation("softplus", 8, 8, (-1, 1), (0, 1)), "unknown LUT function"),
    (lambda: LutActivation(42, 8, 8, (-1, 1), (0, 1)), "name or a callable"),
    (lambda: LutActivation(lambda x: 1 / x, 8, 8, (-1, 1), (-1, 1)), "not finite"),
    (lambda: LutActivation(np.log, 8, 8, (0, 1), (-5, 0)), "not finite"),
    (lambda: LutActivation("exp", 8, 8, (0, 1000), (0, 1)), "not finite"),
    (lambda: LutActivation(lambda x: 1.0, 8, 8, (0, 1), (0, 1)), "elementwise"),
    (lambda: LutActivation("sigmoid", 8, 8, (-1, 1), (0, 1), latency=2), "latency"),
])
def test_bad_parameters_raise_a_one_line_hdl_error(make, message):
    with pytest.raises(HdlError, match=message) as info:
        make()
    assert "\n" not in str(info.value)


def test_a_failing_callable_is_reported_not_raised_through():
    def broken(x):
        raise ZeroDivisionError("boom")

    with pytest.raises(HdlError, match="failed on its input range: boom"):
        LutActivation(broken, 4, 4, (0, 1), (0, 1))
