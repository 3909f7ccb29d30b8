"""The compiled program on the executor: bit-exact against the integer reference on the three networks under
WS and OS on fpga-8x8, timed as the schedule predicts; corrupted programs and images are caught."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codesign.arch_loader import load_arch
from codesign.compiler.build import compile_model, run_compiled
from codesign.compiler.executor import ExecutionError
from codesign.contract.isa import EncodingError, GatherMode, Instruction, Op, Reg, encode_program
from codesign.integer.reference import quantize_input, run_reference
from codesign.zoo.system_nets import NETS

CASES = [(name, flow) for name in NETS for flow in ("ws", "os")]
_CACHE: dict = {}


def compiled(name: str, flow: str):
    if (name, flow) not in _CACHE:
        model, example = NETS[name]()
        _CACHE[(name, flow)] = compile_model(model, example, load_arch("fpga-8x8"), flow, reestimate_bn=True)
    return _CACHE[(name, flow)]


def codes_for(result, seed: int = 0):
    shape = result.net.graph.shapes[result.net.input_name]
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).numpy()
    return quantize_input(result.net, x)


def reference_output(result, codes):
    return run_reference(result.net, codes)[result.net.output_name]


@pytest.mark.parametrize("name,flow", CASES)
def test_the_program_computes_the_integer_reference_bit_for_bit(name, flow):
    result = compiled(name, flow)
    for seed in (0, 1):
        codes = codes_for(result, seed)
        output, execution = run_compiled(result, codes)
        assert np.array_equal(output, reference_output(result, codes).reshape(output.shape))
        assert execution.cycles == result.schedule.total_cycles
        assert execution.issue == result.schedule.issue


def test_the_program_follows_the_simulators_mappings():
    result = compiled("resnet", "ws")
    sim = {layer.name: layer for layer in result.sim.layers}
    macs = [layer for layer in result.program.layers if layer["kind"] == "mac"]
    assert macs
    for record in macs:
        tiles = sim[record["name"]].mapping["tiles"]
        assert record["mapping"]["glb_block"] == [tiles["glb"][d] for d in "mkn"]
        assert record["mapping"]["array_tile"] == [tiles["array"][d] for d in "mkn"]
        assert record["layers"] == [record["name"], *sim[record["name"]].fused]


def test_a_corrupted_weight_image_changes_the_output():
    result = compiled("lut", "ws")
    codes = codes_for(result)
    expected = reference_output(result, codes)
    record = next(layer for layer in result.program.layers if layer["kind"] == "mac")
    image = bytearray(result.program.weights)
    image[record["parameters_offset"] + PARAM_BIAS_BYTE] ^= 0x40  # bias of output channel 0 of the first conv
    output, _ = run_compiled(result, codes, weights=bytes(image))
    assert not np.array_equal(output, expected.reshape(output.shape))
    weights = bytearray(result.program.weights)
    first_load = next(ins for ins in result.program.instructions if ins.op is Op.LOAD and "weights" in ins.note)
    weights[first_load["dram_addr"]] ^= 0x80  # one weight of the first conv
    output, _ = run_compiled(result, codes, weights=bytes(weights))
    assert not np.array_equal(output, expected.reshape(output.shape))


PARAM_BIAS_BYTE = 3  # the bias's most significant byte (little-endian int32)


@pytest.mark.parametrize("op", [Op.MATMUL, Op.GATHER, Op.WRITEBACK, Op.STORE, Op.LOADP])
def test_a_dropped_instruction_makes_the_run_fail_or_differ(op):
    result = compiled("lut", "os")
    codes = codes_for(result)
    expected = reference_output(result, codes)
    instructions = list(result.program.instructions)
    index = max(i for i, ins in enumerate(instructions) if ins.op is op and (op is not Op.MATMUL or ins["out"]))
    del instructions[index]
    try:
        output, _ = run_compiled(result, codes, binary=encode_program(instructions))
    except (ExecutionError, EncodingError):
        return
    assert not np.array_equal(output, expected.reshape(output.shape))


def test_a_missing_sync_between_dma_and_execute_is_a_hazard():
    result = compiled("lut", "ws")
    codes = codes_for(result)
    instructions = list(result.program.instructions)
    # the SYNC that waits for the first conv's parameters and GELU table before the output path reads them
    index = next(i for i, ins in enumerate(instructions) if ins.op is Op.SYNC and ins.note == "parameters loaded")
    del instructions[index]
    with pytest.raises(ExecutionError, match="error code 6"):
        run_compiled(result, codes, binary=encode_program(instructions))


def test_an_illegal_tile_stops_with_its_error_code():
    result = compiled("lut", "ws")
    codes = codes_for(result)
    bad = [Instruction(Op.GATHER, {"slot": 0, "mode": int(GatherMode.IM2COL_WS), "count": 9, "lanes": 8}),
           Instruction(Op.MATMUL, {"m": 9, "k": 9, "n": 8}), Instruction(Op.END)]
    with pytest.raises(ExecutionError, match="tile k=9 above the ws core's 8"):
        run_compiled(result, codes, binary=encode_program(bad))
    wide = [Instruction(Op.GATHER, {"slot": 0, "mode": int(GatherMode.IM2COL_WS), "count": 9, "lanes": 9}),
            Instruction(Op.END)]
    with pytest.raises(ExecutionError, match="9 lanes; a staging row holds 8 .error code 5"):
        run_compiled(result, codes, binary=encode_program(wide))
    unset = [Instruction(Op.SET, {"reg": 99, "value": 1}), Instruction(Op.END)]
    with pytest.raises(ExecutionError, match="no configuration register 99"):
        run_compiled(result, codes, binary=encode_program(unset))
    assert Reg.VSHIFT == 28
