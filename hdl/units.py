"""The stand-alone units of docs/hdl-units.md by name: what ``codesign hdl --unit`` writes and ``codesign
verify --unit`` checks.

Each entry of ``UNITS`` names a generator of ``hdl/binary.py``, ``hdl/lut.py`` or ``hdl/softmax.py``,
its parameters with their defaults, the Verilog top name they give, and the manifest facts a testbench
needs beyond the ports (bit order, timing, reset). ``unit_params`` checks a choice of parameters by
building the component once, so a bad value is a one-line ``HdlError`` before anything is written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from codesign.errors import HdlError
from hdl.binary import (
    ThresholdUnit,
    XnorPopcountArray,
    XnorPopcountPE,
    XnorThresholdArray,
    dot_bits,
)
from hdl.emit import EmittedDesign, emit, prepare_out_dir
from hdl.lut import FUNCTIONS, TYPICAL_RANGES, LutActivation
from hdl.softmax import SoftmaxUnit

__all__ = ["UnitKind", "UnitParams", "UNITS", "UNIT_NAMES", "unit_params", "unit_manifest_extra", "emit_unit"]

DOCS = "docs/hdl-units.md"
_BIT_ORDER = "reduction element t*word_bits + i in bit i of word t (bit 0 = least significant); bit 1 = +1, bit 0 = -1"


@dataclass(frozen=True)
class UnitKind:
    """One unit: its CLI name, what it is, its parameters' defaults, how to build it and name its module."""

    name: str
    summary: str
    defaults: tuple[tuple[str, Any], ...]
    build: Callable[..., Any]  # keyword parameters -> the component (raises HdlError for bad values)
    top: Callable[[Mapping[str, Any]], str]
    docs: str  # section of docs/hdl-units.md

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.defaults)


@dataclass(frozen=True)
class UnitParams:
    """A unit and the values of all its parameters (checked by ``unit_params``)."""

    unit: str
    values: tuple[tuple[str, Any], ...]

    @property
    def kind(self) -> UnitKind:
        return UNITS[self.unit]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.values)

    @property
    def top_name(self) -> str:
        return self.kind.top(self.as_dict())

    def build(self) -> Any:
        """A fresh component of these parameters."""
        return self.kind.build(**self.as_dict())

    def model(self) -> Any:
        """A component of these parameters used only for its numpy models (tables, ``model``), not elaborated."""
        component = self.build()
        _mark_used(component)
        return component


def _lut(function: str, in_bits: int, out_bits: int, in_range, out_range, latency: int) -> LutActivation:
    if not isinstance(function, str) or function not in FUNCTIONS:
        raise HdlError(f"unknown LUT function {function!r}; known: {', '.join(sorted(FUNCTIONS))}")
    typical_in, typical_out = TYPICAL_RANGES[function]
    return LutActivation(function, in_bits, out_bits, typical_in if in_range is None else in_range,
                         typical_out if out_range is None else out_range, latency=latency)


def _lut_top(p: Mapping[str, Any]) -> str:
    return f"lut_{p['function']}_{p['in_bits']}to{p['out_bits']}" + ("_comb" if p["latency"] == 0 else "")


UNITS: dict[str, UnitKind] = {kind.name: kind for kind in (
    UnitKind("xnor-pe", "one XNOR-popcount PE: the {-1,+1} dot of two packed words and a registered accumulator",
             (("word_bits", 32), ("acc_bits", 16)), XnorPopcountPE,
             lambda p: f"xnor_pe_w{p['word_bits']}_acc{p['acc_bits']}", "binarized-units-hdlbinarypy"),
    UnitKind("xnor-array", "rows x cols XNOR-popcount PEs, operands broadcast along rows and columns",
             (("rows", 4), ("cols", 4), ("word_bits", 32), ("acc_bits", 16)), XnorPopcountArray,
             lambda p: f"xnor_array_{p['rows']}x{p['cols']}_w{p['word_bits']}_acc{p['acc_bits']}",
             "binarized-units-hdlbinarypy"),
    UnitKind("xnor-threshold-array", "an XNOR-popcount array whose sums go through per-column thresholds",
             (("rows", 4), ("cols", 4), ("word_bits", 32), ("acc_bits", 16)), XnorThresholdArray,
             lambda p: f"xnor_threshold_array_{p['rows']}x{p['cols']}_w{p['word_bits']}_acc{p['acc_bits']}",
             "binarized-units-hdlbinarypy"),
    UnitKind("threshold", "batch norm + sign folded into a compare per channel (combinational)",
             (("channels", 8), ("acc_bits", 16)), ThresholdUnit,
             lambda p: f"threshold_{p['channels']}ch_acc{p['acc_bits']}", "binarized-units-hdlbinarypy"),
    UnitKind("lut", "a ROM activation: y = table[x] of a function quantized on a fixed grid",
             (("function", "sigmoid"), ("in_bits", 8), ("out_bits", 8), ("in_range", None), ("out_range", None),
              ("latency", 1)), _lut, _lut_top, "lut-activations-hdllutpy"),
    UnitKind("softmax", "streaming softmax over vectors of up to n_max codes (exp and reciprocal tables)",
             (("n_max", 16), ("in_bits", 8), ("in_scale", 1 / 16), ("exp_in_bits", 8), ("exp_bits", 12),
              ("recip_in_bits", 8), ("recip_bits", 12), ("out_bits", 8)), SoftmaxUnit,
             lambda p: f"softmax_n{p['n_max']}_i{p['in_bits']}_o{p['out_bits']}", "softmax-hdlsoftmaxpy"),
)}
UNIT_NAMES = tuple(UNITS)


