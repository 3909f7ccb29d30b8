"""The GLB allocation (``glb.allocation``: double_buffered | split with ``filter_bytes``) and the run-length
options ``word_bits`` (packing) and ``compress_network_input`` (docs/arch-yaml.md; docs/simulator.md section 6
and "Sparsity"; Eyeriss, JSSC 2017 Sec. IV-B, V-A, VI-A)."""

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from codesign.arch import BufferSpec
from codesign.arch_loader import arch_from_dict, arch_to_dict, load_arch
from codesign.capture import from_torch
from codesign.contract.memory import read_cycles, write_cycles
from codesign.errors import SpecError
from codesign.sparsity import OperandSparsity, SparsitySpec, stored_bits
from dataflow import search
from dataflow.blocking import block_schedule, dram_bits_closed_form, trips
from dataflow.mapping import glb_bits_needed, input_words, problem_of
from sim.engine import network_input_layers, simulate
from sim.memory import double_buffered, split_buffered

ROOT = Path(__file__).resolve().parents[1]
SPEC = {"name": "t", "rows": 4, "cols": 4, "dataflows": ["ws", "os", "rs"],
        "glb": {"size_bytes": 65536}, "dram": {"bytes_per_cycle": 4, "latency_cycles": 10},
        "energy": {"preset": "horowitz-45nm"}}


def spec(**glb):
    data = yaml.safe_load(yaml.safe_dump(SPEC))
    data["glb"].update(glb)
    return data


