"""The vector unit (hdl/system/vector.py) against the executor and the cycle contract: VACT, VADD and POOL run on
``VectorUnit`` in amaranth.sim with the GLB modelled here (one access per bank port a cycle, read data the cycle
after), every GLB byte compared with ``executor.Machine`` on the same instructions at the cycle ``idle`` rises,
and that cycle (and ``ready``'s) compared with ``system_timing.instruction_cycles``."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field

import numpy as np
import pytest
from amaranth.sim import Simulator

from codesign.arch_loader import load_arch
from codesign.compiler.executor import ExecutionError, Machine
from codesign.contract.isa import Instruction, Op, Reg, encode
from codesign.contract.system_timing import (
    LUT_BYTES, VECTOR_LATENCY, VECTOR_SETUP_CYCLES, Target, instruction_cycles, vector_slots,
)
from hdl.emit import to_verilog
from hdl.lint import verilator_lint
from hdl.system.params import system_params_from_arch
from hdl.system.vector import VectorUnit

PRESETS = ("fpga-8x8", "fpga-4x4")


@dataclass
class Step:
    """One instruction with the registers it captures; ``wait`` idle cycles before its start."""

    ins: Instruction
    regs: dict
    wait: int = 0


@dataclass
class Observed:
    start: int
    ready_after: int | None = None  # cycles from the start to ready high again
    idle_after: int | None = None
    glb: np.ndarray | None = None  # the GLB at the cycle idle rose
    error_code: int = 0
    error_after: int | None = None  # cycles from the start to error high
    late_accesses: list = field(default_factory=list)
    reads: int = 0
    writes: int = 0


@dataclass
class Expected:
    cycles: int
    glb: np.ndarray | None
    error_code: int = 0


class Setup:
    """A preset's system parameters and the timing target."""

    def __init__(self, preset: str):
        self.arch = load_arch(preset)
        self.params = system_params_from_arch(self.arch, "ws")
        self.target = Target(self.arch, "ws")
        self.word = self.params.word_bytes
        self.banks = self.params.glb_banks


@pytest.fixture(scope="module", params=PRESETS)
def setup(request) -> Setup:
    return Setup(request.param)


def _regs_word(regs: dict) -> int:
    return sum((int(value) & 0xFFFFFFFF) << (32 * int(reg)) for reg, value in regs.items())


