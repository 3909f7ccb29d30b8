"""Regenerate the FPGA resource model's calibration data (hdl/resource_data/<family>.json).

Synthesizes every calibration design of ``hdl.resources.calibration_designs`` (integer GEMM cores,
WS and OS, several shapes and weight/activation widths, DSP and logic multipliers and mixed
``dsp_pes``; the binarized core at several word widths; a few designs inside the board builds'
LFSR harness) with Yosys ``synth_ice40`` / ``synth_ecp5`` and ``stat``, packs each netlist with
nextpnr ``--pack-only`` (no placement or routing), fits the model by non-negative least squares,
checks it on the held-out designs, and writes the points, coefficients, held-out errors and tool
versions. Prints the held-out table as markdown (what bench/README.hdl.md records).

    .venv/bin/python bench/resource_calibrate.py [--jobs 2] [--refit] [--quick] [--data-dir DIR]
                                                 [--markdown OUT.md]

The same as ``.venv/bin/python -m hdl.resources --calibrate``. ``--refit`` fits again on the stored
points without synthesizing (seconds); ``--quick`` is a smoke run on cheap designs only (write it
elsewhere with ``--data-dir``, do not ship it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    from hdl.resources import DATA_DIR, calibrate, summary_markdown

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="synthesis runs at a time (default 2)")
    parser.add_argument("--refit", action="store_true", help="fit again on the stored points (no synthesis)")
    parser.add_argument("--quick", action="store_true", help="cheap designs only: a smoke run")
    parser.add_argument("--data-dir", default=str(DATA_DIR), help=f"output folder (default {DATA_DIR})")
    parser.add_argument("--markdown", metavar="FILE", default=None, help="also write the summary there")
    args = parser.parse_args()
    started = time.monotonic()
    written = calibrate(jobs=args.jobs, quick=args.quick, refit=args.refit, data_dir=args.data_dir,
                        log=lambda line: print(line, file=sys.stderr, flush=True),
                        command=".venv/bin/python bench/resource_calibrate.py")
    text = summary_markdown(written)
    text += f"\n(wall time {time.monotonic() - started:.0f} s; data in {args.data_dir})\n"
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
