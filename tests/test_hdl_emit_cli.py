"""Verilog emission, the manifest, and the `codesign hdl` / `codesign verify` commands' error handling."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from codesign.cli import main
from codesign.contract import tile_timing
from codesign.errors import HdlError, OutputError
from hdl.emit import manifest, to_verilog
from hdl.generate import emit_core
from hdl.params import CoreParams

HDL = Path(__file__).resolve().parent.parent / "hdl"


def _verilog_ports(text: str, top: str) -> dict[str, tuple[str, int]]:
    body = text[text.index(f"module {top}("):]
    body = body[: body.index("endmodule")]
    ports = {}
    # Module ports are declared at two spaces; inputs of the functions Yosys writes for muxes are indented more.
    for direction, width, name in re.findall(r"^  (input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);", body, re.M):
        ports[name] = ("in" if direction == "input" else "out", int(width) + 1 if width else 1)
    return ports


@pytest.mark.parametrize("params", [CoreParams("ws", 2, 3, 8, 4, True, True, max_m=20),
                                    CoreParams("os", 3, 2, 5, 7, False, False, max_k=100),
                                    CoreParams("ws", 2, 2, 6, 3, True, False, max_m=5)], ids=["ws", "os", "mixed"])
def test_manifest_lists_exactly_the_verilog_ports_with_their_widths(params, tmp_path):
    design = emit_core(params, tmp_path / "out")
    listed = {p["name"]: (p["direction"], p["width"]) for p in design.manifest["ports"]}
    assert listed == _verilog_ports(design.verilog_path.read_text(), params.top_name)
    assert json.loads(design.manifest_path.read_text()) == design.manifest
    assert listed["acts__payload"] == ("in", params.rows * params.activation_bits)
    assert listed["results__payload"] == ("out", params.cols * params.acc_bits)
    fields = design.manifest["cmd_fields"]
    assert sum(f["width"] for f in fields) == listed["cmd__payload"][1]
    lanes = design.manifest["lanes"]
    assert (lanes["weights"]["signed"], lanes["acts"]["signed"], lanes["results"]["signed"]) == (
        params.weight_signed, params.activation_signed, params.signed)
    parameters = design.manifest["parameters"]
    assert {k: parameters[k] for k in ("weight_bits", "activation_bits", "weight_signed", "activation_signed")} == {
        "weight_bits": params.weight_bits, "activation_bits": params.activation_bits,
        "weight_signed": params.weight_signed, "activation_signed": params.activation_signed}
    assert "act_bits" not in parameters


def _evaluate(text: str, **names: int) -> int:
    """A manifest formula's value: integers, the given names, + - * and unary minus only."""

    def value(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.Name) and node.id in names:
            return names[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
            left, right = value(node.left), value(node.right)
            return left + right if isinstance(node.op, ast.Add) else left - right if isinstance(node.op, ast.Sub) \
                else left * right
        raise ValueError(f"not a cycle formula: {ast.dump(node)}")

    return value(ast.parse(text, mode="eval"))


@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize("rows,cols", [(1, 1), (2, 3), (4, 4)])
def test_manifest_cycle_formulas_evaluate_to_the_contract(dataflow, rows, cols, tmp_path):
    params = CoreParams(dataflow, rows, cols, 4, 4, max_m=9, max_k=9)
    cycles = emit_core(params, tmp_path).manifest["cycles"]
    assert cycles == tile_timing.contract(dataflow).as_manifest()
    m_max, k_max, n_max = params.tile_max
    for m in sorted({1, m_max // 2 or 1, m_max}):
        for k in sorted({1, k_max // 2 or 1, k_max}):
            for n in sorted({1, n_max}):
                sizes = dict(m=m, k=k, n=n, rows=rows, cols=cols)
                assert _evaluate(cycles["tile"], **sizes) == tile_timing.tile_cycles(dataflow, m, k, n, rows, cols)
                assert _evaluate(cycles["issue_interval"], **sizes) == tile_timing.issue_interval(
                    dataflow, m, k, n, rows, cols)


def test_the_formula_evaluator_refuses_anything_but_sums_and_products():
    assert _evaluate("k + m - 2*rows + -cols", k=5, m=3, rows=1, cols=2) == 4
    for text in ("k / 2", "__import__('os')", "k ** 2", "x + 1"):
        with pytest.raises(ValueError):
            _evaluate(text, k=1)


def test_hdl_imports_nothing_from_the_simulator_or_the_mapper():
    for path in sorted(HDL.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for module in modules:
                assert module.split(".")[0] not in ("sim", "dataflow"), f"{path.name} imports {module}"


def test_every_hdl_module_lists_its_public_names():
    import importlib

    for path in sorted(HDL.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        name = ".".join(path.relative_to(HDL.parent).with_suffix("").parts)
        module = importlib.import_module(name)
        assert isinstance(getattr(module, "__all__", None), list), f"{name} has no __all__"
        for public in module.__all__:
            assert hasattr(module, public), f"{name}.__all__ names missing {public}"


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
        (["--activation-bits", "1"], "activation_bits=1 is outside"),
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


def _arch_file(tmp_path, **pe):
    import yaml

    from codesign.arch_loader import arch_to_dict, load_arch

    data = arch_to_dict(load_arch("fpga-4x4"))
    data["pe"].update(pe)
    path = tmp_path / "arch.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_hdl_command_reads_the_pe_spec_and_its_options_override_it(tmp_path):
    arch = _arch_file(tmp_path, activation_signed=False, multiplier="logic")
    assert main(["hdl", "--arch", arch, "--dataflow", "ws", "--out", str(tmp_path / "a")]) == 0
    data = json.loads((tmp_path / "a" / "manifest.json").read_text())
    parameters = data["parameters"]
    assert (parameters["weight_signed"], parameters["activation_signed"], parameters["multiplier"]) == (
        True, False, "logic")
    assert data["top"] == "gemm_ws_4x4_i8xu8" and data["lanes"]["results"]["signed"] is True
    assert main(["hdl", "--arch", arch, "--dataflow", "ws", "--multiplier", "dsp", "--unsigned",
                 "--activation-bits", "6", "--out", str(tmp_path / "b")]) == 0
    parameters = json.loads((tmp_path / "b" / "manifest.json").read_text())["parameters"]
    assert (parameters["weight_signed"], parameters["activation_signed"], parameters["multiplier"],
            parameters["activation_bits"]) == (False, False, "dsp", 6)


def test_an_xnor_pe_arch_has_no_gemm_core(tmp_path, capsys):
    arch = _arch_file(tmp_path, kind="xnor_popcount", weight_bits=1, activation_bits=1)
    assert main(["hdl", "--arch", arch, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "no generator for PE kind 'xnor_popcount'" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_the_protocol_says_how_to_build_a_bench_on_both_simulators():
    """docs/core-protocol.md gives the flags a user's own bench needs: the ones hdl.cocotb_run passes."""
    from hdl.cocotb_run import ICARUS_GENERATIONS, VERILATOR_BUILD_WAIVERS

    text = (HDL.parent / "docs" / "core-protocol.md").read_text()
    section = text[text.index("## Your own testbench"):text.index("## Verification")]
    for name in VERILATOR_BUILD_WAIVERS:
        assert f"-Wno-{name}" in section, name
    assert "CFG_CXXFLAGS_PCH_I=-include" in section and "verilator/bin" in section
    assert "CFG_CXXFLAGS_PCH_I=-include" in (HDL / "cocotb_run.py").read_text()
    for generation in ICARUS_GENERATIONS:
        assert f"-g{generation}" in section


def test_the_manifest_states_tile_limits_and_the_gemm_tiling_order(tmp_path):
    from codesign.contract.gemm_timing import predict_gemm_tiles

    params = CoreParams("os", 3, 2, 4, 4, max_k=5)
    data = emit_core(params, tmp_path).manifest
    assert data["tile_max"] == {"m": 3, "k": 5, "n": 2}
    assert "M chunk outermost, then N chunk, then K chunk innermost" in data["gemm_tile_order"]
    tiles, _ = predict_gemm_tiles("os", 7, 11, 3, 3, 2, stream_tile=5)
    assert tiles[:4] == [(3, 5, 2), (3, 5, 2), (3, 1, 2), (3, 5, 1)]  # m outermost, n next, k innermost


def test_hdl_system_writes_the_system_and_says_where_it_fits(tmp_path, capsys):
    assert main(["hdl", "--system", "--arch", "fpga-4x4", "--imem-depth", "512", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    manifest_json = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest_json["top"] == "system_ws_4x4" and (tmp_path / "system_ws_4x4.v").is_file()
    ulx3s = next(line for line in out if line.startswith("ULX3S"))
    assert ulx3s.startswith("ULX3S (ECP5-85F): fits: about ") and "54 of 156 DSP blocks, 64 of 208 block RAMs" in ulx3s
    icebreaker = next(line for line in out if line.startswith("iCEBreaker"))
    assert icebreaker.startswith("iCEBreaker (iCE40 UP5K): does not fit (logic, DSP blocks, block RAM)")


def test_hdl_system_says_the_8x8_system_is_beyond_the_ulx3s_logic(tmp_path, capsys):
    assert main(["hdl", "--system", "--arch", "fpga-8x8", "--imem-depth", "512", "--out", str(tmp_path)]) == 0
    ulx3s = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("ULX3S"))
    assert ulx3s.startswith("ULX3S (ECP5-85F): does not fit (logic): about ")
    cells, available = re.search(r"about ([\d,]+) of ([\d,]+) logic cells", ulx3s).groups()
    assert int(cells.replace(",", "")) > int(available.replace(",", "")) == 83_640


def test_hdl_system_without_an_arch_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["hdl", "--system", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "codesign: error: --system needs --arch" and not (tmp_path / "x").exists()
