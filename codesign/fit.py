"""``fit``: the cheapest generated design that reaches a frame rate on a board within an accuracy bound.

VAQF's idea (Sun et al., 2022), automated: search bit-widths (uniform, and binarized or low-bit with the
first and last layers kept at 8 bits), dataflow and array shape; a design is feasible when the resource
model says its core fits the board (``hdl.resources``), its simulated frame rate at the board's clock
reaches the target, and its accuracy proxy (SQNR against float32) is at least the bound. Cheapest: the
smallest share of the board's scarcest resource. Shapes are tried smallest first per bit-width and
dataflow, and the first that reaches the rate ends that line (a larger array only costs more).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Sequence

from codesign.arch import ArchSpec
from codesign.errors import CodesignError, SpecError

__all__ = ["FitError", "Candidate", "FitResult", "SHAPES", "fit_design"]

SHAPES = ((2, 2), (2, 4), (4, 4), (4, 8), (8, 8), (8, 12), (12, 12), (12, 16), (16, 16), (16, 24), (24, 24),
          (32, 32))
UNIFORM = (16, 8, 4, 2)
KEPT_ENDS = (4, 2, 1)  # with the first and last MAC layers at 8 bits


class FitError(CodesignError):
    """No design reaches the target: the message gives the best one found and what limits it."""


@dataclass(frozen=True)
class Candidate:
    bits: int
    keep_ends: int | None
    dataflow: str
    rows: int
    cols: int
    fps: float | None
    sqnr_db: float | None
    fits: bool
    cost: float  # share of the board's scarcest resource
    resources: dict
    why: str  # what stops it, or "" when feasible

    @property
    def label(self) -> str:
        ends = f" (ends at {self.keep_ends})" if self.keep_ends else ""
        return f"{self.bits}-bit{ends} {self.dataflow.upper()} {self.rows}x{self.cols}"

    def to_dict(self) -> dict:
        sqnr = self.sqnr_db
        if sqnr is not None and math.isinf(sqnr):
            sqnr = "inf"
        return {"bits": self.bits, "keep_ends": self.keep_ends, "dataflow": self.dataflow,
                "array": f"{self.rows}x{self.cols}", "fps": self.fps, "sqnr_db": sqnr, "fits": self.fits,
                "cost": self.cost, "resources": self.resources, "why": self.why}


@dataclass(frozen=True)
class FitResult:
    model: str
    board: str
    fps: float
    min_sqnr_db: float | None
    chosen: Candidate
    design: ArchSpec
    runners_up: tuple[Candidate, ...]

    def to_dict(self) -> dict:
        from codesign.arch_loader import arch_to_dict

        return {"model": self.model, "board": self.board, "fps": self.fps, "min_sqnr_db": self.min_sqnr_db,
                "chosen": self.chosen.to_dict(), "design": arch_to_dict(self.design),
                "runners_up": [c.to_dict() for c in self.runners_up]}


def _cost(usage: dict) -> float:
    return max((item["used"] / item["available"] for item in usage.values() if item.get("available")), default=0.0)


def fit_design(model: Any, example_inputs: Any, base: ArchSpec, board: str, fps: float, *,
               min_sqnr_db: float | None = None, name: str | None = None, shapes: Sequence[tuple[int, int]] = SHAPES,
               dataflows: Sequence[str] = ("ws", "os"), accuracy_inputs: Any = None,
               reestimate_bn: bool = False) -> FitResult:
    """Search (bit-width, ends kept, dataflow, array shape) for the cheapest feasible design (module doc).

    ``base`` gives the buffer, DRAM, clock and energy table the design keeps. Raises FitError when nothing
    reaches ``fps`` within ``min_sqnr_db`` on ``board`` (naming the best found and its limit), SpecError for a
    non-positive ``fps``, HdlError for an unknown board.
    """
    import torch

    from codesign.accuracy import accuracy_sweep
    from codesign.capture import from_torch
    from codesign.capture.precision import BitsPolicy
    from codesign.sweep import BOARD_FMAX_MHZ, _board_fit, _with_ends, design_at, point_bits
    from hdl.resources import BOARDS
    from sim.engine import simulate

    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0 or math.isinf(fps):
        raise SpecError(f"--fps {fps!r}: the frame rate must be a number > 0")
    if board not in BOARDS:
        from codesign.errors import HdlError

        raise HdlError(f"unknown board {board!r}; choose one of {', '.join(BOARDS)}")
    inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    program = torch.export.export(model.eval(), inputs)
    label = name or type(model).__name__
    configs = [(b, None) for b in UNIFORM] + [(b, 8) for b in KEPT_ENDS]
    policies = {}
    for b, ends in configs:
        policy = BitsPolicy(default=point_bits(b))
        policies[(b, ends)] = _with_ends(policy, program, inputs, ends) if ends else policy
    proxies = dict(zip(configs, accuracy_sweep(model, inputs, [policies[c] for c in configs], inputs=accuracy_inputs,
                                               reestimate_bn=reestimate_bn)))
    clock_cap = BOARD_FMAX_MHZ.get(board)
    candidates: list[Candidate] = []
    for b, ends in configs:
        sqnr = proxies[(b, ends)].sqnr_db
        accurate = min_sqnr_db is None or sqnr >= min_sqnr_db
        workload = None
        for flow in dataflows:
            for rows, cols in sorted(shapes, key=lambda s: s[0] * s[1]):
                sized = replace(base, name=f"{base.name}@{rows}x{cols}", rows=rows, cols=cols,
                                dataflows=tuple(dict.fromkeys((flow,) + tuple(base.dataflows))))
                design = design_at(sized, b)
                fits, usage, _, note = _board_fit(design, board, flow)
                cost = _cost(usage)
                if not fits:
                    why = note or "does not fit: " + ", ".join(
                        f"{q} {u['used']}/{u['available']}" for q, u in usage.items() if u["used"] > u["available"])
                    candidates.append(Candidate(b, ends, flow, rows, cols, None, sqnr, False, cost, usage, why))
                    break  # larger arrays of this line fit even less
                if not accurate:
                    candidates.append(Candidate(b, ends, flow, rows, cols, None, sqnr, True, cost, usage,
                                                f"SQNR {sqnr:.1f} dB below {min_sqnr_db:g} dB"))
                    break
                workload = workload or from_torch(program, inputs, name=label, bits=policies[(b, ends)])
                result = simulate(workload, design, flow)
                clock = min(design.clock_mhz, clock_cap) if clock_cap else design.clock_mhz
                rate = clock * 1e6 / result.cycles if result.cycles else math.inf
                why = "" if rate >= fps else f"{rate:.1f} fps, below {fps:g}"
                candidates.append(Candidate(b, ends, flow, rows, cols, rate, sqnr, True, cost, usage, why))
                if rate >= fps:
                    break
    feasible = sorted((c for c in candidates if not c.why), key=lambda c: (c.cost, -(c.fps or 0), -c.bits))
    if not feasible:
        scored = [c for c in candidates if c.fps is not None]
        best = max(scored, key=lambda c: c.fps) if scored else None
        if best is None:
            raise FitError(f"no design fits {board} within the accuracy bound: "
                           + "; ".join(f"{c.label}: {c.why}" for c in candidates[:3]))
        raise FitError(f"no design reaches {fps:g} fps on {board}: the fastest that fits is {best.label} at "
                       f"{best.fps:.1f} fps (SQNR {best.sqnr_db:.1f} dB), limited by {best.why or 'its array size'}; "
                       "the next larger array does not fit")
    chosen = feasible[0]
    sized = replace(base, name=f"{label}-{board}-{chosen.bits}b-{chosen.dataflow}-{chosen.rows}x{chosen.cols}",
                    rows=chosen.rows, cols=chosen.cols, dataflows=(chosen.dataflow,),
                    description=f"chosen by codesign fit for {label} at {fps:g} fps on {board}")
    design = design_at(sized, chosen.bits)
    others = [c for c in candidates if c is not chosen]
    others.sort(key=lambda c: (bool(c.why), c.cost))
    return FitResult(label, board, float(fps), min_sqnr_db, chosen, design, tuple(others[:5]))
