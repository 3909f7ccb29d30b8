"""The post-route Fmax model: critical paths read from nextpnr, the model fitted on measured builds, and sweep /
fit quoting throughput at the clock each design reaches."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.arch_loader import load_arch
from codesign.errors import HdlError
from hdl import fmax
from hdl.params import BinaryCoreParams, CoreParams

CRITICAL_PATH_LOG = """\
Info: Critical path report for clock 'clk' (posedge -> posedge):
Info:       type curr  total name
Info:   clk-to-q  0.52  0.52 Source old.start.Q
Info:    routing  0.89  1.42 Net old.level[2] (8,29) -> (7,29)
Info:                          Sink old.end.B
Info: 0.52 ns logic, 0.89 ns routing

Info: Critical path report for clock '$glbnet$cd_sync.clk' (posedge -> posedge):
Info:       type curr  total name
Info:   clk-to-q  0.52  0.52 Source design.level_TRELLIS_FF_Q_2.Q
Info:    routing  0.89  1.42 Net design.level[2] (8,29) -> (7,29)
Info:                          Sink design.in_flight_LUT4_D.B
Info:      logic  0.24  1.65 Source design.in_flight_LUT4_D.F
Info:    routing  1.07  11.70 Net design.array.pe_0_0.product[8] (5,34) -> (5,35)
Info:                          Sink design.array.pe_1_0.psum_in_TRELLIS_FF_Q_9.M
Info: 4.73 ns logic, 6.97 ns routing

Info: Critical path report for cross-domain path '<async>' -> '<async>':
Info:     source  0.00  0.00 Source cd_sync.clk_buf.buf.buf0.O
Info:                          Sink $gbuf$cd_sync.clk.CLKI
Info: 0.00 ns logic, 0.25 ns routing
"""


def test_the_critical_path_is_the_last_clock_report_from_its_first_source_to_its_last_sink():
    assert fmax.critical_path(CRITICAL_PATH_LOG) == {
        "from": "design.level_TRELLIS_FF_Q_2.Q", "to": "design.array.pe_1_0.psum_in_TRELLIS_FF_Q_9.M"}
    assert fmax.critical_path("Info: no timing here") == {}


def _points(board="ulx3s", kind="ws"):
    # delays of 10 + 2 log2(PEs) + 0.1 bits ns
    points = []
    for side, bits in ((2, 8), (4, 8), (8, 8), (16, 8), (4, 16)):
        ns = 10 + 2 * (2 * side.bit_length() - 2) + 0.1 * bits
        points.append({"board": board, "kind": kind, "rows": side, "cols": side, "bits": bits, "role": "fit",
                       "design": f"{board}_{kind}_{side}_{bits}", "fmax_mhz": 1000 / ns})
    return points


def test_the_model_recovers_the_delays_it_was_fitted_on():
    models = fmax._fit(_points())
    coefficients = models["ulx3s/ws"]
    assert coefficients["const"] == pytest.approx(10, rel=1e-6)
    assert coefficients["log2_pes"] == pytest.approx(2, rel=1e-6)
    assert coefficients["bits"] == pytest.approx(0.1, rel=1e-5)


def test_a_measured_design_is_quoted_at_its_measurement_and_others_from_the_model():
    points = _points()
    data = {"points": points, "models": fmax._fit(points)}
    measured = fmax.predict_fmax(CoreParams(dataflow="ws", rows=8, cols=8), "ulx3s", data)
    assert measured.source == "measured" and measured.mhz == pytest.approx(points[2]["fmax_mhz"])
    modelled = fmax.predict_fmax(CoreParams(dataflow="ws", rows=12, cols=12), "ulx3s", data)
    assert modelled.source == "model"
    assert points[3]["fmax_mhz"] < modelled.mhz < points[2]["fmax_mhz"]
    with pytest.raises(HdlError, match="no Fmax model for os cores on ulx3s"):
        fmax.predict_fmax(CoreParams(dataflow="os", rows=8, cols=8), "ulx3s", data)


def test_the_shipped_calibration_covers_every_kind_on_both_boards_and_records_its_error():
    data = fmax.load_data()
    assert set(data["models"]) == {f"{board}/{kind}" for board in ("ulx3s", "icebreaker")
                                   for kind in ("ws", "os", "binary")}
    assert {e["design"] for e in data["errors"]} == {p["design"] for p in data["points"]}
    assert any(p["role"] == "held-out" for p in data["points"])
    assert all(p["critical_path"].get("from") for p in data["points"])


@settings(max_examples=30, deadline=None)
@given(side=st.integers(2, 31), kind=st.sampled_from(["ws", "os"]), board=st.sampled_from(["ulx3s", "icebreaker"]))
def test_a_larger_array_is_never_predicted_faster(side, kind, board):
    small = fmax.predict_fmax(CoreParams(dataflow=kind, rows=side, cols=side), board)
    large = fmax.predict_fmax(CoreParams(dataflow=kind, rows=side + 1, cols=side + 1), board)
    if small.source == large.source == "model":
        assert large.mhz <= small.mhz


def test_sweep_quotes_each_design_at_the_clock_the_model_gives_it_on_the_board():
    from codesign.sweep import _board_fit, design_at

    for name in ("fpga-4x4", "fpga-8x8"):
        arch = load_arch(name)
        _, _, clock, _ = _board_fit(design_at(arch, 8), "ulx3s", "ws")
        from hdl.params import core_params_from_arch
        from hdl.resources import board_dsp_pes
        from dataclasses import replace

        params = core_params_from_arch(arch, "ws")
        params = replace(params, dsp_pes=board_dsp_pes(params, "ulx3s"))
        assert clock == fmax.predict_fmax(params, "ulx3s").mhz


def test_a_binarized_design_runs_at_the_slower_of_its_two_arrays():
    from codesign.sweep import _board_fit, design_at

    arch = load_arch("fpga-8x8")
    design = design_at(arch, 1)
    _, _, clock, _ = _board_fit(design, "ulx3s", "ws")
    from hdl.params import binary_params_from_arch

    binary = fmax.predict_fmax(binary_params_from_arch(design), "ulx3s").mhz
    assert clock <= binary
    assert isinstance(binary_params_from_arch(design), BinaryCoreParams)