@pytest.fixture(scope="module")
def conv():
    """A conv layer and its ReLU captured at 16 bits, the conv reading the network's input."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1)).eval()
    return from_torch(model, (torch.randn(2, 3, 16, 16),), name="two_convs")


def test_the_eyeriss_preset_holds_the_chips_allocation_and_rlc():
    arch = load_arch("eyeriss")
    assert (arch.glb.allocation, arch.glb.filter_bytes) == ("split", 8192)
    assert arch.sparsity.activations.word_bits == 64
    assert arch.sparsity.activations.compress_network_input is False


def test_a_spec_without_an_allocation_is_double_buffered_and_writes_none_back():
    arch = arch_from_dict(spec())
    assert (arch.glb.allocation, arch.glb.filter_bytes) == ("double_buffered", 0)
    assert set(arch_to_dict(arch)["glb"]) == {"size_bytes", "banks", "words_per_cycle", "word_bits"}


def test_a_split_allocation_round_trips_through_the_loader():
    arch = arch_from_dict(spec(allocation="split", filter_bytes=4096))
    assert arch_from_dict(arch_to_dict(arch)) == arch


@pytest.mark.parametrize("glb,message", [
    ({"allocation": "halves"}, "field glb.allocation: 'halves' is not one of: double_buffered, split"),
    ({"allocation": "split"}, "field glb.filter_bytes: a split allocation needs a filter share of 1 to 65535"),
    ({"allocation": "split", "filter_bytes": 65536}, "field glb.filter_bytes: a split allocation needs"),
    ({"filter_bytes": 8}, "field glb.filter_bytes: only a split allocation has a filter share"),
    ({"allocation": "split", "filter_bytes": "8k"}, "field glb.filter_bytes"),
])
def test_a_bad_allocation_is_one_spec_error_line(glb, message):
    with pytest.raises(SpecError) as info:
        arch_from_dict(spec(**glb), origin="t.yaml")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_bad_allocation_exits_2_from_the_cli(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec(allocation="split")), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "codesign", "arch", "show", str(path)], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "glb.filter_bytes" in done.stderr


def test_double_buffered_block_needs_two_copies_of_input_filters_and_psums(conv):
    problem = problem_of(conv.layers[0], arch_from_dict(spec()))
    bm, bk, bn = 64, 27, 8
    one = (input_words(problem, bm * bk) * problem.activation_bits + bk * bn * problem.weight_bits
           + bm * bn * problem.accumulator_bits)
    assert glb_bits_needed(problem, (bm, bk, bn)) == 2 * one


def test_split_block_needs_one_copy_of_input_and_psums_plus_the_filter_share(conv):
    problem = problem_of(conv.layers[0], arch_from_dict(spec(allocation="split", filter_bytes=1024)))
    bm, bk = 64, 27
    for bn in (4, 16):  # the filters take no block room: only the psums grow with bn
        assert glb_bits_needed(problem, (bm, bk, bn)) == (
            input_words(problem, bm * bk) * problem.activation_bits + bm * bn * problem.accumulator_bits + 1024 * 8)


def test_split_fit_admits_blocks_double_buffering_refuses(conv):
    problem_db = problem_of(conv.layers[0], arch_from_dict(spec()))
    arch = arch_from_dict(spec(allocation="split", filter_bytes=1024))
    problem = problem_of(conv.layers[0], arch)
    blocks = {"m": np.array([512]), "k": np.array([27]), "n": np.array([16])}
    assert not search.fits(problem_db, blocks, arch_from_dict(spec()))[0]
    assert search.fits(problem, blocks, arch)[0]


def test_split_glb_reads_every_blocks_filters(conv):
    problem = problem_of(conv.layers[2], arch_from_dict(spec(allocation="split", filter_bytes=1024)))
    block, order = (128, problem.k, 8), ("n", "m", "k")  # m inside n: double-buffered keeps each filter block
    sched = block_schedule(problem, block, order)
    t = trips(problem, block)
    assert sched.dram_words["weight"][0] == problem.groups * problem.k * problem.n * t["m"]
    assert int(sched.weight_load_bits.sum()) == sched.dram_bits["weight"][0]
    assert dram_bits_closed_form(problem, block, order) == sum(sum(v) for v in sched.dram_bits.values())
    kept = block_schedule(replace(problem, glb_allocation="double_buffered", glb_filter_bits=0), block, order)
    assert kept.dram_words["weight"][0] == problem.k * problem.n


def test_split_timeline_serializes_fills_and_drains_and_streams_filters():
    arch = arch_from_dict(spec(allocation="split", filter_bytes=1024))
    compute = np.array([100, 100, 100])
    loads, filters, writes = np.array([800, 320, 640]), np.array([320, 320, 0]), np.array([0, 160, 480])
    line = split_buffered(compute, np.zeros(3), loads, filters, writes, arch)
    fill, stream, drain = read_cycles(loads - filters, arch), read_cycles(filters, arch), write_cycles(writes, arch)
    assert line.cycles == int((fill + np.maximum(compute, stream) + drain).sum())
    # 32 bits a cycle, 10 cycles to a read's first bit: per block fill + max(compute, filters) + drain
    assert line.cycles == ((10 + 480 // 32) + 100 + 0) + (0 + 100 + 160 // 32) + ((10 + 640 // 32) + 100 + 480 // 32)
    assert line.dram_stall_cycles == line.cycles - 300
    assert line.cycles > double_buffered(compute, np.zeros(3), loads, writes, arch).cycles


def test_split_estimate_adds_the_serialized_transfers_to_compute(conv):
    arch = arch_from_dict(spec(allocation="split", filter_bytes=1024))
    problem = problem_of(conv.layers[2], arch)
    blocks = {"m": np.array([128]), "k": np.array([problem.k]), "n": np.array([8])}
    order = ("n", "m", "k")
    busy = np.array([10_000.0])
    zeros = np.zeros(1)
    _, cycles = search.score("latency", problem, arch, blocks, order, busy, zeros, zeros)
    dram = float(search._dram_bits(problem, blocks, order)[0])
    weights = problem.groups * problem.k * problem.n * -(-problem.m // 128) * problem.weight_bits  # per m block
    assert cycles[0] == pytest.approx(max(10_000, weights / 32) + (dram - weights) / 32 + 10)


def test_split_run_of_a_layer_is_slower_by_its_serialized_transfers(conv):
    layer_work = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1)).eval()
    workload = from_torch(layer_work, (torch.randn(2, 16, 16, 16),), name="one_conv")
    db = simulate(workload, arch_from_dict(spec()), "ws", fuse=False, onchip_activations=False)
    split = simulate(workload, arch_from_dict(spec(allocation="split", filter_bytes=1024)), "ws", fuse=False,
                     onchip_activations=False)
    layer = split.layers[0]
    assert layer.cycles == layer.compute_cycles + layer.glb_stall_cycles + layer.dram_stall_cycles
    assert split.cycles > db.cycles


def test_packed_run_length_puts_whole_entries_in_words():
    assert stored_bits("run_length", 100, 50, 16, 5, word_bits=64) == -(-(50 + 50 // 32) // 3) * 64  # 3 per word
    assert stored_bits("run_length", 100, 50, 16, 5) == (50 + 1) * 21
    assert stored_bits("coordinate_list", 10, 7, 8, 4, word_bits=32) == 4 * 32  # 7 12-bit entries, 2 per word


def test_packing_is_for_run_length_and_coordinate_list_only():
    with pytest.raises(SpecError, match="bitmask format packs no entries"):
        OperandSparsity(format="bitmask", word_bits=64)
    with pytest.raises(SpecError, match="word_bits"):
        arch_from_dict({**spec(), "sparsity": {"activations": {"format": "dense", "word_bits": 64}}})


def test_compress_network_input_is_for_activations_and_a_boolean():
    with pytest.raises(SpecError, match="field sparsity.weights.compress_network_input: unknown key"):
        arch_from_dict({**spec(), "sparsity": {"weights": {"compress_network_input": False}}})
    with pytest.raises(SpecError, match="activations only"):
        SparsitySpec(weights=OperandSparsity(compress_network_input=False))
    with pytest.raises(SpecError, match="compress_network_input"):
        arch_from_dict({**spec(), "sparsity": {"activations": {"compress_network_input": "no"}}})


def test_the_network_input_is_stored_dense_when_asked(conv):
    rlc = {"format": "run_length", "metadata_bits": 5, "levels": ["dram"]}
    coded = arch_from_dict({**spec(), "sparsity": {"activations": rlc}})
    dense_input = arch_from_dict({**spec(), "sparsity": {"activations": {**rlc, "compress_network_input": False}}})
    first = conv.layers[0]
    assert network_input_layers(conv, dense_input) == {first.name}
    assert network_input_layers(conv, coded) == frozenset()
    assert problem_of(first, dense_input, network_input=True).stored_bits("input", "dram", 16_000) == 16_000
    assert problem_of(first, coded, network_input=True).stored_bits("input", "dram", 16_000) != 16_000
    # the output of the same layer, and the second conv's input, stay coded
    assert problem_of(first, dense_input, network_input=True).stored_bits("output", "dram", 16_000) != 16_000
    ran = simulate(conv, dense_input, "ws", fuse=False, onchip_activations=False)
    moved = {layer.name: layer for layer in ran.layers}
    assert moved[first.name].bits_moved["dram"]["input"] == (moved[first.name].accesses["dram"]["input"]
                                                              * first.bits.activation)


def test_buffer_spec_checks_its_allocation_itself():
    with pytest.raises(SpecError, match="glb.allocation"):
        BufferSpec(size_bytes=1024, allocation="triple")
    assert BufferSpec(size_bytes=1024, allocation="split", filter_bytes=256).block_bits == 768 * 8


def test_the_per_cycle_reference_refuses_a_split_glb(conv):
    from dataflow.mapper import candidate_mappings
    from sim.reference import simulate_reference

    arch = arch_from_dict(spec(allocation="split", filter_bytes=1024))
    problem = problem_of(conv.layers[2], arch)
    mapping = candidate_mappings(problem, arch, "ws", "latency")[0]
    with pytest.raises(ValueError, match="double-buffered GLB only"):
        simulate_reference(problem, mapping, arch)
