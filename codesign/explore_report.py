"""Reports of an exploration (``codesign.explore``): the summary table, what the zeros saved, which dataflow
wins each layer and why, per-layer tables; JSON and CSV text."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from typing import TYPE_CHECKING

from codesign.sim_report import _si

if TYPE_CHECKING:  # pragma: no cover
    from codesign.explore import ExploreResult, ExploreRun, LayerFinding

__all__ = ["CSV_COLUMNS", "DEFAULT_LAYERS", "json_text", "csv_text", "print_explore", "print_summary",
           "print_savings", "print_layer_winners", "print_layer_tables"]

DEFAULT_LAYERS = 15  # layers whose winners are explained by default (the longest)

CSV_COLUMNS = ("variant", "array", "dataflow", "arch", "layer", "op", "macs", "effective_macs", "cycles",
               "compute_cycles", "stall_cycles", "dram_stall_cycles", "glb_stall_cycles", "utilization",
               "spatial_utilization", "energy_pj", "dram_bytes", "compulsory_dram_bytes", "weight_density", "winner")


def json_text(result: "ExploreResult") -> str:
    return json.dumps(result.to_dict(), indent=2) + "\n"


def csv_text(result: "ExploreResult") -> str:
    """One row per layer per run (``winner`` 1 where that dataflow wins the layer), then a TOTAL row per run
    (``winner`` 1 for the variant's best run)."""
    wins = {(f.variant, f.array, f.layer): f.winner for f in result.findings}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for run in result.runs:
        head = [run.variant, run.array, run.dataflow, run.arch]
        for layer in run.result.layers:
            won = wins.get((run.variant, run.array, layer.name))
            writer.writerow(head + [layer.name, layer.op, layer.macs, layer.effective_macs, layer.cycles,
                                    layer.compute_cycles, layer.stall_cycles, layer.dram_stall_cycles,
                                    layer.glb_stall_cycles, f"{layer.utilization:.6f}",
                                    f"{layer.spatial_utilization:.6f}", f"{layer.total_energy_pj:.6g}",
                                    layer.dram_bytes, layer.compulsory_dram_bytes, "",
                                    "" if won is None else int(won == run.dataflow)])
        sim = run.result
        writer.writerow(head + ["TOTAL", "", sim.macs, run.effective_macs, sim.cycles, sim.compute_cycles,
                                sim.stall_cycles, sum(layer.dram_stall_cycles for layer in sim.layers),
                                sum(layer.glb_stall_cycles for layer in sim.layers), f"{sim.utilization:.6f}", "",
                                f"{sim.energy_pj:.6g}", sim.dram_bytes, sim.compulsory_dram_bytes,
                                f"{run.weight_density:.6f}", int(run.winner)])
    return out.getvalue()


# --------------------------------------------------------------------------------------------- terminal


def _console(console=None):
    from rich.console import Console

    return console or Console()


def _say(console, text: str, style: str | None = None) -> None:
    console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)


def _pct(saved: float, base: float) -> str:
    """A saving as the change against the baseline: '-36.5%' (fewer), '+2.0%' (more)."""
    if not base:
        return "-"
    return f"{-saved / base:+.1%}" if saved else "0.0%"


def _next_best(result: "ExploreResult", winner: "ExploreRun") -> tuple["ExploreRun | None", float]:
    others = [run for run in result.runs_of(winner.variant) if run is not winner]
    if not others:
        return None, 1.0
    second = min(others, key=lambda run: run.metric(result.objective))
    mine = winner.metric(result.objective)[0]
    return second, (second.metric(result.objective)[0] / mine) if mine else 1.0


