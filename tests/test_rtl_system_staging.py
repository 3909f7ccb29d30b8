"""The staging unit (hdl.system.staging) under amaranth.sim with a banked GLB model: GATHER slot contents bit-exact
against the executor's im2col (codesign.compiler.executor), WRITEBACK / LOADP / LOADLUT effects likewise, and every
instruction's cycles (idle and ready rise) exactly system_timing.instruction_cycles, on fpga-8x8 and fpga-4x4."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pytest
from amaranth.sim import Simulator

from codesign.arch_loader import load_arch
from codesign.compiler.executor import Machine
from codesign.contract.isa import GatherMode, Instruction, Op, Reg, encode
from codesign.contract import system_timing
from codesign.contract.system_timing import (
    LUT_BYTES, Target, a_cycles, b_rows, gather_addresses, instruction_cycles,
)
from codesign.errors import HdlError
from hdl.system.params import system_params_from_arch
from hdl.system.staging import StagingUnit

ARCHS = ["fpga-8x8", "fpga-4x4"]


def _regs_value(regs: dict) -> int:
    return sum((int(v) & 0xFFFFFFFF) << (32 * int(r)) for r, v in regs.items())


@dataclass
class Run:
    """What a run of instructions on the unit left: per instruction its issue cycle and the cycles until idle and
    ready rose, the GLB, the parameter and table writes (cycle, values), the slots read back, the errors."""

    issue: list = field(default_factory=list)
    done: list = field(default_factory=list)
    ready: list = field(default_factory=list)
    glb: np.ndarray = None
    params: list = field(default_factory=list)
    lut: list = field(default_factory=list)
    reads: list = field(default_factory=list)  # (cycle, GLB word) of every read
    slots: dict = field(default_factory=dict)
    error: tuple = (0, 0)


class Bench:
    """The unit in a simulator with a GLB model (word w in bank w mod banks, a read answered the cycle after, byte
    enables on writes; one port per bank, so at most one access per bank a cycle) and an output-buffer model."""

    def __init__(self, arch_name: str, flow: str = "ws"):
        self.arch = load_arch(arch_name)
        self.params = system_params_from_arch(self.arch, flow)
        self.target = Target(self.arch, flow)
        self.wb, self.banks = self.params.word_bytes, self.params.glb_banks

    def run(self, program, glb: np.ndarray, obufs=None, readback=(), max_cycles=200_000) -> Run:
        """``program``: (Instruction, regs) pairs, each started the first cycle the unit is ready; ``readback``:
        (pair, a rows, b rows) read through the core's slot ports once the last instruction is done."""
        dut = StagingUnit(self.params)
        wb, banks = self.wb, self.banks
        glb = glb.copy()
        out = Run()
        idle_seen = []

        def word(w):
            return int.from_bytes(glb[w * wb:(w + 1) * wb].tobytes(), "little")

        async def bench(ctx):
            reads, obuf_read = {}, None
            queue = list(program)
            cycle = 0
            while cycle < max_cycles:
                for b, w in reads.items():  # a bank not read keeps its last word (a block RAM's output register)
                    ctx.set(dut.glb[b].rdata, word(w))
                if obuf_read is not None:
                    rows = obufs[obuf_read[0]]
                    row = rows[obuf_read[1]] if obuf_read[1] < len(rows) else np.zeros(self.params.cols)
                    ctx.set(dut.obuf_read.data, [int(v) for v in np.asarray(row, np.int64).astype(np.int8)])
                idle, ready = ctx.get(dut.dispatch.idle), ctx.get(dut.dispatch.ready)
                idle_seen.append((idle, ready))
                if not queue and idle and all(t < cycle for t in out.issue):
                    break
                started = False
                if queue and ready:
                    ins, regs = queue.pop(0)
                    ctx.set(dut.dispatch.start, 1)
                    ctx.set(dut.dispatch.instr, encode(ins))
                    ctx.set(dut.dispatch.regs, _regs_value(regs))
                    out.issue.append(cycle)
                    started = True
                    # neither ready nor idle depends on start in the same cycle (ports.dispatch_signature)
                    assert (ctx.get(dut.dispatch.idle), ctx.get(dut.dispatch.ready)) == (idle, ready)
                reads, writes = {}, []
                for b in range(banks):
                    port = dut.glb[b]
                    if ctx.get(port.en):
                        w = ctx.get(port.addr) * banks + b
                        we = ctx.get(port.we)
                        assert w < self.params.glb_words
                        if we:
                            writes.append((w, we, ctx.get(port.wdata)))
                        else:
                            reads[b] = w
                            out.reads.append((cycle, w))
                for w, we, data in writes:
                    for j in range(wb):
                        if we >> j & 1:
                            glb[w * wb + j] = (data >> (8 * j)) & 0xFF
                obuf_read = None
                if ctx.get(dut.obuf_read.en):
                    obuf_read = (ctx.get(dut.obuf_read.buf), ctx.get(dut.obuf_read.addr))
                pw = dut.param_write
                if ctx.get(pw.en):
                    out.params.append((cycle, ctx.get(pw.index), ctx.get(pw.bias), ctx.get(pw.mult),
                                       ctx.get(pw.shift)))
                if ctx.get(dut.lut_write.en):
                    out.lut.append((cycle, ctx.get(dut.lut_write.index), ctx.get(dut.lut_write.data)))
                await ctx.tick()
                if started:
                    ctx.set(dut.dispatch.start, 0)
                cycle += 1
            else:
                raise AssertionError("the unit did not finish")
            out.error = (ctx.get(dut.dispatch.error), ctx.get(dut.dispatch.error_code))
            for pair, a_rows, b_rows_ in readback:  # the core unit's view, from the cycle the unit is idle
                for name, count in (("a", a_rows), ("b", b_rows_)):
                    port = dut.a_read if name == "a" else dut.b_read
                    values = []
                    for row in range(count):
                        ctx.set(port.pair, pair)
                        ctx.set(port.addr, row)
                        ctx.set(port.en, 1)
                        await ctx.tick()
                        values.append(ctx.get(port.data))
                    ctx.set(port.en, 0)
                    raw = b"".join(v.to_bytes(wb, "little") for v in values)
                    out.slots[(name, pair)] = np.frombuffer(raw, dtype=np.int8).reshape(count, wb).astype(np.int64)

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_testbench(bench)
        sim.run()
        for t in out.issue:  # the first cycle after the start that idle (ready) is high again
            out.done.append(next(c for c in range(t + 1, len(idle_seen)) if idle_seen[c][0]) - t
                            if any(i for i, _ in idle_seen[t + 1:]) else None)
            out.ready.append(next((c for c in range(t + 1, len(idle_seen)) if idle_seen[c][1]), len(idle_seen)) - t)
        out.glb = glb
        return out

    def machine(self, glb: np.ndarray) -> Machine:
        machine = Machine(self.target, 16, acc_rows=16)
        machine.glb[:] = glb
        return machine

    def check_cycles(self, run: Run, program) -> None:
        """Every instruction's idle and ready rise exactly ``instruction_cycles`` after its start."""
        expected = [instruction_cycles(ins, regs, self.target) for ins, regs in program]
        assert run.done == expected, (run.done, expected)
        assert run.ready == expected
        assert all(b - a >= c for a, b, c in zip(run.issue, run.issue[1:], expected))  # started when ready


