"""Mapping of a layer onto an array: one ``DataflowModel`` per dataflow, registered by name.

Importing the package registers the built-ins: weight stationary ('ws'), output stationary ('os') and
row stationary ('rs'). ``dataflow.registry`` finds them (and any registered later);
``dataflow.mapper`` searches a layer's mappings under any of them.
"""

# Registration order is the order `--dataflow all` runs and reports them.
from dataflow import weight_stationary  # noqa: F401,I001  (each registers its model)
from dataflow import output_stationary  # noqa: F401
from dataflow import row_stationary  # noqa: F401
from dataflow import xnor_popcount  # noqa: F401  (binarized layers on the XNOR-popcount array)
from dataflow.interface import DataflowModel, OnChip, ReferenceBlock
from dataflow.registry import register

__all__ = ["DataflowModel", "OnChip", "ReferenceBlock", "register"]
