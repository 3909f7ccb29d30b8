"""The system controller in Amaranth's simulator: CSRs over AXI4-Lite, the boot through the DMA unit, and every
instruction dispatched on exactly the cycle ``system_timing.schedule`` gives, with the units modelled as Python
units that keep the dispatch contract (hdl/system/ports.py) at ``system_timing``'s cycles for the instruction and
registers the controller passes them; decode and unit errors stop it with the right code and instruction."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from amaranth.sim import Simulator

from codesign.arch_loader import load_arch
from codesign.contract.isa import FORMATS, INSTRUCTION_BYTES, Instruction, Op, Reg, Unit, decode, encode, unit_of
from codesign.contract.memory import read_cycles
from codesign.contract.system_timing import (
    VECTOR_SETUP_CYCLES, Target, boot_cycles, instruction_cycles, occupancy, schedule,
)
from codesign.errors import HdlError
from hdl.system.controller import (CSR, ERROR_DECODE, ERROR_REGISTER, RESP_OKAY, RESP_SLVERR, STATUS_BUSY,
                                   STATUS_DONE, STATUS_ERROR, Controller, used_bits)
from hdl.system.params import N_CONFIG_REGS, system_params_from_arch

ARCHS = {name: load_arch(name) for name in ("fpga-8x8", "fpga-4x4")}
TARGETS = [("fpga-8x8", "ws"), ("fpga-8x8", "os"), ("fpga-4x4", "ws"), ("fpga-4x4", "os")]
UNIT_NAMES = {Unit.DMA: "dma", Unit.STAGE: "stage", Unit.CORE: "core"}
MASK32 = (1 << 32) - 1
PROGRAM_ADDR = 0x0004_2000
SMALL_IMEM = 256


def _signed32(value: int) -> int:
    return value - (1 << 32) if value >> 31 else value


def regs_of(bus: int) -> dict:
    """The configuration registers of a ``regs`` bus (register r in bits [32r, 32r+32)), as SET wrote them."""
    return {Reg(r): _signed32((bus >> (32 * r)) & MASK32) for r in range(N_CONFIG_REGS)}


def registers_before(program: list[Instruction], index: int) -> dict:
    """Every register as it stands when instruction ``index`` issues: what the SETs before it wrote, else 0."""
    regs = {Reg(r): 0 for r in range(N_CONFIG_REGS)}
    for ins in program[:index]:
        if ins.op is Op.SET:
            regs[Reg(ins["reg"])] = ins["value"]
    return regs


# -- the units the controller drives, as the contract has them ---------------------------------------------------
@dataclass
class Start:
    cycle: int  # absolute simulation cycle
    pc: int
    instruction: Instruction
    regs: dict
    cycles: int


class UnitModel:
    """A unit keeping the dispatch contract: after a start in cycle t, ``ready`` again from t + occupancy and
    ``idle`` from t + cycles (``system_timing`` of the instruction and regs it was given). ``fault`` = (index,
    delay, code): ``error`` with ``code`` from ``delay`` cycles after it takes instruction ``index`` ("last": in the
    last cycle before it would take the next one)."""

    def __init__(self, name: str, target: Target, fault: tuple | None = None):
        self.name, self.target, self.fault = name, target, fault
        self.free = self.done = 0
        self.error_at, self.code = None, 0
        self.starts: list[Start] = []
        self.obuf_at = [0, 0]  # core: the cycle each output buffer's last MATMUL is done

    def ready(self, cycle: int) -> bool:
        return cycle >= self.free

    def idle(self, cycle: int) -> bool:
        return cycle >= self.done

    def error(self, cycle: int) -> bool:
        return self.error_at is not None and cycle >= self.error_at

    def take(self, cycle: int, pc: int, word: int, bus: int) -> Start:
        ins, regs = decode(word), regs_of(bus)
        cycles = instruction_cycles(ins, regs, self.target)
        self.free = cycle + occupancy(ins, cycles, self.target)
        self.done = max(self.done, cycle + cycles)
        if ins.op is Op.MATMUL and ins["out"]:
            self.obuf_at[ins["obuf"]] = max(self.obuf_at[ins["obuf"]], cycle + cycles)
        if self.fault is not None and self.fault[0] == pc:
            delay = self.free - cycle - 1 if self.fault[1] == "last" else self.fault[1]
            self.error_at, self.code = cycle + delay, self.fault[2]
        start = Start(cycle, pc, ins, regs, cycles)
        self.starts.append(start)
        return start


class DmaModel(UnitModel):
    """The DMA unit, which also boots: a boot started in cycle s is a LOAD of the program (``boot_cycles``), each
    instruction written into the instruction memory by cycle s + boot - 1 ("latest": instruction j when its last
    byte has arrived, ``read_cycles(128 (j+1)) - 1`` after s; "random": in random order on random cycles)."""

    def __init__(self, target: Target, program_words: list[int], writes: str, rng, fault=None, boot_fault=None):
        super().__init__("dma", target, fault)
        self.boot_fault = boot_fault  # (delay, code): error that many cycles into the boot
        self.words, self.write_order, self.rng = program_words, writes, rng
        self.writes: dict[int, tuple[int, int]] = {}
        self.boots: list[tuple[int, int, int]] = []

    def boot(self, cycle: int, address: int, count: int) -> None:
        length = boot_cycles(count * INSTRUCTION_BYTES, self.target.arch)
        self.free = self.done = cycle + length
        self.boots.append((cycle, address, count))
        if self.boot_fault is not None:
            self.error_at, self.code = cycle + self.boot_fault[0], self.boot_fault[1]
        if self.write_order == "latest":
            when = [cycle + int(read_cycles(8 * INSTRUCTION_BYTES * (j + 1), self.target.arch)) - 1
                    for j in range(count)]
        else:
            when = [cycle + int(c) for c in self.rng.choice(np.arange(1, length), size=count, replace=False)]
        for j, at in enumerate(when):
            self.writes[at] = (j, self.words[j])


# -- the bench: one process that drives the units, the boot and the AXI4-Lite master, cycle by cycle --------------
@dataclass
class Run:
    """What one START produced; cycles are counted from the START write's cycle (cycle 0)."""

    issue: dict = field(default_factory=dict)  # instruction index -> cycle dispatched
    starts: dict = field(default_factory=dict)  # unit name -> [Start] with cycles from cycle 0
    boots: list = field(default_factory=list)
    status: int = 0
    error_code: int = 0
    error_pc: int = 0
    cycles: int = 0
    pc: int = 0
    probes: list = field(default_factory=list)
    zero: int = 0  # the simulation cycle of cycle 0


