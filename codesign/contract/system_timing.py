"""The cycles of every instruction and of a whole program on the generated system (docs/isa.md, "Timing").

Per instruction, from its fields, the configuration registers it captures and the accelerator spec: DMA transfers
at the contract's DRAM rates (``codesign.contract.memory``), GEMM tiles at the core's contract
(``codesign.contract.tile_timing``: the next tile after ``issue_interval``, results after ``tile_cycles`` plus the
accumulator and output-path pipelines), GLB accesses of the staging unit packed into cycles by the bank rule (each
bank serves ``glb.words_per_cycle`` accesses a cycle, word w in bank w mod ``glb.banks``). The dispatcher issues
in program order, at most one instruction per cycle; an action waits for its unit to take it, SYNC for the units
it names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from codesign.arch import ArchSpec
from codesign.contract.isa import GatherMode, Instruction, Op, Reg, Unit, unit_of
from codesign.contract import memory, tile_timing

__all__ = [
    "ACC_LATENCY", "OUTPUT_LATENCY", "VECTOR_LATENCY", "VECTOR_SETUP_CYCLES", "VECTOR_OPS", "PARAM_ENTRY_BYTES",
    "LUT_BYTES", "STAGE_ROWS",
    "WORD_BUFFER_ROWS_FACTOR", "GATHER_DIVIDE_CYCLES", "GATHER_FILL_LANES", "STAGING_LATENCY",
    "GATHER_PRODUCT_CYCLES", "GATHER_LOOKAHEAD_CYCLES", "gather_setup_cycles",
    "Target", "gather_addresses", "gather_cycles", "a_cycles", "b_rows", "pool_cycles",
    "packed_cycles", "strided_cycles", "vector_slots",
    "instruction_cycles", "occupancy", "Schedule", "schedule",
    "boot_cycles", "PAD", "IDLE_LANE",
]

ACC_LATENCY = 2  # accumulator read-add-write behind the core's last result row
OUTPUT_LATENCY = 4  # bias + multiply, shift + clamp, table, GLB write
VECTOR_LATENCY = 5  # behind a vector op's last slot: its last pass, product, sum and shift, the tail, the write
# from a vector op's issue to its first slot: the start edge, POOL's sizes (three levels of products, one a cycle)
# and the range and shift checks, registered, so that nothing of a vector op is combinational from its dispatch;
# the dispatcher issues nothing in between (a fault found there stops at the vector op, as the executor does)
VECTOR_SETUP_CYCLES = 5
VECTOR_OPS = (Op.VACT, Op.VADD, Op.POOL)
PARAM_ENTRY_BYTES = 16  # bias int32, multiplier int32, shift uint8, 7 bytes zero
LUT_BYTES = 256
STAGE_ROWS = tile_timing.MAX_STREAM_TILE  # rows of each operand staging slot
WORD_BUFFER_ROWS_FACTOR = 2  # the GATHER word buffer holds this many words per array row
GATHER_DIVIDE_CYCLES = 5  # a GATHER's start-up divisions of m0 and k0 (20 quotient bits, 4 a cycle)
GATHER_PRODUCT_CYCLES = 3  # then its products of the quotients on four shared multipliers (two dependent levels)
GATHER_FILL_LANES = 2  # lanes whose first address a GATHER steps into place per cycle
# then row 0's lane addresses registered, and its reads decided: a row's addresses are made two rows ahead, its
# reads decided one row ahead, so that the cycles a row issues in are driven from registers
GATHER_LOOKAHEAD_CYCLES = 2
STAGING_LATENCY = 1  # WRITEBACK, LOADP, LOADLUT: the read of the last item returns a cycle later, written then
PAD = -1  # a lane outside the image: the zero point, no read
IDLE_LANE = -2  # a lane beyond the tile: 0, no read


@dataclass(frozen=True)
class Target:
    """What the timing depends on: the accelerator spec and the dataflow of its GEMM core."""

    arch: ArchSpec
    dataflow: str

    @property
    def word_bytes(self) -> int:
        return self.arch.glb.word_bits // 8


def b_rows(ins: Instruction) -> int:
    """Rows of B a GATHER stages: the tile's k (WS: the A lanes; OS: the A rows)."""
    return ins["lanes"] if ins["mode"] == GatherMode.IM2COL_WS else ins["count"]


