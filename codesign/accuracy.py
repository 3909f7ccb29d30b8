"""Accuracy proxy: what a bit-width point costs in output fidelity, measured on the PyTorch model itself.

``accuracy_proxy(model, example_inputs, bits)`` fake-quantizes a deep copy of ``model`` at one bit-width point
and compares its outputs with float32 on the same evaluation inputs; ``accuracy_sweep`` does the same for several
points on one copy, one calibration and one float32 reference. The caller's model is never touched.

What is quantized, and where (the MAC layers: ``nn.Conv1d/2d/3d`` and ``nn.Linear``; transposed convolutions and
activation-by-activation matmuls, as in attention, stay float32):

* **Weights** of each MAC layer, symmetric per output channel (conv: dim 0 of the weight; linear: each row).
  At b >= 2 bits: ``q = clamp(round(w / s), -(2^(b-1)-1), 2^(b-1)-1) * s``, ``s = c_ch / (2^(b-1)-1)``, so
  zero stays zero and there is no -2^(b-1) code. The channel's clip ``c_ch`` is, with ``clipping='mse'`` (the
  default), the fraction r * max|w_ch| (r = 1, 0.95, ..., 0.05) of least squared error ``sum (q - w)^2`` over the
  channel, or max|w_ch| itself (``clipping='max'`` or a percentile). At 1 bit (XNOR-Net, Rastegari et al.,
  ECCV 2016): ``q = sign(w) * mean|w_ch|``, sign = +1 for w > 0 and -1 for w < 0, the mean over the channel's
  non-zero weights; an exactly zero (pruned) weight stays zero, so a dense channel takes exactly the two values
  +-mean|w_ch|. Biases stay float32 (they are added at accumulator precision).
* **Activations**: the input of each MAC layer (the operand the array streams), per tensor, by a forward
  pre-hook. Nothing else is quantized: batch norm, activation functions, residual adds, pooling, softmax and
  the model's outputs stay float32, as the accelerator computes them in the output path at accumulator precision.
  A tensor that was never negative during calibration (the output of a ReLU or ReLU6) uses the unsigned codes
  ``clamp(round(x / s), 0, 2^b-1) * s``, ``s = c / (2^b-1)``; any other tensor the signed symmetric ones,
  ``s = c / (2^(b-1)-1)`` (``unsigned_activations=False``: always signed, as a signed-int core needs). The clip
  ``c``: ``'mse'``, the fraction r * max|x| of least estimated squared error over the calibration data (the
  largest 1024 |x| of every calibration call exactly, the rest from a strided sample, about 2^12 values per
  call); ``'max'``, max |x| over the calibration inputs; a number P, the P-th percentile of |x| (per calibration
  batch, the largest over the batches). At 1 bit an activation is ``sign(x) * mean|x|`` (+1 for x > 0, else -1;
  mean|x| over the calibration inputs, a per-tensor constant that folds into the next threshold or batch norm).
* At 24 bits or more a layer's weights or activations are left in float32 (float32's significand has 24 bits,
  so a finer grid would change next to nothing).

Calibration runs the **float** model (the hooks only observe) on ``calibration`` seeded random inputs shaped like
the example inputs (standard normal, as the zoo's example inputs), or on given calibration data; it does not
depend on the bit-width point, so a sweep calibrates once. Evaluation inputs are ``evaluation`` seeded random
inputs from a generator stream of their own (seed 2s; calibration: 2s+1), so they are distinct from the
calibration inputs and neither changes with the other's count; or the user's data (``inputs=``: a tensor, a tuple
``(inputs, labels)``, a dict with ``inputs``/``labels``, or a ``torch.save`` file of one of those). With
user data, pass calibration data too: random-noise calibration rarely fits real images' ranges.

``reestimate_bn=True`` first replaces the copy's batch-norm running statistics by those of the calibration
inputs. That is for random-initialised models (the zoo's): their default statistics (mean 0, variance 1) let
activations vanish through depth until the outputs hardly depend on the input and any bit-width looks
harmless. Never for a trained model. The float32 reference is the same re-estimated copy.

Bits: ``Bits``, ``(w, a)``, an int ``n`` (``n/n``), ``"W,A"``, a ``BitsPolicy`` (name > op kind > default, as the
graph's; names are module names), or a mapping module name -> bits (layers it does not name stay float32).
``keep_ends=8`` keeps the first and the last MAC layer to run (in calibration order) at 8 bits at least, for
weights and activations, unless the policy or mapping names that layer.

The copies run in eval mode. Reported against float32 on the evaluation inputs: output SQNR in dB over every
output value (+inf when equal), top-1 agreement (share of inputs whose argmax matches float32's; outputs must be
(N, classes)), with labels the top-1 accuracy of both, and notes on what makes those figures weak (outputs that
ignore the input, one class predicted for most inputs). Every user error is one line: ``AccuracyError``
(inputs, labels, model, options) or ``BitWidthError`` (bit-widths).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from codesign.capture.precision import BitsPolicy, parse_bits
from codesign.errors import BitWidthError, CodesignError
from codesign.workload import MAX_BITS, MIN_BITS, Bits, OpKind

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "AccuracyError", "AccuracyResult", "accuracy_proxy", "accuracy_sweep", "fake_quantized", "quantize_weight",
    "quantize_activation", "load_inputs", "sqnr_db", "FLOAT_BITS", "SWEEP_POINTS", "RangeObserver", "weight_clips",
    "calibration_model",
]

FLOAT_BITS = 24  # at or above this a layer's tensor is left in float32
SWEEP_POINTS = (16, 8, 4, 2, 1)
MAX_SAMPLES = 1_000_000
_INPUT_KEYS = ("inputs", "images", "x", "data")
_LABEL_KEYS = ("labels", "targets", "y")


class AccuracyError(CodesignError):
    """The accuracy proxy cannot run: unreadable or ill-shaped inputs or labels, or an unsupported model."""


# ------------------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class AccuracyResult:
    """One bit-width point against float32 on the same evaluation inputs.

    ``sqnr_db``: 10 log10(sum ref^2 / sum (ref - q)^2) over every output value (+inf when equal);
    ``top1_agreement``: share of inputs whose argmax equals float32's (None when the output is not
    (N, classes)); ``top1_accuracy`` / ``float_top1_accuracy``: against the labels (None without labels);
    ``samples``: evaluation inputs; ``calibration_samples``: calibration inputs; ``bits``: the point in words;
    ``layer_bits``: (module name, weight bits, activation bits) of every MAC layer as it ran (32 = float32);
    ``notes``: what makes the figures weak here (outputs that ignore the input, one class predicted for most).
    """

    bits: str
    sqnr_db: float
    top1_agreement: float | None
    top1_accuracy: float | None
    float_top1_accuracy: float | None
    samples: int
    calibration_samples: int
    keep_ends: int | None = None
    layer_bits: tuple[tuple[str, int, int], ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: an infinite SQNR is the string "inf" (or "-inf")."""
        sqnr: float | str = self.sqnr_db
        if math.isinf(self.sqnr_db):
            sqnr = "inf" if self.sqnr_db > 0 else "-inf"
        return {
            "bits": self.bits,
            "sqnr_db": sqnr,
            "top1_agreement": self.top1_agreement,
            "top1_accuracy": self.top1_accuracy,
            "float_top1_accuracy": self.float_top1_accuracy,
            "samples": self.samples,
            "calibration_samples": self.calibration_samples,
            "keep_ends": self.keep_ends,
            "layer_bits": [{"layer": name, "weight": w, "activation": a} for name, w, a in self.layer_bits],
            "notes": list(self.notes),
        }


