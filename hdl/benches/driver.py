"""A cycle-by-cycle driver of the GEMM core's streams that no simulator owns.

Each cycle the simulator adapter (cocotb or the Amaranth simulator) calls ``drive()`` to get
the input values for the coming edge, applies them, lets logic settle, and passes the settled
handshake outputs to ``observe()``, which records the transfers that happen on that edge.
Edges are numbered from 1 after reset; a tile's cycles are counted from the edge that accepts
its command to the edge that transfers its last result row (docs/core-protocol.md).
Valid is never withdrawn before a transfer (the stream rule), stalls are random but seeded.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from hdl.benches.golden import Case, unpack_lanes
from hdl.params import CoreParams

__all__ = ["CaseResult", "CaseDriver", "BinaryCaseDriver"]


@dataclass
class _Source:
    beats: list[int]
    gap_share: float
    rng: random.Random
    index: int = 0
    valid: bool = False

    def drive(self) -> tuple[int, int]:
        if not self.valid and self.index < len(self.beats):
            self.valid = self.rng.random() >= self.gap_share
        payload = self.beats[self.index] if self.index < len(self.beats) else 0
        return int(self.valid), payload

    def transferred(self) -> None:
        self.index += 1
        self.valid = False


@dataclass
class CaseResult:
    """What the RTL did with one case."""

    name: str
    tile_cycles: list[int] = field(default_factory=list)
    cycles: int = 0
    result_rows: list[list[list[int]]] = field(default_factory=list)  # per tile, m rows of cols lanes
    mismatches: list[str] = field(default_factory=list)
    finished: bool = False

    @property
    def bit_exact(self) -> bool:
        return self.finished and not self.mismatches


class CaseDriver:
    """Drives one ``Case`` through the core and checks every result row as it arrives."""

    def __init__(self, params: CoreParams, case: Case, seed: int = 0):
        self.params = params
        self.case = case
        rng = random.Random(seed)
        self.rng = rng
        m_bits, k_bits, _ = (v.bit_length() for v in params.tile_max)
        self.cmd = _Source([t.m | (t.k << m_bits) | (t.n << (m_bits + k_bits)) for t in case.tiles],
                           case.valid_gap_share, rng)
        self.weights = _Source([w for t in case.tiles for w in t.weight_beats], case.valid_gap_share, rng)
        self.acts = _Source([a for t in case.tiles for a in t.act_beats], case.valid_gap_share, rng)
        self.ready = True
        self.edge = 0
        self.result = CaseResult(case.name)
        self._tile = 0
        self._rows: list[list[int]] = []
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._busy_errors = 0

    @property
    def done(self) -> bool:
        return self._tile >= len(self.case.tiles)

    def drive(self) -> dict[str, int]:
        """Input values for the coming edge: name -> int (payloads packed, lane 0 lowest)."""
        values = {}
        for name, source in (("cmd", self.cmd), ("weights", self.weights), ("acts", self.acts)):
            values[f"{name}__valid"], values[f"{name}__payload"] = source.drive()
        self.ready = self.rng.random() >= self.case.ready_low_share
        values["results__ready"] = int(self.ready)
        return values

    def observe(self, outputs: dict[str, int]) -> None:
        """Settled outputs before the edge: checks ``busy`` when given, records this edge's transfers, then
        counts the edge."""
        self.edge += 1
        if "busy" in outputs:
            self._check_busy(outputs["busy"])
        if self.cmd.valid and outputs["cmd__ready"]:
            self._starts.append(self.edge)
            self.cmd.transferred()
        if self.weights.valid and outputs["weights__ready"]:
            self.weights.transferred()
        if self.acts.valid and outputs["acts__ready"]:
            self.acts.transferred()
        if self.ready and outputs["results__valid"] and not self.done:
            self._result_row(outputs["results__payload"])

    def _check_busy(self, busy: int) -> None:
        """docs/core-protocol.md: ``busy`` is high exactly while a command is offered or an accepted tile
        still has results to transfer (this edge's transfers are not counted yet)."""
        expected = bool(self.cmd.valid) or len(self._starts) > self._tile
        if bool(busy) != expected:
            self._busy_errors += 1
            if self._busy_errors <= 3:
                self.result.mismatches.append(
                    f"edge {self.edge}: busy={int(busy)}, the protocol says {int(expected)} "
                    f"({len(self._starts)} tiles accepted, {self._tile} finished, cmd.valid={int(self.cmd.valid)})")

    def _result_row(self, word: int) -> None:
        p = self.params
        tile = self.case.tiles[self._tile]
        lanes = unpack_lanes(word, p.acc_bits, p.cols, p.signed)
        row = len(self._rows)
        want = list(tile.expected_rows[row]) + [0] * (p.cols - tile.n)
        if lanes != want:
            self.result.mismatches.append(f"tile {self._tile} row {row}: got {lanes}, want {want}")
        self._rows.append(lanes)
        if len(self._rows) == tile.m:
            self._ends.append(self.edge)
            self.result.result_rows.append(self._rows)
            self._rows = []
            self._tile += 1
            if self.done:
                self._finish()

    def _finish(self) -> None:
        r = self.result
        r.finished = True
        r.tile_cycles = [end - start for start, end in zip(self._starts, self._ends)]
        r.cycles = self._ends[-1] - self._starts[0]

    def timeout_edges(self) -> int:
        """Generous bound on the case's edges, stalls included, to stop a hung core."""
        stall = 1.0 / max(0.05, 1.0 - max(self.case.valid_gap_share, self.case.ready_low_share))
        return int(20 * stall * (self.case.predicted_cycles + 10 * len(self.case.tiles))) + 100


class BinaryCaseDriver(CaseDriver):
    """``CaseDriver`` for ``hdl.binary_core.BinaryGemmCore``: the command's k is in bits, each beat is one
    packed word per lane, and one ``results`` transfer carries a whole tile (rows x cols lanes), checked
    against the expected sums with zeros outside m x n."""

    def __init__(self, params, case: Case, seed: int = 0):
        self.params = params
        self.case = case
        rng = random.Random(seed)
        self.rng = rng
        m_bits, k_bits = params.rows.bit_length(), params.max_k.bit_length()
        self.cmd = _Source([t.m | (t.k << m_bits) | (t.n << (m_bits + k_bits)) for t in case.tiles],
                           case.valid_gap_share, rng)
        self.weights = _Source([w for t in case.tiles for w in t.weight_beats], case.valid_gap_share, rng)
        self.acts = _Source([a for t in case.tiles for a in t.act_beats], case.valid_gap_share, rng)
        self.ready = True
        self.edge = 0
        self.result = CaseResult(case.name)
        self._tile = 0
        self._rows = []
        self._starts = []
        self._ends = []
        self._busy_errors = 0

    def _result_row(self, word: int) -> None:
        p = self.params
        tile = self.case.tiles[self._tile]
        lanes = unpack_lanes(word, p.acc_bits, p.rows * p.cols, True)
        got = [lanes[r * p.cols:(r + 1) * p.cols] for r in range(p.rows)]
        want = [list(tile.expected_rows[r]) + [0] * (p.cols - tile.n) if r < tile.m else [0] * p.cols
                for r in range(p.rows)]
        for r in range(p.rows):
            if got[r] != want[r]:
                self.result.mismatches.append(f"tile {self._tile} row {r}: got {got[r]}, want {want[r]}")
        self._ends.append(self.edge)
        self.result.result_rows.append(got)
        self._tile += 1
        if self.done:
            self._finish()
