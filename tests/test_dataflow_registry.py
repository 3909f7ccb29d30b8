"""A dataflow is one module behind one interface: a toy defined here registers and simulates a zoo model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codesign.errors import MappingError
from dataflow import registry, search
from dataflow.blocking import DRAM_ORDERS
from dataflow.interface import DataflowModel, OnChip, ReferenceBlock
from dataflow.mapper import candidate_mappings
from dataflow.mapping import GEMM_DIMS, Mapping, check_fits, glb_bits_needed, problem_of
from sim.engine import run_mapping, simulate
from sim.reference import simulate_reference
from test_sim_factories import make_arch, small_arch, small_conv, small_gemm


class Broadcast(DataflowModel):
    """A toy: every PE owns one output of an output tile of ``pes`` outputs; each cycle one input column
    and one weight row are broadcast to all PEs. A block of bm x bk x bn takes
    ceil(bm * bn / pes) * bk cycles (times the wide-operand passes), with no fill or drain."""

    name = "toy"
    description = "broadcast: one output per PE, operands on a bus"

    @staticmethod
    def _block_cycles(problem, arch, bm, bk, bn):
        return -(-(bm * bn) // arch.pes) * bk * problem.passes

    def candidates(self, problem, arch, objective, limit):
        sizes = {"m": problem.m, "k": problem.k, "n": problem.n}
        blocks = search.grid({d: search.block_choices(sizes[d], 1) for d in GEMM_DIMS})
        keep = search.fits(problem, blocks, arch)
        if not keep.any():
            check_fits(problem, (1, 1, 1), arch)
            raise MappingError(f"layer {problem.name}: no mapping fits the global buffer")
        blocks = {d: v[keep] for d, v in blocks.items()}
        trips = [-(-sizes[d] // blocks[d]) for d in GEMM_DIMS]
        busy = (problem.groups * self._block_cycles(problem, arch, blocks["m"], blocks["k"], blocks["n"])
                * trips[0] * trips[1] * trips[2]).astype(np.float64)
        zeros = np.zeros(busy.shape)
        pool = []
        for order in DRAM_ORDERS:
            value, cycles = search.score(objective, problem, arch, blocks, order, busy, zeros, zeros)

            def build(i, order=order):
                block = tuple(int(blocks[d][i]) for d in GEMM_DIMS)
                return Mapping(dataflow=self.name, spatial_rows="M x N (outputs)", spatial_cols="M x N (outputs)",
                               dram_order=order, block=block, array_tile=block, onchip_order=("k",),
                               glb_footprint_bits=glb_bits_needed(problem, block))

            pool.append((value, cycles, build))
        return search.rank(objective, pool, limit)

    def onchip(self, problem, arch, mapping, sched):
        compute = self._block_cycles(problem, arch, sched.bm, sched.bk, sched.bn).astype(np.int64)
        ab, wb, acc = problem.activation_bits, problem.weight_bits, problem.accumulator_bits
        reads_back = sched.bm * sched.bn * (~sched.k_first)
        array_bits = (sched.bm * sched.bk * ab + sched.bk * sched.bn * wb
                      + (sched.bm * sched.bn + reads_back) * acc)
        words = {"glb": {}, "noc": {}, "rf": {}}
        dram = sched.dram_words
        words["glb"]["input"] = int((sched.bm * sched.bk).sum()) + dram["input"][0]
        words["glb"]["weight"] = int((sched.bk * sched.bn).sum()) + dram["weight"][0]
        words["glb"]["output"] = int((sched.bm * sched.bn + reads_back).sum()) + sum(dram["output"])
        for level in ("noc", "rf"):
            words[level] = {"input": problem.macs, "weight": problem.macs, "output": problem.macs}
        widths = {"input": ab, "weight": wb, "output": acc}
        bits = {level: {op: count * widths[op] for op, count in ops.items()} for level, ops in words.items()}
        return OnChip(compute=compute, glb_port_bits=array_bits + sched.load_bits + sched.write_bits,
                      words=words, bits=bits)

    def spatial_utilization(self, problem, arch, mapping):
        bm, _, bn = mapping.block
        return min(bm * bn, arch.pes) / arch.pes

    def reference_blocks(self, problem, mapping, arch, blocks):
        out = []
        for bm, bk, bn, k_first in blocks:
            cycles, left = 0, bm * bn
            while left > 0:  # one output tile of up to `pes` outputs after another
                left -= arch.pes
                for _ in range(bk * problem.passes):
                    cycles += 1
            words = {"input": bm * bk, "weight": bk * bn, "output": bm * bn * (1 if k_first else 2)}
            bits = (words["input"] * problem.activation_bits + words["weight"] * problem.weight_bits
                    + words["output"] * problem.accumulator_bits)
            out.append(ReferenceBlock(compute=cycles, glb_bits=bits, macs=bm * bk * bn, glb_words=words))
        return out


@pytest.fixture
def toy():
    model = registry.register(Broadcast())
    yield model
    registry.unregister(model.name)


def toy_arch(arch):
    return replace(arch, name=f"{arch.name}-toy", dataflows=tuple(arch.dataflows) + ("toy",))


def test_a_registered_dataflow_simulates_a_zoo_model(toy):
    from codesign.arch_loader import load_arch
    from codesign.capture import from_torch
    from codesign.zoo import build

    model, inputs = build("mobilenetv2-cifar")
    workload = from_torch(model, inputs, name="mobilenetv2-cifar")
    arch = toy_arch(load_arch("fpga-8x8"))
    result = simulate(workload, arch, "toy")
    assert result.dataflow == "toy"
    assert result.macs == sum(layer.macs for layer in workload.layers)
    array = [layer for layer in result.layers if layer.unit == "array"]
    assert array and all(layer.mapping["dataflow"] == "toy" for layer in array)
    assert result.cycles >= result.macs / arch.pes
    # Its own timing, not a built-in's: every array layer's compute is its broadcast formula, which no
    # systolic or row-stationary model produces for a depthwise conv's 9-long reduction.
    ws = simulate(workload, arch, "ws")
    assert result.compute_cycles != ws.compute_cycles


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer=st.one_of(small_conv(), small_gemm()), arch=small_arch(), pick=st.integers(0, 7))
def test_the_toy_fast_model_equals_the_per_cycle_reference(layer, arch, pick):
    model = registry.register(Broadcast(), replace=True)
    try:
        arch = toy_arch(arch)
        problem = problem_of(layer, arch)
        try:
            mappings = candidate_mappings(problem, arch, "toy", limit=8)
        except MappingError:
            return
        mapping = mappings[pick % len(mappings)]
        fast, slow = run_mapping(problem, mapping, arch).timeline, simulate_reference(problem, mapping, arch)
        assert (fast.cycles, fast.compute_cycles, fast.glb_stall_cycles, fast.dram_stall_cycles) == (
            slow.cycles, slow.compute_cycles, slow.glb_stall_cycles, slow.dram_stall_cycles)
        assert slow.macs == problem.macs
    finally:
        registry.unregister(model.name)


def test_the_built_ins_are_registered_in_order():
    assert registry.names()[:3] == ("ws", "os", "rs")


def test_an_accelerator_that_does_not_list_a_registered_dataflow_refuses_it(toy):
    from test_sim_factories import conv_layer, workload

    with pytest.raises(MappingError, match="does not support dataflow toy"):
        simulate(workload(conv_layer()), make_arch(), "toy")


def test_an_unknown_dataflow_names_the_registered_ones():
    from test_sim_factories import conv_layer, workload

    with pytest.raises(MappingError, match=r"unknown dataflow 'xs'; choose one of ws, os, rs"):
        simulate(workload(conv_layer()), make_arch(), "xs")


def test_a_taken_name_is_not_silently_replaced():
    class Impostor(Broadcast):
        name = "ws"

    with pytest.raises(ValueError, match="dataflow 'ws' is already registered"):
        registry.register(Impostor())
    assert registry.get("ws") is not None and not isinstance(registry.get("ws"), Impostor)


def test_the_engine_and_the_mapper_name_no_dataflow():
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    for path in ("sim/engine.py", "dataflow/mapper.py"):
        text = (root / path).read_text()
        for name in ("Dataflow.", "ROW_STATIONARY", "WEIGHT_STATIONARY", "OUTPUT_STATIONARY", '"ws"', '"os"', '"rs"',
                     "row_stationary", "weight_stationary", "output_stationary", "systolic"):
            assert name not in text, f"{path} names {name}"


def test_dataflow_and_hdl_import_nothing_from_sim():
    import ast
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    for package in ("dataflow", "hdl"):
        for path in (root / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                for name in names:
                    assert name != "sim" and not name.startswith("sim."), f"{path.relative_to(root)} imports {name}"


def test_the_toy_mapping_is_reported_like_any_other(toy):
    from test_sim_factories import conv_layer, workload

    result = simulate(workload(conv_layer()), toy_arch(make_arch()), "toy").layers[0]
    assert result.mapping["dataflow"] == "toy" and "rf" not in result.mapping
    assert set(result.mapping) == {"dataflow", "spatial", "temporal_order", "tiles", "glb_bytes"}
    bm, _, bn = (result.mapping["tiles"]["glb"][d] for d in "mkn")
    assert result.spatial_utilization == min(bm * bn, 16) / 16


def test_binarized_layers_run_on_the_binary_array_and_the_rest_on_the_main_one(toy):
    from codesign.arch import BinaryArraySpec
    from codesign.workload import Bits
    from test_sim_factories import conv_layer, gemm_layer, workload

    arch = replace(make_arch(), binary_array=BinaryArraySpec(rows=2, cols=3, word_bits=16, dataflow="toy"))
    layers = [conv_layer(name="int8", k=8, c=8), gemm_layer(name="binary", m=4, k=64, n=8, bits=Bits(1, 1, 16))]
    result = simulate(workload(*layers), arch, "ws")
    placed = {layer.name: layer.dataflow for layer in result.layers}
    assert placed == {"int8": "ws", "binary": "toy"}
    # The toy times the binary layer on the binary array's 2 x 3 PEs, not the main array's 4 x 4.
    binary = result.layers[1]
    assert binary.spatial_utilization == min(4 * 8, 6) / 6
    alone = simulate(workload(*layers), make_arch(), "ws").layers[1]
    assert alone.dataflow == "ws" and any(note.startswith("packed lanes: binarized layer") for note in alone.notes)