def _mark_used(component: Any) -> None:
    """A component built only to check parameters (and the sub-components its constructor made) is not an
    unused design: no Amaranth warning."""
    from amaranth.hdl import Elaboratable

    for part in (component, *vars(component).values()):
        if isinstance(part, Elaboratable):
            part._MustUse__used = True


def unit_params(unit: str, **given: Any) -> UnitParams:
    """The ``UnitParams`` of ``unit`` with ``given`` values over its defaults, checked by building it once.

    Raises HdlError for an unknown unit, a parameter the unit does not have, or a value its generator
    refuses (the generator's one-line message). A LUT's missing ``in_range`` / ``out_range`` become the
    function's ``hdl.lut.TYPICAL_RANGES``.
    """
    if unit not in UNITS:
        raise HdlError(f"unknown unit {unit!r}; choose one of {', '.join(UNIT_NAMES)}")
    kind = UNITS[unit]
    unknown = sorted(set(given) - set(kind.parameters))
    if unknown:
        raise HdlError(f"unit {unit} has no parameter {unknown[0]!r}; its parameters: {', '.join(kind.parameters)}")
    values = {name: given.get(name, default) for name, default in kind.defaults}
    component = kind.build(**values)
    _mark_used(component)
    if unit == "lut":
        values["in_range"], values["out_range"] = tuple(component.in_range), tuple(component.out_range)
    if unit == "softmax":
        values["in_scale"] = component.in_scale
    return UnitParams(unit, tuple(values.items()))


# --- manifest facts per unit ---------------------------------------------------------------------------

def _xnor_notes(c: Any, array: bool) -> dict[str, str]:
    a, w, acc = ("a__<r>", "w__<c>", "acc__<r>__<c>") if array else ("a", "w", "acc")
    notes = {
        a: f"packed word of {c.word_bits} binary values ({_BIT_ORDER})" + (": row r's word" if array else ""),
        w: f"packed word of {c.word_bits} binary values, same bit order" + (": column c's word" if array else ""),
        "n_valid": f"valid low bits of this beat, 0..{c.word_bits}; a K-long reduction streams ceil(K / "
                   f"{c.word_bits}) words, all full but the last, which has K - (words - 1) * {c.word_bits} "
                   f"(a full word when K is a multiple of {c.word_bits}); values above {c.word_bits} are outside "
                   "the contract (docs/hdl-units.md)",
        "en": "accumulate this beat on the rising edge",
        "clear": "start a new sum: with en, acc <= dot; without en, acc <= 0",
        acc: f"signed {c.acc_bits} bits, registered; wraps modulo 2**{c.acc_bits} (acc_bits >= bit_length(K) + 1 "
             "holds any K-long reduction)",
    }
    if not array:
        notes["dot"] = (f"signed {dot_bits(c.word_bits)} bits, combinational: 2 * popcount(~(a ^ w) & "
                        "((1 << n_valid) - 1)) - n_valid")
    return notes


def _threshold_notes(channels_name: str, acc_bits: int, channels: int) -> dict[str, str]:
    return {
        f"thr__<{channels_name}>": f"signed {acc_bits + 1} bits: threshold of {channels_name} (from "
                                   "hdl.binary.fold_batchnorm(..., k=K), which clamps thresholds to [-K, K + 1] so they "
                                   "fit; without k they do not fit this port and are truncated)",
        "flip": f"{channels} bits, bit {channels_name} inverts {channels_name}'s output (negative batch-norm gamma)",
    }


