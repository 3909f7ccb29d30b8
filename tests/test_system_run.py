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


# -- run_system on the simulation top: the memory, the trace and the host in RTL -----------------------------
def _copy_case(source: int, nbytes: int, dest: int):
    """A LOAD of ``nbytes`` from DRAM ``source`` (random bytes), a STORE of them to ``dest``, END; its image."""
    import numpy as np

    from codesign.contract.isa import Instruction, Op, Unit, encode_program

    instructions = [Instruction(Op.LOAD, {"glb_addr": 0, "bytes": nbytes, "dram_addr": source}),
                    Instruction(Op.SYNC, {"mask": 1 << Unit.DMA}),
                    Instruction(Op.STORE, {"glb_addr": 0, "bytes": nbytes, "dram_addr": dest}),
                    Instruction(Op.SYNC, {"mask": 1 << Unit.DMA}),
                    Instruction(Op.END, {})]
    binary = encode_program(instructions)
    program_addr = 16384
    image = np.zeros(program_addr + len(binary), dtype=np.uint8)
    if source + nbytes <= program_addr:
        image[source:source + nbytes] = np.random.default_rng(nbytes).integers(0, 256, nbytes, dtype=np.uint8)
    image[program_addr:] = np.frombuffer(binary, dtype=np.uint8)
    return instructions, binary, image, program_addr


@pytest.mark.rtl
@pytest.mark.slow
def test_run_system_gives_the_executors_dram_and_the_schedules_dispatch_cycles_and_dram_errors(tmp_path):
    """One build of the simulation top (its memory larger than either image): a copy of 4.5 KiB across a 4 KiB
    boundary at the spec's 20-cycle latency, bit-exact with every dispatch cycle as predicted; then a LOAD
    running past the end of its image stops with error 3 where the executor does."""
    require_simulator("icarus")
    from codesign.arch_loader import load_arch
    from codesign.compiler.executor import ExecutionError, run_program
    from codesign.contract.system_timing import Target, schedule
    from hdl.system.params import system_params_from_arch
    from hdl.system.rtl_run import run_system, sim_top_verilog
    from hdl.system.sim_top import sim_memory_bytes

    arch = load_arch("fpga-8x8")
    target = Target(arch, "ws")
    params = system_params_from_arch(arch, "ws", imem_depth=256)
    assert params.dram_latency_cycles == 20
    verilog = sim_top_verilog(params, sim_memory_bytes(1 << 16))
    instructions, binary, image, program_addr = _copy_case(8, 4096 + 512, 8192)
    execution = run_program(binary, target, image, params.acc_rows)
    predicted = schedule(instructions, target, len(binary))
    run = run_system(params, image.tobytes(), program_addr, len(instructions), "icarus", tmp_path / "copy",
                     max_cycles=2 * predicted.total_cycles, verilog=verilog)
    assert run.done and not run.timed_out and run.error_code == 0
    assert run.cycles == predicted.total_cycles == execution.cycles
    assert run.issue == tuple(predicted.issue)
    assert run.dram == execution.dram.tobytes() and run.dram[8192:8192 + 64] == image[8:8 + 64].tobytes()

    # the image ends with the program (16 KiB + 80 bytes): a LOAD from inside it running 48 bytes past its end
    instructions, binary, image, program_addr = _copy_case(16384 + 16, 128, 0)
    with pytest.raises(ExecutionError) as error:
        run_program(binary, target, image, params.acc_rows)
    run = run_system(params, image.tobytes(), program_addr, len(instructions), "icarus", tmp_path / "past",
                     max_cycles=10_000, verilog=verilog)
    assert not run.done and run.error_code == error.value.code == 3 and run.error_pc == error.value.index == 0
    # the LOAD dispatched when predicted; dispatch stopped before the STORE
    assert run.issue[0] == schedule(instructions, target, len(binary)).issue[0] and run.issue[2:] == (-1, -1, -1)


def test_a_cached_simulator_build_is_not_reused_by_another_environment(monkeypatch):
    """A build's makefiles name cocotb's files by absolute path: a build cached by another venv (or another cocotb
    or simulator) must not be taken, so the build folder is keyed by the toolchain as well as the Verilog."""
    import sys

    import cocotb

    from hdl.system.rtl_run import toolchain_key

    here = toolchain_key("verilator")
    assert toolchain_key("verilator") == here != toolchain_key("icarus")
    monkeypatch.setattr(sys, "prefix", "/elsewhere/.venv")
    assert toolchain_key("verilator") != here
    monkeypatch.undo()
    monkeypatch.setattr(cocotb, "__file__", "/elsewhere/site-packages/cocotb/__init__.py")
    assert toolchain_key("verilator") != here
