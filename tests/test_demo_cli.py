"""`codesign demo` (what `make demo` runs): explore, sweep, Verilog and RTL verification, on two screens."""

from __future__ import annotations

import json

import pytest

from codesign.cli import main
from conftest import require_simulator

SCREEN_LINES = 50


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    require_simulator("icarus")
    out = tmp_path_factory.mktemp("demo") / "demo"
    capture = pytest.MonkeyPatch()
    import io
    import sys

    printed = io.StringIO()
    capture.setattr(sys, "stdout", printed)
    try:
        status = main(["demo", "--out", str(out)])
    finally:
        capture.undo()
    return status, out, printed.getvalue()


@pytest.mark.rtl
@pytest.mark.slow
def test_demo_runs_every_step_and_leaves_its_reports(demo):
    status, out, printed = demo
    assert status == 0, printed
    explore = json.loads((out / "explore.json").read_text())
    assert set(explore["winners"]) == {"dense", "filters:0.5"}
    sweep = json.loads((out / "sweep.json").read_text())
    assert sorted({point["bits"] for point in sweep["points"]}) == [2, 4, 8] and sweep["board"] == "ulx3s"
    manifest = json.loads((out / "rtl" / "manifest.json").read_text())
    assert (out / "rtl" / manifest["verilog"]).is_file()
    assert manifest["parameters"]["dataflow"] == explore["winners"]["dense"]["dataflow"]  # the winner is built
    assert json.loads((out / "verify.json").read_text())["passed"]
    for report in ("explore", "sweep"):
        assert (out / report / "index.html").is_file()


@pytest.mark.rtl
@pytest.mark.slow
def test_demo_fits_on_two_screens_and_ends_with_the_reports_and_a_three_line_summary(demo):
    status, out, printed = demo
    lines = printed.rstrip("\n").splitlines()
    assert len(lines) <= 2 * SCREEN_LINES, printed
    summary = lines[lines.index(next(line for line in lines if "summary" in line and set(line) & {"─"})) + 1:]
    assert [line.split(":")[0] for line in summary] == ["explore", "sweep", "rtl", "reports"]
    explore = json.loads((out / "explore.json").read_text())
    dense = explore["winners"]["dense"]
    assert f"{dense['dataflow'].upper()} wins on fpga-8x8 ({dense['cycles'] / 1e6:.2f}M cycles dense)" in summary[0]
    verify = json.loads((out / "verify.json").read_text())
    assert f"{len(verify['checks'])} of {len(verify['checks'])} checks passed" in summary[2]
    assert str(out / "explore" / "index.html") in summary[3]


def test_demo_stops_at_the_first_failing_step(tmp_path, capsys):
    status = main(["demo", "--model", "zoo:no-such-model", "--out", str(tmp_path / "demo")])
    assert status == 2
    assert "unknown zoo model 'no-such-model'" in capsys.readouterr().err
