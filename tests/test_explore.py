"""`codesign explore` and `codesign.explore`: variants x dataflows x arrays, winners, notes, one-line errors."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import textwrap

import pytest

import codesign
from codesign.arch_loader import load_arch
from codesign.cli import main
from codesign.errors import MappingError

MODEL = textwrap.dedent(
    """
    import torch
    from torch import nn

    def tiny():
        torch.manual_seed(0)
        model = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
        )
        return model.eval(), (torch.randn(1, 3, 12, 12),)
    """
)

# fpga-8x8 with register files that hold a 3-tap filter row: row stationary can run on a derived variant.
ROOMY = textwrap.dedent(
    """
    name: roomy-8x8
    description: fpga-8x8 with room for a filter row
    rows: 8
    cols: 8
    noc: systolic
    dataflows: [ws, os]
    pe: {weight_bits: 8, activation_bits: 8, accumulator_bits: 32, weight_rf_words: 16, activation_rf_words: 4,
         psum_rf_words: 4}
    glb: {size_bytes: 131072, banks: 4, word_bits: 64}
    dram: {bytes_per_cycle: 2, latency_cycles: 20}
    energy: {preset: horowitz-45nm}
    """
)


@pytest.fixture(scope="module")
def model_ref(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny_explore.py"
    path.write_text(MODEL)
    return f"{path}:tiny"


@pytest.fixture(scope="module")
def explored(model_ref, tmp_path_factory):
    """One CLI run on fpga-12x14 (WS, OS, RS) with two SPECs and a second array shape, its files and output."""
    out = tmp_path_factory.mktemp("out")
    buffer = io.StringIO()  # a module-scoped fixture cannot use capsys
    with contextlib.redirect_stdout(buffer):
        status = main(["explore", model_ref, "--arch", "fpga-12x14", "--prune", "unstructured:0.5",
                       "--prune", "filters:0.5", "--arrays", "8x8", "--json", str(out / "e.json"),
                       "--csv", str(out / "e.csv")])
    doc = json.loads((out / "e.json").read_text())
    rows = list(csv.DictReader((out / "e.csv").open()))
    return status, doc, rows, buffer.getvalue()


def _error(capsys, argv) -> str:
    status = main(argv)
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("codesign: error: ")
    return lines[0]


def test_json_has_every_variant_array_and_dataflow(explored):
    status, doc, _, _ = explored
    assert status == 0
    assert [v["name"] for v in doc["variants"]] == ["dense", "unstructured:0.5", "filters:0.5"]
    combos = {(run["variant"], run["array"], run["dataflow"]) for run in doc["runs"]}
    assert combos == {(v, a, f) for v in ("dense", "unstructured:0.5", "filters:0.5") for a in ("12x14", "8x8")
                      for f in ("ws", "os", "rs")}
    for run in doc["runs"]:
        assert run["totals"]["cycles"] == sum(layer["cycles"] for layer in run["layers"])
        assert run["totals"]["edp"] == pytest.approx(run["totals"]["cycles"] * run["totals"]["energy_pj"])


def test_one_winner_per_variant_the_best_by_the_objective(explored):
    _, doc, _, _ = explored
    for variant in doc["variants"]:
        runs = [run for run in doc["runs"] if run["variant"] == variant["name"]]
        winners = [run for run in runs if run["winner"]]
        assert len(winners) == 1
        assert winners[0]["totals"]["cycles"] == min(run["totals"]["cycles"] for run in runs)
        assert doc["winners"][variant["name"]]["dataflow"] == winners[0]["dataflow"]


def test_pruned_variants_report_density_and_savings_against_dense(explored):
    _, doc, _, _ = explored
    dense, unstructured, filters = doc["variants"]
    assert dense["weight_density"] == 1.0 and doc["baseline"] == "dense"
    assert unstructured["weight_density"] == pytest.approx(0.5, abs=0.01)
    assert filters["effective_macs"] < dense["effective_macs"]
    for run in doc["runs"]:
        if run["variant"] == "filters:0.5":
            base = next(r for r in doc["runs"] if (r["variant"], r["array"], r["dataflow"]) ==
                        ("dense", run["array"], run["dataflow"]))
            assert run["vs_baseline"]["cycles"] == base["totals"]["cycles"] - run["totals"]["cycles"]
            assert run["vs_baseline"]["cycles"] > 0


def test_every_array_shape_keeps_the_rest_of_the_spec(explored):
    _, doc, _, _ = explored
    shapes = {(a["array"], a["rows"], a["cols"]) for a in doc["archs"]}
    assert shapes == {("12x14", 12, 14), ("8x8", 8, 8)}
    for arch in doc["archs"]:
        if arch["array"] == "8x8":
            assert arch["changes"] == ["array 12x14 -> 8x8"] and arch["derived_from"] == "fpga-12x14"


def test_layer_winners_name_a_dataflow_and_a_reason(explored):
    _, doc, _, _ = explored
    findings = [f for f in doc["layer_winners"] if f["variant"] == "dense" and f["array"] == "12x14"]
    assert [f["layer"] for f in findings] == ["0", "3", "6", "11"]  # conv, depthwise, 1x1 conv, linear
    for finding in findings:
        assert finding["winner"] in ("ws", "os", "rs") and finding["reason"]
        assert finding["cycles"][finding["winner"]] == min(finding["cycles"].values())


def test_csv_has_layer_rows_and_a_total_per_run(explored):
    _, doc, rows, _ = explored
    totals = [row for row in rows if row["layer"] == "TOTAL"]
    assert len(totals) == len(doc["runs"])
    assert sum(int(row["winner"]) for row in totals) == len(doc["variants"])


def test_terminal_output_reads_summary_first(explored):
    *_, out = explored
    summary = out.index("dataflows x pruning")
    assert summary < out.index("what the zeros saved") < out.index("per layer, dense")
    assert "dense: " in out and " wins (" in out


def test_python_api_returns_a_frozen_result_matching_the_json(model_ref):
    result = codesign.explore(model_ref, "fpga-12x14", prune=["nm:2:4"], dataflows="ws,os")
    assert [v.name for v in result.variants] == ["dense", "nm:2:4"]
    assert {run.dataflow for run in result.runs} == {"ws", "os"}
    assert result.winner("nm:2:4").winner
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.objective = "energy"  # type: ignore[misc]
    doc = result.to_dict()
    assert json.loads(json.dumps(doc))["winners"].keys() == {"dense", "nm:2:4"}


@pytest.mark.parametrize(
    "spec",
    ["unstructured:1.5", "filters:-0.2", "nm:4:4", "nm:2.5:4", "nm:x:4", "prune:0.5", "slimming", "unstructured:"],
)
def test_bad_spec_is_one_line_and_exit_2(capsys, spec):
    line = _error(capsys, ["explore", "zoo:resnet18-cifar", "--arch", "fpga-8x8", "--prune", spec])
    assert "SPEC" in line or "pruning kind" in line


@pytest.mark.parametrize("arrays", ["0x8", "8by8", "8x", "8x8,16", "5000x2"])
def test_bad_arrays_are_one_line_and_exit_2(capsys, arrays):
    line = _error(capsys, ["explore", "zoo:resnet18-cifar", "--arch", "fpga-8x8", "--arrays", arrays])
    assert "--arrays" in line


def test_unknown_dataflow_is_one_line_and_exit_2(capsys):
    line = _error(capsys, ["explore", "zoo:resnet18-cifar", "--arch", "fpga-8x8", "--dataflows", "ws,xs"])
    assert "unknown dataflow 'xs'" in line


def test_requested_rs_without_room_for_a_filter_row_is_exit_2(capsys, model_ref, tmp_path):
    target = tmp_path / "e.json"
    line = _error(capsys, ["explore", model_ref, "--arch", "fpga-8x8", "--dataflows", "ws,rs", "--json", str(target)])
    assert line == ("codesign: error: rs: not run: the PEs of fpga-8x8 hold 1 weight; row stationary needs a "
                    "filter row of S=3 in each PE's register file")
    assert not target.exists() and not list(tmp_path.iterdir())  # nothing half-written


def test_rs_without_room_by_default_is_a_note_and_the_rest_runs(model_ref):
    result = codesign.explore(model_ref, "fpga-8x8")
    assert {run.dataflow for run in result.runs} == {"ws", "os"}
    assert [s.dataflow for s in result.skipped] == ["rs"]
    assert any(note.startswith("rs: not run: the PEs of fpga-8x8 hold 1 weight") for note in result.notes)


def test_a_dataflow_the_spec_lacks_runs_on_a_derived_variant_and_says_so(capsys, model_ref, tmp_path):
    spec = tmp_path / "roomy-8x8.yaml"
    spec.write_text(ROOMY)
    assert main(["explore", model_ref, "--arch", str(spec), "--dataflows", "ws,rs"]) == 0
    out = capsys.readouterr().out
    assert "note: rs: derived from roomy-8x8 with a multicast NoC" in out
    result = codesign.explore(model_ref, str(spec), dataflows="rs")
    (arch,) = result.archs
    base = load_arch(str(spec))
    assert arch.arch.noc.value == "multicast"
    assert arch.changes == ("noc systolic -> multicast", "rs added to the dataflows")
    assert dataclasses.replace(arch.arch, noc=base.noc, dataflows=base.dataflows, name=base.name) == base


def test_fpga_12x14_preset_supports_ws_os_and_rs(capsys):
    spec = load_arch("fpga-12x14")
    assert (spec.rows, spec.cols) == (12, 14) and [d.value for d in spec.dataflows] == ["ws", "os", "rs"]
    assert spec.pe.weight_rf_words >= 3 and spec.pe.activation_rf_words >= 3
    assert main(["arch", "list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "fpga-12x14" in line)
    assert "ws, os, rs" in row


def test_a_model_that_arrives_pruned_is_explored_as_given(model_ref):
    from torch.nn.utils import prune

    from codesign.model_ref import load_model

    _, model, inputs = load_model(model_ref)
    prune.l1_unstructured(model[0], "weight", amount=0.5)
    result = codesign.explore((model, inputs), "fpga-8x8", prune=["filters:0.25"], dataflows="ws")
    assert result.baseline == "as given" and result.variants[0].name == "as given"
    assert result.variants[0].weight_density < 1.0
    assert result.runs_of("filters:0.25")[0].vs_baseline is not None


def test_requested_dataflow_the_mapper_cannot_run_is_a_mapping_error(model_ref):
    with pytest.raises(MappingError, match="rs: not run"):
        codesign.explore(model_ref, "fpga-4x4", dataflows=["rs"])


@pytest.mark.parametrize("where", [{"jobs": 0}, {"jobs": "two"}, {"scheduler": "nope"},
                                   {"jobs": 2, "scheduler": "tcp://127.0.0.1:8786"}])
def test_bad_jobs_or_scheduler_is_a_cluster_error(model_ref, where):
    from codesign.cluster import ClusterError

    with pytest.raises(ClusterError):
        codesign.explore(model_ref, "fpga-8x8", **where)


def test_zoo_model_gets_a_winner_per_variant(capsys):
    status = main(["explore", "zoo:resnet18-cifar", "--input-shape", "1,3,8,8", "--arch", "fpga-8x8",
                   "--prune", "unstructured:0.5", "--dataflows", "ws,os"])
    out = capsys.readouterr().out
    assert status == 0
    assert "dense: " in out and "unstructured:0.5: " in out and out.count(" wins (") >= 2


def test_layers_option_prints_the_per_layer_tables(capsys, model_ref):
    assert main(["explore", model_ref, "--arch", "fpga-8x8", "--layers"]) == 0
    out = capsys.readouterr().out
    assert "dense on fpga-8x8 8x8: per layer, by dataflow" in out
    assert "(all 4 array layers)" in out


def test_an_exported_program_cannot_be_pruned(capsys, model_ref, tmp_path):
    import torch

    from codesign.model_ref import load_model

    _, model, inputs = load_model(model_ref)
    path = tmp_path / "tiny.pt2"
    torch.export.save(torch.export.export(model, inputs), str(path))
    line = _error(capsys, ["explore", str(path), "--arch", "fpga-8x8", "--prune", "unstructured:0.5"])
    assert "an exported program cannot be pruned" in line


def test_a_variant_captured_from_the_shared_export_equals_its_own_capture(model_ref):
    import importlib

    from codesign.capture import from_torch
    from codesign.model_ref import load_model
    from codesign.prune import pruned_copy

    module = importlib.import_module("codesign.explore")
    _, model, inputs = load_model(model_ref)
    program = module._export(model, inputs)
    copy, _ = pruned_copy(model, "filters:0.5")
    shared = from_torch(module._reweighted(program, copy), inputs, name="tiny")
    assert shared.layers == from_torch(copy, inputs, name="tiny").layers
