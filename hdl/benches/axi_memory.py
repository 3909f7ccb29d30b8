"""AxiMemory: a deterministic AXI4 slave over a byte array, the DRAM the benches put behind the DMA unit.

Its latency and rate are the spec's (dram.latency_cycles, one beat of dram.bytes_per_cycle a cycle), counted as
hdl/system/dma.py defines them: an AR handshaken in cycle a has the first R beat of its burst in cycle a + L
(L >= 1), then one beat a cycle while ``rready``; ARs are accepted every cycle (``arready`` high, any number
outstanding) and their bursts answered in order, each starting at the earliest in the cycle after the previous
burst's last beat, so back-to-back bursts stream without a gap. Writes: AW and W accepted every cycle (a W beat
may come before its AW: it waits for it), each beat's bytes (``wstrb``) written at the end of the cycle it is
accepted in, B in the cycle after the burst's WLAST beat. An access outside the array answers DECERR (reads 0,
writes dropped). It checks what it can of the protocol (INCR bursts of the bus's size, no 4 KiB crossing, WLAST on
the burst's last beat, payloads held while valid and not ready) and raises ``AxiProtocolError``.

The logic is a plain cycle-stepped class: ``outputs()`` are the slave's signals in the current cycle (they depend
only on what it saw in earlier cycles), ``step(inputs)`` takes the master's signals in that cycle and moves to the
next. ``amaranth_process`` drives it from an ``amaranth.sim`` testbench, ``run`` from a cocotb coroutine (Verilog
ports ``{prefix}__araddr``, ...). With ``stall`` > 0 it also holds its readies low and leaves gaps in R, at random
(seeded): a check of the master's handshakes, not of the timing.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

__all__ = ["AxiMemory", "AxiProtocolError", "MASTER_SIGNALS", "SLAVE_SIGNALS", "amaranth_process", "run",
           "RESP_OKAY", "RESP_DECERR"]

RESP_OKAY = 0b00
RESP_DECERR = 0b11
BURST_INCR = 0b01
BOUNDARY = 4096

MASTER_SIGNALS = ("araddr", "arlen", "arsize", "arburst", "arvalid", "rready", "awaddr", "awlen", "awsize", "awburst",
                  "awvalid", "wdata", "wstrb", "wlast", "wvalid", "bready")
SLAVE_SIGNALS = ("arready", "rdata", "rresp", "rlast", "rvalid", "awready", "wready", "bresp", "bvalid")


class AxiProtocolError(AssertionError):
    """The master broke a rule of AXI4 this model checks."""


@dataclass
class _Burst:
    addr: int
    beats: int
    first_cycle: int  # earliest cycle of its first beat (reads) / unused (writes)
    done: int = 0


class AxiMemory:
    """The memory model (see module docstring). ``size`` bytes, a ``data_bytes``-wide bus, read latency
    ``latency`` >= 1 cycles; ``base`` is the byte address of the array's first byte."""

    def __init__(self, size: int, data_bytes: int, latency: int, *, base: int = 0, stall: float = 0.0,
                 seed: int = 0):
        if latency < 1:
            raise ValueError(f"latency={latency}: the model answers at the earliest in the cycle after the AR")
        if data_bytes < 1 or data_bytes & (data_bytes - 1):
            raise ValueError(f"data_bytes={data_bytes}: a power of two")
        self.mem = bytearray(size)
        self.data_bytes, self.latency, self.base = data_bytes, latency, base
        self.stall, self._rng = stall, random.Random(seed)
        self.cycle = 0
        self._reads: deque[_Burst] = deque()
        self._writes: deque[_Burst] = deque()
        self._wbeats: deque[tuple[int, int, int]] = deque()  # W beats waiting for their AW
        self._b: deque[tuple[int, int]] = deque()  # (cycle due, resp)
        self._write_bad: list[bool] = []
        self._held: dict[str, tuple] = {}
        self._r_shown = False  # a beat was offered and not taken: it stays (AXI4: valid until the handshake)
        self.ar_cycles: list[int] = []  # cycle of each AR handshake
        self.r_cycles: list[int] = []  # cycle of each R beat
        self.aw_cycles: list[int] = []
        self.w_cycles: list[int] = []  # cycle of each accepted W beat
        self._out = self._outputs()

    # -- the byte array ------------------------------------------------------------------------------
    def _inside(self, addr: int, length: int) -> bool:
        return self.base <= addr and addr + length <= self.base + len(self.mem)

    def read(self, addr: int, length: int) -> bytes:
        return bytes(self.mem[addr - self.base:addr - self.base + length])

    def write(self, addr: int, data: bytes) -> None:
        self.mem[addr - self.base:addr - self.base + len(data)] = data

    # -- one cycle -------------------------------------------------------------------------------------
    def outputs(self) -> dict[str, int]:
        """The slave's signals in the current cycle."""
        return dict(self._out)

    def _ready(self) -> int:
        return int(not (self.stall and self._rng.random() < self.stall))

    def _outputs(self) -> dict[str, int]:
        out = {name: 0 for name in SLAVE_SIGNALS}
        out.update(arready=self._ready(), awready=self._ready(), wready=self._ready())
        if self._reads and self._reads[0].first_cycle <= self.cycle and (self._r_shown or self._ready()):
            burst = self._reads[0]
            addr = burst.addr + burst.done * self.data_bytes
            ok = self._inside(addr, self.data_bytes)
            out.update(rvalid=1, rlast=int(burst.done == burst.beats - 1), rresp=RESP_OKAY if ok else RESP_DECERR,
                       rdata=int.from_bytes(self.read(addr, self.data_bytes), "little") if ok else 0)
        if self._b and self._b[0][0] <= self.cycle:
            out.update(bvalid=1, bresp=self._b[0][1])
        return out

    def _check_burst(self, kind: str, addr: int, length: int, size: int, burst: int) -> _Burst:
        beats = length + 1
        if burst != BURST_INCR:
            raise AxiProtocolError(f"{kind}burst={burst} at cycle {self.cycle}: the model takes INCR bursts")
        if 1 << size != self.data_bytes:
            raise AxiProtocolError(f"{kind}size={size} at cycle {self.cycle}: the bus is {self.data_bytes} bytes")
        if addr % self.data_bytes:
            raise AxiProtocolError(f"{kind}addr=0x{addr:x} at cycle {self.cycle}: not aligned to the bus")
        if addr % BOUNDARY + beats * self.data_bytes > BOUNDARY:
            raise AxiProtocolError(f"{kind} burst 0x{addr:x} + {beats} beats at cycle {self.cycle} crosses 4 KiB")
        return _Burst(addr, beats, self.cycle + self.latency)

    def _check_held(self, channel: str, valid: int, ready: int, payload: tuple) -> None:
        """AXI4: once valid, a channel's payload stays until the handshake."""
        held = self._held.pop(channel, None)
        if held is not None and (not valid or payload != held):
            raise AxiProtocolError(f"{channel} changed or dropped valid before its handshake (cycle {self.cycle})")
        if valid and not ready:
            self._held[channel] = payload

    def step(self, inputs: dict[str, int]) -> None:
        """Take the master's signals of the current cycle (``MASTER_SIGNALS``) and move to the next cycle."""
        i = {name: int(inputs[name]) for name in MASTER_SIGNALS}
        out = self._out
        self._check_held("AR", i["arvalid"], out["arready"], (i["araddr"], i["arlen"], i["arsize"], i["arburst"]))
        self._check_held("AW", i["awvalid"], out["awready"], (i["awaddr"], i["awlen"], i["awsize"], i["awburst"]))
        self._check_held("W", i["wvalid"], out["wready"], (i["wdata"], i["wstrb"], i["wlast"]))
        self._r_shown = bool(out["rvalid"] and not i["rready"])
        if out["rvalid"] and i["rready"]:
            self.r_cycles.append(self.cycle)
            burst = self._reads[0]
            burst.done += 1
            if burst.done == burst.beats:
                self._reads.popleft()
                if self._reads:  # the next burst starts in the next cycle at the earliest
                    self._reads[0].first_cycle = max(self._reads[0].first_cycle, self.cycle + 1)
        if i["arvalid"] and out["arready"]:
            self.ar_cycles.append(self.cycle)
            burst = self._check_burst("ar", i["araddr"], i["arlen"], i["arsize"], i["arburst"])
            self._reads.append(burst)
        if i["awvalid"] and out["awready"]:
            self.aw_cycles.append(self.cycle)
            self._writes.append(self._check_burst("aw", i["awaddr"], i["awlen"], i["awsize"], i["awburst"]))
            self._write_bad.append(False)
        if i["wvalid"] and out["wready"]:
            self.w_cycles.append(self.cycle)
            self._wbeats.append((i["wdata"], i["wstrb"], i["wlast"]))
        while self._wbeats and self._writes:
            self._write_beat(*self._wbeats.popleft())
        if out["bvalid"] and i["bready"]:
            self._b.popleft()
        self.cycle += 1
        self._out = self._outputs()

    def _write_beat(self, data: int, strb: int, last: int) -> None:
        burst = self._writes[0]
        addr = burst.addr + burst.done * self.data_bytes
        if self._inside(addr, self.data_bytes):
            for lane in range(self.data_bytes):
                if strb >> lane & 1:
                    self.mem[addr - self.base + lane] = data >> (8 * lane) & 0xFF
        else:
            self._write_bad[0] = True
        burst.done += 1
        if bool(last) != (burst.done == burst.beats):
            raise AxiProtocolError(f"wlast={last} on beat {burst.done} of a {burst.beats}-beat burst "
                                   f"(cycle {self.cycle})")
        if burst.done == burst.beats:
            self._writes.popleft()
            bad = self._write_bad.pop(0)
            self._b.append((self.cycle + 1, RESP_DECERR if bad else RESP_OKAY))

    @property
    def busy(self) -> bool:
        """Reads or writes still in flight."""
        return bool(self._reads or self._writes or self._wbeats or self._b)


