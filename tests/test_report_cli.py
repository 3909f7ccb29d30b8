"""`--report DIR` on sim, explore and sweep: index.html with every figure beside it as PNG, JSON and CSV, the full
results, a manifest; the folder written all-or-nothing; a folder it cannot use is one line, exit 2, nothing left."""

from __future__ import annotations

import csv
import json
import os
import re
import textwrap
from pathlib import Path

import pytest

from codesign.cli import main

MODEL = textwrap.dedent(
    """
    import torch
    from torch import nn

    def tiny():
        torch.manual_seed(0)
        model = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10),
        )
        return model.eval(), (torch.randn(2, 3, 8, 8),)
    """
)

SIM_FIGURES = {"comparison", "latency", "energy", "roofline"}


@pytest.fixture(scope="module")
def model_ref(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny_report_model.py"
    path.write_text(MODEL)
    return f"{path}:tiny"


@pytest.fixture(scope="module")
def sim_report(model_ref, tmp_path_factory):
    folder = tmp_path_factory.mktemp("out") / "report"
    status = main(["sim", model_ref, "--arch", "fpga-4x4", "--dataflow", "all", "--report", str(folder), "--quiet"])
    return status, folder


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "report.json").read_text())


def test_sim_report_writes_the_page_every_figure_and_the_data_behind_it(sim_report):
    status, folder = sim_report
    assert status == 0
    manifest = _manifest(folder)
    assert manifest["kind"] == "sim" and set(manifest["figures"]) == SIM_FIGURES
    for name in manifest["figures"]:
        assert (folder / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        rows = list(csv.DictReader((folder / f"{name}.csv").open()))
        doc = json.loads((folder / f"{name}.json").read_text())
        assert rows and len(rows) == len(doc["rows"]) and list(rows[0]) == doc["columns"]
    results = json.loads((folder / "results.json").read_text())
    assert [run["dataflow"] for run in results["runs"]] == ["ws", "os"]
    assert {path.name for path in folder.iterdir()} == set(manifest["files"]) | {"report.json"}


def test_the_page_links_every_figure_and_its_data_and_fetches_nothing(sim_report):
    _, folder = sim_report
    page = (folder / "index.html").read_text()
    for name in _manifest(folder)["figures"]:
        assert f'<img src="{name}.png"' in page
        assert f'href="{name}.json"' in page and f'href="{name}.csv"' in page
    references = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert references and all((folder / ref).is_file() for ref in references)  # only files beside the page
    assert "http://" not in page and "https://" not in page


def test_the_page_reads_summary_first_with_the_legend(sim_report):
    _, folder = sim_report
    page = (folder / "index.html").read_text()
    order = [page.index(text) for text in ("Summary", "layers with cycles", "Legend", "Dataflow comparison",
                                           'src="latency.png"', "Every layer")]
    assert order == sorted(order)
    for word in ("stall:", "roofline:", "min DRAM B:"):
        assert word in page


def test_a_second_report_replaces_the_first_whole(model_ref, sim_report, tmp_path):
    _, first = sim_report
    folder = tmp_path / "report"
    assert main(["sim", model_ref, "--arch", "fpga-4x4", "--dataflow", "all", "--report", str(folder), "--quiet"]) == 0
    assert main(["sim", model_ref, "--arch", "fpga-4x4", "--dataflow", "ws", "--report", str(folder), "--quiet"]) == 0
    manifest = _manifest(folder)
    assert "comparison" not in manifest["figures"]  # one dataflow: no comparison figure, and no stale one left
    assert {path.name for path in folder.iterdir()} == set(manifest["files"]) | {"report.json"}
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no build or old folder beside it


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("codesign: error: ") and "\n" not in err
    return err


def _unusable(tmp_path: Path, case: str) -> Path:
    if case == "parent missing":
        return tmp_path / "missing" / "report"
    if case == "under a file":
        (tmp_path / "file.txt").write_text("x")
        return tmp_path / "file.txt" / "report"
    if case == "a file":
        (tmp_path / "report.html").write_text("x")
        return tmp_path / "report.html"
    if case == "not a report":
        (tmp_path / "mine").mkdir()
        (tmp_path / "mine" / "notes.txt").write_text("keep me")
        return tmp_path / "mine"
    if case == "report with other files":
        folder = tmp_path / "old"
        folder.mkdir()
        (folder / "report.json").write_text(json.dumps({"generator": "codesign report", "files": ["index.html"]}))
        (folder / "index.html").write_text("<html></html>")
        (folder / "mine.txt").write_text("keep me")
        return folder
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["parent missing", "under a file", "a file", "not a report",
                                  "report with other files"])
