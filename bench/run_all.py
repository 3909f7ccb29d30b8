"""Run every benchmark in this folder, one after another, as `make bench` does.

Benchmarks are not timed tests: they measure, print markdown, and leave the recording to a
person (the tables in bench/README.md were produced by these scripts). The peer comparisons
need `bash bench/setup_peers.sh` first; without the peers' environments they are skipped.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PEER_VENVS = (BENCH / ".venv-scalesim", BENCH / ".venv-zigzag")

# (script, arguments, what it needs beyond the project's environment: None, "peers" (their virtual
# environments) or "zoo" (torchvision and timm, which are not dependencies: `pip install torchvision timm`))
RUNS = (
    ("capture_bench.py", [], None),
    ("explore_bench.py", [], None),
    ("accuracy_bench.py", [], None),
    ("sweep_bench.py", [], None),
    ("cluster_bench.py", [], None),
    ("hdl_verify_bench.py", [], None),
    ("hdl_units_bench.py", [], None),
    ("eyeriss_fidelity.py", [], None),
    ("system_run_bench.py", [], None),
    ("op_coverage.py", [], "zoo"),
    ("peer_scalesim.py", [], "peers"),
    ("peer_zigzag.py", [], "peers"),
    ("sim_speed.py", [], "peers"),
)
# Calibrations are not benchmarks: `.venv/bin/python bench/resource_calibrate.py` (synthesis, about 20 min) and
# `.venv/bin/python -m hdl.fmax --calibrate` (builds to bitstream, about 30 min) regenerate hdl/resource_data/.


def _have_zoo() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("torchvision", "timm"))


def main() -> int:
    have = {"peers": all(venv.is_dir() for venv in PEER_VENVS), "zoo": _have_zoo()}
    why = {"peers": "run `bash bench/setup_peers.sh` for the peers' environments",
           "zoo": "needs torchvision and timm: .venv/bin/pip install torchvision timm"}
    failed = []
    for script, args, needs in RUNS:
        if needs and not have[needs]:
            print(f"== {script}: skipped ({why[needs]})")
            continue
        print(f"== {script} {' '.join(args)}", flush=True)
        start = time.perf_counter()
        status = subprocess.call([sys.executable, str(BENCH / script), *args])
        print(f"== {script}: exit {status} after {time.perf_counter() - start:.0f} s", flush=True)
        if status != 0:
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
