"""Golden cases of the stand-alone units (``hdl.units``) from their numpy models, for the cocotb benches.

A clocked or combinational unit gets a *step script* for ``hdl.benches.script_bench``: segments of steps,
each step the inputs to drive and every output's expected value once logic has settled, before the
rising edge that ends the step (registered outputs show the state the earlier edges left). The expected
values come from a cycle model per unit built on the numpy golden models (``hdl.binary.xnor_popcount_dot``,
``LutActivation.table``, ``fold_batchnorm`` against sign(BN(x))). Segments may carry latency probes: an
input changes at ``step`` and ``output`` must show its new value ``predicted`` edges later.
The softmax unit gets vector phases for ``hdl.benches.softmax_bench`` (``SoftmaxUnit.model``).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from hdl.binary import fold_batchnorm, pack_words, to_bits, valid_bits_per_word
from hdl.units import UnitParams

__all__ = ["SCRIPT_BENCH", "SOFTMAX_BENCH", "bench_module", "unit_cases", "xnor_dot_rtl", "wrap_signed",
           "softmax_cycles", "softmax_period"]

SCRIPT_BENCH = "hdl.benches.script_bench"
SOFTMAX_BENCH = "hdl.benches.softmax_bench"


def bench_module(params: UnitParams) -> str:
    return SOFTMAX_BENCH if params.unit == "softmax" else SCRIPT_BENCH


def softmax_cycles(n: int) -> int:
    """Edges from the edge accepting a vector's first element to the edge sending its last output."""
    return 3 * n + 3


def softmax_period(n: int) -> int:
    """Edges from the edge accepting a vector's first element to the one accepting the next vector's first."""
    return 3 * n + 4