def sqnr_db(reference: "torch.Tensor", quantized: "torch.Tensor") -> float:
    """10 log10(sum ref^2 / sum (ref - q)^2) in float64; +inf when equal, -inf when ref is zero and q is not."""
    import torch

    ref = reference.detach().to(torch.float64).flatten()
    err = ref - quantized.detach().to(torch.float64).flatten()
    noise = float(torch.dot(err, err))
    signal = float(torch.dot(ref, ref))
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


# ----------------------------------------------------------------------------------------- quantizers


CLIPPING_FORMS = "'mse', 'max' or a percentile P in (0, 100) (activations; weights then use 'max')"
_CLIP_GRID = tuple(k / 20 for k in range(20, 0, -1))  # MSE search: clip = r * max, r = 1, 0.95, ..., 0.05
_SAMPLE = 1 << 12  # activation values sampled per call for the MSE search (at most 4x this per layer)
_TAIL = 1024  # largest |x| kept exactly per call


def _check_clipping(clipping: Any) -> None:
    if clipping in ("mse", "max"):
        return
    if isinstance(clipping, (int, float)) and not isinstance(clipping, bool) and 0 < clipping < 100:
        return
    raise AccuracyError(f"clipping {clipping!r} is not {CLIPPING_FORMS}")


def _uniform(x: "torch.Tensor", clip: Any, bits: int, unsigned: bool) -> "torch.Tensor":
    """Uniform fake quantization at ``bits`` clipped at ``clip`` (a float or a tensor broadcasting over ``x``):
    unsigned codes 0..2^b-1, else symmetric codes -(2^(b-1)-1)..2^(b-1)-1; zero stays zero."""
    import torch

    top = float(2**bits - 1) if unsigned else float(2 ** (bits - 1) - 1)
    if isinstance(clip, torch.Tensor):
        scale = torch.where(clip > 0, clip / top, torch.ones_like(clip))
    else:
        scale = clip / top if clip > 0 else 1.0
    return torch.clamp(torch.round(x / scale), 0.0 if unsigned else -top, top) * scale


