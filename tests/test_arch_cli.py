"""`codesign arch list|show`: output on stdout, one-line errors and exit status 2 for bad input."""

from __future__ import annotations

import pytest

from codesign.arch_loader import load_arch, preset_names
from codesign.cli import main


def test_list_names_every_preset_with_its_energy_table(capsys):
    assert main(["arch", "list"]) == 0
    out = capsys.readouterr().out
    for name in preset_names():
        assert name in out
    assert "12x14" in out and "eyeriss-65nm" in out and "horowitz-45nm" in out


def test_show_prints_the_preset_yaml_with_its_citations(capsys, tmp_path):
    assert main(["arch", "show", "eyeriss"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("#") and "ISCA 2016" in out
    path = tmp_path / "start.yaml"
    path.write_text(out, encoding="utf-8")
    assert load_arch(str(path)).rows == 12


def test_show_validates_a_file_and_prints_it_normalized(capsys, tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("rows: 2\ncols: 3\nglb: {size_bytes: 4096}\ndram: {bytes_per_cycle: 1}\n"
                    "energy: {preset: eyeriss-65nm}\n", encoding="utf-8")
    assert main(["arch", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "name: mine" in out and "valid" in out


def test_show_full_writes_out_every_energy_entry_and_reloads_the_same(capsys, tmp_path):
    assert main(["arch", "show", "fpga-4x4", "--full"]) == 0
    out = capsys.readouterr().out
    assert "dram_pj: 1300" in out and "multiplier_share:" in out
    path = tmp_path / "full.yaml"
    path.write_text(out, encoding="utf-8")
    assert load_arch(str(path)).energy == load_arch("fpga-4x4").energy


def test_show_output_writes_the_file(capsys, tmp_path):
    target = tmp_path / "tpu.yaml"
    assert main(["arch", "show", "tpu-like", "-o", str(target)]) == 0
    assert load_arch(str(target)).name == "tpu-like"


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("codesign: error: ")
    return err


def test_unknown_preset_exits_2_listing_presets(capsys):
    assert main(["arch", "show", "eyeris"]) == 2
    err = _one_line_error(capsys)
    assert "unknown preset 'eyeris'" in err and "fpga-4x4" in err


def test_invalid_spec_exits_2_naming_file_and_field(capsys, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("rows: 2\ncols: -3\nglb: {size_bytes: 4096}\ndram: {bytes_per_cycle: 1}\n"
                    "energy: {preset: eyeriss-65nm}\n", encoding="utf-8")
    assert main(["arch", "show", str(path)]) == 2
    err = _one_line_error(capsys)
    assert str(path) in err and "field cols: -3 is less than the minimum of 1" in err


def test_malformed_yaml_exits_2_naming_the_line(capsys, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("rows: 2\ncols: : 3\n", encoding="utf-8")
    assert main(["arch", "show", str(path)]) == 2
    assert "line 2" in _one_line_error(capsys)


def test_output_into_a_missing_folder_exits_2_and_writes_nothing(capsys, tmp_path):
    target = tmp_path / "absent" / "x.yaml"
    assert main(["arch", "show", "eyeriss", "-o", str(target)]) == 2
    _one_line_error(capsys)
    assert not target.parent.exists()


def test_arch_without_an_action_is_a_usage_error(capsys):
    assert main(["arch"]) == 2
    assert "list or show" in capsys.readouterr().err


def test_unknown_action_is_rejected_by_argparse(capsys):
    with pytest.raises(SystemExit) as info:
        main(["arch", "frobnicate"])
    assert info.value.code == 2