class Bench:
    def __init__(self, ctx, dut: Controller, target: Target, words: list[int], *, writes="latest", seed=0,
                 faults=None):
        self.ctx, self.dut, self.target = ctx, dut, target
        faults = faults or {}
        rng = np.random.default_rng(seed)
        self.dma = DmaModel(target, words, writes, rng, faults.get("dma"), faults.get("boot"))
        self.units = {"dma": self.dma, "stage": UnitModel("stage", target, faults.get("stage")),
                      "core": UnitModel("core", target, faults.get("core"))}
        self.now = 0
        self.issued: list[tuple[int, int]] = []
        self.violations: list[str] = []
        self._driven: dict = {}
        ctx.set(dut.csr.bready, 1)
        ctx.set(dut.csr.rready, 1)

    def _set(self, signal, value) -> None:
        if self._driven.get(id(signal)) != value:
            self.ctx.set(signal, value)
            self._driven[id(signal)] = value

    async def step(self) -> None:
        """One cycle: the units' outputs for it, what the controller does in it, then the clock edge."""
        ctx, dut, c = self.ctx, self.dut, self.now
        for name, model in self.units.items():
            port = getattr(dut, name)
            self._set(port.ready, int(model.ready(c)))
            self._set(port.idle, int(model.idle(c)))
            self._set(port.error, int(model.error(c)))
            self._set(port.error_code, model.code if model.error(c) else 0)
        core = self.units["core"]
        self._set(dut.obuf_done, sum(1 << b for b in (0, 1) if c >= core.obuf_at[b]))
        write = self.dma.writes.get(c)
        self._set(dut.imem_write.en, int(write is not None))
        if write is not None:
            self._set(dut.imem_write.addr, write[0])
            self._set(dut.imem_write.data, write[1])
        if ctx.get(dut.boot_start):
            self.dma.boot(c, ctx.get(dut.boot_addr), ctx.get(dut.boot_count))
        pc = ctx.get(dut.pc)
        started = []
        for name, model in self.units.items():
            port = getattr(dut, name)
            if ctx.get(port.start):
                if not model.ready(c):
                    self.violations.append(f"cycle {c}: start to {name} while not ready")
                start = model.take(c, pc, ctx.get(port.instr), ctx.get(port.regs))
                started.append(name)
                if start.instruction.op is Op.MATMUL and not self.units["stage"].idle(c):
                    self.violations.append(f"cycle {c}: MATMUL while the staging unit is not idle")
                if start.instruction.op is Op.WRITEBACK and c < core.obuf_at[start.instruction["obuf"]]:
                    self.violations.append(f"cycle {c}: WRITEBACK before its output buffer is done")
        if len(started) > 1:
            self.violations.append(f"cycle {c}: starts to {started} in one cycle")
        if ctx.get(dut.issued):
            self.issued.append((pc, c))
        await ctx.tick()
        self.now += 1

    # AXI4-Lite master: valid held until the handshake, bready / rready always high
    async def write(self, offset: int, value: int, strobe: int = 0xF) -> tuple[int, int]:
        """Write a CSR; returns (the cycle the write was accepted in, bresp)."""
        ctx, csr = self.ctx, self.dut.csr
        for signal, v in ((csr.awaddr, offset), (csr.wdata, value), (csr.wstrb, strobe), (csr.awvalid, 1),
                          (csr.wvalid, 1)):
            ctx.set(signal, v)
        while True:
            cycle, accepted = self.now, ctx.get(csr.awready) and ctx.get(csr.wready)
            await self.step()
            if accepted:
                break
        ctx.set(csr.awvalid, 0)
        ctx.set(csr.wvalid, 0)
        while not ctx.get(csr.bvalid):
            await self.step()
        response = ctx.get(csr.bresp)
        await self.step()
        return cycle, response

    async def read(self, offset: int) -> tuple[int, int]:
        """Read a CSR; returns (rdata, rresp), the value the CSR held in the cycle the read was accepted in
        (``read_cycle``)."""
        ctx, csr = self.ctx, self.dut.csr
        ctx.set(csr.araddr, offset)
        ctx.set(csr.arvalid, 1)
        while True:
            self.read_cycle, accepted = self.now, ctx.get(csr.arready)
            await self.step()
            if accepted:
                break
        ctx.set(csr.arvalid, 0)
        while not ctx.get(csr.rvalid):
            await self.step()
        data, response = ctx.get(csr.rdata), ctx.get(csr.rresp)
        await self.step()
        return data, response

    async def run(self, count: int, *, limit: int = 200_000, probe_at: int | None = None) -> Run:
        """PROGRAM_ADDR, PROGRAM_COUNT, START; cycles until DONE or ERROR; then the status CSRs."""
        await self.write(CSR["PROGRAM_ADDR"], PROGRAM_ADDR)
        await self.write(CSR["PROGRAM_COUNT"], count)
        first = {name: len(model.starts) for name, model in self.units.items()}
        boots, self.issued = len(self.dma.boots), []
        zero, _ = await self.write(CSR["CTRL"], 1)
        run = Run(zero=zero)
        while not (self.ctx.get(self.dut.done) or self.ctx.get(self.dut.error)):
            if self.now - zero > limit:
                raise AssertionError(f"no DONE or ERROR within {limit} cycles")
            if probe_at is not None and self.now - zero >= probe_at:
                probe_at = None
                status, _ = await self.read(CSR["STATUS"])
                pc, _ = await self.read(CSR["PC"])
                when = self.read_cycle - zero
                restart = await self.write(CSR["CTRL"], 1)
                run.probes.append((status, pc, when, restart))
            else:
                await self.step()
        for pc, cycle in self.issued:
            assert pc not in run.issue, f"instruction {pc} dispatched twice"
            run.issue[pc] = cycle - zero
        for name, model in self.units.items():
            run.starts[name] = [Start(s.cycle - zero, s.pc, s.instruction, s.regs, s.cycles)
                                for s in model.starts[first[name]:]]
        run.boots = [(c - zero, a, n) for c, a, n in self.dma.boots[boots:]]
        run.status = (await self.read(CSR["STATUS"]))[0]
        run.error_code = (await self.read(CSR["ERROR_CODE"]))[0]
        run.error_pc = (await self.read(CSR["ERROR_PC"]))[0]
        low, high = (await self.read(CSR["CYCLES_LO"]))[0], (await self.read(CSR["CYCLES_HI"]))[0]
        run.cycles = low | high << 32
        run.pc = (await self.read(CSR["PC"]))[0]
        return run


