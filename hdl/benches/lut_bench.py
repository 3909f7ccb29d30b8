"""cocotb bench of ``LutActivation``: every address against the quantized table and the real function.

The JSON file in ``CODESIGN_BENCH_CASES`` holds the table the generator quantized, the real function's
value at each grid point, the output scale (out_lo, out_step) and the stated error bound. The ROM read
is synchronous: the address driven before a rising edge is read back after it.
"""

from __future__ import annotations

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

from hdl.benches.cocotb_common import load_bench_cases

__all__ = ["lut_every_address"]


@cocotb.test()
async def lut_every_address(dut):
    """y == table[x] for every x, and out_lo + y * out_step is within the bound of f(x)."""
    spec = load_bench_cases()
    table, real = spec["table"], spec["real"]
    out_lo, out_step, bound = spec["out_lo"], spec["out_step"], spec["bound"]
    dut.rst.value = 0
    dut.x.value = 0
    Clock(dut.clk, 10, unit="ns").start()
    await FallingEdge(dut.clk)
    wrong, worst = [], 0.0
    for address in range(len(table)):
        dut.x.value = address
        await FallingEdge(dut.clk)
        await ReadOnly()
        got = dut.y.value.to_unsigned()
        if got != table[address]:
            wrong.append(f"x={address}: y={got}, table {table[address]}")
        worst = max(worst, abs(out_lo + got * out_step - real[address]))
        await FallingEdge(dut.clk)
    assert not wrong, "; ".join(wrong[:5])
    assert worst <= bound * (1 + 1e-9), f"largest error {worst} exceeds the stated bound {bound}"
