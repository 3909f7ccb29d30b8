"""Every bundled preset loads, round-trips through YAML, and has the published shape it claims."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import codesign
from codesign.arch import Dataflow, NocKind
from codesign.arch_loader import arch_from_dict, arch_to_dict, arch_to_yaml, load_arch, preset_names, preset_yaml
from codesign.errors import SpecError

KIB = 1024
FPGA = ["fpga-4x4", "fpga-8x8", "fpga-16x16"]


def test_the_promised_presets_are_bundled():
    assert {"eyeriss", "tpu-like", "shidiannao-like", *FPGA} <= set(preset_names())


@pytest.mark.parametrize("name", preset_names())
def test_preset_loads_under_its_own_name(name):
    spec = load_arch(name)
    assert spec.name == name and spec.source == name and spec.description


@pytest.mark.parametrize("name", preset_names())
def test_preset_round_trips_through_yaml_text(name, tmp_path):
    spec = load_arch(name)
    path = tmp_path / f"{name}.yaml"
    path.write_text(arch_to_yaml(spec), encoding="utf-8")
    assert load_arch(str(path)) == dataclasses.replace(spec, source=str(path))


@pytest.mark.parametrize("name", preset_names())
def test_preset_text_is_the_spec_it_loads_as(name):
    data = yaml.safe_load(preset_yaml(name))
    assert arch_from_dict(data, origin=name) == load_arch(name)


def test_unknown_preset_text_is_a_spec_error():
    with pytest.raises(SpecError, match="unknown preset"):
        preset_yaml("nope")


def test_package_front_door_loads_presets():
    assert codesign.load_arch("eyeriss") == load_arch("eyeriss")


def test_eyeriss_is_the_isca_2016_chip():
    spec = load_arch("eyeriss")
    assert (spec.rows, spec.cols) == (12, 14)
    assert spec.dataflows == (Dataflow.ROW_STATIONARY,)
    assert spec.glb.size_bytes == 108 * KIB
    assert spec.noc is NocKind.MULTICAST
    assert spec.clock_mhz == 200.0
    assert spec.energy.name == "eyeriss-65nm"
    # 0.5 KB of 16-bit scratchpads per PE
    words = spec.pe.weight_rf_words + spec.pe.activation_rf_words + spec.pe.psum_rf_words
    assert words * 16 / 8 == pytest.approx(512, rel=0.05)


def test_tpu_like_is_a_large_weight_stationary_systolic_int8_array():
    spec = load_arch("tpu-like")
    assert spec.pes >= 32 * 32 and spec.dataflows == (Dataflow.WEIGHT_STATIONARY,)
    assert spec.noc is NocKind.SYSTOLIC and (spec.pe.weight_bits, spec.pe.activation_bits) == (8, 8)
    assert spec.energy.name == "horowitz-45nm"


def test_shidiannao_like_is_8x8_output_stationary():
    spec = load_arch("shidiannao-like")
    assert (spec.rows, spec.cols, spec.dataflows) == (8, 8, (Dataflow.OUTPUT_STATIONARY,))


# A Lattice ECP5-85F has 156 MULT18X18D blocks (each splits into two 9x9 multipliers) and 208
# 18-Kbit EBRs (2 KiB of 8-bit data each): the FPGA presets must fit it.
ECP5_85F_9X9_MULTIPLIERS = 156 * 2
ECP5_85F_EBR_BYTES = 208 * 2 * KIB


@pytest.mark.parametrize("name", FPGA)
def test_fpga_preset_is_a_buildable_int8_systolic_array(name):
    spec = load_arch(name)
    n = int(name.split("x")[-1])
    assert (spec.rows, spec.cols) == (n, n)
    assert (spec.pe.weight_bits, spec.pe.activation_bits, spec.pe.accumulator_bits) == (8, 8, 32)
    assert set(spec.dataflows) == {Dataflow.WEIGHT_STATIONARY, Dataflow.OUTPUT_STATIONARY}
    assert spec.noc is NocKind.SYSTOLIC
    assert spec.pes <= ECP5_85F_9X9_MULTIPLIERS
    assert spec.glb.size_bytes <= ECP5_85F_EBR_BYTES
    assert spec.clock_mhz <= 100.0


def test_fpga_4x4_runs_at_the_measured_ecp5_clock():
    assert load_arch("fpga-4x4").clock_mhz == 95.0


def test_fpga_presets_grow_in_array_and_buffer():
    specs = [load_arch(name) for name in FPGA]
    assert [s.pes for s in specs] == sorted(s.pes for s in specs)
    assert [s.glb.size_bytes for s in specs] == sorted(s.glb.size_bytes for s in specs)


# Any valid spec survives arch_to_dict -> arch_from_dict unchanged.
positive = st.integers(min_value=1, max_value=1 << 20)
specs = st.fixed_dictionaries(
    {
        "rows": st.integers(1, 4096),
        "cols": st.integers(1, 4096),
        "glb": st.fixed_dictionaries({"size_bytes": positive}, optional={"banks": positive, "word_bits": positive}),
        "dram": st.fixed_dictionaries(
            {"bytes_per_cycle": st.floats(0.01, 1e4)}, optional={"latency_cycles": st.integers(0, 10_000)}
        ),
        "energy": st.fixed_dictionaries(
            {"preset": st.sampled_from(["horowitz-45nm", "eyeriss-65nm"])},
            optional={"dram_pj": st.floats(0, 1e4), "access_bits": st.integers(1, 512)},
        ),
    },
    optional={
        "clock_mhz": st.floats(0.5, 5000),
        "noc": st.sampled_from(["systolic", "multicast"]),
        "dataflows": st.lists(st.sampled_from(["ws", "os", "rs"]), min_size=1, max_size=3, unique=True),
        "pe": st.fixed_dictionaries({}, optional={"weight_bits": st.integers(1, 32), "psum_rf_words": positive}),
    },
)


@settings(max_examples=60, deadline=None)
@given(specs)
def test_any_valid_spec_round_trips(data):
    spec = arch_from_dict(data, origin="generated")
    assert arch_from_dict(arch_to_dict(spec), origin="generated") == spec
