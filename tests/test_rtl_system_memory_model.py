"""The on-chip memory at any latency (hdl/system/onchip_memory.py) beside the memory model the system's cycle
contract assumes (hdl/benches/axi_memory.py): random DMA traffic (transfers of bursts, their ARs and AWs one a
cycle, every one outstanding, W beats streaming) driven into both in lock step under amaranth.sim, the R and B
channels equal cycle by cycle at latencies 3, 5 and 20, also when the memory's AR queue is full and the master
waits; and the ``limit`` input answering DECERR as a smaller model does."""

from __future__ import annotations

import dataclasses
import random
from collections import deque

import pytest
from amaranth.sim import Simulator

from codesign.arch_loader import load_arch
from codesign.errors import HdlError
from hdl.benches.axi_memory import MASTER_SIGNALS, AxiMemory
from hdl.system.onchip_memory import READ_LATENCY, OnChipMemory
from hdl.system.params import system_params_from_arch

PERIOD = 1e-6
BOUNDARY = 4096
R_KEYS = ("rdata", "rresp", "rlast")


def _params(bus_bytes: int, latency: int):
    arch = load_arch("fpga-8x8")
    arch = dataclasses.replace(arch, dram=dataclasses.replace(arch.dram, bytes_per_cycle=float(bus_bytes),
                                                              latency_cycles=latency))
    return system_params_from_arch(arch, "ws", imem_depth=256)


