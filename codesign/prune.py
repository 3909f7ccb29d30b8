"""Pruning SPECs applied to a PyTorch model: the zeros a pruning method leaves, as plain weights.

A SPEC is one line of text:

``unstructured:R``  global magnitude pruning: the share R of all conv and linear weights with the smallest
                    |w| over the whole network become zero (``prune.global_unstructured`` with
                    ``L1Unstructured``).
``filters:R``       L1 filter pruning (Li et al., ICLR 2017): in every conv but depthwise ones, the share R of
                    the filters with the smallest L1 norm become zero (``prune.ln_structured(n=1, dim=0)``).
``slimming:R``      network slimming (Liu et al., ICCV 2017): the share R of all batch-norm channels with the
                    smallest |gamma| over the whole network get gamma = beta = 0, so they output zero (capture
                    reads those channels as dead in the layers that consume them).
``nm:N:M``          N:M structured sparsity (as NVIDIA's 2:4): in every group of M consecutive weights along a
                    layer's input dimension the N of largest magnitude stay (``prune.custom_from_mask``).

R is a share in [0, 1). Masks from ``torch.nn.utils.prune`` are made permanent with ``prune.remove``, so
a pruned model is an ordinary module whose zeros are weights. Every bad SPEC is a ``PruneError`` with a
one-line message.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from codesign.errors import CodesignError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["PruneError", "PruneSpec", "PruneReport", "KINDS", "SPEC_FORMS", "parse_spec", "parse_specs", "apply",
           "pruned_copy", "is_pruned", "make_permanent"]

KINDS = ("unstructured", "filters", "slimming", "nm")
SPEC_FORMS = "unstructured:R, filters:R, slimming:R (R a share in [0, 1), e.g. 0.5) or nm:N:M (e.g. nm:2:4)"


class PruneError(CodesignError):
    """A pruning SPEC is malformed, or cannot be applied to the model."""


@dataclass(frozen=True)
class PruneSpec:
    """One parsed SPEC: ``kind`` and either ``ratio`` (unstructured, filters, slimming) or ``n``/``m`` (nm)."""

    kind: str
    ratio: float | None = None
    n: int | None = None
    m: int | None = None

    @property
    def text(self) -> str:
        """The canonical SPEC text ('unstructured:0.5', 'nm:2:4'): the variant's name in reports."""
        if self.kind == "nm":
            return f"nm:{self.n}:{self.m}"
        return f"{self.kind}:{self.ratio:g}"

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class PruneReport:
    """What one SPEC did to a model: how many of the units it ranks (weights, filters, channels) it zeroed,
    in how many layers, and one line saying so."""

    spec: PruneSpec
    zeroed: int
    considered: int
    layers: int
    skipped_layers: int
    description: str

    def to_dict(self) -> dict:
        return {"spec": self.spec.text, "kind": self.spec.kind, "zeroed": self.zeroed, "considered": self.considered,
                "layers": self.layers, "skipped_layers": self.skipped_layers, "description": self.description}


def parse_spec(text: object) -> PruneSpec:
    """``"unstructured:0.5"`` -> PruneSpec; a PruneSpec passes through; anything malformed is a PruneError."""
    if isinstance(text, PruneSpec):
        return _check(text)
    if not isinstance(text, str) or not text.strip():
        raise PruneError(f"empty pruning SPEC {text!r}; use {SPEC_FORMS}")
    raw = text.strip()
    kind, _, rest = raw.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise PruneError(f"unknown pruning kind {kind!r} in SPEC {raw!r}; use {SPEC_FORMS}")
    if not rest.strip():
        raise PruneError(f"pruning SPEC {raw!r} has no {'N:M' if kind == 'nm' else 'ratio'}; use {SPEC_FORMS}")
    if kind == "nm":
        parts = [part.strip() for part in rest.split(":")]
        if len(parts) != 2 or not all(_is_int(part) for part in parts):
            raise PruneError(f"pruning SPEC {raw!r}: N:M must be two whole numbers, e.g. nm:2:4")
        return _check(PruneSpec("nm", n=int(parts[0]), m=int(parts[1])), raw)
    try:
        ratio = float(rest)
    except ValueError:
        raise PruneError(f"pruning SPEC {raw!r}: the ratio {rest.strip()!r} is not a number; "
                         f"use {SPEC_FORMS}") from None
    return _check(PruneSpec(kind, ratio=ratio), raw)


