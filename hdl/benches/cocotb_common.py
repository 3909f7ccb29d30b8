"""What every cocotb bench here shares: its cases from ``CODESIGN_BENCH_CASES``, clock and reset, and the
edge-by-edge loop that runs stream cases through a core with a ``CaseDriver`` (``hdl.benches.driver``)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import Callable

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

__all__ = ["load_bench_cases", "start_clock_and_reset", "STREAM_INPUTS", "STREAM_OUTPUTS", "HANDSHAKE",
           "run_stream_cases", "write_and_check"]

STREAM_INPUTS = ("cmd__valid", "cmd__payload", "weights__valid", "weights__payload", "acts__valid", "acts__payload",
                 "results__ready")
STREAM_OUTPUTS = ("cmd__ready", "weights__ready", "acts__ready", "results__valid", "results__payload", "busy")
HANDSHAKE = ("cmd__ready", "weights__ready", "acts__ready", "results__valid", "busy")


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


def _unsigned(value, name: str) -> int:
    """A settled output as an int (1-bit signals read as ``Logic``, wider ones as ``LogicArray``)."""
    if not value.is_resolvable:
        raise AssertionError(f"{name} is {value} (undefined) where the protocol needs a value")
    return value.to_unsigned() if hasattr(value, "to_unsigned") else int(value)


async def _reset(dut) -> None:
    for name in STREAM_INPUTS:
        getattr(dut, name).value = 0
    dut.rst.value = 1
    Clock(dut.clk, 10, unit="ns").start()
    for _ in range(3):
        await FallingEdge(dut.clk)
    dut.rst.value = 0


async def run_stream_cases(dut, cases: list, make_driver: Callable[[object, int], object], seed: int) -> list[dict]:
    """Reset the core, then run every case back to back with ``make_driver(case, seed)``: inputs driven after
    the falling edge, the handshake sampled once logic has settled, so each iteration is one rising edge.
    Returns each driver's ``CaseResult`` as a dict."""
    await _reset(dut)
    inputs = {name: getattr(dut, name) for name in STREAM_INPUTS}
    outputs = {name: getattr(dut, name) for name in STREAM_OUTPUTS}
    results = []
    for number, case in enumerate(cases):
        driver = make_driver(case, seed + number)
        for _ in range(driver.timeout_edges()):
            if driver.done:
                break
            await FallingEdge(dut.clk)
            for name, value in driver.drive().items():
                inputs[name].value = value
            await ReadOnly()
            sampled = {name: _unsigned(outputs[name].value, name) for name in HANDSHAKE}
            # The payload is only defined while valid (the FIFO's memory starts undefined).
            sampled["results__payload"] = (_unsigned(outputs["results__payload"].value, "results__payload")
                                           if sampled["results__valid"] else 0)
            driver.observe(sampled)
        await FallingEdge(dut.clk)
        for name in STREAM_INPUTS:
            inputs[name].value = 0
        await FallingEdge(dut.clk)
        results.append(asdict(driver.result))
    return results


def write_and_check(cases: list, results: list[dict]) -> None:
    """Write what the RTL did to ``CODESIGN_BENCH_OUT`` (before judging it), then fail the test on any lost,
    wrong or mistimed result."""
    out_path = os.environ.get("CODESIGN_BENCH_OUT")
    if out_path:
        with open(out_path, "w", encoding="utf-8") as handle:
            json.dump({"simulator": cocotb.SIM_NAME, "results": results}, handle)
    problems = []
    for case, result in zip(cases, results):
        if not result["finished"]:
            problems.append(f"{case.name}: did not finish (hung or lost rows)")
        problems += [f"{case.name}: {text}" for text in result["mismatches"][:3]]
        if case.timed and result["finished"] and result["tile_cycles"] != case.predicted_tile_cycles:
            problems.append(f"{case.name}: tile cycles {result['tile_cycles']} != predicted {case.predicted_tile_cycles}")
        if case.timed and result["finished"] and result["cycles"] != case.predicted_cycles:
            problems.append(f"{case.name}: {result['cycles']} cycles != predicted {case.predicted_cycles}")
    assert not problems, "; ".join(problems)