def simulate(arch: str, flow: str, program: list, *, count: int | None = None, imem_depth: int = SMALL_IMEM,
             writes: str = "latest", seed: int = 0, faults=None, runs: int = 1, probe_at=None, extra=None):
    """Boot and run ``program`` (Instructions, or 128-bit words) ``runs`` times; returns ([Run], bench)."""
    target = Target(ARCHS[arch], flow)
    words = [item if isinstance(item, int) else encode(item) for item in program]
    dut = Controller(system_params_from_arch(ARCHS[arch], flow, imem_depth=imem_depth))
    results, holder = [], {}

    async def testbench(ctx):
        bench = Bench(ctx, dut, target, words, writes=writes, seed=seed, faults=faults)
        holder["bench"] = bench
        for _ in range(3):
            await bench.step()
        for _ in range(runs):
            results.append(await bench.run(len(words) if count is None else count, probe_at=probe_at))
        if extra is not None:
            await extra(bench)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return results, holder["bench"]


def check_schedule(run: Run, program: list[Instruction], issue, total: int) -> None:
    """Raise AssertionError unless every instruction was dispatched on its cycle in ``issue``, every action went
    to its unit on that cycle with its instruction and the registers set before it, and CYCLES is ``total``."""
    assert sorted(run.issue) == list(range(len(issue))), f"dispatched {sorted(run.issue)}, expected {len(issue)}"
    for index, want in enumerate(issue):
        if run.issue[index] != want:
            raise AssertionError(f"instruction {index} ({program[index].op.name}) dispatched in cycle "
                                 f"{run.issue[index]}, expected {want}")
    for name, starts in run.starts.items():
        expected = [i for i in range(len(issue)) if UNIT_NAMES.get(unit_of(program[i].op)) == name]
        assert [s.pc for s in starts] == expected, f"{name} took {[s.pc for s in starts]}, expected {expected}"
        for s in starts:
            assert s.cycle == issue[s.pc], f"{name} started in cycle {s.cycle}, instruction {s.pc} at {issue[s.pc]}"
            assert s.instruction == program[s.pc], f"instruction {s.pc}: {s.instruction} != {program[s.pc]}"
            assert s.regs == registers_before(program, s.pc), f"instruction {s.pc}: registers differ"
    if run.cycles != total:
        raise AssertionError(f"CYCLES {run.cycles}, expected {total}")


