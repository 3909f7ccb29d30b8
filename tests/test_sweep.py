"""codesign sweep and fit: bit-widths against throughput, energy and the accuracy proxy."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.arch_loader import load_arch
from codesign.cli import main
from codesign.errors import BitWidthError
from codesign.sweep import SweepPoint, design_at, pareto_front, parse_bit_points


def _point(rate, energy, sqnr):
    return SweepPoint(bits=8, dataflow="ws", rows=2, cols=2, cycles=1, latency_ms=1.0, inferences_per_s=rate,
                      clock_mhz=1.0, energy_per_inference=energy, energy_unit="pJ", dram_bytes=0, glb_bytes=0,
                      utilization=0.0, sqnr_db=sqnr)


def test_bit_points_parse_in_order_without_repeats():
    assert parse_bit_points("16,8,4,2,1") == (16, 8, 4, 2, 1)
    assert parse_bit_points("8, 8 ,4") == (8, 4)


@pytest.mark.parametrize("text,message", [("8,zero", "'zero' is not a bit-width"), ("17", "outside the 1..16"),
                                          ("0", "outside the 1..16"), ("", "at least one")])
def test_a_bad_bit_point_is_a_bit_width_error(text, message):
    with pytest.raises(BitWidthError, match=message):
        parse_bit_points(text)


def test_the_pareto_front_keeps_exactly_the_undominated_points():
    points = [_point(10, 5, 30), _point(20, 5, 30), _point(5, 1, 10), _point(5, 2, 10), _point(1, 9, 90)]
    assert pareto_front(points) == {1, 2, 4}


def test_the_design_at_a_width_builds_pes_of_it_and_a_binary_array_at_one_bit():
    arch = load_arch("fpga-8x8")
    four = design_at(arch, 4)
    assert (four.pe.weight_bits, four.pe.activation_bits) == (4, 4) and four.binary_array is None
    one = design_at(arch, 1)
    assert one.pe == arch.pe and (one.binary_array.rows, one.binary_array.cols) == (8, 8)
    assert design_at(arch, 16).pe.accumulator_bits >= 32


@pytest.mark.parametrize("argv,message", [
    (["sweep", "zoo:mobilenetv2-cifar", "--arch", "fpga-8x8", "--bits", "8,zero"], "'zero' is not a bit-width"),
    (["sweep", "zoo:mobilenetv2-cifar", "--arch", "fpga-8x8", "--bits", "20"], "outside the 1..16 bits"),
    (["sweep", "zoo:mobilenetv2-cifar", "--arch", "fpga-8x8", "--jobs", "0"], "--jobs '0'"),
    (["sweep", "zoo:mobilenetv2-cifar", "--arch", "fpga-8x8", "--board", "nope"], "unknown board 'nope'"),
    (["fit", "zoo:mobilenetv2-cifar", "--fps", "0", "--board", "ulx3s"], "--fps '0'"),
    (["fit", "zoo:mobilenetv2-cifar", "--fps", "30", "--board", "nope"], "unknown board 'nope'"),
])
def test_bad_sweep_and_fit_input_is_one_line_and_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


@pytest.mark.slow
def test_a_sweep_of_a_zoo_model_marks_a_front_and_loses_accuracy_as_bits_fall(tmp_path):
    import json

    out = tmp_path / "sweep.json"
    assert main(["sweep", "zoo:resnet18-cifar", "--arch", "fpga-8x8", "--bits", "8,4,2", "--dataflows", "os",
                 "--json", str(out), "--quiet"]) == 0
    doc = json.loads(out.read_text())
    points = doc["points"]
    assert [p["bits"] for p in points] == [8, 4, 2]
    assert any(p["pareto"] for p in points)
    sqnr = [float(p["sqnr_db"]) for p in points]
    assert sqnr[0] > sqnr[1] > sqnr[2]


def test_a_board_fit_puts_as_many_pes_on_dsp_blocks_as_the_board_has_as_codesign_fpga_builds():
    from codesign.sweep import _board_fit

    # The iCEBreaker's UP5K has 8 DSP blocks: the 4x4 int8 WS core is built with 8 PEs on them and 8 multiplying in
    # logic, and fits (bench/README.units.md: 3858 of 5280 logic cells, 8 of 8 DSP blocks on the board).
    fits, usage, _, _ = _board_fit(design_at(load_arch("fpga-4x4"), 8), "icebreaker", "ws")
    assert fits and usage["dsps"] == {"used": 8, "available": 8}
    # The 8x8 core does not fit for its logic, as `codesign fpga` says: ~18600 cells with 8 of its 64 PEs on DSPs.
    fits, usage, _, _ = _board_fit(design_at(load_arch("fpga-8x8"), 8), "icebreaker", "ws")
    assert not fits and usage["dsps"]["used"] == 8 and round(usage["luts"]["used"], -2) == 18600


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 24), cols=st.integers(1, 24), bits=st.sampled_from([2, 4, 8, 12, 16]),
       board=st.sampled_from(["icebreaker", "ulx3s"]), flow=st.sampled_from(["ws", "os"]))
def test_a_board_fit_never_asks_for_more_dsp_blocks_than_the_board_has(rows, cols, bits, board, flow):
    from dataclasses import replace

    from codesign.sweep import _board_fit

    design = design_at(replace(load_arch("fpga-8x8"), rows=rows, cols=cols), bits)
    _, usage, _, note = _board_fit(design, board, flow)
    assert not note and usage["dsps"]["used"] <= usage["dsps"]["available"]
