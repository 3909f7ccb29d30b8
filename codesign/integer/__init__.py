"""Integer-only inference, defined once (Jacob et al., CVPR 2018): the scheme's arithmetic (``scheme``), a captured
network as integer steps (``graph``), calibration shared with the accuracy proxy (``calibrate``), the integer
parameters (``model``) and a numpy reference computed from the PyTorch model's own tensors (``reference``).
docs/integer-inference.md states every formula."""

__all__ = ["scheme", "graph", "calibrate", "model", "reference"]
