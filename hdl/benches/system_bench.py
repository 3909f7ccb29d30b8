"""cocotb bench of the generated system: the host's part of docs/isa.md on the RTL.

Inputs come from the JSON file in ``CODESIGN_SYSTEM_CASE``: the DRAM image (a file), where the program is and
how many instructions it has, the memory's latency and bus width, a cycle limit. The bench puts the image in a
deterministic AXI4 memory (``hdl.benches.axi_memory``) behind the ``axi`` port, writes PROGRAM_ADDR,
PROGRAM_COUNT and START through an AXI4-Lite master (cocotbext-axi) on ``csr``, records the cycle of every
dispatch (``issued`` / ``pc``) counted from cycle 0 (the cycle the START write is accepted), waits for DONE or
ERROR, reads STATUS, ERROR_CODE, ERROR_PC and CYCLES, and writes them with the issue cycles to the result JSON
and the DRAM after the run to a file, before the test passes (DONE) or fails (ERROR, or the cycle limit).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from hdl.benches import axi_memory
from hdl.system.generate import CSR_OFFSETS

__all__ = ["CASE_ENV", "CSR", "system_program"]

CASE_ENV = "CODESIGN_SYSTEM_CASE"
CSR = CSR_OFFSETS


async def _monitor(dut, record: dict) -> None:
    """Every cycle (values settled after its opening edge): the first busy cycle, and each dispatch's cycle."""
    cycle = 0
    while True:
        await RisingEdge(dut.clk)
        await ReadOnly()
        cycle += 1
        if record["busy_from"] is None and int(dut.busy.value):
            record["busy_from"] = cycle
        if int(dut.issued.value):
            record["issues"].append((cycle, int(dut.pc.value)))


@cocotb.test()
async def system_program(dut):
    """Boot and run one program; the test passes only when the system reports DONE."""
    from cocotbext.axi import AxiLiteBus, AxiLiteMaster

    case = json.loads(Path(os.environ[CASE_ENV]).read_text())
    folder = Path(os.environ[CASE_ENV]).parent
    image = (folder / case["dram"]).read_bytes()
    memory = axi_memory.AxiMemory(len(image), case["data_bytes"], case["latency_cycles"])
    memory.mem[:] = image
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    cocotb.start_soon(axi_memory.run(dut, "axi", memory))
    csr = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "csr_"), dut.clk, dut.rst)
    await csr.write_dword(CSR["PROGRAM_ADDR"], case["program_addr"])
    await csr.write_dword(CSR["PROGRAM_COUNT"], case["program_count"])
    record = {"busy_from": None, "issues": []}
    cocotb.start_soon(_monitor(dut, record))
    await csr.write_dword(CSR["CTRL"], 1)
    limit = int(case["max_cycles"])
    waited = 0
    while not (int(dut.done.value) or int(dut.error.value)) and waited < limit:
        await ClockCycles(dut.clk, 64)
        waited += 64
    status = await csr.read_dword(CSR["STATUS"])
    values = {name: await csr.read_dword(CSR[name]) for name in ("ERROR_CODE", "ERROR_PC", "CYCLES_LO", "CYCLES_HI")}
    start = (record["busy_from"] or 1) - 1  # cycle 0: the START write's cycle, the one before BUSY rises
    result = {
        "done": bool(status & 2), "error": bool(status & 4), "timed_out": waited >= limit and not status & 6,
        "error_code": values["ERROR_CODE"], "error_pc": values["ERROR_PC"],
        "cycles": values["CYCLES_LO"] | values["CYCLES_HI"] << 32,
        "issue": [[cycle - start, pc] for cycle, pc in record["issues"]],
    }
    (folder / case["dram_out"]).write_bytes(bytes(memory.mem))
    (folder / case["result"]).write_text(json.dumps(result))
    assert result["done"], f"the system stopped without DONE: {result}"
