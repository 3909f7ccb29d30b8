"""Run golden cases on ``GemmCore`` or ``BinaryGemmCore`` in Amaranth's own simulator: no Verilog, fast unit tests."""

from __future__ import annotations

from amaranth.sim import Simulator

from hdl.benches.driver import BinaryCaseDriver, CaseDriver, CaseResult
from hdl.benches.golden import Case
from hdl.binary_core import BinaryGemmCore
from hdl.core import GemmCore
from hdl.params import BinaryCoreParams, CoreParams

__all__ = ["run_cases_amaranth"]


def _ports(core):
    inputs = {
        "cmd__valid": core.cmd.valid, "cmd__payload": core.cmd.payload.as_value(),
        "weights__valid": core.weights.valid, "weights__payload": core.weights.payload.as_value(),
        "acts__valid": core.acts.valid, "acts__payload": core.acts.payload.as_value(),
        "results__ready": core.results.ready,
    }
    outputs = {
        "cmd__ready": core.cmd.ready, "weights__ready": core.weights.ready, "acts__ready": core.acts.ready,
        "results__valid": core.results.valid, "results__payload": core.results.payload.as_value(),
    }
    return inputs, outputs


def run_cases_amaranth(params: CoreParams | BinaryCoreParams, cases: list[Case], seed: int = 0) -> list[CaseResult]:
    """Every case on one freshly reset core, one after another (the core idles in between). ``params``
    selects the core: ``CoreParams`` the integer ``GemmCore``, ``BinaryCoreParams`` the ``BinaryGemmCore``."""
    binary = isinstance(params, BinaryCoreParams)
    core = BinaryGemmCore(params) if binary else GemmCore(params)
    CaseDriver_ = BinaryCaseDriver if binary else CaseDriver
    inputs, outputs = _ports(core)
    results: list[CaseResult] = []

    async def bench(ctx):
        for number, case in enumerate(cases):
            driver = CaseDriver_(params, case, seed + number)
            for _ in range(driver.timeout_edges()):
                if driver.done:
                    break
                for name, value in driver.drive().items():
                    ctx.set(inputs[name], value)
                driver.observe({name: ctx.get(sig) for name, sig in outputs.items()})
                await ctx.tick()
            for name in inputs:
                ctx.set(inputs[name], 0)
            await ctx.tick().repeat(2)
            results.append(driver.result)

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results
