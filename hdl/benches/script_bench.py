"""cocotb bench that plays a step script (``hdl.benches.unit_golden``) on a stand-alone unit.

The JSON file in ``CODESIGN_BENCH_CASES`` names the unit's inputs and outputs, whether it is clocked,
and segments of steps. Each step drives its inputs (held until changed), lets logic settle, records
every output and compares the expected ones; a clocked unit then takes one rising edge (inputs are
driven after the falling edge, so each step is one edge), a combinational one 10 ns. A clocked unit is
reset first (``rst`` high for two edges, all inputs 0). Every recorded value goes to
``CODESIGN_BENCH_OUT`` (null where undefined) before the test judges them.
"""

from __future__ import annotations

import json
import os

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly, Timer

from hdl.benches.cocotb_common import load_bench_cases, start_clock_and_reset

__all__ = ["unit_script"]


def _read(handle, signed: bool):
    value = handle.value
    if not value.is_resolvable:
        return None
    if hasattr(value, "to_signed"):
        return value.to_signed() if signed else value.to_unsigned()
    return int(value)


@cocotb.test()
async def unit_script(dut):
    """Every step's settled outputs equal the golden model's."""
    spec = load_bench_cases()
    clocked = spec["clocked"]
    inputs = {name: getattr(dut, name) for name in spec["inputs"]}
    outputs = {name: (getattr(dut, name), signed) for name, signed in spec["outputs"].items()}
    for handle in inputs.values():
        handle.value = 0
    if clocked:
        await start_clock_and_reset(dut)
    else:
        await Timer(10, unit="ns")
    measured, problems = [], []
    for segment in spec["segments"]:
        observed = []
        for number, step in enumerate(segment["steps"]):
            for name, value in step["set"].items():
                inputs[name].value = value
            await ReadOnly()
            row = {name: _read(handle, signed) for name, (handle, signed) in outputs.items()}
            observed.append(row)
            for name, want in step["expect"].items():
                if row[name] != want:
                    problems.append(f"{segment['name']} step {number}: {name} = {row[name]}, expected {want}")
            if clocked:
                await FallingEdge(dut.clk)
            else:
                await Timer(10, unit="ns")
        measured.append(observed)
    out_path = os.environ.get("CODESIGN_BENCH_OUT")
    if out_path:
        with open(out_path, "w", encoding="utf-8") as handle:
            json.dump({"simulator": cocotb.SIM_NAME, "segments": measured}, handle)
    assert not problems, f"{len(problems)} mismatches: " + "; ".join(problems[:5])
