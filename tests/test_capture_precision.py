"""Bit-widths per model, per op kind and per layer name, and the bytes they give."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from codesign.arch_loader import load_arch
from codesign.capture import Bits, BitsPolicy, from_torch, parse_bits, parse_override
from codesign.capture.precision import OwnWidths, as_policy, for_arch, pe_bits
from codesign.cli import main
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


bits_strategy = st.builds(Bits, weight=st.integers(2, 16), activation=st.integers(2, 16), accumulator=st.just(32))
own_strategy = st.builds(OwnWidths, weight=st.none() | st.integers(1, 32), activation=st.none() | st.integers(1, 32))


@settings(max_examples=60, deadline=None)
@given(default=bits_strategy, kind=st.none() | bits_strategy, name=st.none() | bits_strategy, own=own_strategy,
       explicit=st.booleans())
def test_layer_name_beats_kind_beats_asked_default_beats_the_models_own_beats_the_fallback(
        default, kind, name, own, explicit):
    policy = BitsPolicy(default=default, by_kind={"conv": kind} if kind else {}, by_name={"c": name} if name else {},
                        explicit=explicit)
    got = policy.bits_for("c", OpKind.CONV, own)
    if name:
        assert got == name
    elif kind:
        assert got == kind
    elif explicit:
        assert got == default
    else:  # each operand the model quantizes at its own width, the rest (and the accumulator) at the fallback
        assert got.weight == (own.weight if own.weight is not None else default.weight)
        assert got.activation == (own.activation if own.activation is not None else default.activation)
        assert got.accumulator == default.accumulator


def test_a_capture_for_an_accelerator_defaults_to_its_pe_widths_unless_bits_were_asked_for():
    eyeriss = load_arch("eyeriss")  # 16-bit PEs with 16-bit partial sums
    assert pe_bits(eyeriss.pe) == Bits(16, 16, 16)
    assert for_arch(as_policy(None), eyeriss).default == Bits(16, 16, 16)
    assert for_arch(as_policy(Bits(4, 8)), eyeriss).default == Bits(4, 8)
    assert {layer.bits for layer in capture_for("eyeriss").layers} == {Bits(16, 16, 16)}
    assert {layer.bits for layer in capture_for("fpga-4x4").layers} == {Bits(8, 8, 32)}


def test_a_pe_accumulator_wider_than_32_bits_is_kept_at_32():
    wide = load_arch("fpga-4x4")
    wide = dataclasses.replace(wide, pe=dataclasses.replace(wide.pe, accumulator_bits=48))
    assert pe_bits(wide.pe) == Bits(8, 8, 32)


def capture_for(arch: str):
    torch.manual_seed(0)
    return from_torch(small_model().eval(), (torch.randn(1, 3, 5, 5),), arch=arch)


def sim_json(argv: list[str], out) -> dict:
    assert main(["sim", *argv, "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    return doc["runs"][0] if "runs" in doc else doc


@pytest.mark.slow
def test_sim_on_eyeriss_with_no_bits_runs_16_bit_layers_and_says_so(tmp_path, capsys):
    run = sim_json(["zoo:resnet18-cifar", "--input-shape", "1,3,8,8", "--arch", "eyeriss", "--max-rows", "1"],
                   tmp_path / "sim.json")
    printed = capsys.readouterr().out
    assert "bit-widths W/A/ACC of the MAC layers: 16/16/16 x21" in printed
    assert "eyeriss's PE widths 16/16/16" in printed
    assert not [layer["name"] for layer in run["layers"] if any("width mismatch" in note for note in layer["notes"])]
    stem = next(layer for layer in run["layers"] if layer["name"] == "stem.0")
    assert stem["bits_moved"]["dram"]["weight"] == 16 * 3 * 64 * 3 * 3  # every stem weight once, at 16 bits


def test_sim_bits_flag_wins_over_the_accelerators_widths_and_each_layer_notes_the_mismatch(tmp_path, capsys):
    path = tmp_path / "tiny.py"
    path.write_text("import torch\nfrom torch import nn\n\ndef net():\n"
                    "    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()).eval(), (torch.randn(1, 3, 8, 8),)\n")
    run = sim_json([f"{path}:net", "--arch", "eyeriss", "--bits", "8,8", "--quiet"], tmp_path / "sim.json")
    conv = next(layer for layer in run["layers"] if layer["op"] == "conv")
    assert any("8x8-bit operands on 16x16-bit int_mac PEs" in note for note in conv["notes"])
    assert "bit-widths" not in capsys.readouterr().out
