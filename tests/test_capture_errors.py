"""A model torch.export cannot capture, or inputs that do not fit, give one-line CaptureErrors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from codesign.capture import from_torch
from codesign.errors import CaptureError


class DataDependent(nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x


def test_data_dependent_control_flow_says_why_and_what_to_try():
    with pytest.raises(CaptureError) as caught:
        from_torch(DataDependent(), (torch.randn(3),))
    message = str(caught.value)
    assert "torch.export cannot capture" in message
    assert "torch.cond" in message
    assert "\n" not in message


def test_input_of_the_wrong_shape_is_named_with_its_shape():
    with pytest.raises(CaptureError) as caught:
        from_torch(nn.Linear(4, 2), (torch.randn(3, 5),))
    message = str(caught.value)
    assert "(3, 5)" in message and "--input-shape" in message
    assert "\n" not in message


@pytest.mark.parametrize("bad", [None, (), ("x",), 3])
def test_example_inputs_must_be_tensors(bad):
    with pytest.raises(CaptureError, match="example inputs"):
        from_torch(nn.ReLU(), bad)


def test_a_non_module_is_rejected():
    with pytest.raises(CaptureError, match="torch.nn.Module"):
        from_torch(lambda x: x, (torch.randn(2),))
