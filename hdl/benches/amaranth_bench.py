"""Run golden cases on ``GemmCore`` or ``BinaryGemmCore`` in Amaranth's own simulator: no Verilog, fast unit tests."""

from __future__ import annotations

from amaranth.sim import Simulator

from hdl.benches.driver import BinaryCaseDriver, CaseDriver, CaseResult
from hdl.benches.golden import Case
from hdl.binary_core import BinaryGemmCore
from hdl.core import GemmCore
from hdl.params import BinaryCoreParams, CoreParams

__all__ = ["run_cases_amaranth", "run_script_amaranth"]


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
        "busy": core.busy,
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


def _ports_by_verilog_name(component) -> dict:
    """Port name as Verilog spells it (``acc__1__2``) -> the Amaranth value."""
    from amaranth.hdl import ValueCastable

    ports = {}
    for path, _member, value in component.signature.flatten(component):
        ports["__".join(map(str, path))] = value.as_value() if isinstance(value, ValueCastable) else value
    return ports


def run_script_amaranth(component, script: dict) -> list[list[dict]]:
    """Play a step script of ``hdl.benches.unit_golden`` on ``component`` in Amaranth's simulator, as
    ``hdl.benches.script_bench`` plays it in cocotb: a clocked unit first takes two edges with every
    input 0 (the simulator starts in the reset state), then each step drives its inputs, records the
    settled outputs and takes one edge (a combinational unit: 10 ns). Returns the recorded values per
    segment (signed outputs as signed ints)."""
    from amaranth.hdl import ClockDomain, Module

    ports = _ports_by_verilog_name(component)
    clocked = script["clocked"]
    top = component
    if clocked:  # an explicit sync domain, so a step can drive ``rst`` as the Verilog's port
        top = Module()
        top.domains.sync = domain = ClockDomain("sync")
        top.submodules.dut = component
        ports["rst"] = domain.rst
    recorded: list[list[dict]] = []

    async def bench(ctx):
        for name in script["inputs"]:
            ctx.set(ports[name], 0)
        if clocked:
            await ctx.tick().repeat(2)
        for segment in script["segments"]:
            observed = []
            for step in segment["steps"]:
                for name, value in step["set"].items():
                    ctx.set(ports[name], value)
                row = {}
                for name, signed in script["outputs"].items():
                    value = ctx.get(ports[name])
                    width = len(ports[name])
                    if signed and value >> (width - 1) & 1 and value >= 0:
                        value -= 1 << width
                    row[name] = value
                observed.append(row)
                if clocked:
                    await ctx.tick()
                else:
                    await ctx.delay(1e-8)
            recorded.append(observed)

    sim = Simulator(top)
    if clocked:
        sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return recorded
