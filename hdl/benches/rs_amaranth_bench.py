"""Run golden passes on ``RsArray`` in Amaranth's own simulator: no Verilog, fast unit tests."""

from __future__ import annotations

from hdl.benches.amaranth_bench import run_drivers, stream_ports
from hdl.benches.rs_driver import RsDriver, RsRunResult
from hdl.rs_array import RsArray
from hdl.rs_pe import RsParams

__all__ = ["run_passes_amaranth"]


def run_passes_amaranth(params: RsParams, runs: list[dict], array: RsArray | None = None) -> list[RsRunResult]:
    """Each run (``RsDriver`` keyword arguments: ``passes``, ``back_to_back``, ``stall``, ``seed``) on one
    array, one after another with two idle edges between. Unsigned payloads in, psums signed as built."""
    array = RsArray(params) if array is None else array
    inputs, outputs = stream_ports(array, ("cmd", "filters", "inputs"), ("psums",))
    return run_drivers(array, inputs, outputs, (RsDriver(params, **run) for run in runs))
