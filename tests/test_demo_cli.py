"""`codesign demo` (what `make demo` runs): graph, simulation, Verilog and RTL verification, end to end."""

from __future__ import annotations

import json

import pytest

from codesign.cli import main
from conftest import require_simulator


@pytest.mark.rtl
@pytest.mark.slow
def test_demo_runs_every_step_and_leaves_its_reports(tmp_path, capsys):
    require_simulator("icarus")
    out = tmp_path / "demo"
    status = main(["demo", "--model", "zoo:resnet18-cifar", "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 0
    graph = json.loads((out / "graph.json").read_text())
    sim = json.loads((out / "sim.json").read_text())
    assert {run["dataflow"] for run in sim["runs"]} == {"ws", "os"}
    assert all(run["totals"]["macs"] == graph["totals"]["macs"] > 0 for run in sim["runs"])
    manifest = json.loads((out / "rtl" / "manifest.json").read_text())
    assert (out / "rtl" / manifest["verilog"]).is_file()
    assert printed.count("all checks passed") == 2  # WS and OS cores verified


def test_demo_stops_at_the_first_failing_step(tmp_path, capsys):
    status = main(["demo", "--model", "zoo:no-such-model", "--out", str(tmp_path / "demo")])
    assert status == 2
    assert "unknown zoo model 'no-such-model'" in capsys.readouterr().err
