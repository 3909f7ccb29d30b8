"""The core unit (hdl/system/core_unit.py) runs MATMUL as the executor does, bit for bit, and in exactly the cycles
of codesign.contract.system_timing: random WS and OS tiles (ragged sizes, k-fold chains, out 0/1, extreme values,
channel offsets) back to back at the occupancy spacing and spaced apart, with the staging slots modelled here."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from amaranth.sim import Simulator

from codesign.arch_loader import load_arch
from codesign.compiler.executor import Machine
from codesign.contract.isa import Instruction, Op, Reg, encode
from codesign.contract.system_timing import LUT_BYTES, STAGE_ROWS, Target, instruction_cycles, occupancy
from codesign.errors import HdlError
from hdl.emit import to_verilog
from hdl.system.core_unit import CoreUnit
from hdl.system.params import N_CONFIG_REGS, system_params_from_arch

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")

I32 = (-(2**31), 2**31 - 1)
TAIL = (Reg.LUT_EN, Reg.ZP_PRE, Reg.PRE_LO, Reg.PRE_HI, Reg.ZP_OUT, Reg.CLAMP_LO, Reg.CLAMP_HI)


@dataclass
class Tile:
    """One MATMUL of a run: its instruction, the operands its slot pair holds, the registers it issues with, and
    the earliest cycle the bench offers it (it starts on the first cycle from then on that ``ready`` is high)."""

    ins: Instruction
    a: np.ndarray
    b: np.ndarray
    regs: dict
    earliest: int = 0


@dataclass
class Run:
    """What a run of the unit did, cycle by cycle."""

    starts: list = field(default_factory=list)
    ready: list = field(default_factory=list)
    idle: list = field(default_factory=list)
    obuf_done: list = field(default_factory=list)
    slot_reads: list = field(default_factory=list)  # (cycle, port, pair, row)
    acc_writes: list = field(default_factory=list)  # (cycle, row, lane mask, lanes)
    obuf_writes: list = field(default_factory=list)
    obuf_reads: dict = field(default_factory=dict)  # (cycle, buf, row) -> lanes read
    error: list = field(default_factory=list)
    accumulator: dict = field(default_factory=dict)  # row -> lanes, after the run, of the rows the tiles touch


def _params(arch: str, flow: str):
    return system_params_from_arch(load_arch(arch), flow)


def _word(values) -> int:
    return sum((int(v) & 0xFF) << (8 * i) for i, v in enumerate(values))


def _regs_word(regs: dict) -> int:
    return sum((int(regs.get(Reg(r), 0)) & 0xFFFFFFFF) << (32 * r) for r in range(N_CONFIG_REGS))


def _simulate(dut: CoreUnit, tiles: list[Tile], *, entries, table, acc_init: dict, obuf_reads=(),
              tail_cycles: int = 4) -> Run:
    """Load the parameter entries and table through their write ports and the accumulator's first contents, offer
    the tiles in order, model the slots (a tile's operands are in its pair from the cycle the previous tile's
    occupancy ends), and record everything the unit does."""
    p = dut.params
    run = Run()
    simulator = Simulator(dut)
    simulator.add_clock(1e-6)
    word_bytes = p.word_bytes
    pairs = [np.zeros((p.stage_rows, word_bytes), dtype=np.int64) for _ in range(4)]  # A0, B0, A1, B1
    setup = [("param", i, e) for i, e in enumerate(entries)]
    setup += [("lut", w, _word(table[w * word_bytes:(w + 1) * word_bytes])) for w in range(LUT_BYTES // word_bytes)]
    rng = np.random.default_rng(99)

    async def bench(ctx):
        for row, lanes in acc_init.items():
            ctx.set(dut.accumulator[row], [int(v) for v in lanes])
        pending_reads = {}
        reads_of_obuf = {cycle: (buf, row) for cycle, buf, row in obuf_reads}
        last_read = max(reads_of_obuf, default=0) + 2
        last_obuf_read = None
        next_tile, swap_at = 0, 0
        cycle = 0
        finished_at = None
        while finished_at is None or cycle < max(finished_at, last_read):
            # the slots: tile j's operands from the end of the previous tile's occupancy on
            if next_tile < len(tiles) and cycle == swap_at:
                tile = tiles[next_tile]
                pair = tile.ins["slot"]
                pairs[2 * pair][:], pairs[2 * pair + 1][:] = tile.a, tile.b
            for port in ("a", "b"):
                read = pending_reads.get(port)
                word = (_word(pairs[2 * read[0] + (port == "b")][read[1]]) if read
                        else int(rng.integers(0, 2**62)))  # nothing read: garbage
                ctx.set(getattr(dut, f"{port}_read").data, word)
            # set-up writes, one a cycle
            item = setup[cycle] if cycle < len(setup) else None
            ctx.set(dut.param_write.en, bool(item and item[0] == "param"))
            ctx.set(dut.lut_write.en, bool(item and item[0] == "lut"))
            if item and item[0] == "param":
                ctx.set(dut.param_write.index, item[1])
                for name, value in zip(("bias", "mult", "shift"), item[2]):
                    ctx.set(getattr(dut.param_write, name), int(value))
            elif item:
                ctx.set(dut.lut_write.index, item[1])
                ctx.set(dut.lut_write.data, item[2])
            # output-buffer reads (the staging unit's port)
            if last_obuf_read is not None:
                run.obuf_reads[last_obuf_read] = [int(v) for v in ctx.get(dut.obuf_read.data)]
            read = reads_of_obuf.get(cycle)
            ctx.set(dut.obuf_read.en, read is not None)
            if read:
                ctx.set(dut.obuf_read.buf, read[0])
                ctx.set(dut.obuf_read.addr, read[1])
            last_obuf_read = (cycle, *read) if read else None
            # dispatch
            ready = ctx.get(dut.dispatch.ready)
            run.ready.append(ready)
            run.idle.append(ctx.get(dut.dispatch.idle))
            run.obuf_done.append(ctx.get(dut.obuf_done))
            run.error.append((ctx.get(dut.dispatch.error), ctx.get(dut.dispatch.error_code)))
            start = (cycle >= len(setup) and next_tile < len(tiles) and ready
                     and cycle >= tiles[next_tile].earliest)
            ctx.set(dut.dispatch.start, start)
            if start:  # ready, idle and obuf_done do not follow start within the cycle
                assert (ctx.get(dut.dispatch.ready), ctx.get(dut.dispatch.idle), ctx.get(dut.obuf_done)) == (
                    run.ready[-1], run.idle[-1], run.obuf_done[-1])
                tile = tiles[next_tile]
                ctx.set(dut.dispatch.instr, encode(tile.ins))
                ctx.set(dut.dispatch.regs, _regs_word(tile.regs))
                run.starts.append(cycle)
                busy, occupied = _timing(tile, p)
                swap_at = cycle + occupied
                next_tile += 1
                if next_tile == len(tiles):
                    finished_at = cycle + busy + tail_cycles
            pending_reads = {}
            for port in ("a", "b"):
                port_sig = getattr(dut, f"{port}_read")
                if ctx.get(port_sig.en):
                    pending_reads[port] = (ctx.get(port_sig.pair), ctx.get(port_sig.addr))
                    run.slot_reads.append((cycle, port, *pending_reads[port]))
            for kind in ("acc", "obuf"):
                taps = dut.write_taps
                mask = ctx.get(taps[f"{kind}_en"])
                if mask:
                    getattr(run, f"{kind}_writes").append(
                        (cycle, ctx.get(taps[f"{kind}_addr"]), mask, [int(v) for v in ctx.get(taps[f"{kind}_data"])]))
            if not tiles and cycle >= len(setup) + tail_cycles:
                finished_at = cycle
            await ctx.tick()
            cycle += 1
            if cycle > 200_000:
                raise AssertionError("the run did not finish")
        touched = sorted(set(acc_init) | {t.ins["acc_row"] + i for t in tiles for i in range(t.ins["m"])
                                           if t.ins["acc_row"] + i < p.acc_rows})
        run.accumulator = {row: [int(v) for v in ctx.get(dut.accumulator[row])] for row in touched}

    simulator.add_testbench(bench)
    simulator.run()
    return run


def _timing(tile: Tile, p) -> tuple[int, int]:
    """(cycles, occupancy) of a tile by the contract; (1, 1) for one beyond the core's bounds (it never runs)."""
    try:
        cycles = instruction_cycles(tile.ins, tile.regs, _target(p))
        return cycles, occupancy(tile.ins, cycles, _target(p))
    except ValueError:
        return 1, 1


