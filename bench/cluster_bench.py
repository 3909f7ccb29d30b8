"""Wall time of a 120-point sweep of ResNet-18 at 224x224 on one and two Dask workers.

3 dataflows x 8 array shapes x 5 bit-widths on the fpga-12x14 preset (WS, OS, RS), each run in a fresh process
(imports, model build, one export, one capture per bit-width, 120 simulations with their mapping searches):

    codesign sweep zoo:resnet18 --arch fpga-12x14 --bits 16,8,4,2,1 --dataflows ws,os,rs \\
        --arrays 4x4,8x8,8x16,12x14,16x16,16x32,24x24,32x32 --no-accuracy --jobs N

at N = 1 (in this process, no cluster) and N = 2 (a LocalCluster of two workers). Target: under 30 s at two
workers. The JSON of every run is compared: the points must be the same at either worker count. ``--accuracy``
times the same sweep with the accuracy proxy as well (5 fake-quantized ResNet-18 evaluations on 64 inputs). Prints
markdown tables: every run (wall, CPU of the process and its workers, load average), then the phases of one
serial in-process run, so a slow run says where its time went. Usage:

    .venv/bin/python bench/cluster_bench.py [--runs 2] [--accuracy] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
if str(REPO_DIR) not in sys.path:
    sys.path.insert(0, str(REPO_DIR))

MODEL = "zoo:resnet18"
ARCH = "fpga-12x14"
BITS = (16, 8, 4, 2, 1)
DATAFLOWS = ("ws", "os", "rs")
ARRAYS = ((4, 4), (8, 8), (8, 16), (12, 14), (16, 16), (16, 32), (24, 24), (32, 32))
WORKERS = (1, 2)
TARGET_S = 30.0


def command(jobs: int, accuracy: bool) -> list[str]:
    codesign = Path(sys.executable).with_name("codesign")
    head = [str(codesign)] if codesign.exists() else [sys.executable, "-m", "codesign"]
    args = [MODEL, "--arch", ARCH, "--bits", ",".join(map(str, BITS)), "--dataflows", ",".join(DATAFLOWS),
            "--arrays", ",".join(f"{r}x{c}" for r, c in ARRAYS)]
    if not accuracy:
        args.append("--no-accuracy")
    return head + ["sweep", *args, "--jobs", str(jobs)]


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def timed_run(jobs: int, accuracy: bool, out: Path) -> dict:
    """One fresh-process run: wall s, CPU s (the process and its workers: user + system), load average before."""
    import resource

    load = _load()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command(jobs, accuracy) + ["--quiet", "--json", str(out)], cwd=REPO_DIR,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"codesign sweep failed (exit {done.returncode}): {done.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    points = json.loads(out.read_text())["points"]
    return {"jobs": jobs, "wall_s": elapsed, "cpu_s": cpu, "load": load, "points": len(points),
            "json": out.read_text()}


def phases(accuracy: bool) -> dict[str, float]:
    """One serial run in this process, phase by phase (the work `codesign sweep --jobs 1` does)."""
    marks: dict[str, float] = {}
    start = time.perf_counter()
    import torch

    from codesign.arch_loader import load_arch
    from codesign.capture import from_torch
    from codesign.capture.precision import BitsPolicy
    from codesign.cluster import one_torch_thread
    from codesign.model_ref import load_model
    from codesign.sweep import design_at, point_bits
    from sim.engine import simulate

    marks["imports"] = time.perf_counter() - start
    with one_torch_thread():
        t = time.perf_counter()
        name, model, inputs = load_model(MODEL)
        marks["model build"] = time.perf_counter() - t
        t = time.perf_counter()
        program = torch.export.export(model.eval(), inputs)
        marks["export (once)"] = time.perf_counter() - t
        t = time.perf_counter()
        policies = {b: BitsPolicy(default=point_bits(b)) for b in BITS}
        workloads = {b: from_torch(program, inputs, name=name, bits=policies[b]) for b in BITS}
        marks[f"capture ({len(BITS)} bit-widths)"] = time.perf_counter() - t
        base = load_arch(ARCH)
        from dataclasses import replace

        shapes = [base if (r, c) == (base.rows, base.cols) else replace(base, rows=r, cols=c) for r, c in ARRAYS]
        per_flow = {flow: 0.0 for flow in DATAFLOWS}
        for b in BITS:
            for flow in DATAFLOWS:
                for arch in shapes:
                    t = time.perf_counter()
                    simulate(workloads[b], design_at(arch, b), flow)
                    per_flow[flow] += time.perf_counter() - t
        for flow, seconds in per_flow.items():
            marks[f"simulation, {flow.upper()} ({len(BITS) * len(ARRAYS)} points)"] = seconds
        if accuracy:
            from codesign.accuracy import accuracy_sweep

            t = time.perf_counter()
            accuracy_sweep(model, inputs, [policies[b] for b in BITS], reestimate_bn=True)
            marks[f"accuracy proxy ({len(BITS)} bit-widths)"] = time.perf_counter() - t
    marks["total"] = time.perf_counter() - start
    return marks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="fresh-process runs per worker count (default 2)")
    parser.add_argument("--accuracy", action="store_true", help="time the sweep with the accuracy proxy too")
    parser.add_argument("--json", default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    modes = [False, True] if args.accuracy else [False]
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for accuracy in modes:
            for run in range(max(1, args.runs)):
                for jobs in WORKERS:  # interleaved, so a change in the machine's load hits both counts alike
                    out = Path(folder) / f"sweep-{accuracy}-{jobs}-{run}.json"
                    results.append({**timed_run(jobs, accuracy, out), "accuracy": accuracy})
    same = all(len({r["json"] for r in results if r["accuracy"] == accuracy}) == 1 for accuracy in modes)
    print(f"`codesign {' '.join(command(2, False)[command(2, False).index('sweep'):])}` ({results[0]['points']} "
          f"points; `--jobs 1` runs in the process, `--jobs 2` on a LocalCluster)\n")
    print("| accuracy proxy | workers | wall s | CPU s (all processes) | load average before |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        print(f"| {'yes' if r['accuracy'] else 'no'} | {r['jobs']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
              f"{r['load']:.1f} |")
    summary = {}
    for accuracy in modes:
        for jobs in WORKERS:
            walls = [r["wall_s"] for r in results if r["accuracy"] == accuracy and r["jobs"] == jobs]
            summary[(accuracy, jobs)] = (min(walls), statistics.median(walls))
    print("\n| accuracy proxy | workers | best s | median s |")
    print("|---|---:|---:|---:|")
    for (accuracy, jobs), (best, median) in summary.items():
        print(f"| {'yes' if accuracy else 'no'} | {jobs} | {best:.1f} | {median:.1f} |")
    best_two = summary[(False, 2)][0]
    verdict = "meets" if best_two < TARGET_S else "misses"
    print(f"\nthe same points at 1 and 2 workers: {'yes' if same else 'NO'}; two workers, best {best_two:.1f} s "
          f"on {os.cpu_count()} CPUs: {verdict} the {TARGET_S:.0f} s target")
    marks = phases(args.accuracy)
    print("\n| phase (one serial in-process run) | s |")
    print("|---|---:|")
    for key, value in marks.items():
        print(f"| {key} | {value:.1f} |")
    if args.json:
        figures = {"runs": [{k: v for k, v in r.items() if k != "json"} for r in results], "same_points": same,
                   "summary": {f"{'accuracy' if a else 'no-accuracy'}-{j}": {"best_s": b, "median_s": m}
                               for (a, j), (b, m) in summary.items()}, "phases_s": marks}
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if same and best_two < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
