"""Whole networks on the generated system's RTL: wall time of `codesign run` and RTL cycles per second.

For each network of ``codesign.zoo.system_nets`` (the CIFAR-size ResNet-style net first) and each dataflow, runs
    codesign run codesign.zoo.system_nets:NET --arch fpga-8x8 --dataflow DF --simulator SIM --json out.json
in a fresh process with an empty simulator-build cache (so the build is timed; a second run of the same system
reuses it and is timed too), and prints a markdown table: instructions, cycles predicted and measured, bit-exact,
wall time of the whole command, of the simulator build, and of the RTL run, and simulated cycles per second of the
run (cycles / RTL seconds, the cocotb host and the AXI4 memory model included). Usage:
    .venv/bin/python bench/system_run_bench.py [--simulator verilator] [--nets resnet_net,...] [--dataflows ws,os]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODESIGN = str(Path(sys.executable).parent / "codesign")


def _run(net: str, dataflow: str, simulator: str, cache: str) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run.json"
        env = dict(os.environ, CODESIGN_RTL_CACHE=cache)
        started = time.monotonic()
        done = subprocess.run([CODESIGN, "run", f"codesign.zoo.system_nets:{net}", "--arch", "fpga-8x8",
                               "--dataflow", dataflow, "--simulator", simulator, "--json", str(out)],
                              capture_output=True, text=True, env=env)
        wall = time.monotonic() - started
        if not out.is_file():
            raise SystemExit(f"{net} {dataflow}: no result (exit {done.returncode}): {done.stderr.strip()[-400:]}")
        report = json.loads(out.read_text())
    report["wall_s"] = wall
    report["exit"] = done.returncode
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulator", default="verilator")
    parser.add_argument("--nets", default="resnet_net,mobilenet_block,lut_block")
    parser.add_argument("--dataflows", default="ws,os")
    args = parser.parse_args()
    print("| network | dataflow | run | instructions | predicted cycles | measured cycles | bit-exact | "
          "command s | RTL s (build + run) | cycles / s of the RTL run |")
    print("|---|---|---|---:|---:|---:|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="codesign-rtl-cache-") as cache:
        for dataflow in args.dataflows.split(","):
            for index, net in enumerate(args.nets.split(",")):
                runs = [("first (builds)" if index == 0 else "build reused", _run(net, dataflow, args.simulator,
                                                                                   cache))]
                if index == 0:
                    runs.append(("build reused", _run(net, dataflow, args.simulator, cache)))
                for label, r in runs:
                    rate = r["measured_cycles"] / r["rtl_seconds"] if r["rtl_seconds"] else 0
                    print(f"| {net} | {dataflow} | {label} | {r['instructions']} | {r['predicted_cycles']} | "
                          f"{r['measured_cycles']} | {'yes' if r['bit_exact'] else 'NO'} | {r['wall_s']:.0f} | "
                          f"{r['rtl_seconds']:.0f} | {rate:,.0f} |", flush=True)
    print(f"\n({args.simulator}; RTL s: the simulator's build, when not reused, and the run with the cocotb host)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