def unit_manifest_extra(params: UnitParams, component: Any) -> dict[str, Any]:
    """What a testbench needs beyond port names and widths: conventions, timing and reset, per unit."""
    c, unit = component, params.unit
    extra: dict[str, Any] = {"unit": unit, "docs": f"{DOCS}#{params.kind.docs}", "summary": params.kind.summary}
    if unit in ("xnor-pe", "xnor-array", "xnor-threshold-array"):
        array = unit != "xnor-pe"
        notes = _xnor_notes(c, array)
        extra["timing"] = {
            "latency_edges": {"acc": 1} | ({} if array else {"dot": 0}) | (
                {"out": 1} if unit == "xnor-threshold-array" else {}),
            "reduction_edges": "ceil(K / word_bits): one word per rising edge; acc holds the sum after the last "
                               "word's edge",
        }
        extra["reset"] = "rst (synchronous, active high) clears every acc to 0"
        if unit == "xnor-threshold-array":
            notes |= _threshold_notes("c", c.acc_bits, c.cols)
            notes["out__<r>"] = (f"{c.cols} bits, bit c = (acc[r][c] >= thr[c]) xor flip[c] (bit 1 = +1): row r's "
                                 "activations packed as the next layer's word, combinational from acc")
        extra["port_notes"] = notes
        extra["bit_convention"] = _BIT_ORDER
    elif unit == "threshold":
        notes = {"dot__<c>": f"signed {c.acc_bits} bits: channel c's sum"}
        notes |= _threshold_notes("c", c.acc_bits, c.channels)
        notes["out"] = f"{c.channels} bits, bit c = (dot[c] >= thr[c]) xor flip[c] (bit 1 = +1)"
        extra["timing"] = {"latency_edges": {"out": 0}, "clocked": False}
        extra["reset"] = "none: combinational, no clk or rst port"
        extra["port_notes"] = notes
    elif unit == "lut":
        extra["port_notes"] = {
            "x": f"{c.in_bits}-bit input code q: real x(q) = {c.in_range[0]:g} + q * {c.in_step:.9g}",
            "y": f"{c.out_bits}-bit output code: real value {c.out_range[0]:g} + y * {c.out_step:.9g}",
        }
        extra["quantization"] = {"in_range": list(c.in_range), "out_range": list(c.out_range),
                                 "in_step": c.in_step, "out_step": c.out_step,
                                 "table_error_bound": c.error_bound(),
                                 "table": "table[q] = clip(floor((f(x(q)) - out_lo) / out_step + 1/2), 0, 2**out_bits - 1)"}
        if c.latency:
            extra["timing"] = {"latency_edges": {"y": 1}, "clocked": True}
            extra["reset"] = ("rst is not used: after every rising edge y = table[x at that edge], in reset or not; "
                              "before the first edge y is undefined")
        else:
            extra["timing"] = {"latency_edges": {"y": 0}, "clocked": False}
            extra["reset"] = "none: combinational, no clk or rst port"
    elif unit == "softmax":
        extra["port_notes"] = {
            "x": f"signed {c.in_bits}-bit input code, real value x * {c.in_scale:g}",
            "x_valid/x_ready/x_last": "input stream: a transfer on a rising edge with x_valid and x_ready high; a "
                                      f"vector ends at x_last or at its {c.n_max}-th element",
            "y": f"{c.out_bits}-bit output code, real value y / 2**{c.out_bits}",
            "y_valid/y_ready/y_last": "output stream: y_last marks the vector's last element",
        }
        extra["timing"] = {
            "first_accept_to_last_output_edges": "3*n + 3",
            "period_edges": "3*n + 4",
            "counting": "edges counted from the edge accepting the vector's first element (edge 0), y_ready high; "
                        "the period is the edge accepting the next vector's first element",
        }
        extra["reset"] = "rst (synchronous, active high): the unit waits for a vector's first element, x_ready high"
    return extra


def emit_unit(params: UnitParams, out_dir: str | os.PathLike) -> EmittedDesign:
    """Write the unit of ``params`` as ``<top>.v`` and ``manifest.json`` into ``out_dir`` (as ``emit_core``)."""
    prepare_out_dir(out_dir)
    component = params.build()
    parameters = {name: list(value) if isinstance(value, tuple) else value for name, value in params.values}
    return emit(component, params.top_name, out_dir, parameters, kind=params.unit.replace("-", "_"),
                extra=unit_manifest_extra(params, component))
