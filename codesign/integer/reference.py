"""The integer reference: each step of a ``QuantizedNet`` computed in numpy on int8 NCHW tensors, directly from its
definition (a conv as sum (q - z) * w + bias over the padded image), independent of any hardware program; and
its output's SQNR against the float model it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from codesign.integer.model import QStep, QuantizedNet, apply_tail
from codesign.integer.scheme import dequantize, quantize, requantize

__all__ = ["run_reference", "quantize_input", "conv_accumulate", "ReferenceResult", "evaluate", "build_integer_net"]


def quantize_input(net: QuantizedNet, x: np.ndarray) -> np.ndarray:
    """int8 codes (NCHW, int64) of a real network input."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x.reshape(*x.shape, 1, 1)
    return quantize(x, net.input_qparams)


def conv_accumulate(x: np.ndarray, zero_point: int, weight: np.ndarray, bias: np.ndarray, stride, padding,
                    dilation, groups: int) -> np.ndarray:
    """int64 accumulators [N, K, P, Q] of sum over (c, r, s) of (x - zero_point) * weight + bias; padding is the real
    value 0, i.e. code ``zero_point``."""
    d = np.asarray(x, dtype=np.int64) - zero_point
    n, c, h, w = d.shape
    k, cg, r, s = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    padded = np.pad(d, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    p = (h + 2 * ph - dh * (r - 1) - 1) // sh + 1
    q = (w + 2 * pw - dw * (s - 1) - 1) // sw + 1
    kg = k // groups
    out = np.empty((n, k, p, q), dtype=np.int64)
    for g in range(groups):
        part = padded[:, g * cg:(g + 1) * cg]
        cols = np.empty((n, cg, r, s, p, q), dtype=np.int64)
        for i in range(r):
            for j in range(s):
                rows = slice(i * dh, i * dh + sh * (p - 1) + 1, sh)
                cols[:, :, i, j] = part[:, :, rows, j * dw: j * dw + sw * (q - 1) + 1: sw]
        wg = weight[g * kg:(g + 1) * kg].reshape(kg, -1)
        out[:, g * kg:(g + 1) * kg] = np.einsum("kx,nxpq->nkpq", wg, cols.reshape(n, cg * r * s, p, q))
    return out + np.asarray(bias, dtype=np.int64).reshape(1, -1, 1, 1)


def _pool_windows(d: np.ndarray, kernel, stride, padding, fill) -> np.ndarray:
    """[N, C, P, Q, R*S] windows of ``d`` padded with ``fill``."""
    n, c, h, w = d.shape
    (r, s), (sh, sw), (ph, pw) = kernel, stride, padding
    padded = np.pad(d, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    p = (h + 2 * ph - r) // sh + 1
    q = (w + 2 * pw - s) // sw + 1
    windows = np.empty((n, c, p, q, r * s), dtype=np.int64)
    for i in range(r):
        for j in range(s):
            windows[..., i * s + j] = padded[:, :, i: i + sh * (p - 1) + 1: sh, j: j + sw * (q - 1) + 1: sw]
    return windows


def _run_step(q: QStep, tensors: dict[str, np.ndarray]) -> np.ndarray:
    step = q.step
    x = tensors[step.inputs[0]]
    if step.kind == "mac":
        g = step.geometry
        acc = conv_accumulate(x, q.inputs[0].zero_point, q.weight, q.bias, g.stride, g.padding, g.dilation, g.groups)
        v = requantize(acc, q.multiplier.reshape(1, -1, 1, 1), q.shift.reshape(1, -1, 1, 1))
        return apply_tail(v, q.tail)
    if step.kind == "add":
        y = tensors[step.inputs[1]]
        d1 = x - q.inputs[0].zero_point
        d2 = y - q.inputs[1].zero_point
        s = int(q.shift[0])
        total = d1 * int(q.multiplier[0]) + d2 * int(q.multiplier[1])
        return apply_tail((total + (1 << (s - 1))) >> s, q.tail)
    if step.kind == "act":
        v = requantize(x - q.inputs[0].zero_point, int(q.multiplier[0]), int(q.shift[0]))
        return apply_tail(v, q.tail)
    if step.kind == "avgpool":
        g = step.geometry
        windows = _pool_windows(x - q.inputs[0].zero_point, g.kernel, g.stride, g.padding, 0)
        v = requantize(windows.sum(axis=-1), int(q.multiplier[0]), int(q.shift[0]))
        return apply_tail(v, q.tail)
    if step.kind == "maxpool":
        g = step.geometry
        return _pool_windows(x, g.kernel, g.stride, g.padding, -(1 << 20)).max(axis=-1)
    return x.reshape(step.output_shape)


def run_reference(net: QuantizedNet, x_codes: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor (int8 codes, NCHW int64) of the network on input codes ``x_codes``."""
    tensors = {net.input_name: np.asarray(x_codes, dtype=np.int64).reshape(net.graph.shapes[net.input_name])}
    for q in net.steps:
        tensors[q.step.output] = _run_step(q, tensors)
    return tensors


@dataclass(frozen=True)
class ReferenceResult:
    """SQNR in dB of the integer reference's dequantized output against the float model over ``samples`` inputs."""

    sqnr_db: float
    samples: int


def evaluate(net: QuantizedNet, module: Any, inputs: tuple) -> ReferenceResult:
    """Run the float graph (``module``: the exported program's ``.module()``) and the integer reference on each
    sample of ``inputs`` (batches of the graph's batch size) and compare the outputs."""
    from codesign.integer.calibrate import run_graph, torch_threads

    with torch_threads(1):
        return _evaluate(net, module, inputs, run_graph)


def _evaluate(net, module, inputs, run_graph) -> ReferenceResult:
    import math

    import torch

    batch = net.graph.shapes[net.input_name][0]
    signal = noise = 0.0
    count = int(inputs[0].shape[0])
    for start in range(0, count - batch + 1, batch):
        sample = tuple(t[start:start + batch] for t in inputs)
        reference, _ = run_graph(module, sample)
        ref = (reference[0] if isinstance(reference, (tuple, list)) else reference).detach().to(torch.float64).numpy()
        codes = run_reference(net, quantize_input(net, sample[0].numpy()))[net.output_name]
        out = dequantize(codes, net.output_qparams).reshape(ref.shape)
        signal += float((ref * ref).sum())
        noise += float(((ref - out) ** 2).sum())
    sqnr = math.inf if noise == 0 else (-math.inf if signal == 0 else 10 * math.log10(signal / noise))
    return ReferenceResult(sqnr, count // batch * batch)


def build_integer_net(model: Any, example_inputs: Any, *, chains: dict | None = None, calibration: Any = 16,
                      seed: int = 0, clipping: Any = "mse", reestimate_bn: bool = False, batch_size: int = 32):
    """(QuantizedNet, Prepared) of ``model``: calibrated as the accuracy proxy does; MAC output paths fused as in
    ``chains`` (default: the simulator's fusion plan of the captured workload)."""
    from codesign.integer.calibrate import torch_threads

    with torch_threads(1):
        return _build(model, example_inputs, chains, calibration, seed, clipping, reestimate_bn, batch_size)


def _build(model, example_inputs, chains, calibration, seed, clipping, reestimate_bn, batch_size):
    from codesign.integer.calibrate import observe_ranges, ranges_to_qparams
    from codesign.integer.graph import lower
    from codesign.integer.model import check_accumulators, prepare, quantize_net

    prepared = prepare(model, example_inputs, calibration=calibration, seed=seed, reestimate_bn=reestimate_bn,
                       batch_size=batch_size)
    if chains is None:
        from sim.fusion import plan_fusion

        chains = plan_fusion(prepared.workload).chains
    graph = lower(prepared.program, prepared.workload, chains)
    batch = graph.shapes[graph.inputs[0]][0]
    observers = observe_ranges(prepared.program.module(), graph.observed(), prepared.calibration_inputs, batch,
                               clipping, batch_size)
    net = quantize_net(graph, ranges_to_qparams(observers), clipping)
    check_accumulators(net)
    return net, prepared
