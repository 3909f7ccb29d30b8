"""``codesign run``: a whole network on the generated system's RTL, bit-exact against the integer reference and
cycle-exact against the prediction for every step; a wrong prediction, a corrupted weight or a dropped
instruction each make it fail. The three networks the system is held to are ``codesign.zoo.system_nets``; one runs
in the suite on Verilator (and on Icarus as the README's excerpt), the rest (both dataflows, both simulators) are
``long``."""

from __future__ import annotations

import json

import pytest

from codesign.cli import main
from conftest import require_simulator

NETS = "codesign.zoo.system_nets"


def _run(tmp_path, net: str, dataflow: str, simulator: str, *extra: str) -> tuple[int, dict]:
    require_simulator(simulator)
    out = tmp_path / "report.json"
    status = main(["run", f"{NETS}:{net}", "--arch", "fpga-8x8", "--dataflow", dataflow, "--simulator", simulator,
                   "--json", str(out), "--out", str(tmp_path / "out"), *extra])
    return status, json.loads(out.read_text()) if out.is_file() else {}


def _exact(report: dict) -> None:
    assert report["done"] and report["bit_exact"], report
    assert report["measured_cycles"] == report["predicted_cycles"]
    assert all(row["measured_cycles"] == row["predicted_cycles"] for row in report["layers"]), report["layers"]
    assert report["cycles_equal"]


@pytest.mark.rtl
@pytest.mark.slow
def test_the_lut_block_runs_on_the_rtl_bit_exact_with_every_steps_cycles_as_predicted(tmp_path):
    # Verilator here; the README's excerpt of the same command runs Icarus
    status, report = _run(tmp_path, "lut_block", "ws", "verilator")
    assert status == 0
    _exact(report)
    assert {row["step"] for row in report["layers"]} >= {"conv1", "conv2", "silu", "fc"}
    assert (tmp_path / "out" / "output.npy").is_file() and (tmp_path / "out" / "output_float.npy").is_file()
    assert report["sqnr_db"] > 30


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.long
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize("net", ["resnet_net", "mobilenet_block", "lut_block"])
def test_every_network_runs_bit_exact_and_cycle_exact(tmp_path, net, dataflow, simulator):
    status, report = _run(tmp_path, net, dataflow, simulator)
    assert status == 0
    _exact(report)


def test_a_wrong_prediction_is_reported_as_a_difference_for_its_step():
    """The comparison itself: a step whose measured span differs from the prediction is not equal."""
    from types import SimpleNamespace

    from codesign.cli.run_cmd import layer_rows
    from codesign.contract.isa import Instruction, Op

    instructions = [Instruction(Op.NOP, {}), Instruction(Op.LOAD, {"glb_addr": 0, "bytes": 8, "dram_addr": 0}),
                    Instruction(Op.SYNC, {"mask": 7}), Instruction(Op.END, {})]
    compiled = SimpleNamespace(
        schedule=SimpleNamespace(issue=(10, 11, 35, 36), cycles=(0, 24, 0, 0)),
        program=SimpleNamespace(instructions=instructions,
                                layers=[{"name": "load", "layers": ["x"], "first_instruction": 0,
                                         "last_instruction": 2}]))
    assert layer_rows(compiled, [10, 11, 35, 36])[0]["measured_cycles"] == 25
    assert layer_rows(compiled, [10, 11, 36, 37])[0]["measured_cycles"] == 26  # the RTL a cycle slower
    assert layer_rows(compiled, [10, 11, -1, -1])[0]["measured_cycles"] is None  # never dispatched


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.long
@pytest.mark.parametrize("tamper", ["prediction", "weight", "instruction"])
def test_a_wrong_prediction_a_corrupted_weight_and_a_dropped_instruction_each_fail(tmp_path, monkeypatch, tamper):
    import codesign.compiler.build as build
    from codesign.contract import system_timing

    if tamper == "prediction":  # the contract a cycle off: the RTL does not follow it
        real = system_timing.boot_cycles
        monkeypatch.setattr(system_timing, "boot_cycles", lambda *a, **k: real(*a, **k) + 1)
    else:
        original = build.dram_image

        def tampered(compiled, codes, weights=None, binary=None):
            image = original(compiled, codes)
            if tamper == "weight":
                image[compiled.program.memory_map["weights"]] ^= 0x5A  # the bias of the first layer's channel 0
            else:  # the program without its first weight LOAD: later instructions move up by one
                at = compiled.program.memory_map["program"]
                first = next(i for i, ins in enumerate(compiled.program.instructions) if ins.op.name == "LOAD")
                program = bytes(image[at:at + len(compiled.binary)])
                program = program[:16 * first] + program[16 * (first + 1):] + bytes(16)
                image[at:at + len(program)] = list(program)
            return image

        monkeypatch.setattr(build, "dram_image", tampered)
    status, report = _run(tmp_path, "lut_block", "ws", "verilator")
    assert status == 1
    if tamper == "prediction":
        assert report["bit_exact"] and not report["cycles_equal"]
    else:
        assert not (report.get("bit_exact") and report.get("cycles_equal"))


def test_sim_of_the_generated_system_gives_the_programs_cycles_per_step(tmp_path, capsys):
    from codesign.arch_loader import load_arch
    from codesign.compiler.build import compile_model
    from codesign.zoo.system_nets import lut_block

    out = tmp_path / "system.json"
    assert main(["sim", f"{NETS}:lut_block", "--arch", "fpga-8x8", "--dataflow", "os", "--machine", "system",
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    document = json.loads(out.read_text())
    compiled = compile_model(*lut_block(), load_arch("fpga-8x8"), "os", name=f"{NETS}:lut_block")
    assert document["cycles"]["predicted"] == compiled.schedule.total_cycles
    assert f"{compiled.schedule.total_cycles:,} cycles" in printed and "machine: the generated system" in printed
    assert sum(row["simulator_cycles"] for row in document["layers"]) <= document["cycles"]["simulator"]


def test_sim_of_the_generated_system_refuses_what_the_system_does_not_run(capsys):
    assert main(["sim", f"{NETS}:lut_block", "--arch", "fpga-8x8", "--dataflow", "rs", "--machine", "system"]) == 2
    assert main(["sim", f"{NETS}:lut_block", "--arch", "eyeriss", "--dataflow", "ws", "--machine", "system"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--dataflow ws or os" in err[0] and "int8" in err[1]
