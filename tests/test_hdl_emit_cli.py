"""Verilog emission, the manifest, and the `codesign hdl` / `codesign verify` commands' error handling."""

from __future__ import annotations

import json
import re

import pytest

from codesign.cli import main
from codesign.errors import HdlError, OutputError
from hdl.emit import manifest, to_verilog
from hdl.generate import emit_core
from hdl.params import CoreParams


def _verilog_ports(text: str, top: str) -> dict[str, tuple[str, int]]:
    body = text[text.index(f"module {top}("):]
    body = body[: body.index("endmodule")]
    ports = {}
    for direction, width, name in re.findall(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);", body, re.M):
        ports[name] = ("in" if direction == "input" else "out", int(width) + 1 if width else 1)
    return ports


@pytest.mark.parametrize("params", [CoreParams("ws", 2, 3, 8, 4, True, max_m=20),
                                    CoreParams("os", 3, 2, 5, 7, False, max_k=100)], ids=["ws", "os"])
def test_manifest_lists_exactly_the_verilog_ports_with_their_widths(params, tmp_path):
    design = emit_core(params, tmp_path / "out")
    listed = {p["name"]: (p["direction"], p["width"]) for p in design.manifest["ports"]}
    assert listed == _verilog_ports(design.verilog_path.read_text(), params.top_name)
    assert json.loads(design.manifest_path.read_text()) == design.manifest
    assert listed["acts__payload"] == ("in", params.rows * params.act_bits)
    assert listed["results__payload"] == ("out", params.cols * params.acc_bits)
    fields = design.manifest["cmd_fields"]
    assert sum(f["width"] for f in fields) == listed["cmd__payload"][1]


def test_module_names_must_be_verilog_identifiers():
    core = None  # the name is checked before the component is looked at
    with pytest.raises(HdlError, match="identifier"):
        to_verilog(core, "9lives")
    with pytest.raises(HdlError, match="identifier"):
        manifest(core, "has space", {}, kind="x")


def test_output_folder_with_missing_parent_is_an_output_error(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        emit_core(CoreParams("ws", 1, 1, 2, 2), tmp_path / "missing" / "out")
    assert not (tmp_path / "missing").exists()


def test_hdl_command_writes_verilog_and_manifest(tmp_path, capsys):
    assert main(["hdl", "--arch", "fpga-4x4", "--dataflow", "os", "--out", str(tmp_path / "rtl")]) == 0
    data = json.loads((tmp_path / "rtl" / "manifest.json").read_text())
    assert data["dataflow"] == "os" and data["parameters"]["rows"] == 4
    assert f"module {data['top']}(" in (tmp_path / "rtl" / data["verilog"]).read_text()
    assert "manifest.json" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--rows", "0"], "rows=0"),
        (["--cols", "-2"], "cols=-2"),
        (["--weight-bits", "1"], "weight_bits=1 is outside"),
        (["--act-bits", "17"], "activation_bits=17 is outside"),
        (["--dataflow", "rs"], "row stationary"),
        (["--dataflow", "zz"], "unknown dataflow"),
        (["--multiplier", "lut"], "multiplier 'lut'"),
    ],
)
@pytest.mark.parametrize("command", ["hdl", "verify"])
def test_bad_core_options_exit_2_with_one_line_and_write_nothing(command, extra, message, tmp_path, capsys):
    out = tmp_path / "out"
    args = [command, "--arch", "fpga-4x4", *extra] + (["--out", str(out)] if command == "hdl" else ["--keep", str(out)])
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("codesign: error:") and message in err and "\n" not in err
    assert not out.exists()


def test_verify_rejects_an_unknown_simulator_and_a_negative_seed(capsys):
    assert main(["verify", "--arch", "fpga-4x4", "--simulator", "modelsim"]) == 2
    assert "unknown simulator 'modelsim'" in capsys.readouterr().err
    assert main(["verify", "--arch", "fpga-4x4", "--seed", "-1"]) == 2
    assert "seed=-1" in capsys.readouterr().err


def test_unknown_arch_is_a_one_line_error(capsys):
    assert main(["hdl", "--arch", "no-such-preset", "--out", "x"]) == 2
    assert "no-such-preset" in capsys.readouterr().err
