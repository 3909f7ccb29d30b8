"""Wall time of `codesign explore` on MobileNetV2 (CIFAR) with two prunings, on the fpga-12x14 preset (WS, OS, RS).

The command, each run in a fresh process (imports, model build, pruning, one export, three captures, nine
simulations with their mapping searches, the report):

    codesign explore zoo:mobilenetv2-cifar --arch fpga-12x14 --prune unstructured:0.5 --prune filters:0.3

Target: under 30 s. Prints a markdown table (every run, best and median) and the phases of one in-process run
(model build, pruning, capture, simulation), so a slow run says where its time went. Usage:

    .venv/bin/python bench/explore_bench.py [--runs 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
if str(REPO_DIR) not in sys.path:
    sys.path.insert(0, str(REPO_DIR))

MODEL = "zoo:mobilenetv2-cifar"
ARCH = "fpga-12x14"
PRUNE = ("unstructured:0.5", "filters:0.3")
TARGET_S = 30.0


def command() -> list[str]:
    codesign = Path(sys.executable).with_name("codesign")
    head = [str(codesign)] if codesign.exists() else [sys.executable, "-m", "codesign"]
    args = [MODEL, "--arch", ARCH]
    for spec in PRUNE:
        args += ["--prune", spec]
    return head + ["explore", *args]


def timed_run() -> tuple[float, float]:
    """(wall s, CPU s: the child's user + system time, which other jobs on the machine inflate far less)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command() + ["--quiet"], cwd=REPO_DIR, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"codesign explore failed (exit {done.returncode}): {done.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def phases() -> dict[str, float]:
    """One run in this process, phase by phase (the same work `codesign explore` does)."""
    marks: dict[str, float] = {}
    start = time.perf_counter()
    import importlib

    import torch  # noqa: F401

    explore_module = importlib.import_module("codesign.explore")  # the module (codesign.explore may be the function)
    from codesign.arch_loader import load_arch
    from codesign.capture import from_torch
    from codesign.model_ref import load_model
    from codesign.prune import pruned_copy
    from sim.engine import simulate

    marks["imports"] = time.perf_counter() - start
    with explore_module._one_torch_thread():  # as explore() runs
        _phases(marks, explore_module, load_model, pruned_copy, from_torch, load_arch, simulate)
    marks["total"] = time.perf_counter() - start
    return marks


def _phases(marks, explore_module, load_model, pruned_copy, from_torch, load_arch, simulate) -> None:
    t = time.perf_counter()
    name, model, inputs = load_model(MODEL)
    marks["model build"] = time.perf_counter() - t
    t = time.perf_counter()
    copies = [pruned_copy(model, spec)[0] for spec in PRUNE]
    marks["pruning (2 SPECs)"] = time.perf_counter() - t
    t = time.perf_counter()
    program = explore_module._export(model, inputs)
    marks["export (once)"] = time.perf_counter() - t
    t = time.perf_counter()
    workloads = [from_torch(program, inputs, name=name)]
    workloads += [from_torch(explore_module._reweighted(program, copy), inputs, name=name) for copy in copies]
    marks["capture (3 variants)"] = time.perf_counter() - t
    arch = load_arch(ARCH)
    t = time.perf_counter()
    for workload in workloads:
        for flow in ("ws", "os", "rs"):
            simulate(workload, arch, flow)
    marks["simulation (9 runs)"] = time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh-process runs to time (default 3)")
    parser.add_argument("--json", default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    measured = [timed_run() for _ in range(max(1, args.runs))]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    times = [wall for wall, _ in measured]
    best, median = min(times), statistics.median(times)
    print(f"`{' '.join(['codesign'] + command()[command().index('explore'):])}`\n")
    print("| run | wall s | CPU s |")
    print("|---|---:|---:|")
    for index, (wall, cpu) in enumerate(measured, 1):
        print(f"| {index} | {wall:.1f} | {cpu:.1f} |")
    print(f"| best / median | {best:.1f} / {median:.1f} | {min(c for _, c in measured):.1f} |")
    verdict = "meets" if best < TARGET_S else "misses"
    print(f"\nmeasured {best:.1f} s wall (best of {len(times)}; median {median:.1f} s; load average {load_before:.1f} "
          f"before, {load:.1f} after on {os.cpu_count()} CPUs): {verdict} the {TARGET_S:.0f} s target")
    marks = phases()
    print("\n| phase (one in-process run) | s |")
    print("|---|---:|")
    for key, value in marks.items():
        print(f"| {key} | {value:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs_s": times, "cpu_s": [c for _, c in measured], "best_s": best,
                                               "median_s": median, "load_average": load, "phases_s": marks},
                                              indent=2) + "\n")
    return 0 if best < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
