"""The accelerator's instruction set: 128-bit instructions, fields at fixed bit positions (docs/isa.md).

An instruction is one 128-bit little-endian word (16 bytes); bits 7..0 are the opcode. Every field is unsigned
unless marked signed (two's complement in its width). ``encode`` / ``decode`` are exact inverses on every legal
instruction; ``decode`` rejects an unknown opcode and non-zero reserved bits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from codesign.errors import CodesignError

__all__ = [
    "INSTRUCTION_BYTES", "Op", "Reg", "Unit", "FORMATS", "Instruction", "EncodingError", "encode", "decode",
    "encode_program", "decode_program", "unit_of", "GatherMode", "listing_line",
]

INSTRUCTION_BYTES = 16


class EncodingError(CodesignError):
    """An instruction cannot be encoded (a field out of range) or a word is not an instruction."""


class Op(IntEnum):
    NOP = 0x00
    SET = 0x01
    LOAD = 0x10
    STORE = 0x11
    GATHER = 0x20
    MATMUL = 0x21
    LOADP = 0x22
    LOADLUT = 0x23
    WRITEBACK = 0x24
    VACT = 0x30
    VADD = 0x31
    POOL = 0x32
    SYNC = 0x40
    END = 0x41


class Unit(IntEnum):
    """Execution units: the DMA engine (DRAM <-> GLB, SYNC mask bit 0), the staging unit (every execute-side GLB
    access: operand staging, writing results back, parameter and table loads, vector ops; bit 1) and the GEMM core
    with its accumulator and output path (bit 2); control instructions run in the dispatcher itself."""

    CONTROL = 0
    DMA = 1
    STAGE = 2
    CORE = 4


class GatherMode(IntEnum):
    IM2COL_WS = 0  # A row = an output pixel, lane = a reduction index (WS: a row of A)
    IM2COL_OS = 1  # A row = a reduction index, lane = an output pixel (OS: a column of A, one beat)


class Reg(IntEnum):
    """Configuration registers (32-bit, written by SET; captured by an action instruction when it issues)."""

    IN_ADDR = 0  # GLB byte address of the input tensor [N][H][W][CP]
    IN_H = 1
    IN_W = 2
    IN_CP = 3  # channel pitch: bytes per input pixel (channels padded to the GLB word)
    BATCH = 4  # N
    KH = 5
    KW = 6
    STRIDE_H = 7
    STRIDE_W = 8
    PAD_H = 9
    PAD_W = 10
    DIL_H = 11
    DIL_W = 12
    OUT_H = 13
    OUT_W = 14
    CIN_G = 15  # input channels per group
    ZP_IN = 16  # signed: the input's zero point (the im2col padding value)
    OUT_ADDR = 17
    OUT_CP = 18
    ZP_OUT = 19  # signed
    CLAMP_LO = 20  # signed
    CLAMP_HI = 21  # signed
    LUT_EN = 22
    ZP_PRE = 23  # signed: zero point added before the table
    PRE_LO = 24  # signed
    PRE_HI = 25  # signed
    VMULT1 = 26  # requantization multipliers of the vector ops (non-negative)
    VMULT2 = 27
    VSHIFT = 28
    ZP_IN2 = 29  # signed: the second input's zero point (VADD)


SIGNED_REGS = frozenset({Reg.ZP_IN, Reg.ZP_OUT, Reg.CLAMP_LO, Reg.CLAMP_HI, Reg.ZP_PRE, Reg.PRE_LO, Reg.PRE_HI,
                         Reg.ZP_IN2})


@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int
    signed: bool = False
    low: int = 0  # smallest legal value (after the width check)

    @property
    def bounds(self) -> tuple[int, int]:
        if self.signed:
            return -(1 << (self.width - 1)), (1 << (self.width - 1)) - 1
        return self.low, (1 << self.width) - 1


def _f(name, lsb, width, signed=False, low=0) -> Field:
    return Field(name, lsb, width, signed, low)


_DMA = (_f("glb_addr", 8, 24), _f("bytes", 32, 24, low=8), _f("dram_addr", 64, 32))
FORMATS: dict[Op, tuple[Field, ...]] = {
    Op.NOP: (),
    Op.SET: (_f("reg", 8, 8), _f("value", 32, 32, signed=True)),
    Op.LOAD: _DMA,
    Op.STORE: _DMA,
    Op.GATHER: (_f("slot", 8, 1), _f("mode", 9, 1), _f("count", 10, 11, low=1), _f("lanes", 21, 5, low=1),
                _f("m0", 32, 20), _f("k0", 52, 16), _f("group", 68, 12), _f("b_addr", 80, 24)),
    Op.MATMUL: (_f("acc", 8, 1), _f("out", 9, 1), _f("slot", 10, 1), _f("obuf", 11, 1),
                _f("m", 12, 11, low=1), _f("k", 23, 11, low=1), _f("n", 34, 5, low=1), _f("acc_row", 40, 12),
                _f("n0", 52, 16)),
    Op.WRITEBACK: (_f("obuf", 8, 1), _f("m", 9, 11, low=1), _f("n", 20, 5, low=1), _f("m0", 32, 20),
                   _f("n0", 52, 16)),
    Op.LOADP: (_f("glb_addr", 8, 24), _f("count", 32, 16, low=1)),
    Op.LOADLUT: (_f("glb_addr", 8, 24),),
    Op.VACT: (_f("src", 8, 24), _f("dst", 32, 24), _f("words", 64, 24, low=1)),
    Op.VADD: (_f("src", 8, 24), _f("src2", 32, 24), _f("dst", 64, 24), _f("words", 88, 24, low=1)),
    Op.POOL: (_f("mode", 8, 1), _f("src", 16, 24), _f("dst", 40, 24)),
    Op.SYNC: (_f("mask", 8, 3, low=1),),
    Op.END: (),
}
UNITS = {Op.NOP: Unit.CONTROL, Op.SET: Unit.CONTROL, Op.LOAD: Unit.DMA, Op.STORE: Unit.DMA, Op.SYNC: Unit.CONTROL,
         Op.END: Unit.CONTROL, Op.MATMUL: Unit.CORE}


def unit_of(op: Op) -> Unit:
    return UNITS.get(op, Unit.STAGE)


@dataclass(frozen=True)
class Instruction:
    """One instruction: its opcode and field values (missing fields are 0); ``note`` is for the listing only."""

    op: Op
    fields: dict = field(default_factory=dict)
    note: str = ""

    def __getitem__(self, name: str) -> int:
        return int(self.fields.get(name, 0))

    def __eq__(self, other) -> bool:
        return isinstance(other, Instruction) and self.op == other.op and self._full() == other._full()

    def __hash__(self) -> int:
        return hash((self.op, tuple(sorted(self._full().items()))))

    def _full(self) -> dict:
        return {f.name: int(self.fields.get(f.name, 0)) for f in FORMATS[self.op]}


def encode(instruction: Instruction) -> int:
    """The 128-bit word of ``instruction`` (EncodingError for an unknown field or a value out of range)."""
    op = Op(instruction.op)
    formats = FORMATS[op]
    known = {f.name for f in formats}
    extra = set(instruction.fields) - known
    if extra:
        raise EncodingError(f"{op.name} has no field {', '.join(sorted(extra))}")
    word = int(op)
    for f in formats:
        value = int(instruction.fields.get(f.name, f.low))
        low, high = f.bounds
        if not low <= value <= high:
            raise EncodingError(f"{op.name}.{f.name}={value} outside {low}..{high}")
        word |= (value & ((1 << f.width) - 1)) << f.lsb
    return word


def decode(word: int) -> Instruction:
    """The instruction of a 128-bit word (EncodingError for an unknown opcode or set reserved bits)."""
    code = word & 0xFF
    try:
        op = Op(code)
    except ValueError:
        raise EncodingError(f"unknown opcode 0x{code:02x}") from None
    used = 0xFF
    fields = {}
    for f in FORMATS[op]:
        mask = (1 << f.width) - 1
        used |= mask << f.lsb
        value = (word >> f.lsb) & mask
        if f.signed and value >> (f.width - 1):
            value -= 1 << f.width
        fields[f.name] = value
    if word & ~used & ((1 << 128) - 1) or word >> 128:
        raise EncodingError(f"{op.name}: reserved bits set in 0x{word:032x}")
    return Instruction(op, fields)


def encode_program(instructions) -> bytes:
    return b"".join(encode(item).to_bytes(INSTRUCTION_BYTES, "little") for item in instructions)


def decode_program(data: bytes) -> list[Instruction]:
    if len(data) % INSTRUCTION_BYTES:
        raise EncodingError(f"a program is whole {INSTRUCTION_BYTES}-byte instructions; got {len(data)} bytes")
    return [decode(int.from_bytes(data[i:i + INSTRUCTION_BYTES], "little"))
            for i in range(0, len(data), INSTRUCTION_BYTES)]


def listing_line(index: int, instruction: Instruction, issue: int | None = None, cycles: int | None = None) -> str:
    """``index  word  OP field=value ...  ; note [issue, cycles]`` for the human-readable listing."""
    op = instruction.op
    if op is Op.SET:
        reg = instruction["reg"]
        name = Reg(reg).name if reg in Reg._value2member_map_ else str(reg)
        text = f"SET {name}={instruction['value']}"
    else:
        text = " ".join([op.name] + [f"{f.name}={instruction[f.name]}" for f in FORMATS[op]])
    timing = (f" @{issue}" if issue is not None else "") + (f" +{cycles}" if cycles is not None else "")
    note = f"  ; {instruction.note}" if instruction.note else ""
    return f"{index:6d}  {encode(instruction):032x}  {text}{note}{timing}"
