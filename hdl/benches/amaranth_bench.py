"""Run golden cases on ``GemmCore`` or ``BinaryGemmCore`` in Amaranth's own simulator: no Verilog, fast unit tests."""

from __future__ import annotations

from amaranth.sim import Simulator

from hdl.benches.driver import BinaryCaseDriver, CaseDriver, CaseResult
from hdl.benches.golden import Case
from hdl.binary_core import BinaryGemmCore
from hdl.core import GemmCore
from hdl.params import BinaryCoreParams, CoreParams

__all__ = ["run_cases_amaranth", "run_script_amaranth", "stream_ports", "run_drivers"]


def stream_ports(design, sources: tuple[str, ...], sinks: tuple[str, ...]):
    """(inputs, outputs) by the names the drivers use (``cmd__valid``, ``results__payload``, ``busy``...): the
    ``sources`` streams the bench drives into ``design`` and the ``sinks`` it takes from it."""
    inputs, outputs = {}, {}
    for name in sources:
        port = getattr(design, name)
        inputs[f"{name}__valid"], inputs[f"{name}__payload"] = port.valid, port.payload.as_value()
        outputs[f"{name}__ready"] = port.ready
    for name in sinks:
        port = getattr(design, name)
        inputs[f"{name}__ready"] = port.ready
        outputs[f"{name}__valid"], outputs[f"{name}__payload"] = port.valid, port.payload.as_value()
    outputs["busy"] = design.busy
    return inputs, outputs


def run_drivers(design, inputs: dict, outputs: dict, drivers) -> list:
    """Each driver (``drive``, ``observe``, ``done``, ``timeout_edges``, ``result``) on ``design`` one after
    another, two idle edges between; their results."""
    results = []

    async def bench(ctx):
        for driver in drivers:
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

    sim = Simulator(design)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results


def run_cases_amaranth(params: CoreParams | BinaryCoreParams, cases: list[Case], seed: int = 0) -> list[CaseResult]:
    """Every case on one freshly reset core, one after another (the core idles in between). ``params``
    selects the core: ``CoreParams`` the integer ``GemmCore``, ``BinaryCoreParams`` the ``BinaryGemmCore``."""
    binary = isinstance(params, BinaryCoreParams)
    core = BinaryGemmCore(params) if binary else GemmCore(params)
    CaseDriver_ = BinaryCaseDriver if binary else CaseDriver
    inputs, outputs = stream_ports(core, ("cmd", "weights", "acts"), ("results",))
    return run_drivers(core, inputs, outputs,
                       (CaseDriver_(params, case, seed + number) for number, case in enumerate(cases)))


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