def gather_addresses(ins: Instruction, regs: dict) -> np.ndarray:
    """GLB byte address of every value of A a GATHER stages (rows x lanes; ``PAD`` outside the image)."""
    mode, count, lanes = GatherMode(ins["mode"]), ins["count"], ins["lanes"]
    rows = np.arange(count, dtype=np.int64).reshape(-1, 1)
    cols = np.arange(lanes, dtype=np.int64).reshape(1, -1)
    if mode is GatherMode.IM2COL_WS:
        pixel, k = ins["m0"] + rows + 0 * cols, ins["k0"] + cols + 0 * rows
    else:
        pixel, k = ins["m0"] + cols + 0 * rows, ins["k0"] + rows + 0 * cols
    g = lambda reg: int(regs.get(reg, 0))  # noqa: E731
    out_h, out_w, in_h, in_w = g(Reg.OUT_H), g(Reg.OUT_W), g(Reg.IN_H), g(Reg.IN_W)
    kh, kw, cin = g(Reg.KH), g(Reg.KW), g(Reg.CIN_G)
    n = pixel // max(1, out_h * out_w)
    rest = pixel % max(1, out_h * out_w)
    oh, ow = rest // max(1, out_w), rest % max(1, out_w)
    tap, c = k // max(1, cin), k % max(1, cin)
    r, s = tap // max(1, kw), tap % max(1, kw)
    ih = oh * g(Reg.STRIDE_H) - g(Reg.PAD_H) + r * g(Reg.DIL_H)
    iw = ow * g(Reg.STRIDE_W) - g(Reg.PAD_W) + s * g(Reg.DIL_W)
    channel = ins["group"] * cin + c
    address = g(Reg.IN_ADDR) + ((n * in_h + ih) * in_w + iw) * g(Reg.IN_CP) + channel
    inside = (ih >= 0) & (ih < in_h) & (iw >= 0) & (iw < in_w)
    return np.where(inside, address, PAD)