def print_summary(result: "ExploreResult", console=None) -> None:
    """One row per variant, array and dataflow: the totals; each variant's winner marked."""
    from rich.table import Table

    console = _console(console)
    several = len(result.arrays) > 1
    table = Table(title=f"{result.model} on {result.arch}: dataflows x pruning (objective: {result.objective})")
    table.add_column("variant", no_wrap=True)
    if several:
        table.add_column("array", no_wrap=True)
    table.add_column("dataflow", no_wrap=True)
    for name in ("cycles", "latency ms", "energy", "EDP", "DRAM bytes", "util", "weight density", "eff. MACs"):
        table.add_column(name, justify="right", no_wrap=True)
    for index, variant in enumerate(result.variants):
        if index:
            table.add_section()
        for number, run in enumerate(result.runs_of(variant.name)):
            first = number == 0
            row = [variant.name if first else ""] + ([run.array] if several else [])
            mark = " *" if run.winner else ""
            row += [f"{run.dataflow.upper()}{mark}", _si(run.cycles), f"{run.latency_ms:.3f}", _si(run.energy_pj),
                    _si(run.edp), _si(run.dram_bytes), f"{run.utilization:.1%}",
                    f"{variant.weight_density:.3f}" if first else "", _si(variant.effective_macs) if first else ""]
            table.add_row(*row, style="bold" if run.winner else None)
    console.print(table)
    unit = result.energy_unit
    _say(console, f"* winner of each variant by {result.objective}; energy in {unit}, EDP in cycles x {unit}; "
                  "weight density and effective MACs of the conv/linear layers after pruning")
    for variant in result.variants:
        winner = result.winner(variant.name)
        if winner is None:
            continue
        second, ratio = _next_best(result, winner)
        where = f" on {winner.array}" if several else ""
        tail = ""
        if second is not None:
            word = {"latency": "fewer cycles", "energy": "less energy", "edp": "lower EDP"}[result.objective]
            place = f" on {second.array}" if several and second.array != winner.array else ""
            tail = f", {ratio:.2f}x {word} than {second.dataflow.upper()}{place}"
        _say(console, f"{variant.name}: {winner.dataflow.upper()}{where} wins ({_si(winner.cycles)} cycles, "
                      f"{winner.latency_ms:.3f} ms, {_si(winner.energy_pj)} {unit}{tail})")


def print_savings(result: "ExploreResult", console=None) -> None:
    """What each pruned variant saved against the baseline on the same array and dataflow."""
    from rich.table import Table

    runs = [run for run in result.runs if run.vs_baseline is not None]
    if not runs:
        return
    console = _console(console)
    keys = [key for key in ("skipped_cycles", "gated_energy_pj", "compressed_dram_bytes")
            if any(key in run.zero_savings for run in runs)]
    several = len(result.arrays) > 1
    table = Table(title=f"what the zeros saved against {result.baseline} (same array and dataflow)")
    table.add_column("variant", no_wrap=True)
    if several:
        table.add_column("array", no_wrap=True)
    table.add_column("dataflow", no_wrap=True)
    for name in ["eff. MACs", "cycles", "energy", "DRAM bytes"] + [
            {"skipped_cycles": "cycles skipped", "gated_energy_pj": "energy gated",
             "compressed_dram_bytes": "DRAM B compressed"}[key] for key in keys]:
        table.add_column(name, justify="right", no_wrap=True)
    last = None
    for run in runs:
        if last is not None and run.variant != last:
            table.add_section()
        base = result.run(result.baseline, run.dataflow, run.array)
        saved = run.vs_baseline
        row = [run.variant if run.variant != last else ""] + ([run.array] if several else [])
        row += [run.dataflow.upper(), _pct(saved["effective_macs"], base.effective_macs),
                _pct(saved["cycles"], base.cycles), _pct(saved["energy_pj"], base.energy_pj),
                _pct(saved["dram_bytes"], base.dram_bytes)]
        row += [_si(run.zero_savings[key]) if key in run.zero_savings else "" for key in keys]
        table.add_row(*row)
        last = run.variant
    console.print(table)
    text = "change against the same run of " + result.baseline
    if keys:
        text += ("; cycles skipped, energy gated, DRAM B compressed: the zeros' savings the simulator reports per "
                 "layer, summed")
    _say(console, text)


def _shown(findings: list["LayerFinding"], limit: int | None) -> list["LayerFinding"]:
    ranked = sorted(findings, key=lambda f: -f.longest_cycles)
    return ranked if limit is None else ranked[:limit]


def _tally(findings) -> str:
    counts = Counter(f.winner for f in findings)
    return ", ".join(f"{flow.upper()} {count}" for flow, count in counts.most_common())


