"""The model zoo: lightweight-DL model families in plain PyTorch, at ImageNet and CIFAR input sizes.

``build(name, seed)`` returns a random-initialised model in eval mode and its example inputs (batch 1),
ready for ``torch.export``. Every family module imports torch, so this registry loads them only on use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from codesign.errors import ModelLoadError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["ZooEntry", "names", "entry", "build"]


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model: where its factory lives and what it is fed."""

    name: str
    module: str  # family module under codesign.zoo
    factory: str  # function in that module: factory(num_classes=..., cifar=...) -> nn.Module
    cifar: bool  # True: 32x32 input, 10 classes, CIFAR stem; False: 224x224 input, 1000 classes

    @property
    def input_hw(self) -> int:
        return 32 if self.cifar else 224

    @property
    def num_classes(self) -> int:
        return 10 if self.cifar else 1000

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, 3, self.input_hw, self.input_hw)


_FAMILIES: dict[str, tuple[str, str]] = {
    "resnet18": ("resnet", "resnet18"),
    "mobilenetv2": ("mobilenetv2", "mobilenet_v2"),
    "shufflenetv2": ("shufflenetv2", "shufflenet_v2"),
    "ghostnet": ("ghostnet", "ghostnet"),
    "densenet-bc": ("densenet", "densenet_bc"),
    "condensenet": ("condensenet", "condensenet"),
    "deit-tiny": ("deit", "deit_tiny"),
}

_ENTRIES: dict[str, ZooEntry] = {}
for _base, (_module, _factory) in _FAMILIES.items():
    _ENTRIES[_base] = ZooEntry(_base, _module, _factory, cifar=False)
    _ENTRIES[f"{_base}-cifar"] = ZooEntry(f"{_base}-cifar", _module, _factory, cifar=True)


def names() -> list[str]:
    """All zoo model names: each family at ImageNet size, then each as ``NAME-cifar``."""
    return list(_ENTRIES)


def entry(name: str) -> ZooEntry:
    """The registry entry of ``name``; an unknown name is a ModelLoadError listing the valid ones."""
    try:
        return _ENTRIES[name]
    except (KeyError, TypeError):
        raise ModelLoadError(
            f"unknown zoo model {name!r}; valid names: {', '.join(names())}"
        ) from None


def build(name: str, seed: int = 0) -> tuple["torch.nn.Module", tuple["torch.Tensor", ...]]:
    """Build zoo model ``name`` with weights drawn after ``torch.manual_seed(seed)``.

    Returns the module in eval mode and its example inputs: one random image batch of 1.
    """
    spec = entry(name)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ModelLoadError(f"zoo seed must be a non-negative integer, got {seed!r}")
    import torch

    factory = getattr(importlib.import_module(f"codesign.zoo.{spec.module}"), spec.factory)
    torch.manual_seed(seed)
    model = factory(num_classes=spec.num_classes, cifar=spec.cifar)
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    example = torch.randn(spec.input_shape, generator=generator)
    return model, (example,)
