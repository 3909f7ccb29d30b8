"""The generated GEMM core in real HDL simulators (cocotb on Icarus and Verilator): bit-exact against
numpy, cycles equal to sim's prediction for single tiles and whole tiled GEMMs. Each parameter set is
one build running all its cases, to keep Verilator's compile cost to one per core."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import require_simulator
from hdl.benches.golden import gemm_case, standard_cases
from hdl.params import CoreParams, core_params_from_arch
from hdl.verify import verify_core

pytestmark = pytest.mark.rtl


def _preset(name, dataflow):
    """The preset's core, with OS reductions capped at 64 beats to keep the extreme case short."""
    from codesign.arch_loader import load_arch

    params = core_params_from_arch(load_arch(name), dataflow)
    return dataclasses.replace(params, max_k=min(params.max_k, 64)) if dataflow == "os" else params


CORES = {
    "ws-2x3": lambda: CoreParams("ws", 2, 3, 8, 8, True, True, max_m=16, max_k=2),
    "os-2x3": lambda: CoreParams("os", 2, 3, 8, 8, True, True, max_m=2, max_k=16),
    "ws-3x2-u4-logic": lambda: CoreParams("ws", 3, 2, 4, 4, False, False, max_m=9, multiplier="logic"),
    "os-2x2-i6xu5": lambda: CoreParams("os", 2, 2, 6, 5, True, False, max_m=2, max_k=9),
    "os-fpga-4x4": lambda: _preset("fpga-4x4", "os"),
    "ws-fpga-4x4": lambda: _preset("fpga-4x4", "ws"),
    "ws-fpga-8x8": lambda: _preset("fpga-8x8", "ws"),  # big enough for Verilator to split its C++
}
RUNS = [("icarus", name) for name in CORES if name != "ws-fpga-8x8"] + [
    ("verilator", "ws-fpga-8x8"), ("verilator", "os-fpga-4x4")]


@pytest.mark.parametrize("simulator,core", RUNS, ids=[f"{s}-{c}" for s, c in RUNS])
def test_core_is_bit_exact_and_cycle_exact(simulator, core, tmp_path):
    require_simulator(simulator)
    params = CORES[core]()
    rng = np.random.default_rng(7)
    cases = standard_cases(params, seed=11)
    rows, cols = params.rows, params.cols
    cases.append(gemm_case(params, "GEMM ragged", 3 * rows + 2, 2 * rows + 1, 2 * cols + 1, rng))
    report = verify_core(params, simulator, seed=11, work_dir=tmp_path, cases=cases, lint=False)
    failing = [c for c in report.checks if not c.passed]
    assert not failing, failing
    timed = [c for c in report.checks if c.predicted_cycles is not None and "stalled" not in c.detail]
    assert len(timed) >= 7 and all(c.measured_cycles == c.predicted_cycles for c in timed)


def test_a_core_that_disagrees_with_the_prediction_fails_in_rtl(tmp_path):
    require_simulator("icarus")
    params = CORES["ws-2x3"]()
    case = standard_cases(params, seed=1)[0]
    case.predicted_cycles += 1
    case.predicted_tile_cycles = [case.predicted_cycles]
    report = verify_core(params, "icarus", seed=1, work_dir=tmp_path, cases=[case], lint=False)
    assert not report.passed
    by_name = {c.name: c for c in report.checks}
    assert not by_name[case.name].passed and not by_name["cocotb bench on icarus"].passed


def test_core_is_exact_under_icarus_2005_as_under_the_runners_2012(tmp_path):
    """Every other Icarus run here uses cocotb's -g2012; the same Verilog under -g2005 does the same."""
    require_simulator("icarus")
    params = CORES["ws-2x3"]()
    report = verify_core(params, "icarus", seed=4, work_dir=tmp_path, lint=False, icarus_generation="2005")
    assert report.passed, [c for c in report.checks if not c.passed]
