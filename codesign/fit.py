"""``fit``: the cheapest generated design that reaches a frame rate on a board within an accuracy bound.

VAQF's idea (Sun et al., 2022), automated: search bit-widths (uniform, and binarized or low-bit with the
first and last layers kept at 8 bits), dataflow and array shape; a design is feasible when the resource
model says its core fits the board (``hdl.resources``), its simulated frame rate at the board's clock
reaches the target, and its accuracy proxy (SQNR against float32) is at least the bound. Cheapest: the
smallest share of the board's scarcest resource. Shapes are tried smallest first per bit-width and
dataflow, and the first that reaches the rate ends that line (a larger array only costs more). The lines
advance side by side, one shape each per wave of simulations on ``codesign.cluster`` (``jobs`` local workers
or a running Dask cluster at ``scheduler``), so the search simulates what a serial one would, whatever the
worker count.
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


def _search(pool, program, inputs, label, base, board, fps, min_sqnr_db, configs, policies, proxies, shapes,
            dataflows) -> list[Candidate]:
    """Every candidate the search meets, in (config, dataflow, shape) order. Each (config, dataflow) line walks
    its shapes smallest first and ends at the first that does not fit, misses the accuracy bound or reaches the
    rate; each wave simulates the next shape of every open line at once."""
    from codesign.capture import from_torch
    from codesign.sweep import _board_fit, design_at

    ordered = sorted(shapes, key=lambda s: s[0] * s[1])
    lines = [(b, ends, flow) for b, ends in configs for flow in dataflows]
    found: dict[tuple, list[Candidate]] = {line: [] for line in lines}
    position = dict.fromkeys(lines, 0)
    workloads: dict[tuple, Any] = {}
    active = list(lines)
    while active:
        wave = []  # (line, rows, cols, design, usage, cost, fmax): the next simulation of each open line
        for line in active:
            b, ends, flow = line
            sqnr = proxies[(b, ends)].sqnr_db
            while position[line] < len(ordered):
                rows, cols = ordered[position[line]]
                position[line] += 1
                sized = replace(base, name=f"{base.name}@{rows}x{cols}", rows=rows, cols=cols,
                                dataflows=tuple(dict.fromkeys((flow,) + tuple(base.dataflows))))
                design = design_at(sized, b)
                fits, usage, fmax, note = _board_fit(design, board, flow)
                cost = _cost(usage)
                if not fits:
                    why = note or "does not fit: " + ", ".join(
                        f"{q} {u['used']}/{u['available']}" for q, u in usage.items() if u["used"] > u["available"])
                    found[line].append(Candidate(b, ends, flow, rows, cols, None, sqnr, False, cost, usage, why))
                    position[line] = len(ordered)  # larger arrays of this line fit even less
                elif min_sqnr_db is not None and not sqnr >= min_sqnr_db:
                    found[line].append(Candidate(b, ends, flow, rows, cols, None, sqnr, True, cost, usage,
                                                 f"SQNR {sqnr:.1f} dB below {min_sqnr_db:g} dB"))
                    position[line] = len(ordered)
                else:
                    wave.append((line, rows, cols, design, usage, cost, fmax))
                    break
        if not wave:
            break
        for (b, ends, _), *_ in wave:
            if (b, ends) not in workloads:
                workloads[(b, ends)] = pool.share(from_torch(program, inputs, name=label, bits=policies[(b, ends)]))
        cycles = pool.map(_simulate_cycles, [(workloads[line[:2]], design, line[2])
                                             for line, _, _, design, _, _, _ in wave])
        active = []
        for (line, rows, cols, design, usage, cost, fmax), count in zip(wave, cycles):
            b, ends, flow = line
            clock = min(design.clock_mhz, fmax) if fmax else design.clock_mhz
            rate = clock * 1e6 / count if count else math.inf
            why = "" if rate >= fps else f"{rate:.1f} fps, below {fps:g}"
            found[line].append(Candidate(b, ends, flow, rows, cols, rate, proxies[(b, ends)].sqnr_db, True, cost,
                                         usage, why))
            if rate < fps and position[line] < len(ordered):
                active.append(line)
    return [candidate for line in lines for candidate in found[line]]


def _simulate_cycles(task: tuple) -> int:
    """Cycles of one (workload, design, dataflow) simulation, in a worker."""
    workload, design, flow = task
    from sim.engine import simulate

    return simulate(workload, design, flow).cycles


def fit_design(model: Any, example_inputs: Any, base: ArchSpec, board: str, fps: float, *,
               min_sqnr_db: float | None = None, name: str | None = None, shapes: Sequence[tuple[int, int]] = SHAPES,
               dataflows: Sequence[str] = ("ws", "os"), accuracy_inputs: Any = None,
               reestimate_bn: bool = False, jobs: int = 1, scheduler: str | None = None,
               scheduler_timeout_s: float | None = None) -> FitResult:
    """Search (bit-width, ends kept, dataflow, array shape) for the cheapest feasible design (module doc).

    ``base`` gives the buffer, DRAM, clock and energy table the design keeps. ``jobs`` / ``scheduler`` (with
    ``scheduler_timeout_s``, default 10 s) say where the accuracy proxy and the simulations run
    (``codesign.cluster``); the result does not depend on them. Raises FitError when nothing reaches ``fps``
    within ``min_sqnr_db`` on ``board`` (naming the best found and its limit), SpecError for a non-positive
    ``fps``, HdlError for an unknown board, ClusterError for bad ``jobs`` / ``scheduler``.
    """
    import torch

    from codesign.capture.precision import BitsPolicy
    from codesign.capture.quantized import export_quantized
    from codesign.cluster import DEFAULT_TIMEOUT_S, check_jobs, check_scheduler, one_torch_thread, open_pool
    from codesign.sweep import _with_ends, design_at, join_accuracy, point_bits, start_accuracy
    from hdl.resources import BOARDS

    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0 or math.isinf(fps):
        raise SpecError(f"--fps {fps!r}: the frame rate must be a number > 0")
    if board not in BOARDS:
        from codesign.errors import HdlError

        raise HdlError(f"unknown board {board!r}; choose one of {', '.join(BOARDS)}")
    check_jobs(jobs)
    check_scheduler(scheduler)
    inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    label = name or type(model).__name__
    configs = [(b, None) for b in UNIFORM] + [(b, 8) for b in KEPT_ENDS]
    preload = ("torch", "codesign.accuracy", "sim.engine", "codesign.fit")
    with open_pool(jobs, scheduler, timeout_s=scheduler_timeout_s or DEFAULT_TIMEOUT_S, preload=preload) as pool, \
            one_torch_thread():
        program = export_quantized(model, inputs)
        policies = {}
        for b, ends in configs:
            policy = BitsPolicy(default=point_bits(b))
            policies[(b, ends)] = _with_ends(policy, program, inputs, ends) if ends else policy
        started = start_accuracy(pool, model, inputs, [policies[c] for c in configs], inputs=accuracy_inputs,
                                 reestimate_bn=reestimate_bn)
        proxies = dict(zip(configs, join_accuracy(started)))
        candidates = _search(pool, program, inputs, label, base, board, fps, min_sqnr_db, configs, policies, proxies,
                             shapes, dataflows)
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
