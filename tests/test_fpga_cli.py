"""`codesign fpga`: the accelerator's core built for a board, with fit, Fmax and the arch's clock side by side."""

from __future__ import annotations

import json

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


def test_row_stationary_has_no_core_to_build(capsys, tmp_path):
    status = main(["fpga", "--arch", "eyeriss", "--board", "ulx3s", "--out", str(tmp_path / "b")])
    assert status == 2
    assert "no RTL generator" in capsys.readouterr().err


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
    assert (tmp_path / "b" / "top.bin").stat().st_size > 0
    assert "post-route Fmax" in capsys.readouterr().out
