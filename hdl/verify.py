"""Verify a generated GEMM core in a real HDL simulator: bit-exact results and the simulator's cycles.

``verify_core`` writes the Verilog, runs the cocotb bench (``hdl.benches.gemm_core_bench`` for the
integer cores, ``hdl.benches.binary_core_bench`` for the binarized one) on Icarus or Verilator with the
golden cases, and turns what the RTL did into checks: each case's results against numpy, each timed
case's cycles against the cycle contract the simulator uses, ``codesign.contract.tile_timing`` /
``codesign.contract.gemm_timing.predict_gemm_tiles`` (integer) or ``codesign.contract.binary_timing``
(``tile_cycles`` per tile, ``sequence_cycles`` back to back, ``predict_gemm_tiles`` for whole GEMMs),
plus Verilator's ``-Wall`` lint when Verilator is there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codesign.atomic_write import write_text_atomic
from codesign.errors import HdlError, OutputError
from hdl.benches.binary_golden import assemble_binary_gemm, binary_standard_cases
from hdl.benches.golden import Case, assemble_gemm, standard_cases
from hdl.cocotb_run import SIMULATORS, ensure_simulator_on_path, run_cocotb
from hdl.params import BinaryCoreParams, CoreParams

__all__ = ["BENCH_MODULE", "BINARY_BENCH_MODULE", "RS_BENCH_MODULE", "Check", "VerifyReport", "verify_core",
           "verify_rs_array", "rs_case_check", "lint_check", "verilator_available", "check_run_options",
           "work_folder"]

BENCH_MODULE = "hdl.benches.gemm_core_bench"
BINARY_BENCH_MODULE = "hdl.benches.binary_core_bench"
RS_BENCH_MODULE = "hdl.benches.rs_core_bench"


@dataclass(frozen=True)
class Check:
    """One line of the verification table."""

    name: str
    passed: bool
    predicted_cycles: int | None = None
    measured_cycles: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class VerifyReport:
    """Every check of one ``verify_core`` run; ``passed`` only if there is one and all pass."""

    params: Any  # CoreParams, BinaryCoreParams or hdl.units.UnitParams: anything with a top_name
    simulator: str
    seed: int
    checks: tuple[Check, ...]
    seconds: float

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.passed for check in self.checks)


def _case_check(params: CoreParams | BinaryCoreParams, case: Case, result: dict) -> Check:
    exact = result["finished"] and not result["mismatches"]
    detail = [f"{len(case.tiles)} tile{'s' if len(case.tiles) > 1 else ''}"]
    if not result["finished"]:
        detail.append("did not finish")
    elif result["mismatches"]:
        detail.append(f"{len(result['mismatches'])} mismatches, first: {result['mismatches'][0]}")
    else:
        detail.append("bit-exact")
    if exact and case.gemm is not None:
        assemble = assemble_binary_gemm if isinstance(params, BinaryCoreParams) else assemble_gemm
        whole = assemble(params, case, result["result_rows"])
        if not np.array_equal(whole, np.asarray(case.gemm["expected"], dtype=np.int64)):
            exact = False
            detail.append("assembled GEMM differs from A @ B")
        else:
            detail.append("assembled GEMM = A @ B")
    measured = result["cycles"] if result["finished"] else None
    if case.timed:
        on_time = measured == case.predicted_cycles and result["tile_cycles"] == case.predicted_tile_cycles
        if result["finished"] and not on_time:
            detail.append(f"tile cycles {result['tile_cycles']} vs predicted {case.predicted_tile_cycles}")
    else:
        on_time = measured is not None and measured >= case.predicted_cycles
        detail.append("stalled: cycles >= prediction")
    return Check(case.name, bool(exact and on_time), case.predicted_cycles, measured, "; ".join(detail))



def check_run_options(simulator: str, seed: Any) -> None:
    """One-line HdlError for an unknown or missing simulator or a bad seed, before any work."""
    if simulator not in SIMULATORS:
        raise HdlError(f"unknown simulator {simulator!r}; choose one of {', '.join(SIMULATORS)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise HdlError(f"seed={seed!r} must be a non-negative integer")
    ensure_simulator_on_path(simulator)


@contextlib.contextmanager
def work_folder(work_dir: "str | os.PathLike | None"):
    """The folder a verification run writes to: ``work_dir`` (created), or a temporary one removed after."""
    temporary = work_dir is None
    folder = Path(tempfile.mkdtemp(prefix="codesign-verify-")) if temporary else Path(work_dir)
    try:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot use {folder} as the work folder: {exc.strerror or exc}") from None
        yield folder
    finally:
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)


def verify_core(
    params: CoreParams | BinaryCoreParams,
    simulator: str = "icarus",
    seed: int = 0,
    work_dir: str | os.PathLike | None = None,
    *,
    cases: list[Case] | None = None,
    lint: bool = True,
    icarus_generation: str | None = None,
) -> VerifyReport:
    """Generate ``params``' core, run the cases in an HDL simulator and return the checks.

    Parameters: ``params``, the ``CoreParams`` (integer GEMM core) or ``BinaryCoreParams`` (binarized
    XNOR-popcount core) to build; ``simulator``, 'icarus' or 'verilator';
    ``seed`` (>= 0) of the random cases and stalls; ``work_dir`` keeps the Verilog, cases, build and
    logs (None: a temporary folder, removed after); ``cases``, the ``Case`` list to run (default
    ``hdl.benches.golden.standard_cases``, or ``hdl.benches.binary_golden.binary_standard_cases``); ``lint``, also run ``verilator --lint-only -Wall`` when
    Verilator is installed; ``icarus_generation``, Icarus' ``-g`` mode ('2005' or '2012'; None: the
    cocotb runner's -g2012).

    Returns a ``VerifyReport``: one ``Check`` per case (bit-exact results, and for timed cases the
    measured cycles equal to the contract's), one for the cocotb run, one for the lint.
    Raises HdlError for an unknown or missing simulator, a bad seed, or a run that left no results;
    OutputError when ``work_dir`` cannot be created or written.
    """
    from hdl.generate import emit_binary_core, emit_core
    from hdl.rs_pe import RsParams

    if isinstance(params, RsParams):
        return verify_rs_array(params, simulator, seed, work_dir, cases=cases, lint=lint,
                               icarus_generation=icarus_generation)
    binary = isinstance(params, BinaryCoreParams)
    if not binary and not isinstance(params, CoreParams):
        raise HdlError(f"verify_core needs CoreParams, BinaryCoreParams or RsParams, not {type(params).__name__}")
    check_run_options(simulator, seed)
    started = time.monotonic()
    with work_folder(work_dir) as folder:
        design = (emit_binary_core if binary else emit_core)(params, folder / "rtl")
        if cases is None:
            cases = binary_standard_cases(params, seed) if binary else standard_cases(params, seed)
        spec = {"params": _params_json(params), "cases": [c.to_json() for c in cases], "seed": seed}
        cases_path = write_text_atomic(folder / "cases.json", json.dumps(spec))
        out_path = folder / "measured.json"
        if out_path.exists():
            out_path.unlink()
        tests, failed, _ = run_cocotb(
            [design.verilog_path], params.top_name, BINARY_BENCH_MODULE if binary else BENCH_MODULE, simulator,
            folder / f"build_{simulator}",
            {"CODESIGN_BENCH_CASES": str(cases_path.resolve()), "CODESIGN_BENCH_OUT": str(out_path.resolve())},
            seed=seed, icarus_generation=icarus_generation,
        )
        checks = _bench_checks(params, design, cases, out_path, _case_check, simulator, tests, failed, lint)
        return VerifyReport(params, simulator, seed, tuple(checks), time.monotonic() - started)


def rs_case_check(params, case, result: dict) -> Check:
    """One RS case's line: psums exact (a tiled convolution also assembled and compared with numpy's), and
    timed cases on the cycles ``codesign.contract.rs_timing`` predicts (stalled ones: no sooner)."""
    from hdl.benches.rs_core_bench import case_problems
    from hdl.benches.rs_golden import assemble, conv2d

    finished = len(result["last_psum_edges"]) == len(case.passes)
    problems = case_problems(case, result)
    detail = [f"{len(case.passes)} pass{'es' if len(case.passes) > 1 else ''}"
              + (" back to back" if case.back_to_back else "")]
    measured = None
    if finished:
        if case.back_to_back:
            measured = result["last_psum_edges"][-1] - result["command_edges"][0]
        else:
            measured = sum(b - a for a, b in zip(result["command_edges"], result["last_psum_edges"]))
    exact = finished and not result["mismatches"]
    detail.append("bit-exact" if exact else ("did not finish" if not finished else
                                             f"{len(result['mismatches'])} wrong, first: {result['mismatches'][0]}"))
    if exact and case.conv is not None:
        x, w = np.asarray(case.conv["x"], dtype=object), np.asarray(case.conv["w"], dtype=object)
        want = conv2d(x, w, case.conv.get("stride", 1))
        got = assemble(case.passes, [np.asarray(v, dtype=object) for v in result["psums"]], want.shape)
        if np.array_equal(got, want):
            detail.append("assembled conv = numpy conv")
        else:
            exact = False
            problems.append(f"{case.name}: assembled conv differs from numpy conv")
            detail.append("assembled conv differs from numpy conv")
    if case.timed:
        on_time = finished and not any("predicted" in text for text in problems)
        if finished and not on_time:
            detail.append(next(text for text in problems if "predicted" in text).split(": ", 1)[1])
    else:
        on_time = measured is not None and measured >= case.predicted_cycles
        detail.append("stalled: cycles >= prediction")
    return Check(case.name, bool(exact and on_time), case.predicted_cycles, measured, "; ".join(detail))


def verify_rs_array(params, simulator: str = "icarus", seed: int = 0, work_dir: str | os.PathLike | None = None,
                    *, cases: list | None = None, lint: bool = True,
                    icarus_generation: str | None = None) -> VerifyReport:
    """As ``verify_core`` for the row-stationary array of ``params`` (an ``hdl.rs_pe.RsParams``): the cases
    of ``hdl.benches.rs_cases.rs_standard_cases`` (or ``cases``) on ``hdl.benches.rs_core_bench``."""
    from hdl.benches.rs_cases import rs_standard_cases
    from hdl.generate import emit_rs_array

    check_run_options(simulator, seed)
    started = time.monotonic()
    with work_folder(work_dir) as folder:
        design = emit_rs_array(params, folder / "rtl")
        if cases is None:
            cases = rs_standard_cases(params, seed)
        spec = {"params": dataclasses.asdict(params), "cases": [c.to_json() for c in cases], "seed": seed}
        cases_path = write_text_atomic(folder / "cases.json", json.dumps(spec))
        out_path = folder / "measured.json"
        if out_path.exists():
            out_path.unlink()
        tests, failed, _ = run_cocotb(
            [design.verilog_path], params.top_name, RS_BENCH_MODULE, simulator, folder / f"build_{simulator}",
            {"CODESIGN_BENCH_CASES": str(cases_path.resolve()), "CODESIGN_BENCH_OUT": str(out_path.resolve())},
            seed=seed, icarus_generation=icarus_generation,
            verilator_opt="-O1",  # every PE's scratchpads make a large model; -Os compiles it for many minutes
        )
        checks = _bench_checks(params, design, cases, out_path, rs_case_check, simulator, tests, failed, lint)
        return VerifyReport(params, simulator, seed, tuple(checks), time.monotonic() - started)


def lint_check(verilog_path: str | os.PathLike, top: str) -> Check:
    """``verilator --lint-only -Wall`` (documented waivers only) as one line of the table."""
    from hdl.lint import verilator_lint

    result = verilator_lint(verilog_path, top)
    first = next((line for line in result.output.splitlines() if line.startswith("%")), "")
    return Check("verilator --lint-only -Wall", result.clean,
                 detail="clean (documented waivers only)" if result.clean else first)


def verilator_available() -> bool:
    try:
        ensure_simulator_on_path("verilator")
    except HdlError:
        return False
    return True


def _params_json(params: CoreParams | BinaryCoreParams) -> dict:
    """The fields the bench rebuilds ``CoreParams(**...)`` / ``BinaryCoreParams(**...)`` from."""
    return dataclasses.asdict(params)


def _bench_checks(params, design, cases, out_path, case_check, simulator: str, tests: int, failed: int,
                  lint: bool) -> list[Check]:
    """The checks of one cocotb bench run: each case's (``case_check`` on the bench's measured results), all cases
    ran, the bench passed, and the Verilator lint when Verilator is there."""
    checks: list[Check] = []
    if out_path.is_file():
        measured = json.loads(out_path.read_text())["results"]
        checks += [case_check(params, case, result) for case, result in zip(cases, measured)]
        if len(measured) != len(cases):
            checks.append(Check("all cases ran", False, detail=f"{len(measured)} of {len(cases)}"))
    checks.append(Check(f"cocotb bench on {simulator}", tests >= 1 and failed == 0,
                        detail=f"{tests} test(s), {failed} failed"))
    if lint and verilator_available():
        checks.append(lint_check(design.verilog_path, params.top_name))
    return checks
