"""``compile_model``: a PyTorch model to a program for the generated system, from one schedule.

The model is calibrated as the accuracy proxy calibrates it, captured, and simulated once (``sim.engine.simulate``);
the simulator's mappings, tiling, fusion and residency are then both its cycle prediction and the program's
schedule. ``run_compiled`` runs the binary program on the executor for one input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from codesign.arch import ArchSpec
from codesign.compiler.executor import Execution, run_program
from codesign.contract.isa import encode_program
from codesign.compiler.program import DEFAULT_ACC_ROWS, Buffer, Program, compile_net
from codesign.contract.system_timing import Schedule, Target, schedule
from codesign.errors import BitWidthError, MappingError
from codesign.integer.model import QuantizedNet
from codesign.integer.scheme import QMIN

__all__ = ["Compiled", "compile_model", "check_system_bits", "input_image", "read_output", "dram_image",
           "run_compiled", "SYSTEM_BITS"]

SYSTEM_BITS = 8


@dataclass
class Compiled:
    """Everything a compilation produced: the program, its binary, the integer network it computes, the
    simulator's result it follows, its timing, and the calibrated float model it came from."""

    program: Program
    binary: bytes
    net: QuantizedNet
    sim: Any
    schedule: Schedule
    target: Target
    prepared: Any


def check_system_bits(arch: ArchSpec, bits: Any = None) -> None:
    """BitWidthError unless the system runs int8 x int8 into a 32-bit accumulator and ``bits`` (W, A or None) is 8."""
    pe = arch.pe
    if bits is not None:
        weight, activation = bits
        if (weight, activation) != (SYSTEM_BITS, SYSTEM_BITS):
            raise BitWidthError(f"bit-widths {weight},{activation}: the system is built for int8 weights and "
                                f"activations (--bits 8)")
    if (pe.weight_bits, pe.activation_bits) != (SYSTEM_BITS, SYSTEM_BITS) or pe.kind.value != "int_mac":
        raise BitWidthError(f"{arch.name} has {pe.weight_bits}x{pe.activation_bits}-bit {pe.kind.value} PEs; the "
                            "system runs int8 x int8 integer MACs (an arch with pe.weight_bits = "
                            "pe.activation_bits = 8)")
    if not (pe.weight_signed and pe.activation_signed):
        raise BitWidthError(f"{arch.name} has unsigned operands; the system's int8 codes are two's complement")
    if pe.accumulator_bits < 32:
        raise BitWidthError(f"{arch.name} accumulates in {pe.accumulator_bits} bits; the system needs 32")


def compile_model(model: Any, example_inputs: Any, arch: ArchSpec, dataflow: str, *, calibration: Any = 16,
                  seed: int = 0, clipping: Any = "mse", reestimate_bn: bool = False, bits: Any = None,
                  acc_rows: int = DEFAULT_ACC_ROWS, name: str | None = None) -> Compiled:
    """Compile ``model`` for ``arch`` under ``dataflow`` ('ws' or 'os'): calibrate (seeded ``calibration`` inputs,
    ``clipping`` as the accuracy proxy), simulate, lower to integer steps and emit the program."""
    from codesign.integer.calibrate import torch_threads

    check_system_bits(arch, bits)
    with torch_threads(1):
        return _compile(model, example_inputs, arch, dataflow, calibration, seed, clipping, reestimate_bn, acc_rows,
                        name)


def _compile(model, example_inputs, arch, dataflow, calibration, seed, clipping, reestimate_bn, acc_rows, name):
    from codesign.integer.calibrate import observe_ranges, ranges_to_qparams
    from codesign.integer.graph import lower
    from codesign.integer.model import check_accumulators, prepare, quantize_net
    from sim.engine import simulate

    if dataflow not in ("ws", "os") or not arch.supports(dataflow):
        raise MappingError(f"dataflow {dataflow!r}: the generated system runs the ws or os GEMM core, and "
                           f"{arch.name} lists {', '.join(str(getattr(d, 'value', d)) for d in arch.dataflows)}")
    prepared = prepare(model, example_inputs, calibration=calibration, seed=seed, reestimate_bn=reestimate_bn,
                       name=name)
    sim = simulate(prepared.workload, arch, dataflow)
    chains = {layer.name: layer.fused for layer in sim.layers if layer.fused}
    graph = lower(prepared.program, prepared.workload, chains)
    batch = graph.shapes[graph.inputs[0]][0]
    observers = observe_ranges(prepared.program.module(), graph.observed(), prepared.calibration_inputs, batch,
                               clipping)
    net = quantize_net(graph, ranges_to_qparams(observers), clipping)
    check_accumulators(net)
    program = compile_net(net, sim, arch, dataflow, acc_rows=acc_rows)
    binary = encode_program(program.instructions)
    target = Target(arch, dataflow)
    timing = schedule(program.instructions, target, len(binary))
    return Compiled(program, binary, net, sim, timing, target, prepared)


def input_image(buffer: Buffer, codes: np.ndarray, zero_point: int) -> bytes:
    """The bytes of an input tensor (int8 codes NCHW) in the accelerator's layout [N][H][W][CP], padding channels
    holding the zero point."""
    n, c, h, w = buffer.shape
    data = np.full((n, h, w, buffer.cp), zero_point, dtype=np.int64)
    data[..., :c] = np.asarray(codes, dtype=np.int64).reshape(n, c, h, w).transpose(0, 2, 3, 1)
    return np.clip(data, QMIN, 127).astype(np.int8).tobytes()


def read_output(buffer: Buffer, dram: np.ndarray) -> np.ndarray:
    """The output tensor's int8 codes (NCHW int64) from DRAM after a run (padding channels dropped)."""
    n, c, h, w = buffer.shape
    raw = dram[buffer.dram:buffer.dram + buffer.bytes].view(np.int8).astype(np.int64)
    return raw.reshape(n, h, w, buffer.cp)[..., :c].transpose(0, 3, 1, 2)


def dram_image(compiled: Compiled, input_codes: np.ndarray, weights: bytes | None = None,
               binary: bytes | None = None) -> np.ndarray:
    """DRAM as the host leaves it before start: weight image, quantized input, program (``weights`` / ``binary``
    replace the compiled ones, e.g. a corrupted image)."""
    program = compiled.program
    weights = program.weights if weights is None else weights
    binary = compiled.binary if binary is None else binary
    memory_map = program.memory_map
    dram = np.zeros(memory_map["program"] + max(len(binary), len(compiled.binary)), dtype=np.uint8)
    dram[memory_map["weights"]:memory_map["weights"] + len(weights)] = np.frombuffer(weights, dtype=np.uint8)
    data = input_image(program.input, input_codes, compiled.net.input_qparams.zero_point)
    dram[memory_map["input"]:memory_map["input"] + len(data)] = np.frombuffer(data, dtype=np.uint8)
    dram[memory_map["program"]:memory_map["program"] + len(binary)] = np.frombuffer(binary, dtype=np.uint8)
    return dram


def run_compiled(compiled: Compiled, input_codes: np.ndarray, *, weights: bytes | None = None,
                 binary: bytes | None = None) -> tuple[np.ndarray, Execution]:
    """(output codes NCHW, the execution) of the program on input codes ``input_codes`` (NCHW)."""
    binary = compiled.binary if binary is None else binary
    dram = dram_image(compiled, input_codes, weights, binary)
    execution = run_program(binary, compiled.target, dram, compiled.program.acc_rows)
    return read_output(compiled.program.output, execution.dram), execution

