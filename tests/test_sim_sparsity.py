"""The accelerator's sparsity model: formats shrink traffic by their real size, gating saves energy only,
skipping saves cycles only where the dataflow can."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codesign.sparsity import OperandSparsity, SparsitySpec, StorageFormat, ZeroAction, stored_bits
from dataflow.blocking import block_schedule
from dataflow.mapping import problem_of
from sim.engine import simulate
from test_sim_factories import conv_layer, gemm_layer, make_arch, workload


def _sparse_gemm(m, k, n, nonzeros, **kwargs):
    layer = gemm_layer(m=m, k=k, n=n, **kwargs)
    return replace(layer, weight_density=nonzeros / (k * n), effective_macs=nonzeros * m)


def _arch(weights=None, activations=None, **kwargs):
    spec = SparsitySpec(weights=weights or SparsitySpec().weights, activations=activations or OperandSparsity())
    return make_arch(sparsity=spec, **kwargs)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=st.integers(1, 8), k=st.integers(1, 24), n=st.integers(1, 12), share=st.floats(0, 1),
       fmt=st.sampled_from(list(StorageFormat)), meta=st.integers(1, 8), wbits=st.sampled_from([2, 4, 8]))
def test_compressed_weight_traffic_equals_the_formats_size(m, k, n, share, fmt, meta, wbits):
    from codesign.workload import Bits

    nonzeros = max(1, round(share * k * n))  # (an all-zero layer keeps one weight: test_sim_monotone_zeros)
    meta = meta if fmt in (StorageFormat.RUN_LENGTH, StorageFormat.COORDINATE_LIST) else 0
    arch = _arch(weights=OperandSparsity(format=fmt, metadata_bits=meta, levels=("dram",), action=ZeroAction.GATE))
    problem = problem_of(_sparse_gemm(m, k, n, nonzeros, bits=Bits(weight=wbits, activation=8)), arch)
    # One block holding the whole layer: the weights cross the DRAM channel exactly once.
    sched = block_schedule(problem, (m, k, n), ("m", "k", "n"))
    assert sched.dram_bits["weight"][0] == stored_bits(fmt, k * n, nonzeros, wbits, meta)


def test_the_size_formulas():
    assert stored_bits(StorageFormat.DENSE, 16, 4, 8) == 128
    assert stored_bits(StorageFormat.BITMASK, 16, 4, 8) == 4 * 8 + 16
    assert stored_bits(StorageFormat.COORDINATE_LIST, 16, 4, 8, 4) == 4 * (8 + 4)
    # 12 zeros with 2-bit run counts: runs of at most 3 zeros, so 12 // 4 = 3 more entries than nonzeros.
    assert stored_bits(StorageFormat.RUN_LENGTH, 16, 4, 8, 2) == (4 + 3) * (8 + 2)


def test_a_format_applied_in_the_glb_shrinks_the_blocks_footprint():
    layer = _sparse_gemm(8, 64, 16, 64)
    off_chip = problem_of(layer, _arch(weights=OperandSparsity(format="bitmask", levels=("dram",), action="gate")))
    on_chip = problem_of(layer, _arch(weights=OperandSparsity(format="bitmask", levels=("dram", "glb"), action="gate")))
    from dataflow.mapping import glb_bits_needed

    block = (8, 64, 16)
    dense_weights = 64 * 16 * 8
    assert glb_bits_needed(off_chip, block) - glb_bits_needed(on_chip, block) == 2 * (
        dense_weights - stored_bits(StorageFormat.BITMASK, 64 * 16, 64, 8))


@pytest.mark.parametrize("flow", ["ws", "os", "rs"])
def test_gating_saves_energy_but_no_cycles(flow):
    layer = conv_layer(k=8, c=8, density=0.25)
    computed = simulate(workload(layer), _arch(weights=OperandSparsity(action="none")), flow).layers[0]
    gated = simulate(workload(layer), _arch(weights=OperandSparsity(action="gate")), flow).layers[0]
    assert gated.cycles == computed.cycles
    assert gated.energy_pj["mac"] == pytest.approx(computed.energy_pj["mac"] * 0.25, rel=1e-3)


def test_row_stationary_skips_zero_weights_only_when_told_to():
    layer = conv_layer(k=8, c=8, density=0.25)
    gated = simulate(workload(layer), _arch(weights=OperandSparsity(action="gate")), "rs").layers[0]
    skipped = simulate(workload(layer), _arch(weights=OperandSparsity(action="skip")), "rs").layers[0]
    assert skipped.compute_cycles < gated.compute_cycles
    assert skipped.energy_pj["mac"] == gated.energy_pj["mac"]


@pytest.mark.parametrize("flow", ["ws", "os"])
def test_a_systolic_array_cannot_skip_unstructured_zeros(flow):
    layer = conv_layer(k=8, c=8, density=0.25)
    gated = simulate(workload(layer), _arch(weights=OperandSparsity(action="gate")), flow).layers[0]
    skipped = simulate(workload(layer), _arch(weights=OperandSparsity(action="skip")), flow).layers[0]
    assert skipped.cycles == gated.cycles


def test_what_the_zeros_saved_is_reported_against_the_dense_layer():
    arch = _arch(weights=OperandSparsity(format="bitmask", action="skip"))
    dense = simulate(workload(conv_layer(k=8, c=8)), arch, "rs").layers[0]
    sparse = simulate(workload(conv_layer(k=8, c=8, density=0.25)), arch, "rs").layers[0]
    saved = sparse.zero_savings
    assert saved["skipped_cycles"] == dense.cycles - sparse.cycles > 0
    assert saved["gated_energy_pj"] == pytest.approx(dense.energy_pj["mac"] - sparse.energy_pj["mac"])
    assert saved["compressed_dram_bytes"] == dense.dram_bytes - sparse.dram_bytes > 0
    assert dict(dense.zero_savings) == {"skipped_cycles": 0, "gated_energy_pj": 0.0, "compressed_dram_bytes": 0,
                                        "energy_pj": 0.0}


def test_a_spec_without_a_sparsity_section_keeps_the_default_behaviour():
    from codesign.arch_loader import load_arch

    for preset in ("fpga-8x8", "tpu-like"):
        assert load_arch(preset).sparsity == SparsitySpec()


@pytest.mark.parametrize("block,message", [
    ("weights: {format: zip}", "field sparsity.weights.format: 'zip' is not one of"),
    ("weights: {action: drop}", "field sparsity.weights.action: 'drop' is not one of"),
    ("activations: {format: run_length}", "field sparsity.activations: a run_length format needs metadata_bits"),
    ("activations: {format: bitmask, metadata_bits: 3}", "a bitmask format takes no metadata_bits"),
    ("weights: {levels: [dram, l2]}", "field sparsity.weights.levels"),
])
def test_a_malformed_sparsity_section_is_one_line_and_exit_2(tmp_path, capsys, block, message):
    import yaml

    from codesign.arch_loader import arch_to_dict, load_arch
    from codesign.cli import main

    spec = arch_to_dict(load_arch("fpga-4x4"))
    spec["sparsity"] = yaml.safe_load("{" + block + "}")
    path = tmp_path / "sparse.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["arch", "show", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
