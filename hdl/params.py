"""Build parameters of the GEMM core, checked once, and how they follow from an ``ArchSpec``.

One frozen ``CoreParams`` fixes everything the RTL depends on: dataflow, array shape, the PE's
operand formats and multiplier (spelled as ``codesign.pe.PeSpec`` spells them: ``weight_bits``,
``activation_bits``, ``weight_signed``, ``activation_signed``, ``multiplier``), the largest tile
(the streamed dimension's maximum sets the counters and, for OS, the reduction the accumulator is
sized for), and how many PEs get a DSP multiplier. Which tile dimension the array bounds and which
it streams come from the cycle contract (``codesign.contract.tile_timing.contract``); the
simulator cuts GEMMs with the same ``stream_tile``, so both sides tile identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from codesign.contract import binary_timing, tile_timing
from codesign.contract.tile_timing import MAX_STREAM_TILE
from codesign.errors import BitWidthError, HdlError
from codesign.pe import PeKind, PeSpec, accumulator_bits
from hdl.arrays import RTL_DATAFLOWS, check_dataflow
from hdl.pe import MAX_OPERAND_BITS, MIN_OPERAND_BITS, check_multiplier
from hdl.systolic import ArrayConfig

__all__ = ["RTL_DATAFLOWS", "DEFAULT_MAX_STREAM", "MAX_ARRAY_SIDE", "check_dataflow", "CoreParams",
           "core_params_from_arch", "BinaryCoreParams", "binary_params_from_arch"]

DEFAULT_MAX_STREAM = MAX_STREAM_TILE  # largest streamed tile dimension (WS: m, OS: k) of a generated core
MAX_ARRAY_SIDE = 64  # beyond this, Verilog generation and simulation take too long to be useful


def _check_operand_bits(name: str, value: Any, owner: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_OPERAND_BITS <= value <= MAX_OPERAND_BITS:
        raise BitWidthError(
            f"{owner}{name}={value!r} is outside the {MIN_OPERAND_BITS}..{MAX_OPERAND_BITS} bits the integer core supports"
        )


def _check_int_mac(pe: PeSpec, owner: str) -> None:
    if pe.kind is not PeKind.INT_MAC:
        raise HdlError(f"{owner}no generator for PE kind {pe.kind.value!r} in the GEMM core: it builds "
                       f"{PeKind.INT_MAC.value!r} PEs (hdl.binary has the XNOR-popcount units)")


@dataclass(frozen=True)
class CoreParams:
    """Everything ``GemmCore`` is built from.

    Fields: ``dataflow`` ('ws' or 'os'); ``rows`` x ``cols`` PEs (1..64 each); ``weight_bits`` and
    ``activation_bits`` (2..16); ``weight_signed`` / ``activation_signed`` (two's complement, else
    unsigned); ``max_m`` / ``max_k``, the largest streamed tile dimension (WS streams m, OS streams
    k; the other one is ignored); ``multiplier`` ('dsp' or 'logic'); ``dsp_pes`` (None: every PE
    gets ``multiplier``; an int: the first ``dsp_pes`` PEs row-major get 'dsp', the rest 'logic').
    Tile limits: WS takes k <= rows, n <= cols, m <= max_m; OS takes m <= rows, n <= cols,
    k <= max_k. The accumulator is exactly as wide as the longest reduction needs (``acc_bits``).

    Raises HdlError (dataflow, sizes, multiplier, dsp_pes) or BitWidthError (operand widths).
    """

    dataflow: str = "ws"
    rows: int = 4
    cols: int = 4
    weight_bits: int = 8
    activation_bits: int = 8
    weight_signed: bool = True
    activation_signed: bool = True
    max_m: int = DEFAULT_MAX_STREAM
    max_k: int = DEFAULT_MAX_STREAM
    multiplier: str = "dsp"
    dsp_pes: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dataflow", check_dataflow(self.dataflow))
        for name in ("rows", "cols"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise HdlError(f"array {name}={value!r} must be a positive integer")
            if value > MAX_ARRAY_SIDE:
                raise HdlError(f"array {name}={value} is above the generator's limit of {MAX_ARRAY_SIDE}")
        for name in ("weight_bits", "activation_bits"):
            _check_operand_bits(name, getattr(self, name))
        for name in ("weight_signed", "activation_signed"):
            if not isinstance(getattr(self, name), bool):
                raise HdlError(f"{name}={getattr(self, name)!r} must be True or False")
        for name in ("max_m", "max_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise HdlError(f"{name}={value!r} must be a positive integer")
        check_multiplier(self.multiplier)
        self.array  # checks dsp_pes

    @classmethod
    def from_pe(cls, dataflow: Any, rows: int, cols: int, pe: PeSpec, *, max_m: int = DEFAULT_MAX_STREAM,
                max_k: int = DEFAULT_MAX_STREAM, dsp_pes: int | None = None) -> "CoreParams":
        """The core of ``rows`` x ``cols`` PEs of ``pe`` (a ``codesign.pe.PeSpec``: widths, signedness
        and multiplier; its ``accumulator_bits`` is not a limit here, see ``core_params_from_arch``).

        Raises HdlError for a PE kind other than integer MAC, and as ``CoreParams`` otherwise.
        """
        if not isinstance(pe, PeSpec):
            raise HdlError(f"CoreParams.from_pe needs a codesign.pe.PeSpec, not {type(pe).__name__}")
        _check_int_mac(pe, "")
        return cls(dataflow, rows, cols, pe.weight_bits, pe.activation_bits, pe.weight_signed, pe.activation_signed,
                   max_m=max_m, max_k=max_k, multiplier=pe.multiplier, dsp_pes=dsp_pes)

    @property
    def signed(self) -> bool:
        """Whether products, accumulators and results are two's complement (either operand is)."""
        return self.weight_signed or self.activation_signed

    @property
    def tile_max(self) -> tuple[int, int, int]:
        """Largest (m, k, n) of one tile: the contract's array bounds, the streamed one at max_m / max_k."""
        bounds = tile_timing.contract(self.dataflow).bounds(self.rows, self.cols)
        streamed = {"m": self.max_m, "k": self.max_k}
        return tuple(streamed[d] if bounds[d] is None else bounds[d] for d in ("m", "k", "n"))

    @property
    def stream_tile(self) -> int:
        """Cap on the streamed dimension (WS: m, OS: k), as ``codesign.contract.gemm_timing`` takes it."""
        return {"m": self.max_m, "k": self.max_k}[tile_timing.contract(self.dataflow).streamed_dim]

    @property
    def reduction_max(self) -> int:
        """Longest reduction one accumulator sees: the largest tile k (WS: the rows, OS: max_k)."""
        return self.tile_max[1]

    @property
    def acc_bits(self) -> int:
        """Width of the accumulators and result lanes: exact for ``reduction_max`` products."""
        return accumulator_bits(self.weight_bits, self.activation_bits, self.weight_signed, self.activation_signed,
                                self.reduction_max)

    @property
    def pe(self) -> PeSpec:
        """The PE as a ``codesign.pe.PeSpec`` (integer MAC, ``accumulator_bits`` = the built ``acc_bits``)."""
        return PeSpec(weight_bits=self.weight_bits, activation_bits=self.activation_bits,
                      accumulator_bits=self.acc_bits, kind=PeKind.INT_MAC, weight_signed=self.weight_signed,
                      activation_signed=self.activation_signed, multiplier=self.multiplier)

    @property
    def array(self) -> ArrayConfig:
        """The array the core instantiates: shape, PE, reduction and DSP split."""
        return ArrayConfig(self.rows, self.cols, self.reduction_max, self.pe, self.dsp_pes)

    @property
    def top_name(self) -> str:
        """Verilog module name, e.g. ``gemm_ws_4x4_i8xi8`` (i: signed, u: unsigned; weights x activations)."""
        w = "i" if self.weight_signed else "u"
        a = "i" if self.activation_signed else "u"
        return f"gemm_{self.dataflow}_{self.rows}x{self.cols}_{w}{self.weight_bits}x{a}{self.activation_bits}"

    def as_dict(self) -> dict[str, Any]:
        """The build parameters a manifest lists (JSON-serializable)."""
        m_max, k_max, n_max = self.tile_max
        return {
            "dataflow": self.dataflow,
            "rows": self.rows,
            "cols": self.cols,
            "weight_bits": self.weight_bits,
            "activation_bits": self.activation_bits,
            "weight_signed": self.weight_signed,
            "activation_signed": self.activation_signed,
            "acc_bits": self.acc_bits,
            "tile_max": {"m": m_max, "k": k_max, "n": n_max},
            "multiplier": self.multiplier,
            "dsp_pes": self.array.dsp_count,
        }


