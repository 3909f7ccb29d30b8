"""codesign: PyTorch model -> workload graph -> dataflow mapping -> cycle-level simulation -> verified RTL.

The front door. Heavy parts (torch, the simulator) load on first use, so importing the package
for its vocabulary stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["from_torch", "load_arch", "simulate", "explore", "write_report", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from codesign.arch_loader import load_arch
    from codesign.capture import from_torch
    from codesign.explore import explore
    from codesign.report import write_report
    from sim.engine import simulate

_LAZY = {
    "from_torch": ("codesign.capture", "from_torch"),
    "load_arch": ("codesign.arch_loader", "load_arch"),
    "simulate": ("sim.engine", "simulate"),
    "explore": ("codesign.explore", "explore"),
    "write_report": ("codesign.report", "write_report"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        value = getattr(importlib.import_module(module_name), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'codesign' has no attribute {name!r}")
