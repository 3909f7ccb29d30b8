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


def test_one_dataflow_prints_its_totals_and_writes_a_single_run(model_ref, tmp_path, capsys):
    out = tmp_path / "ws.json"
    assert main(["sim", model_ref, "--arch", "fpga-4x4", "--dataflow", "ws", "--bits", "4,8", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["dataflow"] == "ws" and "runs" not in doc
    printed = capsys.readouterr().out
    assert "fpga-4x4: totals (objective: latency)" in printed and "dataflow comparison" not in printed


def _layer_rows(printed: str, names) -> list[str]:
    """The layer names of ``names`` in the order the tables print them."""
    found = []
    for line in printed.splitlines():
        cells = [cell.strip() for cell in line.strip("│ ").split("│")]
        if cells and cells[0] in names:
            found.append(cells[0])
    return found


def test_output_reads_summary_first_then_the_longest_layers_then_the_legend(model_ref, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["sim", model_ref, "--arch", "fpga-4x4", "--json", str(out), "--max-rows", "2"]) == 0
    printed = capsys.readouterr().out
    doc = json.loads(out.read_text())
    marks = [printed.index(text) for text in ("dataflow comparison", "WS: the 2 longest of", "OS: the 2 longest of",
                                              "stall: ", "min DRAM B: ", "roofline: ")]
    assert marks == sorted(marks)
    names = {layer["name"] for run in doc["runs"] for layer in run["layers"]}
    longest = [[layer["name"] for layer in sorted(run["layers"], key=lambda layer: -layer["cycles"])[:2]]
               for run in doc["runs"]]
    assert _layer_rows(printed, names) == longest[0] + longest[1]  # the two longest per dataflow, longest first
    assert "TOTAL" not in printed


def test_layers_prints_every_layer_in_network_order_and_max_rows_cuts_it(model_ref, tmp_path, capsys):
    out = tmp_path / "ws.json"
    assert main(["sim", model_ref, "--arch", "fpga-4x4", "--dataflow", "ws", "--layers", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    names = [layer["name"] for layer in json.loads(out.read_text())["layers"]]
    assert printed.index("totals") < printed.index("every layer") < printed.index("TOTAL") < printed.index("stall: ")
    assert _layer_rows(printed, set(names)) == names
    assert main(["sim", model_ref, "--arch", "fpga-4x4", "--dataflow", "ws", "--layers", "--max-rows", "2"]) == 0
    cut = capsys.readouterr().out
    assert _layer_rows(cut, set(names)) == names[:2]
    assert f"... {len(names) - 2} more layers" in cut


LONG_NAMES = textwrap.dedent(
    """
    import torch
    from torch import nn

    class Long(nn.Module):
        def __init__(self):
            super().__init__()
            self.a_first_convolution_with_a_name_well_over_forty_characters = nn.Conv2d(3, 8, 3, padding=1)
            self.the_classifier_at_the_very_end_of_this_network_of_layers = nn.Linear(8, 10)

        def forward(self, x):
            x = self.a_first_convolution_with_a_name_well_over_forty_characters(x)
            return self.the_classifier_at_the_very_end_of_this_network_of_layers(x.mean((2, 3)))

    def long():
        return Long().eval(), (torch.randn(1, 3, 8, 8),)
    """
)


@pytest.mark.parametrize("extra", [[], ["--layers"]])
def test_cells_are_never_cut_when_output_goes_to_a_pipe_or_file(tmp_path, capsys, extra):
    path = tmp_path / "long_model.py"
    path.write_text(LONG_NAMES)
    assert main(["sim", f"{path}:long", "--arch", "fpga-4x4"] + extra) == 0
    printed = capsys.readouterr().out
    assert "…" not in printed
    assert "a_first_convolution_with_a_name_well_over_forty_characters" in printed
    assert "the_classifier_at_the_very_end_of_this_network_of_layers" in printed
    assert all(len(line) <= 200 for line in printed.splitlines() if line.startswith(("│", "┃")))


DEPTHWISE = textwrap.dedent(
    """
    import torch
    from torch import nn

    def depthwise():
        layers = [nn.Conv2d(3, 16, 1)]
        for _ in range(4):
            layers += [nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.ReLU()]
        return nn.Sequential(*layers).eval(), (torch.randn(1, 3, 8, 8),)
    """
)


def test_a_note_that_repeats_is_one_line_naming_how_many_layers(tmp_path, capsys):
    path = tmp_path / "dw_model.py"
    path.write_text(DEPTHWISE)
    out = tmp_path / "r.json"
    assert main(["sim", f"{path}:depthwise", "--arch", "fpga-8x8", "--dataflow", "ws", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    noted = [layer["name"] for layer in json.loads(out.read_text())["layers"]
             if any("low spatial utilization" in note for note in layer["notes"])]
    assert len(noted) == 4
    lines = [line for line in printed.splitlines() if "low spatial utilization" in line]
    assert len(lines) == 1 and lines[0].startswith("note 4 layers (")


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


def test_notes_that_differ_only_in_a_share_are_one_line_with_the_range(model_ref):
    from dataclasses import replace

    import codesign
    from codesign.model_ref import load_model
    from codesign.sim_report import grouped_notes

    _, model, inputs = load_model(model_ref)
    run = codesign.simulate(codesign.from_torch(model, inputs), codesign.load_arch("fpga-4x4"), "ws")
    shares = ["2.0%", "12.5%", "6.2%"]
    layers = [replace(layer, notes=(f"low spatial utilization: a full tile occupies {share} of the PEs",))
              for layer, share in zip(run.layers, shares)]
    lines = grouped_notes(replace(run, layers=tuple(layers) + run.layers[3:]))
    names = ", ".join(layer.name for layer in layers)
    assert lines == [f"3 layers ({names}): low spatial utilization: a full tile occupies 2.0%-12.5% of the PEs"]
