"""cocotb bench of ``XnorThresholdArray``: packed-word GEMMs against the numpy XNOR-popcount model.

Cases come from the JSON file in ``CODESIGN_BENCH_CASES``: array shape and, per case, the packed
activation and weight words, ``n_valid`` per beat, thresholds and flips, and the expected sums and
1-bit outputs (computed by the caller from {-1,+1} matrices with numpy). Inputs are driven after the
falling edge; results are sampled once logic has settled after the last beat's rising edge.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly

from hdl.benches.cocotb_common import load_bench_cases, start_clock_and_reset

__all__ = ["xnor_threshold_cases"]


@cocotb.test()
async def xnor_threshold_cases(dut):
    """Every case: acc[r][c] equals the {-1,+1} dot product, out[r] the thresholded bits."""
    spec = load_bench_cases()
    rows, cols = spec["rows"], spec["cols"]
    dut.en.value = 0
    dut.clear.value = 0
    await start_clock_and_reset(dut)
    mismatches = []
    for number, case in enumerate(spec["cases"]):
        for c in range(cols):
            getattr(dut, f"thr__{c}").value = case["thr"][c]
        dut.flip.value = case["flip"]
        for beat, n_valid in enumerate(case["n_valid"]):
            for r in range(rows):
                getattr(dut, f"a__{r}").value = case["a_words"][r][beat]
            for c in range(cols):
                getattr(dut, f"w__{c}").value = case["w_words"][c][beat]
            dut.n_valid.value = n_valid
            dut.en.value = 1
            dut.clear.value = int(beat == 0)
            await FallingEdge(dut.clk)
        dut.en.value = 0
        dut.clear.value = 0
        await ReadOnly()
        for r in range(rows):
            for c in range(cols):
                got = getattr(dut, f"acc__{r}__{c}").value.to_signed()
                if got != case["acc"][r][c]:
                    mismatches.append(f"case {number} acc[{r}][{c}] = {got}, expected {case['acc'][r][c]}")
            got_bits = getattr(dut, f"out__{r}").value.to_unsigned()
            if got_bits != case["out"][r]:
                mismatches.append(f"case {number} out[{r}] = {got_bits:#x}, expected {case['out'][r]:#x}")
        await FallingEdge(dut.clk)
    assert not mismatches, "; ".join(mismatches[:5])
