"""The memory side of the system RTL: the two-sided banked GLB (hdl/system/glb.py), the DMA unit
(hdl/system/dma.py) behind the AXI4 memory model (hdl/benches/axi_memory.py), under amaranth.sim. LOAD and STORE
are checked bit for bit against codesign.compiler.executor and to the cycle against
codesign.contract.system_timing (``idle`` and ``ready`` rise at exactly t + cycles), the boot read against
isa.encode_program and system_timing.boot_cycles; fpga-8x8 (8-byte words, 4 beats a word) and fpga-4x4 (4-byte
words, 2 beats a word), and two variants for the generator's corners (a beat as wide as a word with one bank and a
1-cycle memory; a 1-byte bus with two banks)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from conftest import require_simulator

from codesign.arch_loader import load_arch
from codesign.compiler.executor import ExecutionError, Machine
from codesign.contract import system_timing
from codesign.contract.isa import FORMATS, Instruction, Op, encode, encode_program
from codesign.contract.system_timing import Target
from hdl.benches.axi_memory import AxiMemory, AxiProtocolError, amaranth_process
from hdl.emit import to_verilog
from hdl.lint import verilator_lint
from hdl.system.dma import MAX_BURST_BEATS, DmaUnit
from hdl.system.glb import GlobalBuffer
from hdl.system.params import system_params_from_arch

ARCHS = ["fpga-8x8", "fpga-4x4"]


def _variant(base: str, banks: int, bytes_per_cycle: float, latency: int):
    arch = load_arch(base)
    return dataclasses.replace(arch, glb=dataclasses.replace(arch.glb, banks=banks),
                               dram=dataclasses.replace(arch.dram, bytes_per_cycle=bytes_per_cycle,
                                                        latency_cycles=latency))


# the corners of the generator beside the presets: a beat as wide as a word, one bank, a 1-cycle memory; a byte bus
VARIANTS = {
    "fpga-8x8-bus8-1bank-lat1": lambda: _variant("fpga-8x8", 1, 8.0, 1),
    "fpga-4x4-bus1-2banks-lat3": lambda: _variant("fpga-4x4", 2, 1.0, 3),
}
DRAM_BYTES = 1 << 16
DATAFLOW = "ws"


# -- the bench: DmaUnit + GlobalBuffer + AxiMemory, an instruction memory model ---------------------------
class Bench:
    """A DMA unit wired to a GLB, the AXI4 model behind it; ``run(fn)`` simulates ``fn(ctx, bench)``."""

    def __init__(self, arch_name: str, *, latency_delta: int = 0, stall: float = 0.0, seed: int = 0,
                 dram_bytes: int | None = DRAM_BYTES):
        self.arch = VARIANTS[arch_name]() if arch_name in VARIANTS else load_arch(arch_name)
        self.params = system_params_from_arch(self.arch, DATAFLOW)
        self.target = Target(self.arch, DATAFLOW)
        self.dma = DmaUnit(self.params, dram_bytes=dram_bytes)
        self.glb = GlobalBuffer(self.params)
        self.memory = AxiMemory(DRAM_BYTES, self.params.axi_data_bytes,
                                self.params.dram_latency_cycles + latency_delta, stall=stall, seed=seed)
        self.imem: dict[int, int] = {}
        self.imem_cycles: list[int] = []
        self.cycle = 0  # cycles since reset, counted by the testbench

    def _top(self):
        m = Module()
        m.submodules.dma, m.submodules.glb = self.dma, self.glb
        for bank in range(self.params.glb_banks):
            wiring.connect(m, self.dma.glb[bank], self.glb.dma[bank])
        return m

    def run(self, body):
        sim = Simulator(self._top())
        sim.add_clock(1e-6)
        sim.add_testbench(amaranth_process(self.memory, self.dma.axi), background=True)
        imem = self.dma.imem_write

        async def imem_model(ctx):
            async for _, _, en, addr, data in ctx.tick().sample(imem.en, imem.addr, imem.data):
                if en:
                    self.imem[addr] = data
                    self.imem_cycles.append(self.memory.cycle - 1)

        sim.add_testbench(imem_model, background=True)
        result = {}

        async def main(ctx):
            result["value"] = await body(ctx, self)

        sim.add_testbench(main)
        sim.run()
        return result.get("value")

    # GLB contents through the banks' MemoryData (no port cycles)
    def glb_bytes(self, ctx, start: int, size: int) -> bytes:
        p = self.params
        out = bytearray()
        for word in range(start // p.word_bytes, -(-(start + size) // p.word_bytes)):
            out += ctx.get(self.glb.bank_data[word % p.glb_banks][word // p.glb_banks]).to_bytes(p.word_bytes,
                                                                                                  "little")
        offset = start % p.word_bytes
        return bytes(out[offset:offset + size])

    def fill_glb(self, ctx, data: bytes) -> None:
        p = self.params
        for word in range(len(data) // p.word_bytes):
            value = int.from_bytes(data[word * p.word_bytes:(word + 1) * p.word_bytes], "little")
            ctx.set(self.glb.bank_data[word % p.glb_banks][word // p.glb_banks], value)

    async def tick(self, ctx):
        await ctx.tick()
        self.cycle += 1

    async def issue(self, ctx, ins: Instruction, *, wait: bool = True) -> int:
        """Start ``ins`` in this cycle (t); return k, the first cycle t + k with ``idle`` high (checking that
        ``ready`` equals ``idle`` in every cycle between)."""
        d = self.dma.dispatch
        assert ctx.get(d.ready) and ctx.get(d.idle), "the unit must be free to take a start"
        ctx.set(d.instr, encode(ins))
        ctx.set(d.start, 1)
        self.start_cycle = self.memory.cycle
        await self.tick(ctx)
        ctx.set(d.start, 0)
        return await self.wait_idle(ctx) if wait else 0

    async def boot(self, ctx, addr: int, count: int) -> int:
        ctx.set(self.dma.boot_addr, addr)
        ctx.set(self.dma.boot_count, count)
        ctx.set(self.dma.boot_start, 1)
        self.start_cycle = self.memory.cycle
        await self.tick(ctx)
        ctx.set(self.dma.boot_start, 0)
        return await self.wait_idle(ctx)

    async def drain(self, ctx) -> None:
        """Wait until the posted writes are in the memory (the last W beat accepted, every B back)."""
        while ctx.get(self.dma.writes_pending):
            await self.tick(ctx)
        assert not self.memory.busy

    async def wait_idle(self, ctx, limit: int = 20_000, allow_error: bool = False) -> int:
        d = self.dma.dispatch
        k = 1
        while not ctx.get(d.idle):
            assert ctx.get(d.ready) == ctx.get(d.idle)
            assert allow_error or not ctx.get(d.error), f"error {ctx.get(d.error_code)}"
            await self.tick(ctx)
            k += 1
            assert k < limit, "the DMA unit never became idle"
        assert ctx.get(d.ready)
        return k


def expect_cycles(measured: int, ins: Instruction, target: Target) -> None:
    """The cycle check: ``idle`` rose exactly ``system_timing.instruction_cycles`` after the start."""
    expected = system_timing.instruction_cycles(ins, {}, target)
    if measured != expected:
        raise AssertionError(f"{ins.op.name} bytes={ins['bytes']}: idle at t+{measured}, contract t+{expected}")


def dma(op: Op, glb_addr: int, nbytes: int, dram_addr: int) -> Instruction:
    return Instruction(op, {"glb_addr": glb_addr, "bytes": nbytes, "dram_addr": dram_addr})


def golden(bench: Bench, dram: np.ndarray, glb: np.ndarray, program: list[Instruction]) -> Machine:
    """The executor's state after ``program`` from ``dram`` and ``glb``."""
    machine = Machine(bench.target, DRAM_BYTES, acc_rows=bench.params.acc_rows)
    machine.dram[:] = dram
    machine.glb[:] = glb
    for index, ins in enumerate(program):
        machine.execute(ins, index)
    return machine