# ---- conv geometries -----------------------------------------------------------------------------------------
def _conv(rng, wb, *, groups=1, cin_g=None, kernel=None, batch=None, stride=None, pad=None, dil=None, size=None):
    cin_g = cin_g or int(rng.integers(1, 2 * wb + 1))
    cin = cin_g * groups
    h, w = size or (int(rng.integers(1, 8)), int(rng.integers(1, 8)))
    kh, kw = kernel or (int(rng.choice([1, 2, 3])), int(rng.choice([1, 3])))
    sh, sw = stride or (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    ph, pw = pad if pad is not None else (int(rng.integers(0, 3)), int(rng.integers(0, 2)))
    dh, dw = dil or (int(rng.integers(1, 3)), 1)
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if oh < 1 or ow < 1:  # a kernel larger than the padded image: shrink it to 1x1
        kh = kw = 1
        oh, ow = (h + 2 * ph - 1) // sh + 1, (w + 2 * pw - 1) // sw + 1
    cp = -(-cin // wb) * wb
    n = batch or int(rng.integers(1, 3))
    in_addr = wb * int(rng.integers(0, 64))
    regs = {Reg.IN_ADDR: in_addr, Reg.IN_H: h, Reg.IN_W: w, Reg.IN_CP: cp, Reg.BATCH: n, Reg.KH: kh, Reg.KW: kw,
            Reg.STRIDE_H: sh, Reg.STRIDE_W: sw, Reg.PAD_H: ph, Reg.PAD_W: pw, Reg.DIL_H: dh, Reg.DIL_W: dw,
            Reg.OUT_H: oh, Reg.OUT_W: ow, Reg.CIN_G: cin_g, Reg.ZP_IN: int(rng.integers(-128, 128))}
    end = in_addr + n * h * w * cp
    return regs, n * oh * ow, kh * kw * cin_g, groups, end


def _gather(rng, bench, regs, pixels, k_total, groups, end, mode, slot=0, max_count=40):
    rows, wb = bench.params.rows, bench.wb
    if mode == GatherMode.IM2COL_WS:
        m0 = int(rng.integers(0, pixels))
        count = int(rng.integers(1, min(pixels - m0, max_count) + 1))
        k0 = int(rng.integers(0, k_total))
        lanes = int(rng.integers(1, min(rows, k_total - k0) + 1))
    else:
        m0 = int(rng.integers(0, pixels))
        lanes = int(rng.integers(1, min(rows, pixels - m0) + 1))
        k0 = int(rng.integers(0, k_total))
        count = int(rng.integers(1, min(k_total - k0, max_count) + 1))
    k = lanes if mode == GatherMode.IM2COL_WS else count
    b_addr = -(-end // wb) * wb + wb * int(rng.integers(0, 8))
    assert b_addr + k * wb <= bench.params.glb_bytes
    return Instruction(Op.GATHER, {"slot": slot, "mode": int(mode), "count": count, "lanes": lanes, "m0": m0,
                                   "k0": k0, "group": int(rng.integers(0, groups)), "b_addr": b_addr})


def _expected_slots(bench, glb, ins, regs):
    machine = bench.machine(glb)
    machine.regs = dict(regs)
    machine._gather(ins, 0)
    a = machine.slots[2 * ins["slot"]][:ins["count"], :bench.wb]
    b = machine.slots[2 * ins["slot"] + 1][:b_rows(ins), :bench.wb]
    return (a + 128) % 256 - 128, b


def _expected_reads(bench, ins, regs) -> Counter:
    """The GLB words a GATHER reads: per row of A the distinct words its lanes need that the word buffer (the last
    2 x rows distinct words read) does not hold, and the k words of B."""
    words = np.where((a := gather_addresses(ins, regs)) >= 0, a // bench.wb, -1)
    held, reads = [], []
    for row in words.tolist():
        fresh = [w for i, w in enumerate(row) if w >= 0 and w not in held and w not in row[:i]]
        reads += fresh
        held = (held + fresh)[-2 * bench.params.rows:]
    return Counter(reads + [ins["b_addr"] // bench.wb + i for i in range(b_rows(ins))])


def _check_gathers(bench, rng, cases, glb=None):
    """Run the GATHERs one after another (alternating pairs), check the cycles, the words each read (every word
    once while the buffer holds it), and each pair's last contents."""
    glb = rng.integers(0, 256, bench.params.glb_bytes, dtype=np.uint8) if glb is None else glb
    program = [(ins, regs) for ins, regs in cases]
    last = {}
    for ins, regs in program:
        last[ins["slot"]] = (ins, regs)
    readback = [(pair, ins["count"], b_rows(ins)) for pair, (ins, regs) in last.items()]
    run = bench.run(program, glb, readback=readback)
    assert run.error == (0, 0)
    bench.check_cycles(run, program)
    for (ins, regs), t, cycles in zip(program, run.issue, run.done):
        assert Counter(w for c, w in run.reads if t <= c < t + cycles) == _expected_reads(bench, ins, regs)
    for pair, (ins, regs) in last.items():
        a, b = _expected_slots(bench, glb, ins, regs)
        np.testing.assert_array_equal(run.slots[("a", pair)], a, err_msg=f"A of {ins}")
        np.testing.assert_array_equal(run.slots[("b", pair)], b, err_msg=f"B of {ins}")
    return run


# ---- GATHER --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("mode", [GatherMode.IM2COL_WS, GatherMode.IM2COL_OS])
def test_gather_of_random_conv_geometries_matches_the_executor_bit_for_bit_and_cycle_for_cycle(arch, mode):
    bench = Bench(arch, "ws" if mode == GatherMode.IM2COL_WS else "os")
    rng = np.random.default_rng(11 + int(mode) + 7 * ARCHS.index(arch))
    for kind in range(6):
        if kind == 0:  # 3x3, stride, padding, dilation, groups
            regs, pixels, k_total, groups, end = _conv(rng, bench.wb, groups=2)
        elif kind == 1:  # 1x1
            regs, pixels, k_total, groups, end = _conv(rng, bench.wb, kernel=(1, 1), pad=(0, 0))
        elif kind == 2:  # depthwise 3x3
            regs, pixels, k_total, groups, end = _conv(rng, bench.wb, groups=int(rng.integers(2, 9)), cin_g=1,
                                                       kernel=(3, 3), pad=(1, 1))
        elif kind == 3:  # an RGB-like input: one word holds a pixel's channels, taps straddle words
            regs, pixels, k_total, groups, end = _conv(rng, bench.wb, cin_g=3, kernel=(3, 3), pad=(1, 1),
                                                       stride=(1, 1), dil=(1, 1))
        elif kind == 4:  # batch > 1, strided, dilated
            regs, pixels, k_total, groups, end = _conv(rng, bench.wb, batch=3, stride=(2, 2), dil=(2, 2),
                                                       kernel=(3, 3), pad=(2, 2), size=(6, 7))
        else:  # wide channels, several words per pixel
            regs, pixels, k_total, groups, end = _conv(rng, bench.wb, cin_g=3 * bench.wb + 1, kernel=(1, 3))
        cases = [(_gather(rng, bench, regs, pixels, k_total, groups, end, mode, slot=s), regs) for s in (0, 1)]
        _check_gathers(bench, rng, cases)


def test_ws_gather_of_a_full_tile_reads_each_word_once():
    """A 3x3 conv over an 8-channel 5x5 image (fpga-8x8): every tap is a word, neighbours share them."""
    bench = Bench("fpga-8x8")
    rng = np.random.default_rng(3)
    regs, pixels, k_total, groups, end = _conv(rng, 8, cin_g=8, kernel=(3, 3), pad=(1, 1), stride=(1, 1),
                                               dil=(1, 1), size=(5, 5), batch=1)
    ins = Instruction(Op.GATHER, {"slot": 1, "mode": 0, "count": pixels, "lanes": 8, "m0": 0, "k0": 8,
                                  "group": 0, "b_addr": -(-end // 8) * 8})
    _check_gathers(bench, rng, [(ins, regs)])


@pytest.mark.parametrize("mode", [GatherMode.IM2COL_WS, GatherMode.IM2COL_OS])
def test_the_word_buffer_keeps_two_rows_of_words(mode, monkeypatch):
    """Words read more than ``rows`` distinct words ago are hit (each case is checked to take more cycles with a
    buffer of only ``rows`` words)."""
    bench = Bench("fpga-8x8", "ws" if mode == GatherMode.IM2COL_WS else "os")
    rng = np.random.default_rng(13)
    if mode == GatherMode.IM2COL_WS:  # a 5x1 window of one channel, stride 2 along w: the next output row's taps
        regs, pixels, k_total, groups, end = _conv(rng, 8, cin_g=1, kernel=(5, 1), pad=(1, 1), size=(6, 10),
                                                   stride=(1, 2), dil=(1, 1), batch=1)
        fields = {"count": 24, "lanes": 3, "m0": 0, "k0": 2}
    else:  # two words per pixel, a 1x3 window: beats over every k, lanes 8 pixels
        regs, pixels, k_total, groups, end = _conv(rng, 8, cin_g=16, kernel=(1, 3), pad=(0, 1), size=(2, 12),
                                                   stride=(1, 1), dil=(1, 1), batch=1)
        fields = {"count": k_total, "lanes": 8, "m0": 1, "k0": 0}
    ins = Instruction(Op.GATHER, {"slot": 0, "mode": int(mode), "group": 0, "b_addr": -(-end // 8) * 8, **fields})
    held = a_cycles(gather_addresses(ins, regs), bench.arch)
    monkeypatch.setattr(system_timing, "WORD_BUFFER_ROWS_FACTOR", 1)
    assert a_cycles(gather_addresses(ins, regs), bench.arch) > held
    monkeypatch.undo()
    _check_gathers(bench, rng, [(ins, regs)])


@pytest.mark.parametrize("arch", ARCHS)
def test_gather_pads_with_the_zero_point_and_zeroes_lanes_beyond_the_tile(arch):
    bench = Bench(arch)
    rng = np.random.default_rng(5)
    regs, pixels, k_total, groups, end = _conv(rng, bench.wb, cin_g=2, kernel=(3, 3), pad=(2, 2), size=(1, 2),
                                               stride=(1, 1), dil=(1, 1), batch=1)
    ins = Instruction(Op.GATHER, {"slot": 0, "mode": 0, "count": pixels, "lanes": bench.params.rows - 1,
                                  "m0": 0, "k0": 0, "group": 0, "b_addr": -(-end // bench.wb) * bench.wb})
    run = _check_gathers(bench, rng, [(ins, regs)])
    a = run.slots[("a", 0)]
    assert (a[:, bench.params.rows - 1:] == 0).all() and (a == regs[Reg.ZP_IN]).any()


def test_a_gather_of_the_largest_os_beat_count():
    """OS: 1024 rows of A (a slot's STAGE_ROWS) and 1024 rows of B (fpga-4x4: the quicker simulation)."""
    bench = Bench("fpga-4x4", "os")
    rng = np.random.default_rng(9)
    regs, pixels, k_total, groups, end = _conv(rng, 4, cin_g=128, kernel=(3, 3), pad=(1, 1), size=(3, 3),
                                               stride=(1, 1), dil=(1, 1), batch=1)
    ins = Instruction(Op.GATHER, {"slot": 1, "mode": 1, "count": 1024, "lanes": 4, "m0": 2, "k0": 0, "group": 0,
                                  "b_addr": -(-end // 4) * 4})
    _check_gathers(bench, rng, [(ins, regs)])


@pytest.mark.parametrize("arch", ARCHS)
def test_the_first_row_of_a_is_read_when_the_start_up_ends(arch):
    """B within the issue cycle (k <= banks), so the first later read is A's: ``gather_setup_cycles`` after issue
    (the divisions, the products of their quotients, the lanes' fill)."""
    bench = Bench(arch)
    rng = np.random.default_rng(17)
    regs, pixels, k_total, groups, end = _conv(rng, bench.wb, cin_g=2, kernel=(3, 3), pad=(0, 0), size=(5, 5),
                                               stride=(1, 1), dil=(1, 1), batch=1)
    ins = Instruction(Op.GATHER, {"slot": 0, "mode": 0, "count": 4, "lanes": bench.banks, "m0": 5, "k0": 3,
                                  "group": 0, "b_addr": -(-end // bench.wb) * bench.wb})
    run = _check_gathers(bench, rng, [(ins, regs)])
    t = run.issue[0]
    assert min(c for c, w in run.reads if c > t) == t + system_timing.gather_setup_cycles(bench.arch)


@pytest.mark.parametrize("mode", [GatherMode.IM2COL_WS, GatherMode.IM2COL_OS])
def test_a_gather_past_image_65535_matches_the_executor(mode):
    """One-byte 1x1 images: the image index n = m0 // (OH OW) above 16 bits (its high bits' product too)."""
    bench = Bench("fpga-8x8", "ws" if mode == GatherMode.IM2COL_WS else "os")
    rng = np.random.default_rng(19)
    regs = {Reg.IN_ADDR: 8, Reg.IN_H: 1, Reg.IN_W: 1, Reg.IN_CP: 1, Reg.KH: 1, Reg.KW: 1, Reg.STRIDE_H: 1,
            Reg.STRIDE_W: 1, Reg.DIL_H: 1, Reg.DIL_W: 1, Reg.OUT_H: 1, Reg.OUT_W: 1, Reg.CIN_G: 1, Reg.ZP_IN: 3}
    count, lanes = (9, 1) if mode == GatherMode.IM2COL_WS else (1, 8)
    ins = Instruction(Op.GATHER, {"slot": 1, "mode": int(mode), "count": count, "lanes": lanes, "m0": 100_003,
                                  "k0": 0, "group": 0, "b_addr": 0})
    assert (gather_addresses(ins, regs) >= 1 << 16).all()
    _check_gathers(bench, rng, [(ins, regs)])


def test_a_gather_of_geometry_registers_above_15_bits_matches_the_executor():
    """A 2 x 50000 image, stride 40000 and dilation 3 along w: every 16-bit factor taken unsigned."""
    bench = Bench("fpga-8x8")
    rng = np.random.default_rng(23)
    regs = {Reg.IN_ADDR: 16, Reg.IN_H: 2, Reg.IN_W: 50_000, Reg.IN_CP: 1, Reg.KH: 1, Reg.KW: 2, Reg.STRIDE_H: 1,
            Reg.STRIDE_W: 40_000, Reg.PAD_H: 0, Reg.PAD_W: 1, Reg.DIL_H: 1, Reg.DIL_W: 3, Reg.OUT_H: 2,
            Reg.OUT_W: 2, Reg.CIN_G: 1, Reg.ZP_IN: -5}
    ins = Instruction(Op.GATHER, {"slot": 0, "mode": 0, "count": 4, "lanes": 2, "m0": 0, "k0": 0, "group": 0,
                                  "b_addr": 100_024})
    addresses = gather_addresses(ins, regs)
    assert (addresses == system_timing.PAD).any() and addresses.max() > 1 << 16
    _check_gathers(bench, rng, [(ins, regs)])


def test_a_wrong_cycle_expectation_fails():
    bench = Bench("fpga-8x8")
    rng = np.random.default_rng(1)
    regs, pixels, k_total, groups, end = _conv(rng, 8, cin_g=8, kernel=(1, 1), pad=(0, 0), batch=1)
    ins = _gather(rng, bench, regs, pixels, k_total, groups, end, GatherMode.IM2COL_WS)
    glb = rng.integers(0, 256, bench.params.glb_bytes, dtype=np.uint8)
    run = bench.run([(ins, regs)], glb)
    bench.check_cycles(run, [(ins, regs)])
    run.done[0] += 1  # one cycle late
    with pytest.raises(AssertionError):
        bench.check_cycles(run, [(ins, regs)])


@pytest.mark.parametrize("fields, code", [({"count": 1025, "lanes": 1}, 5), ({"count": 1, "lanes": 9}, 5),
                                          ({"count": 4, "lanes": 4, "mode": 1, "b_addr": 131072 - 16}, 2),
                                          ({"count": 8, "lanes": 8, "m0": 60}, 2)])
def test_a_gather_beyond_a_slot_or_the_glb_is_an_error(fields, code):
    bench = Bench("fpga-8x8")
    regs = {Reg.IN_ADDR: 131072 - 8 * 64, Reg.IN_H: 9, Reg.IN_W: 8, Reg.IN_CP: 8, Reg.KH: 1, Reg.KW: 1,
            Reg.STRIDE_H: 1, Reg.STRIDE_W: 1, Reg.DIL_H: 1, Reg.DIL_W: 1, Reg.OUT_H: 9, Reg.OUT_W: 8, Reg.CIN_G: 8}
    ins = Instruction(Op.GATHER, {"slot": 0, "mode": 0, "m0": 0, "k0": 0, "group": 0, "b_addr": 0, **fields})
    machine = bench.machine(np.zeros(bench.params.glb_bytes, np.uint8))
    machine.regs = dict(regs)
    with pytest.raises(Exception) as raised:
        machine._gather(ins, 0)
    assert raised.value.code == code
    run = bench.run([(ins, regs)], np.zeros(bench.params.glb_bytes, np.uint8))
    assert run.error == (1, code)


# ---- WRITEBACK, LOADP, LOADLUT -------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ARCHS)
def test_writeback_writes_each_rows_lanes_with_byte_enables(arch):
    bench = Bench(arch)
    rng = np.random.default_rng(21)
    cols, wb = bench.params.cols, bench.wb
    glb = rng.integers(0, 256, bench.params.glb_bytes, dtype=np.uint8)
    program, obufs = [], [rng.integers(-128, 128, (64, cols)), rng.integers(-128, 128, (64, cols))]
    for trial in range(6):
        n = int(rng.integers(1, cols + 1))
        n0 = int(rng.integers(0, 3 * wb))  # any byte of a word, a row may span two words
        pitch = wb * int(rng.integers(1, 5))
        regs = {Reg.OUT_ADDR: wb * int(rng.integers(0, 100)), Reg.OUT_CP: pitch}
        program.append((Instruction(Op.WRITEBACK, {"obuf": trial % 2, "m": int(rng.integers(1, 40)), "n": n,
                                                   "m0": int(rng.integers(0, 50)), "n0": n0}), regs))
    run = bench.run(program, glb, obufs=obufs)
    assert run.error == (0, 0)
    bench.check_cycles(run, program)
    machine = bench.machine(glb)
    for ins, regs in program:
        machine.regs = dict(regs)
        machine.obufs[ins["obuf"]][:64] = obufs[ins["obuf"]]
        machine.filled[ins["obuf"]] = (ins["m"], ins["n"])
        machine._writeback(ins, 0)
    np.testing.assert_array_equal(run.glb, machine.glb)


@pytest.mark.parametrize("arch", ARCHS)
def test_loadp_writes_entries_in_order_one_a_cycle(arch):
    bench = Bench(arch)
    rng = np.random.default_rng(31)
    glb = rng.integers(0, 256, bench.params.glb_bytes, dtype=np.uint8)
    program = [(Instruction(Op.LOADP, {"glb_addr": 16 * int(rng.integers(0, 500)), "count": count}), {})
               for count in ((1, 2, 37, 1024) if arch == "fpga-4x4" else (1, 2, 37, 200))]
    run = bench.run(program, glb)
    assert run.error == (0, 0)
    bench.check_cycles(run, program)
    writes = run.params
    for (ins, _), t, cycles in zip(program, run.issue, run.done):
        mine = [w for w in writes if t < w[0] < t + cycles]
        machine = bench.machine(glb)
        machine.execute(ins, 0)
        count = ins["count"]
        assert [w[1] for w in mine] == list(range(count))
        assert [w[0] for w in mine] == list(range(t + 1, t + 1 + count))  # one a cycle, the last before t+cycles
        assert [w[2] for w in mine] == machine.bias[:count].tolist()
        assert [w[3] for w in mine] == machine.mult[:count].tolist()
        assert [w[4] for w in mine] == (machine.shift[:count] & 63).tolist()


@pytest.mark.parametrize("arch", ARCHS)
def test_loadlut_writes_the_table_a_word_a_cycle(arch):
    bench = Bench(arch)
    rng = np.random.default_rng(41)
    glb = rng.integers(0, 256, bench.params.glb_bytes, dtype=np.uint8)
    program = [(Instruction(Op.LOADLUT, {"glb_addr": bench.wb * int(rng.integers(0, 1000))}), {}) for _ in range(2)]
    run = bench.run(program, glb)
    bench.check_cycles(run, program)
    for (ins, _), t, cycles in zip(program, run.issue, run.done):
        mine = [w for w in run.lut if t < w[0] < t + cycles]
        machine = bench.machine(glb)
        machine.execute(ins, 0)
        table = b"".join(w[2].to_bytes(bench.wb, "little") for w in mine)
        assert [w[1] for w in mine] == list(range(LUT_BYTES // bench.wb))
        assert np.frombuffer(table, np.uint8).tolist() == machine.lut.tolist()


@pytest.mark.parametrize("ins, code", [(Instruction(Op.LOADP, {"glb_addr": 0, "count": 1025}), 8),
                                       (Instruction(Op.LOADP, {"glb_addr": 131072 - 32, "count": 3}), 2),
                                       (Instruction(Op.LOADLUT, {"glb_addr": 131072 - 128}), 2),
                                       (Instruction(Op.WRITEBACK, {"m": 2, "n": 8, "m0": 0, "n0": 0}), 2)])
def test_loads_and_writebacks_outside_the_glb_or_parameter_memory_are_errors(ins, code):
    bench = Bench("fpga-8x8")
    regs = {Reg.OUT_ADDR: 131072 - 8, Reg.OUT_CP: 8}
    run = bench.run([(ins, regs)], np.zeros(bench.params.glb_bytes, np.uint8), obufs=[np.zeros((4, 8))] * 2)
    assert run.error == (1, code)
    assert not run.params and not run.lut and (run.glb == 0).all()  # nothing written


def test_back_to_back_instructions_of_every_kind():
    bench = Bench("fpga-8x8")
    rng = np.random.default_rng(51)
    glb = rng.integers(0, 256, bench.params.glb_bytes, dtype=np.uint8)
    regs, pixels, k_total, groups, end = _conv(rng, 8, cin_g=5, kernel=(3, 3), pad=(1, 1), batch=2)
    wregs = {**regs, Reg.OUT_ADDR: 100_000, Reg.OUT_CP: 16}
    program = [
        (Instruction(Op.LOADP, {"glb_addr": 64_000, "count": 9}), regs),
        (Instruction(Op.LOADLUT, {"glb_addr": 65_000 // 8 * 8}), regs),
        (_gather(rng, bench, regs, pixels, k_total, groups, end, GatherMode.IM2COL_WS, slot=0), regs),
        (Instruction(Op.WRITEBACK, {"obuf": 1, "m": 5, "n": 8, "m0": 3, "n0": 8}), wregs),
        (_gather(rng, bench, regs, pixels, k_total, groups, end, GatherMode.IM2COL_WS, slot=1), regs),
        (_gather(rng, bench, regs, pixels, k_total, groups, end, GatherMode.IM2COL_WS, slot=0), regs),
        (Instruction(Op.WRITEBACK, {"obuf": 0, "m": 1, "n": 3, "m0": 0, "n0": 2}), wregs),
    ]
    obufs = [rng.integers(-128, 128, (8, 8)), rng.integers(-128, 128, (8, 8))]
    readback = [(0, program[5][0]["count"], b_rows(program[5][0])), (1, program[4][0]["count"],
                                                                      b_rows(program[4][0]))]
    run = bench.run(program, glb, obufs=obufs, readback=readback)
    assert run.error == (0, 0)
    bench.check_cycles(run, program)
    assert all(b - a == c for a, b, c in zip(run.issue, run.issue[1:], run.done))  # no idle cycle between them
    for pair, index in ((0, 5), (1, 4)):
        a, b = _expected_slots(bench, glb, *program[index])
        np.testing.assert_array_equal(run.slots[("a", pair)], a)
        np.testing.assert_array_equal(run.slots[("b", pair)], b)


def test_other_opcodes_are_ignored():
    bench = Bench("fpga-8x8")
    glb = np.zeros(bench.params.glb_bytes, np.uint8)
    run = bench.run([(Instruction(Op.VACT, {"words": 4}), {})], glb)
    assert run.done == [1] and run.error == (0, 0) and (run.glb == 0).all()


def test_parameters_it_cannot_build_are_refused():
    with pytest.raises(HdlError, match="SystemParams"):
        StagingUnit("fpga-8x8")
    one_bank = dataclasses.replace(system_params_from_arch(load_arch("fpga-8x8"), "ws"), glb_banks=1)
    with pytest.raises(HdlError, match="2 GLB banks"):
        StagingUnit(one_bank)


def test_the_unit_converts_to_verilog_that_lints_clean(tmp_path):
    from conftest import require_simulator
    from hdl.emit import to_verilog, top_ports
    from hdl.lint import verilator_lint

    text = to_verilog(StagingUnit(system_params_from_arch(load_arch("fpga-8x8"), "ws")), "staging_unit")
    assert {"dispatch__start", "dispatch__idle", "glb__0__addr", "glb__3__rdata", "a_read__data", "b_read__pair",
            "obuf_read__buf", "param_write__shift", "lut_write__data"} <= set(top_ports(text, "staging_unit"))
    require_simulator("verilator")
    path = tmp_path / "staging_unit.v"
    path.write_text(text)
    result = verilator_lint(path, "staging_unit")
    assert result.clean, result.output
