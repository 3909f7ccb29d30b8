"""The system on a board (hdl/system/board.py, docs/board.md): the on-chip memory's AXI4 timing against the memory
model the system's cycle contract assumes (hdl/benches/axi_memory.py with latency READ_LATENCY), the UART bridge's
protocol driven by the host client (codesign/board_host.py) over a simulated serial line under amaranth.sim, a
whole program loaded over UART on BoardSystem under cocotb (Icarus) checked against the executor bit for bit and
against the prediction to the cycle, the fit checks, ``codesign board-run`` against a Python model of the board's
protocol (over a stream and over a real pseudo-terminal with pyserial), and (slow, long) the ULX3S build."""

from __future__ import annotations

import argparse
import random
from collections import deque

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from conftest import require_simulator

from codesign.arch_loader import load_arch
from codesign.board_host import (ACK, CMD_READ_MEM, CMD_WRITE_CSR, NAK_CHECKSUM, NAK_COMMAND, NAK_RANGE, BoardLink,
                                 BoardLinkError, checksum, frame)
from codesign.errors import HdlError
from hdl.benches.axi_memory import MASTER_SIGNALS, SLAVE_SIGNALS, AxiMemory
from hdl.system.board import BoardSystem, board_fit, check_board_fit, memory_plan
from hdl.system.controller import CSR, Controller
from hdl.system.onchip_memory import QUEUE_DEPTH as QUEUE_BURSTS
from hdl.system.onchip_memory import READ_LATENCY, OnChipMemory, board_arch, memory_bytes_for
from hdl.system.params import system_params_from_arch
from hdl.system.uart_bridge import UartBridge, baud_divisor

PERIOD = 1e-6
DIVISOR = 4  # clock cycles a UART bit: the fastest the receiver takes


def _params(arch="fpga-4x4", dataflow="ws", imem_depth=256):
    return system_params_from_arch(board_arch(load_arch(arch)), dataflow, imem_depth=imem_depth)


# -- the on-chip memory's AXI4 side beside the model the cycle contract assumes -------------------------------
def _lockstep(params, size, traffic, cycles):
    """Drive ``traffic`` (cycle -> master signals) into OnChipMemory and AxiMemory(latency=READ_LATENCY) together;
    the slave's signals of both, cycle by cycle."""
    dut = OnChipMemory(params, size)
    model = AxiMemory(size, params.axi_data_bytes, READ_LATENCY)
    seen = []

    async def bench(ctx):
        idle = {name: 0 for name in MASTER_SIGNALS}
        for cycle in range(cycles):
            inputs = {**idle, "rready": 1, "bready": 1, **traffic.get(cycle, {})}
            for name, value in inputs.items():
                ctx.set(getattr(dut.axi, name), value)
            mine = {name: ctx.get(getattr(dut.axi, name)) for name in SLAVE_SIGNALS}
            theirs = model.outputs()
            seen.append((cycle, mine, theirs))
            model.step(inputs)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(PERIOD)
    sim.add_testbench(bench)
    sim.run()
    return seen


def _bus_params(bus_bytes):
    import dataclasses

    arch = board_arch(load_arch("fpga-8x8"))
    arch = dataclasses.replace(arch, dram=dataclasses.replace(arch.dram, bytes_per_cycle=float(bus_bytes)))
    return system_params_from_arch(arch, "ws", imem_depth=256)


