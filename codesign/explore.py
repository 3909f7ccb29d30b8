"""Explore dataflow choices for a pruned model: ``codesign.explore(model, arch, prune=..., arrays=..., dataflows=...)``.

The model is loaded once; each pruning SPEC (``codesign.prune``) runs on a deep copy, side by side with the
model as loaded ("dense", or "as given" when it arrives pruned). Every variant is captured with the same
bits policy and simulated under every dataflow on every array shape, all on the same PEs, register files,
buffer, DRAM and energy table: an array shape replaces only ``rows`` and ``cols``; a dataflow the spec does not
list runs on a variant of it that lists it, with the on-chip network it needs (row stationary: multicast
buses; weight and output stationary: systolic links), and the result says so.

The result is a frozen ``ExploreResult``: per variant, array and dataflow the totals, the winner per variant by
the objective, what the zeros saved against the baseline, and per layer which dataflow wins and why
(``LayerFinding.reason``, from the per-layer cycles, stalls, utilization, reuse, DRAM bytes and energy).
``ExploreResult.to_dict()`` is the JSON ``codesign explore --json`` writes.
"""

from __future__ import annotations

import contextlib
import math
import re
import sys
import types
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from codesign.arch import ArchSpec, Dataflow, NocKind, dataflow_name
from codesign.cluster import one_torch_thread as _one_torch_thread
from codesign.errors import MappingError, ModelLoadError, SpecError
from codesign.prune import PruneReport, PruneSpec, is_pruned, parse_specs, pruned_copy

if TYPE_CHECKING:  # pragma: no cover
    from codesign.workload import Layer, Workload
    from sim.results import LayerResult, SimResult

__all__ = [
    "BUILTIN_DATAFLOWS", "NOC_NEEDED", "ModelVariant", "ArchVariant", "ExploreRun", "LayerFinding", "Skipped",
    "ExploreResult", "explore", "parse_arrays", "parse_dataflows", "derive_arch", "rs_room", "explain",
    "metric_value", "METRIC_WORDS", "ZERO_SAVINGS_KEYS",
]

BUILTIN_DATAFLOWS = tuple(d.value for d in Dataflow)  # what runs when no --dataflows is given
NOC_NEEDED = {"ws": NocKind.SYSTOLIC, "os": NocKind.SYSTOLIC, "rs": NocKind.MULTICAST}
METRIC_WORDS = {"latency": "fewer cycles", "energy": "less energy", "edp": "lower EDP"}
ZERO_SAVINGS_KEYS = ("skipped_cycles", "gated_energy_pj", "compressed_dram_bytes")
MAX_ARRAY_SIDE = 4096  # the schema's limit on rows and cols


def _frozen(mapping: Mapping) -> Mapping:
    return MappingProxyType(dict(mapping))


# --------------------------------------------------------------------------------------------- parsing


def parse_arrays(value: object) -> tuple[tuple[int, int], ...]:
    """``"8x8,16x16"`` (or a sequence of such strings or (rows, cols) pairs) -> ((8, 8), (16, 16)); every side
    1..4096; anything else is a SpecError."""
    if value is None:
        return ()
    items: list[object] = []
    for item in ([value] if isinstance(value, str) else list(value)):
        if isinstance(item, str):
            items.extend(part for part in item.split(",") if part.strip())
        else:
            items.append(item)
    shapes: list[tuple[int, int]] = []
    for item in items:
        if isinstance(item, str):
            text = item.strip()
            match = re.fullmatch(r"(\d+)\s*[xX]\s*(\d+)", text)
            if not match:
                raise SpecError(f"--arrays: {text!r} is not an array shape ROWSxCOLS, e.g. 8x8 or 12x14")
            rows, cols = int(match.group(1)), int(match.group(2))
        else:
            try:
                rows, cols = (int(v) for v in item)  # type: ignore[union-attr]
            except (TypeError, ValueError):
                raise SpecError(f"--arrays: {item!r} is not an array shape (rows, cols)") from None
            text = f"{rows}x{cols}"
        if not (1 <= rows <= MAX_ARRAY_SIDE and 1 <= cols <= MAX_ARRAY_SIDE):
            raise SpecError(f"--arrays: {text!r}: rows and columns must be whole numbers 1..{MAX_ARRAY_SIDE}")
        if (rows, cols) not in shapes:
            shapes.append((rows, cols))
    return tuple(shapes)


def parse_dataflows(value: object) -> tuple[str, ...] | None:
    """``"ws,os,rs"`` (or a sequence) -> ('ws', 'os', 'rs'), each a registered dataflow (MappingError naming the
    choices otherwise); None or 'all' -> None (the built-ins, none of them required)."""
    from dataflow import registry

    if value is None:
        return None
    items: list[str] = []
    for item in ([value] if isinstance(value, str) else list(value)):
        name = dataflow_name(item)
        items.extend(part.strip().lower() for part in str(name).split(",") if part.strip())
    if not items:
        raise MappingError(f"--dataflows names no dataflow; choose from {', '.join(registry.names())}")
    if items == ["all"]:
        return None
    flows: list[str] = []
    for item in items:
        name = registry.get(item).name  # an unknown dataflow is one line naming the registered ones
        if name not in flows:
            flows.append(name)
    return tuple(flows)


# --------------------------------------------------------------------------------------------- accelerators


