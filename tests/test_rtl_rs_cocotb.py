"""The generated row-stationary array in real HDL simulators (cocotb on Icarus and Verilator): psums bit-exact
against numpy, a tiled convolution equal to numpy's, every timed case on the cycles of
codesign.contract.rs_timing, a wrong prediction failing; the CLI's `hdl` / `verify --dataflow rs`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import codesign

from codesign.cli import main
from conftest import require_simulator
from hdl.benches.rs_cases import rs_standard_cases
from hdl.rs_pe import RsParams
from hdl.verify import verify_core

pytestmark = pytest.mark.rtl

SKIPPING = RsParams(rows=3, cols=4, set_rows=3, set_cols=2, weight_rf_words=16, activation_rf_words=8,
                    psum_rf_words=4, skip_zero_weights=True, gate_zero_activations=True)
HELD_OUT = RsParams(rows=5, cols=7, weight_bits=6, activation_bits=6)
STRIDED = RsParams(rows=3, cols=4, set_rows=3, set_cols=2, weight_rf_words=16, activation_rf_words=8,
                   psum_rf_words=4, skip_zero_weights=True, max_stride=4)


def _assert_all_pass(report):
    failing = [c for c in report.checks if not c.passed]
    assert not failing, failing
    timed = [c for c in report.checks if c.predicted_cycles is not None and "stalled" not in c.detail]
    assert len(timed) >= 7 and all(c.measured_cycles == c.predicted_cycles for c in timed)
    names = " ".join(c.name for c in report.checks)
    for kind in ("random", "ragged", "single channel", "extreme", "zero weights", "back-to-back",
                 "tiled convolution", "stalled"):
        assert kind in names
    if report.params.max_stride > 1:
        assert "strided tiled convolution (11x11, stride 4)" in names and "strided passes" in names


@pytest.mark.parametrize("params", [SKIPPING, HELD_OUT, STRIDED], ids=["3x4-skipping", "5x7-i6", "3x4-stride4"])
def test_the_rs_array_is_exact_and_on_time_under_icarus(params, tmp_path):
    require_simulator("icarus")
    report = verify_core(params, "icarus", seed=3, work_dir=tmp_path, lint=False)
    _assert_all_pass(report)


@pytest.mark.long
def test_the_rs_array_is_exact_and_on_time_under_verilator(tmp_path):
    require_simulator("verilator")
    report = verify_core(SKIPPING, "verilator", seed=3, work_dir=tmp_path, lint=True)
    _assert_all_pass(report)


def test_a_wrong_rs_prediction_fails_in_rtl(tmp_path):
    require_simulator("icarus")
    case = rs_standard_cases(SKIPPING, seed=1)[0]
    case.predicted[1] += 1
    case.predicted_cycles += 1
    report = verify_core(SKIPPING, "icarus", seed=1, work_dir=tmp_path, cases=[case], lint=False)
    assert not report.passed
    by_name = {c.name: c for c in report.checks}
    assert not by_name[case.name].passed and "pass cycles" in by_name[case.name].detail
    assert not by_name["cocotb bench on icarus"].passed


@pytest.mark.parametrize("params", [HELD_OUT, STRIDED], ids=["5x7-i6", "3x4-stride4"])
def test_the_held_out_and_strided_arrays_lint_clean_under_verilator(params, tmp_path):
    require_simulator("verilator")
    from hdl.generate import emit_rs_array
    from hdl.verify import lint_check

    design = emit_rs_array(params, tmp_path)
    check = lint_check(design.verilog_path, params.top_name)
    assert check.passed, check.detail


def test_hdl_dataflow_rs_writes_the_array_and_its_pass_timing(tmp_path, capsys):
    out = tmp_path / "rtl"
    assert main(["hdl", "--arch", "fpga-12x14", "--dataflow", "rs", "--rows", "3", "--cols", "4", "--set-cols", "2",
                 "--out", str(out)]) == 0
    data = json.loads((out / "manifest.json").read_text())
    assert data["kind"] == "rs_array" and data["parameters"]["sets"] == 2
    assert data["cycles"]["pass"] == "fill + out_cols*column + p"
    assert data["lanes"]["inputs"]["count"] == 2 * (3 + 2 - 1)
    assert f"module {data['top']}(" in (out / data["verilog"]).read_text()
    assert "rs 3x4, 2 sets of 3x2 PEs" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    (["--weight-bits", "17"], "weight_bits=17 is outside the 2..16 bits"),
    (["--activation-bits", "1"], "activation_bits=1 is outside the 2..16 bits"),
    (["--set-rows", "5"], "set_rows=5 must be an integer in 1..4"),
    (["--rows", "0"], "rows=0"),
    (["--max-stride", "9"], "max_stride=9 must be an integer in 1..8"),
])
@pytest.mark.parametrize("command", ["hdl", "verify"])
def test_bad_rs_options_exit_2_with_one_line(command, extra, message, tmp_path, capsys):
    out = tmp_path / "out"
    args = [command, "--arch", "fpga-12x14", "--dataflow", "rs", "--rows", "4", "--cols", "4", *extra]
    args += ["--out", str(out)] if command == "hdl" else ["--keep", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("codesign: error:") and message in err and "\n" not in err
    assert not out.exists()


@pytest.mark.parametrize("field", ["weight_rf_words", "activation_rf_words"])
@pytest.mark.parametrize("command", ["hdl", "verify"])
def test_register_files_too_small_for_a_filter_row_exit_2(command, field, tmp_path, capsys):
    preset = Path(codesign.__file__).parent / "presets" / "fpga-12x14.yaml"
    text = preset.read_text()
    line = next(row for row in text.splitlines() if row.strip().startswith(f"{field}:"))
    spec = tmp_path / "tiny.yaml"
    spec.write_text(text.replace(line, line.split(":")[0] + ": 1"))
    out = tmp_path / "out"
    args = [command, "--arch", str(spec), "--dataflow", "rs"]
    args += ["--out", str(out)] if command == "hdl" else ["--keep", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("codesign: error:") and f"{field}=1 is too small for any filter-row segment" in err
    assert "\n" not in err and "Traceback" not in err
    assert not out.exists()


def test_stride_applies_to_the_rs_array_only(tmp_path, capsys):
    assert main(["verify", "--arch", "fpga-4x4", "--dataflow", "ws", "--max-stride", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "codesign: error: --max-stride applies to --dataflow rs"


def test_fpga_refuses_an_rs_array_too_big_for_the_board_before_any_build(tmp_path, capsys):
    out = tmp_path / "b"
    assert main(["fpga", "--arch", "eyeriss", "--board", "ulx3s", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("codesign: error: eyeriss (rs_12x14_s12x14_i16xi16) does not fit the ulx3s: it needs ")
    assert "the largest RS array of these PEs that fits is" in err and "\n" not in err
    assert not out.exists()


def test_fpga_rs_takes_no_dsp_pes(tmp_path, capsys):
    assert main(["fpga", "--arch", "fpga-12x14", "--dataflow", "rs", "--rows", "2", "--cols", "2", "--board",
                 "icebreaker", "--dsp-pes", "1", "--out", str(tmp_path / "b")]) == 2
    assert "--dsp-pes applies to the GEMM cores" in capsys.readouterr().err


def test_the_rs_resource_rows_reproduce_their_board_builds():
    from hdl.resources import load_rs_model, predict_rs, rs_fit_report

    rows = load_rs_model()["points"]
    assert {(p["family"], p["design"]) for p in rows} >= {("ecp5", "rs_5x7_s5x7_i6xi6"), ("ice40", "rs_2x2_s2x2_i8xi8")}
    for point in rows:
        estimate = predict_rs(RsParams(**point["params"]), point["family"])
        for quantity, measured in point["measured"].items():
            assert abs(estimate.values[quantity] - measured) <= 0.02 * max(measured, 50), (point["design"], quantity)
    assert not rs_fit_report(RsParams(rows=4, cols=4), "icebreaker").fits  # ~13k cells: measured
    assert rs_fit_report(HELD_OUT, "ulx3s").fits
