"""Cycles of one row-stationary pass on the generated RS array, shared by the simulator and the RTL.

This is the contract between ``dataflow.row_stationary`` and ``hdl.rs_array`` (docs/rs-array.md derives every
term). A pass runs one 1-D row primitive per PE: ``p`` filters x ``q`` channels of a ``taps``-long filter-row
segment (S') slid over ``out_cols`` (Q) output columns at ``stride`` U (the window advances U inputs per
column). With every stream valid and the output always ready, ``n = min(U, taps)`` new inputs per channel
and column:

    fill     = p * q * taps                         filter scratchpad load, one word per edge per set row
                                                   (the input windows' q * taps words prime beside it)
    column   = max(nonzeros, p, q * n)              one output column: the busiest PE's MACs (p*q*taps dense,
                                                   its nonzero weights when zero weights are skipped), at
                                                   least p psums drained and q*n next inputs staged
    interval = fill + out_cols * column + 1         command to the next command, passes back to back
    pass     = fill + out_cols * column + p         command to the last partial sum (the last column drains)

Passes back to back cost the intervals of all but the last plus the last pass's cycles, except that a pass's
first column cannot end before the previous pass's last column has drained (``sequence_cycles``).
"""

from __future__ import annotations

import math
from typing import Sequence

__all__ = ["DATAFLOW", "MIN_SEGMENT_TAPS", "RTL_DILATION", "check_geometry", "runs_geometry", "new_inputs",
           "input_width", "check_pass", "fill_cycles", "column_cycles", "pass_cycles",
           "issue_interval", "last_pass_correction", "sequence_cycles", "estimated_nonzeros", "as_manifest"]

DATAFLOW = "rs"
# The row primitive slides a window: a PE must hold at least two taps of a filter row (a one-word register
# file holds a single tap and has no primitive, as dataflow.row_stationary.check_filter_row_fits says).
MIN_SEGMENT_TAPS = 2
# The geometry these pass cycles are the RTL's for: a square stride U (each PE's input window advances U
# inputs per output column, and set row i, set column j reads input row i + U*j: Eyeriss ISCA 2016 Sec. V)
# and dilation 1. A dilated layer, or one of unequal row and column strides, is not a pass of the generated
# array (docs/rs-array.md section 5).
RTL_DILATION = 1


def _pair(name: str, value) -> tuple[int, int]:
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in pair):
        raise ValueError(f"{name}={value!r} must be a positive integer or a pair of them")
    return pair


def runs_geometry(stride=1, dilation=1, max_stride: int | None = None) -> bool:
    """Whether a layer of this (row, column) ``stride`` and ``dilation`` runs as passes of a generated RS
    array (built for strides up to ``max_stride``; None: any), so that ``pass_cycles`` are the RTL's for it:
    equal row and column strides, dilation 1."""
    sh, sw = _pair("stride", stride)
    return sh == sw and _pair("dilation", dilation) == (RTL_DILATION, RTL_DILATION) and \
        (max_stride is None or sw <= max_stride)


def check_geometry(stride=1, dilation=1, max_stride: int | None = None) -> None:
    """ValueError (one line) unless ``runs_geometry(stride, dilation, max_stride)``."""
    if not runs_geometry(stride, dilation, max_stride):
        limit = "" if max_stride is None else f" up to {max_stride}"
        raise ValueError(f"stride {_pair('stride', stride)} dilation {_pair('dilation', dilation)}: the RS array "
                         f"runs equal row and column strides{limit} and dilation {RTL_DILATION} only")


def new_inputs(taps: int, stride: int = 1) -> int:
    """Inputs each channel's window takes per output column: ``n = min(stride, taps)``."""
    return min(_positive("taps", taps), _positive("stride", stride))

def _positive(name: str, value) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"pass {name}={value!r} must be a positive integer")
    return int(value)


def check_pass(p: int, q: int, taps: int, out_cols: int, weight_rf_words: int, activation_rf_words: int,
               psum_rf_words: int) -> None:
    """ValueError unless the pass fits a PE's scratchpads: ``p*q*taps <= weight_rf_words``,
    ``q*taps <= activation_rf_words``, ``p <= psum_rf_words`` (docs/simulator.md section 5)."""
    for name, value in (("p", p), ("q", q), ("taps", taps), ("out_cols", out_cols)):
        _positive(name, value)
    if p * q * taps > weight_rf_words:
        raise ValueError(f"pass p*q*taps={p * q * taps} filter words exceed the {weight_rf_words}-word filter scratchpad")
    if q * taps > activation_rf_words:
        raise ValueError(f"pass q*taps={q * taps} input words exceed the {activation_rf_words}-word input scratchpad")
    if p > psum_rf_words:
        raise ValueError(f"pass p={p} partial sums exceed the {psum_rf_words}-word psum scratchpad")


