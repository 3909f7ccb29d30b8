"""The binarized array, LUT and softmax Verilog under cocotb on Icarus and Verilator, against numpy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hdl.binary import XnorThresholdArray, acc_bits_for, pack_words, to_bits, valid_bits_per_word
from hdl.cocotb_run import run_cocotb
from hdl.emit import to_verilog
from hdl.lut import FUNCTIONS, LutActivation
from hdl.softmax import SoftmaxUnit
from conftest import require_simulator

pytestmark = pytest.mark.rtl
SIMULATORS = ["icarus", "verilator"]
LUT_RANGES = {
    "sigmoid": ((-8, 8), (0, 1)),
    "tanh": ((-4, 4), (-1, 1)),
    "gelu": ((-4, 4), (-0.2, 4)),
    "silu": ((-6, 6), (-0.3, 6)),
    "hswish": ((-4, 4), (-0.4, 4)),
    "exp": ((-8, 2), (0, float(np.exp(2)))),
}


def _run(tmp_path, component, top, bench, cases, simulator, name="run"):
    folder = tmp_path / f"{name}_{simulator}"
    folder.mkdir()
    verilog = folder / f"{top}.v"
    verilog.write_text(to_verilog(component, top))
    cases_path = folder / "cases.json"
    cases_path.write_text(json.dumps(cases))
    return run_cocotb([verilog], top, f"hdl.benches.{bench}", simulator, folder / "build",
                      {"CODESIGN_BENCH_CASES": str(cases_path)})


def _binary_cases(rows, cols, word_bits, ks, seed):
    rng = np.random.default_rng(seed)
    cases = []
    for k in ks:
        a = rng.choice([-1, 1], size=(rows, k))
        w = rng.choice([-1, 1], size=(k, cols))
        thr = rng.integers(-k, k + 2, size=cols)
        flip = rng.integers(0, 2, size=cols)
        acc = a @ w
        out_bits = (acc >= thr) ^ flip.astype(bool)
        cases.append({
            "a_words": [[int(v) for v in row] for row in pack_words(to_bits(a), word_bits)],
            "w_words": [[int(v) for v in row] for row in pack_words(to_bits(w.T), word_bits)],
            "n_valid": valid_bits_per_word(k, word_bits),
            "thr": [int(t) for t in thr],
            "flip": int(sum(int(f) << c for c, f in enumerate(flip))),
            "acc": acc.tolist(),
            "out": [int(sum(int(b) << c for c, b in enumerate(row))) for row in out_bits],
        })
    return {"rows": rows, "cols": cols, "cases": cases}


def _lut_cases(lut: LutActivation, table=None):
    return {
        "table": [int(v) for v in (lut.table() if table is None else table)],
        "real": [float(v) for v in FUNCTIONS[lut.name](lut.grid())],
        "out_lo": lut.out_range[0], "out_step": lut.out_step, "bound": lut.error_bound(),
    }


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_binary_array_matches_the_xnor_popcount_model(tmp_path, simulator):
    require_simulator(simulator)
    rows, cols, word_bits, ks = 3, 4, 16, [5, 16, 37, 64, 1]
    layer = XnorThresholdArray(rows, cols, word_bits, acc_bits_for(max(ks)))
    cases = _binary_cases(rows, cols, word_bits, ks, seed=21)
    tests, failed, _ = _run(tmp_path, layer, "xnor_threshold_array", "binary_bench", cases, simulator)
    assert (tests, failed) == (1, 0)


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_gelu_lut_is_its_table_and_within_its_bound(tmp_path, simulator):
    require_simulator(simulator)
    lut = LutActivation("gelu", 7, 10, *LUT_RANGES["gelu"])
    tests, failed, _ = _run(tmp_path, lut, "lut_gelu", "lut_bench", _lut_cases(lut), simulator)
    assert (tests, failed) == (1, 0)


@pytest.mark.parametrize("name", sorted(set(LUT_RANGES) - {"gelu"}))
def test_every_registry_lut_on_icarus(tmp_path, name):
    require_simulator("icarus")
    lut = LutActivation(name, 6, 8, *LUT_RANGES[name])
    tests, failed, _ = _run(tmp_path, lut, f"lut_{name}", "lut_bench", _lut_cases(lut), "icarus")
    assert (tests, failed) == (1, 0)


def test_lut_bench_fails_on_a_table_that_is_not_the_rom(tmp_path):
    require_simulator("icarus")
    lut = LutActivation("sigmoid", 5, 8, *LUT_RANGES["sigmoid"])
    wrong = lut.table()
    wrong[7] += 1
    tests, failed, _ = _run(tmp_path, lut, "lut_sigmoid", "lut_bench", _lut_cases(lut, wrong), "icarus")
    assert (tests, failed) == (1, 1)


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_softmax_matches_its_bit_exact_model_and_cycle_count(tmp_path, simulator):
    require_simulator(simulator)
    unit = SoftmaxUnit(8)
    rng = np.random.default_rng(5)
    phases = []
    for pattern, lengths in (([1], (1, 4, 8, 3)), ([1, 0, 1, 1, 0, 0, 1], (8, 2, 5))):
        vectors = [rng.integers(-128, 128, size=n) for n in lengths]
        if pattern == [1]:
            vectors.append(np.array([127, -128, 127, 0]))
        phases.append({
            "ready_pattern": pattern,
            "vectors": [v.tolist() for v in vectors],
            "expected": [unit.model(v).tolist() for v in vectors],
            "cycles": [3 * len(v) + 4 if pattern == [1] else None for v in vectors],
        })
    tests, failed, _ = _run(tmp_path, unit, "softmax_unit", "softmax_bench", {"phases": phases}, simulator)
    assert (tests, failed) == (1, 0)