class _Bench:
    """One simulation of the unit per preset, reset for every run (building it is most of a short run's time)."""

    def __init__(self, setup: Setup):
        self.setup = setup
        self.dut = VectorUnit(setup.params)
        self.job = None
        self.sim = None

    def run(self, glb, steps, lut, limit):
        self.job = (glb.copy(), list(steps), lut, limit, [])
        if self.sim is None:
            self.sim = Simulator(self.dut)
            self.sim.add_clock(1e-6)
            self.sim.add_testbench(self._bench)
        else:
            self.sim.reset()
        self.sim.run()
        return self.job[4]

    async def _bench(self, ctx):
        memory, queue, lut, limit, observed = self.job
        dut, word, banks = self.dut, self.setup.word, self.setup.banks

        def word_at(bank: int, addr: int) -> int:
            w = addr * banks + bank
            return int.from_bytes(memory[w * word:(w + 1) * word].tobytes(), "little")

        if lut is not None:  # the staging unit's LOADLUT, as the lut_write port carries it
            for index in range(LUT_BYTES // word):
                ctx.set(dut.lut_write.en, 1)
                ctx.set(dut.lut_write.index, index)
                ctx.set(dut.lut_write.data, int.from_bytes(bytes(lut[index * word:(index + 1) * word]), "little"))
                await ctx.tick()
            ctx.set(dut.lut_write.en, 0)
        rdata = [0] * banks
        current: Observed | None = None
        wait = queue[0].wait if queue else 0
        for cycle in range(limit):
            for b in range(banks):
                ctx.set(dut.glb[b].rdata, rdata[b])
            ready, idle = ctx.get(dut.dispatch.ready), ctx.get(dut.dispatch.idle)
            if current is not None:
                elapsed = cycle - current.start
                if ready and current.ready_after is None:
                    current.ready_after = elapsed
                if idle and current.idle_after is None:
                    current.idle_after = elapsed
                    current.glb = memory.copy()
                if ctx.get(dut.dispatch.error):
                    current.error_code = ctx.get(dut.dispatch.error_code)
                    if current.error_after is None:
                        current.error_after = elapsed
            started = False
            if queue and ready and (current is None or current.idle_after is not None):
                if wait > 0:
                    wait -= 1
                else:
                    step = queue.pop(0)
                    ctx.set(dut.dispatch.start, 1)
                    ctx.set(dut.dispatch.instr, encode(step.ins))
                    ctx.set(dut.dispatch.regs, _regs_word(step.regs))
                    current = Observed(start=cycle)
                    observed.append(current)
                    started = True
                    wait = queue[0].wait if queue else 0
            writes = []
            for b in range(banks):
                port = dut.glb[b]
                if not ctx.get(port.en):
                    continue
                if current is not None and current.idle_after is not None and not started:
                    current.late_accesses.append((cycle, b))
                addr = ctx.get(port.addr)
                we = ctx.get(port.we)
                if we:
                    assert we == (1 << word) - 1, "the vector unit writes whole words"
                    writes.append((addr * banks + b, ctx.get(port.wdata)))
                    current.writes += 1
                else:
                    rdata[b] = word_at(b, addr)
                    current.reads += 1
            for w, value in writes:  # visible to reads from the next cycle
                memory[w * word:(w + 1) * word] = np.frombuffer(value.to_bytes(word, "little"), dtype=np.uint8)
            await ctx.tick()
            if started:
                ctx.set(dut.dispatch.start, 0)
            if not queue and current is not None and current.idle_after is not None and (
                    cycle - current.start > current.idle_after + 2):
                break


_BENCHES: dict[str, _Bench] = {}


def simulate(setup: Setup, glb: np.ndarray, steps: list[Step], lut: np.ndarray | None = None,
             limit: int = 20000) -> list[Observed]:
    """Run ``steps`` back to back (each as soon as ``ready``, after its ``wait``) on the unit over a GLB model
    holding ``glb``; per step when ready/idle rose, the GLB then, the error code."""
    name = setup.arch.name
    if name not in _BENCHES:
        _BENCHES[name] = _Bench(setup)
    return _BENCHES[name].run(glb, steps, lut, limit)


def expect(setup: Setup, glb: np.ndarray, steps: list[Step], lut: np.ndarray | None = None) -> list[Expected]:
    """The executor's GLB after each step and the contract's cycles (an error: its code, no GLB)."""
    machine = Machine(setup.target, dram_bytes=64, acc_rows=16)
    machine.glb[:] = glb
    if lut is not None:
        machine.lut = np.asarray(lut, dtype=np.int64)
    out = []
    for index, step in enumerate(steps):
        machine.regs = dict(step.regs)
        cycles = instruction_cycles(step.ins, machine.regs, setup.target)
        try:
            machine.execute(step.ins, index)
        except ExecutionError as error:
            out.append(Expected(cycles, None, error.code))
            break
        out.append(Expected(cycles, machine.glb.copy()))
    return out


def accesses(setup: Setup, step: Step) -> tuple[int, int]:
    """(reads, writes) of GLB words an instruction needs: each source word once, each result word once; POOL
    every tap inside the image of every output word (over max(1, BATCH) images, as the timing walks them)."""
    ins, g = step.ins, (lambda reg: int(step.regs.get(reg, 0)))  # noqa: E731
    if ins.op is Op.VACT:
        return ins["words"], ins["words"]
    if ins.op is Op.VADD:
        return 2 * ins["words"], ins["words"]
    cpw = max(1, g(Reg.IN_CP) // setup.word)
    oh = np.arange(g(Reg.OUT_H)).reshape(-1, 1) * g(Reg.STRIDE_H) - g(Reg.PAD_H)
    ow = np.arange(g(Reg.OUT_W)).reshape(-1, 1) * g(Reg.STRIDE_W) - g(Reg.PAD_W)
    rows = ((oh + np.arange(g(Reg.KH)) >= 0) & (oh + np.arange(g(Reg.KH)) < g(Reg.IN_H))).sum(axis=1)
    cols = ((ow + np.arange(g(Reg.KW)) >= 0) & (ow + np.arange(g(Reg.KW)) < g(Reg.IN_W))).sum(axis=1)
    images = max(1, g(Reg.BATCH))
    moved = g(Reg.BATCH) * (g(Reg.IN_CP) > 0)
    return (int(np.outer(rows, cols).sum()) * cpw * images,
            g(Reg.OUT_H) * g(Reg.OUT_W) * cpw * moved)


def check(setup: Setup, glb: np.ndarray, steps: list[Step], lut=None, cycles_offset: int = 0) -> list[Observed]:
    """Simulate and compare with ``expect`` (``cycles_offset`` added to every expected count): raises
    AssertionError on any difference in cycles, GLB bytes or error code."""
    observed = simulate(setup, glb, steps, lut)
    expected = expect(setup, glb, steps, lut)
    assert len(observed) == len(steps), f"{len(observed)} of {len(steps)} instructions started"
    for index, (seen, want) in enumerate(zip(observed, expected)):
        name = steps[index].ins.op.name
        if want.error_code:
            assert seen.error_code == want.error_code, f"step {index} {name}: error {seen.error_code}, " \
                                                       f"expected {want.error_code}"
            return observed
        assert seen.error_code == 0, f"step {index} {name}: unexpected error {seen.error_code}"
        cycles = want.cycles + cycles_offset
        assert seen.idle_after == cycles, f"step {index} {name}: idle after {seen.idle_after}, expected {cycles}"
        assert seen.ready_after == cycles, f"step {index} {name}: ready after {seen.ready_after}, expected {cycles}"
        assert not seen.late_accesses, f"step {index} {name}: GLB accesses while idle {seen.late_accesses[:4]}"
        assert (seen.reads, seen.writes) == accesses(setup, steps[index]), \
            f"step {index} {name}: {seen.reads} reads, {seen.writes} writes; expected {accesses(setup, steps[index])}"
        diff = np.flatnonzero(seen.glb != want.glb)
        assert diff.size == 0, (f"step {index} {name}: {diff.size} GLB bytes differ, first at {diff[0]}: "
                                f"{seen.glb[diff[0]]} != {want.glb[diff[0]]}")
    return observed


# -- instruction makers -------------------------------------------------------------------------------------
def random_glb(setup: Setup, rng) -> np.ndarray:
    return rng.integers(0, 256, size=setup.params.glb_bytes, dtype=np.uint8)


def tail_regs(rng, lut: bool) -> dict:
    lo = int(rng.integers(-128, 0))
    hi = int(rng.integers(0, 128))
    regs = {Reg.LUT_EN: int(lut), Reg.ZP_OUT: int(rng.integers(-20, 21)), Reg.CLAMP_LO: lo, Reg.CLAMP_HI: hi}
    if lut:
        regs.update({Reg.ZP_PRE: int(rng.integers(-30, 31)), Reg.PRE_LO: int(rng.integers(-128, -60)),
                     Reg.PRE_HI: int(rng.integers(60, 128))})
    return regs


def multiplier(rng) -> tuple[int, int]:
    """(VMULT, VSHIFT) giving values around the int8 range: M in [2^29, 2^31), S near 30."""
    return int(rng.integers(1 << 29, 1 << 31)), int(rng.integers(28, 34))


def vact(setup: Setup, rng, words: int, lut: bool, src: int, dst: int) -> Step:
    mult, shift = multiplier(rng)
    regs = {Reg.ZP_IN: int(rng.integers(-128, 128)), Reg.VMULT1: mult, Reg.VSHIFT: shift, **tail_regs(rng, lut)}
    return Step(Instruction(Op.VACT, {"src": src, "dst": dst, "words": words}), regs)


def vadd(setup: Setup, rng, words: int, lut: bool, src: int, src2: int, dst: int) -> Step:
    m1, shift = multiplier(rng)
    m2 = int(rng.integers(1 << 28, 1 << 31))
    regs = {Reg.ZP_IN: int(rng.integers(-128, 128)), Reg.ZP_IN2: int(rng.integers(-128, 128)), Reg.VMULT1: m1,
            Reg.VMULT2: m2, Reg.VSHIFT: shift, **tail_regs(rng, lut)}
    return Step(Instruction(Op.VADD, {"src": src, "src2": src2, "dst": dst, "words": words}), regs)


def pool(setup: Setup, rng, *, average: bool, h: int, w: int, cpw: int, k: tuple, stride: tuple, pad: tuple,
         batch: int, src: int, dst: int, lut: bool = False) -> Step:
    oh = (h + 2 * pad[0] - k[0]) // stride[0] + 1
    ow = (w + 2 * pad[1] - k[1]) // stride[1] + 1
    regs = {Reg.BATCH: batch, Reg.IN_H: h, Reg.IN_W: w, Reg.IN_CP: cpw * setup.word, Reg.KH: k[0], Reg.KW: k[1],
            Reg.STRIDE_H: stride[0], Reg.STRIDE_W: stride[1], Reg.PAD_H: pad[0], Reg.PAD_W: pad[1],
            Reg.OUT_H: oh, Reg.OUT_W: ow}
    if average:
        shift = int(rng.integers(28, 33))
        regs.update({Reg.ZP_IN: int(rng.integers(-128, 128)), Reg.VMULT1: min((1 << shift) // (k[0] * k[1]), 2**31 - 1),
                     Reg.VSHIFT: shift, **tail_regs(rng, lut)})
    return Step(Instruction(Op.POOL, {"mode": int(average), "src": src, "dst": dst}), regs)


def random_lut(rng) -> np.ndarray:
    return rng.integers(0, 256, size=LUT_BYTES, dtype=np.uint8)


# -- tests --------------------------------------------------------------------------------------------------
def test_vact_random_back_to_back(setup):
    """Random VACTs, ragged word counts, without a table, one after another: values and cycles exact."""
    rng = np.random.default_rng(1)
    word, banks = setup.word, setup.banks
    steps = []
    for i in range(4):
        words = int(rng.integers(1, 3 * banks + 2))
        src = int(rng.integers(0, 200)) * word
        steps.append(vact(setup, rng, words, False, src, src + (words + int(rng.integers(0, 9))) * word + 4096))
    check(setup, random_glb(setup, rng), steps)


def test_vact_with_table(setup):
    """VACT through a random table (written through lut_write), clamps before and after it."""
    rng = np.random.default_rng(2)
    word, banks = setup.word, setup.banks
    steps = [vact(setup, rng, 2 * banks + 1, True, 3 * word, 1000 * word),
             vact(setup, rng, 1, True, 5 * word, 2001 * word)]
    check(setup, random_glb(setup, rng), steps, lut=random_lut(rng))


def test_vadd_random(setup):
    """Random VADDs, with and without the table, unaligned banks for a, b and the result."""
    rng = np.random.default_rng(3)
    word, banks = setup.word, setup.banks
    lut = random_lut(rng)
    steps = [vadd(setup, rng, int(rng.integers(1, 3 * banks + 2)), bool(i % 2), (7 + i) * word,
                  (301 + 2 * i) * word, (902 + 3 * i) * word) for i in range(4)]
    check(setup, random_glb(setup, rng), steps, lut=lut)


def test_vact_in_place(setup):
    """dst == src: every group is read before it is overwritten."""
    rng = np.random.default_rng(4)
    steps = [vact(setup, rng, 3 * setup.banks + 3, False, 64 * setup.word, 64 * setup.word)]
    check(setup, random_glb(setup, rng), steps)


@pytest.mark.parametrize("average", [False, True], ids=["max", "avg"])
def test_pool_kernels(setup, average):
    """Max and average pooling: 2x2 stride 2, 3x3 stride 1 padding 1, 3x3 stride 2 padding 1 over a batch of 2,
    channel pitches of 1-3 words."""
    rng = np.random.default_rng(5 + average)
    word = setup.word
    cases = [dict(h=4, w=5, cpw=2, k=(2, 2), stride=(2, 2), pad=(0, 0), batch=1),
             dict(h=4, w=4, cpw=1, k=(3, 3), stride=(1, 1), pad=(1, 1), batch=1),
             dict(h=5, w=3, cpw=3, k=(3, 3), stride=(2, 2), pad=(1, 1), batch=2)]
    steps = [pool(setup, rng, average=average, src=(40 + 3 * i) * word, dst=(1500 + 7 * i) * word, **case)
             for i, case in enumerate(cases)]
    check(setup, random_glb(setup, rng), steps)


def test_pool_average_with_table(setup):
    """Average pooling through the table, 3x2 window, stride 1x2, padding 1x0."""
    rng = np.random.default_rng(7)
    steps = [pool(setup, rng, average=True, h=3, w=6, cpw=2, k=(3, 2), stride=(1, 2), pad=(1, 0), batch=1,
                  src=9 * setup.word, dst=700 * setup.word, lut=True)]
    check(setup, random_glb(setup, rng), steps, lut=random_lut(rng))


def test_global_average_pool(setup):
    """Global average pooling: one window covering a 5x5 image, two images, two channel words."""
    rng = np.random.default_rng(8)
    steps = [pool(setup, rng, average=True, h=5, w=5, cpw=2, k=(5, 5), stride=(1, 1), pad=(0, 0), batch=2,
                  src=13 * setup.word, dst=999 * setup.word)]
    check(setup, random_glb(setup, rng), steps)


def test_mixed_back_to_back(setup):
    """VACT, POOL, VADD each started the cycle it is ready: each reads what the one before it wrote."""
    rng = np.random.default_rng(9)
    word = setup.word
    steps = [vact(setup, rng, 12, False, 100 * word, 400 * word),
             pool(setup, rng, average=False, h=3, w=2, cpw=2, k=(2, 2), stride=(1, 1), pad=(0, 0), batch=1,
                  src=400 * word, dst=800 * word),
             vadd(setup, rng, 4, False, 800 * word, 400 * word, 1200 * word)]
    observed = check(setup, random_glb(setup, rng), steps)
    assert [b.start - a.start for a, b in zip(observed, observed[1:])] == [a.idle_after for a in observed[:-1]]


def test_one_word_a_pass_for_every_ragged_length(setup):
    """VACT and VADD of 1 .. 2 banks + 1 words, back to back: the multipliers take one word's products a cycle
    (VADD: a, then b), so with two banks or more VACT takes words + VECTOR_LATENCY cycles and VADD twice the words
    + VECTOR_LATENCY (system_timing.vector_slots); values and cycles exact."""
    rng = np.random.default_rng(20)
    word, banks = setup.word, setup.banks
    lengths = range(1, 2 * banks + 2)
    assert [vector_slots(n, 1, setup.arch) for n in lengths] == list(lengths)
    assert [vector_slots(n, 2, setup.arch) for n in lengths] == [2 * n for n in lengths]
    steps = []
    for n in lengths:
        steps.append(vact(setup, rng, n, bool(n % 2), (3 + n) * word, (500 + 20 * n) * word))
        steps.append(vadd(setup, rng, n, bool(n % 3 == 0), (5 + 2 * n) * word, (200 + 3 * n) * word,
                          (1000 + 20 * n) * word))
    observed = check(setup, random_glb(setup, rng), steps, lut=random_lut(rng))
    assert [item.idle_after for item in observed] == [VECTOR_SETUP_CYCLES + passes * n + VECTOR_LATENCY for n in lengths
                                                      for passes in (1, 2)]


@pytest.mark.parametrize("op", [Op.VACT, Op.VADD], ids=["vact", "vadd"])
def test_zero_points_and_multipliers_at_the_int32_extremes(setup, op):
    """Any int32 ZP_IN, ZP_IN2, VMULT1, VMULT2 and shifts 1 and 62: the unit's a x M - ZP_IN x M (each product
    int8 or a zero point's half by 32 bits) is the executor's (a - ZP_IN) x M modulo 2^64, bit for bit."""
    rng = np.random.default_rng(21 + (op is Op.VADD))
    word = setup.word
    extremes = [-(2**31), 2**31 - 1, -1, 1 << 17, -(1 << 17) - 1]
    steps = []
    for i in range(6):
        words = int(rng.integers(1, 2 * setup.banks + 2))
        if op is Op.VACT:
            step = vact(setup, rng, words, bool(i % 2), (10 + 40 * i) * word, (900 + 40 * i) * word)
        else:
            step = vadd(setup, rng, words, bool(i % 2), (10 + 40 * i) * word, (300 + 40 * i) * word,
                        (900 + 40 * i) * word)
        for reg in (Reg.ZP_IN, Reg.ZP_IN2, Reg.VMULT1, Reg.VMULT2):
            step.regs[reg] = int(rng.choice(extremes)) if rng.random() < 0.7 else int(rng.integers(-(2**31), 2**31))
        step.regs[Reg.VSHIFT] = int(rng.choice([1, 62, int(rng.integers(1, 63))]))
        steps.append(step)
    check(setup, random_glb(setup, rng), steps)


def test_average_pool_with_wide_window_sums_and_empty_windows(setup):
    """Average pooling whose window sums need all 32 bits (ZP_IN near -2^24: the sum goes through the multipliers
    in two halves), with windows in the padding beside windows with taps (one pass each): exact."""
    rng = np.random.default_rng(23)
    word = setup.word
    steps = []
    for i, (k, pad) in enumerate((((1, 1), (1, 1)), ((3, 3), (1, 1)), ((2, 1), (1, 2)))):
        step = pool(setup, rng, average=True, h=3, w=4, cpw=2, k=k, stride=(1, 1), pad=pad, batch=1,
                    src=(20 + 200 * i) * word, dst=(1200 + 200 * i) * word, lut=bool(i % 2))
        step.regs[Reg.ZP_IN] = -(1 << 24) + int(rng.integers(-1000, 1000))
        step.regs[Reg.VMULT1] = int(rng.integers(1 << 20, 1 << 31))
        step.regs[Reg.VSHIFT] = int(rng.integers(40, 60))
        steps.append(step)
    check(setup, random_glb(setup, rng), steps, lut=random_lut(rng))


def test_wrong_cycle_expectation_fails(setup):
    """The checker is strict: one cycle more than the contract is reported."""
    rng = np.random.default_rng(10)
    steps = [vact(setup, rng, 3, False, 0, 64 * setup.word)]
    with pytest.raises(AssertionError, match="idle after"):
        check(setup, random_glb(setup, rng), steps, cycles_offset=1)


@pytest.mark.parametrize("case", ["src_range", "src2_range", "dst_range", "shift_low", "shift_high", "pool_src",
                                  "pool_shift", "pool_dst"])
def test_errors(setup, case):
    """Error 2 for a range leaving the GLB, 7 for a shift outside 1..62, as the executor; sources first. The
    error rises, and the unit is ready again, in the cycle the slots would have begun (VECTOR_SETUP_CYCLES after
    the start: the dispatcher issues nothing before it), and nothing is written."""
    rng = np.random.default_rng(11)
    word, words_total = setup.word, setup.params.glb_words
    if case.startswith("pool"):
        step = pool(setup, rng, average=True, h=4, w=4, cpw=1, k=(2, 2), stride=(2, 2), pad=(0, 0), batch=1,
                    src=0, dst=64 * word)
        if case == "pool_src":
            step.ins = Instruction(Op.POOL, {"mode": 1, "src": (words_total - 15) * word, "dst": 64 * word})
        elif case == "pool_shift":
            step.regs[Reg.VSHIFT] = 0
        else:
            step.ins = Instruction(Op.POOL, {"mode": 1, "src": 0, "dst": (words_total - 3) * word})
    elif case == "src2_range":
        step = vadd(setup, rng, 8, False, 0, (words_total - 7) * word, 64 * word)
    else:
        step = vact(setup, rng, 8, False, 0, 64 * word)
        if case == "src_range":
            step.ins = Instruction(Op.VACT, {"src": (words_total - 7) * word, "dst": 0, "words": 8})
            step.regs[Reg.VSHIFT] = 0  # the source is checked first
        elif case == "dst_range":
            step.ins = Instruction(Op.VACT, {"src": 0, "dst": (words_total - 7) * word, "words": 8})
        elif case == "shift_low":
            step.regs[Reg.VSHIFT] = 0
        else:
            step.regs[Reg.VSHIFT] = 63
    want = expect(setup, random_glb(setup, rng), [step])
    assert want[0].error_code in (2, 7)
    seen = simulate(setup, random_glb(setup, rng), [step], limit=VECTOR_SETUP_CYCLES + 6)
    assert seen[0].error_code == want[0].error_code
    assert seen[0].error_after == VECTOR_SETUP_CYCLES
    assert seen[0].writes == 0 and seen[0].ready_after == VECTOR_SETUP_CYCLES


def test_pool_random_geometries(setup):
    """Seeded random pooling layers back to back: kernels 1-6 per side (wider and taller than the banks + 1 taps
    a read cycle looks ahead), strides 1-3, padding up to half the kernel, batches, pitches of 1-3 words, either
    mode, at random word addresses."""
    rng = np.random.default_rng(12)
    word, steps, base = setup.word, [], 64
    while len(steps) < 8:
        k = (int(rng.integers(1, 7)), int(rng.integers(1, 7)))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        pad = (int(rng.integers(0, k[0] // 2 + 1)), int(rng.integers(0, k[1] // 2 + 1)))
        h, w = int(rng.integers(1, 9)), int(rng.integers(1, 9))
        if h + 2 * pad[0] < k[0] or w + 2 * pad[1] < k[1]:
            continue
        cpw, batch = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        src = base + int(rng.integers(0, 4))
        dst = src + batch * h * w * cpw + int(rng.integers(0, 4))
        steps.append(pool(setup, rng, average=bool(rng.integers(0, 2)), h=h, w=w, cpw=cpw, k=k, stride=stride,
                          pad=pad, batch=batch, src=src * word, dst=dst * word, lut=bool(rng.integers(0, 2))))
        base = dst + batch * h * w * cpw + 8
    check(setup, random_glb(setup, rng), steps, lut=random_lut(rng))


def test_long_vectors_at_the_glb_end(setup):
    """A VACT reading the GLB's last words and a VADD writing them (ranges ending exactly at its end), 150 words
    each, with a start a few cycles after the previous one is ready."""
    rng = np.random.default_rng(13)
    word, end = setup.word, setup.params.glb_words
    steps = [vact(setup, rng, 150, True, (end - 150) * word, 8 * word),
             vadd(setup, rng, 150, False, 8 * word, 400 * word, (end - 150) * word)]
    steps[1].wait = 3
    check(setup, random_glb(setup, rng), steps, lut=random_lut(rng))


def test_pool_output_at_the_glb_end(setup):
    """A POOL whose output ends exactly at the GLB's end is no error."""
    rng = np.random.default_rng(14)
    end = setup.params.glb_words
    steps = [pool(setup, rng, average=False, h=4, w=4, cpw=2, k=(2, 2), stride=(2, 2), pad=(0, 0), batch=1,
                  src=0, dst=(end - 8) * setup.word)]
    check(setup, random_glb(setup, rng), steps)


def test_pool_empty_batch_takes_the_contract_cycles(setup):
    """BATCH = 0: the executor moves no byte; the contract still counts one image (max(1, BATCH)) of cycles."""
    rng = np.random.default_rng(15)
    step = pool(setup, rng, average=True, h=3, w=3, cpw=1, k=(2, 2), stride=(1, 1), pad=(0, 0), batch=1,
                src=0, dst=100 * setup.word)
    step.regs[Reg.BATCH] = 0
    check(setup, random_glb(setup, rng), [step])


def test_pool_window_in_the_padding(setup):
    """A POOL of one output word whose single window lies in the padding: one slot (its write) and the latency;
    max writes 0 (the executor's fill, as int8), average the tail of rq(0)."""
    rng = np.random.default_rng(18)
    steps = []
    for average in (False, True):
        step = pool(setup, rng, average=average, h=1, w=1, cpw=1, k=(1, 1), stride=(1, 1), pad=(1, 1), batch=1,
                    src=0, dst=(200 + average) * setup.word)
        step.regs.update({Reg.OUT_H: 1, Reg.OUT_W: 1})
        steps.append(step)
    observed = check(setup, random_glb(setup, rng), steps)
    assert [item.idle_after for item in observed] == [VECTOR_SETUP_CYCLES + 1 + VECTOR_LATENCY] * 2


def test_max_pool_ignores_the_shift(setup):
    """Max pooling has no requantization: a VSHIFT outside 1..62 is no error there (as the executor)."""
    rng = np.random.default_rng(19)
    step = pool(setup, rng, average=False, h=3, w=3, cpw=1, k=(2, 2), stride=(1, 1), pad=(0, 0), batch=1,
                src=0, dst=100 * setup.word)
    step.regs[Reg.VSHIFT] = 0
    check(setup, random_glb(setup, rng), [step])


@pytest.mark.parametrize("op", [Op.GATHER, Op.LOADLUT, Op.WRITEBACK, Op.MATMUL])
def test_other_opcodes_are_not_taken(setup, op):
    """A start with another unit's opcode leaves the unit ready and idle, with no GLB access."""
    rng = np.random.default_rng(16)
    fields = {Op.GATHER: {"count": 3, "lanes": 2}, Op.LOADLUT: {}, Op.WRITEBACK: {"m": 1, "n": 1},
              Op.MATMUL: {"m": 1, "k": 1, "n": 1}}[op]
    seen = simulate(setup, random_glb(setup, rng), [Step(Instruction(op, fields), {Reg.VSHIFT: 5})], limit=8)
    assert seen[0].ready_after == 1 and seen[0].idle_after == 1
    assert seen[0].error_code == 0 and not seen[0].late_accesses
    assert np.array_equal(seen[0].glb, random_glb(setup, np.random.default_rng(16)))


@pytest.mark.parametrize("case", ["src", "dst", "pitch"])
def test_addresses_off_the_word_grid_are_error_2(setup, case):
    """The unit moves whole words: a source, destination or POOL pitch that is not whole words stops with error 2
    (the executor has no such case; the compiler places every tensor on whole words)."""
    rng = np.random.default_rng(17)
    word = setup.word
    if case == "pitch":
        step = pool(setup, rng, average=False, h=2, w=2, cpw=1, k=(2, 2), stride=(1, 1), pad=(0, 0), batch=1,
                    src=0, dst=64 * word)
        step.regs[Reg.IN_CP] = word + 1
    else:
        step = vact(setup, rng, 4, False, 0, 64 * word)
        step.ins = Instruction(Op.VACT, {"src": 1 if case == "src" else 0, "dst": 64 * word + (case == "dst"),
                                         "words": 4})
    glb = random_glb(setup, rng)
    seen = simulate(setup, glb, [step], limit=10)
    assert seen[0].error_code == 2
    assert np.array_equal(seen[0].glb, glb)


def test_converts_to_verilog_and_lints():
    """The unit converts to Verilog (hdl.emit.to_verilog) and Verilator lints it clean (fpga-4x4)."""
    text = to_verilog(VectorUnit(Setup("fpga-4x4").params), "vector_unit")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "vector_unit.v")
        with open(path, "w") as handle:
            handle.write(text)
        result = verilator_lint(path, "vector_unit")
    assert result.clean, result.output[-2000:]