def fill_cycles(p: int, q: int, taps: int) -> int:
    """Edges of the filter scratchpad load: one word of each PE's ``p*q*taps`` per edge (multicast along
    the set rows); the ``q*taps`` words priming the input windows arrive on their own bus meanwhile."""
    return _positive("p", p) * _positive("q", q) * _positive("taps", taps)


def input_width(taps: int, out_cols: int, stride: int = 1) -> int:
    """Inputs of one input row a pass reads per channel: ``(out_cols - 1) * stride + taps``."""
    return (_positive("out_cols", out_cols) - 1) * _positive("stride", stride) + _positive("taps", taps)


def column_cycles(p: int, q: int, taps: int, nonzeros: int | None = None, stride: int = 1) -> int:
    """Edges of one output column: the busiest PE's MACs (``nonzeros``, the most nonzero weights any PE
    holds, when zero weights are skipped; None: dense, ``p*q*taps``), and at least ``p`` (the previous column's
    psums drain one per edge) and ``q*n`` (the next column's ``n = min(stride, taps)`` new inputs per channel
    are staged one per edge)."""
    dense = fill_cycles(p, q, taps)
    work = dense if nonzeros is None else int(nonzeros)
    if not 0 <= work <= dense:
        raise ValueError(f"nonzeros={nonzeros!r} outside 0..p*q*taps={dense}")
    return max(work, p, q * new_inputs(taps, stride))


def issue_interval(p: int, q: int, taps: int, out_cols: int, nonzeros: int | None = None, stride: int = 1) -> int:
    """Edges from a pass's accepted command to the next one's, passes back to back: fill, the columns,
    and one edge for the controller to return to idle."""
    return fill_cycles(p, q, taps) + _positive("out_cols", out_cols) * column_cycles(p, q, taps, nonzeros, stride) + 1


def pass_cycles(p: int, q: int, taps: int, out_cols: int, nonzeros: int | None = None, stride: int = 1) -> int:
    """Edges from a pass's accepted command to the edge transferring its last partial sum, alone."""
    return issue_interval(p, q, taps, out_cols, nonzeros, stride) - 1 + p


def last_pass_correction(p: int) -> int:
    """``pass_cycles - issue_interval``: what a sum of intervals adds to end on the last psum (p - 1)."""
    return _positive("p", p) - 1


def sequence_cycles(passes: Sequence[tuple]) -> int:
    """Edges from the first command to the last partial sum of ``(p, q, taps, out_cols, nonzeros[, stride])``
    passes run back to back, every command waiting in line.

    Each command is accepted one edge after the previous pass's last column ends; a pass's first column
    ends no earlier than the edge the previous pass's last psum drains (its psum buffers are reused).
    """
    passes = list(passes)
    if not passes:
        return 0
    command, drained = 0, 0  # edge of this pass's command; edge the previous pass's last psum left
    for p, q, taps, out_cols, nonzeros, *rest in passes:
        column = column_cycles(p, q, taps, nonzeros, *rest)
        first_end = max(command + fill_cycles(p, q, taps) + column, drained)
        last_end = first_end + (out_cols - 1) * column
        drained = last_end + p
        command = last_end + 1
    return drained


def estimated_nonzeros(p: int, q: int, taps: int, density: float) -> int:
    """The busiest PE's nonzero weights when every PE holds the layer's weight density ``d``:
    ``ceil(p*q*taps*d)`` (exact when the zeros spread evenly over the PEs' filter-row segments)."""
    return min(fill_cycles(p, q, taps), max(0, math.ceil(p * q * taps * float(density) - 1e-9)))


def as_manifest() -> dict[str, str]:
    """The formulas as text, for a generated design's manifest."""
    return {
        "fill": "p*q*taps",
        "column": "max(nonzeros, p, q*min(stride, taps))  (nonzeros = p*q*taps unless zero weights are skipped)",
        "issue_interval": "fill + out_cols*column + 1",
        "pass": "fill + out_cols*column + p",
        "from": "edge accepting cmd",
        "to": "edge transferring the last partial sum",
        "sequence": "intervals of all passes but the last plus the last pass's cycles; a pass's first column "
                    "ends no earlier than the previous pass's last psum",
        "geometry": f"equal row and column strides up to max_stride, dilation {RTL_DILATION} "
                    "(rs_timing.runs_geometry)",
        "python": "codesign.contract.rs_timing.pass_cycles, issue_interval, sequence_cycles",
    }