@dataclass(frozen=True)
class ArchVariant:
    """The accelerator one dataflow ran on at one array shape, and how it differs from the given spec."""

    arch: ArchSpec = field(repr=False)
    dataflow: str
    array: str  # "12x14"
    derived_from: str  # the given spec's name
    changes: tuple[str, ...] = ()  # "rows 12 -> 8", "noc multicast -> systolic", "rs added to the dataflows"

    @property
    def derived(self) -> bool:
        return bool(self.changes)

    def to_dict(self) -> dict:
        return {"name": self.arch.name, "dataflow": self.dataflow, "array": self.array, "rows": self.arch.rows,
                "cols": self.arch.cols, "noc": self.arch.noc.value,
                "dataflows": [dataflow_name(d) for d in self.arch.dataflows], "derived_from": self.derived_from,
                "changes": list(self.changes)}


def derive_arch(base: ArchSpec, dataflow: str, shape: tuple[int, int] | None = None) -> tuple[ArchVariant, str]:
    """The spec ``dataflow`` runs on at ``shape``: ``base`` with other rows/cols, and, when ``base`` does not list
    the dataflow, with it listed and the on-chip network it needs. Returns the variant and a note on the dataflow
    ('' when it runs on ``base`` as given, apart from the shape)."""
    rows, cols = shape or (base.rows, base.cols)
    arch, changes, note = base, [], ""
    name = base.name
    if (rows, cols) != (base.rows, base.cols):
        name = f"{base.name}@{rows}x{cols}"
        arch = replace(arch, rows=rows, cols=cols)
        changes.append(f"array {base.rows}x{base.cols} -> {rows}x{cols}")
    if not base.supports(dataflow):
        member = Dataflow(dataflow) if dataflow in BUILTIN_DATAFLOWS else dataflow
        kwargs: dict[str, Any] = {"dataflows": tuple(base.dataflows) + (member,)}
        need = NOC_NEEDED.get(dataflow)
        if need is not None and need is not base.noc:
            kwargs["noc"] = need
            changes.append(f"noc {base.noc.value} -> {need.value}")
            note = f"{dataflow}: derived from {base.name} with a {need.value} NoC"
        else:
            note = f"{dataflow}: derived from {base.name}, which does not list it (same NoC)"
        changes.append(f"{dataflow} added to the dataflows")
        name = f"{name}+{dataflow}"
        arch = replace(arch, **kwargs)
    if changes:
        arch = replace(arch, name=name)
    return ArchVariant(arch, dataflow, f"{rows}x{cols}", base.name, tuple(changes)), note


def _filter_width(workload: "Workload") -> tuple[int, str]:
    """The widest filter row S of the workload's array layers, and a layer that has it."""
    from codesign.workload import ConvDims

    best, where = 1, ""
    for layer in workload.layers:
        dims = layer.effective_dims or layer.dims
        if layer.op.has_macs and isinstance(dims, ConvDims) and dims.s > best:
            best, where = dims.s, layer.name
    return best, where


def rs_room(arch: ArchSpec, workload: "Workload", label: str | None = None) -> str | None:
    """Why row stationary cannot run on ``arch`` (its PEs cannot hold a filter row of the widest layer), or None.

    ``label`` names the accelerator in the message (default ``arch.name``)."""
    s, _ = _filter_width(workload)
    pe, label = arch.pe, label or arch.name
    for words, what in ((pe.weight_rf_words, "weight"), (pe.activation_rf_words, "input activation")):
        if words < s:
            return (f"the PEs of {label} hold {words} {what}{'' if words == 1 else 's'}; row stationary needs a "
                    f"filter row of S={s} in each PE's register file")
    return None


# --------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ModelVariant:
    """The model as loaded ("dense" / "as given") or pruned by one SPEC, captured."""

    name: str
    spec: PruneSpec | None
    pruning: PruneReport | None
    workload: "Workload" = field(repr=False, compare=False)
    macs: int = 0  # dense MACs of the array layers
    effective_macs: int = 0  # MACs on nonzero weights after structured and unstructured pruning
    params: int = 0  # conv / linear / matmul weights
    weight_density: float = 1.0  # nonzero share of those weights

    def to_dict(self) -> dict:
        return {"name": self.name, "spec": self.spec.text if self.spec else None,
                "pruning": self.pruning.to_dict() if self.pruning else None, "macs": self.macs,
                "effective_macs": self.effective_macs, "params": self.params, "weight_density": self.weight_density}


def _variant_of(name: str, spec: PruneSpec | None, report: PruneReport | None, workload: "Workload") -> ModelVariant:
    layers = [layer for layer in workload.layers if layer.op.has_macs]
    params = sum(layer.params for layer in layers)
    nonzero = sum(layer.params * layer.weight_density for layer in layers)
    return ModelVariant(name=name, spec=spec, pruning=report, workload=workload,
                        macs=sum(layer.macs for layer in layers),
                        effective_macs=sum(layer.macs_after_pruning for layer in layers), params=params,
                        weight_density=(nonzero / params) if params else 1.0)


def metric_value(objective: str, cycles: float, energy: float) -> tuple[float, float]:
    """What the objective minimizes, then its tie-break: latency (cycles, energy), energy (energy, cycles),
    edp (cycles x energy, cycles)."""
    if objective == "latency":
        return (cycles, energy)
    if objective == "energy":
        return (energy, cycles)
    return (cycles * energy, cycles)


