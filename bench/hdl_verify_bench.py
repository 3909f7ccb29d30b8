"""Cost of verifying and building the integer GEMM core.

Part 1 times `codesign verify` (generate, build, run every bench case, lint) for the fpga-4x4,
fpga-8x8 and fpga-16x16 presets on Icarus and Verilator, in both dataflows. Part 2 synthesizes one
integer PE (WS and OS kind) with Yosys for int8 and int4 operands, with the DSP multiplier and the
shift-and-add one, and reports cells per PE (generic gates, iCE40, ECP5). Prints markdown.

    .venv/bin/python bench/hdl_verify_bench.py [--presets fpga-4x4,...] [--simulators icarus,verilator]
                                               [--dataflows ws,os] [--no-verify] [--json OUT.json]
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
sys.path.insert(0, str(ROOT))


def time_verify(preset: str, dataflow: str, simulator: str) -> dict:
    """Wall time and exit status of one `codesign verify` run in a fresh process."""
    command = [sys.executable, "-m", "codesign", "verify", "--arch", preset, "--dataflow", dataflow,
               "--simulator", simulator]
    started = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=dict(os.environ))
    seconds = time.monotonic() - started
    last = (proc.stdout.strip().splitlines() or [""])[-1]
    return {"preset": preset, "dataflow": dataflow, "simulator": simulator, "seconds": round(seconds, 1),
            "exit": proc.returncode, "summary": last if proc.returncode in (0, 1) else proc.stderr.strip()[-200:]}


def _ice40_lcs(types: dict[str, int]) -> int:
    """iCE40 logic cells needed at most: a LUT4 and a flip-flop pack into one cell."""
    luts = types.get("SB_LUT4", 0)
    ffs = sum(count for name, count in types.items() if name.startswith("SB_DFF"))
    return max(luts, ffs)


def pe_cells(folder: Path) -> list[dict]:
    """Yosys cell counts of one PE per (kind, bits, multiplier); accumulators sized for a 16-term reduction."""
    from codesign.pe import PeSpec
    from hdl.emit import to_verilog
    from hdl.pe import OsPe, WsPe, accumulator_shape
    from hdl.synth import synthesize

    reduction = 16

    rows = []
    for kind, cls in (("ws", WsPe), ("os", OsPe)):
        for bits in (8, 4):
            for multiplier in ("dsp", "logic"):
                pe = PeSpec(weight_bits=bits, activation_bits=bits, weight_signed=True, activation_signed=True,
                            multiplier=multiplier)
                top = f"pe_{kind}_i{bits}_{multiplier}"
                path = folder / f"{top}.v"
                path.write_text(to_verilog(cls(pe, reduction), top))
                generic = synthesize(path, top, "generic")
                ice40 = synthesize(path, top, "ice40", dsp=(multiplier == "dsp"))
                ecp5 = synthesize(path, top, "ecp5")
                rows.append({
                    "pe": kind, "bits": bits, "multiplier": multiplier, "acc_bits": accumulator_shape(pe, reduction).width,
                    "generic_cells": generic.cells,
                    "ice40_lcs": _ice40_lcs(ice40.cell_types), "ice40_mac16": ice40.cell_types.get("SB_MAC16", 0),
                    "ecp5_luts": ecp5.cell_types.get("LUT4", 0) + 2 * ecp5.cell_types.get("CCU2C", 0),
                    "ecp5_mult18": ecp5.cell_types.get("MULT18X18D", 0),
                })
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="fpga-4x4,fpga-8x8,fpga-16x16")
    parser.add_argument("--simulators", default="icarus,verilator")
    parser.add_argument("--dataflows", default="ws,os")
    parser.add_argument("--no-verify", action="store_true", help="only the per-PE synthesis part")
    parser.add_argument("--json", metavar="OUT.json")
    args = parser.parse_args()

    results: dict = {"verify": [], "pe_cells": []}
    if not args.no_verify:
        print("## `codesign verify` wall time\n")
        print("| preset | dataflow | simulator | seconds | result |")
        print("| --- | --- | --- | ---: | --- |")
        for preset in args.presets.split(","):
            for dataflow in args.dataflows.split(","):
                for simulator in args.simulators.split(","):
                    row = time_verify(preset, dataflow, simulator)
                    results["verify"].append(row)
                    verdict = "pass" if row["exit"] == 0 else f"exit {row['exit']}: {row['summary']}"
                    print(f"| {preset} | {dataflow} | {simulator} | {row['seconds']} | {verdict} |", flush=True)
    print("\n## Yosys cells per PE (accumulator for a 16-term reduction)\n")
    print("| PE | operands | multiplier | acc bits | generic cells | iCE40 LCs | iCE40 SB_MAC16 | ECP5 LUT4 | ECP5 MULT18X18D |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory(prefix="codesign-pe-") as folder:
        for row in pe_cells(Path(folder)):
            results["pe_cells"].append(row)
            print(f"| {row['pe']} | int{row['bits']} | {row['multiplier']} | {row['acc_bits']} | {row['generic_cells']} | "
                  f"{row['ice40_lcs']} | {row['ice40_mac16']} | {row['ecp5_luts']} | {row['ecp5_mult18']} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(row["exit"] == 0 for row in results["verify"]) else 1


if __name__ == "__main__":
    sys.exit(main())
