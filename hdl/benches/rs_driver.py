"""Edge-by-edge driver of ``RsArray``'s streams, shared by the Amaranth and cocotb benches.

``drive()`` gives the inputs for the coming edge (by Verilog port name), ``observe()`` takes the settled
outputs before it; a transfer is ``valid & ready`` seen there. Passes are commanded in order (``back_to_back``:
each command offered as soon as the previous is accepted; otherwise only once the array is idle and drained),
their filter and input beats queued behind each other, and stalls (``stall``: the chance an input stream is
not valid, or ``psums.ready`` low, on an edge) drawn from ``seed``. The result holds every pass's psums, its
command edge and its last psum's edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hdl.benches.rs_golden import (RsPass, expected_psums, filter_beats, input_beats, pack_lanes,
                                   predicted_cycles, unpack_lanes)
from hdl.rs_array import command_layout
from hdl.rs_pe import RsParams

__all__ = ["RsRunResult", "RsDriver"]


@dataclass
class RsRunResult:
    psums: list[np.ndarray] = field(default_factory=list)  # per pass (sets, e, p, Q) as received
    command_edges: list[int] = field(default_factory=list)
    last_psum_edges: list[int] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)

    @property
    def cycles(self) -> list[int]:
        """Edges from each pass's command to its last psum."""
        return [b - a for a, b in zip(self.command_edges, self.last_psum_edges)]

    @property
    def intervals(self) -> list[int]:
        return [b - a for a, b in zip(self.command_edges, self.command_edges[1:])]

    @property
    def sequence(self) -> int:
        return self.last_psum_edges[-1] - self.command_edges[0]

    def timing_errors(self, predicted: list[int]) -> list[str]:
        """One line per pass whose measured cycles differ from ``predicted`` (or that has no prediction)."""
        errors = [f"pass {n}: {got} cycles measured, {want} predicted"
                  for n, (got, want) in enumerate(zip(self.cycles, predicted)) if got != want]
        if len(predicted) != len(self.cycles):
            errors.append(f"{len(self.cycles)} passes measured, {len(predicted)} predicted")
        return errors


def _command_word(params: RsParams, rs_pass: RsPass) -> int:
    """The ``cmd`` payload of a pass: each field at its offset in ``command_layout``."""
    layout = command_layout(params)
    return sum(value << layout[name].offset for name, value in rs_pass.command.items())


class RsDriver:
    """Drives ``passes`` through an ``RsArray`` of ``params`` (module docstring)."""

    def __init__(self, params: RsParams, passes: list[RsPass], *, back_to_back: bool = True, stall: float = 0.0,
                 seed: int = 0):
        self.params, self.passes = params, list(passes)
        self.back_to_back, self.stall = back_to_back, stall
        self.rng = np.random.default_rng(seed)
        self.filters = [b for x in self.passes for b in filter_beats(x)]
        self.inputs = [b for x in self.passes for b in input_beats(x)]
        self.expected = [expected_psums(x, params) for x in self.passes]
        self.psum_counts = [x.p * x.out_cols for x in self.passes]
        self.edge = 0
        self.next_cmd = 0
        self.f_at = self.i_at = 0
        self.received: list[list[list[int]]] = [[] for _ in self.passes]
        self.out_pass = 0
        self.result = RsRunResult()
        self._offer: dict[str, int] = {}
        self._idle_seen = True

    @property
    def done(self) -> bool:
        return self.out_pass >= len(self.passes)

    def timeout_edges(self) -> int:
        slack = 1 if self.stall == 0 else int(8 / max(1e-3, 1 - self.stall)) + 4
        return sum(predicted_cycles(x, self.params) + 4 for x in self.passes) * slack + 100

    def _stalled(self) -> bool:
        return self.stall > 0 and self.rng.random() < self.stall

    def drive(self) -> dict[str, int]:
        p = self.params
        offer = {"cmd__valid": 0, "cmd__payload": 0, "filters__valid": 0, "filters__payload": 0,
                 "inputs__valid": 0, "inputs__payload": 0, "psums__ready": 0 if self._stalled() else 1}
        may_command = self.next_cmd < len(self.passes) and (self.back_to_back or (
            self._idle_seen and self.out_pass >= self.next_cmd))
        if may_command and not self._stalled():
            offer["cmd__valid"] = 1
            offer["cmd__payload"] = _command_word(p, self.passes[self.next_cmd])
        if self.f_at < len(self.filters) and not self._stalled():
            offer["filters__valid"] = 1
            offer["filters__payload"] = pack_lanes(self.filters[self.f_at], p.weight_bits)
        if self.i_at < len(self.inputs) and not self._stalled():
            offer["inputs__valid"] = 1
            offer["inputs__payload"] = pack_lanes(self.inputs[self.i_at], p.activation_bits)
        self._offer = offer
        return offer

    def observe(self, outputs: dict[str, int]) -> None:
        p, o = self.params, self._offer
        if o["cmd__valid"] and outputs["cmd__ready"]:
            self.result.command_edges.append(self.edge)
            self.next_cmd += 1
        if o["filters__valid"] and outputs["filters__ready"]:
            self.f_at += 1
        if o["inputs__valid"] and outputs["inputs__ready"]:
            self.i_at += 1
        if o["psums__ready"] and outputs["psums__valid"] and not self.done:
            lanes = unpack_lanes(outputs["psums__payload"], p.sets * p.set_cols, p.psum_bits, p.signed)
            self.received[self.out_pass].append(lanes)
            if len(self.received[self.out_pass]) == self.psum_counts[self.out_pass]:
                self._finish_pass(self.out_pass)
                self.out_pass += 1
        self._idle_seen = not outputs["busy"]
        self.edge += 1

    def _finish_pass(self, n: int) -> None:
        x, p = self.passes[n], self.params
        got = np.zeros((p.sets, p.set_cols, x.p, x.out_cols), dtype=object)
        for beat, lanes in enumerate(self.received[n]):
            col, f = divmod(beat, x.p)
            got[:, :, f, col] = np.asarray(lanes, dtype=object).reshape(p.sets, p.set_cols)
        self.result.psums.append(got)
        self.result.last_psum_edges.append(self.edge)
        if not np.array_equal(got, self.expected[n]):
            bad = np.argwhere(got != self.expected[n])[0]
            self.result.mismatches.append(
                f"pass {n}: psum (set, row, filter, col)={tuple(int(v) for v in bad)} got {got[tuple(bad)]} "
                f"expected {self.expected[n][tuple(bad)]}")