def core_params_from_arch(arch: Any, dataflow: Any = None, *, multiplier: str | None = None,
                          signed: bool | None = None) -> CoreParams:
    """The core that implements ``arch`` (a ``codesign.arch.ArchSpec``) for one dataflow.

    Parameters:
      ``arch``: its ``rows``, ``cols``, ``dataflows`` and ``pe`` (a ``codesign.pe.PeSpec``: operand
      widths, ``weight_signed`` / ``activation_signed``, ``multiplier``, and ``accumulator_bits``,
      the widest accumulator the arch provides).
      ``dataflow``: 'ws', 'os' or a ``Dataflow``; None takes the arch's first one.
      ``multiplier``: overrides ``arch.pe.multiplier`` when given.
      ``signed``: when given, makes weights and activations both signed (True) or unsigned (False),
      overriding ``arch.pe``.

    Returns the ``CoreParams``. WS streams up to ``DEFAULT_MAX_STREAM`` rows of A and sums over the
    rows; for OS, max_k is the longest reduction the arch's ``accumulator_bits`` holds (capped at
    ``DEFAULT_MAX_STREAM``).

    Raises HdlError when the arch lists no or not this dataflow, its PE kind is not integer MAC
    ("no generator for PE kind ..."), its array is empty or above ``MAX_ARRAY_SIDE``, or its
    accumulator cannot hold even one tile's sum; BitWidthError when an operand is outside 2..16 bits.
    """
    if dataflow is None:
        dataflows = getattr(arch, "dataflows", ())
        if not dataflows:
            raise HdlError(f"arch {getattr(arch, 'name', '?')!r} lists no dataflow")
        dataflow = dataflows[0]
    name = check_dataflow(dataflow)
    supports = getattr(arch, "supports", None)
    if supports is not None:
        from codesign.arch import Dataflow

        if not supports(Dataflow(name)):
            listed = ", ".join(getattr(d, "value", str(d)) for d in arch.dataflows)
            raise HdlError(f"arch {arch.name!r} does not support dataflow {name!r} (it lists {listed})")
    for label in ("rows", "cols"):
        value = getattr(arch, label)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise HdlError(f"arch {arch.name!r} {label}={value!r}: the array needs at least one PE per side")
        if value > MAX_ARRAY_SIDE:
            raise HdlError(f"arch {arch.name!r} {label}={value} is above the generator's limit of {MAX_ARRAY_SIDE}")
    pe = arch.pe
    if not isinstance(pe, PeSpec):
        raise HdlError(f"arch {arch.name!r} pe must be a codesign.pe.PeSpec, not {type(pe).__name__}")
    _check_int_mac(pe, f"arch {arch.name!r}: ")
    wb, ab, acc_limit = pe.weight_bits, pe.activation_bits, pe.accumulator_bits
    for label, value in (("weight_bits", wb), ("activation_bits", ab)):
        _check_operand_bits(label, value, f"arch {arch.name!r} ")
    ws_, as_ = (pe.weight_signed, pe.activation_signed) if signed is None else (signed, signed)
    multiplier = pe.multiplier if multiplier is None else multiplier

    def need(reduction: int) -> int:
        return accumulator_bits(wb, ab, ws_, as_, reduction)

    bounds = tile_timing.contract(name).bounds(arch.rows, arch.cols)
    if bounds["k"] is not None:  # the reduction is bounded by the array (WS: its rows)
        max_k = bounds["k"]
        if need(max_k) > acc_limit:
            raise HdlError(
                f"arch {arch.name!r} accumulator_bits={acc_limit} cannot hold a {max_k}-term sum of "
                f"{wb}x{ab}-bit products (needs {need(max_k)})"
            )
    else:  # the reduction streams (OS): the longest k whose sum the arch's accumulator holds
        if need(1) > acc_limit:
            raise HdlError(f"arch {arch.name!r} accumulator_bits={acc_limit} cannot hold one {wb}x{ab}-bit product")
        max_k, lo, hi = 0, 1, DEFAULT_MAX_STREAM
        while lo <= hi:
            mid = (lo + hi) // 2
            if need(mid) <= acc_limit:
                max_k, lo = mid, mid + 1
            else:
                hi = mid - 1
    max_m = DEFAULT_MAX_STREAM if bounds["m"] is None else bounds["m"]
    return CoreParams(name, arch.rows, arch.cols, wb, ab, ws_, as_, max_m=max_m, max_k=max_k, multiplier=multiplier)


