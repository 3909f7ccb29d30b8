"""cocotb bench of the generated row-stationary array: runs the cases of ``hdl.benches.rs_cases``, checks
every psum bit-exactly and every timed case's cycles against ``codesign.contract.rs_timing``.

Run through ``hdl.cocotb_run.run_cocotb`` (see ``hdl.verify.verify_rs_array``). Inputs come from the JSON file
in ``CODESIGN_BENCH_CASES`` (array parameters, cases, seed); what the RTL did goes to ``CODESIGN_BENCH_OUT``,
written before the test passes or fails. Inputs are driven after the falling edge and the handshake sampled
once logic has settled, so each loop iteration is one rising edge.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

from hdl.benches.rs_cases import RsCase
from hdl.benches.rs_driver import RsDriver
from hdl.rs_pe import RsParams

__all__ = ["INPUTS", "OUTPUTS", "rs_array_cases", "case_problems"]

INPUTS = ("cmd__valid", "cmd__payload", "filters__valid", "filters__payload", "inputs__valid", "inputs__payload",
          "psums__ready")
OUTPUTS = ("cmd__ready", "filters__ready", "inputs__ready", "psums__valid", "psums__payload", "busy")


def _unsigned(value, name: str) -> int:
    if not value.is_resolvable:
        raise AssertionError(f"{name} is {value} (undefined) where the protocol needs a value")
    return value.to_unsigned() if hasattr(value, "to_unsigned") else int(value)


def case_problems(case: RsCase, result: dict) -> list[str]:
    """What is wrong with one case's run: unfinished, wrong psums, or (timed) cycles off the prediction."""
    problems = []
    if len(result["last_psum_edges"]) != len(case.passes):
        problems.append(f"{case.name}: did not finish ({len(result['last_psum_edges'])} of {len(case.passes)} passes)")
        return problems
    problems += [f"{case.name}: {text}" for text in result["mismatches"][:3]]
    if case.timed:
        if case.back_to_back:
            measured = result["last_psum_edges"][-1] - result["command_edges"][0]
            intervals = [b - a for a, b in zip(result["command_edges"], result["command_edges"][1:])]
            if intervals != case.predicted:
                problems.append(f"{case.name}: intervals {intervals} != predicted {case.predicted}")
        else:
            per_pass = [b - a for a, b in zip(result["command_edges"], result["last_psum_edges"])]
            measured = sum(per_pass)
            if per_pass != case.predicted:
                problems.append(f"{case.name}: pass cycles {per_pass} != predicted {case.predicted}")
        if measured != case.predicted_cycles:
            problems.append(f"{case.name}: {measured} cycles != predicted {case.predicted_cycles}")
    return problems


@cocotb.test()
async def rs_array_cases(dut):
    """Every case on one array, one after another; all psums exact, timed cases on the predicted cycle."""
    with open(os.environ["CODESIGN_BENCH_CASES"], encoding="utf-8") as handle:
        spec = json.load(handle)
    params = RsParams(**spec["params"])
    cases = [RsCase.from_json(c) for c in spec["cases"]]
    inputs = {name: getattr(dut, name) for name in INPUTS}
    outputs = {name: getattr(dut, name) for name in OUTPUTS}
    for signal in inputs.values():
        signal.value = 0
    dut.rst.value = 1
    Clock(dut.clk, 10, unit="ns").start()
    for _ in range(3):
        await FallingEdge(dut.clk)
    dut.rst.value = 0
    results = []
    for case in cases:
        driver = RsDriver(params, **case.driver_args())
        for _ in range(driver.timeout_edges()):
            if driver.done:
                break
            await FallingEdge(dut.clk)
            for name, value in driver.drive().items():
                inputs[name].value = value
            await ReadOnly()
            sampled = {name: _unsigned(outputs[name].value, name) for name in OUTPUTS if name != "psums__payload"}
            sampled["psums__payload"] = (_unsigned(outputs["psums__payload"].value, "psums__payload")
                                         if sampled["psums__valid"] else 0)
            driver.observe(sampled)
        await FallingEdge(dut.clk)
        for signal in inputs.values():
            signal.value = 0
        await FallingEdge(dut.clk)
        await FallingEdge(dut.clk)
        result = asdict(driver.result)
        result["psums"] = [np.asarray(x).tolist() for x in driver.result.psums]
        results.append(result)
    out_path = os.environ.get("CODESIGN_BENCH_OUT")
    if out_path:
        with open(out_path, "w", encoding="utf-8") as handle:
            json.dump({"simulator": cocotb.SIM_NAME, "results": results}, handle)
    problems = [text for case, result in zip(cases, results) for text in case_problems(case, result)]
    assert not problems, "; ".join(problems)
