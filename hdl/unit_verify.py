"""Verify a stand-alone unit (``hdl.units``) in a real HDL simulator against its numpy golden model.

``verify_unit`` writes the unit's Verilog and manifest, runs its cocotb bench on Icarus or Verilator
with the golden cases of ``hdl.benches.unit_golden`` and turns what the RTL did into the same table as
``hdl.verify.verify_core``: one check per segment of steps (every settled output equal to the model's),
one per latency probe and per softmax vector with predicted and measured cycles, the LUT's values
against the real function within its stated error bound, the cocotb run, and Verilator's ``-Wall`` lint.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from codesign.atomic_write import write_text_atomic
from codesign.errors import HdlError
from hdl.benches.unit_golden import bench_module, softmax_cycles, softmax_period, unit_cases
from hdl.cocotb_run import run_cocotb
from hdl.units import UnitParams, emit_unit
from hdl.verify import Check, VerifyReport, check_run_options, lint_check, verilator_available, work_folder

__all__ = ["verify_unit", "script_checks", "softmax_checks"]


def _mismatches(segment: dict, observed: list[dict]) -> list[str]:
    found = []
    for number, step in enumerate(segment["steps"]):
        row = observed[number] if number < len(observed) else {}
        for name, want in step["expect"].items():
            if row.get(name) != want:
                found.append(f"step {number}: {name} = {row.get(name)}, expected {want}")
    return found


def _measured_latency(segment: dict, observed: list[dict], probe: dict) -> int | None:
    """Edges from the probe's step until ``output`` first shows the value it holds at the segment's end."""
    name, start = probe["output"], probe["step"]
    final = segment["steps"][-1]["expect"][name]
    for offset, row in enumerate(observed[start:]):
        if row.get(name) == final:
            return offset
    return None


def script_checks(cases: dict, measured: dict | None) -> list[Check]:
    """Checks of a step-script run: each segment bit-exact, each latency probe on its predicted edge, and for
    a LUT the values read back within the table's error bound of the real function."""
    segments = (measured or {}).get("segments", [])
    checks = []
    for index, segment in enumerate(cases["segments"]):
        observed = segments[index] if index < len(segments) else []
        wrong = _mismatches(segment, observed)
        detail = [segment["detail"]] if segment["detail"] else []
        steps = len(segment["steps"])
        detail.append(f"{steps} step{'s' if steps > 1 else ''}")
        if len(observed) < steps:
            detail.append("did not run")
        elif wrong:
            detail.append(f"{len(wrong)} mismatches, first: {wrong[0]}")
        else:
            detail.append("bit-exact")
        checks.append(Check(segment["name"], len(observed) == steps and not wrong, detail="; ".join(detail)))
        for probe in segment["probes"]:
            got = _measured_latency(segment, observed, probe) if observed else None
            checks.append(Check(f"latency of {probe['output']}", got == probe["predicted"], probe["predicted"], got,
                                "edges from an input change to the new value"))
    lut = cases.get("lut")
    if lut is not None:
        checks.append(_lut_bound_check(cases, segments, lut))
    return checks


def _lut_bound_check(cases: dict, segments: list, lut: dict) -> Check:
    """The codes read back on the address scan, dequantized, against f on the grid."""
    index = next(i for i, s in enumerate(cases["segments"]) if s["name"] == "every address")
    latency = 0 if not cases["clocked"] else 1
    observed = segments[index] if index < len(segments) else []
    codes = [row.get("y") for row in observed[latency:latency + len(lut["real"])]]
    if len(codes) < len(lut["real"]) or any(code is None for code in codes):
        return Check("within the table's error bound", False, detail="the address scan did not run")
    worst = max(abs(lut["out_lo"] + code * lut["out_step"] - real) for code, real in zip(codes, lut["real"]))
    return Check("within the table's error bound", worst <= lut["bound"] * (1 + 1e-9),
                 detail=f"largest |value(y) - f(x)| {worst:.4g} over {len(codes)} addresses, bound {lut['bound']:.4g}")


