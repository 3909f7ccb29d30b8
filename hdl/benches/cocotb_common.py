"""What every cocotb bench here shares: its cases from ``CODESIGN_BENCH_CASES``, clock and reset."""

from __future__ import annotations

import json
import os

from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

__all__ = ["load_bench_cases", "start_clock_and_reset"]


def load_bench_cases() -> dict:
    """The JSON the caller wrote for this bench (path in ``CODESIGN_BENCH_CASES``)."""
    with open(os.environ["CODESIGN_BENCH_CASES"], encoding="utf-8") as handle:
        return json.load(handle)


async def start_clock_and_reset(dut, edges: int = 2) -> None:
    """10 ns clock on ``clk``; ``rst`` high for ``edges`` rising edges, released after a falling edge."""
    dut.rst.value = 1
    Clock(dut.clk, 10, unit="ns").start()
    for _ in range(edges):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
