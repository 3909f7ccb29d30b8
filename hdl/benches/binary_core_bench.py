"""cocotb bench of the generated binarized GEMM core (``hdl.binary_core.BinaryGemmCore``): runs golden
cases, checks every tile's sums bit-exactly against the XNOR-popcount model and every timed case's
cycles against the contract the simulator uses (``codesign.contract.binary_timing``).

Run through ``hdl.cocotb_run.run_cocotb`` (see ``hdl.verify``): cases from ``CODESIGN_BENCH_CASES``
(``BinaryCoreParams`` fields, cases, seed), what the RTL did to ``CODESIGN_BENCH_OUT``. Each loop
iteration is one rising edge (``hdl.benches.cocotb_common.run_stream_cases``).
"""

from __future__ import annotations

import cocotb

from hdl.benches import cocotb_common
from hdl.benches.driver import BinaryCaseDriver
from hdl.benches.golden import Case
from hdl.params import BinaryCoreParams

__all__ = ["binary_core_cases"]


@cocotb.test()
async def binary_core_cases(dut):
    """Every case back to back on one core; every tile exact, timed cases on the predicted cycle."""
    spec = cocotb_common.load_bench_cases()
    params = BinaryCoreParams(**spec["params"])
    cases = [Case.from_json(c) for c in spec["cases"]]
    results = await cocotb_common.run_stream_cases(
        dut, cases, lambda case, seed: BinaryCaseDriver(params, case, seed), int(spec["seed"]))
    cocotb_common.write_and_check(cases, results)
