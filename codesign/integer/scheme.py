"""The integer arithmetic of inference, defined once: quantization parameters, fixed-point requantization,
batch-norm folding. The integer reference, the compiler and the executor all compute with these functions.

Scheme (Jacob et al., "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference", CVPR 2018; the TFLite / gemmlowp scheme; docs/integer-inference.md):

* real = scale * (q - zero_point), q an int8 code in -128..127.
* Activations per tensor. A tensor never negative in calibration takes s = clip / 255, z = -128 (the 256 unsigned
  codes of the accuracy proxy, shifted into int8); any other s = clip / 127, z = 0 (symmetric codes -127..127).
* Weights per output channel, symmetric: s_w = clip_ch / 127, z = 0, codes -127..127.
* A requantization multiplier m > 0 is the pair (M, S) with M = round(m * 2^S) in [2^30, 2^31) and
  ``requantize(x, M, S) = (x * M + 2^(S-1)) >> S`` (an arithmetic shift: round half up), computed in 64 bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "QMIN", "QMAX", "MULTIPLIER_BITS", "MAX_SHIFT", "QParams", "activation_qparams", "quantize", "dequantize",
    "quantize_multiplier", "requantize", "requantize_exact", "quantize_weights", "quantize_bias",
    "fold_batchnorm", "clamp_code",
]

QMIN, QMAX = -128, 127
MULTIPLIER_BITS = 31  # M < 2^31: a non-negative int32
MAX_SHIFT = 62


@dataclass(frozen=True)
class QParams:
    """Per-tensor quantization of an activation: real = scale * (q - zero_point)."""

    scale: float
    zero_point: int

    def real_range(self) -> tuple[float, float]:
        """Real values of the codes -128 and 127."""
        return (self.scale * (QMIN - self.zero_point), self.scale * (QMAX - self.zero_point))


def activation_qparams(clip: float, unsigned: bool) -> QParams:
    """int8 parameters of a tensor clipped at ``clip``: unsigned (never negative) z = -128, s = clip / 255;
    signed z = 0, s = clip / 127. A tensor that was 0 throughout calibration gets scale 1 (it quantizes to 0)."""
    if not clip > 0 or not math.isfinite(clip):
        return QParams(1.0, QMIN if unsigned else 0)
    return QParams(float(clip) / 255.0, QMIN) if unsigned else QParams(float(clip) / 127.0, 0)


def quantize(x: np.ndarray, qp: QParams, low: int = QMIN, high: int = QMAX) -> np.ndarray:
    """int8 codes of real values: clamp(round(x / s) + z), round half to even as torch.round does (float64)."""
    q = np.rint(np.asarray(x, dtype=np.float64) / qp.scale) + qp.zero_point
    return np.clip(q, low, high).astype(np.int64)


def dequantize(q: np.ndarray, qp: QParams) -> np.ndarray:
    return qp.scale * (np.asarray(q, dtype=np.float64) - qp.zero_point)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(M, S) with M / 2^S the nearest such fraction to ``real`` and M in [2^30, 2^31); 0 is (0, 1).

    ``real`` below 2^-31 is 0 at int8 precision for any accumulator a 2^31 bound allows but is still represented
    (S up to 62, M then smaller than 2^30 only when even S = 62 cannot normalise it)."""
    if not real > 0:
        return 0, 1
    if not math.isfinite(real):
        raise ValueError(f"requantization multiplier {real!r} is not finite")
    mantissa, exponent = math.frexp(real)  # real = mantissa * 2^exponent, mantissa in [0.5, 1)
    shift = MULTIPLIER_BITS - exponent
    if shift < 1:
        raise ValueError(f"requantization multiplier {real:g} is too large for a 31-bit fixed-point multiplier")
    shift = min(shift, MAX_SHIFT)
    multiplier = round(real * 2.0**shift)
    if multiplier >= 1 << MULTIPLIER_BITS:  # rounding reached 2^31: one bit less precision
        multiplier //= 2
        shift -= 1
    return int(multiplier), int(shift)


def requantize(x: np.ndarray, multiplier, shift) -> np.ndarray:
    """(x * M + 2^(S-1)) >> S elementwise in int64 (M, S scalars or broadcasting arrays)."""
    x = np.asarray(x, dtype=np.int64)
    m = np.asarray(multiplier, dtype=np.int64)
    s = np.asarray(shift, dtype=np.int64)
    return (x * m + (np.int64(1) << (s - 1))) >> s


def requantize_exact(x: int, multiplier: int, shift: int) -> int:
    """The same formula in Python's unbounded integers: floor(x * M / 2^S + 1/2)."""
    return (int(x) * int(multiplier) + (1 << (int(shift) - 1))) >> int(shift)


def clamp_code(x: np.ndarray, low: int = QMIN, high: int = QMAX) -> np.ndarray:
    return np.clip(np.asarray(x, dtype=np.int64), low, high)


def quantize_weights(weight: np.ndarray, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 codes, per-channel scales) of ``weight`` (output channel first) with per-channel ``clips``:
    s = clip / 127, q = clamp(round(w / s), -127, 127); an all-zero channel has scale 1 and codes 0."""
    w = np.asarray(weight, dtype=np.float64)
    clips = np.asarray(clips, dtype=np.float64).reshape(-1)
    scales = np.where(clips > 0, clips / 127.0, 1.0)
    shape = (-1,) + (1,) * (w.ndim - 1)
    q = np.clip(np.rint(w / scales.reshape(shape)), -127, 127).astype(np.int64)
    return q, scales


def quantize_bias(bias: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """int32 bias at the accumulator's scale (input scale x weight scale per channel), saturating."""
    q = np.rint(np.asarray(bias, dtype=np.float64) / np.asarray(scales, dtype=np.float64))
    return np.clip(q, -(2**31), 2**31 - 1).astype(np.int64)


def fold_batchnorm(weight: np.ndarray, bias: np.ndarray | None, gamma, beta, mean, var, eps: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Conv (or linear) followed by batch norm at inference as one conv: w' = w * g, b' = (b - mean) * g + beta with
    g = gamma / sqrt(var + eps) per output channel (float64). gamma / beta None: 1 / 0 (affine=False)."""
    w = np.asarray(weight, dtype=np.float64)
    channels = w.shape[0]
    b = np.zeros(channels) if bias is None else np.asarray(bias, dtype=np.float64)
    gamma = np.ones(channels) if gamma is None else np.asarray(gamma, dtype=np.float64)
    beta = np.zeros(channels) if beta is None else np.asarray(beta, dtype=np.float64)
    g = gamma / np.sqrt(np.asarray(var, dtype=np.float64) + eps)
    shape = (-1,) + (1,) * (w.ndim - 1)
    return w * g.reshape(shape), (b - np.asarray(mean, dtype=np.float64)) * g + beta
