"""What a dataflow is to the rest of the tool: one class with five hooks, and the values they return.

A dataflow model proposes mappings for a layer (``candidates``), says what the array does for each GLB
block of a mapping (``onchip``: compute cycles, GLB port traffic, accesses per level and operand), how
much of the array a mapping occupies (``spatial_utilization``), how many PE-cycles the MACs need at best
(``mac_slots``), and, for the per-cycle reference model, the array work of each block worked out one
tile or one PE-set pass at a time, independently of ``onchip``'s closed forms (``reference_blocks``).
The engine and the mapper call only these; a new dataflow is one module with one ``register`` line.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from codesign.arch import ArchSpec
from dataflow.blocking import BlockSchedule
from dataflow.mapping import Mapping, Problem, glb_bits_needed

__all__ = ["OnChip", "ReferenceBlock", "DataflowModel"]


@dataclass(frozen=True)
class OnChip:
    """Per-block array time and GLB port traffic, and the layer's access counts per level per operand."""

    compute: np.ndarray  # cycles per block: its tiles' issue intervals (the last block: to its last result)
    glb_port_bits: np.ndarray  # bits through the GLB ports per block (array side and DRAM fills/drains)
    words: dict  # level ('glb', 'noc', 'rf') -> operand -> accesses (words)
    bits: dict  # level -> operand -> bits moved


@dataclass(frozen=True)
class ReferenceBlock:
    """One GLB block's array work as the per-cycle reference model counts it."""

    compute: int  # array cycles: first command to the next block's first command (the last block: last result)
    glb_bits: int  # array-side GLB port bits
    macs: int  # MACs the block runs
    glb_words: dict  # operand -> array-side GLB words


class DataflowModel(ABC):
    """One dataflow: how layers map onto the array and what a mapping costs on chip.

    ``name`` is the key it is registered under (``Dataflow`` values for the built-ins) and the string a
    user passes to ``--dataflow``; ``description`` is one line for listings.
    """

    name: str
    description: str = ""

    @abstractmethod
    def candidates(self, problem: Problem, arch: ArchSpec, objective: str, limit: int) -> list[Mapping]:
        """The ``limit`` best legal mappings of ``problem`` by a fast estimate, best first.

        Raises ``MappingError`` naming the layer when none fits the accelerator.
        """

    @abstractmethod
    def onchip(self, problem: Problem, arch: ArchSpec, mapping: Mapping, sched: BlockSchedule) -> OnChip:
        """Array cycles and GLB traffic per block of ``sched``, and the layer's on-chip access counts."""

    @abstractmethod
    def spatial_utilization(self, problem: Problem, arch: ArchSpec, mapping: Mapping) -> float:
        """Share of the PEs one full tile (or PE-set pass) of ``mapping`` occupies."""

    def mac_slots(self, problem: Problem, arch: ArchSpec) -> float:
        """PE-cycles the MACs need at best on ``arch``: packed lanes share a cycle, wide operands take several."""
        return problem.macs * problem.passes / problem.pack

    def adapt(self, mapping: Mapping, problem: Problem, arch: ArchSpec) -> Mapping:
        """``mapping`` (chosen for a larger or denser version of the layer) made legal for ``problem``: every
        block and tile clamped to its dimensions. A pruned layer runs under its dense original's mapping, so
        more zeros never cost more (docs/simulator.md, "Pruning")."""
        sizes = (problem.m, problem.k, problem.n)
        block = tuple(min(b, s) for b, s in zip(mapping.block, sizes))
        tile = tuple(min(t, s) for t, s in zip(mapping.array_tile, sizes))
        return replace(mapping, block=block, array_tile=tile, glb_footprint_bits=glb_bits_needed(problem, block))

    @abstractmethod
    def reference_blocks(self, problem: Problem, mapping: Mapping, arch: ArchSpec,
                         blocks: Sequence[tuple[int, int, int, bool]]) -> list[ReferenceBlock]:
        """The array work of each (bm, bk, bn, k_first) block in execution order, counted one step at a
        time for the per-cycle reference (``sim.reference``); must agree with ``onchip`` exactly."""
