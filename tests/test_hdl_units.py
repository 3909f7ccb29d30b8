"""The stand-alone units by name (hdl.units): parameters, Verilog and manifest, `codesign hdl --unit` and its
errors, and their golden step scripts played in Amaranth's simulator (no HDL simulator needed)."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.cli import main
from codesign.errors import HdlError
from hdl.benches.amaranth_bench import run_script_amaranth
from hdl.benches.unit_golden import unit_cases, wrap_signed, xnor_dot_rtl
from hdl.binary import xnor_popcount_dot
from hdl.binary_core import BinaryGemmCore
from hdl.core import GemmCore
from hdl.emit import to_verilog
from hdl.generate import emit_binary_core, emit_core
from hdl.params import BinaryCoreParams, CoreParams
from hdl.unit_verify import script_checks
from hdl.units import UNIT_NAMES, UNITS, emit_unit, unit_params

SMALL = {
    "xnor-pe": {"word_bits": 8, "acc_bits": 6},
    "xnor-array": {"rows": 2, "cols": 3, "word_bits": 5, "acc_bits": 7},
    "xnor-threshold-array": {"rows": 3, "cols": 2, "word_bits": 16, "acc_bits": 9},
    "threshold": {"channels": 5, "acc_bits": 4},
    "lut": {"function": "exp", "in_bits": 5, "out_bits": 7},
    "softmax": {"n_max": 4},
}
SCRIPTED = [(unit, SMALL[unit]) for unit in UNIT_NAMES if unit != "softmax"] + [
    ("lut", {"function": "silu", "in_bits": 4, "out_bits": 3, "latency": 0}),
    ("xnor-pe", {"word_bits": 1, "acc_bits": 2}),
    ("threshold", {"channels": 1, "acc_bits": 2}),
]


def _declared_ports(text: str, top: str) -> dict[str, tuple[str, int]]:
    body = text[text.index(f"module {top}("):]
    body = body[: body.index("endmodule")]
    return {name: ("in" if direction == "input" else "out", int(width) + 1 if width else 1)
            for direction, width, name in re.findall(r"^  (input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);", body, re.M)}


def test_every_unit_has_a_generator_defaults_and_a_docs_section():
    assert set(UNIT_NAMES) == {"xnor-pe", "xnor-array", "xnor-threshold-array", "threshold", "lut", "softmax"}
    for name in UNIT_NAMES:
        params = unit_params(name)
        assert re.fullmatch(r"[a-z_][a-z0-9_]*", params.top_name), params.top_name
        assert set(params.as_dict()) == set(UNITS[name].parameters)


@pytest.mark.parametrize("unit", UNIT_NAMES)
def test_the_manifest_lists_exactly_the_verilog_ports(unit, tmp_path):
    params = unit_params(unit, **SMALL[unit])
    design = emit_unit(params, tmp_path / "out")
    listed = {p["name"]: (p["direction"], p["width"]) for p in design.manifest["ports"]}
    assert listed == _declared_ports(design.verilog_path.read_text(), params.top_name)
    assert json.loads(design.manifest_path.read_text()) == design.manifest
    assert design.manifest["unit"] == unit and design.manifest["parameters"] == json.loads(
        json.dumps(params.as_dict()))
    clocked = unit != "threshold"
    assert ("clk" in listed) == clocked and ("rst" in listed) == clocked


def test_a_combinational_lut_has_no_clock_or_reset_port(tmp_path):
    design = emit_unit(unit_params("lut", function="tanh", in_bits=4, latency=0), tmp_path)
    assert [p["name"] for p in design.manifest["ports"]] == ["x", "y"]
    assert design.manifest["timing"]["latency_edges"] == {"y": 0}


@pytest.mark.parametrize("design", ["ws", "os", "binary", *UNIT_NAMES])
def test_generated_verilog_has_no_always_star_block(design):
    """Icarus under -g2012 never runs an `always @*` whose inputs do not change after time 0 (the X on
    cmd.ready of a WS core held in reset); the generated Verilog has none, only continuous assignments."""
    if design in UNITS:
        params = unit_params(design, **SMALL[design])
        text = to_verilog(params.build(), params.top_name)
    elif design == "binary":
        text = to_verilog(BinaryGemmCore(BinaryCoreParams(2, 2, 8, 16)), "b")
    else:
        text = to_verilog(GemmCore(CoreParams(design, 2, 2, 4, 4, max_m=4, max_k=4)), "c")
    blocks = re.findall(r"^\s*always\b.*$", text, re.M)
    assert "always @*" not in text and all(b.strip() == "always @(posedge clk) begin" or
                                           b.strip() == "always @(posedge clk)" for b in blocks), set(blocks)


@pytest.mark.parametrize("unit,kwargs", SCRIPTED, ids=[f"{u}-{i}" for i, (u, _) in enumerate(SCRIPTED)])
def test_the_golden_script_passes_in_amaranths_simulator(unit, kwargs):
    params = unit_params(unit, **kwargs)
    cases = unit_cases(params, seed=4)
    checks = script_checks(cases, {"segments": run_script_amaranth(params.build(), cases)})
    assert checks and all(c.passed for c in checks), [c for c in checks if not c.passed][:3]
    probes = [c for c in checks if c.predicted_cycles is not None]
    assert probes and all(c.measured_cycles == c.predicted_cycles for c in probes)


def test_a_wrong_value_or_a_late_output_fails_the_script_checks():
    params = unit_params("xnor-pe", word_bits=4, acc_bits=5)
    cases = unit_cases(params, seed=0)
    recorded = run_script_amaranth(params.build(), cases)
    recorded[2][0]["acc"] += 1  # first reduction, first step
    failing = [c.name for c in script_checks(cases, {"segments": recorded}) if not c.passed]
    assert failing == [cases["segments"][2]["name"]]
    late = run_script_amaranth(params.build(), cases)
    probe = next(i for i, s in enumerate(cases["segments"]) if s["probes"])
    late[probe][1]["acc"] = late[probe][0]["acc"]  # the new sum shows one edge later than it should
    by_name = {c.name: c for c in script_checks(cases, {"segments": late})}
    assert not by_name["latency of acc"].passed and by_name["latency of acc"].measured_cycles == 2


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.data())
def test_the_pe_model_is_the_pm1_dot_product_up_to_word_bits(word_bits, data):
    a, w = (data.draw(st.integers(0, 2**word_bits - 1)) for _ in range(2))
    n_valid = data.draw(st.integers(0, word_bits))
    assert xnor_dot_rtl(a, w, n_valid, word_bits) == xnor_popcount_dot(a, w, n_valid)
    bits = [(a >> i & 1) * 2 - 1 for i in range(n_valid)], [(w >> i & 1) * 2 - 1 for i in range(n_valid)]
    assert xnor_dot_rtl(a, w, n_valid, word_bits) == sum(x * y for x, y in zip(*bits))


@given(st.integers(-(2**40), 2**40), st.integers(2, 33))
def test_wrapping_is_modulo_two_to_the_bits(value, bits):
    wrapped = wrap_signed(value, bits)
    assert -(2 ** (bits - 1)) <= wrapped < 2 ** (bits - 1) and (wrapped - value) % 2**bits == 0


def test_unit_params_refuse_unknown_units_parameters_and_values():
    with pytest.raises(HdlError, match="unknown unit 'relu'"):
        unit_params("relu")
    with pytest.raises(HdlError, match="no parameter 'channels'"):
        unit_params("lut", channels=3)
    with pytest.raises(HdlError, match="word_bits=0 is outside"):
        unit_params("xnor-pe", word_bits=0)
    with pytest.raises(HdlError, match="unknown LUT function 'relu'"):
        unit_params("lut", function="relu")


def test_cmd_fields_state_their_maximum_and_hold_values_above_it(tmp_path):
    params = CoreParams("ws", 4, 4, 8, 8, max_m=1024)
    fields = {f["name"]: f for f in emit_core(params, tmp_path / "ws").manifest["cmd_fields"]}
    assert (fields["m"]["max"], fields["m"]["width"]) == (1024, 11)  # m can say up to 2047
    assert (fields["k"]["max"], fields["k"]["width"]) == (4, 3)
    binary = emit_binary_core(BinaryCoreParams(3, 4, 16, 160), tmp_path / "bin").manifest
    assert [f["max"] for f in binary["cmd_fields"]] == [3, 160, 4] and binary["k_tile"] == 160


@pytest.mark.parametrize("unit", UNIT_NAMES)
def test_hdl_unit_command_writes_verilog_and_manifest(unit, tmp_path, capsys):
    options = []
    for name, value in SMALL[unit].items():
        options += [f"--{name.replace('_', '-')}", str(value)]
    assert main(["hdl", "--unit", unit, *options, "--out", str(tmp_path / "rtl")]) == 0
    data = json.loads((tmp_path / "rtl" / "manifest.json").read_text())
    assert data["unit"] == unit and f"module {data['top']}(" in (tmp_path / "rtl" / data["verilog"]).read_text()
    out = capsys.readouterr().out
    assert f"top {data['top']}: {unit}," in out and "manifest.json" in out


def test_lut_ranges_from_the_command_line_take_negative_numbers(tmp_path):
    assert main(["hdl", "--unit", "lut", "--function", "gelu", "--in-range", "-3", "3", "--out-range", "-0.2", "3",
                 "--out", str(tmp_path / "rtl")]) == 0
    parameters = json.loads((tmp_path / "rtl" / "manifest.json").read_text())["parameters"]
    assert parameters["in_range"] == [-3.0, 3.0] and parameters["out_range"] == [-0.2, 3.0]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--unit", "relu"], "unknown unit 'relu'"),
        (["--unit", "lut", "--channels", "4"], "--channels applies to --unit threshold, not to --unit lut"),
        (["--unit", "softmax", "--word-bits", "8"], "--word-bits applies to --unit xnor-pe / xnor-array"),
        (["--unit", "threshold", "--arch", "fpga-4x4"], "--arch applies to the GEMM cores"),
        (["--unit", "xnor-pe", "--unsigned"], "--unsigned applies to the GEMM cores"),
        (["--unit", "softmax", "--n-max", "0"], "n_max=0 is outside"),
        (["--unit", "lut", "--function", "relu"], "unknown LUT function 'relu'"),
        (["--unit", "lut", "--in-range", "2", "1"], "low < high"),
        (["--unit", "lut", "--latency", "2"], "latency must be 0 or 1"),
        (["--unit", "xnor-array", "--rows", "65"], "rows=65 is outside"),
        (["--unit", "xnor-pe", "--word-bits", "32", "--acc-bits", "3"], "acc_bits=3 is outside"),
        (["--unit", "threshold", "--acc-bits", "65"], "acc_bits=65 is outside"),
        (["--unit", "softmax", "--in-scale", "-1"], "in_scale must be a positive"),
        ([], "--arch is required"),
        (["--arch", "fpga-4x4", "--channels", "3"], "--channels applies to --unit"),
    ],
)
@pytest.mark.parametrize("command", ["hdl", "verify"])
def test_bad_unit_options_exit_2_with_one_line_and_write_nothing(command, args, message, tmp_path, capsys):
    out = tmp_path / "out"
    tail = ["--out", str(out)] if command == "hdl" else ["--keep", str(out)]
    assert main([command, *args, *tail]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("codesign: error:") and message in err and "\n" not in err
    assert not out.exists()
