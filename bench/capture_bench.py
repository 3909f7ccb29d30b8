"""Capture time and peak memory of every zoo model at its ImageNet size (224x224), one process each.

Each model runs in a fresh Python process, so its peak resident set size (ru_maxrss) is the peak
of building the model and capturing it, torch import included. Prints a markdown table.

    .venv/bin/python bench/capture_bench.py [NAME ...]
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import torch
from codesign import zoo
from codesign.capture import from_torch
from codesign.capture.reference import flop_counter_macs
t_import = time.perf_counter() - t0
model, inputs = zoo.build(sys.argv[1])
rss_built = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t1 = time.perf_counter()
workload = from_torch(model, inputs, name=sys.argv[1])
t_capture = time.perf_counter() - t1
rss_captured = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
totals = workload.totals()
reference, _ = flop_counter_macs(model, inputs)
print(json.dumps({
    "import_s": t_import, "capture_s": t_capture, "peak_rss_mb": rss_captured / 1024,
    "built_rss_mb": rss_built / 1024, "layers": totals["layers"], "macs": totals["macs"],
    "reference_macs": reference, "params": totals["params"], "unsupported": len(workload.unsupported),
    "input": list(inputs[0].shape),
}))
"""


def main(argv: list[str]) -> int:
    from codesign import zoo

    names = argv or [name for name in zoo.names() if not name.endswith("-cifar")]
    print(f"Capture of the zoo at ImageNet size; torch {_torch_version()}, Python {platform.python_version()}, "
          f"{platform.machine()}, one process per model.\n")
    print("| model | input | layers | MACs | = FlopCounterMode | params | capture s | peak RSS MB (model built) | peak RSS MB (after capture) |")
    print("|---|---|---:|---:|:---:|---:|---:|---:|---:|")
    failed = 0
    for name in names:
        result = subprocess.run([sys.executable, "-c", CHILD, name], capture_output=True, text=True)
        if result.returncode != 0:
            failed += 1
            reason = (result.stderr.strip().splitlines() or ["failed"])[-1]
            print(f"| {name} | | | | | | | | failed: {reason} |")
            continue
        row = json.loads(result.stdout.strip().splitlines()[-1])
        same = "yes" if row["macs"] == row["reference_macs"] else f"no ({row['reference_macs']:,})"
        print(
            f"| {name} | {'x'.join(map(str, row['input']))} | {row['layers']} | {row['macs']:,} | {same} | "
            f"{row['params']:,} | {row['capture_s']:.2f} | {row['built_rss_mb']:.0f} | {row['peak_rss_mb']:.0f} |"
        )
        sys.stdout.flush()
    return 1 if failed else 0


def _torch_version() -> str:
    try:
        import torch

        return torch.__version__
    except ImportError:  # pragma: no cover
        return "?"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
