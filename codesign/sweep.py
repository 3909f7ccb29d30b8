"""Bit-widths against simulated throughput: one model at several bit-widths, dataflows and array shapes.

Per point: inferences per second, latency, energy per inference, DRAM and GLB traffic, utilization and the
accuracy proxy (``codesign.accuracy``: SQNR and top-1 agreement of the fake-quantized model against
float32); with a board, whether the generated core fits it (``hdl.resources``). The Pareto front of
throughput, energy and accuracy is marked. The model is exported once; each bit-width re-walks the same
exported program; the simulations and the accuracy proxy run on ``codesign.cluster`` (``jobs`` local worker
processes, or a running Dask cluster at ``scheduler``), each workload shipped to the workers once, and the
result does not depend on how many workers or which scheduler.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Sequence

from codesign.arch import ArchSpec
from codesign.errors import BitWidthError, CodesignError
from codesign.workload import MAX_BITS, MIN_BITS, Bits

if TYPE_CHECKING:  # pragma: no cover
    from codesign.workload import Workload

__all__ = ["SweepPoint", "SweepResult", "parse_bit_points", "point_bits", "design_at", "sweep", "pareto_front",
           "start_accuracy", "join_accuracy"]

DEFAULT_POINTS = (16, 8, 4, 2, 1)
MAX_GENERATOR_BITS = 16  # the generated integer core's widest operand


def parse_bit_points(text: object) -> tuple[int, ...]:
    """``"16,8,4,2,1"`` (or a sequence) -> (16, 8, 4, 2, 1); each a whole number 1..16; BitWidthError otherwise."""
    items = str(text).split(",") if isinstance(text, str) else list(text)
    points: list[int] = []
    for item in items:
        word = str(item).strip()
        if not word:
            continue
        try:
            value = int(word)
        except ValueError:
            raise BitWidthError(f"--bits: {word!r} is not a bit-width (whole numbers 1..{MAX_GENERATOR_BITS}, "
                                "e.g. 16,8,4,2,1)") from None
        if not 1 <= value <= MAX_GENERATOR_BITS:
            raise BitWidthError(f"--bits: {value} is outside the 1..{MAX_GENERATOR_BITS} bits the generator builds")
        if value not in points:
            points.append(value)
    if not points:
        raise BitWidthError("--bits needs at least one bit-width, e.g. 16,8,4,2,1")
    return tuple(points)


def point_bits(bits: int, accumulator_bits: int = 32) -> Bits:
    """Weights and activations at ``bits``; the accumulator holds at least one product."""
    return Bits(weight=bits, activation=bits, accumulator=min(MAX_BITS, max(accumulator_bits, 2 * bits)))


@dataclass(frozen=True)
class SweepPoint:
    """One design point: bit-width, dataflow and array, with what it costs and how accurate it is."""

    bits: int
    dataflow: str
    rows: int
    cols: int
    cycles: int
    latency_ms: float
    inferences_per_s: float
    clock_mhz: float
    energy_per_inference: float
    energy_unit: str
    dram_bytes: int
    glb_bytes: int
    utilization: float
    sqnr_db: float | None = None
    top1_agreement: float | None = None
    top1_accuracy: float | None = None
    fits: bool | None = None
    resources: dict = field(default_factory=dict)  # resource -> {"used": n, "available": n}
    pareto: bool = False
    notes: tuple[str, ...] = ()

    @property
    def array(self) -> str:
        return f"{self.rows}x{self.cols}"

    def to_dict(self) -> dict:
        sqnr: Any = self.sqnr_db
        if sqnr is not None and math.isinf(sqnr):
            sqnr = "inf" if sqnr > 0 else "-inf"
        return {"bits": self.bits, "dataflow": self.dataflow, "array": self.array, "cycles": self.cycles,
                "latency_ms": self.latency_ms, "inferences_per_s": self.inferences_per_s, "clock_mhz": self.clock_mhz,
                "energy_per_inference": self.energy_per_inference, "energy_unit": self.energy_unit,
                "dram_bytes": self.dram_bytes, "glb_bytes": self.glb_bytes, "utilization": self.utilization,
                "sqnr_db": sqnr, "top1_agreement": self.top1_agreement, "top1_accuracy": self.top1_accuracy,
                "fits": self.fits, "resources": self.resources, "pareto": self.pareto, "notes": list(self.notes)}


@dataclass(frozen=True)
class SweepResult:
    model: str
    arch: str
    board: str | None
    points: tuple[SweepPoint, ...]
    notes: tuple[str, ...] = ()
    unmapped: Any = None  # codesign.workload.Unmapped: ops simulated without (with allow_unsupported), else None

    def to_dict(self) -> dict:
        return {"model": self.model, "arch": self.arch, "board": self.board,
                "points": [point.to_dict() for point in self.points], "notes": list(self.notes),
                **({"unmapped": self.unmapped.to_dict()} if self.unmapped is not None else {})}


def pareto_front(points: Sequence[SweepPoint]) -> set[int]:
    """Indices of the points no other point beats on throughput, energy and accuracy proxy (SQNR) at once."""
    def key(point: SweepPoint) -> tuple[float, float, float]:
        sqnr = point.sqnr_db if point.sqnr_db is not None else -math.inf
        return point.inferences_per_s, -point.energy_per_inference, sqnr

    keys = [key(point) for point in points]
    front = set()
    for i, a in enumerate(keys):
        dominated = any(all(bj >= aj for aj, bj in zip(a, b)) and any(bj > aj for aj, bj in zip(a, b))
                        for j, b in enumerate(keys) if j != i)
        if not dominated:
            front.add(i)
    return front


def _simulate_point(task: tuple) -> dict:
    """One (workload, arch, dataflow) simulation in a worker: the figures a SweepPoint needs."""
    workload, arch, dataflow, objective = task
    from sim.engine import simulate

    result = simulate(workload, arch, dataflow, objective=objective)
    glb_bits = sum(sum(layer.bits_moved["glb"].values()) for layer in result.layers)
    notes = sorted({note.split(":")[0] for layer in result.layers for note in layer.notes
                    if note.startswith(("width mismatch", "packed lanes"))})
    return {"cycles": result.cycles, "energy": result.energy_pj, "unit": result.energy_unit,
            "dram": result.dram_bytes, "glb": math.ceil(glb_bits / 8), "util": result.utilization, "notes": notes}


def _accuracy_chunk(task: tuple) -> list:
    """The accuracy proxy at a run of bit-width policies in a worker (``codesign.accuracy.accuracy_sweep``)."""
    (model, inputs), policies, options = task
    from codesign.accuracy import accuracy_sweep

    return accuracy_sweep(model, inputs, list(policies), **options)


def start_accuracy(pool, model: Any, example_inputs: tuple, policies: Sequence[Any], *, leave_free: int = 0,
                   **options: Any):
    """Start the accuracy proxy of ``model`` at every policy on ``pool``: one chunk of consecutive policies per
    worker, ``leave_free`` workers left to other tasks (each chunk calibrates once and runs the float32 reference;
    a point's figures do not depend on the chunk it runs in). Returns a ``codesign.cluster.Batch``;
    ``join_accuracy`` gives the results in policy order."""
    chunks = max(1, min(pool.workers - leave_free, len(policies)))
    size, extra = divmod(len(policies), chunks)
    shared, tasks, start = pool.share((model, example_inputs)), [], 0
    for i in range(chunks):
        stop = start + size + (1 if i < extra else 0)
        tasks.append((shared, tuple(policies[start:stop]), options))
        start = stop
    return pool.submit(_accuracy_chunk, tasks)


def join_accuracy(batch) -> list:
    """The results of ``start_accuracy``, one per policy, in order."""
    return [result for chunk in batch.results() for result in chunk]


def sweep(model: Any, example_inputs: Any, arch: ArchSpec, *, bits: Sequence[int] = DEFAULT_POINTS,
          layer_bits: dict | None = None, dataflows: Sequence[str] | None = None,
          arrays: Sequence[tuple[int, int]] = (), board: str | None = None, objective: str = "latency",
          jobs: int = 1, scheduler: str | None = None, scheduler_timeout_s: float | None = None,
          name: str | None = None, accuracy: bool = True, accuracy_inputs: Any = None, keep_ends: int | None = None,
          progress: Callable[[int, int], Callable[[int], None]] | None = None,
          reestimate_bn: bool = False, allow_unsupported: bool = False) -> SweepResult:
    """Simulate ``model`` at every bit-width of ``bits`` under each dataflow and array shape.

    Parameters:
        model, example_inputs: a torch module and its example inputs (exported once).
        arch: the accelerator; ``arrays`` adds other (rows, cols) shapes of it, everything else kept.
        bits: weight and activation bit-widths to sweep (1 = binarized); ``layer_bits``: layer name ->
            ``Bits`` overrides applied at every point; ``keep_ends``: first and last MAC layers at this width.
        dataflows: the ones to simulate (default: every one the accelerator lists).
        board: an FPGA board (``hdl.fpga``): each point says whether its core fits and at what Fmax the
            resource model expects it; throughput is then at the lower of that Fmax and the spec's clock.
        jobs: local worker processes (1: this process); scheduler: a running Dask cluster, 'tcp://HOST:PORT',
            instead, with ``scheduler_timeout_s`` (default 10) to answer (``codesign.cluster``).
        accuracy: compute the accuracy proxy (``accuracy_inputs``: a file or tensor).
        progress: ``progress(total, ...)`` returns a callback advanced once per finished simulation.
        reestimate_bn: re-estimate batch-norm statistics before the accuracy proxy (random-initialised models
            only, such as the zoo's, whose default statistics make activations vanish).
        allow_unsupported: simulate a model with ops that map to no layer (left out, named in every point's
            notes) instead of raising ``UnmappedOpsError`` (``codesign.unmapped``).

    Returns a ``SweepResult``: points in (bits, dataflow, array) order with the Pareto front marked.

    Raises ``BitWidthError`` / ``SpecError`` / ``MappingError`` / ``HdlError`` / ``AccuracyError`` for bad input,
    ``ClusterError`` for bad ``jobs`` / ``scheduler`` or a scheduler that does not answer.
    """
    from codesign.cluster import DEFAULT_TIMEOUT_S, check_jobs, check_scheduler, one_torch_thread, open_pool
    from codesign.unmapped import unmapped_line
    from dataflow import registry

    check_jobs(jobs)
    check_scheduler(scheduler)
    points = parse_bit_points(bits)
    flows = tuple(dataflows) if dataflows else tuple(name for name in registry.names() if arch.supports(name))
    for flow in flows:
        registry.for_arch(arch, flow)
    shapes = tuple(arrays) or ((arch.rows, arch.cols),)
    archs = [arch if (rows, cols) == (arch.rows, arch.cols) else
             replace(arch, name=f"{arch.name}@{rows}x{cols}", rows=rows, cols=cols) for rows, cols in shapes]
    designs = {(i, b): design_at(archs[i], b) for i in range(len(archs)) for b in points}
    fit = {}
    if board is not None:
        fit = {(index, b, flow): _board_fit(design, board, flow) for (index, b), design in designs.items()
               for flow in flows}
    inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    label = name or type(model).__name__
    preload = ("sim.engine", "codesign.sweep") + (("torch", "codesign.accuracy") if accuracy else ())
    with open_pool(jobs, scheduler, timeout_s=scheduler_timeout_s or DEFAULT_TIMEOUT_S, preload=preload) as pool, \
            one_torch_thread():
        figures, proxies, unmapped = _run_points(pool, model, inputs, label, points, layer_bits, keep_ends, flows,
                                                 archs, designs, objective, progress, accuracy, accuracy_inputs,
                                                 reestimate_bn, allow_unsupported)
    left_out = [unmapped_line(unmapped)] if unmapped is not None else []
    keys = [(b, flow, index) for b in points for flow in flows for index in range(len(archs))]
    out = []
    for (b, flow, index), fig in zip(keys, figures):
        variant = designs[(index, b)]
        clock = variant.clock_mhz
        fits, resources, notes = None, {}, list(fig["notes"])
        if board is not None:
            fits, resources, fmax, note = fit[(index, b, flow)]
            if fmax:
                clock = min(clock, fmax)
            if note:
                notes.append(note)
        latency_ms = fig["cycles"] / (clock * 1e3)
        proxy = proxies.get(b)
        out.append(SweepPoint(
            bits=b, dataflow=flow, rows=variant.rows, cols=variant.cols, cycles=fig["cycles"], latency_ms=latency_ms,
            inferences_per_s=(1e3 / latency_ms) if latency_ms else math.inf, clock_mhz=clock,
            energy_per_inference=fig["energy"], energy_unit=fig["unit"], dram_bytes=fig["dram"], glb_bytes=fig["glb"],
            utilization=fig["util"], sqnr_db=proxy.sqnr_db if proxy else None,
            top1_agreement=proxy.top1_agreement if proxy else None,
            top1_accuracy=proxy.top1_accuracy if proxy else None, fits=fits, resources=resources,
            notes=tuple(notes)))
    front = pareto_front(out)
    out = [replace(point, pareto=i in front) for i, point in enumerate(out)]
    return SweepResult(model=label, arch=arch.name, board=board, points=tuple(out), notes=tuple(left_out),
                       unmapped=unmapped)


def _run_points(pool, model, inputs, label, points, layer_bits, keep_ends, flows, archs, designs, objective,
                progress, accuracy, accuracy_inputs, reestimate_bn, allow_unsupported=False) -> tuple[list, dict, Any]:
    """Capture once per bit-width and simulate every (bits, dataflow, array) point on ``pool``, the accuracy proxy
    beside them; (figures in (bits, dataflow, array) order, bits -> accuracy result, what the simulation leaves
    out: ``Workload.unmapped()``). A model with unmapped ops is refused unless ``allow_unsupported``."""
    import torch

    from codesign.capture import from_torch
    from codesign.capture.precision import BitsPolicy
    from codesign.capture.quantized import export_quantized
    from codesign.unmapped import check_mapped

    model.eval()
    policies = {b: BitsPolicy(default=point_bits(b), by_name=dict(layer_bits or {})) for b in points}
    options = {"keep_ends": keep_ends, "inputs": accuracy_inputs, "reestimate_bn": reestimate_bn}
    started = None
    # The simulations fill one worker while the others run the proxy (``leave_free``): on two workers one chunk,
    # not two, which would calibrate and run the float32 reference twice (bench/README.cluster.md).
    if accuracy and not keep_ends:  # the workers start on it while this process exports and captures
        started = start_accuracy(pool, model, inputs, [policies[b] for b in points], leave_free=1, **options)
    program = export_quantized(model, inputs)
    if keep_ends:
        policies = {b: _with_ends(policy, program, inputs, keep_ends) for b, policy in policies.items()}
        if accuracy:
            started = start_accuracy(pool, model, inputs, [policies[b] for b in points], leave_free=1, **options)
    captured = {b: from_torch(program, inputs, name=label, bits=policies[b]) for b in points}
    unmapped = check_mapped(captured[points[0]], label, allow_unsupported)  # bit-widths do not change which ops map
    workloads = {b: pool.share(workload) for b, workload in captured.items()}
    tasks = [(workloads[b], designs[(index, b)], flow, objective)
             for b in points for flow in flows for index in range(len(archs))]
    advance = progress(len(tasks)) if progress else None
    figures = pool.map(_simulate_point, tasks, advance)
    proxies = dict(zip(points, join_accuracy(started))) if started is not None else {}
    return figures, proxies, unmapped


def design_at(arch: ArchSpec, bits: int) -> ArchSpec:
    """The accelerator built for ``bits``: integer PEs of that width (accumulators at least one product wide);
    at 1 bit a binary XNOR-popcount array of the same shape beside them (unless it has one), which the
    binarized layers run on while layers kept wider stay on the integer PEs."""
    from codesign.arch import BinaryArraySpec

    if bits == 1:
        if arch.binary_array is not None:
            return arch
        return replace(arch, name=f"{arch.name}+binary", binary_array=BinaryArraySpec(rows=arch.rows, cols=arch.cols))
    # Room for the longest reduction a generated core sums (its rows, or a streamed k of up to 1024).
    reduction = max(arch.rows, 1024).bit_length()
    pe = replace(arch.pe, weight_bits=bits, activation_bits=bits,
                 accumulator_bits=min(64, max(arch.pe.accumulator_bits, 2 * bits + reduction)))
    return replace(arch, pe=pe)


def _with_ends(policy, program, inputs, bits: int):
    """``policy`` with the first and last MAC layers at ``bits`` (as the binarization literature keeps them)."""
    from codesign.capture import from_torch

    probe = from_torch(program, inputs, bits=policy.default, measure_activations=False)
    macs = [layer.name for layer in probe.layers if layer.op.has_macs]
    if not macs:
        return policy
    ends = {macs[0]: point_bits(bits), macs[-1]: point_bits(bits)}
    return replace(policy, by_name={**ends, **dict(policy.by_name)})


def _board_fit(design: ArchSpec, board: str, dataflow: str | None = None) -> tuple[bool | None, dict, float | None, str]:
    """(fits, resources used/available, Fmax MHz or None, note) of the core ``design`` generates on ``board``:
    the integer core and, when the design has one, its binary array, both predicted by ``hdl.resources``, and the
    post-route clock of the slower of them (``hdl.fmax``: the calibration build of that design, else the model
    fitted on the builds). The integer core is the one ``codesign fpga`` builds: as many PEs on DSP blocks as the
    board has blocks for (``hdl.resources.board_dsp_pes``), the rest multiplying in logic."""
    from hdl import fmax as fmax_model
    from hdl import resources
    from hdl.params import binary_params_from_arch, core_params_from_arch

    flows = [d for d in ("ws", "os") if design.supports(d)]
    flow = dataflow if dataflow in flows else (flows[0] if flows else None)
    try:
        reports, clocks = [], []
        if flow:
            params = core_params_from_arch(design, flow)
            if params.multiplier == "dsp":
                params = replace(params, dsp_pes=resources.board_dsp_pes(params, board))
            reports.append(resources.fit_report(params, board))
            clocks.append(fmax_model.predict_fmax(params, board).mhz)
        if design.binary_array is not None:
            reports.append(resources.fit_report(design, board, array="binary"))
            clocks.append(fmax_model.predict_fmax(binary_params_from_arch(design), board).mhz)
    except CodesignError as exc:
        return None, {}, None, f"no resource estimate: {exc}"
    if not reports:
        return None, {}, None, "no generated core for this accelerator's dataflows"
    capacity = reports[0].board.capacity
    used = {q: sum(r.estimate.values.get(q, 0.0) for r in reports) for q in capacity}
    names = {"cells": "luts", "dsps": "dsps", "brams": "brams"}
    usage = {names.get(q, q): {"used": round(used[q]), "available": cap} for q, cap in capacity.items()}
    fits = all(used[q] <= cap for q, cap in capacity.items())
    return fits, usage, min(clocks) if clocks else None, ""
