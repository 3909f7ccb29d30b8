"""Binarized units: XNOR-popcount PE/array against {-1,+1} numpy products, and the folded threshold unit."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from codesign.errors import HdlError
from hdl.binary import (
    ThresholdUnit,
    XnorPopcountArray,
    XnorPopcountPE,
    XnorThresholdArray,
    acc_bits_for,
    fold_batchnorm,
    im2col_pm1,
    pack_words,
    to_bits,
    valid_bits_per_word,
    xnor_popcount_dot,
)

# Numpy-model uses (tables, bounds) build components without elaborating them.
pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


def _simulate(top, testbench, clocked: bool = True) -> None:
    sim = Simulator(top)
    if clocked:
        sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


def _direct_conv_pm1(x, weight, stride, pad, pad_value):
    """Golden conv of +-1 tensors by the definition, no im2col: out[o, y, x]."""
    c, h, w = x.shape
    o, _, kh, kw = weight.shape
    xp = np.full((c, h + 2 * pad, w + 2 * pad), pad_value, dtype=np.int64)
    xp[:, pad:pad + h, pad:pad + w] = x
    oh, ow = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    out = np.zeros((o, oh, ow), dtype=np.int64)
    for oy in range(oh):
        for ox in range(ow):
            window = xp[:, oy * stride:oy * stride + kh, ox * stride:ox * stride + kw]
            out[:, oy, ox] = np.tensordot(weight, window, axes=([1, 2, 3], [0, 1, 2]))
    return out


def _sign_bn(x, gamma, beta, mean, var, eps):
    """sign(BN(x)) with sign(0) = +1, per output channel on axis -1."""
    y = gamma * (x - mean) / np.sqrt(var + eps) + beta
    return np.where(y >= 0, 1, -1)


def _binary_gemm_threshold(a_pm1, w_pm1, thresholds, flips, rows, cols, word_bits):
    """Run sign-folded binarized GEMM out[m, n] = (a @ w >= thr) ^ flip on an XnorThresholdArray.

    Tiles m by ``rows`` and n by ``cols``; every tile streams ceil(K / word_bits) packed words.
    Returns (+-1 outputs, raw dot products) as read from the hardware.
    """
    m_total, k = a_pm1.shape
    n_total = w_pm1.shape[1]
    layer = XnorThresholdArray(rows, cols, word_bits, acc_bits_for(k))
    a_words = pack_words(to_bits(a_pm1), word_bits)
    w_words = pack_words(to_bits(w_pm1.T), word_bits)
    beats = valid_bits_per_word(k, word_bits)
    out = np.zeros((m_total, n_total), dtype=np.int64)
    dots = np.zeros((m_total, n_total), dtype=np.int64)

    async def testbench(ctx):
        for m0 in range(0, m_total, rows):
            for n0 in range(0, n_total, cols):
                columns = [min(n0 + c, n_total - 1) for c in range(cols)]
                for c, n in enumerate(columns):
                    ctx.set(layer.thr[c], int(thresholds[n]))
                ctx.set(layer.flip, sum(int(flips[n]) << c for c, n in enumerate(columns)))
                for j, n_valid in enumerate(beats):
                    for r in range(rows):
                        ctx.set(layer.a[r], int(a_words[min(m0 + r, m_total - 1), j]))
                    for c, n in enumerate(columns):
                        ctx.set(layer.w[c], int(w_words[n, j]))
                    ctx.set(layer.n_valid, n_valid)
                    ctx.set(layer.en, 1)
                    ctx.set(layer.clear, j == 0)
                    await ctx.tick()
                ctx.set(layer.en, 0)
                for r in range(min(rows, m_total - m0)):
                    bits = ctx.get(layer.out[r])
                    for c in range(min(cols, n_total - n0)):
                        out[m0 + r, n0 + c] = 1 if (bits >> c) & 1 else -1
                        dots[m0 + r, n0 + c] = ctx.get(layer.acc[r][c])

    _simulate(layer, testbench)
    return out, dots


def test_pe_dot_is_the_pm1_dot_product_of_the_valid_bits():
    rng = np.random.default_rng(7)
    word_bits = 13
    pe = XnorPopcountPE(word_bits, acc_bits=8)
    cases = [(int(rng.integers(0, 2**word_bits)), int(rng.integers(0, 2**word_bits)), int(n))
             for n in rng.integers(0, word_bits + 1, size=60)]
    cases += [(0, 0, word_bits), (2**word_bits - 1, 0, word_bits), (5, 5, 0)]
    got = []

    async def testbench(ctx):
        for a, w, n in cases:
            ctx.set(pe.a, a)
            ctx.set(pe.w, w)
            ctx.set(pe.n_valid, n)
            got.append(ctx.get(pe.dot))

    _simulate(pe, testbench)
    for (a, w, n), dot in zip(cases, got):
        a_pm1 = np.where([(a >> i) & 1 for i in range(n)], 1, -1)
        w_pm1 = np.where([(w >> i) & 1 for i in range(n)], 1, -1)
        assert dot == int(np.dot(a_pm1, w_pm1)) if n else dot == 0


def test_pe_clear_restarts_and_enable_gates_accumulation():
    pe = XnorPopcountPE(4, acc_bits=8)
    seen = []

    async def testbench(ctx):
        ctx.set(pe.a, 0b1111)
        ctx.set(pe.w, 0b1111)
        ctx.set(pe.n_valid, 4)
        for en, clear in [(1, 1), (1, 0), (0, 0), (1, 0), (0, 1), (1, 0)]:
            ctx.set(pe.en, en)
            ctx.set(pe.clear, clear)
            await ctx.tick()
            seen.append(ctx.get(pe.acc))

    _simulate(pe, testbench)
    assert seen == [4, 8, 8, 12, 0, 4]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 64).flatmap(lambda n: st.tuples(
    st.lists(st.sampled_from([-1, 1]), min_size=n, max_size=n),
    st.lists(st.sampled_from([-1, 1]), min_size=n, max_size=n),
    st.integers(1, 40))))
def test_packed_word_model_sums_to_the_pm1_dot_product(case):
    a, w, word_bits = case
    a_words = pack_words(to_bits(a), word_bits)
    w_words = pack_words(to_bits(w), word_bits)
    beats = valid_bits_per_word(len(a), word_bits)
    total = sum(xnor_popcount_dot(x, y, n) for x, y, n in zip(a_words, w_words, beats))
    assert total == int(np.dot(a, w))


def test_binarized_conv_as_im2col_gemm_with_folded_batchnorm():
    rng = np.random.default_rng(11)
    channels, height, width, filters, kernel, stride, pad = 3, 5, 5, 5, 3, 1, 1
    x = rng.choice([-1, 1], size=(channels, height, width))
    weight = rng.choice([-1, 1], size=(filters, channels, kernel, kernel))
    gamma = rng.normal(size=filters) * np.where(np.arange(filters) % 2, -1, 1)
    beta, mean = rng.normal(size=filters), rng.normal(scale=3, size=filters)
    var, eps = rng.uniform(0.5, 2.0, size=filters), 1e-5
    k = channels * kernel * kernel

    patches = im2col_pm1(x, kernel, stride, pad, pad_value=-1)      # (oh*ow, k)
    w_mat = weight.reshape(filters, k).T                           # (k, filters)
    thr, flips = fold_batchnorm(gamma, beta, mean, var, eps, k=k)
    out, dots = _binary_gemm_threshold(patches, w_mat, thr, flips, rows=4, cols=4, word_bits=8)

    conv = _direct_conv_pm1(x, weight, stride, pad, pad_value=-1)  # (filters, oh, ow)
    conv_rows = conv.reshape(filters, -1).T
    assert np.array_equal(dots, conv_rows)
    assert np.array_equal(out, _sign_bn(conv_rows, gamma, beta, mean, var, eps))


def test_binarized_vit_linear_layer_with_a_partial_last_word():
    rng = np.random.default_rng(12)
    tokens, dim, out_features = 5, 45, 6          # 45 = 2 words of 16 + 13 valid bits
    x = rng.choice([-1, 1], size=(tokens, dim))
    weight = rng.choice([-1, 1], size=(dim, out_features))
    gamma = rng.uniform(0.5, 2, size=out_features) * rng.choice([-1, 1], size=out_features)
    beta, mean, var = rng.normal(size=out_features), rng.normal(size=out_features) * 4, np.ones(out_features)
    thr, flips = fold_batchnorm(gamma, beta, mean, var, k=dim)
    out, dots = _binary_gemm_threshold(x, weight, thr, flips, rows=2, cols=3, word_bits=16)
    assert np.array_equal(dots, x @ weight)
    assert np.array_equal(out, _sign_bn(x @ weight, gamma, beta, mean, var, 1e-5))


finite = st.floats(-50, 50, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(gamma=finite, beta=finite, mean=finite, var=st.floats(0, 100), k=st.integers(1, 40))
def test_folded_threshold_equals_sign_of_batchnorm_on_every_reachable_dot(gamma, beta, mean, var, k):
    x = np.arange(-k, k + 1, dtype=np.float64)
    y = gamma * (x - mean) / np.sqrt(var + 1e-5) + beta
    assume(np.all(np.abs(y) > 1e-9 * (1 + abs(beta))) or gamma == 0)  # no float ties at y = 0
    thr, flip = fold_batchnorm(gamma, beta, mean, var, 1e-5, k=k)
    assert -k <= thr <= k + 1
    folded = (x >= thr) ^ bool(flip)
    assert np.array_equal(folded, y >= 0)


def test_threshold_unit_compares_and_flips_each_channel():
    unit = ThresholdUnit(3, acc_bits=6)
    cases = [((5, -3, 0), (5, -2, 1), 0b000, 0b001),
             ((5, -3, 0), (5, -2, 1), 0b111, 0b110),
             ((-32, 31, 7), (-32, 32, 7), 0b010, 0b111)]
    got = []

    async def testbench(ctx):
        for dots, thrs, flip, _ in cases:
            for c in range(3):
                ctx.set(unit.dot[c], dots[c])
                ctx.set(unit.thr[c], thrs[c])
            ctx.set(unit.flip, flip)
            got.append(ctx.get(unit.out))

    _simulate(unit, testbench, clocked=False)
    assert got == [expected for *_, expected in cases]


@pytest.mark.parametrize("make, message", [
    (lambda: XnorPopcountPE(0), "word_bits=0"),
    (lambda: XnorPopcountPE(2048), "word_bits=2048"),
    (lambda: XnorPopcountPE(32, acc_bits=6), "acc_bits=6"),
    (lambda: XnorPopcountArray(0, 4), "rows=0"),
    (lambda: XnorPopcountArray(2, 2, word_bits=8.0), "word_bits must be an integer"),
    (lambda: ThresholdUnit(0), "channels=0"),
    (lambda: XnorThresholdArray(2, 0), "cols=0"),
    (lambda: fold_batchnorm([1.0], [np.nan], [0.0], [1.0]), "finite"),
    (lambda: fold_batchnorm([1.0], [0.0], [0.0], [-1.0]), "var + eps"),
    (lambda: to_bits([1, 0, -1]), "-1 or +1"),
])
def test_bad_parameters_raise_a_one_line_hdl_error(make, message):
    with pytest.raises(HdlError, match=message.replace("+", r"\+")) as info:
        make()
    assert "\n" not in str(info.value)
