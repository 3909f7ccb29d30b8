"""GemmCore in Amaranth's simulator: bit-exact tiles, exact cycles against the contract's timing, stalls,
params, the array registry."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.arch import ArchSpec, BufferSpec, DramSpec, EnergyTable, PeSpec
from codesign.contract import tile_timing
from codesign.errors import BitWidthError, HdlError
from codesign.pe import PeKind
from hdl.arrays import ARRAY_KINDS, RTL_DATAFLOWS, array_kind
from hdl.benches.amaranth_bench import run_cases_amaranth
from hdl.benches.golden import assemble_gemm, gemm_case, standard_cases, tile_case
from hdl.core import GemmCore
from hdl.params import CoreParams, core_params_from_arch

SHAPES = [(1, 1), (2, 3), (3, 2), (4, 4)]


def _small(dataflow, rows, cols, **kw):
    signed = kw.pop("signed", True)
    ws, as_ = kw.pop("ws", signed), kw.pop("as_", signed)
    return CoreParams(dataflow, rows, cols, kw.pop("wb", 8), kw.pop("ab", 8), ws, as_,
                      max_m=kw.pop("max_m", 12), max_k=kw.pop("max_k", 12), **kw)


@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize("rows,cols", SHAPES)
def test_standard_cases_are_bit_exact_and_take_exactly_the_predicted_cycles(dataflow, rows, cols):
    params = _small(dataflow, rows, cols)
    cases = standard_cases(params, seed=rows * 10 + cols)
    for case, result in zip(cases, run_cases_amaranth(params, cases), strict=True):
        assert result.bit_exact, (case.name, result.mismatches[:2])
        if case.timed:
            assert result.tile_cycles == case.predicted_tile_cycles, case.name
            assert result.cycles == case.predicted_cycles, case.name
        else:
            assert result.cycles >= case.predicted_cycles, case.name


@settings(max_examples=12, deadline=None)
@given(st.sampled_from(["ws", "os"]), st.integers(1, 3), st.integers(1, 3), st.data())
def test_any_tile_shape_takes_tile_timing_cycles(dataflow, rows, cols, data):
    params = _small(dataflow, rows, cols, max_m=6, max_k=6)
    m_max, k_max, n_max = params.tile_max
    shapes = [(data.draw(st.integers(1, m_max)), data.draw(st.integers(1, k_max)), data.draw(st.integers(1, n_max)))
              for _ in range(data.draw(st.integers(1, 3)))]
    case = tile_case(params, "random", shapes, np.random.default_rng(0))
    (result,) = run_cases_amaranth(params, [case])
    assert result.bit_exact
    assert result.tile_cycles == [tile_timing.tile_cycles(dataflow, m, k, n, rows, cols) for m, k, n in shapes]
    assert result.cycles == tile_timing.sequence_cycles(dataflow, shapes, rows, cols)


@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize("signed,wb,ab", [(False, 4, 4), (True, 2, 16), (False, 16, 2), (True, 16, 16)])
def test_extreme_formats_are_bit_exact(dataflow, signed, wb, ab):
    params = _small(dataflow, 2, 2, wb=wb, ab=ab, signed=signed, max_k=5, max_m=5)
    cases = [c for c in standard_cases(params, seed=3) if c.name.startswith("extremes") or c.name == "full tile"]
    assert cases
    for case, result in zip(cases, run_cases_amaranth(params, cases), strict=True):
        assert result.bit_exact, (case.name, result.mismatches[:1])


@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize("ws,as_,wb,ab", [(True, False, 8, 4), (False, True, 3, 7)])
def test_mixed_signedness_is_bit_exact_at_the_extremes(dataflow, ws, as_, wb, ab):
    params = _small(dataflow, 2, 3, wb=wb, ab=ab, ws=ws, as_=as_, max_k=6, max_m=6)
    assert params.signed and params.top_name.endswith(f"_{'i' if ws else 'u'}{wb}x{'i' if as_ else 'u'}{ab}")
    cases = [c for c in standard_cases(params, seed=4) if c.name.startswith("extremes") or c.name.startswith("GEMM")]
    assert len(cases) == 3  # the largest product, the most negative one, and a tiled GEMM
    for case, result in zip(cases, run_cases_amaranth(params, cases), strict=True):
        assert result.bit_exact, (case.name, result.mismatches[:1])


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_logic_and_mixed_multipliers_match_numpy(dataflow):
    params = _small(dataflow, 2, 3, multiplier="logic", dsp_pes=2)
    case = gemm_case(params, "gemm", 5, 7, 4, np.random.default_rng(1))
    (result,) = run_cases_amaranth(params, [case])
    assert result.bit_exact
    assert np.array_equal(assemble_gemm(params, case, result.result_rows), np.asarray(case.gemm["expected"]))


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_backpressure_and_input_gaps_slow_the_core_but_keep_results_exact(dataflow):
    params = _small(dataflow, 3, 3)
    rng = np.random.default_rng(5)
    shapes = [params.tile_max, (2, 2, 2), params.tile_max]
    case = tile_case(params, "stalls", shapes, rng, timed=False, valid_gap_share=0.5, ready_low_share=0.7)
    (result,) = run_cases_amaranth(params, [case], seed=9)
    assert result.bit_exact, result.mismatches[:2]
    assert result.cycles > case.predicted_cycles


def test_a_cycle_mismatch_fails_the_check_even_when_results_are_exact():
    from hdl.verify import _case_check

    params = _small("ws", 2, 2)
    case = tile_case(params, "one", [(3, 2, 2)], np.random.default_rng(0))
    (result,) = run_cases_amaranth(params, [case])
    measured = dataclasses.asdict(result)
    assert _case_check(params, case, measured).passed
    for wrong in (case.predicted_cycles + 1, case.predicted_cycles - 1):
        late = dataclasses.replace(case, predicted_cycles=wrong, predicted_tile_cycles=[wrong])
        check = _case_check(params, late, measured)
        assert not check.passed and check.measured_cycles == case.predicted_cycles


@pytest.mark.parametrize("value", [0, -1, 65])
@pytest.mark.parametrize("field", ["rows", "cols"])
def test_array_sizes_outside_1_to_64_are_rejected(field, value):
    with pytest.raises(HdlError, match=field):
        CoreParams(**{field: value})


@pytest.mark.parametrize("bits", [1, 17])
def test_operand_bits_outside_the_range_are_rejected(bits):
    with pytest.raises(BitWidthError, match="2..16"):
        CoreParams(weight_bits=bits)


def test_a_row_stationary_gemm_core_points_to_the_rs_array():
    with pytest.raises(HdlError, match="row stationary.*not a GEMM core.*codesign hdl --dataflow rs"):
        CoreParams(dataflow="rs")
    with pytest.raises(HdlError, match="unknown dataflow"):
        CoreParams(dataflow="xy")


def _arch(rows=4, cols=4, wb=8, ab=8, acc=32, **pe):
    return ArchSpec("t", rows, cols, PeSpec(wb, ab, acc, **pe), BufferSpec(1024), DramSpec(1.0),
                    EnergyTable("e", "s", 1, 1, 1, 1, 1))


def test_params_from_arch_follow_its_array_bits_and_accumulator():
    ws = core_params_from_arch(_arch(), "ws")
    assert (ws.rows, ws.cols, ws.weight_bits, ws.acc_bits, ws.tile_max[1:]) == (4, 4, 8, 18, (4, 4))
    os_ = core_params_from_arch(_arch(acc=20), "os")
    assert os_.acc_bits <= 20 and core_params_from_arch(_arch(acc=21), "os").max_k > os_.max_k
    assert core_params_from_arch(_arch()).dataflow == "ws"


def test_params_from_arch_read_the_pe_spec_signedness_and_multiplier():
    spec = _arch(weight_signed=True, activation_signed=False, multiplier="logic")
    for dataflow in ("ws", "os"):
        params = core_params_from_arch(spec, dataflow)
        assert (params.weight_signed, params.activation_signed, params.multiplier) == (True, False, "logic")
        assert params.pe.weight_bits == spec.pe.weight_bits and params.pe.activation_bits == spec.pe.activation_bits
        assert params.acc_bits == spec.pe.accumulator_bits_for(params.reduction_max) <= spec.pe.accumulator_bits
    # the explicit keyword arguments (the CLI's --multiplier and --unsigned) override the spec
    params = core_params_from_arch(spec, "ws", multiplier="dsp", signed=False)
    assert (params.weight_signed, params.activation_signed, params.multiplier) == (False, False, "dsp")


def test_params_from_arch_size_the_os_reduction_for_mixed_signedness():
    unsigned_acts = core_params_from_arch(_arch(acc=20, activation_signed=False), "os")
    both_signed = core_params_from_arch(_arch(acc=20), "os")
    assert unsigned_acts.acc_bits <= 20 and both_signed.acc_bits <= 20
    assert unsigned_acts.max_k != both_signed.max_k


def test_a_pe_kind_without_a_gemm_generator_is_an_hdl_error():
    with pytest.raises(HdlError, match="no generator for PE kind 'xnor_popcount'"):
        core_params_from_arch(_arch(wb=1, ab=1, kind=PeKind.XNOR_POPCOUNT), "ws")
    with pytest.raises(HdlError, match="no generator for PE kind 'xnor_popcount'"):
        CoreParams.from_pe("os", 2, 2, PeSpec(weight_bits=1, activation_bits=1, kind=PeKind.XNOR_POPCOUNT))


def test_params_from_a_pe_spec_take_its_fields():
    pe = PeSpec(weight_bits=4, activation_bits=6, weight_signed=False, activation_signed=True, multiplier="logic")
    params = CoreParams.from_pe("os", 3, 2, pe, max_k=9)
    assert (params.weight_bits, params.activation_bits, params.weight_signed, params.activation_signed,
            params.multiplier, params.tile_max) == (4, 6, False, True, "logic", (3, 9, 2))
    assert params.pe.kind is PeKind.INT_MAC and params.pe.accumulator_bits == params.acc_bits


def test_rtl_dataflows_are_the_contract_dataflows_with_an_array_kind():
    assert RTL_DATAFLOWS == tuple(d for d in tile_timing.DATAFLOWS if d in ARRAY_KINDS) == ("ws", "os")
    for dataflow in RTL_DATAFLOWS:
        kind = array_kind(dataflow)
        params = _small(dataflow, 2, 3)
        core = GemmCore(params)
        assert core.kind is kind and core.results_depth == kind.results_depth(2, 3)
        built = kind.array(params.array).elaborate(None)
        assert all(type(built.submodules[f"pe_{r}_{c}"]) is kind.pe for r in range(2) for c in range(3))
        assert PeKind.INT_MAC in kind.pe_kinds
        bounds = tile_timing.contract(dataflow).bounds(2, 3)
        assert params.tile_max == tuple(bounds[d] or {"m": params.max_m, "k": params.max_k}[d] for d in "mkn")


def test_params_from_arch_reject_what_the_core_cannot_build():
    with pytest.raises(HdlError, match="accumulator_bits=16"):
        core_params_from_arch(_arch(acc=16), "ws")
    with pytest.raises(BitWidthError, match="weight_bits=1"):
        core_params_from_arch(_arch(wb=1), "ws")
    with pytest.raises(HdlError, match="rows=0"):
        core_params_from_arch(_arch(rows=0), "ws")
    no_os = dataclasses.replace(_arch(), dataflows=(_arch().dataflows[0],))
    with pytest.raises(HdlError, match="does not support dataflow 'os'"):
        core_params_from_arch(no_os, "os")


@pytest.mark.parametrize("preset", ["fpga-4x4", "fpga-8x8", "fpga-16x16"])
@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_fpga_presets_build_in_both_dataflows(preset, dataflow):
    from codesign.arch_loader import load_arch

    params = core_params_from_arch(load_arch(preset), dataflow)
    assert params.dataflow == dataflow and params.rows == load_arch(preset).rows


def _run_with_command_fields(monkeypatch, params, case, rewrite):
    """Run ``case`` with every command word passed through ``rewrite(m, k, n) -> (m, k, n)``."""
    import hdl.benches.amaranth_bench as amaranth_bench

    m_bits, k_bits, _ = (v.bit_length() for v in params.tile_max)

    class RewritingDriver(amaranth_bench.CaseDriver):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            words = []
            for tile in case.tiles:
                m, k, n = rewrite(tile.m, tile.k, tile.n)
                words.append(m | (k << m_bits) | (n << (m_bits + k_bits)))
            self.cmd.beats = words

    monkeypatch.setattr(amaranth_bench, "CaseDriver", RewritingDriver)
    (result,) = amaranth_bench.run_cases_amaranth(params, [case])
    return result


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_a_command_size_of_zero_runs_as_one(monkeypatch, dataflow):
    params = _small(dataflow, 3, 3)
    case = tile_case(params, "ones", [(1, 1, 1)], np.random.default_rng(5))
    result = _run_with_command_fields(monkeypatch, params, case, lambda m, k, n: (0, 0, 0))
    assert result.finished and result.bit_exact
    assert result.tile_cycles == [tile_timing.tile_cycles(dataflow, 1, 1, 1, 3, 3)]


def test_a_command_above_the_built_maximum_runs_at_the_maximum(monkeypatch):
    params = _small("ws", 2, 2)  # WS: k <= rows = 2, n <= cols = 2, in 2-bit fields that can say 3
    case = tile_case(params, "full", [(4, 2, 2)], np.random.default_rng(6))
    result = _run_with_command_fields(monkeypatch, params, case, lambda m, k, n: (m, k + 1, n + 1))
    assert result.finished and result.bit_exact
    assert result.tile_cycles == [tile_timing.tile_cycles("ws", 4, 2, 2, 2, 2)]


def test_the_driver_checks_busy_on_every_edge():
    """busy must be high while a command is offered or a tile has results left; a core whose busy drops on the
    command's edge (as WS did between tiles) is a mismatch in the case's result."""
    from hdl.benches.driver import CaseDriver

    params = _small("ws", 2, 2)
    case = tile_case(params, "one", [(1, 1, 1)], np.random.default_rng(1))
    driver = CaseDriver(params, case)
    assert driver.drive()["cmd__valid"] == 1
    idle = {"cmd__ready": 1, "weights__ready": 0, "acts__ready": 0, "results__valid": 0, "results__payload": 0}
    driver.observe({**idle, "busy": 0})
    assert driver.result.mismatches == [
        "edge 1: busy=0, the protocol says 1 (0 tiles accepted, 0 finished, cmd.valid=1)"]
    driver.drive()
    driver.observe({**idle, "cmd__ready": 0, "busy": 1})  # the tile accepted on edge 1 is in progress
    assert len(driver.result.mismatches) == 1
