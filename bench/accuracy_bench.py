"""Wall and CPU time of the accuracy proxy's 16, 8, 4, 2, 1-bit sweep on MobileNetV2 (CIFAR).

``codesign.accuracy.accuracy_sweep(model, inputs, [16, 8, 4, 2, 1])`` at its defaults (16 calibration and 64
evaluation inputs, seed 0, MSE clipping), once on the model as built and once with ``reestimate_bn=True`` (what a
random-initialised zoo model needs for the figures to mean something), each ``--runs`` times in this process
after the imports and the model build (timed apart). A sweep shares its budget with the simulation: target
well under 60 s, say 20 s. Prints markdown: the timings, then the figures of the last run of each. Usage:

    .venv/bin/python bench/accuracy_bench.py [--runs 3] [--model mobilenetv2-cifar] [--threads N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
if str(REPO_DIR) not in sys.path:
    sys.path.insert(0, str(REPO_DIR))

POINTS = (16, 8, 4, 2, 1)
TARGET_S = 20.0


def timed(function):
    wall, cpu = time.perf_counter(), time.process_time()
    value = function()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default="mobilenetv2-cifar", help="zoo model name")
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op torch threads during a sweep (the API's default, 1; 0: torch's own setting)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    _, import_s, _ = timed(lambda: __import__("torch"))
    threads = args.threads or None
    from codesign.accuracy import accuracy_sweep
    from codesign.zoo import build

    (model, example), build_s, _ = timed(lambda: build(args.model))
    import torch

    print(f"# accuracy sweep {', '.join(map(str, POINTS))} bits on zoo:{args.model}\n")
    print(f"torch {torch.__version__}, {threads or torch.get_num_threads()} thread(s) in the sweep, "
          f"{os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at the start; import torch {import_s:.2f} s, "
          f"model build {build_s:.2f} s\n")
    print("| variant | run | wall s | CPU s |")
    print("|---|---:|---:|---:|")
    report: dict = {"model": args.model, "points": list(POINTS), "threads": threads, "import_s": import_s,
                    "build_s": build_s, "variants": {}}
    for label, options in (("as built", {}), ("reestimate_bn", {"reestimate_bn": True})):
        walls, cpus, results = [], [], []
        for run in range(1, args.runs + 1):
            results, wall, cpu = timed(lambda: accuracy_sweep(model, example, POINTS, threads=threads, **options))
            walls.append(wall)
            cpus.append(cpu)
            print(f"| {label} | {run} | {wall:.2f} | {cpu:.2f} |")
        print(f"| {label} | **best / median** | **{min(walls):.2f} / {statistics.median(walls):.2f}** | "
              f"{min(cpus):.2f} / {statistics.median(cpus):.2f} |")
        report["variants"][label] = {
            "wall_s": walls, "cpu_s": cpus, "results": [result.to_dict() for result in results],
        }
        report["variants"][label]["table"] = results
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end; target: a sweep under {TARGET_S:.0f} s\n")
    for label, variant in report["variants"].items():
        results = variant.pop("table")
        print(f"## {label}\n")
        print("| bits | SQNR dB | top-1 agreement |")
        print("|---|---:|---:|")
        for result in results:
            sqnr = "inf" if math.isinf(result.sqnr_db) else f"{result.sqnr_db:.2f}"
            print(f"| {result.bits} | {sqnr} | {result.top1_agreement:.3f} |")
        for note in results[0].notes:
            print(f"\nnote: {note}")
        print()
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