@pytest.mark.parametrize("bus_bytes", [1, 2, 8])
def test_onchip_memory_answers_as_the_model_with_its_latency(bus_bytes):
    params = _bus_params(bus_bytes)
    rng = random.Random(bus_bytes)
    size = 504 * bus_bytes
    traffic = {}
    # writes (AW, then a W beat a cycle, random strobes), then reads: four ARs back to back (the queue's depth),
    # a 1-beat burst, and a burst running past the end of the memory (DECERR); addresses in beats
    size_code = bus_bytes.bit_length() - 1
    cycle = 0
    for beat, beats in [(0, 8), (32, 1), (64, 32), (500, 6)]:  # the last runs past the end: DECERR
        traffic[cycle] = {"awaddr": beat * bus_bytes, "awlen": beats - 1, "awsize": size_code, "awburst": 1,
                          "awvalid": 1}
        for i in range(beats):
            traffic.setdefault(cycle + 1 + i, {}).update(
                wdata=rng.getrandbits(8 * bus_bytes), wstrb=rng.randrange(1, 1 << bus_bytes),
                wlast=int(i == beats - 1), wvalid=1)
        cycle += beats + 2
    reads = [(cycle + 5, (0, 8)), (cycle + 6, (32, 1)), (cycle + 7, (64, 32)), (cycle + 8, (8, 4)),
             (cycle + 60, (498, 12))]
    for start, (beat, beats) in reads:
        traffic.setdefault(start, {}).update(araddr=beat * bus_bytes, arlen=beats - 1, arsize=size_code,
                                             arburst=1, arvalid=1)
    seen = _lockstep(params, size, traffic, cycle + 100)
    r_beats = [(mine["rdata"], mine["rresp"]) for _c, mine, _t in seen if mine["rvalid"]]
    assert len(r_beats) == 8 + 1 + 32 + 4 + 12 and [resp for _d, resp in r_beats[-6:]] == [3] * 6
    assert any(data for data, _r in r_beats)
    assert [mine["bresp"] for _c, mine, _t in seen if mine["bvalid"]] == [0, 0, 0, 3]
    for c, mine, theirs in seen:
        keys = (("rvalid", "bvalid") + (("rdata", "rresp", "rlast") if theirs["rvalid"] else ())
                + (("bresp",) if theirs["bvalid"] else ()))
        assert {k: mine[k] for k in keys} == {k: theirs[k] for k in keys}, f"cycle {c}"
        offered = traffic.get(c, {})
        assert mine["wready"] or not offered.get("wvalid"), f"W beat refused in cycle {c}"
        assert mine["arready"] or not offered.get("arvalid"), f"AR refused in cycle {c}"


def test_onchip_memory_first_beat_is_exactly_the_latency_after_the_ar():
    params = _params()
    seen = _lockstep(params, 64, {3: {"araddr": 8, "arlen": 1, "arsize": 1, "arburst": 1, "arvalid": 1}}, 12)
    first = next(c for c, mine, _ in seen if mine["rvalid"])
    assert first == 3 + READ_LATENCY
    with pytest.raises(AssertionError):  # the same check fails for a memory one cycle faster
        assert first == 3 + READ_LATENCY - 1


def test_onchip_memory_answers_decerr_beyond_its_size():
    params = _params()
    seen = _lockstep(params, 64, {0: {"araddr": 56, "arlen": 7, "arsize": 1, "arburst": 1, "arvalid": 1}}, 16)
    resp = [mine["rresp"] for _c, mine, _t in seen if mine["rvalid"]]
    assert resp == [0] * 4 + [3] * 4


