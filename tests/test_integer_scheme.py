"""The integer scheme's arithmetic: fixed-point requantization against exact rationals and against float, the
multiplier's range, quantization codes, batch-norm folding."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.integer.scheme import (
    activation_qparams, fold_batchnorm, quantize, quantize_multiplier, requantize, requantize_exact,
)

ACCUMULATORS = st.integers(min_value=-(2**31), max_value=2**31 - 1)
MULTIPLIERS = st.floats(min_value=1e-6, max_value=1.9, allow_nan=False, allow_infinity=False)


@given(ACCUMULATORS, MULTIPLIERS)
@settings(max_examples=400, deadline=None)
def test_requantization_equals_the_pure_integer_formula(acc, real):
    multiplier, shift = quantize_multiplier(real)
    exact = math.floor(Fraction(acc * multiplier, 2**shift) + Fraction(1, 2))
    assert int(requantize(np.array([acc]), multiplier, shift)[0]) == exact == requantize_exact(acc, multiplier, shift)


@given(st.integers(min_value=-(2**24), max_value=2**24), MULTIPLIERS)
@settings(max_examples=400, deadline=None)
def test_requantization_is_within_one_lsb_of_the_float_product(acc, real):
    multiplier, shift = quantize_multiplier(real)
    assert abs(int(requantize(np.array([acc]), multiplier, shift)[0]) - acc * real) <= 1.0


@given(st.floats(min_value=1e-12, max_value=1.99, allow_nan=False))
@settings(max_examples=300, deadline=None)
def test_the_multiplier_is_a_normalised_31_bit_fraction(real):
    multiplier, shift = quantize_multiplier(real)
    assert 1 <= shift <= 62 and 0 < multiplier < 2**31
    if shift < 62:
        assert multiplier >= 2**30
    assert abs(multiplier / 2**shift - real) <= 2.0**-shift


def test_a_zero_multiplier_maps_everything_to_zero():
    multiplier, shift = quantize_multiplier(0.0)
    assert requantize(np.array([-(2**31), 12345]), multiplier, shift).tolist() == [0, 0]


def test_a_never_negative_tensor_uses_all_256_codes_from_its_zero():
    qp = activation_qparams(2.55, unsigned=True)
    assert qp.zero_point == -128 and math.isclose(qp.scale, 0.01)
    assert quantize(np.array([0.0, 2.55, 9.0, -1.0]), qp).tolist() == [-128, 127, 127, -128]
    signed = activation_qparams(1.27, unsigned=False)
    assert signed.zero_point == 0 and quantize(np.array([-1.27, 1.27]), signed).tolist() == [-127, 127]


def test_batch_norm_folds_into_the_conv_exactly_in_float():
    generator = torch.Generator().manual_seed(3)
    conv = torch.nn.Conv2d(5, 7, 3, padding=1, bias=True).double()
    bn = torch.nn.BatchNorm2d(7).double().eval()
    with torch.no_grad():
        for tensor in (bn.weight, bn.bias, bn.running_mean):
            tensor.copy_(torch.randn(7, generator=generator, dtype=torch.float64))
        bn.running_var.copy_(torch.rand(7, generator=generator, dtype=torch.float64) + 0.1)
    x = torch.randn(2, 5, 9, 9, generator=generator, dtype=torch.float64)
    weight, bias = fold_batchnorm(conv.weight.detach().numpy(), conv.bias.detach().numpy(), bn.weight.detach().numpy(),
                                  bn.bias.detach().numpy(), bn.running_mean.numpy(), bn.running_var.numpy(), bn.eps)
    folded = torch.nn.functional.conv2d(x, torch.from_numpy(weight), torch.from_numpy(bias), padding=1)
    with torch.no_grad():
        expected = bn(conv(x))
    assert torch.allclose(folded, expected, rtol=1e-12, atol=1e-12)