def softmax_checks(cases: dict, measured: dict | None) -> list[Check]:
    """Per vector: outputs equal to the model's, cycles first accept -> last output (3n + 3 with ready high,
    at least that when stalled) and, back to back, the period to the next vector's first accept (3n + 4)."""
    runs = (measured or {}).get("vectors", [])
    checks, number = [], 0
    for phase in cases["phases"]:
        stalled = phase["ready_pattern"] != [1]
        count = len(phase["vectors"])
        for position, (vector, expected) in enumerate(zip(phase["vectors"], phase["expected"])):
            n = len(vector)
            run = runs[number] if number < len(runs) else None
            number += 1
            exact = run is not None and run["outputs"] == expected
            start = None if run is None else run["first_accept_edge"]
            end = None if run is None else run["last_output_edge"]
            cycles = None if start is None or end is None else end - start
            predicted = softmax_cycles(n)
            on_time = cycles is not None and (cycles >= predicted if stalled else cycles == predicted)
            detail = ["bit-exact" if exact else "outputs differ from the model" if run else "did not run"]
            if stalled:
                detail.append("y_ready stalled: cycles >= prediction")
            label = phase["names"][position] if "names" in phase else f"n={n}"
            name = f"{'stalled ' if stalled else ''}vector {label}"
            checks.append(Check(name, exact and on_time, predicted, cycles, "; ".join(detail)))
            following = runs[number] if number < len(runs) and position + 1 < count else None
            if not stalled and following is not None:
                period = None if start is None or following["first_accept_edge"] is None else (
                    following["first_accept_edge"] - start)
                checks.append(Check(f"period after {label}", period == softmax_period(n), softmax_period(n), period,
                                    "edges to the next vector's first accept"))
    return checks


def verify_unit(
    params: UnitParams,
    simulator: str = "icarus",
    seed: int = 0,
    work_dir: str | os.PathLike | None = None,
    *,
    cases: dict | None = None,
    lint: bool = True,
    icarus_generation: str | None = None,
) -> VerifyReport:
    """Generate ``params``' unit, run its golden cases in an HDL simulator and return the checks.

    Parameters as ``hdl.verify.verify_core``; ``cases`` replaces ``hdl.benches.unit_golden.unit_cases``
    (a control run with a wrong expectation must fail). Raises HdlError for an unknown or missing
    simulator, a bad seed or a run that left no results; OutputError when ``work_dir`` cannot be used.
    """
    if not isinstance(params, UnitParams):
        raise HdlError(f"verify_unit needs UnitParams, not {type(params).__name__}")
    check_run_options(simulator, seed)
    started = time.monotonic()
    with work_folder(work_dir) as folder:
        design = emit_unit(params, folder / "rtl")
        if cases is None:
            cases = unit_cases(params, seed)
        cases_path = write_text_atomic(folder / "cases.json", json.dumps(cases))
        out_path = folder / "measured.json"
        if out_path.exists():
            out_path.unlink()
        tests, failed, _ = run_cocotb(
            [design.verilog_path], params.top_name, bench_module(params), simulator, folder / f"build_{simulator}",
            {"CODESIGN_BENCH_CASES": str(cases_path.resolve()), "CODESIGN_BENCH_OUT": str(out_path.resolve())},
            seed=seed, icarus_generation=icarus_generation,
        )
        measured = json.loads(out_path.read_text()) if out_path.is_file() else None
        checks = (softmax_checks if params.unit == "softmax" else script_checks)(cases, measured)
        checks.append(Check(f"cocotb bench on {simulator}", tests >= 1 and failed == 0,
                            detail=f"{tests} test(s), {failed} failed"))
        if lint and verilator_available():
            checks.append(lint_check(design.verilog_path, params.top_name))
        return VerifyReport(params, simulator, seed, tuple(checks), time.monotonic() - started)
