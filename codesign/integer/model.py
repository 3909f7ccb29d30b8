"""A network in integer form: every step's int8 / int32 parameters from the float model's tensors and the
calibrated ranges (docs/integer-inference.md). The integer reference, the compiler's weight image and its
manifest are all read from one ``QuantizedNet``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codesign.integer.graph import NetGraph, Step, UnsupportedOpError
from codesign.integer.scheme import (
    QMAX, QMIN, QParams, quantize_bias, quantize_multiplier, quantize_weights,
)

__all__ = ["OutputTail", "QStep", "QuantizedNet", "Prepared", "prepare", "quantize_net", "apply_tail", "code_bound",
           "check_accumulators"]


@dataclass(frozen=True)
class OutputTail:
    """The end of every output path, on a requantized value v (int64): with a table,
    c = clamp(v + zp_pre, pre_low, pre_high), y = table[c + 128] - 128; without one, y = v + zp_out;
    then y = clamp(y, low, high). ``table`` is the LUT ROM (256 codes 0..255, offset binary)."""

    zp_out: int
    low: int = QMIN
    high: int = QMAX
    table: np.ndarray | None = None
    zp_pre: int = 0
    pre_low: int = QMIN
    pre_high: int = QMAX


def apply_tail(v: np.ndarray, tail: OutputTail) -> np.ndarray:
    """The tail's codes of requantized values ``v``."""
    v = np.asarray(v, dtype=np.int64)
    if tail.table is not None:
        c = np.clip(v + tail.zp_pre, tail.pre_low, tail.pre_high)
        y = tail.table[c + 128] - 128
    else:
        y = v + tail.zp_out
    return np.clip(y, tail.low, tail.high)


@dataclass
class QStep:
    """A step with its integer parameters.

    mac: ``weight`` int8 codes [K, C/G, R, S], ``weight_scale`` [K], ``bias`` int32 at the accumulator scale,
    ``multiplier`` / ``shift`` per output channel. add: ``multiplier`` (A1, A2) and one ``shift``. act / avgpool:
    one ``multiplier`` / ``shift``. ``zero_points``: of the inputs; ``tail``: the output path's end.
    """

    step: Step
    inputs: tuple[QParams, ...]
    output: QParams
    tail: OutputTail
    weight: np.ndarray | None = None
    weight_scale: np.ndarray | None = None
    bias: np.ndarray | None = None
    multiplier: np.ndarray | None = None
    shift: np.ndarray | None = None

    @property
    def name(self) -> str:
        return self.step.name

    @property
    def kind(self) -> str:
        return self.step.kind


@dataclass
class QuantizedNet:
    graph: NetGraph
    qparams: dict[str, QParams]
    steps: list[QStep]
    input_name: str
    output_name: str
    notes: list[str] = field(default_factory=list)

    @property
    def input_qparams(self) -> QParams:
        return self.qparams[self.input_name]

    @property
    def output_qparams(self) -> QParams:
        return self.qparams[self.output_name]


@dataclass
class Prepared:
    """The float model as calibrated (the proxy's copy), its exported program, workload and calibration inputs."""

    model: Any
    program: Any
    workload: Any
    calibration_inputs: tuple
    example_inputs: tuple


def prepare(model: Any, example_inputs: Any, *, calibration: Any = 16, seed: int = 0, reestimate_bn: bool = False,
            batch_size: int = 32, name: str | None = None) -> Prepared:
    """Copy ``model`` as the accuracy proxy calibrates it (``accuracy.calibration_model``), export and capture it."""
    import torch

    from codesign.accuracy import calibration_model
    from codesign.capture import from_torch
    from codesign.capture.export import as_input_tuple, export_model

    example = as_input_tuple(example_inputs)
    copy, inputs = calibration_model(model, example, calibration=calibration, seed=seed, reestimate_bn=reestimate_bn,
                                     batch_size=batch_size)
    for module in copy.modules():  # the proxy's observation hooks are off; drop them before export
        module._forward_pre_hooks.clear()
    program = export_model(copy, example)
    with torch.no_grad():
        workload = from_torch(program, example, name=name or type(model).__name__)
    return Prepared(copy, program, workload, inputs, example)


def code_bound(value: float, qp: QParams) -> int:
    """The int8 code of a real clamp bound in a tensor's quantization (infinite: the code range's end)."""
    if value == -math.inf:
        return QMIN
    if value == math.inf:
        return QMAX
    return int(np.clip(np.rint(value / qp.scale) + qp.zero_point, QMIN, QMAX))