def print_layer_winners(result: "ExploreResult", console=None, limit: int | None = DEFAULT_LAYERS) -> None:
    """Per variant (on its winner's array): which dataflow wins each of the longest layers and why, grouped by the
    winner; pruned variants list only the layers whose winner differs from the baseline's."""
    if len(result.dataflows) < 2:
        return
    console = _console(console)
    base_wins: dict[str, str] = {}
    for variant in result.variants:
        winner = result.winner(variant.name)
        if winner is None:
            continue
        findings = list(result.findings_of(variant.name, winner.array))
        if not findings:
            continue
        shown = _shown(findings, limit)
        several = f" on {winner.array}" if len(result.arrays) > 1 else ""
        scope = (f"all {len(findings)} array layers" if len(shown) == len(findings)
                 else f"the {len(shown)} longest of {len(findings)} array layers; --layers for all")
        if variant.name == result.baseline or not base_wins:
            console.print()
            _say(console, f"per layer, {variant.name}{several} ({scope}): which dataflow wins and why", "bold")
            groups: dict[str, list] = {}
            for finding in shown:
                groups.setdefault(finding.winner, []).append(finding)
            for flow, items in sorted(groups.items(), key=lambda item: -len(item[1])):
                _say(console, f"  {flow.upper()} wins {len(items)}:")
                for finding in items:
                    _say(console, f"    {finding.line()}")
            if len(shown) < len(findings):
                _say(console, f"  over all {len(findings)} array layers: {_tally(findings)}")
            base_wins = {f.layer: f.winner for f in findings}
            continue
        changed = [f for f in shown if base_wins.get(f.layer) not in (None, f.winner)]
        console.print()
        heading = f"per layer, {variant.name}{several}"
        if not changed:
            _say(console, f"{heading}: the same winners as {result.baseline} on these layers "
                          f"(all {len(findings)}: {_tally(findings)})", "bold")
            continue
        _say(console, f"{heading}: {len(changed)} of these layers change winner against {result.baseline} "
                      f"(all {len(findings)}: {_tally(findings)})", "bold")
        for finding in changed:
            _say(console, f"    {finding.line()} (was {base_wins[finding.layer].upper()})")


def print_layer_tables(result: "ExploreResult", console=None) -> None:
    """Per variant, on its winner's array: every array layer's cycles and energy under each dataflow."""
    from rich.table import Table

    console = _console(console)
    for variant in result.variants:
        winner = result.winner(variant.name)
        if winner is None:
            continue
        findings = result.findings_of(variant.name, winner.array)
        if not findings:
            continue
        flows = list(findings[0].cycles)
        table = Table(title=f"{variant.name} on {result.arch} {winner.array}: per layer, by dataflow")
        table.add_column("layer", no_wrap=True, overflow="ellipsis")
        table.add_column("op", no_wrap=True, overflow="ellipsis")
        for flow in flows:
            table.add_column(f"{flow.upper()} cycles", justify="right", no_wrap=True)
        for flow in flows:
            table.add_column(f"{flow.upper()} energy", justify="right", no_wrap=True)
        table.add_column("best", no_wrap=True)
        table.add_column("by", justify="right", no_wrap=True)
        for finding in findings:
            best_c = min(finding.cycles.values())
            best_e = min(finding.energy_pj.values())
            cells = [finding.layer, finding.op]
            cells += [_si(finding.cycles[f]) + (" *" if finding.cycles[f] == best_c else "") for f in flows]
            cells += [_si(finding.energy_pj[f]) + (" *" if finding.energy_pj[f] == best_e else "") for f in flows]
            cells += [finding.winner.upper(), f"{finding.ratio:.2f}x" if finding.runner_up else ""]
            table.add_row(*cells)
        console.print(table)
        _say(console, f"* fewest cycles / least energy of the layer; best and by: the winner by {result.objective} "
                      "and its margin over the runner-up")


def print_explore(result: "ExploreResult", console=None, *, layers: bool = False, per_layer: bool = True) -> None:
    """The whole report, summary first: totals and winners, notes, what the zeros saved, per-layer winners (the
    longest layers; with ``layers`` every layer, then the per-layer tables; none without ``per_layer``)."""
    console = _console(console)
    print_summary(result, console)
    for note in result.notes:
        _say(console, f"note: {note}", "yellow")
    print_savings(result, console)
    if not per_layer:
        return
    print_layer_winners(result, console, limit=None if layers else DEFAULT_LAYERS)
    if layers:
        print_layer_tables(result, console)
