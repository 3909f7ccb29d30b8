"""A MAC layer writes the tensor that leaves its output path: with a ReLU fused, a run-length coded output is
stored at the ReLU output's zeros (docs/simulator.md, "Fusion" and "Sparsity"; Eyeriss JSSC 2017 Sec. IV-B: the
ofmaps pass the ReLU module, then the RLC encoder, on their way to DRAM)."""

from argparse import Namespace

import pytest
import torch
from torch import nn

from codesign.arch_loader import load_arch
from codesign.capture import from_torch
from codesign.cli.model_args import bits_policy_from_args
from codesign.sparsity import stored_bits
from sim.engine import simulate


@pytest.fixture(scope="module")
def captured():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()).eval()
    arch = load_arch("eyeriss")  # activations run-length coded (5-bit runs) between the chip and DRAM
    workload = from_torch(model, (torch.randn(1, 3, 16, 16),), name="conv_relu",
                          bits=bits_policy_from_args(Namespace(bits="16,16"), arch))
    conv, relu = workload.layers
    return arch, workload, conv, relu


def rlc_output_bits(elements: int, density: float) -> float:
    """The documented run-length size of ``elements`` 16-bit values at ``density`` (5-bit runs, three run+value
    pairs per 64-bit word)."""
    return stored_bits("run_length", elements, round(density * elements), 16, 5, word_bits=64)


def written_bits(result, name: str) -> int:
    layer = next(item for item in result.layers if item.name == name)
    return layer.bits_moved["dram"]["output"]


def test_fused_relu_output_is_stored_at_the_relu_outputs_density(captured):
    arch, workload, conv, relu = captured
    assert relu.output_density < 0.75 < conv.output_density  # the ReLU's zeros are what compresses
    elements = conv.output_bytes // 2
    result = simulate(workload, arch, "rs", fuse=True, onchip_activations=False)
    assert written_bits(result, conv.name) == pytest.approx(rlc_output_bits(elements, relu.output_density), abs=64)


def test_unfused_conv_output_is_stored_at_its_own_density(captured):
    arch, workload, conv, relu = captured
    elements = conv.output_bytes // 2
    result = simulate(workload, arch, "rs", fuse=False, onchip_activations=False)
    assert written_bits(result, conv.name) == pytest.approx(rlc_output_bits(elements, conv.output_density), abs=64)
