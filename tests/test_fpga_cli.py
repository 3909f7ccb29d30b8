"""`codesign fpga`: the accelerator's core built for a board, with fit, Fmax and the arch's clock side by side."""

from __future__ import annotations

import json
import time

import pytest

from codesign.cli import main


def test_unknown_board_is_one_line_and_exit_2(capsys, tmp_path):
    status = main(["fpga", "--arch", "fpga-4x4", "--board", "de10", "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and "unknown board 'de10'" in err
    assert not (tmp_path / "b").exists()


def test_more_dsp_pes_than_pes_is_rejected_before_building(capsys, tmp_path):
    status = main(["fpga", "--arch", "fpga-4x4", "--board", "ulx3s", "--dsp-pes", "17", "--out", str(tmp_path / "b")])
    assert status == 2
    assert "--dsp-pes 17 is outside 0..16" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_eyeriss_row_stationary_array_is_refused_by_its_fit_check_before_any_tool_runs(capsys, tmp_path):
    status = main(["fpga", "--arch", "eyeriss", "--board", "ulx3s", "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert status == 2
    assert "does not fit the ulx3s" in err and err.count("\n") == 1, err
    assert not (tmp_path / "b").exists()


def test_too_big_for_the_board_stops_in_seconds_before_place_and_route(capsys, tmp_path):
    started = time.monotonic()
    status = main(["fpga", "--arch", "fpga-8x8", "--board", "icebreaker", "--out", str(tmp_path / "b")])
    seconds = time.monotonic() - started
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1, err
    assert "fpga-8x8 (gemm_ws_8x8_i8xi8) does not fit the icebreaker: it needs ~" in err
    assert "logic cells" in err and "the UP5K has 5280" in err
    assert "the largest ws int8 array that fits is 4x4" in err
    assert not (tmp_path / "b").exists()  # no synthesis, no nextpnr
    assert seconds < 20


def test_the_os_dataflow_and_all_logic_multipliers_are_checked_too(capsys, tmp_path):
    status = main(["fpga", "--arch", "fpga-8x8", "--board", "icebreaker", "--dataflow", "os", "--multiplier", "logic",
                   "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert status == 2
    assert "with every multiplier in logic" in err and "the largest os int8 logic-multiplier array that fits is" in err


def test_dsp_pes_given_is_kept_in_the_check(capsys, tmp_path):
    status = main(["fpga", "--arch", "fpga-16x16", "--board", "ulx3s", "--dsp-pes", "256",
                   "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert status == 2
    assert "needs 256 DSP blocks" in err and "the ECP5-85F has 156" in err


def test_fit_check_passes_for_fpga_4x4_on_the_ulx3s():
    import dataclasses

    from hdl.params import core_params_from_arch
    from hdl.resources import board_dsp_pes, check_fit
    from codesign.arch_loader import load_arch

    params = core_params_from_arch(load_arch("fpga-4x4"))
    params = dataclasses.replace(params, dsp_pes=board_dsp_pes(params, "ulx3s"))
    report = check_fit(params, "ulx3s", name="fpga-4x4")
    assert report.fits and report.estimate.dsps == 16


def test_binary_array_is_checked_and_dsp_pes_refused(capsys, tmp_path):
    arch = tmp_path / "bnn.yaml"
    arch.write_text("name: bnn\nrows: 4\ncols: 4\nglb: {size_bytes: 65536}\ndram: {bytes_per_cycle: 8}\n"
                    "energy: {preset: horowitz-45nm}\n"
                    "binary_array: {rows: 16, cols: 16, word_bits: 64, accumulator_bits: 16}\n")
    status = main(["fpga", "--arch", str(arch), "--board", "icebreaker", "--array", "binary",
                   "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1
    assert "bnn (xnor_gemm_16x16_w64) does not fit the icebreaker" in err
    assert "the largest xnor-popcount w64 array that fits is" in err
    status = main(["fpga", "--arch", str(arch), "--board", "icebreaker", "--array", "binary", "--dsp-pes", "2",
                   "--out", str(tmp_path / "b")])
    assert status == 2 and "--dsp-pes applies to the integer GEMM core" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_icebreaker_build_fits_with_dsp_pes_capped_at_the_board(tmp_path, capsys):
    report = tmp_path / "fit.json"
    status = main(["fpga", "--arch", "fpga-4x4", "--board", "icebreaker", "--out", str(tmp_path / "b"),
                   "--json", str(report)])
    assert status == 0
    figures = json.loads(report.read_text())
    assert figures["parameters"]["dsp_pes"] == 8  # the UP5K has 8 SB_MAC16 blocks
    used, available = figures["dsp"]
    assert used == 8 and available == 8
    cells, cells_available = figures["logic_cells"]
    assert 0 < cells <= cells_available
    assert figures["fmax_mhz"] > 0
    assert abs(figures["predicted"]["cells"] - cells) / cells < 0.10  # the resource model beside the real build
    assert (tmp_path / "b" / "top.bin").stat().st_size > 0
    assert "post-route Fmax" in capsys.readouterr().out


def test_force_skips_the_fit_check_and_goes_on_to_the_build(monkeypatch, capsys, tmp_path):
    import hdl.fpga

    called = {}

    def fake_build(design, board, folder, label=None, **options):
        called.update(board=board, params=design.params, options=options)
        raise hdl.fpga.HdlError("stopped before place-and-route (test)")

    monkeypatch.setattr(hdl.fpga, "build_design", fake_build)
    status = main(["fpga", "--arch", "fpga-8x8", "--board", "icebreaker", "--force", "--out", str(tmp_path / "b")])
    assert status == 2 and "stopped before place-and-route (test)" in capsys.readouterr().err
    assert called["board"] == "icebreaker" and called["params"].dsp_pes == 8
    assert called["options"] == {"synth_opts": "-dsp"}  # the DSP PEs' multipliers on SB_MAC16