def _grid_errors(values: "torch.Tensor", peak: "torch.Tensor", bits: int, unsigned: bool) -> "torch.Tensor":
    """(grid, rows): sum over each row of ``values`` (rows x n) of (q - x)^2 with the row clipped at r * ``peak``
    (rows x 1) for every r of ``_CLIP_GRID``; the grid in chunks of about 2^22 values."""
    import torch

    ratios = torch.tensor(_CLIP_GRID, dtype=values.dtype).reshape(-1, 1, 1)
    step = max(1, (1 << 22) // max(1, values.numel()))
    errors = []
    for start in range(0, len(_CLIP_GRID), step):
        clips = ratios[start:start + step] * peak  # (chunk, rows, 1)
        errors.append((_uniform(values, clips, bits, unsigned) - values).pow_(2).sum(dim=2))
    return torch.cat(errors)


def _mse_clip(values: "torch.Tensor", bits: int, unsigned: bool) -> "torch.Tensor":
    """Per row of ``values`` (channels x samples), the clip r * max|row| (r on ``_CLIP_GRID``) whose
    quantization error sum (q - x)^2 is least; ties keep the larger clip."""
    import torch

    peak = values.abs().amax(dim=1, keepdim=True)
    best = _grid_errors(values, peak, bits, unsigned).argmin(dim=0)  # first of equals: the larger clip
    ratios = torch.tensor(_CLIP_GRID, dtype=values.dtype)
    return ratios[best].reshape(-1, 1) * peak


def _activation_mse_clip(tail: "torch.Tensor", body: "torch.Tensor", weight: float, bits: int, unsigned: bool) -> float:
    """The clip r * max|x| (r on ``_CLIP_GRID``) of least estimated squared error: the exact error of the tail
    values (|x|) plus ``weight`` times that of the body sample; ties keep the larger clip."""
    import torch

    if not tail.numel():
        return 0.0
    peak = tail.max().reshape(1, 1).to(torch.float64)
    error = _grid_errors(tail.reshape(1, -1).to(torch.float64), peak, bits, unsigned)[:, 0]
    if body.numel():
        error = error + weight * _grid_errors(body.reshape(1, -1).to(torch.float64), peak, bits, unsigned)[:, 0]
    return float(peak) * _CLIP_GRID[int(error.argmin())]


def quantize_weight(weight: "torch.Tensor", bits: int, clipping: Any = "mse") -> "torch.Tensor":
    """Fake-quantize ``weight`` symmetric per output channel (dim 0) at ``bits``.

    b >= 2: codes -(2^(b-1)-1)..2^(b-1)-1 times the channel's scale clip / (2^(b-1)-1), the clip being the
    channel's max |w| (``clipping='max'`` or a percentile) or the fraction of it with the least squared error
    (``'mse'``). 1 bit: sign(w) * mean|w| over the channel's non-zero weights; a zero weight stays zero.
    """
    import torch

    _check_bits(bits, "weight")
    _check_clipping(clipping)
    w = weight.detach()
    if bits >= FLOAT_BITS:
        return w.clone()
    flat = (w.reshape(w.shape[0], -1) if w.dim() > 1 else w.reshape(-1, 1)).float()
    if bits == 1:
        nonzero = (flat != 0).to(flat.dtype)
        alpha = flat.abs().sum(dim=1, keepdim=True) / nonzero.sum(dim=1, keepdim=True).clamp(min=1)
        q = torch.where(flat > 0, alpha, -alpha) * nonzero
    else:
        q = _uniform(flat, weight_clips(flat, bits, clipping), bits, False)
    return q.reshape(w.shape).to(w.dtype)


def weight_clips(weight: "torch.Tensor", bits: int, clipping: Any = "mse") -> "torch.Tensor":
    """The per-output-channel clip (channels x 1, float32) ``quantize_weight`` uses at b >= 2 bits: max |w_ch|
    (``'max'`` or a percentile) or the fraction of it with the least squared error (``'mse'``)."""
    w = weight.detach()
    flat = (w.reshape(w.shape[0], -1) if w.dim() > 1 else w.reshape(-1, 1)).float()
    return _mse_clip(flat, bits, False) if clipping == "mse" else flat.abs().amax(dim=1, keepdim=True)


def quantize_activation(
    x: "torch.Tensor", bits: int, clip: float, *, unsigned: bool = False, mean_abs: float | None = None
) -> "torch.Tensor":
    """Fake-quantize ``x`` per tensor at ``bits`` with clipping value ``clip`` (unsigned: the range [0, clip]).

    1 bit: sign(x) * ``mean_abs`` (+1 for x > 0, else -1; ``mean_abs`` defaults to ``clip``).
    """
    _check_bits(bits, "activation")
    return _activation_fn(bits, clip, unsigned, clip if mean_abs is None else mean_abs)(x)


def _activation_fn(
    bits: int, clip: float, unsigned: bool, mean_abs: float
) -> Callable[["torch.Tensor"], "torch.Tensor"]:
    import torch

    if bits >= FLOAT_BITS:
        return lambda x: x
    if bits == 1:
        alpha = float(mean_abs)
        return lambda x: torch.gt(x, 0).to(x.dtype).mul_(2.0 * alpha).sub_(alpha)
    if not clip > 0:
        return torch.zeros_like
    top = float(2**bits - 1) if unsigned else float(2 ** (bits - 1) - 1)
    low = 0.0 if unsigned else -top
    scale = float(clip) / top
    inverse = 1.0 / scale
    return lambda x: torch.mul(x, inverse).round_().clamp_(low, top).mul_(scale)


def _check_bits(bits: Any, what: str) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise BitWidthError(f"{what} bit-width {bits!r} is outside the supported range {MIN_BITS}..{MAX_BITS}")


# --------------------------------------------------------------------------------------- bit-width points


@dataclass(frozen=True)
class _Point:
    """A normalized bit-width point: a policy (uniform or not) or an explicit per-module mapping."""

    policy: BitsPolicy | None
    mapping: Mapping[str, Bits] | None
    text: str


def _as_bits(value: Any, where: str) -> Bits:
    if isinstance(value, Bits):
        return value
    if isinstance(value, bool):
        raise BitWidthError(f"{where}: bit-width {value!r} is not an integer")
    if isinstance(value, int):
        return Bits(weight=value, activation=value)
    if isinstance(value, str):
        text = value.strip()
        if "," not in text:
            try:
                number = int(text)
            except ValueError:
                raise BitWidthError(f"{where}: bit-widths {value!r} must be N or W,A (for example 8 or 4,8)") from None
            return Bits(weight=number, activation=number)
        return parse_bits(text)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        w, a = value
        for item in (w, a):
            if isinstance(item, bool) or not isinstance(item, int):
                raise BitWidthError(f"{where}: bit-widths {tuple(value)!r} must be two integers (weight, activation)")
        return Bits(weight=w, activation=a)
    raise BitWidthError(
        f"{where}: {value!r} is not a bit-width point (use N, (W, A), 'W,A', a Bits, a BitsPolicy or a mapping "
        "module name -> (W, A))"
    )


def _as_point(value: Any) -> _Point:
    if isinstance(value, BitsPolicy):
        parts = [f"{value.default.weight}/{value.default.activation}"]
        if value.by_kind:
            parts.append(f"{len(value.by_kind)} kind override{'s' if len(value.by_kind) != 1 else ''}")
        if value.by_name:
            parts.append(f"{len(value.by_name)} layer override{'s' if len(value.by_name) != 1 else ''}")
        return _Point(value, None, " + ".join(parts))
    if isinstance(value, Mapping):
        mapping = {str(name): _as_bits(bits, f"bits for {name!r}") for name, bits in value.items()}
        if not mapping:
            raise BitWidthError("a per-layer bit-width mapping names no layer")
        return _Point(None, mapping, f"per layer ({len(mapping)} layer{'s' if len(mapping) != 1 else ''})")
    bits = _as_bits(value, "bits")
    return _Point(BitsPolicy(default=bits), None, f"{bits.weight}/{bits.activation}")


def _op_kind(module: "torch.nn.Module") -> OpKind:
    import torch

    if isinstance(module, torch.nn.Linear):
        return OpKind.LINEAR
    groups, c, k = module.groups, module.in_channels, module.out_channels
    if groups > 1 and groups == c and k % c == 0:
        return OpKind.DEPTHWISE_CONV
    return OpKind.GROUPED_CONV if groups > 1 else OpKind.CONV


def _layer_bits(
    point: _Point, layers: Mapping[str, "torch.nn.Module"], order: Sequence[str], keep_ends: int | None,
    all_modules: set[str],
) -> dict[str, tuple[int, int]]:
    """(weight bits, activation bits) of every MAC layer at ``point``; 32 = float32."""
    named = dict(point.mapping) if point.mapping is not None else dict(point.policy.by_name)  # type: ignore[union-attr]
    unknown = sorted(name for name in named if name not in all_modules and name.split("/")[0] not in all_modules)
    if unknown:
        sample = ", ".join(list(layers)[:6])
        raise BitWidthError(
            f"no module named {', '.join(unknown)} for a bit-width override (MAC layers look like: {sample}, ...)"
        )
    result: dict[str, tuple[int, int]] = {}
    for name, module in layers.items():
        if name in named:
            bits = named[name]
        elif point.mapping is not None:
            result[name] = (MAX_BITS, MAX_BITS)
            continue
        else:
            bits = point.policy.bits_for(name, _op_kind(module))  # type: ignore[union-attr]
        result[name] = (bits.weight, bits.activation)
    if keep_ends is not None and order:
        for name in {order[0], order[-1]}:
            if name not in named:
                w, a = result[name]
                result[name] = (max(w, keep_ends), max(a, keep_ends))
    return result


def _describe(point: _Point, keep_ends: int | None) -> str:
    return point.text if keep_ends is None else f"{point.text}, ends {keep_ends}/{keep_ends}"


# ---------------------------------------------------------------------------------------------- inputs


def load_inputs(source: Any) -> tuple[tuple["torch.Tensor", ...], "torch.Tensor | None"]:
    """(input tensors, labels or None) from a tensor, a tuple/list, a dict, or a ``torch.save`` file of those.

    A tuple of two whose second item is a 1-D integer tensor is (inputs, labels); a dict holds the inputs
    under one of inputs/images/x/data and the labels under one of labels/targets/y.
    """
    import torch

    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise AccuracyError(f"inputs file {path} does not exist")
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # corrupt, foreign or pickled code: one line, not a traceback
            raise AccuracyError(f"cannot read inputs file {path}: {_one_line(exc)}") from None
        where = f"inputs file {path}"
    else:
        loaded, where = source, "inputs"
    labels = None
    if isinstance(loaded, Mapping):
        keys = [key for key in _INPUT_KEYS if key in loaded]
        if not keys:
            raise AccuracyError(
                f"{where}: a dict needs the inputs under one of {', '.join(_INPUT_KEYS)} (it has "
                f"{', '.join(map(str, loaded)) or 'no keys'})"
            )
        label_keys = [key for key in _LABEL_KEYS if key in loaded]
        labels = loaded[label_keys[0]] if label_keys else None
        loaded = loaded[keys[0]]
    elif (
        isinstance(loaded, (tuple, list)) and len(loaded) == 2 and isinstance(loaded[1], torch.Tensor)
        and loaded[1].dim() == 1 and not loaded[1].is_floating_point() and not loaded[1].is_complex()
    ):
        loaded, labels = loaded
    if isinstance(loaded, torch.Tensor):
        tensors: tuple[torch.Tensor, ...] = (loaded,)
    elif isinstance(loaded, (tuple, list)) and loaded and all(isinstance(t, torch.Tensor) for t in loaded):
        tensors = tuple(loaded)
    else:
        raise AccuracyError(
            f"{where}: expected a tensor, a tuple (inputs, labels) or a dict with inputs and labels, not "
            f"{type(loaded).__name__}"
        )
    if labels is not None and not isinstance(labels, torch.Tensor):
        raise AccuracyError(f"{where}: labels must be a tensor, not {type(labels).__name__}")
    return tensors, labels


def _check_inputs(
    tensors: tuple["torch.Tensor", ...], example: tuple["torch.Tensor", ...], where: str
) -> tuple["torch.Tensor", ...]:
    if len(tensors) != len(example):
        raise AccuracyError(f"{where}: {len(tensors)} input tensor(s), but the model takes {len(example)}")
    count = None
    checked = []
    for index, (tensor, like) in enumerate(zip(tensors, example)):
        label = where if len(example) == 1 else f"{where} (input {index})"
        if tensor.dim() != like.dim() or tuple(tensor.shape[1:]) != tuple(like.shape[1:]):
            expected = "N x " + " x ".join(str(size) for size in like.shape[1:]) if like.dim() > 1 else "N"
            raise AccuracyError(
                f"{label}: shape {tuple(tensor.shape)} does not fit the example input {tuple(like.shape)} "
                f"(expected {expected})"
            )
        if tensor.dtype != like.dtype:
            raise AccuracyError(f"{label}: dtype {tensor.dtype} does not match the example input's {like.dtype}")
        if tensor.shape[0] < 1:
            raise AccuracyError(f"{label}: holds no samples")
        if count is not None and tensor.shape[0] != count:
            raise AccuracyError(f"{where}: the input tensors hold different sample counts")
        count = tensor.shape[0]
        checked.append(tensor.detach())
    return tuple(checked)


def _random_inputs(
    example: tuple["torch.Tensor", ...], count: int, generator: "torch.Generator"
) -> tuple["torch.Tensor", ...]:
    import torch

    return tuple(torch.randn((count, *like.shape[1:]), generator=generator, dtype=like.dtype) for like in example)


def _generator(seed: int, stream: str) -> "torch.Generator":
    """Seed 2s draws the evaluation inputs, 2s+1 the calibration inputs: distinct streams for every seed, and
    neither depends on the other's count."""
    import torch

    return torch.Generator().manual_seed(2 * seed + (1 if stream == "calibration" else 0))


def _calibration_inputs(calibration: Any, example: tuple["torch.Tensor", ...], seed: int) -> tuple["torch.Tensor", ...]:
    if isinstance(calibration, int) and not isinstance(calibration, bool):
        return _random_inputs(example, _count(calibration, "calibration"), _generator(seed, "calibration"))
    if calibration is None:
        raise AccuracyError("calibration must be a sample count or calibration inputs, not None")
    tensors, _ = load_inputs(calibration)
    where = (f"calibration file {os.fspath(calibration)}" if isinstance(calibration, (str, os.PathLike))
             else "calibration inputs")
    return _check_inputs(tensors, example, where)


def _load_labels(source: "str | os.PathLike") -> Any:
    """A ``torch.save`` file of a label tensor, or of a dict holding one under labels/targets/y."""
    import torch

    path = os.fspath(source)
    if not os.path.isfile(path):
        raise AccuracyError(f"labels file {path} does not exist")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise AccuracyError(f"cannot read labels file {path}: {_one_line(exc)}") from None
    if isinstance(loaded, Mapping):
        keys = [key for key in _LABEL_KEYS if key in loaded]
        if not keys:
            raise AccuracyError(f"labels file {path}: a dict needs the labels under one of {', '.join(_LABEL_KEYS)}")
        loaded = loaded[keys[0]]
    return loaded


def _check_labels(labels: Any, count: int, where: str) -> "torch.Tensor":
    import torch

    if not isinstance(labels, torch.Tensor):
        raise AccuracyError(f"{where}: labels must be a tensor of class indices, not {type(labels).__name__}")
    if labels.dim() != 1 or labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise AccuracyError(f"{where}: labels must be a 1-D integer tensor of class indices, got {labels.dtype} "
                            f"of shape {tuple(labels.shape)}")
    if labels.shape[0] != count:
        raise AccuracyError(f"{where}: {labels.shape[0]} labels for {count} inputs")
    return labels.detach().to(torch.int64)


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SAMPLES:
        raise AccuracyError(f"{name} must be a whole number of samples in 1..{MAX_SAMPLES:,}, got {value!r}")
    return value


# ---------------------------------------------------------------------------------------------- session


@dataclass
class RangeObserver:
    """What calibration saw of one tensor and the clip taken from it: the one calibration rule of the accuracy proxy
    and of the integer inference scheme (``codesign.integer``).

    ``observe`` each calibration call's tensor, ``finish`` once, then ``clip(bits, unsigned)``: max |x|
    (``clipping='max'``), the percentile clip (a number P), or (``'mse'``) the fraction r * max|x| of least
    estimated squared error over the largest 1024 |x| of every call (exact) and a strided sample of the rest.
    Also kept: sum |x|, the count and the minimum (a tensor never negative takes unsigned codes).
    """

    clipping: Any = "mse"
    peak: float = 0.0
    percentile: float = 0.0
    abs_sum: float = 0.0
    count: int = 0
    minimum: float = math.inf
    sample: list = field(default_factory=list)
    sampled: int = 0
    tops: list = field(default_factory=list)
    tail_floor: float = 0.0
    body_weight: float = 0.0

    def observe(self, x: "torch.Tensor") -> None:
        """Take one calibration call's tensor into the statistics."""
        import torch

        if x.numel() == 0:
            return
        magnitude = x.abs()
        self.peak = max(self.peak, float(magnitude.amax()))
        if not isinstance(self.clipping, str):
            flat = magnitude.flatten().float()
            k = max(1, min(flat.numel(), math.ceil(self.clipping / 100.0 * flat.numel())))
            self.percentile = max(self.percentile, float(torch.kthvalue(flat, k).values))
        elif self.clipping == "mse":
            flat = x.flatten()
            k = min(flat.numel(), _TAIL)
            top = magnitude.flatten().topk(k).values.float()
            self.tops.append(top)
            self.tail_floor = max(self.tail_floor, float(top[-1]))
            if self.sampled < 4 * _SAMPLE:
                picked = flat[:: _stride(flat.numel(), _SAMPLE)].float().clone()
                self.sample.append(picked)
                self.sampled += picked.numel()
        self.abs_sum += float(magnitude.sum(dtype=torch.float64))
        self.count += x.numel()
        self.minimum = min(self.minimum, float(x.amin()))

    def finish(self) -> None:
        """After the last call: every value >= tail_floor is in its call's top-k, so the tail is exact; the sample
        stands for the body below it, each sampled value weighing (values in the body) / (body values sampled)."""
        import torch

        if self.tops:
            tail = torch.cat(self.tops)
            tail = tail[tail >= self.tail_floor]
            body = torch.cat(self.sample)
            body = body[body.abs() < self.tail_floor]
            self.tops = [tail]
            self.sample = [body]
            self.body_weight = (self.count - tail.numel()) / body.numel() if body.numel() else 0.0

    def clip(self, bits: int, unsigned: bool) -> float:
        """The clipping value at ``bits`` (unsigned codes 0..2^b-1 or symmetric signed ones)."""
        if not isinstance(self.clipping, str):
            return self.percentile
        if self.clipping == "mse" and self.tops:
            return _activation_mse_clip(self.tops[0], self.sample[0], self.body_weight, bits, unsigned)
        return self.peak


def _stride(numel: int, quota: int) -> int:
    """A prime stride >= numel / quota (a prime: not a multiple of the tensor's sizes, so the sample does not
    keep landing on the same row or column)."""
    stride = max(2, -(-numel // quota))
    while any(stride % d == 0 for d in range(2, int(stride**0.5) + 1)):
        stride += 1
    return stride


class _Session:
    """One deep copy of the model with a pre-hook on every MAC layer: off, observing (calibration) or
    fake-quantizing the layer inputs; the float weights kept aside to requantize per point."""

    def __init__(self, model: Any, example: tuple["torch.Tensor", ...], clipping: Any, batch_size: int) -> None:
        import torch

        if not isinstance(model, torch.nn.Module):
            raise AccuracyError(
                f"the accuracy proxy needs a torch.nn.Module, not {type(model).__name__} (an exported .pt2 "
                "program cannot be fake-quantized; load the model from its factory)"
            )
        if isinstance(example, torch.Tensor):
            example = (example,)
        if not isinstance(example, (tuple, list)) or not example or not all(
            isinstance(t, torch.Tensor) for t in example
        ):
            raise AccuracyError("example inputs must be a tensor or a non-empty tuple of tensors")
        for index, like in enumerate(example):
            if like.dim() < 1 or not like.is_floating_point():
                raise AccuracyError(
                    f"example input {index} ({like.dtype}, shape {tuple(like.shape)}) is not a floating-point "
                    "batch; the accuracy proxy draws random inputs like it"
                )
        self.example = tuple(t.detach() for t in example)
        # a pruned module's weight (weight_orig * weight_mask, recomputed before every forward) is a non-leaf
        # tensor, which deepcopy refuses: the copy gets it detached, the caller's model stays as it is
        memo = {
            id(value): value.detach().clone()
            for module in model.modules() for value in vars(module).values()
            if isinstance(value, torch.Tensor) and value.grad_fn is not None
        }
        try:
            self.model = copy.deepcopy(model, memo)
        except Exception as exc:
            raise AccuracyError(f"cannot copy the model to quantize it: {_one_line(exc)}") from None
        self.model.eval()
        self.all_modules = {name for name, _ in self.model.named_modules()}
        self.layers: dict[str, torch.nn.Module] = {}
        for name, module in self.model.named_modules():
            is_conv = isinstance(module, torch.nn.modules.conv._ConvNd) and not module.transposed
            if is_conv or isinstance(module, torch.nn.Linear):
                _bake_weight(module)
                if isinstance(getattr(module, "weight", None), torch.Tensor):
                    self.layers[name] = module
        if not self.layers:
            raise AccuracyError("the model has no conv or linear layer to quantize")
        self.float_weights = {name: module.weight.detach().clone() for name, module in self.layers.items()}
        self.mode = "off"
        self.stats: dict[str, RangeObserver] = {}
        self.order: list[str] = []
        self.act: dict[str, Callable] = {}
        self.clips: dict[tuple[str, int, bool], float] = {}
        self.clipping = clipping
        self.batch_size = batch_size
        self.calibration_samples = 0
        for name, module in self.layers.items():
            module.register_forward_pre_hook(self._hook(name))
        params = [p for p in self.model.parameters()]
        self.device = params[0].device if params else torch.device("cpu")
        # channels-last runs CPU convolutions about twice as fast; a model that cannot (a view of a channels-last
        # tensor, say) runs as it is: one probe on the example inputs decides, for the reference and every point
        self.channels_last = False
        if all(t.dim() == 4 for t in self.example):
            self.model.to(memory_format=torch.channels_last)
            try:
                with torch.inference_mode():
                    self.model(*(t.to(self.device).contiguous(memory_format=torch.channels_last)
                                 for t in self.example))
                self.channels_last = True
            except Exception:
                self.model.to(memory_format=torch.contiguous_format)

    def _hook(self, name: str):
        import torch

        def hook(module, args):
            if self.mode == "off" or not args or not isinstance(args[0], torch.Tensor):
                return None
            x = args[0]
            if self.mode == "observe":
                self._observe(name, x.detach())
                return None
            fn = self.act.get(name)
            return None if fn is None else (fn(x), *args[1:])

        return hook

    def _observe(self, name: str, x: "torch.Tensor") -> None:
        if name not in self.stats:
            self.stats[name] = RangeObserver(self.clipping)
            self.order.append(name)
        self.stats[name].observe(x)

    def _batches(self, inputs: tuple["torch.Tensor", ...]):
        import torch

        count = inputs[0].shape[0]
        for start in range(0, count, self.batch_size):
            batch = tuple(t[start:start + self.batch_size].to(self.device) for t in inputs)
            if self.channels_last:
                batch = tuple(t.contiguous(memory_format=torch.channels_last) for t in batch)
            yield batch

    def _forward(self, batch: tuple["torch.Tensor", ...], what: str) -> Any:
        try:
            return self.model(*batch)
        except CodesignError:
            raise
        except Exception as exc:
            raise AccuracyError(f"the model fails on the {what}: {_one_line(exc)}") from None

    def run(self, inputs: tuple["torch.Tensor", ...], mode: str, what: str = "inputs") -> list["torch.Tensor"]:
        """The model's output tensors on ``inputs`` (batched), concatenated over the batches."""
        import torch

        self.mode = mode
        pieces: list[list[torch.Tensor]] = []
        try:
            with torch.inference_mode():
                for batch in self._batches(inputs):
                    output = self._forward(batch, what)
                    pieces.append([t.detach().to("cpu", torch.float32) for t in _output_tensors(output)])
        finally:
            self.mode = "off"
        if not pieces or not pieces[0]:
            raise AccuracyError("the model returns no tensor to compare")
        outputs = []
        for index in range(len(pieces[0])):
            parts = [piece[index].contiguous() for piece in pieces]
            if any(p.dim() == 0 for p in parts):
                outputs.append(torch.stack([p.reshape(()) for p in parts]).reshape(len(parts), 1))
            else:
                outputs.append(torch.cat(parts, dim=0))
        return outputs

    def reestimate_batchnorm(self, inputs: tuple["torch.Tensor", ...]) -> int:
        """Replace every batch norm's running statistics by the cumulative ones of ``inputs`` (train-mode batch
        norms, one pass); returns how many batch norms there were."""
        import torch

        saved = []
        for norm in self.model.modules():
            if isinstance(norm, torch.nn.modules.batchnorm._BatchNorm) and norm.running_var is not None:
                saved.append((norm, norm.momentum))
                norm.reset_running_stats()
                norm.momentum = None  # cumulative average over the batches
                norm.train()
        try:
            with torch.no_grad():
                for batch in self._batches(inputs):
                    self._forward(batch, "calibration inputs")
        finally:
            for norm, momentum in saved:
                norm.momentum = momentum
                norm.eval()
        return len(saved)

    def calibrate(self, inputs: tuple["torch.Tensor", ...]) -> None:
        self.calibration_samples = int(inputs[0].shape[0])
        self.run(inputs, "observe", "calibration inputs")
        for stats in self.stats.values():
            stats.finish()

    def _clip(self, name: str, bits: int, unsigned: bool) -> float:
        key = (name, bits, unsigned)
        if key not in self.clips:
            self.clips[key] = self.stats[name].clip(bits, unsigned)
        return self.clips[key]

    def apply(self, layer_bits: Mapping[str, tuple[int, int]], unsigned: bool) -> None:
        """Weights requantized from the float copies; activation fake-quant functions from the calibration."""
        import torch

        self.act = {}
        weight_clipping = self.clipping if self.clipping == "mse" else "max"
        with torch.no_grad():
            for name, module in self.layers.items():
                w_bits, a_bits = layer_bits[name]
                module.weight.copy_(quantize_weight(self.float_weights[name], w_bits, weight_clipping))
                stats = self.stats.get(name)
                if stats is None or a_bits >= FLOAT_BITS:
                    continue  # never ran during calibration (so it does not reach the outputs), or float32
                mean_abs = stats.abs_sum / stats.count if stats.count else 0.0
                positive = unsigned and stats.minimum >= 0
                clip = 0.0 if a_bits == 1 else self._clip(name, a_bits, positive)
                self.act[name] = _activation_fn(a_bits, clip, positive, mean_abs)


def _bake_weight(module: "torch.nn.Module") -> None:
    """Make a copy's pruning mask or weight parametrization permanent, so its weight is a plain parameter."""
    from torch.nn.utils import parametrize, prune

    if parametrize.is_parametrized(module, "weight"):
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    if hasattr(module, "weight_orig") and hasattr(module, "weight_mask"):
        prune.remove(module, "weight")


def _output_tensors(output: Any) -> list["torch.Tensor"]:
    import torch

    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, Mapping):
        items: list = list(output.values())
    elif isinstance(output, (tuple, list)):
        items = list(output)
    else:
        items = [getattr(output, name) for name in getattr(output, "__dataclass_fields__", {})]
    tensors: list[torch.Tensor] = []
    for item in items:
        tensors.extend(_output_tensors(item))
    return [t for t in tensors if t.is_floating_point()]


def _top1(outputs: list["torch.Tensor"]) -> "torch.Tensor | None":
    first = outputs[0]
    return first.argmax(dim=1) if first.dim() == 2 and first.shape[1] > 1 else None


def _flat(outputs: list["torch.Tensor"]) -> "torch.Tensor":
    import torch

    return torch.cat([t.reshape(-1) for t in outputs])


# ------------------------------------------------------------------------------------------------- API


def _check_options(keep_ends: Any, seed: Any, clipping: Any) -> None:
    if keep_ends is not None:
        _check_bits(keep_ends, "keep_ends")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise AccuracyError(f"seed must be a non-negative integer, got {seed!r}")
    _check_clipping(clipping)


def _calibrated_session(
    model: Any, example_inputs: Any, calibration: Any, seed: int, clipping: Any,
    batch_size: Any, reestimate_bn: bool,
) -> "_Session":
    session = _Session(model, example_inputs, clipping, _count(batch_size, "batch_size"))
    calibration_inputs = _calibration_inputs(calibration, session.example, seed)
    if reestimate_bn:
        session.reestimate_batchnorm(calibration_inputs)
    session.calibrate(calibration_inputs)
    return session


def calibration_model(
    model: Any, example_inputs: Any, *, calibration: Any = 16, seed: int = 0, reestimate_bn: bool = False,
    batch_size: int = 32,
) -> tuple["torch.nn.Module", tuple["torch.Tensor", ...]]:
    """(the float copy the proxy calibrates on and compares against, its calibration inputs): a deep copy of
    ``model`` in eval mode, batch norms re-estimated on the calibration inputs when ``reestimate_bn``, and the same
    seeded (or given) calibration inputs ``accuracy_proxy`` uses, so other consumers calibrate exactly as it does."""
    import torch

    _check_options(None, seed, "max")
    session = _Session(model, example_inputs, "max", _count(batch_size, "batch_size"))
    inputs = _calibration_inputs(calibration, session.example, seed)
    if reestimate_bn:
        session.reestimate_batchnorm(inputs)
    session.model.to(memory_format=torch.contiguous_format)
    return session.model, inputs


def _notes(reference: list["torch.Tensor"], ref_top1: "torch.Tensor | None") -> tuple[str, ...]:
    """What makes the figures weak on this model and these inputs (a random-initialised model, typically)."""
    import torch

    notes = []
    first = reference[0].to(torch.float64)
    if first.shape[0] > 1:
        spread = float(first.std(dim=0).mean())
        level = float(first.abs().mean())
        if level > 0 and spread < 1e-3 * level:
            notes.append(
                f"float32 outputs hardly depend on the input (spread across inputs {spread / level:.1e} of their "
                "size; activations vanish or saturate, as in a random-initialised model): the SQNR measures "
                "an input-independent output and the agreement says nothing; reestimate_bn=True may help"
            )
    if ref_top1 is not None and ref_top1.numel() > 1:
        share = float(torch.bincount(ref_top1).max()) / ref_top1.numel()
        if share >= 0.5:
            notes.append(
                f"float32 predicts one class for {share:.0%} of the inputs: a model collapsed to that class "
                f"would agree {share:.0%} of the time"
            )
    return tuple(notes)


def accuracy_sweep(
    model: "torch.nn.Module",
    example_inputs: Any,
    points: Sequence[Any] = SWEEP_POINTS,
    *,
    keep_ends: int | None = None,
    calibration: Any = 16,
    evaluation: int = 64,
    seed: int = 0,
    inputs: Any = None,
    labels: Any = None,
    clipping: Any = "mse",
    unsigned_activations: bool = True,
    reestimate_bn: bool = False,
    batch_size: int = 32,
    threads: int | None = 1,
) -> list[AccuracyResult]:
    """``accuracy_proxy`` at every point of ``points``, in order, on one model copy, one calibration and one
    float32 reference (each point only requantizes the weights and swaps the activation quantizers).

    ``points`` is a sequence of points, each one as ``accuracy_proxy``'s ``bits`` (so ``[(4, 8)]`` is one point,
    4-bit weights and 8-bit activations, and ``(4, 8)`` two, 4/4 and 8/8); a single Bits, BitsPolicy, mapping or
    string is one point. The default is 16, 8, 4, 2, 1 (``SWEEP_POINTS``).
    """
    with _torch_threads(threads):
        return _sweep(
            model, example_inputs, points, keep_ends=keep_ends, calibration=calibration, evaluation=evaluation,
            seed=seed, inputs=inputs, labels=labels, clipping=clipping, unsigned_activations=unsigned_activations,
            reestimate_bn=reestimate_bn, batch_size=batch_size,
        )


@contextlib.contextmanager
def _torch_threads(threads: int | None):
    """Run with ``threads`` intra-op torch threads (None: as set), then restore the count. One by default: the
    results then do not depend on the machine's core count, and on the 2-core development machine under load a
    second thread mostly spins (bench/accuracy_bench.py: a sweep took about ten times longer with two)."""
    import torch

    if threads is None:
        yield
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise AccuracyError(f"threads must be a positive whole number or None, got {threads!r}")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _sweep(model, example_inputs, points, *, keep_ends, calibration, evaluation, seed, inputs, labels, clipping,
           unsigned_activations, reestimate_bn, batch_size) -> list[AccuracyResult]:
    if isinstance(points, (str, bytes, Mapping, BitsPolicy, Bits)) or not isinstance(points, Sequence):
        points = [points]
    if not points:
        raise BitWidthError("an accuracy sweep needs at least one bit-width point")
    normalized = [_as_point(point) for point in points]
    _check_options(keep_ends, seed, clipping)
    session = _calibrated_session(model, example_inputs, calibration, seed, clipping, batch_size,
                                  reestimate_bn)
    example = session.example
    if inputs is None:
        evaluation_inputs = _random_inputs(example, _count(evaluation, "evaluation"), _generator(seed, "evaluation"))
        file_labels = None
    else:
        tensors, file_labels = load_inputs(inputs)
        where = f"inputs file {os.fspath(inputs)}" if isinstance(inputs, (str, os.PathLike)) else "inputs"
        evaluation_inputs = _check_inputs(tensors, example, where)
    samples = int(evaluation_inputs[0].shape[0])
    if labels is not None:
        if isinstance(labels, (str, os.PathLike)):
            labels = _load_labels(labels)
        label_tensor = _check_labels(labels, samples, "labels")
    elif file_labels is not None:
        label_tensor = _check_labels(file_labels, samples, "inputs")
    else:
        label_tensor = None

    reference = session.run(evaluation_inputs, "off")
    ref_flat = _flat(reference)
    ref_top1 = _top1(reference)
    float_accuracy: float | None = None
    if label_tensor is not None:
        if ref_top1 is None:
            raise AccuracyError(
                f"labels need a classifier's (N, classes) output; the model returns {tuple(reference[0].shape)}"
            )
        classes = reference[0].shape[1]
        low, high = int(label_tensor.min()), int(label_tensor.max())
        if low < 0 or high >= classes:
            raise AccuracyError(f"labels must be class indices in 0..{classes - 1}; got {low}..{high}")
        float_accuracy = float((ref_top1 == label_tensor).double().mean())
    notes = _notes(reference, ref_top1)

    results = []
    for point in normalized:
        layer_bits = _layer_bits(point, session.layers, session.order, keep_ends, session.all_modules)
        session.apply(layer_bits, unsigned_activations)
        outputs = session.run(evaluation_inputs, "quantize")
        top1 = _top1(outputs)
        agreement = None if ref_top1 is None or top1 is None else float((top1 == ref_top1).double().mean())
        accuracy = None
        if label_tensor is not None and top1 is not None:
            accuracy = float((top1 == label_tensor).double().mean())
        results.append(AccuracyResult(
            bits=_describe(point, keep_ends),
            sqnr_db=sqnr_db(ref_flat, _flat(outputs)),
            top1_agreement=agreement,
            top1_accuracy=accuracy,
            float_top1_accuracy=float_accuracy,
            samples=samples,
            calibration_samples=session.calibration_samples,
            keep_ends=keep_ends,
            layer_bits=tuple((name, w, a) for name, (w, a) in layer_bits.items()),
            notes=notes,
        ))
    return results


def accuracy_proxy(
    model: "torch.nn.Module",
    example_inputs: Any,
    bits: Any = Bits(),
    *,
    keep_ends: int | None = None,
    calibration: Any = 16,
    evaluation: int = 64,
    seed: int = 0,
    inputs: Any = None,
    labels: Any = None,
    clipping: Any = "mse",
    unsigned_activations: bool = True,
    reestimate_bn: bool = False,
    batch_size: int = 32,
    threads: int | None = 1,
) -> AccuracyResult:
    """Fake-quantize a copy of ``model`` at ``bits`` and compare it with float32 (see the module's docstring).

    ``calibration``: a count of seeded random inputs, or calibration data (tensor, tuple, dict or file);
    ``evaluation``: the count of seeded random evaluation inputs when ``inputs`` (tensor, (inputs, labels),
    dict or ``torch.save`` file) is not given; ``labels``: class indices of the evaluation inputs (a tensor or
    a file); ``reestimate_bn``: first replace the copy's batch-norm statistics by those of the calibration
    inputs (for random-initialised models only, whose default statistics let activations vanish; the float32
    reference is that same copy); ``batch_size``: inputs per forward pass; ``threads``: intra-op torch threads
    while it runs (restored after; None leaves torch's setting).
    """
    return accuracy_sweep(
        model, example_inputs, [bits], keep_ends=keep_ends, calibration=calibration, evaluation=evaluation,
        seed=seed, inputs=inputs, labels=labels, clipping=clipping,
        unsigned_activations=unsigned_activations, reestimate_bn=reestimate_bn, batch_size=batch_size,
        threads=threads,
    )[0]


def fake_quantized(
    model: "torch.nn.Module",
    example_inputs: Any,
    bits: Any = Bits(),
    *,
    keep_ends: int | None = None,
    calibration: Any = 16,
    seed: int = 0,
    clipping: Any = "mse",
    unsigned_activations: bool = True,
    reestimate_bn: bool = False,
    batch_size: int = 32,
    threads: int | None = 1,
) -> "torch.nn.Module":
    """The fake-quantized copy ``accuracy_proxy`` evaluates (same seed, calibration and options): its MAC
    weights replaced by their quantized values and a pre-hook fake-quantizing each MAC layer's input on every
    call. ``codesign_layer_bits`` on it maps each MAC layer's module name to its (weight bits, activation
    bits); ``codesign_layer_order`` lists the MAC layers in the order they ran during calibration."""
    point = _as_point(bits)
    _check_options(keep_ends, seed, clipping)
    with _torch_threads(threads):
        session = _calibrated_session(model, example_inputs, calibration, seed, clipping, batch_size,
                                      reestimate_bn)
        layer_bits = _layer_bits(point, session.layers, session.order, keep_ends, session.all_modules)
        session.apply(layer_bits, unsigned_activations)
    session.mode = "quantize"  # from here on the hooks fake-quantize every call
    quantized = session.model
    quantized.codesign_layer_bits = dict(layer_bits)
    quantized.codesign_layer_order = list(session.order)
    return quantized


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
