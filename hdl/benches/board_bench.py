"""cocotb bench of the board system (``hdl.system.board.BoardSystem``): the host's part of docs/isa.md over the
UART link of docs/board.md, on a serial line modelled by cocotbext-uart (``UartSource`` on ``uart_rx``,
``UartSink`` on ``uart_tx``).

The case (the JSON file in ``CODESIGN_BOARD_CASE``) gives the DRAM image, the ranges to load, where the program
is, the ranges to read back after the run and the UART's baud in the bench's time (a 10 ns clock). The bench
loads the image with memory-write frames, writes PROGRAM_ADDR, PROGRAM_COUNT and START with CSR-write frames,
polls STATUS until DONE or ERROR, reads ERROR_CODE, ERROR_PC, CYCLES_LO/HI and the read-back ranges, and writes
them to the result JSON (the bytes to a file). Frames are ``codesign.board_host.frame``; replies are checked as
``BoardLink`` checks them. ``run_board`` builds the Verilog and runs the bench from Python.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, SimTimeoutError, with_timeout

from codesign.board_host import (ACK, CMD_READ_CSR, CMD_READ_MEM, CMD_WRITE_CSR, CMD_WRITE_MEM, CSR_BYTES,
                                 STATUS_DONE, STATUS_ERROR, STATUS_NAMES, checksum, frame, reply_bytes)
from hdl.system.generate import CSR_OFFSETS as CSR

__all__ = ["CASE_ENV", "BOARD_TOP", "CLOCK_NS", "BoardRun", "run_board", "board_program"]

CASE_ENV = "CODESIGN_BOARD_CASE"
BOARD_TOP = "codesign_board"
CLOCK_NS = 10


class _Link:
    """The protocol client of ``codesign.board_host.BoardLink`` on the cocotb serial line."""

    def __init__(self, source, sink, chunk: int, reply_timeout_ns: int):
        self.source, self.sink, self.chunk, self.timeout = source, sink, chunk, reply_timeout_ns

    async def _read(self, count: int) -> bytes:
        data = bytearray()
        while len(data) < count:
            if self.sink.empty():
                try:
                    await with_timeout(self.sink.wait(), self.timeout, "ns")
                except SimTimeoutError:
                    raise AssertionError(f"no answer from the board ({len(data)} of {count} bytes)") from None
            data += self.sink.read_nowait(min(self.sink.count(), count - len(data)))
        return bytes(data)

    async def transact(self, command: int, address: int, length: int, payload: bytes = b"") -> bytes:
        await self.source.write(frame(command, address, length, payload))
        await self.source.wait()  # the whole frame is on the line before the reply's timeout runs
        status = (await self._read(1))[0]
        assert status == ACK, f"command 0x{command:02x} at 0x{address:x}: {STATUS_NAMES.get(status, status)}"
        rest = reply_bytes(command, length) - 1
        if not rest:
            return b""
        answer = await self._read(rest)
        assert checksum(answer[:-1]) == answer[-1], "bad reply checksum"
        return answer[:-1]

    async def write_memory(self, address: int, data: bytes) -> None:
        for offset in range(0, len(data), self.chunk):
            part = data[offset:offset + self.chunk]
            await self.transact(CMD_WRITE_MEM, address + offset, len(part), part)

    async def read_memory(self, address: int, length: int) -> bytes:
        out = bytearray()
        for offset in range(0, length, self.chunk):
            out += await self.transact(CMD_READ_MEM, address + offset, min(self.chunk, length - offset))
        return bytes(out)

    async def write_csr(self, offset: int, value: int) -> None:
        await self.transact(CMD_WRITE_CSR, offset, CSR_BYTES, int(value).to_bytes(4, "little"))

    async def read_csr(self, offset: int) -> int:
        return int.from_bytes(await self.transact(CMD_READ_CSR, offset, CSR_BYTES), "little")


@cocotb.test()
async def board_program(dut):
    """Load, start and read one program over the UART; passes only when the system reports DONE."""
    from cocotbext.uart import UartSink, UartSource

    case_file = Path(os.environ[CASE_ENV])
    case, folder = json.loads(case_file.read_text()), case_file.parent
    image = (folder / case["image"]).read_bytes()
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.uart_rx.value = 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    source = UartSource(dut.uart_rx, baud=case["baud"], bits=8, stop_bits=1)
    sink = UartSink(dut.uart_tx, baud=case["baud"], bits=8, stop_bits=1)
    for side in (source, sink):
        side.log.setLevel(logging.WARNING)
    byte_ns = int(10 * 1e9 / case["baud"])
    link = _Link(source, sink, case["chunk"], reply_timeout_ns=200 * byte_ns)
    for address, length in case["load"]:
        await link.write_memory(address, image[address:address + length])
    await link.write_csr(CSR["PROGRAM_ADDR"], case["program_addr"])
    await link.write_csr(CSR["PROGRAM_COUNT"], case["program_count"])
    await link.write_csr(CSR["CTRL"], 1)
    polls, status = 0, 0
    while polls < case["max_polls"]:
        status = await link.read_csr(CSR["STATUS"])
        if status & (STATUS_DONE | STATUS_ERROR):
            break
        await ClockCycles(dut.clk, case["poll_cycles"])
        polls += 1
    values = {name: await link.read_csr(CSR[name]) for name in ("ERROR_CODE", "ERROR_PC", "CYCLES_LO", "CYCLES_HI")}
    readback = bytearray()
    for address, length in case["read"]:
        readback += await link.read_memory(address, length)
    result = {"done": bool(status & STATUS_DONE), "error": bool(status & STATUS_ERROR),
              "timed_out": not status & (STATUS_DONE | STATUS_ERROR), "error_code": values["ERROR_CODE"],
              "error_pc": values["ERROR_PC"], "cycles": values["CYCLES_LO"] | values["CYCLES_HI"] << 32,
              "leds": [int(dut.led_done.value), int(dut.led_error.value), int(dut.led_busy.value)]}
    (folder / case["readback"]).write_bytes(bytes(readback))
    (folder / case["result"]).write_text(json.dumps(result))
    assert result["done"], f"the system stopped without DONE: {result}"


@dataclass(frozen=True)
class BoardRun:
    """What one run over the UART did."""

    done: bool
    error: bool
    timed_out: bool
    error_code: int
    error_pc: int
    cycles: int
    leds: tuple[int, int, int]
    readback: bytes  # the read-back ranges, concatenated
    seconds: float


def run_board(params, image: bytes, program_addr: int, program_count: int, work_dir, *, load, read,
              divisor: int = 4, chunk: int = 1024, simulator: str = "icarus", max_polls: int = 200,
              poll_cycles: int = 2000) -> BoardRun:
    """Run the program at ``program_addr`` of ``image`` on ``BoardSystem(params, memory_bytes_for(len(image)))``
    under cocotb: ``load`` and ``read`` are lists of (address, length) sent and read over the UART."""
    from codesign.errors import HdlError
    from hdl.cocotb_run import run_cocotb
    from hdl.emit import to_verilog
    from hdl.system.board import BoardSystem
    from hdl.system.onchip_memory import memory_bytes_for

    folder = Path(work_dir)
    folder.mkdir(parents=True, exist_ok=True)
    clk_hz = 1e9 / CLOCK_NS
    baud = clk_hz / divisor
    memory_bytes = memory_bytes_for(len(image))
    source = folder / f"{BOARD_TOP}.v"
    source.write_text(to_verilog(BoardSystem(params, memory_bytes, clk_hz, baud), name=BOARD_TOP))
    (folder / "image.bin").write_bytes(bytes(image))
    case = {"image": "image.bin", "readback": "readback.bin", "result": "result.json", "baud": baud, "chunk": chunk,
            "load": [list(r) for r in load], "read": [list(r) for r in read], "program_addr": program_addr,
            "program_count": program_count, "max_polls": max_polls, "poll_cycles": poll_cycles}
    (folder / "case.json").write_text(json.dumps(case))
    for stale in ("result.json", "readback.bin"):
        (folder / stale).unlink(missing_ok=True)
    started = time.monotonic()
    run_cocotb([source], BOARD_TOP, "hdl.benches.board_bench", simulator, folder / f"build_{simulator}",
               {CASE_ENV: str((folder / "case.json").resolve())})
    seconds = time.monotonic() - started
    if not (folder / "result.json").is_file():
        raise HdlError(f"the {simulator} run of the board system wrote no result (see {folder})")
    result = json.loads((folder / "result.json").read_text())
    return BoardRun(done=result["done"], error=result["error"], timed_out=result["timed_out"],
                    error_code=result["error_code"], error_pc=result["error_pc"], cycles=result["cycles"],
                    leds=tuple(result["leds"]), readback=(folder / "readback.bin").read_bytes(), seconds=seconds)