def _is_int(text: str) -> bool:
    return text.lstrip("+-").isdigit()


def _check(spec: PruneSpec, raw: str | None = None) -> PruneSpec:
    label = raw or f"{spec.kind}:{spec.n}:{spec.m}" if spec.kind == "nm" else raw or f"{spec.kind}:{spec.ratio}"
    if spec.kind not in KINDS:
        raise PruneError(f"unknown pruning kind {spec.kind!r}; use {SPEC_FORMS}")
    if spec.kind == "nm":
        n, m = spec.n, spec.m
        if isinstance(n, bool) or isinstance(m, bool) or not isinstance(n, int) or not isinstance(m, int):
            raise PruneError(f"pruning SPEC {label!r}: N:M must be two whole numbers, e.g. nm:2:4")
        if not 1 <= n < m:
            raise PruneError(f"pruning SPEC {label!r}: N:M needs 1 <= N < M (N weights kept in every group of M), "
                             f"got N={n}, M={m}")
        return spec
    ratio = spec.ratio
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not math.isfinite(ratio) \
            or not 0.0 <= ratio < 1.0:
        raise PruneError(f"pruning SPEC {label!r}: the ratio must be a share in [0, 1) (the part zeroed), "
                         f"got {ratio!r}")
    return PruneSpec(spec.kind, ratio=float(ratio))


def parse_specs(items: Iterable[object]) -> tuple[PruneSpec, ...]:
    """Every SPEC of ``items`` (a string may hold several, comma-separated), duplicates dropped, in order."""
    specs: list[PruneSpec] = []
    for item in items:
        pieces = item.split(",") if isinstance(item, str) and "," in item else [item]
        for piece in pieces:
            spec = parse_spec(piece)
            if spec not in specs:
                specs.append(spec)
    return tuple(specs)


# --------------------------------------------------------------------------------------------- which layers


def _weighted(model: "torch.nn.Module", kinds: tuple[type, ...]) -> list:
    """Modules of ``kinds`` with a weight, each weight once (tied weights are pruned once)."""
    seen, modules = set(), []
    for module in model.modules():
        weight = getattr(module, "weight", None) if isinstance(module, kinds) else None
        if weight is None or id(weight) in seen:
            continue
        seen.add(id(weight))
        modules.append(module)
    return modules


def _convs(model) -> list:
    from torch import nn

    return [m for m in _weighted(model, (nn.modules.conv._ConvNd,)) if not m.transposed]


def _conv_and_linear(model) -> list:
    from torch import nn

    return _weighted(model, (nn.modules.conv._ConvNd, nn.Linear))


def _depthwise(conv) -> bool:
    return conv.groups > 1 and conv.in_channels // conv.groups == 1


def _batch_norms(model) -> list:
    from torch import nn

    return [m for m in _weighted(model, (nn.modules.batchnorm._BatchNorm,)) if m.bias is not None]


# --------------------------------------------------------------------------------------------- the methods


def apply(model: "torch.nn.Module", spec: PruneSpec | str) -> PruneReport:
    """Prune ``model`` in place by ``spec``; the zeros end up as plain weights (masks removed).

    Raises ``PruneError`` for a bad SPEC or a model the method finds nothing to prune in.
    """
    import torch

    spec = parse_spec(spec)
    if not isinstance(model, torch.nn.Module):
        raise PruneError(f"pruning {spec.text} needs a torch.nn.Module, got {type(model).__name__} (an exported "
                         "program cannot be pruned: prune the module, then export it)")
    make_permanent(model)
    method = {"unstructured": _unstructured, "filters": _filters, "slimming": _slimming, "nm": _nm}[spec.kind]
    with torch.no_grad():
        return method(model, spec)


def pruned_copy(model: "torch.nn.Module", spec: PruneSpec | str) -> tuple["torch.nn.Module", PruneReport]:
    """A deep copy of ``model`` pruned by ``spec`` (the original is untouched) and what was done."""
    spec = parse_spec(spec)
    import torch

    if not isinstance(model, torch.nn.Module):
        raise PruneError(f"pruning {spec.text} needs a torch.nn.Module, got {type(model).__name__} (an exported "
                         "program cannot be pruned: prune the module, then export it)")
    clone = _deepcopy(model)
    return clone, apply(clone, spec)