def _target(p) -> Target:
    return Target(_ARCH[p.rows, p.word_bytes], p.dataflow)


_ARCH = {}
for _name in ("fpga-8x8", "fpga-4x4"):
    _arch = load_arch(_name)
    _ARCH[_arch.rows, _arch.glb.word_bits // 8] = _arch


# -- the golden model and the checks ------------------------------------------------------------------------------

@dataclass
class Expected:
    """The executor's account of the same run: per tile the accumulator rows and output rows it leaves, and the
    contract's cycles and occupancy."""

    acc_rows: list
    obuf_rows: list
    cycles: list
    occupancy: list
    machine: Machine


def _golden(p, tiles: list[Tile], entries, table, acc_init: dict) -> Expected:
    target = _target(p)
    machine = Machine(target, dram_bytes=8, acc_rows=p.acc_rows, param_entries=p.param_entries)
    for row, lanes in acc_init.items():
        machine.acc[row] = lanes
    count = len(entries)
    machine.bias[:count] = [e[0] for e in entries]
    machine.mult[:count] = [e[1] for e in entries]
    machine.shift[:count] = [e[2] for e in entries]
    machine.params_loaded = count
    machine.lut = np.asarray(table, dtype=np.int64)
    expected = Expected([], [], [], [], machine)
    for index, tile in enumerate(tiles):
        ins = tile.ins
        machine.regs = dict(tile.regs)
        pair = ins["slot"]
        machine.slots[2 * pair][:], machine.slots[2 * pair + 1][:] = tile.a, tile.b
        m, k = ins["m"], ins["k"]
        machine.staged[pair] = (m, k, k) if p.dataflow == "ws" else (k, m, k)
        machine._check_tile(ins, index)
        machine._matmul(ins, index)
        row, n = ins["acc_row"], ins["n"]
        expected.acc_rows.append(machine.acc[row:row + m, :n].copy())
        expected.obuf_rows.append(machine.obufs[ins["obuf"]][:m].copy() if ins["out"] else None)
        cycles = instruction_cycles(ins, tile.regs, target)
        expected.cycles.append(cycles)
        expected.occupancy.append(occupancy(ins, cycles, target))
    return expected


def _check(p, tiles: list[Tile], run: Run, expected: Expected, reads: dict, *, cycle_error: int = 0) -> None:
    """Every fact of the contract about ``run`` (``cycle_error`` shifts the expected cycles: a wrong expectation
    must fail)."""
    cycles = [c + cycle_error for c in expected.cycles]
    occ = expected.occupancy
    starts = run.starts
    assert len(starts) == len(tiles)
    # each tile starts on the first cycle the unit takes it: after the previous one's occupancy
    for j in range(1, len(tiles)):
        assert starts[j] == max(starts[j - 1] + occ[j - 1], tiles[j].earliest, starts[j - 1] + 1), j
    # ready, idle and obuf_done, cycle by cycle (docs/system-rtl.md, dispatch and obuf done)
    for c in range(starts[0], len(run.ready)):
        before = [j for j in range(len(tiles)) if starts[j] < c]
        assert run.ready[c] == all(c >= starts[j] + occ[j] for j in before), ("ready", c)
        assert run.idle[c] == all(c >= starts[j] + cycles[j] for j in before), ("idle", c)
        for b in range(2):
            done = all(c >= starts[j] + cycles[j] for j in before
                       if tiles[j].ins["out"] and tiles[j].ins["obuf"] == b)
            assert (run.obuf_done[c] >> b) & 1 == done, ("obuf_done", b, c)
    # slot reads: only the tile's own pair, rows within its operands, within its occupancy
    for c, port, pair, row in run.slot_reads:
        j = max(i for i in range(len(tiles)) if starts[i] <= c)
        ins = tiles[j].ins
        assert c < starts[j] + occ[j] and pair == ins["slot"], (c, port, pair, row)
        rows = ins["k"] if port == "b" or p.dataflow == "os" else ins["m"]
        assert row < rows
    # the accumulator rows and output rows of each tile, in order, bit-exact, complete by t + cycles
    acc_writes, obuf_writes = iter(run.acc_writes), iter(run.obuf_writes)
    for j, tile in enumerate(tiles):
        ins = tile.ins
        n, lanes = ins["n"], (1 << ins["n"]) - 1
        for i in range(ins["m"]):
            c, row, mask, data = next(acc_writes)
            assert (row, mask) == (ins["acc_row"] + i, lanes), (j, i)
            assert data[:n] == list(expected.acc_rows[j][i]), (j, i)
            assert c <= starts[j] + cycles[j] - 1, ("late accumulator row", j, i, c)
        if ins["out"]:
            for i in range(ins["m"]):
                c, row, mask, data = next(obuf_writes)
                assert (row, mask) == (ins["obuf"] * p.stage_rows + i, lanes), (j, i)
                assert data[:n] == list(expected.obuf_rows[j][i][:n]), (j, i)
                assert c <= starts[j] + cycles[j] - 1, ("late output row", j, i, c)
    assert next(acc_writes, None) is None and next(obuf_writes, None) is None
    # what is left: the whole accumulator, and the output buffers as the staging unit reads them
    for row, lanes in run.accumulator.items():  # (the write log above shows no other row was written)
        assert lanes == list(expected.machine.acc[row]), row
    assert set(run.obuf_reads) == set(reads)
    for key, lanes in run.obuf_reads.items():
        assert lanes == list(reads[key]), key


# -- random tiles -------------------------------------------------------------------------------------------------

def _int8(rng, shape) -> np.ndarray:
    values = rng.integers(-128, 127, size=shape, endpoint=True)
    return np.where(rng.random(shape) < 0.3, rng.choice([-128, 127], size=shape), values)


def _tail_regs(rng) -> dict:
    regs = {Reg.LUT_EN: int(rng.choice([0, 1, 5])), Reg.ZP_PRE: int(rng.integers(-20, 20)),
            Reg.ZP_OUT: int(rng.integers(-20, 20))}
    regs[Reg.PRE_LO], regs[Reg.PRE_HI] = sorted(int(v) for v in rng.integers(-140, 140, size=2))
    regs[Reg.CLAMP_LO], regs[Reg.CLAMP_HI] = sorted(int(v) for v in rng.integers(-140, 140, size=2))
    if rng.random() < 0.2:
        regs = {reg: int(rng.choice([*I32, rng.integers(*I32)])) for reg in TAIL}
    regs[Reg.OUT_CP] = 8  # a register the core unit does not read: it must not matter
    return regs


def _entries(rng, count: int) -> list[tuple[int, int, int]]:
    bias = rng.integers(*I32, size=count, endpoint=True)
    mult = rng.integers(*I32, size=count, endpoint=True)
    shift = rng.integers(1, 62, size=count, endpoint=True)
    bias[:4], mult[:4], shift[:4] = [I32[0], I32[1], 0, -1], [I32[1], I32[0], 1, -1], [62, 1, 31, 40]
    small = rng.random(count) < 0.5  # usual layers: multipliers about 2^30, shifts near 38
    mult = np.where(small, rng.integers(2**29, 2**31 - 1, size=count), mult)
    shift = np.where(small, rng.integers(30, 45, size=count), shift)
    return list(zip(bias.tolist(), mult.tolist(), shift.tolist()))


def _random_tiles(rng, p, count: int, *, entries: int, spaced: bool = False, max_stream: int = 40) -> list[Tile]:
    """Blocks of k folds over one accumulator block (acc 0 then 1; sometimes acc 1 from the start, over the
    accumulator's first contents), out = 1 on the last fold (sometimes on none), pairs and buffers alternating."""
    rows, cols, word = p.rows, p.cols, p.word_bytes
    tiles: list[Tile] = []
    pair = obuf = 0
    while len(tiles) < count:
        if p.dataflow == "ws":
            m = int(rng.choice([1, rows, int(rng.integers(1, max_stream + 1))]))
        else:
            m = int(rng.integers(1, rows + 1))
        n = int(rng.integers(1, cols + 1))
        folds = int(rng.integers(1, 4))
        acc_row = int(rng.choice([0, p.acc_rows - m, rng.integers(0, p.acc_rows - m + 1)]))
        n0 = int(rng.choice([0, entries - n, rng.integers(0, entries - n + 1)]))
        out_last = rng.random() < 0.8
        first_acc = int(rng.random() < 0.2)
        for fold in range(folds):
            k = int(rng.integers(1, rows + 1)) if p.dataflow == "ws" else int(
                rng.choice([1, int(rng.integers(1, max_stream + 1))]))
            ins = Instruction(Op.MATMUL, {"acc": first_acc if fold == 0 else 1,
                                          "out": int(out_last and fold == folds - 1) | int(rng.random() < 0.1),
                                          "slot": pair, "obuf": obuf, "m": m, "k": k, "n": n,
                                          "acc_row": acc_row, "n0": n0})
            earliest = int(rng.integers(0, 80)) if spaced else 0
            tiles.append(Tile(ins, _int8(rng, (p.stage_rows, word)), _int8(rng, (p.stage_rows, word)),
                              _tail_regs(rng), earliest))
            pair ^= 1
            if ins["out"]:
                obuf ^= int(rng.random() < 0.8)
    return tiles[:count]


def _acc_init(rng, p, tiles) -> dict:
    rows = {t.ins["acc_row"] + i for t in tiles for i in range(t.ins["m"])}
    values = {}
    for row in sorted(rows):
        lanes = rng.integers(*I32, size=p.cols, endpoint=True)
        values[row] = np.where(rng.random(p.cols) < 0.3, rng.choice(list(I32), size=p.cols), lanes)
    return values


def _space(tiles, starts_after: int) -> None:
    """Make ``earliest`` cumulative (each tile offered some cycles after the previous one could start)."""
    clock = starts_after
    for tile in tiles:
        clock += tile.earliest
        tile.earliest = clock


def _expected_starts(tiles, expected) -> list[int]:
    """The cycles the contract starts the tiles on: each when offered and the previous one's occupancy is over."""
    starts = []
    for j, tile in enumerate(tiles):
        starts.append(tile.earliest if j == 0 else max(tile.earliest, starts[-1] + expected.occupancy[j - 1]))
    return starts


def _obuf_reads(p, tiles, expected) -> dict:
    """Output-buffer reads and what they must return: each tile's last output row at exactly t + cycles (its
    deadline), then every row written, after the run."""
    starts = _expected_starts(tiles, expected)
    reads = {}
    for j, tile in enumerate(tiles):
        if tile.ins["out"]:
            last = tile.ins["m"] - 1
            reads[(starts[j] + expected.cycles[j], tile.ins["obuf"], last)] = expected.obuf_rows[j][last]
    end = max(s + c for s, c in zip(starts, expected.cycles)) + 2
    rows = sorted({(t.ins["obuf"], i) for t in tiles if t.ins["out"] for i in range(t.ins["m"])})
    for c, (b, r) in enumerate(rows):
        reads[(end + c, b, r)] = expected.machine.obufs[b][r]
    return reads


def _run_random(arch: str, flow: str, seed: int, count: int, *, spaced: bool = False, max_stream: int = 40):
    p = _params(arch, flow)
    rng = np.random.default_rng(seed)
    entries = _entries(rng, 3 * p.cols + 5)
    table = rng.integers(0, 255, size=LUT_BYTES, endpoint=True)
    tiles = _random_tiles(rng, p, count, entries=len(entries), spaced=spaced, max_stream=max_stream)
    setup = len(entries) + LUT_BYTES // p.word_bytes
    _space(tiles, setup)
    acc_init = _acc_init(rng, p, tiles)
    expected = _golden(p, tiles, entries, table, acc_init)
    reads = _obuf_reads(p, tiles, expected)
    run = _simulate(CoreUnit(p), tiles, entries=entries, table=table, acc_init=acc_init, obuf_reads=reads)
    return p, tiles, run, expected, reads


@pytest.mark.parametrize("arch,flow,seed", [("fpga-8x8", "ws", 1), ("fpga-8x8", "os", 2), ("fpga-4x4", "ws", 3),
                                            ("fpga-4x4", "os", 4)])
def test_random_tiles_back_to_back_are_the_executors_in_the_contracts_cycles(arch, flow, seed):
    p, tiles, run, expected, reads = _run_random(arch, flow, seed, 14)
    _check(p, tiles, run, expected, reads)
    assert all(b == a + o for a, b, o in zip(run.starts, run.starts[1:], expected.occupancy))  # back to back


@pytest.mark.parametrize("arch,flow,seed", [("fpga-8x8", "ws", 5), ("fpga-4x4", "os", 6)])
def test_spaced_tiles_let_idle_and_obuf_done_rise_exactly_at_t_plus_cycles(arch, flow, seed):
    p, tiles, run, expected, reads = _run_random(arch, flow, seed, 10, spaced=True)
    _check(p, tiles, run, expected, reads)
    assert any(b > a + o for a, b, o in zip(run.starts, run.starts[1:], expected.occupancy))


def test_a_wrong_cycle_expectation_fails():
    p, tiles, run, expected, reads = _run_random("fpga-4x4", "ws", 7, 4, spaced=True)
    _check(p, tiles, run, expected, reads)
    for error in (-1, 1):
        with pytest.raises(AssertionError):
            _check(p, tiles, run, expected, reads, cycle_error=error)


@pytest.mark.parametrize("arch,flow", [("fpga-8x8", "ws"), ("fpga-8x8", "os")])
def test_the_largest_tiles_chain_over_two_folds(arch, flow):
    p = _params(arch, flow)
    rng = np.random.default_rng(8)
    entries = _entries(rng, p.cols)
    table = rng.integers(0, 255, size=LUT_BYTES, endpoint=True)
    m, k = (STAGE_ROWS, p.rows) if flow == "ws" else (p.rows, STAGE_ROWS)
    tiles = []
    for fold in range(2):
        ins = Instruction(Op.MATMUL, {"acc": fold, "out": fold, "slot": fold, "obuf": 1, "m": m, "k": k,
                                      "n": p.cols, "acc_row": p.acc_rows - m, "n0": 0})
        a = np.full((p.stage_rows, p.word_bytes), -128) if fold else _int8(rng, (p.stage_rows, p.word_bytes))
        tiles.append(Tile(ins, a, np.full((p.stage_rows, p.word_bytes), -128), _tail_regs(rng)))
    _space(tiles, len(entries) + LUT_BYTES // p.word_bytes)
    acc_init = _acc_init(rng, p, tiles)
    expected = _golden(p, tiles, entries, table, acc_init)
    reads = _obuf_reads(p, tiles, expected)
    run = _simulate(CoreUnit(p), tiles, entries=entries, table=table, acc_init=acc_init, obuf_reads=reads)
    _check(p, tiles, run, expected, reads)


def _error_of(p, ins: Instruction, loaded: int) -> int:
    """The executor's error code for ``ins`` (None: it runs)."""
    from codesign.compiler.executor import ExecutionError
    machine = Machine(_target(p), dram_bytes=8, acc_rows=p.acc_rows, param_entries=p.param_entries)
    machine.params_loaded = loaded
    m, k = ins["m"], ins["k"]
    machine.staged[ins["slot"]] = (m, k, k) if p.dataflow == "ws" else (k, m, k)
    try:
        machine._check_tile(ins, 0)
        machine._matmul(ins, 0)
    except ExecutionError as error:
        return error.code
    return None


def _bad_tiles(p):
    rows, cols, ok = p.rows, p.cols, {"m": 1, "k": 1, "n": 1, "acc_row": 0, "n0": 0, "out": 1}
    streamed = "m" if p.dataflow == "ws" else "k"
    bounded = "k" if p.dataflow == "ws" else "m"
    return [
        {**ok, streamed: STAGE_ROWS + 1},
        {**ok, bounded: rows + 1},
        {**ok, "n": cols + 1},
        {**ok, "acc_row": p.acc_rows - 2, "m": 3} if p.dataflow == "ws" else {**ok, "acc_row": p.acc_rows - 1, "m": 2},
        {**ok, "n0": 3, "n": 2},  # 4 entries loaded: channels 3, 4
        {**ok, "n0": 4},
    ]


@pytest.mark.parametrize("flow", ["ws", "os"])
def test_errors_are_the_executors_and_stop_the_unit(flow):
    p = _params("fpga-4x4", flow)
    rng = np.random.default_rng(9)
    entries = _entries(rng, 4)
    table = np.arange(LUT_BYTES)
    setup = len(entries) + LUT_BYTES // p.word_bytes
    for fields in _bad_tiles(p):
        ins = Instruction(Op.MATMUL, fields)
        code = _error_of(p, ins, len(entries))
        assert code in (4, 5, 8)
        tile = Tile(ins, _int8(rng, (p.stage_rows, p.word_bytes)), _int8(rng, (p.stage_rows, p.word_bytes)), {},
                    setup)
        run = _simulate(CoreUnit(p), [tile], entries=entries, table=table, acc_init={})
        t = run.starts[0]
        assert run.error[t] == (0, 0) and run.error[t + 1] == (1, code), fields
        assert all(run.idle[t:]) and all(run.ready[t:]) and all(d == 3 for d in run.obuf_done[t:])
        assert run.acc_writes == [] and run.obuf_writes == [] and run.slot_reads == []


def test_channels_beyond_the_entries_are_no_error_without_output():
    p = _params("fpga-4x4", "ws")
    ins = Instruction(Op.MATMUL, {"m": 2, "k": 2, "n": 4, "n0": 100, "out": 0})
    assert _error_of(p, ins, 4) is None
    rng = np.random.default_rng(10)
    entries = _entries(rng, 4)
    tiles = [Tile(ins, _int8(rng, (p.stage_rows, p.word_bytes)), _int8(rng, (p.stage_rows, p.word_bytes)), {})]
    _space(tiles, len(entries) + LUT_BYTES // p.word_bytes)
    table = np.arange(LUT_BYTES)
    expected = _golden(p, tiles, entries, table, {})
    run = _simulate(CoreUnit(p), tiles, entries=entries, table=table, acc_init={})
    _check(p, tiles, run, expected, {})
    assert not any(error for error, _ in run.error)


def test_building_checks_its_parameters():
    with pytest.raises(HdlError, match="SystemParams"):
        CoreUnit(_params("fpga-4x4", "ws").core)


@pytest.mark.parametrize("flow", ["ws", "os"])
def test_converts_to_verilog_that_lints_clean(flow, tmp_path):
    from conftest import require_simulator
    from hdl.lint import verilator_lint
    text = to_verilog(CoreUnit(_params("fpga-4x4", flow)), "core_unit")
    assert "module core_unit" in text
    require_simulator("verilator")
    path = tmp_path / "core_unit.v"
    path.write_text(text)
    result = verilator_lint(path, "core_unit")
    assert result.clean, result.output