def random_bytes(rng, size: int) -> np.ndarray:
    return rng.integers(0, 256, size, dtype=np.uint8)


# -- GLB -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch_name", ARCHS)
def test_glb_sides_read_what_either_side_wrote_byte_by_byte_the_cycle_after(arch_name):
    params = system_params_from_arch(load_arch(arch_name), DATAFLOW)
    glb = GlobalBuffer(params)
    rng = np.random.default_rng(1)
    wb, banks = params.word_bytes, params.glb_banks
    full = (1 << (8 * wb)) - 1

    async def bench(ctx):
        shadow: dict[tuple[int, int], int] = {}
        for _ in range(40):
            # every bank: one side writes a random word under a random byte mask, the other reads another word
            plan = []
            for bank in range(banks):
                writer, reader = (glb.dma, glb.stage) if rng.integers(2) else (glb.stage, glb.dma)
                waddr, raddr = (int(a) for a in rng.choice(8, 2, replace=False))
                mask, value = int(rng.integers(1, 1 << wb)), int(rng.integers(0, full, dtype=np.uint64))
                for port, addr in ((writer[bank], waddr), (reader[bank], raddr)):
                    ctx.set(port.addr, addr)
                    ctx.set(port.en, 1)
                ctx.set(writer[bank].we, mask)
                ctx.set(writer[bank].wdata, value)
                ctx.set(reader[bank].we, 0)
                plan.append((bank, reader, raddr, shadow.get((bank, raddr), 0)))
                old = shadow.get((bank, waddr), 0)
                bytemask = sum(0xFF << (8 * i) for i in range(wb) if mask >> i & 1)
                shadow[(bank, waddr)] = (old & ~bytemask) | (value & bytemask)
            await ctx.tick()
            for bank, reader, raddr, before in plan:
                assert ctx.get(reader[bank].rdata) == before
                ctx.set(glb.dma[bank].en, 0)
                ctx.set(glb.stage[bank].en, 0)
        # rdata holds until that side reads the bank again
        for bank in range(banks):
            ctx.set(glb.stage[bank].addr, 3)
            ctx.set(glb.stage[bank].en, 1)
            ctx.set(glb.stage[bank].we, 0)
        await ctx.tick()
        for bank in range(banks):
            ctx.set(glb.stage[bank].en, 0)
        await ctx.tick()
        await ctx.tick()
        for bank in range(banks):
            assert ctx.get(glb.stage[bank].rdata) == shadow.get((bank, 3), 0)

    sim = Simulator(glb)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("arch_name", ARCHS)
