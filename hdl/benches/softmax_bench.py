"""cocotb bench of ``SoftmaxUnit``: streamed vectors against the bit-exact numpy model, and cycles.

The JSON file in ``CODESIGN_BENCH_CASES`` holds phases, each with input vectors, the model's output
codes, the output ``ready`` pattern (one entry per edge, repeated) and the expected cycles
(``hdl.benches.unit_golden.softmax_cycles``: 3n + 3 when ready is always high, else null): edges from
the edge accepting a vector's first element to the edge sending its last output. Each loop iteration
is one edge: drive after the falling edge, sample handshakes once logic has settled. The next vector is
offered as soon as the last output has gone, so the edges between first elements are the period. What
each vector did (outputs, first-accept and last-output edges) goes to ``CODESIGN_BENCH_OUT``.
"""

from __future__ import annotations

import json
import os

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly

from hdl.benches.cocotb_common import load_bench_cases, start_clock_and_reset

__all__ = ["softmax_vectors"]


@cocotb.test()
async def softmax_vectors(dut):
    """Outputs equal the model's codes; y_last marks each vector's end; cycle count as documented."""
    phases = load_bench_cases()["phases"]
    dut.x_valid.value = 0
    dut.x_last.value = 0
    dut.y_ready.value = 0
    await start_clock_and_reset(dut)
    edge, problems, measured = 0, [], []
    cases = [(phase["ready_pattern"], vector, expected, cycles) for phase in phases
             for vector, expected, cycles in zip(phase["vectors"], phase["expected"], phase["cycles"])]
    for number, (pattern, vector, expected, cycles) in enumerate(cases):
        sent, got, start, end = 0, [], None, None
        for _ in range(20 * len(vector) + 50):
            if sent < len(vector):
                dut.x.value = vector[sent]
                dut.x_valid.value = 1
                dut.x_last.value = int(sent == len(vector) - 1)
            else:
                dut.x_valid.value = 0
            ready = pattern[edge % len(pattern)]
            dut.y_ready.value = ready
            await ReadOnly()
            accepted = sent < len(vector) and dut.x_ready.value == 1
            fired = ready and dut.y_valid.value == 1
            last = fired and dut.y_last.value == 1
            if fired:
                got.append(dut.y.value.to_unsigned())
            if accepted and start is None:
                start = edge
            await FallingEdge(dut.clk)
            sent += int(accepted)
            if last:
                end = edge
                edge += 1
                break
            edge += 1
        measured.append({"outputs": got, "first_accept_edge": start, "last_output_edge": end})
        if got != expected:
            problems.append(f"vector {number}: {got} != {expected}")
        if end is None:
            problems.append(f"vector {number}: no last output")
        elif cycles is not None and start is not None and end - start != cycles:
            problems.append(f"vector {number}: {end - start} cycles, expected {cycles}")
    out_path = os.environ.get("CODESIGN_BENCH_OUT")
    if out_path:
        with open(out_path, "w", encoding="utf-8") as handle:
            json.dump({"simulator": cocotb.SIM_NAME, "vectors": measured}, handle)
    dut.x_valid.value = 0
    assert not problems, "; ".join(problems[:5])