# -- random programs --------------------------------------------------------------------------------------------
GEOMETRY = {Reg.IN_ADDR: lambda r: 8 * int(r.integers(0, 512)), Reg.IN_H: (1, 8), Reg.IN_W: (1, 8),
            Reg.IN_CP: lambda r: 8 * int(r.integers(1, 3)), Reg.BATCH: (1, 2), Reg.KH: (1, 3), Reg.KW: (1, 3),
            Reg.STRIDE_H: (1, 2), Reg.STRIDE_W: (1, 2), Reg.PAD_H: (0, 1), Reg.PAD_W: (0, 1), Reg.DIL_H: (1, 2),
            Reg.DIL_W: (1, 2), Reg.OUT_H: (1, 4), Reg.OUT_W: (1, 4), Reg.CIN_G: (1, 8),
            Reg.OUT_CP: lambda r: 8 * int(r.integers(1, 5))}


def _reg_value(rng, reg: Reg) -> int:
    spec = GEOMETRY.get(reg)
    if spec is None:
        return int(rng.integers(-(1 << 31), 1 << 31))
    return spec(rng) if callable(spec) else int(rng.integers(spec[0], spec[1] + 1))


def _set(rng, reg: Reg) -> Instruction:
    return Instruction(Op.SET, {"reg": int(reg), "value": _reg_value(rng, reg)})


def _action(rng, op: Op, target: Target) -> Instruction:
    r = lambda low, high: int(rng.integers(low, high + 1))  # noqa: E731
    word, rows, cols = target.word_bytes, target.arch.rows, target.arch.cols
    m_max, k_max = (40, rows) if target.dataflow == "ws" else (rows, 40)  # the core's tile bounds
    addr = lambda: 8 * r(0, (1 << 21) - 1)  # noqa: E731
    fields = {
        Op.LOAD: lambda: {"glb_addr": addr(), "bytes": 8 * r(1, 40), "dram_addr": 8 * r(0, (1 << 29) - 1)},
        Op.GATHER: lambda: {"slot": r(0, 1), "mode": r(0, 1), "count": r(1, 24), "lanes": r(1, word),
                            "m0": r(0, 63), "k0": r(0, 40), "group": r(0, 1), "b_addr": addr()},
        Op.MATMUL: lambda: {"acc": r(0, 1), "out": r(0, 1), "slot": r(0, 1), "obuf": r(0, 1), "m": r(1, m_max),
                            "k": r(1, k_max), "n": r(1, cols), "acc_row": r(0, 4095), "n0": r(0, 100)},
        Op.WRITEBACK: lambda: {"obuf": r(0, 1), "m": r(1, 32), "n": r(1, cols), "m0": r(0, 200), "n0": r(0, 40)},
        Op.LOADP: lambda: {"glb_addr": addr(), "count": r(1, 32)},
        Op.LOADLUT: lambda: {"glb_addr": addr()},
        Op.VACT: lambda: {"src": addr(), "dst": addr(), "words": r(1, 40)},
        Op.VADD: lambda: {"src": addr(), "src2": addr(), "dst": addr(), "words": r(1, 40)},
        Op.POOL: lambda: {"mode": r(0, 1), "src": addr(), "dst": addr()},
    }
    fields[Op.STORE] = fields[Op.LOAD]
    return Instruction(op, fields[op]())


ACTIONS = [Op.LOAD, Op.STORE, Op.GATHER, Op.MATMUL, Op.WRITEBACK, Op.LOADP, Op.LOADLUT, Op.VACT, Op.VADD, Op.POOL]