def test_glb_word_w_is_in_bank_w_mod_banks_at_w_div_banks(arch_name):
    params = system_params_from_arch(load_arch(arch_name), DATAFLOW)
    glb = GlobalBuffer(params)
    words = [0, 1, params.glb_banks + 2, params.glb_words - 1]

    async def bench(ctx):
        for w in words:
            ctx.set(glb.bank_data[w % params.glb_banks][w // params.glb_banks], 1000 + w)
        for w in words:
            port = glb.stage[w % params.glb_banks]
            ctx.set(port.addr, w // params.glb_banks)
            ctx.set(port.en, 1)
            await ctx.tick()
            ctx.set(port.en, 0)
            assert ctx.get(port.rdata) == 1000 + w

    sim = Simulator(glb)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_glb_same_word_both_sides_one_cycle_reads_the_new_word():
    """The documented collision (the hazard rule forbids it): a read beside the other side's write of the same
    word gets the word as written in that cycle, its unwritten bytes as they were."""
    params = system_params_from_arch(load_arch("fpga-8x8"), DATAFLOW)
    glb = GlobalBuffer(params)

    async def bench(ctx):
        ctx.set(glb.bank_data[1][5], 0x1111)
        for port, we in ((glb.dma[1], 0xFF), (glb.stage[1], 0)):
            ctx.set(port.addr, 5)
            ctx.set(port.en, 1)
            ctx.set(port.we, we)
        ctx.set(glb.dma[1].wdata, 0x2222)
        ctx.set(glb.dma[1].we, 0x01)
        await ctx.tick()
        assert ctx.get(glb.stage[1].rdata) == 0x1122
        assert ctx.get(glb.bank_data[1][5]) == 0x1122

    sim = Simulator(glb)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


# -- LOAD / STORE ----------------------------------------------------------------------------------------
def _random_transfers(rng, params, count):
    """(glb_addr, bytes, dram_addr) multiples of 8, from 8 bytes up to a few bursts, inside both memories."""
    out = []
    for _ in range(count):
        nbytes = 8 * int(rng.choice([1, 2, 3, int(rng.integers(4, 40)), int(rng.integers(40, 200))]))
        glb_addr = 8 * int(rng.integers(0, (params.glb_bytes - nbytes) // 8 + 1))
        dram_addr = 8 * int(rng.integers(0, (DRAM_BYTES // 2 - nbytes) // 8 + 1))
        out.append((glb_addr, nbytes, dram_addr))
    return out


@pytest.mark.parametrize("arch_name", ARCHS + list(VARIANTS))
def test_load_then_store_round_trips_bit_exact_in_the_contract_cycles(arch_name):
    bench = Bench(arch_name)
    rng = np.random.default_rng(sorted(ARCHS + list(VARIANTS)).index(arch_name))
    dram = random_bytes(rng, DRAM_BYTES)
    bench.memory.mem[:] = dram.tobytes()
    glb = np.zeros(bench.params.glb_bytes, dtype=np.uint8)
    program = []
    for glb_addr, nbytes, dram_addr in _random_transfers(rng, bench.params, 10):
        program.append(dma(Op.LOAD, glb_addr, nbytes, dram_addr))
        program.append(dma(Op.STORE, glb_addr, nbytes, DRAM_BYTES // 2 + dram_addr))
    machine = golden(bench, dram, glb, program)

    async def body(ctx, b):
        for ins in program:
            expect_cycles(await b.issue(ctx, ins), ins, b.target)
        await b.drain(ctx)
        touched = sorted({(i["glb_addr"], i["bytes"]) for i in program})
        return [(a, n, b.glb_bytes(ctx, a, n)) for a, n in touched]

    for addr, size, data in bench.run(body):
        assert data == machine.glb[addr:addr + size].tobytes()
    assert bytes(bench.memory.mem) == machine.dram.tobytes()


@pytest.mark.parametrize("arch_name", ARCHS)
def test_load_data_are_in_the_glb_by_t_plus_cycles_and_not_before(arch_name):
    """The last word of a LOAD is written in cycle t + cycles - 1: a staging-side read in that cycle (through the
    bypass of the two sides) or later sees it, one in the cycle before does not."""
    bench = Bench(arch_name)
    p = bench.params
    ins = dma(Op.LOAD, 8 * p.glb_banks * 3, 64, 256)
    bench.memory.mem[256:256 + 64] = bytes(range(1, 65))
    cycles = system_timing.instruction_cycles(ins, {}, bench.target)
    last_word = (ins["glb_addr"] + 63) // p.word_bytes
    port = bench.glb.stage[last_word % p.glb_banks]
    expected = int.from_bytes(bytes(range(65 - p.word_bytes, 65)), "little")

    async def body(ctx, b):
        ctx.set(port.addr, last_word // p.glb_banks)
        ctx.set(port.en, 1)
        await b.issue(ctx, ins, wait=False)  # now in cycle t + 1: staging reads every cycle
        seen = []
        for k in range(1, cycles + 1):
            await b.tick(ctx)  # rdata now shows the read of cycle t + k
            seen.append(ctx.get(port.rdata))
        return seen

    seen = bench.run(body)
    assert seen[-1] == expected  # read in t + cycles
    assert seen[-2] == expected  # read in t + cycles - 1, beside the write
    assert seen[-3] != expected  # read in t + cycles - 2


@pytest.mark.parametrize("arch_name", ARCHS + list(VARIANTS))
def test_a_transfer_over_256_beats_across_4k_streams_without_gaps(arch_name):
    bench = Bench(arch_name)
    p = bench.params
    beats = 3 * MAX_BURST_BEATS + 40  # whole 8-byte multiples on every bus width
    nbytes = beats * p.axi_data_bytes
    dram_addr = 2 * 4096 - 24  # 24 bytes before a 4 KiB boundary: a short first burst
    rng = np.random.default_rng(3)
    dram = random_bytes(rng, DRAM_BYTES)
    bench.memory.mem[:] = dram.tobytes()
    load = dma(Op.LOAD, 64, nbytes, dram_addr)
    store = dma(Op.STORE, 64, nbytes, dram_addr + 3 * 4096 + 8)
    machine = golden(bench, dram, np.zeros(p.glb_bytes, dtype=np.uint8), [load, store])
    marks = {}

    async def body(ctx, b):
        for ins in (load, store):
            marks[ins.op] = (b.memory.cycle, len(b.memory.ar_cycles), len(b.memory.aw_cycles))
            expect_cycles(await b.issue(ctx, ins), ins, b.target)
        await b.drain(ctx)
        return b.glb_bytes(ctx, 64, nbytes)

    assert bench.run(body) == machine.glb[64:64 + nbytes].tobytes()
    assert bytes(bench.memory.mem) == machine.dram.tobytes()
    m = bench.memory
    t_load, _, _ = marks[Op.LOAD]
    t_store, _, _ = marks[Op.STORE]
    ars = m.ar_cycles
    assert len(ars) >= 5 and ars == list(range(t_load, t_load + len(ars)))  # one AR a cycle from t
    assert m.r_cycles == list(range(t_load + p.dram_latency_cycles, t_load + p.dram_latency_cycles + beats))
    assert len(m.aw_cycles) == len(ars) and m.aw_cycles[0] == t_store
    assert m.w_cycles == list(range(t_store + 1, t_store + 1 + beats))  # W beat i in t + 1 + i


@pytest.mark.parametrize("arch_name", ARCHS)
def test_back_to_back_loads_and_stores_each_take_their_cycles(arch_name):
    """Each start in the very cycle the previous transfer's idle rises; the next AR/AW is on the bus then."""
    bench = Bench(arch_name)
    rng = np.random.default_rng(11)
    dram = random_bytes(rng, DRAM_BYTES)
    bench.memory.mem[:] = dram.tobytes()
    p = bench.params
    program = [dma(Op.LOAD, 0, 48, 4000), dma(Op.LOAD, 48, 8, 1024), dma(Op.LOAD, 256, 512, 16),
               dma(Op.STORE, 0, 56, 40000), dma(Op.STORE, 256, 8, 50000), dma(Op.LOAD, 1024, 24, 40000),
               dma(Op.STORE, 1024, 24, 60000)]
    machine = golden(bench, dram, np.zeros(p.glb_bytes, dtype=np.uint8), program)

    async def body(ctx, b):
        starts = []
        for ins in program:
            starts.append(b.memory.cycle)
            expect_cycles(await b.issue(ctx, ins), ins, b.target)
        await b.drain(ctx)
        return starts, b.glb_bytes(ctx, 0, 2048)

    starts, glb = bench.run(body)
    for ins, start, nxt in zip(program, starts, starts[1:]):
        assert nxt - start == system_timing.instruction_cycles(ins, {}, bench.target)
    loads = [s for ins, s in zip(program, starts) if ins.op is Op.LOAD]
    assert [c for c in bench.memory.ar_cycles if c in loads] == loads
    # STORE, STORE: the second's first W beat right behind the first's last one
    beats = (program[3]["bytes"] + program[4]["bytes"]) // p.axi_data_bytes
    assert bench.memory.w_cycles[:beats] == list(range(starts[3] + 1, starts[3] + 1 + beats))
    assert glb == machine.glb[:2048].tobytes()
    assert bytes(bench.memory.mem) == machine.dram.tobytes()


@pytest.mark.parametrize("arch_name", ARCHS)
def test_transfers_ending_at_the_last_byte_of_the_glb_and_of_dram_are_legal(arch_name):
    bench = Bench(arch_name)
    p = bench.params
    rng = np.random.default_rng(4)
    dram = random_bytes(rng, DRAM_BYTES)
    bench.memory.mem[:] = dram.tobytes()
    program = [dma(Op.LOAD, p.glb_bytes - 40, 40, DRAM_BYTES - 40), dma(Op.LOAD, 0, 8, 0),
               dma(Op.STORE, p.glb_bytes - 48, 48, DRAM_BYTES - 48)]
    machine = golden(bench, dram, np.zeros(p.glb_bytes, dtype=np.uint8), program)

    async def body(ctx, b):
        for ins in program:
            expect_cycles(await b.issue(ctx, ins), ins, b.target)
        await b.drain(ctx)
        return b.glb_bytes(ctx, p.glb_bytes - 48, 48), b.glb_bytes(ctx, 0, 8)

    top, bottom = bench.run(body)
    assert top == machine.glb[-48:].tobytes() and bottom == machine.glb[:8].tobytes()
    assert bytes(bench.memory.mem) == machine.dram.tobytes()


@pytest.mark.parametrize("arch_name", ARCHS)
def test_a_memory_one_cycle_slower_fails_the_cycle_check(arch_name):
    bench = Bench(arch_name, latency_delta=1)
    ins = dma(Op.LOAD, 0, 64, 0)

    async def body(ctx, b):
        return await b.issue(ctx, ins)

    measured = bench.run(body)
    with pytest.raises(AssertionError, match="contract"):
        expect_cycles(measured, ins, bench.target)
    assert measured == system_timing.instruction_cycles(ins, {}, bench.target) + 1


@pytest.mark.parametrize("arch_name", ARCHS + list(VARIANTS))
def test_transfers_survive_a_memory_that_stalls_every_channel(arch_name):
    """Backpressure on AR, AW, W and gaps in R: slower than the contract but bit-exact, no protocol error."""
    bench = Bench(arch_name, stall=0.35, seed=5)
    rng = np.random.default_rng(12)
    dram = random_bytes(rng, DRAM_BYTES)
    bench.memory.mem[:] = dram.tobytes()
    program = [dma(Op.LOAD, 8, 600, 4096 - 40), dma(Op.STORE, 8, 600, 30000), dma(Op.STORE, 0, 8, 20000),
               dma(Op.LOAD, 4096, 16, 30000), dma(Op.STORE, 4096, 16, 20008)]
    machine = golden(bench, dram, np.zeros(bench.params.glb_bytes, dtype=np.uint8), program)

    async def body(ctx, b):
        for ins in program:
            await b.issue(ctx, ins)
        await b.drain(ctx)
        return b.glb_bytes(ctx, 0, 4096 + 16)

    assert bench.run(body) == machine.glb[:4096 + 16].tobytes()
    assert bytes(bench.memory.mem) == machine.dram.tobytes()


# -- errors ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch_name", ARCHS)
@pytest.mark.parametrize("case", ["load-glb", "load-dram", "load-both", "store-glb", "store-dram", "store-both"])
def test_out_of_range_transfers_raise_the_executors_error_code_and_move_nothing(arch_name, case):
    bench = Bench(arch_name)
    p = bench.params
    op = Op.LOAD if case.startswith("load") else Op.STORE
    glb_addr = p.glb_bytes - 8 if case.endswith(("glb", "both")) else 0
    dram_addr = DRAM_BYTES - 8 if case.endswith(("dram", "both")) else 0
    ins = dma(op, glb_addr, 16, dram_addr)
    with pytest.raises(ExecutionError) as raised:
        golden(bench, np.zeros(DRAM_BYTES, dtype=np.uint8), np.zeros(p.glb_bytes, dtype=np.uint8), [ins])

    async def body(ctx, b):
        d = b.dma.dispatch
        await b.issue(ctx, ins, wait=False)
        codes = []
        for _ in range(p.dram_latency_cycles + 16):
            codes.append((ctx.get(d.error), ctx.get(d.error_code), ctx.get(d.idle)))
            await b.tick(ctx)
        return codes

    codes = bench.run(body)
    assert all(c == (1, raised.value.code, 1) for c in codes)  # from t + 1 on, idle, nothing started
    assert not bench.memory.ar_cycles and not bench.memory.aw_cycles and not bench.memory.w_cycles


def test_without_a_known_size_only_the_32_bit_space_bounds_dram():
    bench = Bench("fpga-8x8", dram_bytes=None)
    inside = dma(Op.LOAD, 0, 16, DRAM_BYTES - 16)
    beyond = dma(Op.LOAD, 0, 16, (1 << 32) - 8)

    async def body(ctx, b):
        expect_cycles(await b.issue(ctx, inside), inside, b.target)
        await b.issue(ctx, beyond, wait=False)
        return ctx.get(b.dma.dispatch.error), ctx.get(b.dma.dispatch.error_code)

    assert bench.run(body) == (1, 3)


def test_a_decerr_from_the_memory_is_error_3():
    """A DMA unit built without the memory's size learns of an access beyond it from the R response."""
    bench = Bench("fpga-8x8", dram_bytes=None)
    ins = dma(Op.LOAD, 0, 16, DRAM_BYTES)

    async def body(ctx, b):
        await b.issue(ctx, ins, wait=False)
        await b.wait_idle(ctx, allow_error=True)
        return ctx.get(b.dma.dispatch.error), ctx.get(b.dma.dispatch.error_code)

    assert bench.run(body) == (1, 3)


# -- boot ------------------------------------------------------------------------------------------------
def random_program(rng, count: int) -> list[Instruction]:
    """``count`` random legal instructions, every field drawn over its range, END last."""
    ops = [op for op in Op if op is not Op.END]
    program = []
    for _ in range(count - 1):
        op = ops[int(rng.integers(len(ops)))]
        fields = {}
        for f in FORMATS[op]:
            low, high = f.bounds
            fields[f.name] = int(rng.integers(low, high, endpoint=True, dtype=np.int64))
        program.append(Instruction(op, fields))
    return program + [Instruction(Op.END)]


@pytest.mark.parametrize("arch_name", ARCHS + list(VARIANTS))
def test_boot_writes_the_encoded_program_into_imem_in_boot_cycles(arch_name):
    bench = Bench(arch_name)
    rng = np.random.default_rng(21)
    program = random_program(rng, 53)
    image = encode_program(program)
    base = 4096 - 16 * 7  # the program straddles a 4 KiB boundary
    bench.memory.mem[base:base + len(image)] = image
    count = len(program)

    async def body(ctx, b):
        start = b.memory.cycle
        return start, await b.boot(ctx, base, count)

    start, k = bench.run(body)
    assert k == system_timing.boot_cycles(len(image), bench.arch)
    assert bench.imem == {i: encode(ins) for i, ins in enumerate(program)}
    assert max(bench.imem_cycles) == start + k - 1  # the last instruction is written in t + boot - 1


def test_boot_of_nothing_and_boot_beyond_memory():
    bench = Bench("fpga-4x4")

    async def body(ctx, b):
        assert await b.boot(ctx, 0, 0) == 1  # idle throughout
        d = b.dma
        ctx.set(d.boot_addr, DRAM_BYTES - 16)
        ctx.set(d.boot_count, 2)
        ctx.set(d.boot_start, 1)
        await b.tick(ctx)
        ctx.set(d.boot_start, 0)
        return ctx.get(d.dispatch.error), ctx.get(d.dispatch.error_code), ctx.get(d.dispatch.idle)

    assert bench.run(body) == (1, 3, 1)
    assert not bench.imem and not bench.memory.ar_cycles


# -- the model's own rules -------------------------------------------------------------------------------
def test_the_model_refuses_a_burst_across_4k_and_a_wrong_wlast():
    memory = AxiMemory(1 << 14, 2, 3)
    idle = {name: 0 for name in ("araddr", "arlen", "arsize", "arburst", "arvalid", "rready", "awaddr", "awlen",
                                 "awsize", "awburst", "awvalid", "wdata", "wstrb", "wlast", "wvalid", "bready")}
    with pytest.raises(AxiProtocolError, match="4 KiB"):
        memory.step({**idle, "arvalid": 1, "araddr": 4096 - 4, "arlen": 2, "arsize": 1, "arburst": 1})
    memory = AxiMemory(1 << 14, 2, 3)
    memory.step({**idle, "awvalid": 1, "awaddr": 0, "awlen": 1, "awsize": 1, "awburst": 1})
    with pytest.raises(AxiProtocolError, match="wlast"):
        memory.step({**idle, "wvalid": 1, "wdata": 7, "wstrb": 3, "wlast": 1})


def test_the_model_streams_back_to_back_bursts_latency_after_their_ar():
    memory = AxiMemory(1 << 12, 2, 5)
    memory.mem[:16] = bytes(range(16))
    quiet = {name: 0 for name in ("araddr", "arlen", "arsize", "arburst", "arvalid", "awaddr", "awlen", "awsize",
                                  "awburst", "awvalid", "wdata", "wstrb", "wlast", "wvalid", "bready")}
    beats = []
    for cycle in range(20):
        out = memory.outputs()
        if out["rvalid"]:
            beats.append((cycle, out["rdata"], out["rlast"]))
        ar = {"arvalid": 1, "araddr": 4 * cycle, "arlen": 1, "arsize": 1, "arburst": 1} if cycle < 2 else {}
        memory.step({**quiet, **ar, "rready": 1})
    assert beats == [(5, 0x0100, 0), (6, 0x0302, 1), (7, 0x0504, 0), (8, 0x0706, 1)]


# -- Verilog ---------------------------------------------------------------------------------------------
@pytest.mark.rtl
@pytest.mark.parametrize("arch_name", ARCHS)
def test_dma_unit_and_glb_convert_to_verilog_and_lint_clean(arch_name, tmp_path):
    require_simulator("verilator")
    params = system_params_from_arch(load_arch(arch_name), DATAFLOW)
    for name, component in (("dma_unit", DmaUnit(params, dram_bytes=DRAM_BYTES)), ("glb", GlobalBuffer(params))):
        path = tmp_path / f"{name}.v"
        path.write_text(to_verilog(component, name))
        result = verilator_lint(path, name)
        assert result.clean, result.output
