"""A bad spec fails with one SpecError line naming the file and the dotted field; overrides apply."""

from __future__ import annotations

import copy

import pytest
import yaml

from codesign.arch_loader import arch_to_dict, load_arch, preset_names
from codesign.energy import HOROWITZ_45NM
from codesign.errors import SpecError


def _write(tmp_path, data, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture
def good():
    """A valid spec as plain data (the fpga-4x4 preset)."""
    return copy.deepcopy(arch_to_dict(load_arch("fpga-4x4")))


def _error(tmp_path, data) -> str:
    path = _write(tmp_path, data)
    with pytest.raises(SpecError) as info:
        load_arch(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:")
    return message


def test_a_valid_file_loads_and_records_where_it_came_from(tmp_path, good):
    path = _write(tmp_path, good)
    spec = load_arch(str(path))
    assert spec.source == str(path) and (spec.rows, spec.cols) == (4, 4)


def test_unknown_top_level_key_is_named(tmp_path, good):
    good["colums"] = 4
    assert "field colums: unknown key" in _error(tmp_path, good)


def test_unknown_nested_key_is_named_with_its_path(tmp_path, good):
    good["pe"]["weight_bitz"] = 8
    assert "field pe.weight_bitz: unknown key" in _error(tmp_path, good)


def test_negative_bit_width_names_field_and_minimum(tmp_path, good):
    good["pe"]["weight_bits"] = -1
    assert "field pe.weight_bits: -1 is less than the minimum of 1" in _error(tmp_path, good)


@pytest.mark.parametrize(
    "section, key", [(None, "rows"), (None, "cols"), ("glb", "size_bytes"), ("glb", "banks"), ("pe", "psum_rf_words")]
)
def test_zero_size_is_rejected(tmp_path, good, section, key):
    (good[section] if section else good)[key] = 0
    field = f"{section}.{key}" if section else key
    assert f"field {field}: 0 is less than the minimum of 1" in _error(tmp_path, good)


def test_zero_dram_bandwidth_is_rejected(tmp_path, good):
    good["dram"]["bytes_per_cycle"] = 0
    assert "field dram.bytes_per_cycle:" in _error(tmp_path, good)


def test_wrong_type_is_named(tmp_path, good):
    good["glb"]["size_bytes"] = "lots"
    assert "field glb.size_bytes: expected an integer, got lots" in _error(tmp_path, good)


def test_a_missing_section_reads_as_yaml_null(tmp_path, good):
    good["pe"] = None
    assert "field pe: expected a mapping, got null" in _error(tmp_path, good)


@pytest.mark.parametrize("text", [".nan", ".inf"])
def test_a_non_finite_number_is_rejected(tmp_path, good, text):
    del good["clock_mhz"]
    message = _error(tmp_path, yaml.safe_dump(good) + f"clock_mhz: {text}\n")
    assert "field clock_mhz:" in message


def test_a_boolean_is_not_a_count(tmp_path, good):
    good["rows"] = True
    assert "field rows: expected an integer, got true" in _error(tmp_path, good)


def test_bad_dataflow_names_the_list_entry_and_the_choices(tmp_path, good):
    good["dataflows"] = ["ws", "is"]
    message = _error(tmp_path, good)
    assert "field dataflows[1]: 'is' is not one of: ws, os, rs" in message


def test_bad_noc_kind_lists_the_choices(tmp_path, good):
    good["noc"] = "mesh"
    assert "field noc: 'mesh' is not one of: systolic, multicast" in _error(tmp_path, good)


def test_missing_required_field_is_named(tmp_path, good):
    del good["glb"]["size_bytes"]
    assert "field glb.size_bytes: missing" in _error(tmp_path, good)


def test_unknown_energy_preset_is_named(tmp_path, good):
    good["energy"] = {"preset": "sram-7nm"}
    assert "field energy.preset: 'sram-7nm' is not one of: horowitz-45nm, eyeriss-65nm" in _error(tmp_path, good)


def test_several_problems_report_the_first_and_count_the_rest(tmp_path, good):
    good["rows"], good["cols"] = 0, 0
    assert "(and 1 more problem)" in _error(tmp_path, good)


def test_malformed_yaml_names_file_and_line(tmp_path):
    message = _error(tmp_path, "rows: 4\ncols: [4\npe: {}\n")
    assert "malformed YAML" in message and "line 3" in message


def test_duplicate_key_is_malformed(tmp_path, good):
    text = yaml.safe_dump(good) + "rows: 8\n"
    message = _error(tmp_path, text)
    assert "duplicate key 'rows'" in message


@pytest.mark.parametrize("text, kind", [("", "empty document"), ("- 1\n- 2\n", "list"), ("42\n", "int")])
def test_a_spec_must_be_a_mapping(tmp_path, text, kind):
    assert kind in _error(tmp_path, text)


def test_unknown_preset_lists_the_presets():
    with pytest.raises(SpecError) as info:
        load_arch("eyerissss")
    assert "unknown preset 'eyerissss'" in str(info.value)
    assert all(name in str(info.value) for name in preset_names())


def test_missing_file_is_named(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load_arch(str(tmp_path / "absent.yaml"))


def test_a_directory_is_not_a_spec(tmp_path):
    with pytest.raises(SpecError, match="directory"):
        load_arch(str(tmp_path))


def test_energy_override_applies_and_renames_the_table(tmp_path, good):
    good["energy"] = {"preset": "horowitz-45nm", "dram_pj": 2600}
    path = _write(tmp_path, good)
    table = load_arch(str(path)).energy
    assert table.dram_pj == 2600.0 and table.rf_pj == HOROWITZ_45NM.rf_pj
    assert table.name == "horowitz-45nm+dram_pj"
    assert str(path) in table.source and "dram_pj=2600" in table.source


def test_an_override_kept_under_the_presets_name_is_still_marked(tmp_path, good):
    good["energy"] = {"preset": "horowitz-45nm", "name": "horowitz-45nm", "glb_pj": 1.0}
    assert load_arch(str(_write(tmp_path, good))).energy.name == "horowitz-45nm+glb_pj"


def test_a_named_custom_table_keeps_its_name(tmp_path, good):
    good["energy"] = {"preset": "eyeriss-65nm", "name": "my-28nm", "source": "my measurements", "rf_pj": 0.5}
    table = load_arch(str(_write(tmp_path, good))).energy
    assert (table.name, table.source, table.rf_pj, table.noc_hop_pj) == ("my-28nm", "my measurements", 0.5, 2.0)


def test_restating_a_preset_value_is_not_an_override(tmp_path, good):
    good["energy"] = {"preset": "horowitz-45nm", "dram_pj": HOROWITZ_45NM.dram_pj}
    assert load_arch(str(_write(tmp_path, good))).energy == HOROWITZ_45NM


def test_optional_fields_take_the_documented_defaults(tmp_path, good):
    for key in ("name", "description", "clock_mhz", "noc", "dataflows", "pe"):
        del good[key]
    spec = load_arch(str(_write(tmp_path, good, "mine.yaml")))
    assert spec.name == "mine" and spec.clock_mhz == 200.0
    assert [d.value for d in spec.dataflows] == ["ws", "os"] and spec.pe.weight_bits == 8
