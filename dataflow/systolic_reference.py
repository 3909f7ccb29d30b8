"""The generated systolic core clocked one edge at a time, for the per-cycle reference model.

Follows docs/core-protocol.md with every stream ready, independently of the closed forms in
``codesign.contract.tile_timing``: the reference model uses it to check those forms, tile by tile. An N:M
sparse array (``stored_rows``) runs each tile with the weight rows its compressed format stores, counted row by
row here, independently of ``Problem.compressed_k``.
"""

from __future__ import annotations

__all__ = ["core_edges", "stored_rows"]


def stored_rows(start: int, k: int, n: int, m: int) -> int:
    """Weight rows an N:M compressed tile holds for reduction rows start .. start+k-1 (groups of m rows from row
    0): row by row, the first n positions of every group of m are the slots the format stores (A100 2:4 keeps
    2 values per 4, whichever positions hold them)."""
    return sum(1 for row in range(start, start + k) if row % m < n)


def core_edges(flow: str, tiles: list[tuple[int, int, int]], rows: int, cols: int) -> tuple[list[int], int]:
    """Edge of each tile's accepted command and of the last result row, clocking the core one edge at a time.

    Follows docs/core-protocol.md with every stream ready, independently of ``tile_timing``'s closed
    forms (see ``_ws_edges`` and ``_os_edges``).
    """
    if flow not in _STEPPERS:
        raise ValueError(f"no core reference for dataflow {flow!r}")
    return _STEPPERS[flow](tiles, rows, cols)


def _ws_edges(tiles: list[tuple[int, int, int]], rows: int, cols: int) -> tuple[list[int], int]:
    """WS: after the command, k weight rows then m activation rows, one per edge; a row leaves
    ``rows + cols`` edges after it entered; the next command one edge after the last result."""
    starts: list[int] = []
    edge = last_result = 0
    for m, k, _ in tiles:
        edge = last_result + 1 if starts else edge + 1  # the command's edge
        starts.append(edge)
        for _ in range(k):  # weight rows
            edge += 1
        for _ in range(m):  # activation rows
            edge += 1
            last_result = edge + rows + cols
    return starts, last_result


def _os_edges(tiles: list[tuple[int, int, int]], rows: int, cols: int) -> tuple[list[int], int]:
    """OS: k beats, the first on the command's edge; the last MAC lands ``rows + cols - 1`` edges after
    the last beat; on an edge the result bank is empty, the finished tile is copied (its last MAC
    included), row 0 going into the results FIFO, and that edge may accept the next command; the bank
    then sends one row per edge while the next tile computes. A FIFO row transfers one edge later."""
    starts: list[int] = []
    last_result = edge = 0
    phase, left = "idle", 0  # of the tile in the array, and its edges left in that phase
    pending = None  # m of a finished tile waiting in the accumulators
    bank_left = 0  # rows still in the result bank
    queue = list(tiles)
    current = None
    while queue or phase != "idle" or pending is not None or bank_left:
        edge += 1
        was_draining = bank_left > 0
        if was_draining:  # a bank row enters the FIFO
            bank_left -= 1
            last_result = edge + 1
        if phase == "feed":
            left -= 1
            if left == 0:
                phase, left = "finish", rows + cols - 1
        elif phase == "finish":
            left -= 1
            if left == 0:  # the last MAC lands on this edge
                phase, pending = "idle", current[0]
        if pending is not None and not was_draining:  # the copy: row 0 into the FIFO, the rest into the bank
            bank_left, pending = pending - 1, None
            last_result = edge + 1
        if phase == "idle" and pending is None and queue:
            current = queue.pop(0)
            starts.append(edge)
            phase, left = ("feed", current[1] - 1) if current[1] > 1 else ("finish", rows + cols - 1)
    return starts, last_result


_STEPPERS = {"ws": _ws_edges, "os": _os_edges}
