"""Generated Verilog passes `verilator --lint-only -Wall` (documented waivers only) and Yosys synthesis."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import require_simulator
from hdl.cocotb_run import VERILATOR_LINT_WAIVERS
from hdl.generate import emit_core
from hdl.lint import verilator_lint
from hdl.params import CoreParams
from hdl.synth import synthesize

pytestmark = pytest.mark.rtl

LINT_CORES = [
    CoreParams("ws", 2, 3, 8, 8, True, True, max_m=16),
    CoreParams("os", 3, 2, 4, 6, False, False, max_k=31, multiplier="logic"),
    CoreParams("os", 4, 4, 16, 16, True, True, max_k=1024, dsp_pes=5),
]


@pytest.mark.parametrize("params", LINT_CORES, ids=lambda p: p.top_name)
def test_generated_verilog_is_lint_clean_with_documented_waivers_only(params, tmp_path):
    require_simulator("verilator")
    design = emit_core(params, tmp_path)
    result = verilator_lint(design.verilog_path, params.top_name)
    assert result.clean, result.output[:2000]


def test_every_waiver_is_justified_in_the_docs():
    text = (Path(__file__).parent.parent / "docs" / "verilator-waivers.md").read_text()
    for name in VERILATOR_LINT_WAIVERS:
        assert re.search(rf"`{name}`", text), f"{name} is not documented"


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_yosys_synthesizes_the_core_without_errors(dataflow, tmp_path):
    params = CoreParams(dataflow, 2, 2, 4, 4, True, True, max_m=8, max_k=8)
    design = emit_core(params, tmp_path)
    result = synthesize(design.verilog_path, params.top_name, "generic")
    flops = sum(n for name, n in result.cell_types.items() if "DFF" in name)
    assert result.cells > 0 and flops > 0


def test_logic_multiplier_uses_no_dsp_and_dsp_multiplier_does_on_ice40(tmp_path):
    counts = {}
    for kind in ("dsp", "logic"):
        params = CoreParams("ws", 1, 1, 8, 8, True, True, max_m=4, multiplier=kind)
        design = emit_core(params, tmp_path / kind)
        counts[kind] = synthesize(design.verilog_path, params.top_name, "ice40").cell_types
    assert counts["dsp"].get("SB_MAC16", 0) == 1
    assert counts["logic"].get("SB_MAC16", 0) == 0 and counts["logic"]["SB_LUT4"] > counts["dsp"].get("SB_LUT4", 0)