def random_program(seed: int, target: Target, length: int = 60) -> list[Instruction]:
    """The geometry registers set, then ``length`` random SETs, NOPs, actions of every unit, SYNCs of every mask
    (with runs of MATMULs, whose next tile overlaps the last one's results), then END."""
    rng = np.random.default_rng(seed)
    program = [_set(rng, reg) for reg in GEOMETRY]
    kinds = ["set", "nop", "sync", "action", "matmuls"]
    for _ in range(length):
        kind = kinds[int(rng.choice(len(kinds), p=[0.25, 0.1, 0.12, 0.45, 0.08]))]
        if kind == "set":
            program.append(_set(rng, Reg(int(rng.integers(0, N_CONFIG_REGS)))))
        elif kind == "nop":
            program.append(Instruction(Op.NOP))
        elif kind == "sync":
            program.append(Instruction(Op.SYNC, {"mask": int(rng.integers(1, 8))}))
        elif kind == "action":
            program.append(_action(rng, ACTIONS[int(rng.integers(0, len(ACTIONS)))], target))
        else:
            program += [_action(rng, Op.MATMUL, target) for _ in range(int(rng.integers(2, 4)))]
    return program + [Instruction(Op.END)]


def expected(program: list[Instruction], target: Target):
    return schedule(program, target, len(program) * INSTRUCTION_BYTES)


