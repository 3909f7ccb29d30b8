"""cocotb bench of the generated GEMM core: runs golden cases, checks every result row bit-exactly
and every timed case's cycles against the simulator's prediction.

Run through ``hdl.cocotb_run.run_cocotb`` (see ``hdl.verify``). Inputs come from the JSON file in
``CODESIGN_BENCH_CASES`` (core parameters, cases, seed); what the RTL did goes to the JSON file in
``CODESIGN_BENCH_OUT``, written before the test passes or fails, so the caller can print it.
Inputs are driven after the falling edge and the handshake sampled when logic has settled, so
each loop iteration is one rising edge.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

from hdl.benches.driver import CaseDriver
from hdl.benches.golden import Case
from hdl.params import CoreParams

__all__ = ["INPUTS", "OUTPUTS", "HANDSHAKE", "gemm_core_cases"]

INPUTS = ("cmd__valid", "cmd__payload", "weights__valid", "weights__payload", "acts__valid", "acts__payload",
          "results__ready")
OUTPUTS = ("cmd__ready", "weights__ready", "acts__ready", "results__valid", "results__payload")


def _load() -> tuple[CoreParams, list[Case], int]:
    with open(os.environ["CODESIGN_BENCH_CASES"], encoding="utf-8") as handle:
        spec = json.load(handle)
    return CoreParams(**spec["params"]), [Case.from_json(c) for c in spec["cases"]], int(spec["seed"])


HANDSHAKE = ("cmd__ready", "weights__ready", "acts__ready", "results__valid")


def _unsigned(value, name: str) -> int:
    """A settled output as an int (1-bit signals read as ``Logic``, wider ones as ``LogicArray``)."""
    if not value.is_resolvable:
        raise AssertionError(f"{name} is {value} (undefined) where the protocol needs a value")
    return value.to_unsigned() if hasattr(value, "to_unsigned") else int(value)


async def _reset(dut) -> None:
    for name in INPUTS:
        getattr(dut, name).value = 0
    dut.rst.value = 1
    Clock(dut.clk, 10, unit="ns").start()
    for _ in range(3):
        await FallingEdge(dut.clk)
    dut.rst.value = 0


@cocotb.test()
async def gemm_core_cases(dut):
    """Every case back to back on one core; all result rows exact, timed cases on the predicted cycle."""
    params, cases, seed = _load()
    await _reset(dut)
    inputs = {name: getattr(dut, name) for name in INPUTS}
    outputs = {name: getattr(dut, name) for name in OUTPUTS}
    results = []
    for number, case in enumerate(cases):
        driver = CaseDriver(params, case, seed + number)
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
        for name in INPUTS:
            inputs[name].value = 0
        await FallingEdge(dut.clk)
        results.append(asdict(driver.result))
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
