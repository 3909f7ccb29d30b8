"""The generated binarized core in real HDL simulators (cocotb on Icarus and Verilator): bit-exact against the
numpy XNOR-popcount model, every timed case on the cycle codesign.contract.binary_timing predicts, and the
cycles the simulator's 'xnor' model predicts for whole tiled GEMMs equal to the cycles the RTL takes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from codesign.arch import BinaryArraySpec
from codesign.workload import Bits
from conftest import require_simulator
from hdl.benches.binary_golden import binary_gemm_case, binary_standard_cases, binary_tile_case
from hdl.params import BinaryCoreParams, binary_params_from_arch
from hdl.verify import verify_core
from sim.engine import simulate
from test_sim_factories import gemm_layer, make_arch, workload

pytestmark = pytest.mark.rtl

CORES = {
    "3x4-w16": lambda: BinaryCoreParams(3, 4, 16, 160),
    "2x2-w5-short-k": lambda: BinaryCoreParams(2, 2, 5, 12),  # K tiles of 10 bits: GEMMs split K
    "4x4-w32": lambda: BinaryCoreParams(4, 4, 32, 256),
}
RUNS = [("icarus", "3x4-w16"), ("icarus", "2x2-w5-short-k"), ("verilator", "4x4-w32")]


@pytest.mark.parametrize("simulator,core", RUNS, ids=[f"{s}-{c}" for s, c in RUNS])
def test_binary_core_is_bit_exact_and_cycle_exact(simulator, core, tmp_path):
    require_simulator(simulator)
    params = CORES[core]()
    rng = np.random.default_rng(3)
    cases = binary_standard_cases(params, seed=5)
    rows, cols, wb = params.rows, params.cols, params.word_bits
    cases.append(binary_gemm_case(params, "GEMM ragged", 3 * rows + 2, 2 * params.k_tile + 3, 2 * cols + 1, rng))
    cases.append(binary_tile_case(params, "1x1 tiles back to back", [(1, 1, 1)] * 4, rng))
    report = verify_core(params, simulator, seed=5, work_dir=tmp_path, cases=cases, lint=False)
    failing = [c for c in report.checks if not c.passed]
    assert not failing, failing
    timed = [c for c in report.checks if c.predicted_cycles is not None and "stalled" not in c.detail]
    assert len(timed) >= 10 and all(c.measured_cycles == c.predicted_cycles for c in timed)
    assert any("assembled GEMM = A @ B" in c.detail for c in report.checks)


def test_a_wrong_prediction_fails_in_rtl(tmp_path):
    require_simulator("icarus")
    params = CORES["3x4-w16"]()
    case = binary_standard_cases(params, seed=1)[1]  # the ragged tile
    case.predicted_cycles -= 1
    case.predicted_tile_cycles = [case.predicted_cycles]
    report = verify_core(params, "icarus", seed=1, work_dir=tmp_path, cases=[case], lint=False)
    assert not report.passed
    by_name = {c.name: c for c in report.checks}
    assert not by_name[case.name].passed and not by_name["cocotb bench on icarus"].passed
    assert by_name[case.name].measured_cycles == case.predicted_cycles + 1


def test_sim_predicts_the_cycles_the_rtl_takes_for_tiled_gemms(tmp_path):
    """Binarized GEMM layers simulated on an accelerator with a binary array (the engine places them on it,
    under the 'xnor' model); the same GEMMs cut into the same tiles and run under cocotb on the core generated
    from that binary array take exactly the compute cycles the simulator reports."""
    require_simulator("icarus")
    spec = BinaryArraySpec(rows=3, cols=2, word_bits=8, accumulator_bits=6)  # K tiles of 3 words (24 bits)
    arch = replace(make_arch(glb_bytes=1 << 16), binary_array=spec)
    params = binary_params_from_arch(arch)
    assert params.k_tile == 24
    shapes = [(7, 50, 5), (3, 24, 2), (1, 1, 1), (4, 17, 3), (6, 100, 4)]
    layers = [replace(gemm_layer(name=f"fc{i}", m=m, k=k, n=n), bits=Bits(weight=1, activation=1, accumulator=16))
              for i, (m, k, n) in enumerate(shapes)]
    result = simulate(workload(*layers), arch, "ws")
    rng = np.random.default_rng(11)
    cases, predicted = [], []
    for layer, (m, k, n) in zip(result.layers, shapes):
        assert layer.dataflow == "xnor"
        assert tuple(layer.mapping["tiles"]["array"][d] for d in "mkn") == (min(3, m), min(24, k), min(2, n))
        predicted.append(layer.compute_cycles)
        cases.append(binary_gemm_case(params, f"GEMM {m}x{k}x{n}", m, k, n, rng))
        assert cases[-1].predicted_cycles == layer.compute_cycles
    report = verify_core(params, "icarus", seed=2, work_dir=tmp_path, cases=cases, lint=False)
    assert report.passed, [c for c in report.checks if not c.passed]
    measured = [c.measured_cycles for c in report.checks[:len(cases)]]
    assert measured == predicted
    assert predicted[0] == 3 * 3 * (3 + 3 + 1) + 2  # 3 m folds x 3 n folds x (24 + 24 + 2 bits) + 2


def test_codesign_verify_runs_the_binary_core_and_prints_the_table(tmp_path, capsys):
    require_simulator("icarus")
    from codesign.cli import main

    arch = tmp_path / "bnn.yaml"
    arch.write_text("name: bnn\nrows: 8\ncols: 8\nglb: {size_bytes: 65536}\ndram: {bytes_per_cycle: 8}\n"
                    "energy: {preset: horowitz-45nm}\n"
                    "binary_array: {rows: 3, cols: 2, word_bits: 16, accumulator_bits: 8}\n")
    assert main(["verify", "--arch", str(arch), "--array", "binary", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "xnor_gemm_3x2_w16 on icarus (seed 3)" in out and "all checks passed" in out
    for name in ("ragged tile", "extremes -k", "back to back", "GEMM", "stalls", "cocotb bench on icarus"):
        assert name in out
    assert "FAIL" not in out


@pytest.mark.parametrize("args", [(1, 1, 1, 1), (1, 1, 1, 5), (3, 2, 5, 17), (2, 2, 64, 640)])
def test_the_generated_verilog_lints_clean(tmp_path, args):
    require_simulator("verilator")
    from hdl.generate import emit_binary_core
    from hdl.lint import verilator_lint

    params = BinaryCoreParams(*args)
    design = emit_binary_core(params, tmp_path / "rtl")
    result = verilator_lint(design.verilog_path, params.top_name)
    assert result.clean, result.output
