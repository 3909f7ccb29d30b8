"""The output path's requantization and tail (hdl/system/tail.py) against the executor, value for value and
cycle for cycle: ``Requantize`` is isa.md's rq (VADD's two-term form too), ``PassRequantize`` the same sum built one
narrow product a cycle, ``OutputTail`` is ``executor.Machine._tail``, each a fixed-latency pipeline taking one input
a cycle."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from codesign.arch_loader import load_arch
from codesign.compiler.executor import Machine
from codesign.contract.isa import Reg
from codesign.contract.system_timing import LUT_BYTES, Target
from codesign.errors import HdlError
from codesign.integer.scheme import requantize
from hdl.emit import to_verilog
from hdl.system.tail import (HALF_BITS, PASS_X_BITS, REQUANT_LATENCY, TAIL_LATENCY, TAIL_REGS, OutputTail,
                             PassRequantize, Requantize)

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")

I32 = (-(2**31), 2**31 - 1)
I64 = (-(2**63), 2**63 - 1)
REG_OF = {"lut_en": Reg.LUT_EN, "zp_pre": Reg.ZP_PRE, "pre_lo": Reg.PRE_LO, "pre_hi": Reg.PRE_HI,
          "zp_out": Reg.ZP_OUT, "clamp_lo": Reg.CLAMP_LO, "clamp_hi": Reg.CLAMP_HI}


def _stream(dut, inputs: list[dict | None], read_output) -> list[tuple[int, object]]:
    """Feed one input a cycle (None: valid low), return (cycle, output) for every cycle ``out_valid`` is high."""
    seen: list[tuple[int, object]] = []

    async def bench(ctx):
        for cycle in range(len(inputs) + 8):
            item = inputs[cycle] if cycle < len(inputs) else None
            ctx.set(dut.valid, item is not None)
            for name, value in (item or {}).items():
                ctx.set(_member(dut, name), value)
            if ctx.get(dut.out_valid):
                seen.append((cycle, read_output(ctx)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return seen


def _member(dut, name):
    obj = dut
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _rq_values(rng, count: int, lanes: int, bits: int) -> np.ndarray:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    values = rng.integers(low, high, size=(count, lanes), endpoint=True)
    extremes = np.array([low, high, 0, -1, 1])
    mask = rng.random((count, lanes)) < 0.3
    return np.where(mask, rng.choice(extremes, size=(count, lanes)), values)


def _run_requantize(lanes: int, in_bits: int, terms: int, x, mult, shift, gaps):
    dut = Requantize(lanes, in_bits, terms)
    inputs: list[dict | None] = []
    for i in range(x.shape[1]):
        inputs.extend([None] * int(gaps[i]))
        inputs.append({"x": [[int(v) for v in x[t, i]] for t in range(terms)],
                       "mult": [[int(v) for v in mult[t, i]] for t in range(terms)],
                       "shift": [int(v) for v in shift[i]]})
    outputs = _stream(dut, inputs, lambda ctx: [int(v) for v in ctx.get(dut.v)])
    fed = [cycle for cycle, item in enumerate(inputs) if item is not None]
    return fed, outputs


def test_requantize_is_rq_of_int32_accumulators_at_the_extremes():
    rng = np.random.default_rng(1)
    lanes, count = 8, 60
    x = _rq_values(rng, count, lanes, 32)[None]
    mult = _rq_values(rng, count, lanes, 32)[None]
    shift = rng.integers(1, 62, size=(count, lanes), endpoint=True)
    shift[:4] = [[1] * lanes, [62] * lanes, [31] * lanes, [2] * lanes]
    gaps = rng.integers(0, 3, size=count) * (rng.random(count) < 0.3)
    fed, outputs = _run_requantize(lanes, 32, 1, x, mult, shift, gaps)
    assert [cycle for cycle, _ in outputs] == [cycle + REQUANT_LATENCY for cycle in fed]
    expected = requantize(x[0], mult[0], shift)
    np.testing.assert_array_equal(np.array([v for _, v in outputs]), expected)


def test_requantize_of_two_terms_is_vadd_with_one_rounding():
    rng = np.random.default_rng(2)
    lanes, count = 4, 40
    a = rng.integers(-128, 127, size=(count, lanes), endpoint=True) - rng.integers(-128, 127, endpoint=True)
    b = rng.integers(-128, 127, size=(count, lanes), endpoint=True) - rng.integers(-128, 127, endpoint=True)
    mult = _rq_values(rng, 2 * count, lanes, 32).reshape(2, count, lanes)
    shift = np.repeat(rng.integers(1, 62, size=(count, 1), endpoint=True), lanes, axis=1)
    fed, outputs = _run_requantize(lanes, 9, 2, np.stack([a, b]), mult, shift, np.zeros(count, dtype=int))
    assert [cycle for cycle, _ in outputs] == [cycle + REQUANT_LATENCY for cycle in fed]
    s = shift
    expected = (a * mult[0] + b * mult[1] + (np.int64(1) << (s - 1))) >> s  # executor.Machine.execute, VADD
    np.testing.assert_array_equal(np.array([v for _, v in outputs]), expected)


def test_requantize_of_wide_sums_wraps_as_int64():
    # POOL's sums of (x - ZP_IN) over a window, ZP_IN any int32: products beyond 64 bits wrap as numpy's
    rng = np.random.default_rng(3)
    lanes, count = 4, 30
    x = _rq_values(rng, count, lanes, 40)[None]
    mult = _rq_values(rng, count, lanes, 32)[None]
    shift = rng.integers(1, 62, size=(count, lanes), endpoint=True)
    fed, outputs = _run_requantize(lanes, 40, 1, x, mult, shift, np.zeros(count, dtype=int))
    assert [cycle for cycle, _ in outputs] == [cycle + REQUANT_LATENCY for cycle in fed]
    np.testing.assert_array_equal(np.array([v for _, v in outputs]), requantize(x[0], mult[0], shift))


def _wrap64(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >> 63 else value


def _pass_items(rng, count: int, lanes: int) -> list[dict]:
    """Sums of 1-3 passes: x at the 18-bit extremes or random, any int32 multiplier, random high halves, any int64
    bias and shift 0..63; a gap of 0-2 cycles before some passes (the running sum holds)."""
    items = []
    for _ in range(count):
        passes = []
        for index in range(int(rng.integers(1, 4))):
            passes.append({"x": [int(v) for v in _rq_values(rng, 1, lanes, PASS_X_BITS)[0]],
                           "mult": [int(v) for v in _rq_values(rng, 1, lanes, 32)[0]],
                           "hi": int(rng.integers(0, 2)), "gap": int(rng.choice([0, 0, 1, 2]))})
        items.append({"passes": passes, "bias": int(rng.choice([rng.integers(*I64, endpoint=True), *I64, 0, 1 << 40])),
                      "shift": int(rng.integers(0, 64))})
    return items


def _expected_pass(item: dict, lanes: int) -> list[int]:
    out = []
    for j in range(lanes):
        total = item["bias"] + sum(p["x"][j] * p["mult"][j] << (HALF_BITS * p["hi"]) for p in item["passes"])
        out.append(_wrap64(total) >> item["shift"])
    return out


def _run_passes(lanes: int, items: list[dict]):
    """Feed the items' passes in order; (cycle of each item's last pass, outputs (cycle, v), products seen)."""
    dut = PassRequantize(lanes)
    inputs: list[dict | None] = []
    ends = []
    for item in items:
        for index, step in enumerate(item["passes"]):
            inputs.extend([None] * step["gap"])
            first, last = index == 0, index == len(item["passes"]) - 1
            inputs.append({"x": step["x"], "mult": step["mult"], "hi": step["hi"], "first": int(first),
                           "last": int(last), "bias": item["bias"] if first else 0,
                           "shift": item["shift"] if last else 0})
        ends.append(len(inputs) - 1)
    outputs, products = [], []

    async def bench(ctx):
        for cycle in range(len(inputs) + 6):
            item = inputs[cycle] if cycle < len(inputs) else None
            ctx.set(dut.valid, item is not None)
            for name, value in (item or {"x": [0] * lanes, "mult": [0] * lanes}).items():
                ctx.set(getattr(dut, name), value)
            if ctx.get(dut.out_valid):
                outputs.append((cycle, [int(v) for v in ctx.get(dut.v)]))
            products.append([int(v) for v in ctx.get(dut.product)])
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    fed = [(cycle, item) for cycle, item in enumerate(inputs) if item is not None]
    return ends, outputs, products, fed


def test_pass_requantize_is_the_int64_sum_of_its_passes():
    # bias + sum of x * mult (x 2^17 for a high half), wrapped to int64, >> shift; LATENCY after the last pass
    rng = np.random.default_rng(21)
    lanes = 4
    items = _pass_items(rng, 40, lanes)
    ends, outputs, products, fed = _run_passes(lanes, items)
    assert [cycle for cycle, _ in outputs] == [end + PassRequantize.LATENCY for end in ends]
    assert [v for _, v in outputs] == [_expected_pass(item, lanes) for item in items]
    for cycle, item in fed:  # every product, the cycle after its pass, exact (x 18 bits by mult 32 bits)
        assert products[cycle + 1] == [x * m for x, m in zip(item["x"], item["mult"])]


def test_pass_requantize_two_halves_make_an_int32_operand():
    # an int32 x as bits 0..16 (unsigned) then 17..31 (signed, hi) is rq of the whole x, as the vector unit's POOL
    rng = np.random.default_rng(22)
    lanes, items, whole = 2, [], []
    for x in _rq_values(rng, 30, lanes, 32):
        mult = [int(v) for v in _rq_values(rng, 1, lanes, 32)[0]]
        shift = int(rng.integers(1, 63))
        low = [int(v) & ((1 << HALF_BITS) - 1) for v in x]
        high = [int(v) >> HALF_BITS for v in x]
        items.append({"passes": [{"x": low, "mult": mult, "hi": 0, "gap": 0}, {"x": high, "mult": mult, "hi": 1,
                                                                                "gap": 0}],
                      "bias": 1 << (shift - 1), "shift": shift})
        whole.append(requantize(x.astype(np.int64), np.array(mult, dtype=np.int64), shift))
    _, outputs, _, _ = _run_passes(lanes, items)
    np.testing.assert_array_equal(np.array([v for _, v in outputs]), np.array(whole))


def test_pass_requantize_wrong_latency_expectation_fails():
    rng = np.random.default_rng(23)
    items = _pass_items(rng, 5, 2)
    ends, outputs, _, _ = _run_passes(2, items)
    with pytest.raises(AssertionError):
        assert [cycle for cycle, _ in outputs] == [end + PassRequantize.LATENCY + 1 for end in ends]


def _machine() -> Machine:
    return Machine(Target(load_arch("fpga-8x8"), "ws"), dram_bytes=8, acc_rows=1)


def _random_regs(rng) -> dict[str, int]:
    def pick():
        return int(rng.choice([rng.integers(-300, 300), rng.integers(*I32, endpoint=True), *I32, 0, -128, 127]))
    regs = {name: pick() for name in TAIL_REGS}
    regs["lut_en"] = int(rng.choice([0, 1, 0, 7, -1]))
    if rng.random() < 0.6:  # the usual: ordered clamps inside int8
        regs["clamp_lo"], regs["clamp_hi"] = sorted(int(v) for v in rng.integers(-140, 140, size=2))
        regs["pre_lo"], regs["pre_hi"] = sorted(int(v) for v in rng.integers(-140, 140, size=2))
    return regs


def _tail_inputs(rng, count: int, lanes: int):
    v = rng.integers(-400, 400, size=(count, lanes))
    wide = rng.integers(*I64, size=(count, lanes), endpoint=True, dtype=np.int64)
    extremes = rng.choice(np.array([*I64, *I32, 2**62, -(2**62), 127, -128, 128, -129]), size=(count, lanes))
    choice = rng.random((count, lanes))
    return np.where(choice < 0.15, wide, np.where(choice < 0.3, extremes, v))


def _run_tail(lanes: int, word_bytes: int, table: np.ndarray | None, v: np.ndarray, regs: list[dict], gaps):
    dut = OutputTail(lanes, word_bytes)
    inputs: list[dict | None] = []
    if table is not None:
        for index in range(LUT_BYTES // word_bytes):
            word = sum(int(table[index * word_bytes + b]) << (8 * b) for b in range(word_bytes))
            inputs.append({"lut_write.en": 1, "lut_write.index": index, "lut_write.data": word})
        inputs.append({"lut_write.en": 0})
    setup = len(inputs)
    for i in range(v.shape[0]):
        inputs.extend([None] * int(gaps[i]))
        inputs.append({"v": [int(x) for x in v[i]], **regs[i]})

    def feed_valid(item):  # table writes are inputs with valid low
        return item is not None and "v" in item

    outputs: list[tuple[int, list[int]]] = []

    async def bench(ctx):
        for cycle in range(len(inputs) + 6):
            item = inputs[cycle] if cycle < len(inputs) else None
            ctx.set(dut.valid, feed_valid(item))
            for name, value in (item or {}).items():
                ctx.set(_member(dut, name), value)
            if ctx.get(dut.out_valid):
                outputs.append((cycle, [int(x) for x in ctx.get(dut.y)]))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    fed = [cycle for cycle, item in enumerate(inputs) if feed_valid(item)]
    assert all(cycle >= setup for cycle in fed)
    return fed, outputs


def _expected_tail(table: np.ndarray | None, v: np.ndarray, regs: list[dict]) -> np.ndarray:
    machine = _machine()
    if table is not None:
        machine.lut = table.astype(np.int64)
    rows = []
    for values, row_regs in zip(v, regs):
        machine.regs = {REG_OF[name]: value for name, value in row_regs.items()}
        rows.append(machine._tail(values.astype(np.int64)))
    return np.array(rows)


@pytest.mark.parametrize("lanes,word_bytes", [(8, 8), (4, 4), (3, 8)])
def test_tail_is_the_executors_with_registers_changing_every_input(lanes, word_bytes):
    rng = np.random.default_rng(10 + lanes + word_bytes)
    count = 80
    table = rng.integers(0, 255, size=LUT_BYTES, endpoint=True)
    v = _tail_inputs(rng, count, lanes)
    regs = [_random_regs(rng) for _ in range(count)]
    gaps = rng.integers(0, 2, size=count)
    fed, outputs = _run_tail(lanes, word_bytes, table, v, regs, gaps)
    assert [cycle for cycle, _ in outputs] == [cycle + TAIL_LATENCY for cycle in fed]
    np.testing.assert_array_equal(np.array([y for _, y in outputs]), _expected_tail(table, v, regs))


def test_tail_table_starts_as_the_executors_identity():
    rng = np.random.default_rng(4)
    v = rng.integers(-200, 200, size=(20, 4))
    regs = [{"lut_en": 1, "zp_pre": int(rng.integers(-5, 5)), "pre_lo": -128, "pre_hi": 127, "zp_out": 0,
             "clamp_lo": -128, "clamp_hi": 127} for _ in range(20)]
    _, outputs = _run_tail(4, 4, None, v, regs, np.zeros(20, dtype=int))
    np.testing.assert_array_equal(np.array([y for _, y in outputs]), _expected_tail(None, v, regs))


def test_a_wrong_latency_expectation_fails():
    rng = np.random.default_rng(5)
    v = rng.integers(-100, 100, size=(5, 2))
    regs = [{name: 0 for name in TAIL_REGS} | {"clamp_lo": -128, "clamp_hi": 127} for _ in range(5)]
    fed, outputs = _run_tail(2, 8, None, v, regs, np.zeros(5, dtype=int))
    with pytest.raises(AssertionError):
        assert [cycle for cycle, _ in outputs] == [cycle + TAIL_LATENCY + 1 for cycle in fed]


def test_parameters_are_checked():
    with pytest.raises(HdlError, match="lanes"):
        Requantize(0, 32)
    with pytest.raises(HdlError, match="in_bits"):
        Requantize(4, 65)
    with pytest.raises(HdlError, match="word_bytes"):
        OutputTail(4, 3)
    with pytest.raises(HdlError, match="lanes"):
        PassRequantize(0)


def test_both_convert_to_verilog():
    assert "module rq" in to_verilog(Requantize(2, 32, 2), "rq")
    assert "module tail" in to_verilog(OutputTail(2, 8), "tail")
    assert "module prq" in to_verilog(PassRequantize(2), "prq")