def wrap_signed(value: int, bits: int) -> int:
    """``value`` modulo 2**bits as a two's-complement number (how a registered accumulator wraps)."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def xnor_dot_rtl(a: int, w: int, n_valid: int, word_bits: int) -> int:
    """What the PE computes for any ``n_valid`` its port can hold: bits at or above ``min(n_valid, word_bits)``
    are masked and ``n_valid`` itself is subtracted (for n_valid <= word_bits, the {-1,+1} dot product)."""
    mask = (1 << min(n_valid, word_bits)) - 1
    agree = ~(int(a) ^ int(w)) & mask
    return 2 * bin(agree).count("1") - n_valid


def _segment(name: str, steps: list[dict], probes: list[dict] | None = None, detail: str = "") -> dict:
    return {"name": name, "steps": steps, "probes": probes or [], "detail": detail}


class _Machine:
    """A cycle model: ``inputs`` held between steps, ``state`` updated on each step's edge by ``edge``;
    ``outputs(inputs, state)`` are the settled values a step expects."""

    def __init__(self, inputs: dict[str, int], state: Any, outputs: Callable, edge: Callable):
        self.inputs, self.state, self._outputs, self._edge = dict(inputs), state, outputs, edge
        self.reset_state = state

    def step(self, **changes: int) -> dict:
        """One step: ``changes`` to the held inputs (``rst=1`` makes the edge a synchronous reset)."""
        self.inputs.update(changes)
        expect = self._outputs(self.inputs, self.state)
        self.state = self.reset_state if self.inputs.get("rst") else self._edge(self.inputs, self.state)
        return {"set": dict(changes), "expect": expect}


# --- XNOR-popcount PE, array and threshold array ---------------------------------------------------------

def _xnor_machine(p: dict, unit: str) -> tuple[_Machine, dict, list[str]]:
    wb, acc_bits = p["word_bits"], p["acc_bits"]
    single = unit == "xnor-pe"
    rows, cols = (1, 1) if single else (p["rows"], p["cols"])
    a_names = ["a"] if single else [f"a__{r}" for r in range(rows)]
    w_names = ["w"] if single else [f"w__{c}" for c in range(cols)]
    acc_name = (lambda r, c: "acc") if single else (lambda r, c: f"acc__{r}__{c}")
    thresholds = unit == "xnor-threshold-array"
    inputs = {name: 0 for name in [*a_names, *w_names, "n_valid", "en", "clear", "rst"]}
    if thresholds:
        inputs |= {f"thr__{c}": 0 for c in range(cols)} | {"flip": 0}
    signed = {acc_name(r, c): True for r in range(rows) for c in range(cols)}
    if single:
        signed["dot"] = True
    if thresholds:
        signed |= {f"out__{r}": False for r in range(rows)}

    def dots(i):
        return [[xnor_dot_rtl(i[a_names[r]], i[w_names[c]], i["n_valid"], wb) for c in range(cols)]
                for r in range(rows)]

    def outputs(i, acc):
        out = {acc_name(r, c): acc[r][c] for r in range(rows) for c in range(cols)}
        if single:
            out["dot"] = dots(i)[0][0]
        if thresholds:
            for r in range(rows):
                bits = [(acc[r][c] >= wrap_signed(i[f"thr__{c}"], acc_bits + 1)) ^ bool(i["flip"] >> c & 1)
                        for c in range(cols)]
                out[f"out__{r}"] = sum(int(b) << c for c, b in enumerate(bits))
        return out

    def edge(i, acc):
        if i["en"]:
            d = dots(i)
            return [[wrap_signed((0 if i["clear"] else acc[r][c]) + d[r][c], acc_bits) for c in range(cols)]
                    for r in range(rows)]
        if i["clear"]:
            return [[0] * cols for _ in range(rows)]
        return acc

    machine = _Machine(inputs, [[0] * cols for _ in range(rows)], outputs, edge)
    return machine, signed, [*a_names, *w_names]


def _xnor_cases(params: UnitParams, seed: int) -> dict:
    p, unit = params.as_dict(), params.unit
    wb, acc_bits = p["word_bits"], p["acc_bits"]
    machine, signed, operand_names = _xnor_machine(p, unit)
    single = unit == "xnor-pe"
    rows, cols = (1, 1) if single else (p["rows"], p["cols"])
    a_names, w_names = operand_names[:rows], operand_names[rows:]
    acc0 = "acc" if single else "acc__0__0"
    rng = np.random.default_rng(seed)
    full = (1 << wb) - 1
    segments = [_segment("after reset", [machine.step()], detail="acc = 0")]

    # Latency: a full agreeing word (dot = word_bits) cleared into acc, then idle.
    steps = [machine.step(**{n: full for n in operand_names}, n_valid=wb, en=1, clear=1), machine.step(en=0, clear=0),
             machine.step()]
    probes = [{"output": acc0, "step": 0, "predicted": 1}]
    if single:
        steps.append(machine.step(a=0))  # dot follows a with no edge
        probes.append({"output": "dot", "step": 3, "predicted": 0})
    segments.append(_segment("latency probe", steps, probes))

    # Reductions of lengths around the word size, each started by a clear.
    longest = (2 ** (acc_bits - 1) - 1)
    lengths = sorted({k for k in (1, wb - 1, wb, wb + 1, 3 * wb, 2 * wb + max(1, wb // 3),
                                  int(rng.integers(1, 8 * wb + 1))) if 1 <= k <= min(longest, 64 * wb)})
    for k in lengths:
        a = to_bits(rng.choice([-1, 1], size=(rows, k)))
        w = to_bits(rng.choice([-1, 1], size=(cols, k)))
        a_words, w_words = pack_words(a, wb), pack_words(w, wb)
        steps = []
        if unit == "xnor-threshold-array":  # this reduction's thresholds, set while the array idles
            thr = rng.integers(-k, k + 2, size=cols)
            flips = rng.integers(0, 2, size=cols)
            steps.append(machine.step(**{f"thr__{c}": int(thr[c]) & ((1 << (acc_bits + 1)) - 1) for c in range(cols)},
                                      flip=int(sum(int(f) << c for c, f in enumerate(flips)))))
        for t, n_valid in enumerate(valid_bits_per_word(k, wb)):
            words = {a_names[r]: int(a_words[r][t]) for r in range(rows)} | {
                w_names[c]: int(w_words[c][t]) for c in range(cols)}
            steps.append(machine.step(**words, n_valid=n_valid, en=1, clear=int(t == 0)))
        steps.append(machine.step(en=0, clear=0))
        words = -(-k // wb)
        last = k - (words - 1) * wb
        segments.append(_segment(f"reduction K={k}", steps, detail=f"{words} word{'s' if words > 1 else ''}, the last "
                                                                   f"with {last} valid bit{'s' if last > 1 else ''}"))

    segments.append(_segment("rst clears acc", [
        machine.step(**{n: full for n in operand_names}, n_valid=wb, en=1, clear=1),
        machine.step(en=1, clear=0, rst=1), machine.step(en=0, rst=0)], detail="rst wins over en"))
    segments.append(_segment("clear without en, hold", [machine.step(en=0, clear=1), machine.step(clear=0),
                                                        machine.step(**{n: full for n in operand_names}, n_valid=wb,
                                                                     en=1, clear=1),
                                                        machine.step(en=0), machine.step()]))
    if 2 ** (acc_bits - 1) <= 64 * wb:  # the accumulator wraps within 64 agreeing full words
        beats = -(-(2 ** (acc_bits - 1)) // wb)
        steps = [machine.step(**{n: full for n in operand_names}, n_valid=wb, en=1, clear=int(t == 0))
                 for t in range(beats)]
        steps.append(machine.step(en=0, clear=0))
        segments.append(_segment("accumulator wraps", steps, detail=f"{beats * wb} > 2**{acc_bits - 1} - 1"))
    field_max = (1 << wb.bit_length()) - 1
    if single and field_max > wb:
        segments.append(_segment(f"n_valid {field_max} > word_bits", [
            machine.step(a=int(rng.integers(0, full + 1)), w=int(rng.integers(0, full + 1)), n_valid=field_max,
                         en=0, clear=0)], detail="dot = 2*popcount(xnor) - n_valid, as documented"))
    return {"clocked": True, "inputs": list(machine.inputs), "outputs": signed, "segments": segments}


# --- threshold unit ------------------------------------------------------------------------------------

def _sign_bn(x, gamma, beta, mean, var, eps):
    return (gamma * (x - mean) / np.sqrt(var + eps) + beta) >= 0


def _threshold_cases(params: UnitParams, seed: int) -> dict:
    p = params.as_dict()
    channels, acc_bits = p["channels"], p["acc_bits"]
    rng = np.random.default_rng(seed)
    lo, hi = -(2 ** (acc_bits - 1)), 2 ** (acc_bits - 1) - 1
    tlo, thi = -(2 ** acc_bits), 2 ** acc_bits - 1
    names = [f"dot__{c}" for c in range(channels)] + [f"thr__{c}" for c in range(channels)] + ["flip"]

    def step(dot, thr, flip, expect_bits=None):
        bits = expect_bits if expect_bits is not None else [(int(d) >= int(t)) ^ bool(f)
                                                            for d, t, f in zip(dot, thr, flip)]
        values = {f"dot__{c}": int(dot[c]) & ((1 << acc_bits) - 1) for c in range(channels)}
        values |= {f"thr__{c}": int(thr[c]) & ((1 << (acc_bits + 1)) - 1) for c in range(channels)}
        values["flip"] = int(sum(int(f) << c for c, f in enumerate(flip)))
        return {"set": values, "expect": {"out": int(sum(int(b) << c for c, b in enumerate(bits)))}}

    def random_vector(dlo, dhi, t_lo, t_hi):
        return (rng.integers(dlo, dhi + 1, size=channels), rng.integers(t_lo, t_hi + 1, size=channels),
                rng.integers(0, 2, size=channels))

    zeros = np.zeros(channels, dtype=np.int64)
    segments = []
    steps = [step(zeros, zeros + 1, zeros), step(zeros + 1, zeros + 1, zeros)]
    segments.append(_segment("latency probe", steps, [{"output": "out", "step": 1, "predicted": 0}]))
    segments.append(_segment("random sums and thresholds", [step(*random_vector(lo, hi, tlo, thi)) for _ in range(40)]))
    d, t, f = random_vector(lo, hi, lo, hi)
    segments.append(_segment("sum equal to threshold", [step(d, d, f), step(d, d + 1, f), step(d, d - 1, f)]))
    extremes = [(lo, tlo), (lo, thi), (hi, tlo), (hi, thi), (lo, lo), (hi, hi + 1)]
    segments.append(_segment("extremes", [step(zeros + dv, zeros + tv, zeros + fv) for dv, tv in extremes
                                          for fv in (0, 1)]))
    # Batch norm folded for a K-long reduction: out must be sign(BN(x)) (sign(0) = +1), x over [-K, K].
    k = min(hi, 1 << 12)
    gamma = rng.normal(0, 1, channels)
    gamma[0] = 0.0
    beta, mean = rng.normal(0, 0.5, channels), rng.normal(0, k / 4, channels)
    var = rng.uniform(0.5, max(1.0, k / 2), channels)
    thr, flips = fold_batchnorm(gamma, beta, mean, var, k=k)
    steps = []
    for _ in range(24):
        x = rng.integers(-k, k + 1, size=channels)
        steps.append(step(x, thr, flips, expect_bits=list(_sign_bn(x, gamma, beta, mean, var, 1e-5))))
    segments.append(_segment(f"fold_batchnorm(k={k}) = sign(BN(x))", steps))
    return {"clocked": False, "inputs": names, "outputs": {"out": False}, "segments": segments}


# --- LUT activation ------------------------------------------------------------------------------------

def _lut_cases(params: UnitParams, seed: int) -> dict:
    lut = params.model()
    table = [int(v) for v in lut.table()]
    latency = lut.latency

    def outputs(i, last_x):
        return {"y": table[i["x"] if latency == 0 else last_x]}

    machine = _Machine({"x": 0}, 0, outputs, lambda i, last_x: i["x"])
    segments = []
    if latency:
        segments.append(_segment("after reset", [machine.step()], detail="y = table[0] (x was 0 at the reset edges)"))
    steps = [machine.step(x=q) for q in range(len(table))] + [machine.step()]
    segments.append(_segment("every address", steps, detail=f"{len(table)} addresses"))
    a, b = 0, next((q for q in range(len(table)) if table[q] != table[0]), None)
    if b is not None:
        steps = [machine.step(x=a), machine.step(), machine.step(x=b), machine.step(), machine.step()]
        segments.append(_segment("latency probe", steps, [{"output": "y", "step": 2, "predicted": latency}]))
    rng = np.random.default_rng(seed)
    segments.append(_segment("random addresses", [machine.step(x=int(q)) for q in rng.integers(0, len(table), 64)]
                             + [machine.step()]))
    return {"clocked": bool(latency), "inputs": ["x"], "outputs": {"y": False}, "segments": segments,
            "lut": {"out_lo": lut.out_range[0], "out_step": lut.out_step, "bound": lut.error_bound(),
                    "real": [float(v) for v in lut.function(lut.grid())]}}


# --- softmax ---------------------------------------------------------------------------------------------

def _softmax_cases(params: UnitParams, seed: int) -> dict:
    unit = params.model()
    n_max, in_bits = unit.n_max, unit.in_bits
    lo, hi = -(2 ** (in_bits - 1)), 2 ** (in_bits - 1) - 1
    rng = np.random.default_rng(seed)
    lengths = sorted({1, 2, n_max, max(1, n_max // 2), int(rng.integers(1, n_max + 1))})
    vectors = [(f"n={n}", rng.integers(lo, hi + 1, size=n)) for n in lengths]
    extreme = np.array([hi, lo, hi, 0][:n_max])
    vectors += [(f"n={len(extreme)} extremes", extreme), (f"n={n_max} all minimum", np.full(n_max, lo))]
    stalled = [(f"n={n}", rng.integers(lo, hi + 1, size=n))
               for n in sorted({n_max, max(1, n_max // 3), 2 if n_max >= 2 else 1})]
    phases = []
    for pattern, group in (([1], vectors), ([1, 0, 1, 1, 0, 0, 1], stalled)):
        phases.append({
            "ready_pattern": pattern,
            "names": [name for name, _ in group],
            "vectors": [v.tolist() for _, v in group],
            "expected": [unit.model(v).tolist() for _, v in group],
            "cycles": [softmax_cycles(len(v)) if pattern == [1] else None for _, v in group],
        })
    return {"phases": phases}


def unit_cases(params: UnitParams, seed: int = 0) -> dict:
    """The bench input (JSON-serializable) of ``params``' unit: a step script, or softmax vector phases."""
    if params.unit in ("xnor-pe", "xnor-array", "xnor-threshold-array"):
        return _xnor_cases(params, seed)
    if params.unit == "threshold":
        return _threshold_cases(params, seed)
    if params.unit == "lut":
        return _lut_cases(params, seed)
    return _softmax_cases(params, seed)

