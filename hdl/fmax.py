"""Post-route Fmax of generated cores per board: measured builds and the model fitted on them.

``codesign fpga`` reports the clock one build reaches; ``sweep`` and ``fit`` need it for designs not built. The
calibration builds cores of several shapes and widths to bitstream on each board (``hdl.fpga``, the same LFSR
harness and toolchain options as ``codesign fpga``) and records nextpnr's post-route Fmax and the ends of its
critical path. Per board and core kind (WS, OS, binarized) the model is the critical path's delay, linear in the
log of the PE count and in the operand width, fitted by non-negative least squares on the delays in ns:

    1000 / Fmax_MHz = a + b * log2(rows * cols) + c * max(weight_bits, activation_bits)

(binarized cores: the word width in place of the operand width). Larger arrays are slower: the backpressure
and lane-mask logic fans out across the array (the critical paths in bench/README.hdl.md). Held-out builds measure
the model's error; the data ships in ``hdl/resource_data/fmax.json``.

    .venv/bin/python -m hdl.fmax --calibrate [--jobs 1] [--refit]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from codesign.errors import HdlError

__all__ = ["DATA_FILE", "FmaxPrediction", "calibration_builds", "predict_fmax", "critical_path", "calibrate",
           "load_data", "main"]

DATA_FILE = Path(__file__).with_name("resource_data") / "fmax.json"
FEATURES = ("const", "log2_pes", "bits")


def calibration_builds() -> list[dict]:
    """Every calibration build: board, kind ('ws', 'os', 'binary'), shape, widths, role ('fit' or 'held-out')."""
    builds = []

    def add(board, kind, rows, cols, bits=8, role="fit"):
        builds.append({"board": board, "kind": kind, "rows": rows, "cols": cols, "bits": bits, "role": role})

    for kind in ("ws", "os"):
        for side in (2, 4, 8, 16):
            add("ulx3s", kind, side, side)
        add("ulx3s", kind, 4, 4, bits=16)
        add("ulx3s", kind, 4, 4, bits=4)
        add("ulx3s", kind, 12, 12, role="held-out")
        add("icebreaker", kind, 2, 2)
        add("icebreaker", kind, 4, 4)
        add("icebreaker", kind, 2, 2, bits=4)
        add("icebreaker", kind, 3, 3, role="held-out")
    for board, shapes in (("ulx3s", ((2, 2), (4, 4), (8, 8))), ("icebreaker", ((2, 2), (4, 4)))):
        for rows, cols in shapes:
            add(board, "binary", rows, cols, bits=32)
        add(board, "binary", 4, 4, bits=64) if board == "ulx3s" else add(board, "binary", 2, 2, bits=64)
    add("ulx3s", "binary", 6, 6, bits=32, role="held-out")
    return builds


def _name(build: dict) -> str:
    return f"{build['board']}_{build['kind']}_{build['rows']}x{build['cols']}_b{build['bits']}"


def _params(build: dict):
    from hdl.params import BinaryCoreParams, CoreParams
    from hdl.resources import board_dsp_pes

    if build["kind"] == "binary":
        return BinaryCoreParams(rows=build["rows"], cols=build["cols"], word_bits=build["bits"])
    params = CoreParams(dataflow=build["kind"], rows=build["rows"], cols=build["cols"],
                        weight_bits=build["bits"], activation_bits=build["bits"])
    return replace(params, dsp_pes=board_dsp_pes(params, build["board"]))


_PATH_HEADER = re.compile(r"Critical path report for clock '([^']+)'")
_PATH_END = re.compile(r"Info: [\d.]+ ns logic, [\d.]+ ns routing")
_SOURCE = re.compile(r"Info:\s+\S+\s+[\d.]+\s+[\d.]+\s+Source\s+(\S+)")
_SINK = re.compile(r"Info:\s+Sink\s+(\S+)")


def critical_path(log: str) -> dict:
    """The first source and last sink cell of the last clock critical path nextpnr reports (post-route)."""
    headers = list(_PATH_HEADER.finditer(log))
    if not headers:
        return {}
    section = log[headers[-1].end():]
    end = _PATH_END.search(section)
    section = section[:end.start()] if end else section
    sources, sinks = _SOURCE.findall(section), _SINK.findall(section)
    return {"from": sources[0] if sources else None, "to": sinks[-1] if sinks else None}


def _measure(build: dict) -> dict:
    from hdl.fpga import build_binary_core, build_gemm_core

    params = _params(build)
    with tempfile.TemporaryDirectory(prefix="codesign-fmax-") as folder:
        if build["kind"] == "binary":
            result = build_binary_core(build["board"], folder, params)
        else:
            options = {"synth_opts": "-dsp"} if build["board"] == "icebreaker" else {}
            result = build_gemm_core(build["board"], folder, params, **options)
        log = (Path(folder) / "top.tim").read_text(errors="replace")
    return {**build, "design": _name(build), "fmax_mhz": result.fmax_mhz, "logic_cells": result.logic_cells,
            "dsp": result.dsp, "seconds": round(result.seconds, 1), "critical_path": critical_path(log)}


def _features(kind: str, rows: int, cols: int, bits: int) -> np.ndarray:
    return np.array([1.0, math.log2(max(1, rows * cols)), float(bits)])


def _fit(points: list[dict]) -> dict:
    from hdl.resources import nnls

    models = {}
    groups = sorted({(p["board"], p["kind"]) for p in points if p["role"] == "fit"})
    for board, kind in groups:
        rows = [p for p in points if p["role"] == "fit" and p["board"] == board and p["kind"] == kind]
        a = np.array([_features(kind, p["rows"], p["cols"], p["bits"]) for p in rows])
        b = np.array([1000.0 / p["fmax_mhz"] for p in rows])
        coefficients = nnls(a, b)
        models[f"{board}/{kind}"] = dict(zip(FEATURES, (float(c) for c in coefficients)))
    return models


def _model_fmax(models: dict, board: str, kind: str, rows: int, cols: int, bits: int) -> float | None:
    coefficients = models.get(f"{board}/{kind}")
    if coefficients is None:
        return None
    ns = float(np.dot([coefficients[f] for f in FEATURES], _features(kind, rows, cols, bits)))
    return 1000.0 / ns if ns > 0 else None


def _errors(points: list[dict], models: dict) -> list[dict]:
    rows = []
    for p in points:
        predicted = _model_fmax(models, p["board"], p["kind"], p["rows"], p["cols"], p["bits"])
        if predicted is not None:
            rows.append({"design": p["design"], "role": p["role"], "measured_mhz": p["fmax_mhz"],
                         "predicted_mhz": round(predicted, 1),
                         "error": round(predicted / p["fmax_mhz"] - 1.0, 4)})
    return rows


@lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> dict:
    return json.loads(Path(path).read_text())


def load_data(path: str | os.PathLike | None = None) -> dict:
    """The shipped (or given) calibration: points, models, errors. Raises HdlError when it is missing."""
    file = Path(path) if path else DATA_FILE
    if not file.is_file():
        raise HdlError(f"no Fmax calibration at {file}; run: .venv/bin/python -m hdl.fmax --calibrate")
    return _load(str(file), file.stat().st_mtime)


@dataclass(frozen=True)
class FmaxPrediction:
    """The predicted post-route clock of a core on a board, and where it comes from."""

    board: str
    kind: str
    mhz: float
    source: str  # 'measured' (a calibration build of this very design) or 'model'


def predict_fmax(params, board: str, data: dict | None = None) -> FmaxPrediction:
    """Post-route Fmax of the core ``params`` (CoreParams or BinaryCoreParams) on ``board``: a calibration build
    of the same design when there is one, else the fitted model. Raises HdlError for a board or kind without data."""
    from hdl.params import BinaryCoreParams

    data = data or load_data()
    if isinstance(params, BinaryCoreParams):
        kind, bits = "binary", params.word_bits
    else:
        kind, bits = params.dataflow, max(params.weight_bits, params.activation_bits)
    for p in data["points"]:
        if (p["board"], p["kind"], p["rows"], p["cols"], p["bits"]) == (board, kind, params.rows, params.cols, bits):
            return FmaxPrediction(board, kind, float(p["fmax_mhz"]), "measured")
    mhz = _model_fmax(data["models"], board, kind, params.rows, params.cols, bits)
    if mhz is None:
        raise HdlError(f"no Fmax model for {kind} cores on {board} (hdl/resource_data/fmax.json)")
    return FmaxPrediction(board, kind, round(mhz, 1), "model")


def calibrate(*, jobs: int = 1, refit: bool = False, data_file: str | os.PathLike | None = None,
              log=lambda line: None) -> dict:
    """Build every calibration design (or, with ``refit``, reuse the stored points), fit, write the data file."""
    file = Path(data_file) if data_file else DATA_FILE
    started = time.monotonic()
    if refit:
        points = load_data(file)["points"]
    else:
        builds = calibration_builds()
        points = []
        with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
            for point in pool.map(_measure, builds):
                log(f"{point['design']}: {point['fmax_mhz']:.1f} MHz ({point['seconds']:.0f} s)")
                points.append(point)
    models = _fit(points)
    data = {"version": 1, "formula": "1000/Fmax_MHz = const + log2_pes*log2(rows*cols) + bits*max(widths)",
            "command": ".venv/bin/python -m hdl.fmax --calibrate", "points": points, "models": models,
            "errors": _errors(points, models)}
    if not refit:
        data["wall_seconds"] = round(time.monotonic() - started)
    else:
        data["wall_seconds"] = load_data(file).get("wall_seconds")
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(file)
    return data


def summary_markdown(data: dict) -> str:
    """The measured and predicted Fmax of every calibration build, as a markdown table."""
    errors = {e["design"]: e for e in data["errors"]}
    lines = ["| board | kind | array | bits | role | measured MHz | model MHz | error | critical path |",
             "|---|---|---|---:|---|---:|---:|---:|---|"]
    for p in data["points"]:
        e = errors.get(p["design"], {})
        path = p.get("critical_path") or {}
        ends = f"`{path.get('from')}` -> `{path.get('to')}`" if path.get("from") else ""
        lines.append(f"| {p['board']} | {p['kind']} | {p['rows']}x{p['cols']} | {p['bits']} | {p['role']} | "
                     f"{p['fmax_mhz']:.1f} | {e.get('predicted_mhz', '')} | {e.get('error', 0) * 100:+.1f}% | {ends} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Calibrate the post-route Fmax model (hdl/resource_data/fmax.json)")
    parser.add_argument("--calibrate", action="store_true", help="build every calibration design and fit")
    parser.add_argument("--refit", action="store_true", help="fit again on the stored points (no builds)")
    parser.add_argument("--jobs", type=int, default=1, help="builds at a time (default 1)")
    parser.add_argument("--data-file", default=None, help=f"output file (default {DATA_FILE})")
    args = parser.parse_args(argv)
    if not (args.calibrate or args.refit):
        print(summary_markdown(load_data(args.data_file)))
        return 0
    data = calibrate(jobs=args.jobs, refit=args.refit, data_file=args.data_file,
                     log=lambda line: print(line, file=sys.stderr, flush=True))
    print(summary_markdown(data))
    print(f"(wall time {data.get('wall_seconds')} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