@dataclass(frozen=True)
class BinaryCoreParams:
    """Everything ``hdl.binary_core.BinaryGemmCore`` is built from (the binarized XNOR-popcount core).

    Fields: ``rows`` x ``cols`` PEs (1..64 each); ``word_bits``, the packed word one PE takes per edge
    (1..1024: binary MACs per PE per cycle, ``PeSpec.word_bits``); ``max_k``, the longest reduction of
    one tile in binary values (bits), at least ``word_bits`` and at most ``binary_timing.MAX_WORDS`` words.
    Tile limits: m <= rows, n <= cols, k <= max_k. The accumulators are exactly as wide as a
    ``max_k``-long {-1,+1} dot product needs (``acc_bits``).

    Raises HdlError for any value out of range.
    """

    rows: int = 4
    cols: int = 4
    word_bits: int = 32
    max_k: int = 1024

    dataflow = binary_timing.DATAFLOW  # the contract's name; not a field

    def __post_init__(self) -> None:
        for name, low, high in (("rows", 1, MAX_ARRAY_SIDE), ("cols", 1, MAX_ARRAY_SIDE), ("word_bits", 1, 1024)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise HdlError(f"binary core {name}={value!r} must be an integer in {low}..{high}")
        value = self.max_k
        if isinstance(value, bool) or not isinstance(value, int) or value < self.word_bits:
            raise HdlError(f"binary core max_k={value!r} must be an integer >= word_bits={self.word_bits}")
        words = binary_timing.k_words(value, self.word_bits)
        if words > binary_timing.MAX_WORDS:
            raise HdlError(f"binary core max_k={value} is {words} words of {self.word_bits} bits, above "
                           f"MAX_WORDS={binary_timing.MAX_WORDS}")
        if self.acc_bits > 64:
            raise HdlError(f"binary core max_k={value} needs {self.acc_bits}-bit accumulators (at most 64)")

    @property
    def tile_max(self) -> tuple[int, int, int]:
        """Largest (m, k, n) of one tile: m by the rows, n by the columns, k (bits) by ``max_k``."""
        return self.rows, self.max_k, self.cols

    @property
    def max_words(self) -> int:
        """Packed words of the longest tile reduction."""
        return binary_timing.k_words(self.max_k, self.word_bits)

    @property
    def k_tile(self) -> int:
        """The K chunk (bits) a host and the simulator cut GEMMs into: ``max_k`` rounded down to whole words."""
        return self.max_k // self.word_bits * self.word_bits

    @property
    def reduction_max(self) -> int:
        return self.max_k

    @property
    def acc_bits(self) -> int:
        """Width of the accumulators and result lanes: exact for a ``max_k``-long {-1,+1} dot product."""
        return binary_timing.acc_bits_for(self.max_k)

    @property
    def signed(self) -> bool:
        return True

    @property
    def pe(self) -> PeSpec:
        """The PE as a ``codesign.pe.PeSpec`` (XNOR-popcount, ``accumulator_bits`` = the built ``acc_bits``)."""
        return PeSpec(weight_bits=1, activation_bits=1, accumulator_bits=self.acc_bits, kind=PeKind.XNOR_POPCOUNT,
                      word_bits=self.word_bits)

    @property
    def top_name(self) -> str:
        """Verilog module name, e.g. ``xnor_gemm_4x4_w32``."""
        return f"xnor_gemm_{self.rows}x{self.cols}_w{self.word_bits}"

    def as_dict(self) -> dict[str, Any]:
        """The build parameters a manifest lists (JSON-serializable)."""
        return {
            "dataflow": self.dataflow,
            "pe_kind": PeKind.XNOR_POPCOUNT.value,
            "rows": self.rows,
            "cols": self.cols,
            "word_bits": self.word_bits,
            "max_k": self.max_k,
            "max_words": self.max_words,
            "k_tile": self.k_tile,
            "acc_bits": self.acc_bits,
            "tile_max": {"m": self.rows, "k": self.max_k, "n": self.cols},
        }

    def fields(self) -> dict[str, int]:
        """The constructor arguments (what a bench rebuilds the params from)."""
        return {"rows": self.rows, "cols": self.cols, "word_bits": self.word_bits, "max_k": self.max_k}


def binary_params_from_arch(arch: Any, *, rows: int | None = None, cols: int | None = None,
                            word_bits: int | None = None) -> BinaryCoreParams:
    """The binarized core that implements ``arch.binary_array`` (a ``codesign.arch.BinaryArraySpec``).

    ``rows``, ``cols``, ``word_bits`` override the spec's. ``max_k`` is the longest whole-word reduction
    (at most ``binary_timing.MAX_WORDS`` words) the spec's ``accumulator_bits`` holds
    (``binary_timing.max_tile_k``), which is also the K chunk the simulator's ``xnor`` model tiles with.

    Raises HdlError when the arch has no binary array, or its accumulator cannot hold one word's sum, and
    as ``BinaryCoreParams`` otherwise.
    """
    spec = getattr(arch, "binary_array", None)
    name = getattr(arch, "name", "?")
    if spec is None:
        raise HdlError(f"arch {name!r} has no binary_array (add a binary_array block with rows, cols, "
                       "word_bits and accumulator_bits to its YAML)")
    rows = spec.rows if rows is None else rows
    cols = spec.cols if cols is None else cols
    word_bits = spec.word_bits if word_bits is None else word_bits
    for label, value in (("rows", rows), ("cols", cols)):
        if isinstance(value, int) and not isinstance(value, bool) and value > MAX_ARRAY_SIDE:
            raise HdlError(f"arch {name!r} binary_array {label}={value} is above the generator's limit of "
                           f"{MAX_ARRAY_SIDE}")
    if isinstance(word_bits, bool) or not isinstance(word_bits, int) or not 1 <= word_bits <= 1024:
        raise HdlError(f"arch {name!r} binary_array word_bits={word_bits!r} must be an integer in 1..1024")
    try:
        max_k = binary_timing.max_tile_k(word_bits, spec.accumulator_bits)
    except ValueError as exc:
        raise HdlError(f"arch {name!r} binary_array: {exc}") from None
    return BinaryCoreParams(rows, cols, word_bits, max_k)