def _mask_hooks(module) -> list[tuple[object, str]]:
    """(pruning method, tensor name) of every ``torch.nn.utils.prune`` mask on ``module``."""
    from torch.nn.utils import prune

    found = []
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, prune.PruningContainer):
            found.extend((hook, method._tensor_name) for method in hook._pruning_methods)
        elif isinstance(hook, prune.BasePruningMethod):
            found.append((hook, hook._tensor_name))
    return list(dict.fromkeys(found))


def _deepcopy(model: "torch.nn.Module") -> "torch.nn.Module":
    """``copy.deepcopy``, also of a model carrying prune masks: the masked weight a mask's hook sets (a computed,
    non-leaf tensor deepcopy refuses) is set aside while copying; the copy's masks recompute it."""
    held = []
    for module in model.modules():
        for _, name in _mask_hooks(module):
            if name in module.__dict__:
                held.append((module, name, module.__dict__.pop(name)))
    try:
        clone = copy.deepcopy(model)
    finally:
        for module, name, value in held:
            module.__dict__[name] = value
    for module in clone.modules():
        for hook, name in _mask_hooks(module):
            setattr(module, name, hook.apply_mask(module))
    return clone


def _unstructured(model, spec: PruneSpec) -> PruneReport:
    from torch.nn.utils import prune

    modules = _conv_and_linear(model)
    if not modules:
        raise PruneError(f"{spec.text}: the model has no conv or linear weights to prune")
    total = sum(int(m.weight.numel()) for m in modules)
    if spec.ratio > 0:
        params = [(m, "weight") for m in modules]
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=spec.ratio)
        for m in modules:
            prune.remove(m, "weight")
    zeros = sum(int((m.weight == 0).sum()) for m in modules)
    return PruneReport(spec, zeros, total, len(modules), 0,
                       f"{zeros / total:.1%} of the {total:,} conv and linear weights are zero "
                       f"(global L1 over {len(modules)} layers)")


def _filters(model, spec: PruneSpec) -> PruneReport:
    from torch.nn.utils import prune

    convs = _convs(model)
    kept = [m for m in convs if not _depthwise(m)]
    if not kept:
        raise PruneError(f"{spec.text}: the model has no conv layers (other than depthwise) to prune filters of")
    filters = sum(int(m.weight.shape[0]) for m in kept)
    if spec.ratio > 0:
        for m in kept:
            prune.ln_structured(m, "weight", amount=spec.ratio, n=1, dim=0)
            prune.remove(m, "weight")
    zero = sum(int((m.weight.reshape(m.weight.shape[0], -1) == 0).all(dim=1).sum()) for m in kept)
    skipped = len(convs) - len(kept)
    tail = f"; {skipped} depthwise convs left dense" if skipped else ""
    return PruneReport(spec, zero, filters, len(kept), skipped,
                       f"{zero:,} of {filters:,} filters are zero (smallest L1 norm per conv, {len(kept)} convs{tail})")


def _slimming(model, spec: PruneSpec) -> PruneReport:
    """The smallest |gamma| channels network-wide. Equal gammas (an untrained model's are all 1) are taken
    evenly across layers, and every batch norm keeps at least one channel (a layer is never cut off)."""
    import numpy as np

    norms = _batch_norms(model)
    if not norms:
        raise PruneError(f"{spec.text}: the model has no batch-norm layers with a scale (gamma) to slim")
    gammas = [m.weight.detach().abs().flatten().cpu().double().numpy() for m in norms]
    total = sum(len(g) for g in gammas)
    target = round(spec.ratio * total)
    owner = np.concatenate([np.full(len(g), i) for i, g in enumerate(gammas)])
    index = np.concatenate([np.arange(len(g)) for g in gammas])
    position = np.concatenate([(np.arange(len(g)) + 0.5) / len(g) for g in gammas])
    order = np.lexsort((position, np.concatenate(gammas)))  # by |gamma|, ties spread evenly over the layers
    left = np.array([len(g) for g in gammas])
    chosen: list[list[int]] = [[] for _ in norms]
    count = 0
    for item in order:
        if count >= target:
            break
        layer = owner[item]
        if left[layer] <= 1:
            continue
        chosen[layer].append(int(index[item]))
        left[layer] -= 1
        count += 1
    for module, channels in zip(norms, chosen):
        if channels:
            module.weight[channels] = 0.0
            module.bias[channels] = 0.0
    zero = sum(int(((m.weight == 0) & (m.bias == 0)).sum()) for m in norms)
    return PruneReport(spec, zero, total, sum(1 for c in chosen if c), 0,
                       f"{zero:,} of {total:,} batch-norm channels have gamma = beta = 0 (smallest |gamma| "
                       f"over {len(norms)} batch norms)")


