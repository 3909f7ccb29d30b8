"""Build parameters of the generated system, checked once, and how they follow from an ``ArchSpec``.

Everything a block of the system depends on is a field of one frozen ``SystemParams``: the GEMM core
(``hdl.params.CoreParams``), the GLB's banks and words, the AXI4 memory port's data width (the spec's
``dram.bytes_per_cycle``: one beat a cycle), the staging slots, accumulator, output buffers, parameter memory
and instruction memory sizes. The numbers the cycle contract uses (``codesign.contract.system_timing``) come
from the same spec, so the RTL and the timing cannot disagree about a size.
"""

from __future__ import annotations

from dataclasses import dataclass

from codesign.arch import ArchSpec
from codesign.contract.isa import INSTRUCTION_BYTES
from codesign.contract.system_timing import LUT_BYTES, PARAM_ENTRY_BYTES, STAGE_ROWS
from codesign.errors import HdlError
from hdl.params import CoreParams, core_params_from_arch

__all__ = ["SystemParams", "system_params_from_arch", "N_CONFIG_REGS", "DEFAULT_ACC_ROWS", "PARAM_ENTRIES",
           "DEFAULT_IMEM_DEPTH", "DRAM_ADDRESS_BITS"]

N_CONFIG_REGS = 30  # SET registers 0..29 (codesign.contract.isa.Reg)
DEFAULT_ACC_ROWS = 2048  # accumulator rows (codesign.compiler.program.DEFAULT_ACC_ROWS)
PARAM_ENTRIES = 1024  # parameter memory entries (codesign.compiler.program.PARAM_ENTRIES)
DEFAULT_IMEM_DEPTH = 8192  # instructions the instruction memory holds
DRAM_ADDRESS_BITS = 32  # AXI4 address width (byte addresses)


def _power_of_two(value: int) -> bool:
    return value >= 1 and value & (value - 1) == 0


@dataclass(frozen=True)
class SystemParams:
    """What the system RTL is built from (see module docstring). Build with ``system_params_from_arch``; the
    constructor checks every field and raises HdlError with the field and the reason."""

    core: CoreParams
    glb_bytes: int
    glb_banks: int
    glb_word_bits: int
    glb_words_per_cycle: int
    axi_data_bytes: int  # AXI4 data bus width in bytes: dram.bytes_per_cycle, one beat per cycle
    dram_latency_cycles: int  # the memory's latency to the first read beat (the memory model's, not the RTL's)
    stage_rows: int = STAGE_ROWS
    acc_rows: int = DEFAULT_ACC_ROWS
    param_entries: int = PARAM_ENTRIES
    imem_depth: int = DEFAULT_IMEM_DEPTH

    def __post_init__(self):
        if not _power_of_two(self.glb_banks):
            raise HdlError(f"glb.banks={self.glb_banks}: the system generator needs a power of two")
        if self.glb_word_bits % 8 or not _power_of_two(self.glb_word_bits // 8):
            raise HdlError(f"glb.word_bits={self.glb_word_bits}: the system generator needs a power-of-two number "
                           "of bytes")
        if self.glb_words_per_cycle != 1:
            raise HdlError(f"glb.words_per_cycle={self.glb_words_per_cycle}: the system generator builds banks of "
                           "one access a cycle per port")
        if self.glb_bytes % (self.glb_banks * self.word_bytes):
            raise HdlError(f"glb.size_bytes={self.glb_bytes} is not a whole number of {self.glb_banks} banks of "
                           f"{self.word_bytes}-byte words")
        if not _power_of_two(self.axi_data_bytes) or self.axi_data_bytes > self.word_bytes:
            raise HdlError(f"dram.bytes_per_cycle={self.axi_data_bytes}: the system's AXI4 port needs a power of two "
                           f"of at most the {self.word_bytes}-byte GLB word")
        if self.core.rows > self.word_bytes or self.core.cols > self.word_bytes:
            raise HdlError(f"a {self.core.rows}x{self.core.cols} array needs GLB words of at least "
                           f"{max(self.core.rows, self.core.cols)} bytes (glb.word_bits={self.glb_word_bits})")
        if self.core.weight_bits != 8 or self.core.activation_bits != 8 or not (
                self.core.weight_signed and self.core.activation_signed):
            raise HdlError("the system runs signed int8 weights and activations (docs/isa.md, Limits)")

    @property
    def rows(self) -> int:
        return self.core.rows

    @property
    def cols(self) -> int:
        return self.core.cols

    @property
    def dataflow(self) -> str:
        return self.core.dataflow

    @property
    def word_bytes(self) -> int:
        """Bytes per GLB word: int8 lanes per staging row, output row and GLB access."""
        return self.glb_word_bits // 8

    @property
    def glb_words(self) -> int:
        return self.glb_bytes // self.word_bytes

    @property
    def bank_words(self) -> int:
        """Words per bank: word w is at address w // banks of bank w mod banks."""
        return self.glb_words // self.glb_banks

    @property
    def beats_per_word(self) -> int:
        """AXI4 beats per GLB word."""
        return self.word_bytes // self.axi_data_bytes

    @property
    def beats_per_instruction(self) -> int:
        return INSTRUCTION_BYTES // self.axi_data_bytes

    @property
    def param_words(self) -> int:
        """GLB words per parameter entry (16 bytes)."""
        return max(1, PARAM_ENTRY_BYTES // self.word_bytes)

    @property
    def lut_words(self) -> int:
        return LUT_BYTES // self.word_bytes


def system_params_from_arch(arch: ArchSpec, dataflow: str, *, acc_rows: int = DEFAULT_ACC_ROWS,
                            imem_depth: int = DEFAULT_IMEM_DEPTH) -> SystemParams:
    """The system ``codesign hdl --system`` builds for ``arch`` under ``dataflow`` ('ws' or 'os'): the core
    ``codesign hdl`` builds, the spec's GLB and DRAM port. Raises HdlError naming what the generator cannot build."""
    core = core_params_from_arch(arch, dataflow)
    bpc = arch.dram.bytes_per_cycle
    if float(bpc) != int(bpc):
        raise HdlError(f"dram.bytes_per_cycle={bpc}: the system's AXI4 port moves whole bytes a cycle")
    return SystemParams(core=core, glb_bytes=arch.glb.size_bytes, glb_banks=arch.glb.banks,
                        glb_word_bits=arch.glb.word_bits, glb_words_per_cycle=arch.glb.words_per_cycle,
                        axi_data_bytes=int(bpc), dram_latency_cycles=arch.dram.latency_cycles,
                        acc_rows=acc_rows, imem_depth=imem_depth)
