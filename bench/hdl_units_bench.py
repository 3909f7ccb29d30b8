"""Cost of the binarized, LUT and softmax units: Yosys cells per PE, and board builds to bitstream.

Part 1 synthesizes one ``XnorPopcountPE`` per word width with Yosys (generic gates, iCE40, ECP5)
and divides by the word width: the cost of one binarized MAC. Part 2 does the same for a LUT
activation and the softmax unit on iCE40 (block RAM use). Part 3 builds small designs to
bitstream for iCEBreaker (iCE40 UP5K) and ULX3S (ECP5-85F) and reports nextpnr's utilisation
and post-route Fmax. Prints markdown.

    .venv/bin/python bench/hdl_units_bench.py [--no-boards] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WORD_BITS = (8, 16, 32, 64, 128)


def _ice40_lcs(types: dict[str, int]) -> int:
    """iCE40 logic cells a design needs at most: LUT4s and flip-flops pack in pairs, carries ride along."""
    luts = types.get("SB_LUT4", 0)
    ffs = sum(count for name, count in types.items() if name.startswith("SB_DFF"))
    return max(luts, ffs)


def _synth(component, top: str, folder: Path, targets=("generic", "ice40", "ecp5")) -> dict:
    from hdl.emit import to_verilog
    from hdl.synth import synthesize

    path = folder / f"{top}.v"
    path.write_text(to_verilog(component, top))
    return {target: synthesize(path, top, target) for target in targets}


def pe_rows(folder: Path) -> list[dict]:
    from hdl.binary import XnorPopcountPE

    rows = []
    for word_bits in WORD_BITS:
        results = _synth(XnorPopcountPE(word_bits, acc_bits=16), f"xnor_pe_w{word_bits}", folder)
        ice, ecp = results["ice40"].cell_types, results["ecp5"].cell_types
        rows.append({
            "word_bits": word_bits,
            "generic_cells": results["generic"].cells,
            "ice40_lut4": ice.get("SB_LUT4", 0), "ice40_carry": ice.get("SB_CARRY", 0),
            "ice40_ff": sum(v for k, v in ice.items() if k.startswith("SB_DFF")),
            "ecp5_lut4": ecp.get("LUT4", 0), "ecp5_ccu2c": ecp.get("CCU2C", 0),
            "ecp5_ff": ecp.get("TRELLIS_FF", 0),
        })
        rows[-1]["ice40_lut4_per_mac"] = rows[-1]["ice40_lut4"] / word_bits
    return rows


def unit_rows(folder: Path) -> list[dict]:
    from hdl.lut import LutActivation
    from hdl.softmax import SoftmaxUnit

    designs = [
        ("gelu LUT 8->8, registered", LutActivation("gelu", 8, 8, (-4, 4), (-0.2, 4)), "lut_gelu"),
        ("sigmoid LUT 10->12, registered", LutActivation("sigmoid", 10, 12, (-8, 8), (0, 1)), "lut_sigmoid"),
        ("softmax n_max=16, int8 in/out", SoftmaxUnit(16), "softmax16"),
        ("softmax n_max=64, int8 in/out", SoftmaxUnit(64), "softmax64"),
    ]
    rows = []
    for label, component, top in designs:
        result = _synth(component, top, folder, targets=("ice40",))["ice40"]
        types = result.cell_types
        rows.append({"design": label, "ice40_lut4": types.get("SB_LUT4", 0),
                     "ice40_ff": sum(v for k, v in types.items() if k.startswith("SB_DFF")),
                     "ice40_ram": types.get("SB_RAM40_4K", 0), "ice40_dsp": types.get("SB_MAC16", 0)})
    return rows


def board_rows(folder: Path) -> list[dict]:
    from hdl.fpga import build_binary_array, build_design, build_gemm_core
    from hdl.params import CoreParams
    from hdl.softmax import SoftmaxUnit

    jobs = [
        lambda: build_binary_array("icebreaker", folder / "ice_xnor", rows=4, cols=4, word_bits=32),
        lambda: build_binary_array("ulx3s", folder / "ecp_xnor", rows=4, cols=4, word_bits=32),
        lambda: build_gemm_core("icebreaker", folder / "ice_gemm", CoreParams(dsp_pes=8), synth_opts="-dsp"),
        lambda: build_gemm_core("ulx3s", folder / "ecp_gemm", CoreParams()),
        lambda: build_design(SoftmaxUnit(16), "icebreaker", folder / "ice_softmax", label="softmax16"),
        lambda: build_design(SoftmaxUnit(16), "ulx3s", folder / "ecp_softmax", label="softmax16"),
    ]
    rows = []
    for job in jobs:
        try:
            rows.append(job().as_dict())
        except Exception as exc:  # report a design that does not fit instead of stopping the bench
            rows.append({"error": str(exc)})
        print(f"  built: {rows[-1].get('design', rows[-1].get('error'))}", file=sys.stderr)
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-boards", action="store_true", help="skip the board builds")
    parser.add_argument("--json", help="also write all figures to this JSON file")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hdl-units-") as tmp:
        folder = Path(tmp)
        pes = pe_rows(folder)
        units = unit_rows(folder)
        boards = [] if args.no_boards else board_rows(folder)

    print("### Binarized PE (XnorPopcountPE, 16-bit accumulator) after Yosys synthesis\n")
    print("| word bits | generic cells | iCE40 LUT4 | iCE40 carry | iCE40 FF | iCE40 LUT4 per MAC "
          "| ECP5 LUT4 | ECP5 CCU2C | ECP5 FF |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in pes:
        print(f"| {r['word_bits']} | {r['generic_cells']} | {r['ice40_lut4']} | {r['ice40_carry']} | "
              f"{r['ice40_ff']} | {r['ice40_lut4_per_mac']:.2f} | {r['ecp5_lut4']} | {r['ecp5_ccu2c']} | "
              f"{r['ecp5_ff']} |")
    print("\n### LUT activations and softmax on iCE40 (synth_ice40)\n")
    print("| design | LUT4 | FF | SB_RAM40_4K | SB_MAC16 |")
    print("|---|---:|---:|---:|---:|")
    for r in units:
        print(f"| {r['design']} | {r['ice40_lut4']} | {r['ice40_ff']} | {r['ice40_ram']} | {r['ice40_dsp']} |")
    if boards:
        print("\n### Board builds to bitstream (LFSR harness, nextpnr post-route)\n")
        print("| board | design | logic cells | DSP | BRAM | Fmax MHz (post-route) | clock MHz | build s |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for r in boards:
            if "error" in r:
                print(f"| - | - | {r['error']} | | | | | |")
                continue
            lc, dsp, bram = r["logic_cells"], r["dsp"], r["bram"]
            print(f"| {r['board']} | {r['design']} | {lc[0]} / {lc[1]} | {dsp[0]} / {dsp[1]} | "
                  f"{bram[0]} / {bram[1]} | {r['fmax_mhz']:.1f} | {r['clock_mhz']:.0f} | {r['seconds']:.0f} |")
    print(f"\n(total {time.monotonic() - started:.0f} s)")
    if args.json:
        from codesign.atomic_write import write_text_atomic

        write_text_atomic(args.json, json.dumps({"pe": pes, "units": units, "boards": boards}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
