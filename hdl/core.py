"""GemmCore: a systolic array with its controller, stream ports and a buffered results path.

It runs one GEMM tile C[m x n] = A[m x k] @ B[k x n] per command, tiles back to back, sizes set
per command up to the built maximum. Ports, data order and timing are in docs/core-protocol.md;
with inputs always valid and ``results.ready`` high a tile takes exactly
``codesign.contract.tile_timing.tile_cycles`` edges from its command to its last result, and the
next command is accepted ``codesign.contract.tile_timing.issue_interval`` edges after it (WS: one
edge after the last result; OS: as soon as the array is free, the finished tile draining from a
result bank meanwhile).

The array and its controller come from ``hdl.arrays.ARRAY_KINDS`` by dataflow (``hdl.control``
holds the controllers); this module builds what they share. Results go through a FIFO in on-chip
memory (``amaranth.lib.fifo.SyncFIFO`` over ``lib.memory``), so ``results.ready`` low stalls the
core without losing data: in WS, rows of A are only accepted while the FIFO has room for every row
already in the array (credit count); in OS, the result bank drains only into free FIFO entries,
and a finished tile waits in the accumulators (no new command accepted) until the bank is empty.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from codesign.errors import HdlError
from hdl.arrays import ArrayKind, array_kind
from hdl.control import TileControl
from hdl.params import CoreParams

__all__ = ["command_layout", "GemmCore"]


def command_layout(params: CoreParams) -> data.StructLayout:
    """The ``cmd`` payload: tile sizes m, k, n, each wide enough for its maximum."""
    m_max, k_max, n_max = params.tile_max
    return data.StructLayout(
        {"m": unsigned(m_max.bit_length()), "k": unsigned(k_max.bit_length()), "n": unsigned(n_max.bit_length())}
    )


def _clamped(m: Module, value, maximum: int, name: str) -> Signal:
    """``value`` limited to 1..maximum, so a malformed command cannot hang the core."""
    out = Signal(range(maximum + 1), name=name)
    limited = Mux(value > maximum, maximum, value) if maximum < (1 << len(value)) - 1 else value
    m.d.comb += out.eq(Mux(value == 0, 1, limited))
    return out


class GemmCore(wiring.Component):
    """GEMM engine running tiles back to back on the systolic array of its dataflow (see module docstring).

    Parameters: ``params``, the ``CoreParams`` to build (already checked). Raises HdlError if it is
    not a ``CoreParams``.

    Ports (valid/ready streams): ``cmd`` (m, k, n), ``weights`` (``cols`` lanes: a row of B),
    ``acts`` (``rows`` lanes: WS a row of A, OS a column of A), ``results`` (``cols`` lanes:
    a row of C), and ``busy``. Unused lanes of a tile are ignored on input and zero on output.
    Convert it with ``hdl.emit.to_verilog`` or write it with a manifest by ``hdl.generate.emit_core``.
    """

    def __init__(self, params: CoreParams):
        if not isinstance(params, CoreParams):
            raise HdlError(f"GemmCore needs CoreParams, not {type(params).__name__}")
        self.params = params
        self.kind: ArrayKind = array_kind(params.dataflow)
        if params.pe.kind not in self.kind.pe_kinds:
            raise HdlError(f"no generator for PE kind {params.pe.kind.value!r} in the {params.dataflow} array")
        array = params.array
        super().__init__(
            {
                "cmd": In(stream.Signature(command_layout(params))),
                "weights": In(stream.Signature(data.ArrayLayout(array.weight_shape, params.cols))),
                "acts": In(stream.Signature(data.ArrayLayout(array.activation_shape, params.rows))),
                "results": Out(stream.Signature(data.ArrayLayout(array.accumulator_shape, params.cols))),
                "busy": Out(1),
            }
        )

    @property
    def results_depth(self) -> int:
        """Results FIFO entries (WS: one per row in flight in the array plus one being read; OS: rows + 1)."""
        return self.kind.results_depth(self.params.rows, self.params.cols)

    def elaborate(self, platform):
        m = Module()
        p = self.params
        m_max, k_max, n_max = p.tile_max
        acc_shape = p.array.accumulator_shape
        row_layout = data.ArrayLayout(acc_shape, p.cols)

        buf = m.submodules.results_fifo = fifo.SyncFIFO(width=row_layout.size, depth=self.results_depth)
        m.d.comb += [
            self.results.valid.eq(buf.r_rdy),
            self.results.payload.eq(buf.r_data),
            buf.r_en.eq(self.results.ready),
        ]

        tile_m = Signal(range(m_max + 1), init=1)
        tile_k = Signal(range(k_max + 1), init=1)
        results_sent = Signal(range(m_max + 1))
        last_result = Signal()
        m.d.comb += last_result.eq(self.results.valid & self.results.ready & (results_sent == tile_m - 1))
        with m.If(self.results.valid & self.results.ready):
            m.d.sync += results_sent.eq(results_sent + 1)

        cmd_m = _clamped(m, self.cmd.payload.m, m_max, "cmd_m")
        cmd_k = _clamped(m, self.cmd.payload.k, k_max, "cmd_k")
        cmd_n = _clamped(m, self.cmd.payload.n, n_max, "cmd_n")
        accept_cmd = Signal()
        m.d.comb += accept_cmd.eq(self.cmd.valid & self.cmd.ready)
        with m.If(accept_cmd):
            m.d.sync += [tile_m.eq(cmd_m), tile_k.eq(cmd_k), results_sent.eq(0)]

        # Lanes beyond the tile add nothing (the controllers zero or gate them by these masks). The lane masks
        # (bit j: lane j < n, resp. m) are registered with the command, so no compare sits before the array.
        # A kind that takes its first beat on the command's own edge (OS) takes that beat's masks from the
        # command itself.
        n_lanes = Signal(p.cols, name="n_lanes", init=1)
        m_lanes = Signal(p.rows, name="m_lanes", init=1)
        cmd_n_lanes = Cat(cmd_n > c for c in range(p.cols))
        cmd_m_lanes = Cat(cmd_m > r for r in range(p.rows))
        with m.If(accept_cmd):
            m.d.sync += [n_lanes.eq(cmd_n_lanes), m_lanes.eq(cmd_m_lanes)]
        lane_n, lane_m = n_lanes, m_lanes
        if self.kind.first_beat_with_command:
            lane_n, lane_m = Mux(accept_cmd, cmd_n_lanes, n_lanes), Mux(accept_cmd, cmd_m_lanes, m_lanes)

        array = m.submodules.array = self.kind.array(p.array)
        self.kind.control(TileControl(core=self, m=m, array=array, buf=buf, accept_cmd=accept_cmd,
                                      last_result=last_result, cmd_k=cmd_k, lane_m=lane_m, lane_n=lane_n,
                                      tile_m=tile_m, tile_k=tile_k))
        return m
