"""The verification cases of the row-stationary array: the same kinds the GEMM cores run, as passes.

Each ``RsCase`` is one run of ``hdl.benches.rs_driver.RsDriver``: its passes (data included), whether they go
back to back, its stalls, and what ``codesign.contract.rs_timing`` predicts: per pass (alone: command to last
psum) or for the whole sequence and each command interval (back to back). A case whose streams stall is only
held to ``measured >= predicted``. ``conv`` cases also carry the layer, so the assembled output can be compared
with ``hdl.benches.rs_golden.conv2d``. Cases travel to the cocotb bench as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hdl.benches.rs_golden import (ConvTiling, RsPass, conv_passes, predicted_cycles, predicted_interval,
                                   predicted_sequence, random_pass)
from hdl.rs_pe import RsParams

__all__ = ["RsCase", "legal_shape", "rs_standard_cases", "strided_cases"]


@dataclass
class RsCase:
    name: str
    passes: list[RsPass]
    back_to_back: bool = False
    stall: float = 0.0
    seed: int = 0
    predicted: list[int] = field(default_factory=list)  # alone: per pass; back to back: the intervals
    predicted_cycles: int = 0  # alone: the sum of per-pass cycles; back to back: the sequence
    conv: dict | None = None  # {"x": C x H x W, "w": K x C x R x S} of a tiled convolution

    @property
    def timed(self) -> bool:
        return self.stall == 0

    def driver_args(self) -> dict:
        return {"passes": self.passes, "back_to_back": self.back_to_back, "stall": self.stall, "seed": self.seed}

    def to_json(self) -> dict:
        return {
            "name": self.name, "back_to_back": self.back_to_back, "stall": self.stall, "seed": self.seed,
            "predicted": self.predicted, "predicted_cycles": self.predicted_cycles, "conv": self.conv,
            "passes": [{"p": x.p, "q": x.q, "taps": x.taps, "out_cols": x.out_cols, "stride": x.stride,
                        "weights": x.weights.tolist(), "inputs": x.inputs.tolist(),
                        "units": [list(u) if u is not None else None for u in x.units]} for x in self.passes],
        }

    @classmethod
    def from_json(cls, doc: dict) -> "RsCase":
        passes = [RsPass(x["p"], x["q"], x["taps"], x["out_cols"], np.asarray(x["weights"], dtype=object),
                         np.asarray(x["inputs"], dtype=object),
                         [tuple(u) if u is not None else None for u in x["units"]], x.get("stride", 1))
                  for x in doc["passes"]]
        return cls(doc["name"], passes, doc["back_to_back"], doc["stall"], doc["seed"], list(doc["predicted"]),
                   doc["predicted_cycles"], doc["conv"])


def _predict(case: RsCase, params: RsParams) -> RsCase:
    if case.back_to_back:
        case.predicted = [predicted_interval(x, params) for x in case.passes[:-1]]
        case.predicted_cycles = predicted_sequence(case.passes, params)
    else:
        case.predicted = [predicted_cycles(x, params) for x in case.passes]
        case.predicted_cycles = sum(case.predicted)
    return case


def legal_shape(params: RsParams, p: int, q: int, taps: int, out_cols: int) -> tuple[int, int, int, int]:
    """The wanted (p, q, taps, out_cols) shrunk until the pass fits ``params``' scratchpads."""
    taps = max(1, min(taps, params.max_taps))
    q = max(1, min(q, params.activation_rf_words // taps))
    p = max(1, min(p, params.max_p, params.weight_rf_words // (q * taps)))
    return p, q, taps, max(1, min(out_cols, params.max_out_cols))


def rs_standard_cases(params: RsParams, seed: int = 0) -> list[RsCase]:
    """Random, ragged, single-channel, extreme values, zero patterns, back to back, a tiled convolution and
    stalls, sized to fit ``params``."""
    rng = np.random.default_rng(seed)

    def make(*shape, **kwargs):
        return random_pass(params, rng, *legal_shape(params, *shape), **kwargs)

    cases = [
        RsCase("random passes", [make(2, 2, 3, 5), make(3, 1, 2, 4), make(1, 2, 2, 3)]),
        RsCase("ragged sizes", [make(3, 3, 5, 7), make(1, 1, 1, 1), make(2, 1, 4, 2)]),
        RsCase("single channel", [make(2, 1, 3, 6), make(1, 1, 3, 2)]),
        RsCase("extreme values", [make(2, 2, 3, 4, extreme=True), make(1, 3, 2, 3, extreme=True)]),
    ]
    p, q, taps, cols = legal_shape(params, 2, 2, 3, 4)
    pattern = np.zeros((params.sets, params.set_rows, p, q, taps), dtype=bool)
    pattern[..., 1:] = True  # the first tap of every filter-row segment kept
    sparse = random_pass(params, rng, p, q, taps, cols, zero_pattern=pattern)
    sparse.weights[~pattern & (sparse.weights == 0)] = 1
    busy = random_pass(params, rng, p, q, taps, cols, zero_pattern=pattern)
    busy.weights[0, 0] = np.where(busy.weights[0, 0] == 0, 1, busy.weights[0, 0])  # one set row dense
    empty = random_pass(params, rng, p, q, taps, cols, zero_pattern=np.ones_like(pattern))
    cases.append(RsCase("zero weights (given patterns)", [sparse, busy, empty]))
    cases.append(RsCase("back-to-back passes", [make(2, 2, 3, 5), make(1, 3, 2, 4), make(4, 1, 2, 2),
                                                make(1, 1, 1, 3)], back_to_back=True))
    # a tiled convolution: two folds of every dimension a pass cuts (where the array lets it)
    tiling = ConvTiling(*legal_shape(params, 2, 2, 2, 1)[:3])
    r_all = min(params.set_rows + 1, 4)
    s_all = tiling.taps + 1
    h = r_all + min(params.set_cols, 3)
    x = rng.integers(*_range(params.activation_bits, params.activation_signed), size=(tiling.q + 1, h, s_all + 3))
    w = rng.integers(*_range(params.weight_bits, params.weight_signed), size=(tiling.p + 1, tiling.q + 1, r_all, s_all))
    if params.max_out_cols >= 4:
        cases.append(RsCase("tiled convolution = numpy conv", conv_passes(x, w, params, tiling), back_to_back=True,
                            conv={"x": x.tolist(), "w": w.tolist()}))
    cases.append(RsCase("stalled streams", [make(2, 2, 3, 4), make(1, 2, 2, 3), make(2, 1, 2, 2)],
                        back_to_back=True, stall=0.3, seed=seed + 1))
    if params.max_stride > 1:
        cases += strided_cases(params, rng, seed)
    return [_predict(case, params) for case in cases]


def strided_cases(params: RsParams, rng: np.random.Generator, seed: int = 0) -> list[RsCase]:
    """Passes at strides 2..max_stride (a stride below, equal to and above the segment length), back to back
    with unit-stride ones, stalled, and a strided tiled convolution (AlexNet conv1's 11x11 filters at stride 4,
    or the largest stride the array has, cut into filter-row segments)."""
    top = params.max_stride

    def make(p, q, taps, cols, stride, **kwargs):
        return random_pass(params, rng, *legal_shape(params, p, q, taps, cols), stride=stride, **kwargs)

    strides = sorted({2, top})
    cases = [
        RsCase("strided passes", [make(2, 2, 3, 4, u) for u in strides] + [make(1, 2, 2, 3, top)]),
        RsCase("strided back-to-back passes", [make(2, 1, 3, 3, top), make(1, 2, 2, 4, 1), make(2, 2, 3, 2, 2)],
               back_to_back=True),
        RsCase("strided stalled streams", [make(2, 2, 3, 3, top), make(1, 1, 2, 3, 2)], back_to_back=True,
               stall=0.3, seed=seed + 2),
    ]
    stride = min(4, top)
    tiling = ConvTiling(*legal_shape(params, 2, 1, 8, 1)[:3])
    k, c, r_all, s_all = 2, 1, 11, 11
    x = rng.integers(*_range(params.activation_bits, params.activation_signed),
                     size=(c, r_all + stride, s_all + 2 * stride))
    w = rng.integers(*_range(params.weight_bits, params.weight_signed), size=(k, c, r_all, s_all))
    if params.max_out_cols >= 3:
        cases.append(RsCase(f"strided tiled convolution (11x11, stride {stride}) = numpy conv",
                            conv_passes(x, w, params, tiling, stride), back_to_back=True,
                            conv={"x": x.tolist(), "w": w.tolist(), "stride": stride}))
    return cases


def _range(bits: int, is_signed: bool) -> tuple[int, int]:
    return (-(1 << (bits - 1)), 1 << (bits - 1)) if is_signed else (0, 1 << bits)
