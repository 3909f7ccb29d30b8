"""`codesign sim`: tables, JSON and CSV for one dataflow or all, and one-line errors with exit status 2."""

from __future__ import annotations

import csv
import json
import textwrap

import pytest

from codesign.cli import main

MODEL = textwrap.dedent(
    """
    import torch
    from torch import nn

    def tiny():
        model = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10),
        )
        return model.eval(), (torch.randn(1, 3, 8, 8),)
    """
)

SMALL_ARCH = textwrap.dedent(
    """
    name: tiny-buffer
    rows: 4
    cols: 4
    dataflows: [ws, os]
    pe: {weight_bits: 8, activation_bits: 8, accumulator_bits: 32}
    glb: {size_bytes: 32}
    dram: {bytes_per_cycle: 2}
    energy: {preset: horowitz-45nm}
    """
)


@pytest.fixture(scope="module")
def model_ref(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny_model.py"
    path.write_text(MODEL)
    return f"{path}:tiny"


@pytest.fixture(scope="module")
def all_runs(model_ref, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    status = main(["sim", model_ref, "--arch", "fpga-4x4", "--dataflow", "all", "--json", str(out / "r.json"),
                   "--csv", str(out / "r.csv"), "--quiet"])
    return status, json.loads((out / "r.json").read_text()), list(csv.DictReader((out / "r.csv").open()))


def test_all_writes_one_run_per_supported_dataflow(all_runs):
    status, doc, _ = all_runs
    assert status == 0
    assert doc["arch"] == "fpga-4x4"
    assert [run["dataflow"] for run in doc["runs"]] == ["ws", "os"]
    for run in doc["runs"]:
        assert set(run["totals"]) >= {"macs", "cycles", "energy_pj", "dram_bytes", "utilization", "roofline_cycles"}
        assert run["totals"]["cycles"] == sum(layer["cycles"] for layer in run["layers"])


def test_every_layer_is_costed_not_only_the_mac_layers(all_runs):
    _, doc, _ = all_runs
    layers = doc["runs"][0]["layers"]
    kinds = {layer["op"] for layer in layers}
    assert {"conv", "depthwise_conv", "linear"} <= kinds
    assert any(layer["unit"] == "vector" and layer["cycles"] > 0 for layer in layers)
    macs = 8 * 3 * 9 * 64 + 8 * 9 * 64 + 8 * 10  # conv, depthwise, linear, derived by hand
    assert doc["runs"][0]["totals"]["macs"] == macs


def test_csv_has_a_row_per_layer_and_a_total_per_dataflow(all_runs):
    _, doc, rows = all_runs
    for run in doc["runs"]:
        mine = [row for row in rows if row["dataflow"] == run["dataflow"]]
        assert len(mine) == len(run["layers"]) + 1
        assert mine[-1]["layer"] == "TOTAL" and int(mine[-1]["cycles"]) == run["totals"]["cycles"]


def test_one_dataflow_prints_a_table_and_writes_a_single_run(model_ref, tmp_path, capsys):
    out = tmp_path / "ws.json"
    assert main(["sim", model_ref, "--arch", "fpga-4x4", "--dataflow", "ws", "--bits", "4,8", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["dataflow"] == "ws" and "runs" not in doc
    assert "TOTAL" in capsys.readouterr().out


def _error(capsys, argv, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("codesign: error: ") and "\n" not in err
    for needle in needles:
        assert needle in err


def test_a_dataflow_the_arch_does_not_support_is_a_one_line_error(model_ref, capsys, tmp_path):
    out = tmp_path / "never.json"
    _error(capsys, ["sim", model_ref, "--arch", "fpga-4x4", "--dataflow", "rs", "--json", str(out)],
           "does not support dataflow rs")
    assert not out.exists()


def test_a_layer_no_mapping_fits_is_named_with_the_bytes_it_needs(model_ref, capsys, tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SMALL_ARCH)
    out = tmp_path / "never.json"
    _error(capsys, ["sim", model_ref, "--arch", str(spec), "--dataflow", "ws", "--json", str(out)],
           "layer ", "32-byte global buffer", "bytes")
    assert not out.exists()


@pytest.mark.parametrize("option, value, needle", [("--dataflow", "xs", "unknown dataflow"),
                                                   ("--objective", "speed", "unknown objective"),
                                                   ("--arch", "no-such-preset", "no-such-preset")])
def test_bad_options_are_one_line_errors(model_ref, capsys, option, value, needle):
    argv = ["sim", model_ref, "--arch", "fpga-4x4", option, value]
    _error(capsys, argv, needle)


def test_an_unwritable_output_fails_before_simulating(model_ref, capsys, tmp_path):
    _error(capsys, ["sim", model_ref, "--arch", "fpga-4x4", "--json", str(tmp_path / "missing" / "r.json")],
           "does not exist")


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_max_rows_must_be_a_whole_number_of_at_least_one(value, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["sim", "zoo:resnet18-cifar", "--arch", "fpga-4x4", f"--max-rows={value}"])
    assert stop.value.code == 2
    assert "is not a whole number >= 1" in capsys.readouterr().err