def _bursts(rng: random.Random, beat: int, size: int, *, short: bool) -> list[tuple[int, int]]:
    """A transfer: (byte address, beats) of each burst, contiguous, split at 4 KiB; some run past ``size``."""
    words = size // beat
    count = rng.randint(12, 30) if short else rng.randint(1, 4)
    first = words - rng.randint(0, 24) if rng.random() < 0.3 else rng.randrange(0, words)  # near the end: DECERR
    bursts, addr = [], first * beat
    for _ in range(count):
        beats = rng.randint(1, 3) if short else rng.choice([1, 2, rng.randint(1, 64), rng.randint(1, 256)])
        beats = min(beats, (BOUNDARY - addr % BOUNDARY) // beat)
        bursts.append((addr, beats))
        addr += beats * beat
    return bursts


class Master:
    """One AXI4 master's channel as a queue of payloads: ``offer(cycle)`` what it drives; ``accepted`` pops."""

    def __init__(self):
        self.queue: deque[dict] = deque()

    def head(self) -> dict:
        return self.queue[0] if self.queue else {}


def _lockstep(bus_bytes: int, latency: int, seed: int, *, transfers: int = 24, size: int = 3072,
              limit_words: int | None = None):
    """Random DMA traffic into OnChipMemory(latency) and AxiMemory(latency) together. The model is always
    ready, so the traffic meets it as scheduled; the memory gets the same payloads in order, each held until it
    takes it. Returns the per-cycle slave outputs (mine, theirs) and the cycles the memory refused AR, AW, W."""
    params = _params(bus_bytes, latency)
    dut = OnChipMemory(params, size, latency=latency, limit_port=limit_words is not None)
    model = AxiMemory(size if limit_words is None else limit_words * bus_bytes, bus_bytes, latency)
    rng = random.Random(seed)
    size_code = bus_bytes.bit_length() - 1
    seen, refused = [], {"ar": 0, "aw": 0, "w": 0}
    channels = {"ar": Master(), "aw": Master(), "w": Master()}

    def plan(kind: str, bursts, start: int) -> dict[int, list[tuple[str, dict]]]:
        """cycle -> payloads the master puts on its channels then (a DMA transfer: one AR/AW a cycle from
        ``start``, for a write one W beat a cycle from ``start`` + 1)."""
        out: dict[int, list] = {}
        for i, (addr, beats) in enumerate(bursts):
            out.setdefault(start + i, []).append((kind, {f"{kind}addr": addr, f"{kind}len": beats - 1,
                                                         f"{kind}size": size_code, f"{kind}burst": 1}))
        if kind == "aw":
            cycle = start + 1
            for _addr, beats in bursts:
                for i in range(beats):
                    out.setdefault(cycle, []).append(("w", {"wdata": rng.getrandbits(8 * bus_bytes),
                                                            "wstrb": rng.randrange(1, 1 << bus_bytes),
                                                            "wlast": int(i == beats - 1)}))
                    cycle += 1
        return out

    async def bench(ctx):
        if limit_words is not None:
            ctx.set(dut.limit, limit_words)
        idle = {name: 0 for name in MASTER_SIGNALS}
        schedule: dict[int, list] = {}
        left, next_start, cycle = transfers, 0, 0
        while left or schedule or model.busy or any(ch.queue for ch in channels.values()) or cycle < next_start:
            if left and cycle >= next_start and not model.busy and not schedule:
                kind = rng.choice(["ar", "aw"])
                bursts = _bursts(rng, bus_bytes, size, short=rng.random() < 0.4)
                schedule = plan(kind, bursts, cycle)
                left -= 1
            due = schedule.pop(cycle, [])
            theirs_in = {**idle, "rready": 1, "bready": 1}
            for kind, payload in due:
                theirs_in.update(payload, **{f"{kind}valid": 1})
                channels[kind].queue.append(payload)
            mine_in = {**idle, "rready": 1, "bready": 1}
            for kind, channel in channels.items():
                if channel.queue:
                    mine_in.update(channel.head(), **{f"{kind}valid": 1})
            for name, value in mine_in.items():
                ctx.set(getattr(dut.axi, name), value)
            mine = {name: ctx.get(getattr(dut.axi, name)) for name in
                    ("arready", "awready", "wready", "rvalid", "bvalid", "bresp", *R_KEYS)}
            theirs = model.outputs()
            seen.append((cycle, mine, theirs))
            for kind, channel in channels.items():
                if channel.queue:
                    if mine[f"{kind}ready"]:
                        channel.queue.popleft()
                    else:
                        refused[kind] += 1
            model.step(theirs_in)
            if not schedule and not model.busy:
                next_start = max(next_start, cycle + rng.randint(1, 4))
            await ctx.tick()
            cycle += 1
        for _ in range(latency + 4):  # nothing more comes out of either
            mine = {name: ctx.get(getattr(dut.axi, name)) for name in ("rvalid", "bvalid")}
            seen.append((cycle, {**mine, "tail": 1}, model.outputs()))
            await ctx.tick()
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(PERIOD)
    sim.add_testbench(bench)
    sim.run()
    return seen, refused


def _differences(seen) -> list[str]:
    """Cycles where the R or B channel of the memory differs from the model's."""
    bad = []
    for cycle, mine, theirs in seen:
        keys = ("rvalid", "bvalid")
        if not mine.get("tail"):
            keys += (R_KEYS if theirs["rvalid"] else ()) + (("bresp",) if theirs["bvalid"] else ())
        got, want = {k: mine[k] for k in keys}, {k: theirs[k] for k in keys}
        if got != want:
            bad.append(f"cycle {cycle}: memory {got} model {want}")
    return bad


@pytest.mark.parametrize("latency", [3, 5, 20])
@pytest.mark.parametrize("bus_bytes", [2, 8])
def test_the_memory_answers_random_dma_traffic_as_the_model_with_its_latency(bus_bytes, latency):
    seen, refused = _lockstep(bus_bytes, latency, seed=latency * 10 + bus_bytes)
    assert _differences(seen) == []
    beats = [mine for _c, mine, _t in seen if mine["rvalid"]]
    assert len(beats) > 100 and any(b["rdata"] for b in beats) and any(b["rresp"] == 3 for b in beats)
    assert refused["w"] == 0  # a W beat is taken the cycle it comes, as the model takes it (STORE's timing)
    assert refused["ar"] > 0  # the AR queue filled: the master's waits are on the checked path


def test_a_memory_one_cycle_faster_than_the_model_is_caught():
    params = _params(2, 6)
    dut = OnChipMemory(params, 256, latency=5)
    model = AxiMemory(256, 2, 6)
    seen = []

    async def bench(ctx):
        for cycle in range(16):
            inputs = {name: 0 for name in MASTER_SIGNALS} | {"rready": 1, "bready": 1}
            if cycle == 2:
                inputs.update(araddr=16, arlen=1, arsize=1, arburst=1, arvalid=1)
            for name, value in inputs.items():
                ctx.set(getattr(dut.axi, name), value)
            seen.append((cycle, {k: ctx.get(getattr(dut.axi, k)) for k in ("rvalid", "bvalid", "bresp", *R_KEYS)},
                         model.outputs()))
            model.step(inputs)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(PERIOD)
    sim.add_testbench(bench)
    sim.run()
    first = next(c for c, mine, _t in seen if mine["rvalid"])
    assert first == 2 + 5
    assert _differences(seen) != []


def test_the_limit_input_answers_decerr_from_that_word_as_a_smaller_memory():
    seen, _refused = _lockstep(2, 20, seed=7, transfers=16, size=3072, limit_words=1000)
    assert _differences(seen) == []
    resp = [mine["rresp"] for _c, mine, _t in seen if mine["rvalid"]]
    assert 3 in resp and 0 in resp


@pytest.mark.parametrize("latency", [2, 0, 3.5, True])
def test_a_latency_below_three_or_not_an_integer_is_refused(latency):
    with pytest.raises(HdlError, match="latency"):
        OnChipMemory(_params(2, 20), 256, latency=latency)


def test_the_ar_queue_holds_a_burst_per_cycle_of_latency():
    assert OnChipMemory(_params(2, 20), 256, latency=20).ar_queue_depth == 21
    assert OnChipMemory(_params(2, 3), 256).ar_queue_depth == 4 and READ_LATENCY == 3


@pytest.mark.rtl
def test_the_memory_at_the_spec_latency_with_its_limit_converts_and_lints_clean(tmp_path):
    from conftest import require_simulator
    from hdl.emit import to_verilog
    from hdl.lint import verilator_lint

    require_simulator("verilator")
    path = tmp_path / "memory.v"
    path.write_text(to_verilog(OnChipMemory(_params(2, 20), 4096, latency=20, limit_port=True), "memory"))
    result = verilator_lint(path, "memory")
    assert result.clean, result.output
