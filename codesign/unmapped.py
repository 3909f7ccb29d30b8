"""A model the simulator cannot map whole: refused unless asked, and then what it leaves out is reported.

Capture lists every exported op that maps to no layer kind under ``Workload.unsupported``, with the MACs
FlopCounterMode's formula gives it and the parameters only it reads (``Workload.unmapped()``). The simulator
runs the layers only, so ``codesign sim``, ``explore`` and ``sweep`` refuse such a model with one line naming
the ops, their counts and their share of the model (``UnmappedOpsError``, exit status 2) unless
``--allow-unsupported`` is given; then the table and the JSON carry the unmapped ops and their share.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from codesign.errors import UnmappedOpsError

if TYPE_CHECKING:  # pragma: no cover
    from codesign.workload import Unmapped, Workload

__all__ = ["ALLOW_HELP", "add_allow_argument", "describe", "check_mapped", "unmapped_line", "print_unmapped"]

ALLOW_HELP = (
    "simulate a model even when some of its ops map to no layer kind; they are left out, and the table and the "
    "JSON list them with the share of MACs and parameters they hold (default: such a model is refused)"
)


def add_allow_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--allow-unsupported`` (``args.allow_unsupported``) to ``parser``."""
    parser.add_argument("--allow-unsupported", dest="allow_unsupported", action="store_true", help=ALLOW_HELP)


def _percent(share: float) -> str:
    """A share as a percentage with two significant digits below 10% (0.0012%, 3.2%, 71%)."""
    value = share * 100
    if value == 0:
        return "0%"
    if value >= 10:
        return f"{value:.0f}%"
    return f"{value:.2g}%"


def describe(unmapped: "Unmapped") -> str:
    """``aten.foo x3, aten.bar x1 (12% of MACs, 0.5% of parameters; MACs unknown for aten.bar)``.

    Shares are of the whole model (layers and unmapped ops); an op FlopCounterMode has no formula for has
    unknown MACs (FlopCounterMode counts it as 0).
    """
    ops = ", ".join(f"{op.aten} x{op.count}" for op in unmapped.ops)
    shares = []
    if unmapped.macs:
        shares.append(f"{_percent(unmapped.macs_share)} of MACs")
    if unmapped.params:
        shares.append(f"{_percent(unmapped.params_share)} of parameters")
    text = ", ".join(shares)
    if unmapped.unknown:
        text += ("; " if text else "") + f"MACs unknown for {', '.join(unmapped.unknown)}"
    return f"{ops} ({text or 'no MACs, no parameters'})"


def check_mapped(workload: "Workload", label: str, allow: bool) -> "Unmapped | None":
    """What ``workload`` leaves out (None when every op maps to a layer).

    Raises ``UnmappedOpsError`` (one line: the ops, their counts and share) when some op is unmapped and
    ``allow`` is False.
    """
    unmapped = workload.unmapped()
    if unmapped is None or allow:
        return unmapped
    noun = "op" if unmapped.count == 1 else "ops"
    raise UnmappedOpsError(
        f"{label} has {unmapped.count} {noun} the simulator cannot map: {describe(unmapped)}; "
        "pass --allow-unsupported to simulate the rest"
    )


def unmapped_line(unmapped: "Unmapped") -> str:
    """The note printed under a table of a model simulated without its unmapped ops."""
    noun = "op maps" if unmapped.count == 1 else "ops map"
    return f"not simulated ({unmapped.count} {noun} to no layer): {describe(unmapped)}"


def print_unmapped(unmapped: "Unmapped | None", console) -> None:
    """Print ``unmapped_line`` on a rich console (nothing when every op was mapped)."""
    if unmapped is not None:
        console.print(f"[yellow]{unmapped_line(unmapped)}[/yellow]")
