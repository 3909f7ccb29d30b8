"""Speed and peak memory side by side: our simulator, SCALE-Sim and ZigZag on the same network and array.

ResNet-18 and MobileNetV2 at 224x224 on a 32x32 array, each dataflow (ws, os; rs on a 32x32 Eyeriss-style
array, which no peer models). Every measurement is a fresh child process, so its peak RSS (the child's
own VmHWM) is that run's alone and no cache survives between runs:
  - ours, simulate only: a pickled Workload is loaded, then ``sim.engine.simulate`` (mapping search
    included) is timed -- its first, cold call;
  - ours, capture + simulate: the zoo model is built, captured with ``codesign.from_torch`` and simulated;
  - ours, tracemalloc: the peak of Python/numpy allocations inside the simulate call (a separate run,
    since tracing slows it down);
  - SCALE-Sim v3 (API, save_disk_space=True) per dataflow on the same layers (its per-layer cycles are set
    beside ours as in peer_scalesim.py), and ZigZag's default flow (LOMA, K x C mapping) once per network.
Targets (bench/README.peers.md): <= 1 s per network per dataflow, >= 100x faster than SCALE-Sim, >= 25x
faster than ZigZag, peak memory <= 1/5 of SCALE-Sim's. Usage:

    .venv/bin/python bench/sim_speed.py [--networks resnet18,mobilenetv2] [--no-peers] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
for _path in (REPO_DIR, BENCH_DIR):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from codesign.errors import CodesignError  # noqa: E402
from peer_scalesim import (PEAK_RSS_SNIPPET, PeerError, compare, engine_arch, layer_table, network_cases, run_child,  # noqa: E402
                           run_scalesim, totals, totals_table)  # noqa: E402

NETWORKS = ("resnet18", "mobilenetv2")
DATAFLOWS = ("ws", "os", "rs")
ARRAY = 32
TARGET_OURS_S = 1.0
TARGET_VS_SCALESIM = 100.0
TARGET_VS_ZIGZAG = 25.0
TARGET_MEMORY_SHARE = 0.2
CHILD_TAG = "SIM_SPEED_RESULT "


def bench_arch(dataflow: str, array: int = ARRAY):
    """The array the figures are for: fpga-16x16 widened to array x array with a 512 KiB buffer (ws/os,
    ``peer_scalesim.engine_arch``), Eyeriss widened to array x array for rs."""
    from codesign.arch_loader import load_arch

    if dataflow == "rs":
        base = load_arch("eyeriss")
        return replace(base, name=f"eyeriss-{array}x{array}", rows=array, cols=array)
    return engine_arch(array, dataflow, glb_bytes=512 * 1024)


# ---------------------------------------------------------------------------------------------
# The child process: one measured run of ours
# ---------------------------------------------------------------------------------------------


def _child(mode: str, network: str, dataflow: str, workload_pickle: str | None) -> dict:
    started = time.perf_counter()
    result: dict = {"mode": mode}
    if mode == "capture+sim":
        import codesign
        from codesign import zoo

        module, inputs = zoo.build(network)
        t0 = time.perf_counter()
        workload = codesign.from_torch(module, inputs)
        result["capture_s"] = time.perf_counter() - t0
    else:
        with open(workload_pickle, "rb") as handle:
            workload = pickle.load(handle)
    from sim.engine import simulate

    arch = bench_arch(dataflow)
    result["setup_s"] = time.perf_counter() - started
    if mode == "trace":
        import tracemalloc

        tracemalloc.start()
    t0 = time.perf_counter()
    sim = simulate(workload, arch, dataflow, objective="latency")
    result["simulate_s"] = time.perf_counter() - t0
    if mode == "trace":
        result["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    result.update(cycles=int(sim.cycles), compute_cycles=int(sim.compute_cycles), layers=len(sim.layers))
    return result


@dataclass(frozen=True)
class OursRun:
    network: str
    dataflow: str
    arch: str
    simulate_s: float  # cold simulate call, mapping search included
    process_s: float  # the whole simulate-only child: Python start, imports, unpickle, simulate
    peak_rss_mb: float  # simulate-only child
    capture_s: float  # codesign.from_torch alone
    capture_process_s: float  # build + capture + simulate child, Python start included
    capture_peak_rss_mb: float
    traced_peak_mb: float  # tracemalloc peak inside simulate
    cycles: int
    compute_cycles: int


def _run_ours_child(mode: str, network: str, dataflow: str, workload_pickle: str) -> tuple[dict, float, float]:
    wall, rss, out, err, code = run_child(
        [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--networks", network, "--dataflows",
         dataflow, "--workload", workload_pickle], cwd=str(REPO_DIR))
    line = next((line for line in out.splitlines() if line.startswith(CHILD_TAG)), None)
    if code != 0 or line is None:
        tail = (err or out).strip().splitlines()[-3:]
        raise PeerError(f"our simulator failed on {network}/{dataflow} (exit {code}): {' | '.join(tail)}")
    return json.loads(line[len(CHILD_TAG):]), wall, rss


def run_ours(network: str, dataflow: str, workload_pickle: str) -> OursRun:
    sim, sim_wall, sim_rss = _run_ours_child("sim", network, dataflow, workload_pickle)
    cap, cap_wall, cap_rss = _run_ours_child("capture+sim", network, dataflow, workload_pickle)
    trace, _, _ = _run_ours_child("trace", network, dataflow, workload_pickle)
    return OursRun(network, dataflow, bench_arch(dataflow).name, sim["simulate_s"], sim_wall, sim_rss,
                   cap["capture_s"], cap_wall, cap_rss, trace["traced_peak_mb"], sim["cycles"],
                   sim["compute_cycles"])


# ---------------------------------------------------------------------------------------------
# The side-by-side run
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeerRun:
    tool: str
    network: str
    dataflow: str
    process_s: float  # the whole child process
    core_s: float  # the simulation / search call alone (SCALE-Sim: same as process)
    peak_rss_mb: float
    cycles: float


def run_scalesim_network(network: str, dataflow: str, workload, timeout_s: float) -> tuple[PeerRun, list]:
    """SCALE-Sim on the network's conv / linear layers; its timing and the per-layer cycle comparison."""
    cases = network_cases(workload)
    run = run_scalesim([row for case in cases for row in case.rows], ARRAY, ARRAY, dataflow, timeout_s)
    peer = PeerRun("SCALE-Sim", network, dataflow, run.wall_s, run.wall_s, run.peak_rss_mb, float(sum(run.cycles)))
    return peer, compare(cases, ARRAY, dataflow, run)