def _tail(step: Step, qparams: dict[str, QParams], out: QParams) -> tuple[OutputTail, QParams]:
    """The output tail of a step and the quantization its requantization targets (the table's input, or the
    output)."""
    act = step.activation
    if act.lut is None:
        low = max(code_bound(act.pre_low, out), code_bound(act.post_low, out))
        high = min(code_bound(act.pre_high, out), code_bound(act.post_high, out))
        return OutputTail(zp_out=out.zero_point, low=low, high=high), out
    from hdl.lut import lut_table

    pre = qparams[act.lut_input]
    table = lut_table(act.lut, 8, 8, pre.real_range(), out.real_range()).astype(np.int64)
    tail = OutputTail(zp_out=out.zero_point, low=code_bound(act.post_low, out), high=code_bound(act.post_high, out),
                      table=table, zp_pre=pre.zero_point, pre_low=code_bound(act.pre_low, pre),
                      pre_high=code_bound(act.pre_high, pre))
    return tail, pre


def _multipliers(reals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = [quantize_multiplier(float(r)) for r in np.asarray(reals, dtype=np.float64).reshape(-1)]
    return np.array([p[0] for p in pairs], dtype=np.int64), np.array([p[1] for p in pairs], dtype=np.int64)


def quantize_net(graph: NetGraph, qparams: dict[str, QParams], clipping: Any = "mse") -> QuantizedNet:
    """Integer parameters of every step of ``graph`` from the calibrated ``qparams`` (extended here to aliases and
    max pools, which keep their input's quantization)."""
    import torch

    from codesign.accuracy import weight_clips

    qparams = dict(qparams)
    steps = []
    for step in graph.steps:
        if step.kind in ("alias", "maxpool"):
            qparams[step.output] = qparams[step.inputs[0]]
        ins = tuple(qparams[name] for name in step.inputs)
        out = qparams[step.output]
        if step.kind == "mac":
            tail, target = _tail(step, qparams, out)
            weight_clipping = "mse" if clipping == "mse" else "max"
            clips = weight_clips(torch.from_numpy(step.weight.astype(np.float32)), 8, weight_clipping).numpy()
            codes, w_scale = quantize_weights(step.weight, clips)
            acc_scale = ins[0].scale * w_scale
            bias = quantize_bias(step.bias, acc_scale)
            multiplier, shift = _multipliers(acc_scale / target.scale)
            steps.append(QStep(step, ins, out, tail, codes, w_scale, bias, multiplier, shift))
        elif step.kind == "add":
            ratios = [ins[0].scale / out.scale, ins[1].scale / out.scale]
            big, shift = quantize_multiplier(max(ratios))
            multipliers = np.array([round(r * 2.0**shift) for r in ratios], dtype=np.int64)
            if big == 0:
                multipliers[:] = 0
            steps.append(QStep(step, ins, out, OutputTail(zp_out=out.zero_point), multiplier=multipliers,
                               shift=np.array([shift], dtype=np.int64)))
        elif step.kind == "act":
            tail, target = _tail(step, qparams, out)
            m, s = quantize_multiplier(ins[0].scale / target.scale)
            steps.append(QStep(step, ins, out, tail, multiplier=np.array([m]), shift=np.array([s])))
        elif step.kind == "avgpool":
            kh, kw = step.geometry.kernel
            m, s = quantize_multiplier(ins[0].scale / (out.scale * kh * kw))
            steps.append(QStep(step, ins, out, OutputTail(zp_out=out.zero_point), multiplier=np.array([m]),
                               shift=np.array([s])))
        else:
            steps.append(QStep(step, ins, out, OutputTail(zp_out=out.zero_point)))
    return QuantizedNet(graph, qparams, steps, graph.inputs[0], graph.outputs[0])


def check_accumulators(net: QuantizedNet) -> None:
    """UnsupportedOpError when a MAC layer's int32 bias (with its zero-point term) or a worst-case sum leaves int32."""
    for q in net.steps:
        if q.kind != "mac":
            continue
        worst = np.abs(q.weight).reshape(q.weight.shape[0], -1).sum(axis=1) * 255 + np.abs(q.bias)
        if int(worst.max(initial=0)) >= 2**31:
            raise UnsupportedOpError(f"layer {q.name}: a sum of its int8 products and bias can exceed int32")
