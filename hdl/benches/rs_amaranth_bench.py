"""Run golden passes on ``RsArray`` in Amaranth's own simulator: no Verilog, fast unit tests."""

from __future__ import annotations

from amaranth.sim import Simulator

from hdl.benches.rs_driver import RsDriver, RsRunResult
from hdl.rs_array import RsArray
from hdl.rs_pe import RsParams

__all__ = ["run_passes_amaranth"]


def _ports(array: RsArray):
    inputs = {
        "cmd__valid": array.cmd.valid, "cmd__payload": array.cmd.payload.as_value(),
        "filters__valid": array.filters.valid, "filters__payload": array.filters.payload.as_value(),
        "inputs__valid": array.inputs.valid, "inputs__payload": array.inputs.payload.as_value(),
        "psums__ready": array.psums.ready,
    }
    outputs = {
        "cmd__ready": array.cmd.ready, "filters__ready": array.filters.ready, "inputs__ready": array.inputs.ready,
        "psums__valid": array.psums.valid, "psums__payload": array.psums.payload.as_value(), "busy": array.busy,
    }
    return inputs, outputs


def run_passes_amaranth(params: RsParams, runs: list[dict], array: RsArray | None = None) -> list[RsRunResult]:
    """Each run (``RsDriver`` keyword arguments: ``passes``, ``back_to_back``, ``stall``, ``seed``) on one
    array, one after another with two idle edges between. Unsigned payloads in, psums signed as built."""
    array = RsArray(params) if array is None else array
    inputs, outputs = _ports(array)
    results: list[RsRunResult] = []

    async def bench(ctx):
        for run in runs:
            driver = RsDriver(params, **run)
            for _ in range(driver.timeout_edges()):
                if driver.done:
                    break
                for name, value in driver.drive().items():
                    ctx.set(inputs[name], value)
                driver.observe({name: int(ctx.get(sig)) for name, sig in outputs.items()})
                await ctx.tick()
            for name in inputs:
                ctx.set(inputs[name], 0)
            await ctx.tick().repeat(2)
            results.append(driver.result)

    sim = Simulator(array)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results
