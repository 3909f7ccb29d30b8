"""cocotb bench of the generated system: the host's part of docs/isa.md on the RTL.

Inputs come from the JSON file in ``CODESIGN_SYSTEM_CASE``: the DRAM image (a file), where the program is and
how many instructions it has, a cycle limit. The design is ``hdl.system.sim_top.SimulationTop``: the system with
its DRAM (an AXI4 memory with the spec's latency) and a trace of the dispatches in RTL, so the bench does no work
per cycle. It writes the image into the memory's words through the hierarchy (``DRAM_PATH``) and its size to
``dram_words``, writes PROGRAM_ADDR, PROGRAM_COUNT and START through an AXI4-Lite master (cocotbext-axi) on
``csr``, waits for DONE or ERROR (or the cycle limit, counted from the START write), reads STATUS, ERROR_CODE,
ERROR_PC and CYCLES, and writes them with the trace's issue cycles (cycle 0: the START write's cycle) to the
result JSON and the DRAM after the run to a file, before the test passes (DONE) or fails (ERROR, or the limit).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, RisingEdge, Timer
from cocotb.simtime import get_sim_time

from hdl.system.generate import CSR_OFFSETS
from hdl.system.sim_top import DRAM_PATH, TRACE_PATH

__all__ = ["CASE_ENV", "CSR", "CLOCK_NS", "system_program", "load_words", "read_words"]

CASE_ENV = "CODESIGN_SYSTEM_CASE"
CSR = CSR_OFFSETS
CLOCK_NS = 10
CSR_INPUTS = ("awvalid", "awaddr", "wvalid", "wdata", "wstrb", "bready", "arvalid", "araddr", "rready")


def _handle(dut, path):
    for name in path:
        dut = getattr(dut, name)
    return dut


def load_words(array, image: bytes, word_bytes: int) -> int:
    """Write ``image`` into ``array`` (a memory of ``word_bytes``-byte words, little-endian) through the
    hierarchy; the memory starts as zeros, so only the words that are not are written. Returns the words."""
    words = -(-len(image) // word_bytes)
    if words > len(array):
        raise ValueError(f"a DRAM image of {len(image)} bytes does not fit the memory's {len(array)} words")
    padded = bytes(image) + bytes(words * word_bytes - len(image))
    for i in range(words):
        value = int.from_bytes(padded[i * word_bytes:(i + 1) * word_bytes], "little")
        if value:
            array[i].value = value
    return words


def read_words(array, count: int) -> list[int]:
    """The first ``count`` words of ``array`` (X and Z bits as 0)."""
    out = []
    for i in range(count):
        value = array[i].value
        try:
            out.append(value.to_unsigned())
        except ValueError:
            out.append(int("".join("1" if bit == "1" else "0" for bit in str(value)), 2))
    return out


@cocotb.test()
async def system_program(dut):
    """Boot and run one program; the test passes only when the system reports DONE."""
    from cocotbext.axi import AxiLiteBus, AxiLiteMaster

    case = json.loads(Path(os.environ[CASE_ENV]).read_text())
    folder = Path(os.environ[CASE_ENV]).parent
    image = (folder / case["dram"]).read_bytes()
    word_bytes = int(case["data_bytes"])
    dram, trace = _handle(dut, DRAM_PATH), _handle(dut, TRACE_PATH)
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns", impl="gpi").start())  # toggled in C: no Python a cycle
    dut.rst.value = 1
    dut.trace_addr.value = 0
    for name in CSR_INPUTS:  # driven from the first cycle: an undriven input would leave X in the CSR logic
        getattr(dut, f"csr__{name}").value = 0
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    words = load_words(dram, image, word_bytes)
    dut.dram_words.value = len(image) // word_bytes  # a word not wholly in the image answers DECERR
    await ClockCycles(dut.clk, 1)
    csr = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "csr_"), dut.clk, dut.rst)
    await csr.write_dword(CSR["PROGRAM_ADDR"], case["program_addr"])
    await csr.write_dword(CSR["PROGRAM_COUNT"], case["program_count"])
    started = get_sim_time("ns")
    await csr.write_dword(CSR["CTRL"], 1)
    limit = int(case["max_cycles"])
    if not (int(dut.done.value) or int(dut.error.value)):
        left = max(1, limit - int(get_sim_time("ns") - started) // CLOCK_NS)
        await First(RisingEdge(dut.done), RisingEdge(dut.error), Timer(left * CLOCK_NS, unit="ns"))
    waited = int(get_sim_time("ns") - started) // CLOCK_NS
    status = await csr.read_dword(CSR["STATUS"])
    values = {name: await csr.read_dword(CSR[name]) for name in ("ERROR_CODE", "ERROR_PC", "CYCLES_LO", "CYCLES_HI")}
    count = min(int(case["program_count"]), len(trace))
    issue = [[cycle, pc] for pc, cycle in enumerate(read_words(trace, count)) if cycle]
    result = {
        "done": bool(status & 2), "error": bool(status & 4), "timed_out": waited >= limit and not status & 6,
        "error_code": values["ERROR_CODE"], "error_pc": values["ERROR_PC"],
        "cycles": values["CYCLES_LO"] | values["CYCLES_HI"] << 32, "issue": issue, "waited_cycles": waited,
    }
    after = b"".join(w.to_bytes(word_bytes, "little") for w in read_words(dram, words))
    (folder / case["dram_out"]).write_bytes(after[:len(image)])
    (folder / case["result"]).write_text(json.dumps(result))
    assert result["done"], f"the system stopped without DONE: {result}"
