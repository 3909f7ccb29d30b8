"""The signatures the system's blocks meet at (docs/system-rtl.md).

**Dispatch** (controller -> unit, ``dispatch_signature``): on a cycle the controller dispatches an instruction to a
unit it holds ``start`` high for that one cycle with the 128-bit ``instr`` and the configuration registers as
they stand (``regs``, 30 x 32 bits, register r in bits [32r, 32r+32)); the unit captures what it needs on that
edge. Cycle t is the one ``start`` is high in. The unit answers with

* ``ready``: high in a cycle in which it would take a ``start``. After a start in cycle t it is low in cycles
  t+1 .. t+occupancy-1 and high again from cycle t+occupancy (``codesign.contract.system_timing.occupancy``);
* ``idle``: high when everything it has taken is complete. After a start in cycle t it is low in cycles
  t+1 .. t+cycles-1 and high from cycle t+cycles on (``instruction_cycles``) unless it took another start;
  a unit that took nothing is idle. Effects are visible to any unit from cycle t+cycles on;
* ``error`` / ``error_code``: high (with its code, docs/isa.md's table) from the cycle it finds a fault; it
  stays until reset.

``ready`` and ``idle`` never depend on ``start`` in the same cycle (they are registered or depend only on the
unit's state), so the controller's decision never loops through a unit.

**GLB port** (``glb_port_signature``): one port per bank, ``banks`` of them: ``addr`` (word address within the
bank), ``en``, ``we`` (one write enable per byte of the word: WRITEBACK writes part of a word), ``wdata``;
``rdata`` is the word read, valid in the cycle after ``en`` with ``we`` all low (a synchronous read, block RAM).
One access per bank per cycle per port: the bank rule of docs/isa.md.

**Memories between units** are read and write ports of ``amaranth.lib.memory.Memory`` (synchronous reads): the
staging slots (written by the staging unit, read by the core unit), output buffers (written by the core unit,
read by the staging unit), parameter memory and LUT (written by the staging unit, read by the core unit and the
vector ops).
"""

from __future__ import annotations

from amaranth.hdl import signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hdl.system.params import N_CONFIG_REGS, SystemParams

__all__ = ["INSTRUCTION_BITS", "REGS_BITS", "dispatch_signature", "glb_port_signature", "ERROR_CODE_BITS",
           "SHIFT_BITS", "slot_read_signature", "obuf_read_signature", "param_write_signature", "lut_write_signature"]

INSTRUCTION_BITS = 128
REGS_BITS = 32 * N_CONFIG_REGS
ERROR_CODE_BITS = 4
SHIFT_BITS = 6  # a parameter entry's shift: 0..63 (docs/isa.md: 1..62 legal)


def dispatch_signature() -> wiring.Signature:
    """Controller -> unit, seen from the controller (``Out`` drives the unit); a unit's port is ``In`` of it."""
    return wiring.Signature({
        "start": Out(1),
        "instr": Out(INSTRUCTION_BITS),
        "regs": Out(REGS_BITS),
        "ready": In(1, init=1),
        "idle": In(1, init=1),
        "error": In(1),
        "error_code": In(ERROR_CODE_BITS),
    })


def glb_port_signature(params: SystemParams) -> wiring.Signature:
    """One bank's port seen from the unit that drives it (``Out`` to the bank)."""
    return wiring.Signature({
        "addr": Out(unsigned(max(1, (params.bank_words - 1).bit_length()))),
        "en": Out(1),
        "we": Out(params.word_bytes),
        "wdata": Out(params.glb_word_bits),
        "rdata": In(params.glb_word_bits),
    })


def slot_read_signature(params: SystemParams) -> wiring.Signature:
    """A staging-slot read seen from the reader (the core unit): ``pair``, ``addr`` (row), ``en``; ``data`` one GLB
    word (lane j in byte j) the cycle after ``en``."""
    return wiring.Signature({"pair": Out(1), "addr": Out(range(params.stage_rows)), "en": Out(1),
                             "data": In(params.glb_word_bits)})


def obuf_read_signature(params: SystemParams) -> wiring.Signature:
    """An output-buffer read seen from the reader (the staging unit): ``buf``, ``addr`` (row), ``en``; ``data``
    (``cols`` int8 lanes) the cycle after ``en``."""
    return wiring.Signature({"buf": Out(1), "addr": Out(range(params.stage_rows)), "en": Out(1),
                             "data": In(data.ArrayLayout(signed(8), params.cols))})


def param_write_signature(params: SystemParams) -> wiring.Signature:
    """Parameter-memory writes seen from the writer (LOADP): one entry (bias, multiplier, shift) a cycle at most."""
    return wiring.Signature({"en": Out(1), "index": Out(range(params.param_entries)), "bias": Out(signed(32)),
                             "mult": Out(signed(32)), "shift": Out(unsigned(SHIFT_BITS))})


def lut_write_signature(word_bytes: int) -> wiring.Signature:
    """Table writes seen from the writer: ``en``, ``index`` (word of the 256-byte table), ``data`` (one GLB word,
    table entry ``index * word_bytes + b`` in byte b)."""
    return wiring.Signature({"en": Out(1), "index": Out(range(max(2, 256 // word_bytes))), "data": Out(8 * word_bytes)})
