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

# (script, arguments, needs the peers' virtual environments)
RUNS = (
    ("capture_bench.py", [], False),
    ("hdl_verify_bench.py", [], False),
    ("hdl_units_bench.py", [], False),
    ("peer_scalesim.py", [], True),
    ("peer_zigzag.py", [], True),
    ("sim_speed.py", [], True),
)


def main() -> int:
    have_peers = all(venv.is_dir() for venv in PEER_VENVS)
    failed = []
    for script, args, needs_peers in RUNS:
        if needs_peers and not have_peers:
            print(f"== {script}: skipped (run `bash bench/setup_peers.sh` for the peers' environments)")
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