def strided_cycles(count: int, stride_words: int, arch: ArchSpec) -> int:
    """Cycles of ``count`` GLB word accesses at a constant word stride, packed into cycles by the bank rule: a
    stride visits banks / gcd(stride, banks) distinct banks in turn, so that many accesses share a cycle."""
    if count <= 0:
        return 0
    banks, per_bank = arch.glb.banks, arch.glb.words_per_cycle
    distinct = banks // math.gcd(int(stride_words) % banks or banks, banks)
    return -(-int(count) // (distinct * per_bank))


def packed_cycles(words: np.ndarray, arch: ArchSpec) -> np.ndarray:
    """Per row of ``words`` (rows x slots of GLB word addresses, -1 for none), the cycles its accesses take in
    order under the bank rule: a cycle takes the next access unless its bank (word mod banks) has already served
    ``words_per_cycle`` accesses in that cycle; a row with no access takes 0."""
    banks, per_bank = arch.glb.banks, arch.glb.words_per_cycle
    rows = words.shape[0]
    used = np.zeros((rows, banks), dtype=np.int64)
    cycles = np.zeros(rows, dtype=np.int64)
    started = np.zeros(rows, dtype=bool)
    index = np.arange(rows)
    for column in words.T:
        valid = column >= 0
        bank = np.where(valid, column % banks, 0)
        full = valid & (used[index, bank] >= per_bank)
        used[full] = 0
        cycles += full | (valid & ~started)
        started |= valid
        used[index[valid], bank[valid]] += 1
    return cycles


def gather_cycles(addresses: np.ndarray, k: int, arch: ArchSpec) -> int:
    """Cycles of a GATHER: B, ``k`` consecutive words from the issue cycle on, while the start-up
    (``gather_setup_cycles``) runs; then A, its rows one after another, each max(1, the cycles of its reads): the
    distinct GLB words its lanes need that the word buffer does not hold, in lane order, packed by the bank rule
    (one read fills every lane needing that word); the last row is written the cycle after its last read."""
    return max(gather_setup_cycles(arch), strided_cycles(k, 1, arch)) + a_cycles(addresses, arch) + 1


def gather_setup_cycles(arch: ArchSpec) -> int:
    """Cycles from a GATHER's issue to its first row of A at the earliest: the start edge, the divisions splitting
    m0 into (n, oh, ow) and k0 into (r, s, c) (``GATHER_DIVIDE_CYCLES``), the counters' first values from the
    quotients on a few shared multipliers (``GATHER_PRODUCT_CYCLES``), and the lanes' first addresses stepped into
    place ``GATHER_FILL_LANES`` a cycle (one GLB word of lanes), then the first row's lane addresses registered and
    its reads decided (``GATHER_LOOKAHEAD_CYCLES``: each row's addresses are made two rows ahead, its reads decided
    one row ahead)."""
    fill = -(-(arch.glb.word_bits // 8) // GATHER_FILL_LANES)
    return 1 + GATHER_DIVIDE_CYCLES + GATHER_PRODUCT_CYCLES + fill + GATHER_LOOKAHEAD_CYCLES


def a_cycles(addresses: np.ndarray, arch: ArchSpec) -> int:
    """The A part of ``gather_cycles``: rows in order; each row's distinct words (in lane order) that the word
    buffer does not hold are read, packed by the bank rule, taking max(1, those cycles); the buffer keeps the last
    2 x ``arch.rows`` distinct words read (first in, first out; empty when the GATHER starts), updated after each
    row."""
    word_bytes = arch.glb.word_bits // 8
    words = np.where(addresses >= 0, addresses // word_bytes, -1)
    capacity = WORD_BUFFER_ROWS_FACTOR * arch.rows
    held: list[int] = []
    misses = np.full(words.shape, -1, dtype=np.int64)
    for row, needed in enumerate(words.tolist()):
        fresh = []
        for word in needed:
            if word >= 0 and word not in held and word not in fresh:
                fresh.append(word)
        misses[row, :len(fresh)] = fresh
        held = (held + fresh)[-capacity:]
    return int(np.maximum(packed_cycles(misses, arch), 1).sum())


def pool_cycles(regs: dict, target: Target) -> int:
    """Cycles of a POOL without its latency: per output word (pixel and channel word, in order) the reads of its
    window's taps inside the image, packed by the bank rule, then one cycle for its write."""
    g = lambda reg: int(regs.get(reg, 0))  # noqa: E731
    word = target.word_bytes
    cw = max(1, g(Reg.IN_CP) // word)
    oh = np.arange(g(Reg.OUT_H)).reshape(-1, 1, 1, 1)
    ow = np.arange(g(Reg.OUT_W)).reshape(1, -1, 1, 1)
    r = np.arange(g(Reg.KH)).reshape(1, 1, -1, 1)
    s = np.arange(g(Reg.KW)).reshape(1, 1, 1, -1)
    ih = oh * g(Reg.STRIDE_H) - g(Reg.PAD_H) + r
    iw = ow * g(Reg.STRIDE_W) - g(Reg.PAD_W) + s
    inside = (ih >= 0) & (ih < g(Reg.IN_H)) & (iw >= 0) & (iw < g(Reg.IN_W))
    pixel = np.where(inside, ih * g(Reg.IN_W) + iw, -1).reshape(g(Reg.OUT_H) * g(Reg.OUT_W), -1)
    total = 0
    for channel_word in range(cw):  # the same cycles for every image of the batch (addresses shift by whole images)
        words = np.where(pixel >= 0, pixel * cw + channel_word + g(Reg.IN_ADDR) // word, -1)
        total += int((packed_cycles(words, target.arch) + 1).sum())
    return total * max(1, g(Reg.BATCH))


def vector_slots(words: int, passes: int, arch: ArchSpec) -> int:
    """Slots of a VACT (``passes`` = 1) or VADD (2), without the latency: groups of banks x words_per_cycle
    consecutive words, each read in one cycle (VADD: a, then b), its words' passes one a cycle through one word of
    multipliers from the cycle after its read; a group takes max(passes + 1, passes x group) cycles (a slot
    without reads for the writes), the last one, of r words, passes x r (it ends the cycle before its last pass)."""
    group = arch.glb.banks * arch.glb.words_per_cycle
    words = int(words)
    if words <= 0:
        return 0
    groups = -(-words // group)
    return (groups - 1) * max(passes + 1, passes * group) + passes * (words - (groups - 1) * group)


def occupancy(ins: Instruction, cycles: int, target: Target) -> int:
    """Cycles from an action's issue until its unit takes the next instruction: its ``cycles``, except MATMUL,
    whose core takes the next tile after the contract's ``issue_interval`` while the results drain behind it."""
    if ins.op is Op.MATMUL:
        arch = target.arch
        return tile_timing.issue_interval(target.dataflow, ins["m"], ins["k"], ins["n"], arch.rows, arch.cols)
    return cycles


def instruction_cycles(ins: Instruction, regs: dict, target: Target) -> int:
    """Cycles from an action's issue until its effects are complete (control instructions: 0)."""
    arch, op = target.arch, ins.op
    if op is Op.LOAD:
        return int(memory.read_cycles(ins["bytes"] * 8, arch))
    if op is Op.STORE:
        return int(memory.write_cycles(ins["bytes"] * 8, arch))
    if op is Op.GATHER:
        return gather_cycles(gather_addresses(ins, regs), b_rows(ins), arch)
    if op is Op.MATMUL:
        core = tile_timing.tile_cycles(target.dataflow, ins["m"], ins["k"], ins["n"], arch.rows, arch.cols)
        return core + ACC_LATENCY + (OUTPUT_LATENCY if ins["out"] else 0)
    word = target.word_bytes
    # One output-buffer row, parameter entry or table word a cycle (the ports between the units carry one), its
    # words in distinct banks; the first read in the issue cycle, the last item written STAGING_LATENCY later.
    if op is Op.WRITEBACK:
        return ins["m"] + STAGING_LATENCY
    if op is Op.LOADP:
        return ins["count"] + STAGING_LATENCY
    if op is Op.LOADLUT:
        return -(-LUT_BYTES // word) + STAGING_LATENCY
    if op is Op.VACT:  # one pass (product) a word through one word of multipliers
        return VECTOR_SETUP_CYCLES + vector_slots(ins["words"], 1, arch) + VECTOR_LATENCY
    if op is Op.VADD:  # two passes a word, a then b, through the same multipliers
        return VECTOR_SETUP_CYCLES + vector_slots(ins["words"], 2, arch) + VECTOR_LATENCY
    if op is Op.POOL:
        return VECTOR_SETUP_CYCLES + pool_cycles(regs, target) + VECTOR_LATENCY
    return 0


def boot_cycles(program_bytes: int, arch: ArchSpec) -> int:
    """Cycles to read the program from DRAM into the instruction memory before the first dispatch."""
    return int(memory.read_cycles(program_bytes * 8, arch))


@dataclass(frozen=True)
class Schedule:
    """Per instruction: the cycle it issues and the cycles its unit is busy; the total from start to done."""

    issue: tuple[int, ...]
    cycles: tuple[int, ...]
    total_cycles: int
    boot_cycles: int


class Dispatcher:
    """The in-order dispatcher, one instruction per cycle at most. An action waits until its unit takes it (MATMUL
    also until the staging unit is idle: it reads the slots that unit fills; WRITEBACK until the MATMUL that filled
    its output buffer is done); SYNC until the units in its mask (bit 0 DMA, bit 1 staging, bit 2 core) are idle
    and done; END until every unit is."""

    def __init__(self, start: int, target: Target):
        self.next, self.target = start, target
        self.free = {Unit.DMA: start, Unit.STAGE: start, Unit.CORE: start}
        self.done = dict(self.free)
        self.obuf_done = [start, start]

    def issue(self, ins: Instruction, cycles: int) -> int:
        t = self.next
        unit = unit_of(ins.op)
        if unit is not Unit.CONTROL:
            t = max(t, self.free[unit])
            if ins.op is Op.MATMUL:
                t = max(t, self.done[Unit.STAGE])
            elif ins.op is Op.WRITEBACK:
                t = max(t, self.obuf_done[ins["obuf"]])
            self.free[unit] = t + occupancy(ins, cycles, self.target)
            self.done[unit] = max(self.done[unit], t + cycles)
            if ins.op is Op.MATMUL and ins["out"]:
                self.obuf_done[ins["obuf"]] = t + cycles
        elif ins.op is Op.SYNC:
            for name in (Unit.DMA, Unit.STAGE, Unit.CORE):
                if ins["mask"] & int(name):
                    t = max(t, self.free[name], self.done[name])
        elif ins.op is Op.END:
            t = max([t, *self.free.values(), *self.done.values()])
        self.next = t + (VECTOR_SETUP_CYCLES if ins.op in VECTOR_OPS else 1)
        return t


def schedule(instructions: list[Instruction], target: Target, program_bytes: int) -> Schedule:
    """When every instruction issues and how long it runs, without running the data (the timing needs none)."""
    regs: dict = {}
    boot = boot_cycles(program_bytes, target.arch)
    dispatcher = Dispatcher(boot, target)
    issue, cycles = [], []
    end = boot
    for ins in instructions:
        if ins.op is Op.SET:
            regs[Reg(ins["reg"])] = ins["value"]
        busy = instruction_cycles(ins, regs, target)
        t = dispatcher.issue(ins, busy)
        issue.append(t)
        cycles.append(busy)
        end = t + 1
        if ins.op is Op.END:
            break
    return Schedule(tuple(issue), tuple(cycles), end, boot)
