"""The array kinds ``GemmCore`` can be built around: one entry per dataflow with an RTL generator.

Each ``ArrayKind`` names the array component (built from an ``hdl.systolic.ArrayConfig``), the PE
class it is made of, the PE kinds (``codesign.pe.PeKind``) that PE implements, and the controller
(``hdl.control``) that runs tiles on it, plus the few facts ``GemmCore`` and the manifest need from
it. ``GemmCore`` looks its array up here and has no per-dataflow branch for picking it; adding an
array kind is one more entry (with its timing in ``codesign.contract.tile_timing.CONTRACTS``).

The dataflows the RTL generator supports are the contract's ``tile_timing.DATAFLOWS`` that have an
entry here (``RTL_DATAFLOWS``). The binarized XNOR-popcount array is not one of these kinds: its ports
differ (packed words in, a whole tile out), so it has its own core (``hdl.binary_core.BinaryGemmCore``)
and its own contract (``codesign.contract.binary_timing``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from codesign.contract import tile_timing
from codesign.errors import HdlError
from codesign.pe import PeKind
from hdl.control import TileControl, os_control, ws_control
from hdl.pe import OsPe, WsPe
from hdl.systolic import OsArray, WsArray

__all__ = ["ArrayKind", "ARRAY_KINDS", "RTL_DATAFLOWS", "check_dataflow", "array_kind"]


@dataclass(frozen=True)
class ArrayKind:
    """One array ``GemmCore`` can instantiate, and how the core drives it."""

    dataflow: str  # key of its timing in codesign.contract.tile_timing.CONTRACTS
    array: type  # wiring.Component class, constructed from an ArrayConfig
    pe: type  # the PE class the array is made of
    pe_kinds: tuple[PeKind, ...]  # what that PE computes
    control: Callable[[TileControl], None]  # builds the tile controller inside GemmCore.elaborate
    results_depth: Callable[[int, int], int]  # results FIFO entries for (rows, cols)
    first_beat_with_command: bool  # a beat may transfer on the command's edge (lane counts from cmd)
    acts_carry: str  # what one acts transfer carries (for the manifest)


ARRAY_KINDS: dict[str, ArrayKind] = {
    "ws": ArrayKind(
        dataflow="ws", array=WsArray, pe=WsPe, pe_kinds=(PeKind.INT_MAC,), control=ws_control,
        # one entry per row in flight in the array (rows + cols - 1 stages), plus one being read
        results_depth=lambda rows, cols: rows + cols + 1,
        first_beat_with_command=False,
        acts_carry="A[i, 0..rows-1] (one row of A)",
    ),
    "os": ArrayKind(
        dataflow="os", array=OsArray, pe=OsPe, pe_kinds=(PeKind.INT_MAC,), control=os_control,
        results_depth=lambda rows, cols: rows + 1,
        first_beat_with_command=True,
        acts_carry="A[0..rows-1, t] (one column of A)",
    ),
}

RTL_DATAFLOWS: tuple[str, ...] = tuple(name for name in tile_timing.DATAFLOWS if name in ARRAY_KINDS)


def _listed(names: tuple[str, ...], last: str) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {last} {names[-1]}"


def check_dataflow(dataflow: Any) -> str:
    """The short name of ``dataflow`` ('ws', 'os' or a ``codesign.arch.Dataflow``) if the RTL generator
    builds as a GEMM core; HdlError otherwise ('rs' is named with where its own array is built)."""
    name = getattr(dataflow, "value", dataflow)
    if name == "rs":
        raise HdlError(
            "dataflow 'rs' (row stationary) is not a GEMM core: the RS array (hdl.rs_array, docs/rs-array.md) is built by `codesign hdl --dataflow rs` and "
            f"checked by `codesign verify --dataflow rs`; for a GEMM core use {_listed(RTL_DATAFLOWS, 'or')}"
        )
    if name not in RTL_DATAFLOWS:
        raise HdlError(f"unknown dataflow {name!r}; the RTL generator supports {_listed(RTL_DATAFLOWS, 'and')}")
    return str(name)


def array_kind(dataflow: Any) -> ArrayKind:
    """The ``ArrayKind`` of a supported dataflow; HdlError as ``check_dataflow`` otherwise."""
    return ARRAY_KINDS[check_dataflow(dataflow)]