# -- the UART bridge under amaranth.sim: a serial line for the host client -------------------------------
class SimBoard:
    """UartBridge + OnChipMemory + the controller (its CSRs) under amaranth.sim, and a byte stream of the
    serial line (``write``, ``read`` with a timeout in cycles) for ``BoardLink``."""

    def __init__(self, memory_bytes=256, *, timeout_bytes=8, read_timeout_cycles=40_000):
        params = _params()
        self.memory = OnChipMemory(params, memory_bytes)
        self.bridge = UartBridge(DIVISOR, memory_bytes, timeout_bytes=timeout_bytes)
        self.controller = Controller(params)
        m = Module()
        m.submodules.memory, m.submodules.bridge, m.submodules.controller = self.memory, self.bridge, self.controller
        wiring.connect(m, self.bridge.mem, self.memory.host)
        wiring.connect(m, self.bridge.csr, self.controller.csr)
        self.to_board, self.from_board = deque(), deque()
        self.read_timeout_cycles = read_timeout_cycles
        self.cycles = 0
        sim = Simulator(m)
        sim.add_clock(PERIOD)
        sim.add_testbench(self._drive, background=True)
        sim.add_testbench(self._listen, background=True)
        self.sim = sim

    async def _drive(self, ctx):
        rx = self.bridge.rx
        ctx.set(rx, 1)
        while True:
            if not self.to_board:
                await ctx.tick()
                continue
            byte = self.to_board.popleft()
            for bit in [0] + [byte >> i & 1 for i in range(8)] + [1]:
                ctx.set(rx, bit)
                await ctx.tick().repeat(DIVISOR)

    async def _listen(self, ctx):
        tx = self.bridge.tx
        while True:
            await ctx.tick()
            if ctx.get(tx):
                continue
            await ctx.tick().repeat(DIVISOR // 2)  # the middle of the start bit
            value = 0
            for i in range(8):
                await ctx.tick().repeat(DIVISOR)
                value |= ctx.get(tx) << i
            await ctx.tick().repeat(DIVISOR)
            assert ctx.get(tx) == 1, "stop bit"
            self.from_board.append(value)

    def idle(self, cycles):
        self.cycles += cycles
        self.sim.run_until(self.cycles * PERIOD)

    def write(self, data: bytes) -> int:
        self.to_board.extend(data)
        return len(data)

    def read(self, count: int) -> bytes:
        waited = 0
        while len(self.from_board) < count and waited < self.read_timeout_cycles:
            self.idle(64)
            waited += 64
        return bytes(self.from_board.popleft() for _ in range(min(count, len(self.from_board))))


@pytest.fixture(scope="module")
def board():
    return SimBoard()


def test_memory_writes_read_back_over_uart(board):
    link = BoardLink(board, chunk=24)
    data = bytes(random.Random(2).randrange(256) for _ in range(61))
    link.write_memory(37, data)  # odd address, ragged length, three frames
    assert link.read_memory(37, len(data)) == data
    link.write_memory(100, b"\x5a")
    assert link.read_memory(99, 3)[1] == 0x5A


def test_csr_writes_and_reads_over_uart(board):
    link = BoardLink(board)
    link.write_csr(CSR["PROGRAM_ADDR"], 0x1238)
    link.write_csr(CSR["PROGRAM_COUNT"], 17)
    assert link.read_csr(CSR["PROGRAM_ADDR"]) == 0x1238
    assert link.read_csr(CSR["PROGRAM_COUNT"]) == 17
    assert link.read_csr(CSR["STATUS"]) == 0  # not started: neither BUSY, DONE nor ERROR


def test_an_unmapped_csr_is_refused(board):
    link = BoardLink(board)
    with pytest.raises(BoardLinkError, match="CSR error"):
        link.read_csr(0x80)


def test_a_bad_checksum_is_refused(board):
    raw = bytearray(frame(CMD_READ_MEM, 0, 4))
    raw[-1] ^= 1
    board.write(bytes(raw))
    assert board.read(1) == bytes([NAK_CHECKSUM])


def test_a_range_beyond_the_memory_writes_nothing(board):
    link = BoardLink(board)
    link.write_memory(250, b"\x00" * 6)
    board.write(frame(0x57, 250, 8, b"\xff" * 8))  # 250 + 8 > 256
    assert board.read(1) == bytes([NAK_RANGE])
    assert link.read_memory(250, 6) == b"\x00" * 6


def test_an_unknown_command_and_a_csr_length_other_than_4_are_refused(board):
    board.write(frame(0x11, 0, 0))
    assert board.read(1) == bytes([NAK_COMMAND])
    board.write(frame(CMD_WRITE_CSR, CSR["PROGRAM_ADDR"], 2, b"\x01\x02\x03\x04"))
    assert board.read(1) == bytes([NAK_COMMAND])


def test_a_broken_frame_is_dropped_after_the_timeout(board):
    board.write(frame(CMD_READ_MEM, 0, 4)[:4])  # the host gave up mid-frame
    board.idle(8 * 10 * DIVISOR + 200)  # more than timeout_bytes byte times of silence
    board.write(frame(CMD_READ_MEM, 0, 2))
    reply = board.read(4)
    assert reply[0] == ACK and reply[-1] == checksum(reply[1:3])


def test_the_client_reports_no_answer_within_its_timeout():
    class Silent:
        def write(self, data):
            return len(data)

        def read(self, count):
            return b""

    with pytest.raises(BoardLinkError, match="no answer"):
        BoardLink(Silent()).read_csr(CSR["STATUS"])


# -- fit and placement ------------------------------------------------------------------------------------
def test_the_icebreaker_refuses_the_8x8_system_in_one_line():
    with pytest.raises(HdlError) as error:
        check_board_fit(_params("fpga-8x8"), 4096, "icebreaker")
    message = str(error.value)
    assert "\n" not in message and "does not fit the iCEBreaker" in message


def test_an_icebreaker_build_stops_before_any_tool_runs(tmp_path):
    from hdl.system.board import build_board

    with pytest.raises(HdlError, match="does not fit the iCEBreaker"):
        build_board(_params("fpga-4x4"), 4096, "icebreaker", tmp_path / "ice")
    assert not (tmp_path / "ice").exists()


def test_the_ulx3s_takes_a_small_image_and_refuses_a_large_one():
    params = _params()
    fit = check_board_fit(params, 65536, "ulx3s")
    assert fit.fits and fit.blocks <= 208
    with pytest.raises(HdlError, match="does not fit the ULX3S"):
        check_board_fit(params, 1 << 20, "ulx3s")


def test_board_system_needs_the_on_chip_latency_and_a_reachable_baud():
    wrong = system_params_from_arch(load_arch("fpga-8x8"), "ws", imem_depth=256)
    with pytest.raises(HdlError, match="latency_cycles=20"):
        BoardSystem(wrong, 4096, 25e6)
    with pytest.raises(HdlError, match="off"):
        baud_divisor(25e6, 3_000_000)  # 8.33 cycles a bit: 4% off
    assert baud_divisor(25e6, 115200) == 217


def test_memory_plan_places_every_region_on_chip():
    memory_map = {"weights": 0, "weights_bytes": 100, "input": 104, "input_bytes": 48, "output": 152,
                  "output_bytes": 16, "spill": 168, "spill_bytes": 0, "program": 168}
    plan = memory_plan(memory_map, 64, memory_bytes_for(168 + 64))
    assert [r.name for r in plan] == ["weights", "input", "output", "spill", "program"]
    assert all(r.where.startswith("on-chip memory") for r in plan)
    assert memory_bytes_for(232) == 232 and memory_bytes_for(233) == 240


# -- a whole program loaded over the UART on BoardSystem (cocotb, Icarus) --------------------------------
def _copy_program(nbytes: int, source: int, dest: int):
    """LOAD ``nbytes`` from DRAM ``source`` into the GLB, STORE them to DRAM ``dest``, END: more bursts than the
    memory's AR queue holds, so its back-pressure is on the measured path."""
    from codesign.contract.isa import Instruction, Op, Unit

    return [Instruction(Op.LOAD, {"glb_addr": 0, "bytes": nbytes, "dram_addr": source}),
            Instruction(Op.SYNC, {"mask": 1 << Unit.DMA}),
            Instruction(Op.STORE, {"glb_addr": 0, "bytes": nbytes, "dram_addr": dest}),
            Instruction(Op.SYNC, {"mask": 1 << Unit.DMA}),
            Instruction(Op.END, {})]


@pytest.mark.rtl
def test_a_program_loaded_over_uart_runs_bit_and_cycle_exact(tmp_path):
    require_simulator("icarus")
    from codesign.compiler.executor import run_program
    from codesign.contract.isa import encode_program
    from codesign.contract.system_timing import Target, schedule
    from hdl.benches.board_bench import run_board
    from hdl.system.dma import MAX_BURST_BEATS

    arch = board_arch(load_arch("fpga-8x8"))
    params = system_params_from_arch(arch, "ws", imem_depth=256)
    nbytes = 2 * QUEUE_BURSTS * MAX_BURST_BEATS * params.axi_data_bytes  # 8 full bursts: the AR queue fills
    source, dest = 0, 8192
    instructions = _copy_program(nbytes, source, dest)
    binary = encode_program(instructions)
    program_addr = 16384
    image = np.zeros(program_addr + len(binary), dtype=np.uint8)
    # random bytes in the first and the last burst (sent over the UART: 40 cycles a byte), zeros between
    edge = MAX_BURST_BEATS * params.axi_data_bytes
    rng = np.random.default_rng(3)
    sent = [(source, edge), (source + nbytes - edge, edge)]
    for address, length in sent:
        image[address:address + length] = rng.integers(0, 256, length, dtype=np.uint8)
    image[program_addr:] = np.frombuffer(binary, dtype=np.uint8)
    target = Target(arch, "ws")
    execution = run_program(binary, target, image, params.acc_rows)
    predicted = schedule(instructions, target, len(binary)).total_cycles
    run = run_board(params, image.tobytes(), program_addr, len(instructions), tmp_path,
                    load=sent + [(program_addr, len(binary))], read=[(dest, edge), (dest + nbytes - edge, edge)])
    assert run.done and not run.error and run.leds[0] == 1
    expected = execution.dram[dest:dest + edge].tobytes() + execution.dram[dest + nbytes - edge:dest + nbytes].tobytes()
    assert run.readback == expected and any(expected)
    assert run.cycles == predicted == execution.cycles


# -- codesign board-run against a board model of the protocol (the executor behind the CSRs) -------------------
class ModelBoard:
    """The board as docs/board.md describes it, in Python: the protocol over a bytearray and the CSRs, START
    running the executor on the memory (CYCLES its count). ``cycles_delta`` falsifies CYCLES (a check that
    the command compares them)."""

    def __init__(self, target, memory_bytes, acc_rows, cycles_delta=0):
        self.memory = bytearray(memory_bytes)
        self.csr = {CSR[name]: 0 for name in CSR}
        self.target, self.acc_rows, self.cycles_delta = target, acc_rows, cycles_delta
        self.reply = bytearray()
        self.pending = bytearray()

    def write(self, data):
        from codesign.board_host import HEADER_BYTES, PAYLOAD_COMMANDS

        self.pending += data
        while len(self.pending) >= HEADER_BYTES + 1:
            command, address = self.pending[0], int.from_bytes(self.pending[1:5], "little")
            length = int.from_bytes(self.pending[5:7], "little")
            size = {0x57: length, 0x43: 4}.get(command, 0) if command in PAYLOAD_COMMANDS else 0
            if len(self.pending) < HEADER_BYTES + size + 1:
                return len(data)
            whole = bytes(self.pending[:HEADER_BYTES + size + 1])
            del self.pending[:len(whole)]
            assert checksum(whole[:-1]) == whole[-1]
            self._serve(command, address, length, whole[HEADER_BYTES:-1])
        return len(data)

    def _serve(self, command, address, length, payload):
        if command == 0x57:
            self.memory[address:address + length] = payload
            self.reply.append(ACK)
        elif command == CMD_READ_MEM:
            data = bytes(self.memory[address:address + length])
            self.reply += bytes([ACK]) + data + bytes([checksum(data)])
        elif command == CMD_WRITE_CSR:
            value = int.from_bytes(payload, "little")
            self.csr[address] = value
            if address == CSR["CTRL"] and value & 1:
                self._start()
            self.reply.append(ACK)
        else:
            data = self.csr[address].to_bytes(4, "little")
            self.reply += bytes([ACK]) + data + bytes([checksum(data)])

    def _start(self):
        from codesign.compiler.executor import run_program

        start, count = self.csr[CSR["PROGRAM_ADDR"]], self.csr[CSR["PROGRAM_COUNT"]]
        binary = bytes(self.memory[start:start + 16 * count])
        execution = run_program(binary, self.target, np.frombuffer(bytes(self.memory), dtype=np.uint8),
                                self.acc_rows)
        self.memory[:] = execution.dram.tobytes()
        cycles = execution.cycles + self.cycles_delta
        self.csr.update({CSR["STATUS"]: 2, CSR["CYCLES_LO"]: cycles & 0xFFFFFFFF, CSR["CYCLES_HI"]: cycles >> 32})

    def read(self, count):
        out = bytes(self.reply[:count])
        del self.reply[:count]
        return out


def _board_run_args(*extra, arch="fpga-4x4"):
    from codesign.cli import board_run_cmd

    parser = argparse.ArgumentParser()
    board_run_cmd.register(parser.add_subparsers())
    return parser.parse_args(["board-run", "codesign.zoo.system_nets:lut_block", "--arch", arch,
                              "--dataflow", "ws", "--port", "/dev/null-board", *extra])


@pytest.mark.parametrize("delta, code", [(0, 0), (1, 1)])
def test_board_run_compares_output_and_cycles(delta, code, capsys):
    from codesign.cli import board_run_cmd
    from codesign.contract.system_timing import Target

    arch = board_arch(load_arch("fpga-4x4"))
    board = ModelBoard(Target(arch, "ws"), 1 << 15, 2048, cycles_delta=delta)
    assert board_run_cmd.run(_board_run_args(), stream=board) == code
    out = capsys.readouterr().out
    assert "bit-exact against the integer reference" in out and "on-chip memory" in out
    assert ("equal" if delta == 0 else "DIFFERENT") in out


def test_board_run_without_an_answer_is_one_line():
    from codesign.cli import board_run_cmd

    class Silent:
        def write(self, data):
            return len(data)

        def read(self, count):
            return b""

    with pytest.raises(BoardLinkError) as error:
        board_run_cmd.run(_board_run_args(), stream=Silent())
    assert "\n" not in str(error.value)


def test_board_run_without_a_port_is_one_line():
    from codesign.board_host import BoardLinkError as LinkError
    from codesign.cli import board_run_cmd

    with pytest.raises(LinkError) as error:
        board_run_cmd.run(_board_run_args())
    assert "--port /dev/null-board" in str(error.value) or "pyserial" in str(error.value)
    assert "\n" not in str(error.value)


def test_board_run_refuses_a_board_it_does_not_fit():
    from codesign.cli import board_run_cmd

    class Unused:
        def write(self, data):
            raise AssertionError("nothing is sent to a board the network does not fit")

        read = write

    with pytest.raises(HdlError, match="does not fit the iCEBreaker"):
        board_run_cmd.run(_board_run_args("--board", "icebreaker"), stream=Unused())


def test_board_run_refuses_the_8x8_system_the_ulx3s_has_too_few_luts_for():
    """fpga-8x8's system synthesizes to about 95,000 LUTs (hdl/resource_data/system.json) of the ECP5-85F's 83,640."""
    from codesign.cli import board_run_cmd

    class Unused:
        def write(self, data):
            raise AssertionError("nothing is sent to a board the system does not fit")

        read = write

    with pytest.raises(HdlError) as error:
        board_run_cmd.run(_board_run_args(arch="fpga-8x8"), stream=Unused())
    message = str(error.value)
    assert "\n" not in message
    assert "does not fit the ULX3S (ECP5-85F): the WS 8x8 system needs about" in message and "of 83640" in message



@pytest.mark.rtl
def test_the_memory_and_the_bridge_convert_to_verilog_and_lint_clean(tmp_path):
    require_simulator("verilator")
    from hdl.emit import to_verilog
    from hdl.lint import verilator_lint

    for name, component in (("onchip_memory", OnChipMemory(_params(), 1024)),
                            ("uart_bridge", UartBridge(DIVISOR, 1024))):
        path = tmp_path / f"{name}.v"
        path.write_text(to_verilog(component, name))
        result = verilator_lint(path, name)
        assert result.clean, result.output

@pytest.mark.parametrize("arch", ["fpga-4x4", "fpga-8x8"])
@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_no_memory_of_the_system_is_left_to_flip_flops(arch, dataflow):
    """Every memory has one write port, or two (the GLB's banks) with reads bypassing the other side's write,
    which Yosys maps to true dual-port block RAM; none is built from flip-flops."""
    params = system_params_from_arch(board_arch(load_arch(arch)), dataflow, imem_depth=512)
    fit = board_fit(params, memory_bytes_for(17296), "ulx3s")
    assert fit.flipflop_memories == ()
    assert fit.system_blocks >= params.glb_bytes // 2048  # the GLB counted as block RAM


@pytest.mark.slow
@pytest.mark.long
def test_the_ulx3s_build_reports_utilisation_fmax_and_a_bitstream(tmp_path):
    """About 30-85 minutes on a 2-core machine; measured post-route 28.53 MHz against the board's 25 (docs/board.md)."""
    from hdl.system.board import build_board

    params = _params(imem_depth=512)
    memory_bytes = memory_bytes_for(17296)  # the image of lut_block compiled for fpga-8x8: a larger one than 4x4's
    fit = check_board_fit(params, memory_bytes, "ulx3s")
    build = build_board(params, memory_bytes, "ulx3s", tmp_path / "ulx3s")
    assert build.bitstream.is_file() and build.bitstream.stat().st_size > 0
    assert 0 < build.logic_cells <= build.logic_cells_available
    assert build.bram <= fit.blocks  # the fit check counts at least what the tools place
    assert build.fmax_mhz > 0 and build.clock_mhz == pytest.approx(25.0)


def test_board_run_over_a_real_serial_port(capsys):
    """pyserial on a pseudo-terminal whose other side is the board model."""
    pytest.importorskip("serial")
    import os
    import threading

    from codesign.cli import board_run_cmd
    from codesign.contract.system_timing import Target

    board = ModelBoard(Target(board_arch(load_arch("fpga-4x4")), "ws"), 1 << 15, 2048)
    controller, device = os.openpty()
    import tty

    tty.setraw(device)
    stop = threading.Event()

    def serve():
        os.set_blocking(controller, False)
        while not stop.is_set():
            try:
                data = os.read(controller, 4096)
            except BlockingIOError:
                stop.wait(0.001)
                continue
            board.write(data)
            reply = board.read(1 << 20)
            if reply:
                os.write(controller, reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        args = _board_run_args()
        args.port = os.ttyname(device)
        assert board_run_cmd.run(args) == 0
    finally:
        stop.set()
        thread.join(5)
        os.close(controller)
        os.close(device)
    assert "bit-exact" in capsys.readouterr().out
