"""Build parameters of the GEMM core, checked once, and how they follow from an ``ArchSpec``.

One frozen ``CoreParams`` fixes everything the RTL depends on: dataflow, array shape, operand
formats, the largest tile (the streamed dimension's maximum sets the counters and, for OS, the
accumulator width), and the multiplier choice. The simulator asks the same object for the
``stream_tile`` it must cut GEMMs with, so both sides tile identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from codesign.errors import BitWidthError, HdlError
from hdl.pe import MAX_OPERAND_BITS, MIN_OPERAND_BITS, PeConfig, accumulator_bits
from hdl.systolic import ArrayConfig
from sim.tile_timing import MAX_STREAM_TILE

RTL_DATAFLOWS = ("ws", "os")
DEFAULT_MAX_STREAM = MAX_STREAM_TILE  # largest streamed tile dimension (WS: m, OS: k) of a generated core
MAX_ARRAY_SIDE = 64  # beyond this, Verilog generation and simulation take too long to be useful


def check_dataflow(dataflow: Any) -> str:
    """The dataflow's short name if the RTL generator supports it, else HdlError."""
    name = getattr(dataflow, "value", dataflow)
    if name == "rs":
        raise HdlError(
            "dataflow 'rs' (row stationary) has no RTL generator yet; only the simulator models it. "
            "Use --dataflow ws or os"
        )
    if name not in RTL_DATAFLOWS:
        raise HdlError(f"unknown dataflow {name!r}; the RTL generator supports ws and os")
    return str(name)


@dataclass(frozen=True)
class CoreParams:
    """Everything ``GemmCore`` is built from.

    Tile limits: WS takes k <= rows, n <= cols, m <= max_m; OS takes m <= rows, n <= cols,
    k <= max_k. ``signed`` applies to weights and activations alike.
    """

    dataflow: str = "ws"
    rows: int = 4
    cols: int = 4
    weight_bits: int = 8
    act_bits: int = 8
    signed: bool = True
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
        for name in ("weight_bits", "act_bits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not MIN_OPERAND_BITS <= value <= MAX_OPERAND_BITS:
                raise BitWidthError(
                    f"{name}={value!r} is outside the {MIN_OPERAND_BITS}..{MAX_OPERAND_BITS} bits the integer core supports"
                )
        for name in ("max_m", "max_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise HdlError(f"{name}={value!r} must be a positive integer")
        self.array  # checks multiplier and dsp_pes

    @property
    def reduction_max(self) -> int:
        """Longest reduction one accumulator sees: WS sums over the rows, OS over the streamed k."""
        return self.rows if self.dataflow == "ws" else self.max_k

    @property
    def pe(self) -> PeConfig:
        return PeConfig(self.weight_bits, self.act_bits, self.signed, self.signed, self.reduction_max, self.multiplier)

    @property
    def array(self) -> ArrayConfig:
        return ArrayConfig(self.rows, self.cols, self.pe, self.dsp_pes)

    @property
    def acc_bits(self) -> int:
        return accumulator_bits(self.weight_bits, self.act_bits, self.signed, self.signed, self.reduction_max)

    @property
    def tile_max(self) -> tuple[int, int, int]:
        """Largest (m, k, n) of one tile."""
        if self.dataflow == "ws":
            return self.max_m, self.rows, self.cols
        return self.rows, self.max_k, self.cols

    @property
    def stream_tile(self) -> int:
        """Cap on the streamed dimension (WS: m, OS: k), as ``sim.gemm_timing`` takes it."""
        return self.max_m if self.dataflow == "ws" else self.max_k

    @property
    def top_name(self) -> str:
        sign = "i" if self.signed else "u"
        return f"gemm_{self.dataflow}_{self.rows}x{self.cols}_{sign}{self.weight_bits}x{sign}{self.act_bits}"

    def as_dict(self) -> dict[str, Any]:
        m_max, k_max, n_max = self.tile_max
        return {
            "dataflow": self.dataflow,
            "rows": self.rows,
            "cols": self.cols,
            "weight_bits": self.weight_bits,
            "act_bits": self.act_bits,
            "signed": self.signed,
            "acc_bits": self.acc_bits,
            "tile_max": {"m": m_max, "k": k_max, "n": n_max},
            "multiplier": self.multiplier,
            "dsp_pes": self.array.dsp_count,
        }


def core_params_from_arch(arch: Any, dataflow: Any = None, *, multiplier: str = "dsp", signed: bool = True) -> CoreParams:
    """The core that implements ``arch`` (a ``codesign.arch.ArchSpec``) for one dataflow.

    The dataflow defaults to the arch's first one. For OS, max_k is the longest reduction the
    arch's ``accumulator_bits`` holds (capped at ``DEFAULT_MAX_STREAM``); WS streams up to
    ``DEFAULT_MAX_STREAM`` rows of A. An accumulator too narrow even for one tile is an error.
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
    wb, ab, acc_limit = pe.weight_bits, pe.activation_bits, pe.accumulator_bits
    for label, value in (("weight_bits", wb), ("activation_bits", ab)):
        if isinstance(value, bool) or not isinstance(value, int) or not MIN_OPERAND_BITS <= value <= MAX_OPERAND_BITS:
            raise BitWidthError(
                f"arch {arch.name!r} {label}={value} is outside the {MIN_OPERAND_BITS}..{MAX_OPERAND_BITS} bits "
                "the integer core supports"
            )
    if name == "ws":
        need = accumulator_bits(wb, ab, signed, signed, arch.rows)
        if need > acc_limit:
            raise HdlError(
                f"arch {arch.name!r} accumulator_bits={acc_limit} cannot hold a {arch.rows}-term sum of "
                f"{wb}x{ab}-bit products (needs {need})"
            )
        return CoreParams("ws", arch.rows, arch.cols, wb, ab, signed, max_m=DEFAULT_MAX_STREAM, max_k=arch.rows,
                          multiplier=multiplier)
    max_k = 0
    lo, hi = 1, DEFAULT_MAX_STREAM
    if accumulator_bits(wb, ab, signed, signed, 1) > acc_limit:
        raise HdlError(f"arch {arch.name!r} accumulator_bits={acc_limit} cannot hold one {wb}x{ab}-bit product")
    while lo <= hi:  # largest k whose sum fits the arch's accumulator
        mid = (lo + hi) // 2
        if accumulator_bits(wb, ab, signed, signed, mid) <= acc_limit:
            max_k, lo = mid, mid + 1
        else:
            hi = mid - 1
    return CoreParams("os", arch.rows, arch.cols, wb, ab, signed, max_m=arch.rows, max_k=max_k, multiplier=multiplier)