def amaranth_process(memory: AxiMemory, axi):
    """An ``amaranth.sim`` testbench (add it with ``background=True``) driving ``axi`` (a DmaUnit's ``axi`` port
    or any object with the AXI4 signals as attributes) from ``memory``, one ``step`` per clock edge: the slave's
    outputs are set right after an edge; the master's signals are sampled at the next edge."""
    masters = [getattr(axi, name) for name in MASTER_SIGNALS]

    async def process(ctx):
        while True:
            for name, value in memory.outputs().items():
                ctx.set(getattr(axi, name), value)
            _, _, *values = await ctx.tick().sample(*masters)
            memory.step(dict(zip(MASTER_SIGNALS, values)))

    return process


def _known_bits(value) -> int:
    """A cocotb value as an integer, X and Z bits as 0 (an undriven payload before reset is not an error)."""
    try:
        return int(value)
    except ValueError:
        return int("".join("1" if bit == "1" else "0" for bit in str(value)), 2)


async def run(dut, prefix: str, memory: AxiMemory, clock=None, cycles: int | None = None):
    """Drive the AXI4 slave ports ``{prefix}__...`` of a cocotb ``dut`` from ``memory``: the slave's outputs are
    written after each falling edge, the master's signals read in the read-only phase before the rising edge
    ends the cycle (X and Z bits read as 0). ``clock`` defaults to ``dut.clk``; runs ``cycles`` cycles, or for
    ever (start it with ``cocotb.start_soon``)."""
    from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

    clk = dut.clk if clock is None else clock
    handle = lambda name: getattr(dut, f"{prefix}__{name}")  # noqa: E731
    done = 0
    await FallingEdge(clk)
    while cycles is None or done < cycles:
        for name, value in memory.outputs().items():
            handle(name).value = value
        await ReadOnly()
        memory.step({name: _known_bits(handle(name).value) for name in MASTER_SIGNALS})
        await RisingEdge(clk)
        await FallingEdge(clk)
        done += 1