@pytest.mark.parametrize("arch,flow", TARGETS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_programs_dispatch_on_the_schedules_cycles(arch, flow, seed):
    program = random_program(seed * 10 + len(arch), Target(ARCHS[arch], flow))
    (run,), bench = simulate(arch, flow, program)
    timing = expected(program, Target(ARCHS[arch], flow))
    assert not bench.violations, bench.violations[:3]
    check_schedule(run, program, timing.issue, timing.total_cycles)
    assert run.status == STATUS_DONE and run.error_code == 0
    assert run.pc == len(program) - 1


def test_the_random_programs_cover_every_mask_unit_and_overlap():
    target = Target(ARCHS["fpga-8x8"], "ws")
    programs = [random_program(seed * 10 + 8, target) for seed in (1, 2, 3)]
    ops = {ins.op for program in programs for ins in program}
    masks = {ins["mask"] for program in programs for ins in program if ins.op is Op.SYNC}
    assert ops == set(Op) and masks == set(range(1, 8))
    timing = expected(programs[0], target)
    stalls = [i for i in range(1, len(programs[0])) if timing.issue[i] > timing.issue[i - 1] + 1]
    overlaps = [i for i in range(1, len(programs[0])) if programs[0][i].op is Op.MATMUL
                and programs[0][i - 1].op is Op.MATMUL and timing.issue[i] - timing.issue[i - 1] < timing.cycles[i - 1]]
    assert stalls and overlaps


def test_a_wrong_expected_cycle_fails_the_check():
    target = Target(ARCHS["fpga-8x8"], "ws")
    program = random_program(5, target, length=20)
    (run,), _ = simulate("fpga-8x8", "ws", program)
    timing = expected(program, target)
    check_schedule(run, program, timing.issue, timing.total_cycles)
    for index in (0, len(program) // 2, len(program) - 1):
        late = list(timing.issue)
        late[index] += 1
        with pytest.raises(AssertionError, match=f"instruction {index} "):
            check_schedule(run, program, late, timing.total_cycles)
    with pytest.raises(AssertionError, match="CYCLES"):
        check_schedule(run, program, timing.issue, timing.total_cycles - 1)


def test_a_stall_free_stream_dispatches_one_instruction_a_cycle_from_the_boots_end():
    target = Target(ARCHS["fpga-8x8"], "ws")
    rng = np.random.default_rng(4)
    program = [_set(rng, Reg(r)) for r in range(N_CONFIG_REGS)] + [Instruction(Op.NOP)] * 5 + [
        Instruction(Op.SYNC, {"mask": 7}), _action(rng, Op.MATMUL, target), _action(rng, Op.LOAD, target),
        _action(rng, Op.VACT, target), Instruction(Op.END)]  # the vector op last: nothing issues in its setup
    (run,), _ = simulate("fpga-8x8", "ws", program)
    boot = boot_cycles(len(program) * INSTRUCTION_BYTES, target.arch)
    assert [run.issue[i] for i in range(len(program) - 1)] == list(range(boot, boot + len(program) - 1))
    assert run.boots == [(0, PROGRAM_ADDR, len(program))]  # boot_start in cycle 0, the START write's cycle
    check_schedule(run, program, expected(program, target).issue, expected(program, target).total_cycles)


@pytest.mark.parametrize("arch", ["fpga-8x8", "fpga-4x4"])
def test_a_program_of_only_end_is_done_after_the_boot(arch):
    (run,), _ = simulate(arch, "ws", [Instruction(Op.END)])
    boot = boot_cycles(INSTRUCTION_BYTES, ARCHS[arch])
    assert run.issue == {0: boot} and run.cycles == boot + 1 and run.status == STATUS_DONE


def test_the_boot_may_write_the_instructions_in_any_order_up_to_its_last_cycle():
    target = Target(ARCHS["fpga-8x8"], "os")
    program = random_program(7, target, length=30)
    (run,), _ = simulate("fpga-8x8", "os", program, writes="random", seed=7)
    timing = expected(program, target)
    check_schedule(run, program, timing.issue, timing.total_cycles)


def test_a_second_start_after_done_reruns_from_cleared_registers():
    target = Target(ARCHS["fpga-8x8"], "ws")
    program = random_program(8, target, length=25)
    runs, _ = simulate("fpga-8x8", "ws", program, runs=2)
    timing = expected(program, target)
    for run in runs:  # check_schedule compares each start's registers with those set by this run's SETs only
        check_schedule(run, program, timing.issue, timing.total_cycles)
    assert [r.boots for r in runs] == [[(0, PROGRAM_ADDR, len(program))]] * 2


def test_start_while_busy_is_ignored_and_status_reads_busy():
    target = Target(ARCHS["fpga-8x8"], "ws")
    program = random_program(9, target, length=30)
    timing = expected(program, target)
    probe = timing.boot_cycles + 20
    (run,), _ = simulate("fpga-8x8", "ws", program, probe_at=probe)
    check_schedule(run, program, timing.issue, timing.total_cycles)
    (status, pc, when, (_, response)), = run.probes
    assert status == STATUS_BUSY and response == RESP_OKAY
    assert pc == sum(t < when for t in timing.issue)  # the instruction held in the read's cycle
    assert len(run.boots) == 1


# -- errors -----------------------------------------------------------------------------------------------------
def _prefix(arch: str, flow: str, seed: int, length: int = 20) -> list[Instruction]:
    return random_program(seed, Target(ARCHS[arch], flow), length)[:-1]  # without END


def check_stopped(arch: str, flow: str, program: list, index: int, code: int, **kw) -> Run:
    """Run ``program`` (instructions, the one at ``index`` possibly a raw word): ERROR with ``code`` at ``index``,
    every instruction before it dispatched on the schedule's cycles, none from ``index`` on."""
    (run,), _ = simulate(arch, flow, program, **kw)
    assert (run.status, run.error_code, run.error_pc) == (STATUS_ERROR, code, index)
    count = kw.get("count", len(program))
    timing = schedule(program[:index], Target(ARCHS[arch], flow), count * INSTRUCTION_BYTES)
    assert run.issue == dict(enumerate(timing.issue))
    return run


def test_an_unknown_opcode_stops_with_code_1_at_its_index():
    program = _prefix("fpga-8x8", "ws", 11)
    rng = np.random.default_rng(11)
    known = {int(op) for op in Op}
    for at in (0, 7, len(program) - 1):
        bad = int(rng.choice([c for c in range(256) if c not in known]))
        word = bad | int(rng.integers(0, 1 << 60)) << 8
        check_stopped("fpga-8x8", "ws", program[:at] + [word, Instruction(Op.END)], at, ERROR_DECODE)


@pytest.mark.parametrize("op", list(Op))
def test_a_set_reserved_bit_stops_with_code_1(op):
    rng = np.random.default_rng(int(op))
    program = _prefix("fpga-8x8", "os", 12 + int(op), 12)
    reserved = [b for b in range(128) if not used_bits(op) >> b & 1]
    bit = int(rng.choice(reserved))
    ins = _action(rng, op, Target(ARCHS["fpga-8x8"], "os")) if op in ACTIONS else Instruction(
        op, {"mask": 3} if op is Op.SYNC else {"reg": 2, "value": 5} if op is Op.SET else {})
    word = encode(ins) | 1 << bit
    with pytest.raises(Exception, match="reserved"):
        decode(word)  # the reference agrees the word is malformed
    check_stopped("fpga-8x8", "os", program + [word, Instruction(Op.END)], len(program), ERROR_DECODE)


def test_running_past_the_program_without_end_stops_with_code_1_at_the_count():
    program = _prefix("fpga-4x4", "ws", 13)
    check_stopped("fpga-4x4", "ws", program, len(program), ERROR_DECODE)


@pytest.mark.parametrize("reg", [N_CONFIG_REGS, 255])
def test_a_set_of_a_register_that_does_not_exist_stops_with_code_7(reg):
    program = _prefix("fpga-8x8", "ws", 14)
    word = encode(Instruction(Op.SET, {"reg": 0})) | reg << 8
    check_stopped("fpga-8x8", "ws", program + [word, Instruction(Op.END)], len(program), ERROR_REGISTER)


def _indices(program, op):
    return [i for i, ins in enumerate(program) if ins.op is op]


@pytest.mark.parametrize("unit,op,code", [("dma", Op.LOAD, 3), ("stage", Op.GATHER, 2), ("core", Op.MATMUL, 4),
                                          ("stage", Op.WRITEBACK, 5)])
@pytest.mark.parametrize("delay", [1, "last"])
def test_a_units_error_stops_dispatch_at_the_instruction_that_faulted(unit, op, code, delay):
    target = Target(ARCHS["fpga-8x8"], "ws")
    program = random_program(20 + code, target)
    candidates = _indices(program, op)
    faulty = candidates[len(candidates) // 2]
    timing = expected(program, target)
    (run,), bench = simulate("fpga-8x8", "ws", program, faults={unit: (faulty, delay, code)})
    taken = next(s for s in bench.units[unit].starts if s.pc == faulty)
    seen = bench.units[unit].error_at - run.zero  # the cycle the error is first high
    assert seen == timing.issue[faulty] + (delay if delay != "last" else
                                           occupancy(taken.instruction, taken.cycles, target) - 1)
    assert (run.status, run.error_code, run.error_pc) == (STATUS_ERROR, code, faulty)
    assert run.issue == {i: t for i, t in enumerate(timing.issue) if t < seen}
    assert run.cycles == seen + 1  # the stopping cycle counts


@pytest.mark.parametrize("op,code", [(Op.VACT, 7), (Op.VADD, 2), (Op.POOL, 2)], ids=["vact", "vadd", "pool"])
def test_a_vector_ops_fault_at_the_end_of_its_setup_stops_before_anything_behind_it_issues(op, code):
    """The vector unit reports a fault VECTOR_SETUP_CYCLES after it takes the op; the controller issues nothing in
    between, so ERROR_PC is the vector op and no later instruction was dispatched (as the executor stops)."""
    target = Target(ARCHS["fpga-8x8"], "ws")
    seed = next(seed for seed in range(30, 90) if _indices(random_program(seed, target), op))
    program = random_program(seed, target)
    faulty = _indices(program, op)[0]
    # a SET behind it would issue the next cycle but for the setup
    program = program[:faulty + 1] + [Instruction(Op.SET, {"reg": 0, "value": 1}), Instruction(Op.END)]
    (run,), bench = simulate("fpga-8x8", "ws", program, faults={"stage": (faulty, VECTOR_SETUP_CYCLES, code)})
    seen = bench.units["stage"].error_at - run.zero
    timing = expected(program, target)
    assert seen == timing.issue[faulty] + VECTOR_SETUP_CYCLES == timing.issue[faulty + 1]
    assert (run.status, run.error_code, run.error_pc) == (STATUS_ERROR, code, faulty)
    assert max(run.issue) == faulty


def test_a_core_error_names_the_tile_it_took_while_the_last_drained():
    target = Target(ARCHS["fpga-8x8"], "ws")
    tile = {"m": 16, "k": 8, "n": 8, "out": 1}
    program = [Instruction(Op.MATMUL, {**tile, "obuf": 0}), Instruction(Op.MATMUL, {**tile, "obuf": 1}),
               Instruction(Op.NOP), Instruction(Op.END)]
    timing = expected(program, target)
    assert timing.issue[1] < timing.issue[0] + timing.cycles[0]  # two tiles in flight
    (run,), _ = simulate("fpga-8x8", "ws", program, faults={"core": (1, 1, 4)})
    assert (run.error_code, run.error_pc) == (4, 1)


def test_a_dma_error_during_the_boot_stops_at_instruction_0():
    program = [Instruction(Op.NOP), Instruction(Op.END)]
    (run,), _ = simulate("fpga-8x8", "ws", program, faults={"boot": (5, 3)})
    assert (run.status, run.error_code, run.error_pc) == (STATUS_ERROR, 3, 0)
    assert run.issue == {} and run.cycles == 6


@pytest.mark.parametrize("count,where", [(0, 0), (SMALL_IMEM + 1, SMALL_IMEM)])
def test_a_program_count_the_instruction_memory_cannot_run_stops_without_a_boot(count, where):
    (run,), _ = simulate("fpga-8x8", "ws", [Instruction(Op.END)], count=count)
    assert (run.status, run.error_code, run.error_pc) == (STATUS_ERROR, ERROR_DECODE, where)
    assert run.boots == [] and run.issue == {} and run.cycles == 1


def test_a_program_filling_the_instruction_memory_runs():
    depth = 64
    target = Target(ARCHS["fpga-4x4"], "os")
    rng = np.random.default_rng(15)
    program = [Instruction(Op.NOP) if i % 3 else _set(rng, Reg(i % 29)) for i in range(depth - 1)]
    program.append(Instruction(Op.END))
    (run,), _ = simulate("fpga-4x4", "os", program, imem_depth=depth)
    timing = expected(program, target)
    check_schedule(run, program, timing.issue, timing.total_cycles)
    (short,), _ = simulate("fpga-4x4", "os", program[:-1], imem_depth=depth - 1)
    assert (short.error_code, short.error_pc) == (ERROR_DECODE, depth - 1)


# -- CSRs -------------------------------------------------------------------------------------------------------
def test_csrs_read_back_take_byte_strobes_and_refuse_unmapped_offsets():
    seen = {}

    async def csrs(bench):
        await bench.write(CSR["PROGRAM_ADDR"], 0x1234_5678)
        seen["addr"] = await bench.read(CSR["PROGRAM_ADDR"])
        await bench.write(CSR["PROGRAM_ADDR"], 0xAABB_CCDD, strobe=0b0101)
        seen["strobed"] = await bench.read(CSR["PROGRAM_ADDR"])
        await bench.write(CSR["PROGRAM_COUNT"], 77)
        seen["count"] = await bench.read(CSR["PROGRAM_COUNT"])
        seen["ctrl"] = await bench.read(CSR["CTRL"])
        seen["unmapped_read"] = await bench.read(0x40)
        seen["unmapped_write"] = (await bench.write(0x24, 1))[1]
        seen["status"] = await bench.read(CSR["STATUS"])

    simulate("fpga-8x8", "ws", [Instruction(Op.END)], runs=0, extra=csrs)
    assert seen["addr"] == (0x1234_5678, RESP_OKAY)
    assert seen["strobed"] == (0x12BB_56DD, RESP_OKAY)
    assert seen["count"] == (77, RESP_OKAY)
    assert seen["ctrl"] == (0, RESP_OKAY)
    assert seen["unmapped_read"] == (0, RESP_SLVERR) and seen["unmapped_write"] == RESP_SLVERR
    assert seen["status"] == (0, RESP_OKAY)


def test_the_boot_port_carries_program_addr_and_count():
    program = [Instruction(Op.NOP)] * 3 + [Instruction(Op.END)]
    (run,), _ = simulate("fpga-4x4", "os", program)
    assert run.boots == [(0, PROGRAM_ADDR, 4)]
    assert run.issue[0] == boot_cycles(4 * INSTRUCTION_BYTES, ARCHS["fpga-4x4"])


def test_the_controller_refuses_what_it_cannot_build():
    with pytest.raises(HdlError, match="SystemParams"):
        Controller(object())
    with pytest.raises(HdlError, match="imem_depth"):
        Controller(system_params_from_arch(ARCHS["fpga-8x8"], "ws", imem_depth=1))


def test_reserved_bit_masks_are_the_formats():
    for op in Op:
        for f in FORMATS[op]:
            assert used_bits(op) >> f.lsb & ((1 << f.width) - 1) == (1 << f.width) - 1
        assert bin(used_bits(op)).count("1") == 8 + sum(f.width for f in FORMATS[op])


# -- compiled programs ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("net,arch,flow", [("lut", "fpga-8x8", "ws"), ("lut", "fpga-8x8", "os"),
                                           ("lut", "fpga-4x4", "ws"), ("mobilenet", "fpga-8x8", "ws")])
def test_a_compiled_network_dispatches_on_its_schedule(net, arch, flow):
    from codesign.compiler.build import compile_model
    from codesign.zoo.system_nets import NETS

    model, example = NETS[net]()
    result = compile_model(model, example, ARCHS[arch], flow, reestimate_bn=True)
    program = result.program.instructions
    (run,), bench = simulate(arch, flow, program, imem_depth=max(SMALL_IMEM, len(program)))
    assert not bench.violations, bench.violations[:3]
    check_schedule(run, program, result.schedule.issue, result.schedule.total_cycles)
    assert run.status == STATUS_DONE


def test_the_controller_converts_to_verilog_that_lints_clean(tmp_path):
    from conftest import require_simulator
    from hdl.emit import to_verilog, top_ports
    from hdl.lint import verilator_lint

    dut = Controller(system_params_from_arch(ARCHS["fpga-8x8"], "ws", imem_depth=SMALL_IMEM))
    text = to_verilog(dut, "controller")
    ports = top_ports(text, "controller")
    assert {"csr__awaddr", "csr__rdata", "boot_start", "imem_write__data", "dma__start", "core__regs",
            "obuf_done", "pc", "done", "error"} <= set(ports)
    require_simulator("verilator")
    path = tmp_path / "controller.v"
    path.write_text(text)
    result = verilator_lint(path, "controller")
    assert result.clean, result.output