def _zero_savings(result: "SimResult") -> dict[str, float]:
    """The simulator's per-layer ``zero_savings`` summed over the network ({} when it reports none)."""
    totals: dict[str, float] = {}
    for layer in result.layers:
        for key, value in dict(getattr(layer, "zero_savings", None) or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                totals[key] = totals.get(key, 0) + value
    return totals


def _layer_record(layer: "LayerResult") -> dict:
    record = {key: getattr(layer, key) for key in (
        "name", "op", "unit", "macs", "effective_macs", "cycles", "compute_cycles", "stall_cycles",
        "dram_stall_cycles", "glb_stall_cycles", "utilization", "spatial_utilization", "total_energy_pj",
        "dram_bytes", "compulsory_dram_bytes", "fused_into")}
    savings = getattr(layer, "zero_savings", None)
    if savings:
        record["zero_savings"] = dict(savings)
    return record


@dataclass(frozen=True)
class ExploreRun:
    """One model variant on one array shape under one dataflow."""

    variant: str
    array: str
    dataflow: str
    arch: str  # name of the spec it ran on (derived variants: 'fpga-8x8+rs', 'fpga-12x14@16x16')
    result: "SimResult" = field(repr=False, compare=False)
    weight_density: float = 1.0
    effective_macs: int = 0
    winner: bool = False  # the best of its variant by the objective
    zero_savings: Mapping = field(default_factory=dict)  # the simulator's per-layer zero_savings, summed
    vs_baseline: Mapping | None = None  # saved against the baseline on the same array and dataflow

    @property
    def cycles(self) -> int:
        return self.result.cycles

    @property
    def latency_ms(self) -> float:
        return self.result.latency_ms

    @property
    def energy_pj(self) -> float:
        return self.result.energy_pj

    @property
    def edp(self) -> float:
        return self.result.cycles * self.result.energy_pj

    @property
    def dram_bytes(self) -> int:
        return self.result.dram_bytes

    @property
    def utilization(self) -> float:
        return self.result.utilization

    def metric(self, objective: str) -> tuple[float, float]:
        return metric_value(objective, self.cycles, self.energy_pj)

    def to_dict(self, layers: bool = True) -> dict:
        data = {
            "variant": self.variant, "array": self.array, "dataflow": self.dataflow, "arch": self.arch,
            "winner": self.winner,
            "totals": {**self.result.totals, "edp": self.edp, "weight_density": self.weight_density,
                       "effective_macs": self.effective_macs},
            "zero_savings": dict(self.zero_savings),
            "vs_baseline": dict(self.vs_baseline) if self.vs_baseline is not None else None,
        }
        if layers:
            data["layers"] = [_layer_record(layer) for layer in self.result.layers]
        return data


@dataclass(frozen=True)
class LayerFinding:
    """Which dataflow wins one layer of one variant on one array, by how much, and why."""

    variant: str
    array: str
    layer: str
    op: str
    winner: str
    runner_up: str | None
    ratio: float  # runner-up's objective value / the winner's (>= 1)
    reason: str
    cycles: Mapping  # dataflow -> the layer's cycles
    energy_pj: Mapping  # dataflow -> the layer's energy
    objective: str = "latency"
    others: tuple = ()  # (dataflow, ratio, reason) of every dataflow behind the runner-up, best first

    @property
    def longest_cycles(self) -> int:
        return max(self.cycles.values()) if self.cycles else 0

    def line(self) -> str:
        """'conv3: OS wins (1.9x fewer cycles than WS): WS fills 28% of the PEs (...)'."""
        if self.runner_up is None:
            return f"{self.layer}: {self.winner.upper()} (the only dataflow run)"
        if self.ratio <= 1.0 + 1e-9:
            return f"{self.layer}: {self.winner.upper()} and {self.runner_up.upper()} tie ({self.reason})"
        if self.ratio < 1.05:
            text = (f"{self.layer}: {self.winner.upper()} wins narrowly (within {math.ceil((self.ratio - 1) * 100)}% "
                    f"of {self.runner_up.upper()}): {self.reason}")
        else:
            text = (f"{self.layer}: {self.winner.upper()} wins ({_ratio(self.ratio)} {METRIC_WORDS[self.objective]} "
                    f"than {self.runner_up.upper()}): {self.reason}")
        for flow, ratio, reason in self.others:
            if ratio >= 1.1:
                text += f"; {flow.upper()} {_OTHER_WORDS[self.objective]} {_ratio(ratio)}: {reason}"
        return text

    def to_dict(self) -> dict:
        return {"variant": self.variant, "array": self.array, "layer": self.layer, "op": self.op,
                "winner": self.winner, "runner_up": self.runner_up,
                "ratio": self.ratio if math.isfinite(self.ratio) else None, "reason": self.reason,
                "cycles": dict(self.cycles), "energy_pj": dict(self.energy_pj),
                "others": [{"dataflow": flow, "ratio": ratio if math.isfinite(ratio) else None, "reason": reason}
                           for flow, ratio, reason in self.others]}


_OTHER_WORDS = {"latency": "takes", "energy": "spends", "edp": "has the EDP x"}


@dataclass(frozen=True)
class Skipped:
    """A dataflow (on an array shape, for a variant or all of them) that did not run, and why."""

    dataflow: str
    array: str
    reason: str
    variant: str | None = None  # None: for every variant

    def line(self) -> str:
        where = f" on {self.array}" if self.array else ""
        who = f" for {self.variant}" if self.variant else ""
        return f"{self.dataflow}: not run{where}{who}: {self.reason}"

    def to_dict(self) -> dict:
        return {"dataflow": self.dataflow, "array": self.array, "variant": self.variant, "reason": self.reason}


@dataclass(frozen=True)
class ExploreResult:
    """Everything an exploration produced; ``to_dict()`` is its JSON."""

    model: str
    arch: str
    objective: str
    baseline: str  # "dense", or "as given" for a model that arrives pruned
    energy_unit: str
    variants: tuple[ModelVariant, ...]
    archs: tuple[ArchVariant, ...]
    runs: tuple[ExploreRun, ...]
    findings: tuple[LayerFinding, ...]
    skipped: tuple[Skipped, ...] = ()
    notes: tuple[str, ...] = ()
    options: Mapping = field(default_factory=dict)
    unmapped: Any = None  # codesign.workload.Unmapped: ops simulated without (with allow_unsupported), else None

    @property
    def arrays(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(run.array for run in self.runs))

    @property
    def dataflows(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(run.dataflow for run in self.runs))

    def runs_of(self, variant: str) -> tuple[ExploreRun, ...]:
        return tuple(run for run in self.runs if run.variant == variant)

    def run(self, variant: str, dataflow: str, array: str | None = None) -> ExploreRun | None:
        array = array or (self.arrays[0] if self.arrays else None)
        for item in self.runs:
            if (item.variant, item.dataflow, item.array) == (variant, dataflow, array):
                return item
        return None

    def winner(self, variant: str) -> ExploreRun | None:
        """The best run of ``variant`` by the objective."""
        return next((run for run in self.runs if run.variant == variant and run.winner), None)

    @property
    def winners(self) -> Mapping:
        """variant -> its best run."""
        return _frozen({v.name: self.winner(v.name) for v in self.variants if self.winner(v.name) is not None})

    def findings_of(self, variant: str, array: str | None = None) -> tuple[LayerFinding, ...]:
        return tuple(f for f in self.findings if f.variant == variant and (array is None or f.array == array))

    def to_dict(self, layers: bool = True) -> dict:
        winners = {}
        for name, run in self.winners.items():
            winners[name] = {"array": run.array, "dataflow": run.dataflow, "arch": run.arch,
                             "cycles": run.cycles, "energy_pj": run.energy_pj, "edp": run.edp}
        return {
            "model": self.model, "arch": self.arch, "objective": self.objective, "baseline": self.baseline,
            "energy_unit": self.energy_unit, "options": dict(self.options),
            "variants": [v.to_dict() for v in self.variants],
            "archs": [a.to_dict() for a in self.archs],
            "winners": winners,
            "runs": [run.to_dict(layers) for run in self.runs],
            "layer_winners": [f.to_dict() for f in self.findings],
            "skipped": [s.to_dict() for s in self.skipped],
            "notes": list(self.notes),
            **({"unmapped": self.unmapped.to_dict()} if self.unmapped is not None else {}),
        }


# --------------------------------------------------------------------------------------------- why a layer wins


def _ratio(value: float) -> str:
    if not math.isfinite(value):
        return "infinitely"
    return f"{value:.2f}x" if value < 1.095 else f"{value:.1f}x"


def _si(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _share(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


_SPATIAL_DIMS = {"K": "k", "N": "n", "M": "m", "R": "r", "P": "p"}


def _underfill(result: "LayerResult", layer: "Layer | None", arch: ArchSpec | None) -> str:
    """'reduction K=9 of 12 rows, filters N=1 of 14 columns': the mapped dimensions smaller than the array's
    sides (the letters and words are the mapping's, as ``codesign sim --json`` shows them)."""
    if layer is None or arch is None:
        return ""
    from dataflow.mapping import problem_of

    spatial = dict(result.mapping.get("spatial", {}) or {})
    try:
        problem = problem_of(layer, arch)
    except Exception:  # noqa: BLE001 -- a description only; never fail the report over it
        return ""
    values = {"k": problem.k, "n": -(-problem.n // problem.pack), "m": problem.m, "r": problem.conv.r,
              "p": problem.conv.p}
    parts = []
    for side, size in (("rows", arch.rows), ("cols", arch.cols)):
        label = str(spatial.get(side, ""))
        key = _SPATIAL_DIMS.get(label[:1])
        if key is None or values[key] >= size:
            continue
        word = re.split(r"[:,]", label[1:].strip().strip("()"))[0].strip()
        parts.append(f"{word + ' ' if word else ''}{label[:1]}={values[key]} of {size} "
                     f"{'rows' if side == 'rows' else 'columns'}")
    return ", ".join(parts)


def _level_energy(result: "LayerResult") -> dict[str, float]:
    out = {}
    for level, value in dict(result.energy_pj).items():
        out[level] = sum(dict(value).values()) if isinstance(value, Mapping) else float(value)
    return out


def _best_reuse(w: "LayerResult", l: "LayerResult", level: str) -> tuple[str, float]:
    """The operand whose reuse at ``level`` the winner beats the loser at most, and by how much."""
    best, ratio = "", 1.0
    w_reuse, l_reuse = dict(dict(w.reuse).get(level, {})), dict(dict(l.reuse).get(level, {}))
    for op, value in w_reuse.items():
        other = l_reuse.get(op, 0.0)
        if value > 0 and other > 0 and value / other > ratio:
            best, ratio = op, value / other
    return best, ratio


def _bound(result: "LayerResult") -> tuple[str, str]:
    """What sets a layer's time under one dataflow: ('compute', ...), ('DRAM', ...) or ('GLB', ...)."""
    dram, glb = _share(result.dram_stall_cycles, result.cycles), _share(result.glb_stall_cycles, result.cycles)
    if max(dram, glb) < 0.3:
        return "compute", "compute-bound"
    if dram >= glb:
        return "DRAM", f"DRAM-bound (stalls {dram:.0%} of its cycles)"
    return "GLB", f"GLB-bound (waits {glb:.0%} of its cycles on the buffer ports)"


def _near_tie(w: "LayerResult", l: "LayerResult") -> str:
    W, L = w.dataflow.upper(), l.dataflow.upper()
    (wk, wt), (lk, lt) = _bound(w), _bound(l)
    if wk == lk == "DRAM":
        return (f"both are DRAM-bound ({W} stalls {_share(w.dram_stall_cycles, w.cycles):.0%} of its cycles, {L} "
                f"{_share(l.dram_stall_cycles, l.cycles):.0%}): the DRAM bytes set the time, not the dataflow")
    compute = _share(l.compute_cycles, w.compute_cycles) if w.compute_cycles else 0
    extra = f", {_ratio(compute)} the compute cycles" if compute >= 1.1 else ""
    if wk == lk:
        return f"both are {wt.split(' (')[0]}" + (f" ({L}{extra[1:]})" if extra else "")
    if lk == "compute":
        return f"{W} is {wt}, {L} {lt}{extra}: about the same time"
    return f"{W} is {wt}, {L} {lt}: about the same time"


def _cycle_reason(w: "LayerResult", l: "LayerResult", layer: "Layer | None", arch: ArchSpec | None,
                  arch_of: Mapping) -> str:
    W, L = w.dataflow.upper(), l.dataflow.upper()
    if _share(l.cycles, w.cycles) < 1.05:
        return _near_tie(w, l)
    d_compute = l.compute_cycles - w.compute_cycles
    d_stall = l.stall_cycles - w.stall_cycles
    if d_compute >= d_stall:
        if w.spatial_utilization >= 1.15 * l.spatial_utilization:
            where = _underfill(l, layer, arch_of.get(l.dataflow, arch))
            return (f"{L} fills {l.spatial_utilization:.0%} of the PEs" + (f" ({where})" if where else "")
                    + f", {W} {w.spatial_utilization:.0%}")
        skipped = dict(getattr(w, "zero_savings", None) or {}).get("skipped_cycles", 0)
        lost = dict(getattr(l, "zero_savings", None) or {}).get("skipped_cycles", 0)
        if skipped and skipped > lost and skipped >= 0.5 * d_compute:
            return f"{W} skips the zero weights ({_si(skipped)} cycles skipped)"
        if l.compute_cycles and w.compute_cycles:
            text = (f"{L} needs {_ratio(l.compute_cycles / w.compute_cycles)} the compute cycles "
                    f"({_si(l.compute_cycles)} vs {_si(w.compute_cycles)})")
            ws, ls = f"{w.spatial_utilization:.0%}", f"{l.spatial_utilization:.0%}"
            filled = f"the same {ws}" if ws == ls else f"{ls} (against {ws})"
            return text + f" with {filled} of the PEs filled: more passes, or fill and drain"
        return f"{L} takes {_si(l.cycles)} cycles against {_si(w.cycles)}"
    d_dram = l.dram_stall_cycles - w.dram_stall_cycles
    d_glb = l.glb_stall_cycles - w.glb_stall_cycles
    if d_dram >= d_glb:
        text = f"{L} stalls on DRAM for {_share(l.dram_stall_cycles, l.cycles):.0%} of its cycles"
        excess = _share(l.dram_bytes, l.compulsory_dram_bytes)
        w_excess = _share(w.dram_bytes, w.compulsory_dram_bytes)
        if excess >= 1.2 and excess > 1.1 * w_excess:
            return text + f": it moves {_ratio(excess)} the compulsory DRAM bytes ({W} {_ratio(w_excess)})"
        if w.dram_bytes and l.dram_bytes > 1.1 * w.dram_bytes:
            return text + f": {_ratio(l.dram_bytes / w.dram_bytes)} the DRAM bytes of {W}"
        return text + f" ({W} overlaps its DRAM traffic with compute: {_share(w.dram_stall_cycles, w.cycles):.0%})"
    if d_glb > 0:
        text = f"{L} waits on the GLB ports for {_share(l.glb_stall_cycles, l.cycles):.0%} of its cycles"
        op, ratio = _best_reuse(w, l, "glb")
        if op and ratio >= 1.3:
            text += f" ({W}: {_ratio(ratio)} the {op} reuse at the GLB)"
        return text
    return f"{L} waits {_si(d_stall)} more cycles on its fused output path"


_LEVEL_NAMES = {"dram": "DRAM", "glb": "GLB", "noc": "NoC", "rf": "register files", "mac": "MACs"}


def _energy_reason(w: "LayerResult", l: "LayerResult") -> str:
    W, L = w.dataflow.upper(), l.dataflow.upper()
    we, le = _level_energy(w), _level_energy(l)
    level = max(le, key=lambda key: le.get(key, 0.0) - we.get(key, 0.0))
    gap = le.get(level, 0.0) - we.get(level, 0.0)
    share = _share(gap, l.total_energy_pj - w.total_energy_pj)
    name = _LEVEL_NAMES.get(level, level)
    part = f" ({share:.0%} of the gap)" if 0 < share < 0.995 else ""
    if level == "dram":
        excess = _share(l.dram_bytes, l.compulsory_dram_bytes)
        if excess >= 1.2:
            return f"{L} moves {_ratio(excess)} the compulsory DRAM bytes{part}"
        return f"{L} spends {_ratio(_share(le[level], we.get(level, 0)) or math.inf)} the DRAM energy{part}"
    if level in ("glb", "noc", "rf"):
        op, ratio = _best_reuse(w, l, level)
        if op and ratio >= 1.2:
            return f"{W}: {_ratio(ratio)} the {op} reuse at the {name}{part}"
        factor = _share(le[level], we.get(level, 0))
        return f"{L} spends {_ratio(factor) if factor else 'more'} the energy at the {name}{part}"
    return f"{L} spends more energy in the {name}{part}"


def explain(w: "LayerResult", l: "LayerResult", objective: str, layer: "Layer | None" = None,
            arch: ArchSpec | None = None, arch_of: Mapping | None = None) -> str:
    """Why ``w`` beats ``l`` on one layer, in an engineer's terms: the PEs a tile fills, compute cycles, DRAM or
    GLB stalls, DRAM bytes against the compulsory, reuse at a memory level, energy per level."""
    arch_of = arch_of or {}
    if objective == "latency":
        return _cycle_reason(w, l, layer, arch, arch_of)
    if objective == "energy":
        return _energy_reason(w, l)
    cycle_ratio = _share(l.cycles, w.cycles)
    energy_ratio = _share(l.total_energy_pj, w.total_energy_pj)
    if cycle_ratio >= energy_ratio:
        return _cycle_reason(w, l, layer, arch, arch_of)
    return _energy_reason(w, l)


def _findings(variant: ModelVariant, array: str, runs: Sequence[ExploreRun], objective: str,
              arch_of: Mapping) -> list[LayerFinding]:
    """Per array layer of ``variant`` on ``array``: the winner among the dataflows run, and why."""
    if not runs:
        return []
    by_flow = {run.dataflow: {layer.name: layer for layer in run.result.layers} for run in runs}
    layers = {layer.name: layer for layer in variant.workload.layers}
    out = []
    for result in runs[0].result.layers:
        if result.unit != "array" or result.fused_into:
            continue
        per = {flow: table[result.name] for flow, table in by_flow.items() if result.name in table}
        if len(per) != len(by_flow):
            continue
        ranked = sorted(per.values(), key=lambda r: metric_value(objective, r.cycles, r.total_energy_pj))
        w = ranked[0]
        l = ranked[1] if len(ranked) > 1 else None
        wv = metric_value(objective, w.cycles, w.total_energy_pj)[0]
        compared = []
        for other in ranked[1:]:
            ov = metric_value(objective, other.cycles, other.total_energy_pj)[0]
            ratio = ov / wv if wv else (1.0 if ov == wv else math.inf)
            if ratio <= 1.0 + 1e-9:
                reason = "the same " + {"latency": "cycles", "energy": "energy", "edp": "EDP"}[objective]
            else:
                reason = explain(w, other, objective, layers.get(result.name), arch_of.get(w.dataflow), arch_of)
            compared.append((other.dataflow, ratio, reason))
        ratio, reason = compared[0][1:] if compared else (1.0, "")
        out.append(LayerFinding(
            variant=variant.name, array=array, layer=result.name, op=result.op, winner=w.dataflow,
            runner_up=l.dataflow if l is not None else None, ratio=ratio, reason=reason,
            cycles=_frozen({flow: r.cycles for flow, r in per.items()}),
            energy_pj=_frozen({flow: r.total_energy_pj for flow, r in per.items()}), objective=objective,
            others=tuple(compared[1:])))
    return out


# --------------------------------------------------------------------------------------------- the driver


def _load(model: Any, input_shape, example_inputs, name: str | None):
    """(name, module or exported program, example inputs) from a reference, a module, or a (module, inputs) pair."""
    import torch
    from torch.export import ExportedProgram

    from codesign.model_ref import load_model

    if isinstance(model, str):
        label, module, inputs = load_model(model, tuple(input_shape) if input_shape is not None else None)
        return name or label, module, inputs
    if isinstance(model, tuple) and len(model) == 2 and isinstance(model[0], torch.nn.Module):
        model, example_inputs = model[0], example_inputs if example_inputs is not None else model[1]
    if not isinstance(model, (torch.nn.Module, ExportedProgram)):
        raise ModelLoadError(f"explore needs a model reference, a torch.nn.Module or an ExportedProgram, got "
                             f"{type(model).__name__}")
    if input_shape is not None:
        generator = torch.Generator().manual_seed(0)
        example_inputs = (torch.randn(tuple(int(v) for v in input_shape), generator=generator),)
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    if example_inputs is None and isinstance(model, torch.nn.Module):
        raise ModelLoadError("explore: a module needs example_inputs or input_shape")
    label = name or (type(model).__name__ if isinstance(model, torch.nn.Module) else "exported_program")
    return label, model, tuple(example_inputs or ())


def _export(module: Any, inputs: tuple):
    """The module exported once (``codesign.capture.quantized.export_quantized``: eval mode, one-line errors,
    Brevitas layers as plain fake quantization); an exported program as it is."""
    import torch

    if not isinstance(module, torch.nn.Module):
        return module
    from codesign.capture.quantized import export_quantized

    return export_quantized(module, inputs)


def _reweighted(program: Any, module: Any):
    """``program`` (exported) carrying ``module``'s parameter and buffer values: a new ExportedProgram on the same
    graph with another state dict; None when the names or shapes differ from the program's (or torch refuses)."""
    import torch
    from torch.export import ExportedProgram

    if not isinstance(module, torch.nn.Module) or not isinstance(program, ExportedProgram):
        return None
    state = module.state_dict()
    target = program.state_dict
    if any(name not in state or tuple(state[name].shape) != tuple(value.shape) for name, value in target.items()):
        return None
    weights = {}
    for name, value in target.items():
        new = state[name].detach().clone()
        weights[name] = torch.nn.Parameter(new, requires_grad=value.requires_grad) \
            if isinstance(value, torch.nn.Parameter) else new
    try:
        return ExportedProgram(
            root=program.graph_module, graph=program.graph, graph_signature=program.graph_signature,
            state_dict=weights, range_constraints=program.range_constraints,
            module_call_graph=program.module_call_graph, example_inputs=program.example_inputs,
            constants=program.constants, verifiers=program.verifiers)
    except Exception:  # noqa: BLE001 -- another torch's constructor: export the copy instead
        return None


def explore(
    model: Any,
    arch: "ArchSpec | str",
    *,
    prune: Iterable["PruneSpec | str"] = (),
    arrays: object = (),
    dataflows: object = None,
    objective: str = "latency",
    input_shape: Sequence[int] | None = None,
    example_inputs: Any = None,
    bits: Any = None,
    fold_views: bool = True,
    fuse: bool = True,
    onchip_activations: bool = True,
    name: str | None = None,
    progress: bool = False,
    on_note: Any = None,
    jobs: int = 1,
    scheduler: str | None = None,
    scheduler_timeout_s: float | None = None,
    allow_unsupported: bool = False,
) -> ExploreResult:
    """Simulate a model and its pruned variants under every dataflow (and array shape) on one accelerator.

    Parameters:
        model: a model reference (``zoo:NAME``, ``module:factory``, ``file.py:factory``, ``file.pt2``), a
            ``torch.nn.Module`` (with ``example_inputs`` or ``input_shape``), a (module, example_inputs) pair or an
            ``ExportedProgram`` (which cannot be pruned).
        arch: a preset name, a YAML path or an ``ArchSpec``.
        prune: pruning SPECs ('unstructured:0.5', 'filters:0.3', 'slimming:0.4', 'nm:2:4'; ``codesign.prune``),
            each run on a deep copy of the model beside the model as loaded.
        arrays: other array shapes ('8x8,16x16', or (rows, cols) pairs); the spec's own always runs first.
        dataflows: the dataflows to run ('ws,os,rs' or a sequence). None: WS, OS and RS, and one that cannot run
            on the accelerator (row stationary without room for a filter row) is skipped with a note; named
            explicitly, such a dataflow is a ``MappingError``.
        objective: 'latency', 'energy' or 'edp': what the mapper minimizes per layer and what picks the winners.
        bits: a ``Bits`` or ``BitsPolicy`` for the capture (default: a quantized model's own widths, else the
            accelerator's PE widths; ``capture.precision``).
        fold_views, fuse, onchip_activations: as for ``from_torch`` and ``simulate``.
        on_note: called with each note as it arises (they are also in ``ExploreResult.notes``).
        progress: a progress bar of the runs on the terminal.
        jobs: local worker processes the runs are spread over (1: this process); scheduler: a running Dask cluster,
            'tcp://HOST:PORT', instead, with ``scheduler_timeout_s`` (default 10) to answer (``codesign.cluster``).
            The result does not depend on either.
        allow_unsupported: simulate a model with ops that map to no layer (left out, named in a note) instead
            of raising ``UnmappedOpsError`` (``codesign.unmapped``).

    Returns an ``ExploreResult``. Raises ``PruneError`` (bad SPEC, or nothing to prune), ``SpecError`` (bad array
    shape or spec), ``MappingError`` (unknown dataflow or objective, a requested dataflow that cannot run),
    ``ModelLoadError`` / ``CaptureError`` as the capture does; ``ClusterError`` for bad ``jobs`` / ``scheduler`` or a
    scheduler that does not answer.
    """
    from codesign.cluster import DEFAULT_TIMEOUT_S, check_jobs, check_scheduler, open_pool

    check_jobs(jobs)
    check_scheduler(scheduler)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_one_torch_thread())

        def pool():  # opened once the arguments are checked, before the model is loaded
            return stack.enter_context(open_pool(jobs, scheduler, timeout_s=scheduler_timeout_s or DEFAULT_TIMEOUT_S,
                                                 preload=("sim.engine", "codesign.explore")))

        return _explore(model, arch, prune=prune, arrays=arrays, dataflows=dataflows, objective=objective,
                        input_shape=input_shape, example_inputs=example_inputs, bits=bits, fold_views=fold_views,
                        fuse=fuse, onchip_activations=onchip_activations, name=name, progress=progress,
                        on_note=on_note, open_pool=pool, allow_unsupported=allow_unsupported)


def _simulate_run(task: tuple) -> Any:
    """One run in a worker: its ``SimResult``, or the one-line reason a ``MappingError`` gave (a str)."""
    workload, arch, flow, objective, fuse, onchip_activations = task
    from sim.engine import simulate

    try:
        return simulate(workload, arch, flow, objective=objective, fuse=fuse, onchip_activations=onchip_activations)
    except MappingError as exc:
        return str(exc)


def _run_bar(enabled: bool, description: str, total: int):
    """(advance callback or None, stop): a transient terminal bar of finished runs."""
    if not enabled:
        return None, lambda: None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True)
    task = bar.add_task("runs", total=total)
    bar.start()
    return (lambda step: bar.advance(task, step)), bar.stop


def _explore(model, arch, *, prune, arrays, dataflows, objective, input_shape, example_inputs, bits, fold_views,
             fuse, onchip_activations, name, progress, on_note, open_pool, allow_unsupported=False) -> ExploreResult:
    from codesign.arch_loader import load_arch
    from codesign.capture import from_torch
    from codesign.capture.precision import as_policy, for_arch
    from codesign.unmapped import check_mapped, unmapped_line
    from dataflow.mapper import check_objective

    specs = parse_specs(prune)
    shapes = parse_arrays(arrays)
    requested = parse_dataflows(dataflows)
    check_objective(objective)
    base = arch if isinstance(arch, ArchSpec) else load_arch(arch)
    policy = for_arch(as_policy(bits), base)  # no widths asked for: the model's own, else the PEs'
    shapes = tuple(dict.fromkeys(((base.rows, base.cols),) + shapes))
    flows = requested if requested is not None else BUILTIN_DATAFLOWS
    notes: list[str] = []
    pool = open_pool()

    def note(text: str) -> None:
        notes.append(text)
        if on_note is not None:
            on_note(text)

    label, module, inputs = _load(model, input_shape, example_inputs, name)
    # Prune every copy first (cheap, and a SPEC the model has nothing for fails before any capture).
    copies = [pruned_copy(module, spec) for spec in specs] if specs else []
    program = _export(module, inputs)
    workload = from_torch(program, inputs, name=label, bits=policy, fold_views=fold_views)
    unmapped = check_mapped(workload, label, allow_unsupported)  # pruning changes weights, not which ops map
    if unmapped is not None:
        note(unmapped_line(unmapped))
    given = is_pruned(module) or _variant_of("", None, None, workload).weight_density < 1.0
    baseline = "as given" if given else "dense"
    if given:
        note(f"{label} arrives pruned (zero weights or masks): the first row is the model as given")
    variants = [_variant_of(baseline, None, None, workload)]
    for spec, (copy, report) in zip(specs, copies):
        # Pruning changes weights, not the graph: the baseline's export with the copy's weights is the copy's
        # export (exporting again is most of a capture's time); a copy whose parameters are named otherwise (masks
        # made permanent) is exported afresh.
        source = _reweighted(program, copy)
        captured = from_torch(source if source is not None else copy, inputs, name=label, bits=policy,
                              fold_views=fold_views)
        variant = _variant_of(spec.text, spec, report, captured)
        variants.append(variant)
        if variant.effective_macs >= variants[0].effective_macs:
            note(f"{spec.text}: the capture finds no fewer effective MACs than {baseline} ({report.description})")

    archs: list[ArchVariant] = []
    skipped: list[Skipped] = []
    plan: list[tuple[ArchVariant, str]] = []
    for shape in shapes:
        for flow in flows:
            variant_arch, flow_note = derive_arch(base, flow, shape)
            if flow == "rs":
                problem = rs_room(variant_arch.arch, workload, base.name)
                if problem:
                    if requested is not None:
                        raise MappingError(f"rs: not run: {problem}")
                    if shape == shapes[0]:
                        skipped.append(Skipped("rs", "", problem))
                        note(f"rs: not run: {problem}")
                    continue
            if flow_note and shape == shapes[0]:
                note(flow_note)
            archs.append(variant_arch)
            plan.append((variant_arch, flow))
    for shape in shapes[1:]:
        note(f"{shape[0]}x{shape[1]}: {base.name} with rows={shape[0]}, cols={shape[1]} (the same PEs, register "
             f"files, buffer, DRAM, clock and energy table)")

    runs: list[ExploreRun] = []
    shared = [pool.share(variant.workload) for variant in variants]
    tasks = [(workload, variant_arch.arch, flow, objective, fuse, onchip_activations)
             for workload in shared for variant_arch, flow in plan]
    advance, stop = _run_bar(progress, f"simulating {label}", len(tasks))
    try:
        outcomes = iter(pool.map(_simulate_run, tasks, advance))  # in task order, whatever the worker count
    finally:
        stop()
    for variant in variants:
        for variant_arch, flow in plan:
            result = next(outcomes)
            if isinstance(result, str):  # the run's MappingError
                if requested is not None:
                    raise MappingError(result)
                reason = " ".join(result.split())
                skipped.append(Skipped(flow, variant_arch.array, reason, variant.name))
                note(Skipped(flow, variant_arch.array, reason, variant.name).line())
                continue
            runs.append(ExploreRun(variant=variant.name, array=variant_arch.array, dataflow=flow,
                                   arch=variant_arch.arch.name, result=result, weight_density=variant.weight_density,
                                   effective_macs=variant.effective_macs, zero_savings=_frozen(_zero_savings(result))))
    if not runs:
        raise MappingError(f"no dataflow could run on {base.name}: " + "; ".join(s.line() for s in skipped))
    runs = _mark(runs, variants, objective, baseline)
    arch_of = {}
    for variant_arch in archs:
        arch_of.setdefault(variant_arch.array, {})[variant_arch.dataflow] = variant_arch.arch
    findings: list[LayerFinding] = []
    for variant in variants:
        for shape in shapes:
            array = f"{shape[0]}x{shape[1]}"
            mine = [run for run in runs if run.variant == variant.name and run.array == array]
            findings.extend(_findings(variant, array, mine, objective, arch_of.get(array, {})))
    first = runs[0].result
    return ExploreResult(
        model=label, arch=base.name, objective=objective, baseline=baseline, energy_unit=first.energy_unit,
        variants=tuple(variants), archs=tuple(archs), runs=tuple(runs), findings=tuple(findings),
        skipped=tuple(skipped), notes=tuple(notes), unmapped=unmapped,
        options=_frozen({"fuse": fuse, "onchip_activations": onchip_activations, "fold_views": fold_views,
                         "arrays": [f"{r}x{c}" for r, c in shapes], "dataflows": list(flows),
                         "dataflows_requested": requested is not None}),
    )


def _mark(runs: list[ExploreRun], variants: Sequence[ModelVariant], objective: str,
          baseline: str) -> list[ExploreRun]:
    """Mark each variant's best run, and what every pruned run saved against the baseline's."""
    best = {}
    for run in runs:
        if run.variant not in best or run.metric(objective) < best[run.variant].metric(objective):
            best[run.variant] = run
    base = {(run.array, run.dataflow): run for run in runs if run.variant == baseline}
    out = []
    for run in runs:
        saved = None
        ref = base.get((run.array, run.dataflow))
        if run.variant != baseline and ref is not None:
            saved = _frozen({"cycles": ref.cycles - run.cycles, "energy_pj": ref.energy_pj - run.energy_pj,
                             "dram_bytes": ref.dram_bytes - run.dram_bytes,
                             "effective_macs": ref.effective_macs - run.effective_macs})
        out.append(replace(run, winner=best[run.variant] is run, vs_baseline=saved))
    return out


class _CallableModule(types.ModuleType):
    """``codesign.explore`` is this module once anything imported it (a package attribute naming a submodule is
    the submodule), and the function otherwise: calling the module calls the function, so
    ``codesign.explore(model, arch, ...)`` works either way."""

    def __call__(self, *args: Any, **kwargs: Any) -> ExploreResult:
        return explore(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