def run_zigzag_network(network: str, workload, timeout_s: float) -> PeerRun:
    """ZigZag's default flow once per network: LOMA over the K x C (weight-stationary) spatial mapping."""
    from peer_zigzag import run_zigzag, zigzag_workload

    run = run_zigzag(zigzag_workload(workload), "ws", network, ARRAY, ARRAY, timeout_s)
    return PeerRun("ZigZag", network, "any", run.wall_s, run.search_s, run.peak_rss_mb, run.latency_cycles)


def _ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.0f}x" if denominator > 0 else "-"


def _mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(ours: Sequence[OursRun], peers: Sequence[PeerRun]) -> str:
    lines = ["### Ours (32x32; rs on a 32x32 Eyeriss-style array)", "",
             "| network | df | arch | simulate (cold, s) | target 1 s | process, sim only (s) | peak RSS, sim only "
             "(MB) | tracemalloc peak (MB) | capture (s) | process, capture + sim (s) | peak RSS, capture + sim (MB) "
             "| cycles |",
             "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for o in ours:
        lines.append(f"| {o.network} | {o.dataflow} | {o.arch} | {o.simulate_s:.3f} | "
                     f"{_mark(o.simulate_s <= TARGET_OURS_S)} | {o.process_s:.2f} | {o.peak_rss_mb:.0f} | "
                     f"{o.traced_peak_mb:.1f} | {o.capture_s:.2f} | {o.capture_process_s:.2f} | "
                     f"{o.capture_peak_rss_mb:.0f} | {o.cycles} |")
    if peers:
        lines += ["", "### Peers on the same layers and array, and the ratios", "",
                  "| network | df | tool | process (s) | core call (s) | peak RSS (MB) | their cycles | "
                  "time vs ours (process / process) | time vs ours (core / simulate) | target | ours' RSS share | "
                  "target |",
                  "|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|"]
        pairs = [(p, o) for p in peers for o in ours
                 if o.network == p.network and (o.dataflow == p.dataflow or (p.dataflow == "any" and o.dataflow != "rs"))]
        for p, o in pairs:
            target = TARGET_VS_SCALESIM if p.tool == "SCALE-Sim" else TARGET_VS_ZIGZAG
            speedup = p.process_s / o.process_s
            share = o.peak_rss_mb / p.peak_rss_mb
            memory_target = _mark(share <= TARGET_MEMORY_SHARE) if p.tool == "SCALE-Sim" else "-"
            lines.append(f"| {p.network} | {o.dataflow} | {p.tool} | {p.process_s:.1f} | {p.core_s:.1f} | "
                         f"{p.peak_rss_mb:.0f} | {p.cycles:.0f} | {_ratio(p.process_s, o.process_s)} | "
                         f"{_ratio(p.core_s, o.simulate_s)} | >= {target:.0f}x: {_mark(speedup >= target)} | "
                         f"{share:.2f} | {memory_target} |")
    return "\n".join(lines)


def _write(args, ours, peers, cycle_totals, cycle_sections, echo: bool = False) -> None:
    from codesign.atomic_write import write_text_atomic

    text = report(ours, peers)
    if cycle_totals:
        text += ("\n\n### Compute cycles against SCALE-Sim, from the same runs\n\n" + totals_table(cycle_totals)
                 + "\n\n" + "\n\n".join(cycle_sections))
    if echo:
        print(text)
    if args.out:
        write_text_atomic(args.out, text + "\n")
    if args.json:
        write_text_atomic(args.json, json.dumps({"ours": [asdict(o) for o in ours],
                                                 "peers": [asdict(p) for p in peers]}, indent=1) + "\n")


def _csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default=",".join(NETWORKS))
    parser.add_argument("--dataflows", default=",".join(DATAFLOWS))
    parser.add_argument("--no-peers", action="store_true", help="measure ours only")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per peer run")
    parser.add_argument("--json", default=None, help="also write every figure as JSON here")
    parser.add_argument("--out", default=None, help="write the markdown tables here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--workload", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(CHILD_TAG + json.dumps(_child(args.child, args.networks, args.dataflows, args.workload)))
        namespace: dict = {}
        exec(PEAK_RSS_SNIPPET, namespace)  # the same VmHWM reading the peers' drivers print
        namespace["_print_peak_rss"]()
        return 0

    from peer_scalesim import capture_network

    ours, peers, cycle_sections, cycle_totals = [], [], [], []
    try:
        with tempfile.TemporaryDirectory(prefix="sim-speed-") as tmp:
            for network in _csv(args.networks):
                workload = capture_network(network)
                workload_pickle = str(Path(tmp) / f"{network}.pickle")
                with open(workload_pickle, "wb") as handle:
                    pickle.dump(workload, handle)
                for dataflow in _csv(args.dataflows):
                    if dataflow not in DATAFLOWS:
                        raise PeerError(f"dataflow {dataflow!r} not in {DATAFLOWS}")
                    run = run_ours(network, dataflow, workload_pickle)
                    ours.append(run)
                    print(f"ours {network} {dataflow}: simulate {run.simulate_s:.3f} s, process {run.process_s:.2f} s, "
                          f"RSS {run.peak_rss_mb:.0f} MB", file=sys.stderr)
                    if not args.no_peers and dataflow != "rs":  # SCALE-Sim has no row stationary
                        peer, rows = run_scalesim_network(network, dataflow, workload, args.timeout)
                        peers.append(peer)
                        cycle_totals.append((network, dataflow, ARRAY, totals(rows)))
                        cycle_sections.append(f"### {network}, {dataflow.upper()}, {ARRAY}x{ARRAY}\n\n"
                                              + layer_table(rows))
                        print(f"SCALE-Sim {network} {dataflow}: {peer.process_s:.1f} s, RSS {peer.peak_rss_mb:.0f} MB; "
                              f"ours vs its cycles {cycle_totals[-1][3].delta_pct:+.2f}%", file=sys.stderr)
                    _write(args, ours, peers, cycle_totals, cycle_sections)
                if not args.no_peers:
                    peer = run_zigzag_network(network, workload, args.timeout)
                    peers.append(peer)
                    print(f"ZigZag {network}: {peer.process_s:.1f} s, RSS {peer.peak_rss_mb:.0f} MB", file=sys.stderr)
                _write(args, ours, peers, cycle_totals, cycle_sections)  # keep what is measured so far
    except (PeerError, CodesignError, ValueError) as exc:  # bad input or a failed peer: one line
        print(f"sim_speed: error: {exc}", file=sys.stderr)
        return 2
    _write(args, ours, peers, cycle_totals, cycle_sections, echo=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
