"""Mapper: the best few legal mappings of a layer under any registered dataflow, for an objective.

Each dataflow model lays out its own search space and estimate (``DataflowModel.candidates``, built
from ``dataflow.search``); the mapper checks the objective and the accelerator and asks the model.
The engine simulates the best ``limit`` exactly and keeps the best of those. Deterministic: ties
break by candidate order. Identical layers (same ``Problem.signature``) are searched once by the engine.
"""

from __future__ import annotations

from codesign.arch import ArchSpec
from codesign.errors import MappingError
from dataflow import registry
from dataflow.mapping import Mapping, Problem

__all__ = ["OBJECTIVES", "check_objective", "candidate_mappings"]

OBJECTIVES = ("latency", "energy", "edp")


def check_objective(objective: str) -> str:
    """``objective`` if it is one of ``OBJECTIVES``, else MappingError."""
    if objective not in OBJECTIVES:
        raise MappingError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    return objective


def candidate_mappings(problem: Problem, arch: ArchSpec, dataflow: object, objective: str = "latency",
                       limit: int = 8) -> list[Mapping]:
    """The ``limit`` best legal mappings of ``problem`` by the estimate, best first.

    ``dataflow``: a registered name or ``Dataflow`` member the accelerator lists. Raises MappingError for
    an unknown objective or dataflow, one the accelerator does not support, or a layer no mapping fits.
    """
    check_objective(objective)
    return registry.for_arch(arch, dataflow).candidates(problem, arch, objective, limit)
