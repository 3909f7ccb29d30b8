"""The stand-alone units' Verilog (hdl.units) under cocotb on Icarus and Verilator against their numpy golden
models (hdl.unit_verify.verify_unit): every settled output, the documented latencies and softmax cycles, both
Icarus language modes, `verilator -Wall` lint, and `codesign verify --unit`."""

from __future__ import annotations

import copy

import pytest

from codesign.cli import main
from conftest import require_simulator
from hdl.benches.unit_golden import unit_cases
from hdl.emit import to_verilog
from hdl.lint import verilator_lint
from hdl.unit_verify import verify_unit
from hdl.units import unit_params

pytestmark = pytest.mark.rtl

UNITS = {
    "xnor-pe-w16": ("xnor-pe", {"word_bits": 16, "acc_bits": 8}),
    "xnor-array-2x3-w8": ("xnor-array", {"rows": 2, "cols": 3, "word_bits": 8, "acc_bits": 6}),
    "xnor-threshold-array-3x4-w16": ("xnor-threshold-array", {"rows": 3, "cols": 4, "word_bits": 16, "acc_bits": 8}),
    "threshold-6ch": ("threshold", {"channels": 6, "acc_bits": 7}),
    "lut-gelu-7to10": ("lut", {"function": "gelu", "in_bits": 7, "out_bits": 10}),
    "lut-tanh-comb": ("lut", {"function": "tanh", "in_bits": 5, "out_bits": 6, "latency": 0}),
    "softmax-8": ("softmax", {"n_max": 8}),
}
VERILATOR_RUNS = ["xnor-threshold-array-3x4-w16", "threshold-6ch", "softmax-8"]  # threshold: no clock
LINT = {
    **UNITS,
    "xnor-pe-w1": ("xnor-pe", {"word_bits": 1, "acc_bits": 2}),
    "xnor-pe-w1024": ("xnor-pe", {"word_bits": 1024, "acc_bits": 12}),
    "threshold-1ch": ("threshold", {"channels": 1, "acc_bits": 2}),
    "lut-1to1": ("lut", {"function": "sigmoid", "in_bits": 1, "out_bits": 1}),
    "lut-exp-12to32": ("lut", {"function": "exp", "in_bits": 12, "out_bits": 32}),
    "softmax-1": ("softmax", {"n_max": 1}),
    "softmax-narrow": ("softmax", {"n_max": 5, "in_bits": 2, "exp_in_bits": 1, "exp_bits": 2, "recip_in_bits": 1,
                                   "recip_bits": 2, "out_bits": 1}),
    "softmax-wide": ("softmax", {"n_max": 64, "in_bits": 16, "exp_in_bits": 12, "exp_bits": 24, "recip_in_bits": 12,
                                 "recip_bits": 24, "out_bits": 24}),
}


def _params(name):
    unit, kwargs = LINT[name]
    return unit_params(unit, **kwargs)


def _assert_passes(report):
    failing = [c for c in report.checks if not c.passed]
    assert not failing, failing
    timed = [c for c in report.checks if c.predicted_cycles is not None and "stalled" not in c.detail]
    assert timed and all(c.measured_cycles == c.predicted_cycles for c in timed)


@pytest.mark.parametrize("name", list(UNITS))
def test_unit_matches_its_golden_model_on_icarus(name, tmp_path):
    require_simulator("icarus")
    _assert_passes(verify_unit(_params(name), "icarus", seed=2, work_dir=tmp_path, lint=False))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(UNITS))
def test_unit_behaves_the_same_under_icarus_2005(name, tmp_path):
    require_simulator("icarus")
    _assert_passes(verify_unit(_params(name), "icarus", seed=2, work_dir=tmp_path, lint=False,
                               icarus_generation="2005"))


@pytest.mark.slow
@pytest.mark.parametrize("name", VERILATOR_RUNS)
def test_unit_matches_its_golden_model_on_verilator(name, tmp_path):
    require_simulator("verilator")
    _assert_passes(verify_unit(_params(name), "verilator", seed=3, work_dir=tmp_path, lint=False))


def test_a_lut_whose_table_is_not_the_rom_fails(tmp_path):
    require_simulator("icarus")
    params = _params("lut-gelu-7to10")
    cases = unit_cases(params, seed=0)
    wrong = copy.deepcopy(cases)
    scan = next(s for s in wrong["segments"] if s["name"] == "every address")
    scan["steps"][9]["expect"]["y"] += 1
    report = verify_unit(params, "icarus", seed=0, work_dir=tmp_path, cases=wrong, lint=False)
    failing = {c.name for c in report.checks if not c.passed}
    assert failing == {"every address", "cocotb bench on icarus"}


def test_a_softmax_that_takes_a_cycle_more_than_documented_fails(tmp_path):
    require_simulator("icarus")
    params = _params("softmax-8")
    cases = unit_cases(params, seed=0)
    wrong = copy.deepcopy(cases)
    wrong["phases"][0]["cycles"][0] += 1
    report = verify_unit(params, "icarus", seed=0, work_dir=tmp_path, cases=wrong, lint=False)
    # the bench fails on the mismatch; the table's check compares with 3n + 3 itself and still passes
    by_name = {c.name: c for c in report.checks}
    assert not by_name["cocotb bench on icarus"].passed
    first = by_name[f"vector {wrong['phases'][0]['names'][0]}"]
    assert first.passed and first.measured_cycles == first.predicted_cycles == 3 * 1 + 3


@pytest.mark.parametrize("name", list(LINT))
def test_every_unit_is_lint_clean_with_documented_waivers_only(name, tmp_path):
    require_simulator("verilator")
    params = _params(name)
    path = tmp_path / f"{params.top_name}.v"
    path.write_text(to_verilog(params.build(), params.top_name))
    result = verilator_lint(path, params.top_name)
    assert result.clean, result.output[:2000]


def test_verify_command_runs_a_unit_and_prints_predicted_and_measured(capsys):
    require_simulator("icarus")
    assert main(["verify", "--unit", "xnor-pe", "--word-bits", "8", "--acc-bits", "6", "--simulator", "icarus"]) == 0
    out = capsys.readouterr().out
    assert "xnor_pe_w8_acc6 on icarus" in out and "all checks passed" in out
    rows = {cells[1]: cells[2:5] for cells in ([c.strip() for c in line.split("│")] for line in out.splitlines())
            if len(cells) > 5}
    assert rows["latency of acc"] == ["1", "1", "pass"] and rows["latency of dot"] == ["0", "0", "pass"]
