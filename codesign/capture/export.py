"""Capture a model with torch.export, turning every failure into a one-line CaptureError with a hint."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from typing import Any, Iterator, Sequence

import torch
from torch.export import ExportedProgram

from codesign.errors import CaptureError

__all__ = ["as_input_tuple", "shapes_text", "quiet_torch", "first_line", "export_model"]

_DATA_DEPENDENT_HINT = (
    "the model branches or sizes a tensor on its values (data-dependent control flow); "
    "rewrite that part with torch.cond or make it depend only on shapes"
)
_GENERIC_HINT = "try torch.export.draft_export(model, inputs) to list every problem, or save an exported program (.pt2)"


def as_input_tuple(example_inputs: Any) -> tuple[torch.Tensor, ...]:
    """Accept one tensor or a sequence of tensors; anything else is a CaptureError."""
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,)
    if isinstance(example_inputs, (list, tuple)) and example_inputs:
        if all(isinstance(item, torch.Tensor) for item in example_inputs):
            return tuple(example_inputs)
    raise CaptureError(
        "example inputs must be a tensor or a non-empty tuple of tensors, "
        f"got {type(example_inputs).__name__}"
    )


def shapes_text(inputs: Sequence[torch.Tensor]) -> str:
    return ", ".join(str(tuple(item.shape)) for item in inputs)


@contextlib.contextmanager
def quiet_torch() -> Iterator[None]:
    """torch.export logs (and prints) whole graphs and tracebacks on failure; the error is enough."""
    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def first_line(exc: BaseException) -> str:
    for line in str(exc).splitlines():
        if line.strip():
            return " ".join(line.split())
    return type(exc).__name__


def export_model(model: torch.nn.Module, example_inputs: Any) -> ExportedProgram:
    """``torch.export.export`` in eval mode. Errors say whether the inputs or the tracing failed."""
    if not isinstance(model, torch.nn.Module):
        raise CaptureError(f"expected a torch.nn.Module or an ExportedProgram, got {type(model).__name__}")
    inputs = as_input_tuple(example_inputs)
    model = model.eval()
    with quiet_torch():
        try:
            return torch.export.export(model, inputs)
        except Exception as exc:  # classified below: a bad input shape or an untraceable model
            export_error = exc
        try:
            with torch.no_grad():
                model(*inputs)
        except Exception as exc:
            raise CaptureError(
                f"the model does not run on inputs of shape {shapes_text(inputs)}: {first_line(exc)}; "
                "pass --input-shape (or example inputs) the model accepts"
            ) from None
    reason = first_line(export_error)
    data_dependent = "data-dependent" in str(export_error) or "GuardOnDataDependent" in type(export_error).__name__
    hint = _DATA_DEPENDENT_HINT if data_dependent else _GENERIC_HINT
    raise CaptureError(f"torch.export cannot capture the model: {reason}; {hint}")
