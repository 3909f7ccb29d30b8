"""Report figures: the table behind each figure holds what the simulation measured, and each figure draws a
nonzero-size image from a real result (MobileNetV2 on an 8x8 array; a small model's exploration and sweep)."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import replace

import pytest
import torch
from torch import nn

import codesign
from codesign.report.figures import figure, png_bytes
from codesign.report.pages import dram_bytes_per_cycle
from codesign.report.tables import (STALL_KINDS, comparison_table, energy_table, explore_comparison_table,
                                    latency_table, pareto_table, roofline_table)

pytestmark = pytest.mark.slow  # one MobileNetV2 simulation per dataflow (about 8 s), shared by the module


@pytest.fixture(scope="module")
def arch():
    return codesign.load_arch("fpga-8x8")


@pytest.fixture(scope="module")
def runs(arch):
    from codesign.zoo import build

    model, inputs = build("mobilenetv2-cifar")
    workload = codesign.from_torch(model, inputs)
    return [codesign.simulate(workload, arch, flow) for flow in ("ws", "os")]


def _tiny():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(16, 10))
    return model.eval(), (torch.randn(2, 3, 12, 12),)


def _png_size(table) -> tuple[int, int, bytes]:
    data, width, height = png_bytes(figure(table))
    return width, height, data


@pytest.mark.parametrize("kind", ["latency", "energy", "roofline", "comparison"])
def test_each_sim_figure_draws_a_nonzero_png_of_a_zoo_model(kind, runs, arch):
    table = {"latency": lambda: latency_table(runs), "energy": lambda: energy_table(runs),
             "roofline": lambda: roofline_table(runs, dram_bytes_per_cycle(arch)),
             "comparison": lambda: comparison_table(runs)}[kind]()
    width, height, data = _png_size(table)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert width > 200 and height > 100


def test_the_latency_figure_grows_with_the_layers_it_shows(runs):
    few = latency_table([run for run in runs[:1]])
    short = latency_table([replace(runs[0], layers=runs[0].layers[:12])])
    _, tall, _ = _png_size(few)
    _, low, _ = _png_size(short)
    layers = {row[1] for row in few.rows}
    assert tall >= 15 * len(layers) > low  # a readable bar per layer, not a squeezed plot


def test_latency_rows_split_every_layer_into_compute_and_stalls_and_add_up_to_the_run(runs):
    table = latency_table(runs)
    records = table.records()
    for record in records:
        assert record["cycles"] == record["compute_cycles"] + sum(record[kind] for kind in STALL_KINDS)
    for run in runs:
        assert sum(r["cycles"] for r in records if r["dataflow"] == run.dataflow) == run.cycles


def test_energy_rows_add_up_to_each_runs_energy(runs):
    records = energy_table(runs).records()
    for run in runs:
        total = sum(r["energy"] for r in records if r["dataflow"] == run.dataflow)
        assert math.isclose(total, run.energy_pj, rel_tol=1e-9)


def test_every_array_layer_sits_under_its_own_roofline_bound_and_compute_peak(runs, arch):
    table = roofline_table(runs, dram_bytes_per_cycle(arch))
    records = table.records()
    array_layers = sum(1 for run in runs for layer in run.layers if layer.unit == "array" and layer.cycles)
    assert len(records) == array_layers
    bandwidth = table.meta["dram_bytes_per_cycle"]
    for r in records:
        assert r["macs_per_cycle"] <= r["bound_macs_per_cycle"] * (1 + 1e-9)  # roofline cycles are a lower bound
        assert r["macs_per_cycle"] <= r["peak_macs_per_cycle"] * (1 + 1e-9)
        assert r["bound_macs_per_cycle"] <= r["peak_macs_per_cycle"] * (1 + 1e-6)
        # the DRAM roof: the bound is at most bandwidth x intensity (the bound's cycles round down by under one)
        dram_cycles = r["compulsory_dram_bytes"] / bandwidth
        assert r["bound_macs_per_cycle"] <= r["macs"] / max(dram_cycles - 1, 1) * (1 + 1e-9)
    assert {round(r["peak_macs_per_cycle"]) for r in records} == {arch.pes}  # int8 on int8 PEs: one MAC per PE


def test_a_figures_csv_and_json_hold_the_same_rows(runs):
    table = latency_table(runs)
    rows = list(csv.DictReader(io.StringIO(table.csv_text())))
    doc = json.loads(table.json_text())
    assert len(rows) == len(doc["rows"]) == len(table.rows)
    for row, record in zip(rows, doc["rows"]):
        assert row["layer"] == record["layer"] and int(row["cycles"]) == record["cycles"]


def test_the_exploration_comparison_draws_every_variant_and_dataflow():
    result = codesign.explore(_tiny(), "fpga-12x14", prune=["unstructured:0.5"], dataflows="ws,os")
    table = explore_comparison_table(result)
    assert {(r["variant"], r["dataflow"]) for r in table.records()} == {
        (v, f) for v in ("dense", "unstructured:0.5") for f in ("ws", "os")}
    assert sum(r["winner"] for r in table.records()) == 2  # one winner per variant
    width, height, _ = _png_size(table)
    assert width > 200 and height > 100


def test_the_pareto_figure_draws_a_real_sweep_and_marks_its_front():
    from codesign.sweep import sweep

    model, inputs = _tiny()
    result = sweep(model, inputs, codesign.load_arch("fpga-8x8"), bits=(8, 4), dataflows=("os",), name="tiny")
    table = pareto_table(result)
    assert [r["bits"] for r in table.records()] == [8, 4]
    assert [r["pareto"] for r in table.records()] == [p.pareto for p in result.points]
    width, height, _ = _png_size(table)
    assert width > 200 and height > 100
