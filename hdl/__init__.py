"""Amaranth generators of the accelerator's RTL and their verification.

``params`` / ``core`` / ``generate``: the integer GEMM core (``CoreParams``, ``GemmCore``, ``emit_core``)
built from a ``codesign.pe.PeSpec``, with ``arrays`` (the array kinds per dataflow), ``systolic``,
``pe`` and ``control``; ``emit``: Verilog and manifests; ``verify``: the cocotb run against the cycle
contract (``codesign.contract``); ``binary``, ``lut``, ``softmax``: further units, named with their parameters
in ``units`` and verified by ``unit_verify``; ``fpga``, ``synth``,
``lint``: board builds, Yosys and Verilator. Nothing here imports ``sim`` or ``dataflow``.
"""

__all__: list[str] = []
