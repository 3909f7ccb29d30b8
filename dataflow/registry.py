"""The dataflows the tool knows, by name: the built-ins and any a user registers.

``register(model)`` adds a ``DataflowModel`` under its ``name``; ``get(name)`` finds it (a ``Dataflow``
member or its string); ``for_arch(arch, name)`` also checks the accelerator lists it. Every "unknown
dataflow" and "does not support dataflow" error of the tool comes from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from codesign.arch import ArchSpec, dataflow_name
from codesign.errors import MappingError

if TYPE_CHECKING:  # pragma: no cover
    from dataflow.interface import DataflowModel

__all__ = ["register", "unregister", "get", "names", "for_arch"]

_MODELS: dict[str, "DataflowModel"] = {}


def register(model: "DataflowModel", *, replace: bool = False) -> "DataflowModel":
    """Make ``model`` available under ``model.name``; ValueError if the name is taken (unless ``replace``)."""
    name = dataflow_name(model.name)
    if not name or not isinstance(name, str):
        raise ValueError(f"a dataflow model needs a non-empty name, got {model.name!r}")
    if name in _MODELS and not replace and _MODELS[name] is not model:
        raise ValueError(f"dataflow {name!r} is already registered")
    _MODELS[name] = model
    return model


def unregister(name: object) -> None:
    """Forget the dataflow registered under ``name`` (KeyError if there is none)."""
    del _MODELS[dataflow_name(name)]


def names() -> tuple[str, ...]:
    """Registered dataflow names, built-ins first, in registration order."""
    _load_builtins()
    return tuple(_MODELS)


def get(dataflow: object) -> "DataflowModel":
    """The model registered as ``dataflow`` ('ws', a ``Dataflow`` member, ...); MappingError if unknown."""
    _load_builtins()
    name = dataflow_name(dataflow)
    model = _MODELS.get(str(name).lower()) if isinstance(name, str) else None
    if model is None:
        raise MappingError(f"unknown dataflow {dataflow_name(dataflow)!r}; choose one of {', '.join(_MODELS)}")
    return model


def for_arch(arch: ArchSpec, dataflow: object) -> "DataflowModel":
    """The model of ``dataflow`` after checking ``arch`` lists it; MappingError otherwise."""
    model = get(dataflow)
    if not arch.supports(model.name):
        supported = ", ".join(dataflow_name(d) for d in arch.dataflows)
        raise MappingError(f"accelerator {arch.name} does not support dataflow {model.name} (it supports {supported})")
    return model


def _load_builtins() -> None:
    # Importing the package registers WS, OS and RS (one line each at the end of their modules).
    import dataflow  # noqa: F401
