"""Bit-widths per model, per op kind and per layer name, and the bytes they give."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from codesign.capture import Bits, BitsPolicy, from_torch, parse_bits, parse_override
from codesign.errors import BitWidthError, CodesignError
from codesign.workload import OpKind


def small_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, groups=1), nn.ReLU(), nn.Conv2d(4, 4, 3, groups=4), nn.Flatten(), nn.Linear(4, 2))


def capture(bits):
    torch.manual_seed(0)
    return from_torch(small_model().eval(), (torch.randn(1, 3, 5, 5),), bits=bits)


def test_default_is_8_bit_weights_and_activations_with_32_bit_accumulators():
    workload = from_torch(small_model().eval(), (torch.randn(1, 3, 5, 5),))
    assert {layer.bits for layer in workload.layers} == {Bits(8, 8, 32)}


def test_layer_name_beats_op_kind_beats_model_default():
    policy = BitsPolicy(
        default=Bits(4, 4),
        by_kind={OpKind.DEPTHWISE_CONV: Bits(8, 8), "linear": Bits(2, 6)},
        by_name={"4": Bits(1, 1, 16)},
    )
    workload = capture(policy)
    assert workload.layer("0").bits == Bits(4, 4)
    assert workload.layer("2").bits == Bits(8, 8)
    assert workload.layer("4").bits == Bits(1, 1, 16)
    assert workload.layer("4").bits.binarized


@settings(max_examples=10, deadline=None)
@given(weight=st.integers(1, 32), activation=st.integers(1, 32))
def test_bytes_are_elements_times_bits_rounded_up_to_whole_bytes(weight, activation):
    workload = capture(Bits(weight, activation))
    conv = workload.layer("0")
    assert conv.weight_bytes == math.ceil((4 * 3 * 9 + 4) * weight / 8)
    assert conv.input_bytes == math.ceil(3 * 25 * activation / 8)
    assert conv.output_bytes == math.ceil(4 * 9 * activation / 8)


@pytest.mark.parametrize("value", [0, 33, -1])
def test_bit_width_outside_1_to_32_is_rejected(value):
    with pytest.raises(BitWidthError, match="outside the supported range 1..32"):
        Bits(weight=value)


@pytest.mark.parametrize("text", ["8", "8,8,8,8", "a,8", "8,", "0,8", "8,40"])
def test_malformed_bits_text_is_a_typed_error(text):
    with pytest.raises(BitWidthError):
        parse_bits(text)


def test_bits_text_parses_weight_activation_and_optional_accumulator():
    assert parse_bits("4,8") == Bits(4, 8, 32)
    assert parse_bits(" 1, 1, 16 ") == Bits(1, 1, 16)
    assert parse_override("blocks.0.attn/matmul=2,4") == ("blocks.0.attn/matmul", Bits(2, 4))


def test_unknown_kind_or_layer_name_in_an_override_is_reported():
    with pytest.raises(BitWidthError, match="unknown op kind"):
        BitsPolicy(by_kind={"convolution": Bits()})
    with pytest.raises(CodesignError, match="no layer named nope"):
        capture(BitsPolicy(by_name={"nope": Bits(4, 4)}))


def test_an_accumulator_narrower_than_one_product_is_rejected():
    with pytest.raises(BitWidthError, match="cannot hold one 4x8-bit product"):
        parse_bits("4,8,2")
    assert parse_bits("4,8,12") == Bits(4, 8, 12)
    assert parse_bits("1,1,2") == Bits(1, 1, 2)  # binarized: popcounts, not products
