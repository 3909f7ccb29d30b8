"""cocotb bench of the generated GEMM core: runs golden cases, checks every result row bit-exactly
and every timed case's cycles against the simulator's prediction.

Run through ``hdl.cocotb_run.run_cocotb`` (see ``hdl.verify``). Inputs come from the JSON file in
``CODESIGN_BENCH_CASES`` (core parameters, cases, seed); what the RTL did goes to the JSON file in
``CODESIGN_BENCH_OUT``, written before the test passes or fails, so the caller can print it.
Inputs are driven after the falling edge and the handshake sampled when logic has settled, so
each loop iteration is one rising edge (``hdl.benches.cocotb_common.run_stream_cases``).
"""

from __future__ import annotations

import cocotb

from hdl.benches import cocotb_common
from hdl.benches.driver import CaseDriver
from hdl.benches.golden import Case
from hdl.params import CoreParams

__all__ = ["INPUTS", "OUTPUTS", "HANDSHAKE", "gemm_core_cases"]

INPUTS = cocotb_common.STREAM_INPUTS
OUTPUTS = cocotb_common.STREAM_OUTPUTS
HANDSHAKE = cocotb_common.HANDSHAKE


@cocotb.test()
async def gemm_core_cases(dut):
    """Every case back to back on one core; all result rows exact, timed cases on the predicted cycle."""
    spec = cocotb_common.load_bench_cases()
    params = CoreParams(**spec["params"])
    cases = [Case.from_json(c) for c in spec["cases"]]
    results = await cocotb_common.run_stream_cases(
        dut, cases, lambda case, seed: CaseDriver(params, case, seed), int(spec["seed"]))
    cocotb_common.write_and_check(cases, results)
