"""The independent MAC count the capture is checked against: torch's FlopCounterMode, flops / 2.

Attention runs on the math backend here: on the CPU, FlopCounterMode has no formula for the fused
scaled-dot-product kernel and would count its two GEMMs as 0.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from codesign.capture.export import as_input_tuple

__all__ = ["flop_counter_macs"]


def flop_counter_macs(model: torch.nn.Module, example_inputs: Any) -> tuple[int, dict[str, int]]:
    """(total MACs, MACs per module path) as FlopCounterMode counts them; the root module is ``""``.

    A module's count includes its submodules' counts.
    """
    inputs = as_input_tuple(example_inputs)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model.eval()(*inputs)
    per_module: dict[str, int] = {}
    for key, counts in counter.get_flop_counts().items():
        if key == "Global":
            continue
        _, _, path = key.partition(".")
        per_module[path] = sum(counts.values()) // 2
    return counter.get_total_flops() // 2, per_module
