"""``codesign compile``: the four files for a model, and one-line errors (exit 2, nothing written) for an op the
system cannot run and for bit-widths it was not built for."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn as nn

from codesign.cli import main
from codesign.contract.isa import INSTRUCTION_BYTES, decode_program

HERE = Path(__file__).resolve()
MODELS = "codesign.zoo.system_nets"


class Softmaxed(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 10)

    def forward(self, x):
        return torch.softmax(self.fc(x), 1)


class Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 8, batch_first=True)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(self.lstm(x)[0][:, -1])


def softmax_model():
    return Softmaxed(), (torch.randn(1, 12),)


def lstm_model():
    return Recurrent(), (torch.randn(1, 5, 8),)


def test_compile_writes_the_program_the_listing_the_weights_and_the_manifest(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["compile", f"{MODELS}:lut_block", "--arch", "fpga-8x8", "--dataflow", "os", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "executor equals the integer reference" in printed and "SQNR" in printed
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "program.bin", "program.lst", "weights.bin"]
    manifest = json.loads((out / "manifest.json").read_text())
    program = decode_program((out / "program.bin").read_bytes())
    assert manifest["instructions"] == len(program) == (out / "program.bin").stat().st_size // INSTRUCTION_BYTES
    assert manifest["memory_map"]["weights_bytes"] == (out / "weights.bin").stat().st_size
    assert manifest["dataflow"] == "os" and manifest["arch"] == "fpga-8x8"
    assert {layer["kind"] for layer in manifest["layers"]} >= {"mac", "act", "avgpool", "alias"}
    assert all(layer["predicted_cycles"] >= 0 for layer in manifest["layers"])
    assert manifest["cycles"]["predicted"] > manifest["cycles"]["boot"] > 0
    listing = (out / "program.lst").read_text().splitlines()
    assert len(listing) == len(program) + 1 and listing[-1].split()[2] == "END"


def _fails_with_one_line(argv, capsys, *words) -> None:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("codesign: error: ")
    for word in words:
        assert word in err


def test_an_op_the_system_cannot_run_is_named_on_one_line(tmp_path, capsys):
    out = tmp_path / "out"
    _fails_with_one_line(["compile", f"{HERE}:softmax_model", "--arch", "fpga-8x8", "--dataflow", "ws",
                          "--out", str(out)], capsys, "softmax", "host")
    _fails_with_one_line(["compile", f"{HERE}:lstm_model", "--arch", "fpga-8x8", "--dataflow", "ws",
                          "--out", str(out)], capsys, "aten.lstm")
    assert not out.exists()


def test_bit_widths_the_system_was_not_built_for_are_refused(tmp_path, capsys):
    out = tmp_path / "out"
    _fails_with_one_line(["compile", f"{MODELS}:lut_block", "--arch", "fpga-8x8", "--dataflow", "ws", "--out",
                          str(out), "--bits", "4"], capsys, "int8", "--bits 8")
    arch = tmp_path / "int4.yaml"
    arch.write_text("name: int4\nrows: 8\ncols: 8\npe: {weight_bits: 4, activation_bits: 4}\n"
                    "glb: {size_bytes: 65536}\ndram: {bytes_per_cycle: 2}\nenergy: {preset: horowitz-45nm}\n")
    _fails_with_one_line(["compile", f"{MODELS}:lut_block", "--arch", str(arch), "--dataflow", "ws", "--out",
                          str(out)], capsys, "4x4-bit", "int8")
    assert not out.exists()
