"""Wall time of the issue's sweep: ``codesign sweep zoo:mobilenetv2-cifar --arch fpga-8x8 --bits 16,8,4,2,1
--board ulx3s --jobs 2`` (capture, 10 simulations, the accuracy proxy at 5 points, the resource model). Target:
under 60 s on this machine. Usage: ``.venv/bin/python bench/sweep_bench.py [--repeat N]``."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

COMMAND = ["sweep", "zoo:mobilenetv2-cifar", "--arch", "fpga-8x8", "--bits", "16,8,4,2,1", "--board", "ulx3s",
           "--jobs", "2", "--quiet"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    codesign = Path(sys.executable).with_name("codesign")
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        subprocess.run([str(codesign), *COMMAND], check=True)
        times.append(time.perf_counter() - start)
    print(f"codesign {' '.join(COMMAND)}: best {min(times):.1f} s, median {sorted(times)[len(times) // 2]:.1f} s "
          f"over {len(times)} runs (target 60 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