def nm_mask(weight: "torch.Tensor", n: int, m: int) -> "torch.Tensor":
    """The N:M mask of a weight [out, in, *kernel]: per output and kernel position, groups of ``m`` consecutive
    input indices keep their ``n`` largest |w| (a last, shorter group keeps min(n, its length))."""
    import torch

    inputs = weight.shape[1]
    moved = weight.detach().abs().movedim(1, -1)  # [out, *kernel, in]
    flat = moved.reshape(-1, inputs)
    mask = torch.zeros_like(flat, dtype=torch.bool)
    full = inputs // m * m
    if full:
        groups = flat[:, :full].reshape(flat.shape[0], -1, m)
        keep = groups.topk(n, dim=-1).indices
        group_mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, keep, True)
        mask[:, :full] = group_mask.reshape(flat.shape[0], full)
    tail = inputs - full
    if tail:
        keep = flat[:, full:].topk(min(n, tail), dim=-1).indices + full
        mask.scatter_(-1, keep, True)
    return mask.reshape(moved.shape).movedim(-1, 1).to(weight.dtype)


def _nm(model, spec: PruneSpec) -> PruneReport:
    from torch.nn.utils import prune

    modules = _conv_and_linear(model)
    kept = [mod for mod in modules if int(mod.weight.shape[1]) >= spec.m]
    if not kept:
        raise PruneError(f"{spec.text}: no conv or linear layer has an input dimension of at least M={spec.m}")
    for mod in kept:
        prune.custom_from_mask(mod, "weight", nm_mask(mod.weight, spec.n, spec.m))
        prune.remove(mod, "weight")
    total = sum(int(mod.weight.numel()) for mod in kept)
    zeros = sum(int((mod.weight == 0).sum()) for mod in kept)
    skipped = len(modules) - len(kept)
    tail = f"; {skipped} layers with fewer than {spec.m} inputs per filter (depthwise, the stem) left dense" \
        if skipped else ""
    return PruneReport(spec, zeros, total, len(kept), skipped,
                       f"{spec.n} of every {spec.m} weights along the input dimension kept in {len(kept)} layers "
                       f"({zeros / total:.1%} of their weights zero{tail})")


# --------------------------------------------------------------------------------------------- reading a model


def make_permanent(model: "torch.nn.Module") -> int:
    """``prune.remove`` every ``torch.nn.utils.prune`` mask of ``model`` in place (its zeros stay, as weights);
    the number of masks removed."""
    from torch.nn.utils import prune

    removed = 0
    for module in model.modules():
        for name in dict.fromkeys(name for _, name in _mask_hooks(module)):
            prune.remove(module, name)
            removed += 1
    return removed


def is_pruned(model: object) -> bool:
    """Whether ``model`` arrives pruned: a ``torch.nn.utils.prune`` mask, a zero conv or linear weight, or a
    batch-norm channel with gamma = beta = 0. Such a model is explored as it is given."""
    import torch
    from torch.nn.utils import prune

    if not isinstance(model, torch.nn.Module):
        return False
    with torch.no_grad():
        for module in model.modules():
            if any(isinstance(hook, prune.BasePruningMethod) for hook in module._forward_pre_hooks.values()):
                return True
        if any(bool((m.weight == 0).any()) for m in _conv_and_linear(model)):
            return True
        return any(bool(((m.weight == 0) & (m.bias == 0)).any()) for m in _batch_norms(model))
