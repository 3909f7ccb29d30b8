"""The controllers that run GEMM tiles on each kind of systolic array inside ``GemmCore``.

``GemmCore`` (hdl/core.py) builds what every array kind shares: the stream ports, the command
register with its clamped sizes, the results FIFO and the zeroing of weight lanes beyond the tile.
It then instantiates the array its dataflow names in ``hdl.arrays.ARRAY_KINDS`` and hands a
``TileControl`` to that kind's controller, which drives the array and the handshakes from there.
The timing each controller produces is the contract of ``codesign.contract.tile_timing``, derived
term by term in docs/core-protocol.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amaranth.hdl import Cat, Module, Mux, Signal

__all__ = ["TileControl", "ws_control", "os_control"]


@dataclass(frozen=True)
class TileControl:
    """What a controller is given: the core (its ports and params), the module being built, the array
    instance, the results FIFO, and the command-side signals ``GemmCore`` already made."""

    core: Any  # the GemmCore: cmd, weights, acts, busy ports; params; results_depth
    m: Module
    array: Any  # the array component (already a submodule named "array")
    buf: Any  # the results SyncFIFO
    accept_cmd: Signal  # a command transfers on this edge
    last_result: Signal  # the tile's last result row transfers on this edge
    cmd_k: Signal  # the command's k, clamped to 1..k_max
    lane_m: Any  # bit r: lane r < m on this edge (from the command on its own edge, if the kind says so)
    lane_n: Any  # bit c: lane c < n on this edge (likewise)
    tile_m: Signal  # the current tile's sizes, registered on the command's edge
    tile_k: Signal


def ws_control(ctx: TileControl) -> None:
    """Weight stationary: load k weight rows, stream m activation rows under a results-FIFO credit,
    wait for the last result row (the next command one edge later)."""
    core, m, array, buf = ctx.core, ctx.m, ctx.array, ctx.buf
    accept_cmd, last_result, tile_m, tile_k = ctx.accept_cmd, ctx.last_result, ctx.tile_m, ctx.tile_k
    p = core.params
    count = Signal(range(max(p.rows, p.max_m) + 1))
    # Credit (docs/core-protocol.md, "Backpressure"): every row in the array, and every row in the FIFO,
    # owns a FIFO entry. ``credit`` is the entries left, a register (fed rows take one, results read give
    # one back), so ``acts.ready`` is a few gates from registers and the array's inputs never wait on it.
    credit = Signal(range(core.results_depth + 1), init=core.results_depth)
    has_room = Signal()
    m.d.comb += has_room.eq(credit != 0)
    feed = Signal()
    m.d.comb += feed.eq(core.acts.valid & core.acts.ready)
    returned = core.results.valid & core.results.ready
    with m.If(feed & ~returned):
        m.d.sync += credit.eq(credit - 1)
    with m.Elif(~feed & returned):
        m.d.sync += credit.eq(credit + 1)
    m.d.comb += [buf.w_en.eq(array.out_valid), buf.w_data.eq(array.psums)]

    # Activations go to the array ungated by the handshake: ``in_valid`` (delayed through the array as
    # ``out_valid``) alone says which rows are real, so rows without a transfer flow through unwritten.
    # Lanes >= k are zeroed by a mask registered with the command (the stale weights of rows >= k add 0).
    lane_k = Signal(p.rows, name="lane_k")
    with m.If(accept_cmd):
        m.d.sync += lane_k.eq(Cat(ctx.cmd_k > r for r in range(p.rows)))
    m.d.comb += array.in_valid.eq(feed)
    for c in range(p.cols):  # weight lanes >= n load zeros, so result lanes >= n are zero
        m.d.comb += array.weights[c].eq(Mux(ctx.lane_n[c], core.weights.payload[c], 0))
    for r in range(p.rows):
        m.d.comb += array.acts[r].eq(Mux(lane_k[r], core.acts.payload[r], 0))

    with m.FSM(name="ws_fsm"):
        with m.State("IDLE"):  # no tile in progress: busy only while a command is offered
            m.d.comb += [core.cmd.ready.eq(1), core.busy.eq(core.cmd.valid)]
            with m.If(accept_cmd):
                m.d.sync += count.eq(0)
                m.next = "LOAD_WEIGHTS"
        with m.State("LOAD_WEIGHTS"):
            m.d.comb += [core.weights.ready.eq(1), core.busy.eq(1)]
            with m.If(core.weights.valid):
                for r in range(p.rows):
                    m.d.comb += array.weight_load[r].eq(count == r)
                m.d.sync += count.eq(count + 1)
                with m.If(count == tile_k - 1):
                    m.d.sync += count.eq(0)
                    m.next = "STREAM"
        with m.State("STREAM"):
            m.d.comb += [core.acts.ready.eq(has_room), core.busy.eq(1)]
            with m.If(feed):
                m.d.sync += count.eq(count + 1)
                with m.If(count == tile_m - 1):
                    m.next = "DRAIN"
        with m.State("DRAIN"):
            m.d.comb += core.busy.eq(1)
            with m.If(last_result):
                m.next = "IDLE"


def os_control(ctx: TileControl) -> None:
    """Output stationary: k beats of a column of A with a row of B, the copy into the result bank on
    the last MAC's edge (which may take the next command), the bank draining into the FIFO."""
    core, m, array, buf = ctx.core, ctx.m, ctx.array, ctx.buf
    accept_cmd, cmd_k, lane_m, lane_n, tile_m, tile_k = (ctx.accept_cmd, ctx.cmd_k, ctx.lane_m, ctx.lane_n,
                                                         ctx.tile_m, ctx.tile_k)
    p = core.params
    count = Signal(range(max(p.max_k, p.rows + p.cols) + 1))
    feed = Signal()
    m.d.comb += feed.eq(core.acts.valid & core.weights.valid & core.acts.ready & core.weights.ready)
    # Operands enter the array as they are; the valid bits beside them (a beat on lane r < m, lane c < n)
    # gate each PE's registered product, so the handshake reaches registers, never a multiplier.
    m.d.comb += [array.acts.eq(core.acts.payload), array.weights.eq(core.weights.payload)]
    for r in range(p.rows):
        m.d.comb += array.act_valid[r].eq(feed & lane_m[r])
    for c in range(p.cols):
        m.d.comb += array.weight_valid[c].eq(lane_n[c])

    # Overlap (docs/core-protocol.md): a tile is finished on its last MAC's edge (``finishing``) and
    # copied into the result bank on that edge, row 0 straight into the FIFO, if the bank is empty
    # and the FIFO has room; otherwise it waits in the accumulators (``pending``). The next command
    # may be accepted on the copy's edge, never before.
    pending = Signal()
    finishing = Signal()
    bank_left = Signal(range(p.rows + 1))  # rows still in the bank, drained one per free FIFO entry
    copy = Signal()
    draining = Signal()
    m.d.comb += [
        draining.eq(bank_left != 0),
        copy.eq((pending | finishing) & ~draining & buf.w_rdy),
        array.copy.eq(copy),
        array.bank_shift.eq(draining & buf.w_rdy),
        array.clear.eq(accept_cmd),
        buf.w_en.eq(copy | draining),
        buf.w_data.eq(Mux(copy, array.top_row, array.bank_top)),
    ]
    with m.If(copy):
        m.d.sync += [pending.eq(0), bank_left.eq(tile_m - 1)]
    with m.Elif(draining & buf.w_rdy):
        m.d.sync += bank_left.eq(bank_left - 1)
    with m.If(finishing & ~copy):
        m.d.sync += pending.eq(1)

    # A command starts the beats; the first beat may go with it (the clear acts before its first MAC).
    both = core.acts.valid & core.weights.valid
    take_cmd = Signal()
    m.d.comb += [
        core.cmd.ready.eq(take_cmd),
        core.acts.ready.eq(Mux(take_cmd, both & core.cmd.valid, 0)),
        core.weights.ready.eq(Mux(take_cmd, both & core.cmd.valid, 0)),
    ]
    with m.If(accept_cmd & feed & (cmd_k == 1)):
        m.d.sync += count.eq(0)
    with m.Elif(accept_cmd):
        m.d.sync += count.eq(feed)

    def start_tile():
        with m.If(accept_cmd & feed & (cmd_k == 1)):
            m.next = "FINISH"
        with m.Elif(accept_cmd):
            m.next = "FEED"

    with m.FSM(name="os_fsm"):
        with m.State("IDLE"):
            # busy: a command offered, a finished tile waiting for its copy, rows in the bank or the FIFO
            m.d.comb += [take_cmd.eq(~pending | copy),
                         core.busy.eq(core.cmd.valid | pending | draining | buf.r_rdy)]
            start_tile()
        with m.State("FEED"):
            m.d.comb += [core.acts.ready.eq(both), core.weights.ready.eq(both), core.busy.eq(1)]
            with m.If(feed):
                m.d.sync += count.eq(count + 1)
                with m.If(count == tile_k - 1):
                    m.d.sync += count.eq(0)
                    m.next = "FINISH"
        with m.State("FINISH"):  # the last MAC lands last_mac_delay edges after the last beat
            m.d.comb += core.busy.eq(1)
            with m.If(count == array.last_mac_delay - 1):
                m.d.comb += [finishing.eq(1), take_cmd.eq(copy)]
                m.next = "IDLE"
                start_tile()
            with m.Else():
                m.d.sync += count.eq(count + 1)