def test_a_folder_the_report_cannot_use_is_one_line_and_leaves_everything_as_it_was(model_ref, tmp_path, capsys,
                                                                                   case):
    target = _unusable(tmp_path, case)
    before = sorted((str(p), p.read_bytes() if p.is_file() else b"") for p in tmp_path.rglob("*"))
    err = _one_line_error(capsys, ["sim", model_ref, "--arch", "fpga-4x4", "--report", str(target),
                                   "--json", str(tmp_path / "r.json")])
    assert "cannot write report" in err
    after = sorted((str(p), p.read_bytes() if p.is_file() else b"") for p in tmp_path.rglob("*"))
    assert after == before  # not even the --json file: the check comes before any work


def test_a_read_only_file_system_is_refused_before_simulating(model_ref, capsys):
    if not os.path.isdir("/sys"):
        pytest.skip("no /sys (sysfs takes no new folders, not even from root)")
    err = _one_line_error(capsys, ["sim", model_ref, "--arch", "fpga-4x4", "--report", "/sys/codesign-report"])
    assert "folder /sys is not writable" in err
    assert not os.path.exists("/sys/codesign-report")


def test_a_failure_while_writing_leaves_no_half_written_folder(model_ref, tmp_path, capsys, monkeypatch):
    from codesign.report import folder as report_folder

    real = report_folder._write_files

    def fail_half_way(build, files):
        real(build, dict(list(files.items())[:3]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report_folder, "_write_files", fail_half_way)
    err = _one_line_error(capsys, ["sim", model_ref, "--arch", "fpga-4x4", "--report", str(tmp_path / "report")])
    assert "No space left on device" in err
    assert list(tmp_path.iterdir()) == []


def test_a_failure_while_replacing_keeps_the_previous_report(model_ref, sim_report, tmp_path, capsys, monkeypatch):
    from codesign.report import folder as report_folder

    folder = tmp_path / "report"
    assert main(["sim", model_ref, "--arch", "fpga-4x4", "--dataflow", "ws", "--report", str(folder), "--quiet"]) == 0
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    real = os.replace

    def refuse_the_new_folder(src, dst):
        if str(src).endswith(".tmp"):
            raise OSError(5, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(report_folder.os, "replace", refuse_the_new_folder)
    _one_line_error(capsys, ["sim", model_ref, "--arch", "fpga-4x4", "--dataflow", "all", "--report", str(folder)])
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_the_terminal_names_the_report(model_ref, tmp_path, capsys):
    folder = tmp_path / "report"
    assert main(["sim", model_ref, "--arch", "fpga-4x4", "--dataflow", "ws", "--report", str(folder)]) == 0
    assert f"report: {folder}/index.html" in capsys.readouterr().out


def test_explore_report_has_the_comparison_and_each_variants_figures(model_ref, tmp_path):
    folder = tmp_path / "report"
    assert main(["explore", model_ref, "--arch", "fpga-12x14", "--prune", "unstructured:0.5", "--report",
                 str(folder), "--quiet"]) == 0
    manifest = _manifest(folder)
    assert manifest["kind"] == "explore"
    per_variant = {f"{variant}-{kind}" for variant in ("dense", "unstructured-0.5")
                   for kind in ("latency", "energy", "roofline")}
    assert set(manifest["figures"]) == {"comparison"} | per_variant
    for name in manifest["figures"]:
        assert (folder / f"{name}.png").stat().st_size > 0 and (folder / f"{name}.csv").is_file()
    assert json.loads((folder / "results.json").read_text())["baseline"] == "dense"


def test_sweep_report_has_the_pareto_plot_and_its_points(model_ref, tmp_path):
    folder = tmp_path / "report"
    assert main(["sweep", model_ref, "--arch", "fpga-4x4", "--bits", "8,4", "--dataflows", "os", "--report",
                 str(folder), "--quiet"]) == 0
    manifest = _manifest(folder)
    assert manifest["kind"] == "sweep" and manifest["figures"] == ["pareto"]
    points = list(csv.DictReader((folder / "pareto.csv").open()))
    assert [row["bits"] for row in points] == ["8", "4"]
    assert "Pareto front" in (folder / "index.html").read_text()


def test_explore_and_sweep_refuse_an_unusable_folder_before_any_work(model_ref, tmp_path, capsys):
    for command in (["explore", model_ref, "--arch", "fpga-12x14"], ["sweep", model_ref, "--arch", "fpga-4x4"]):
        err = _one_line_error(capsys, command + ["--report", str(tmp_path / "missing" / "r")])
        assert "does not exist" in err
    assert list(tmp_path.iterdir()) == []
