
__all__ = [
    "CodesignError", "ModelLoadError", "CaptureError", "BitWidthError", "SpecError", "MappingError",
    "HdlError", "OutputError", "UnmappedOpsError"
]
"""Typed errors: every failure a user can cause is one of these, with a message for a person.

The CLI prints ``codesign: error: <message>`` on one line and exits with status 2 for any of them.
"""


class CodesignError(Exception):
    """Base of all user-facing errors."""


class ModelLoadError(CodesignError):
    """A model reference (zoo name, module:factory, file, .pt2) cannot be resolved or loaded."""


class CaptureError(CodesignError):
    """torch.export cannot capture the model, or the example inputs do not fit it."""


class BitWidthError(CodesignError):
    """A bit-width is outside the supported range."""


class SpecError(CodesignError):
    """An accelerator spec (YAML or preset) is malformed or invalid."""


class MappingError(CodesignError):
    """A layer cannot be mapped: unsupported dataflow, or no tile fits the buffers."""


class UnmappedOpsError(CodesignError):
    """The captured model has ops no layer kind covers: simulating it would leave part of the model out."""


class HdlError(CodesignError):
    """A hardware generator was asked for something it cannot build."""


class OutputError(CodesignError):
    """An output file cannot be written."""
