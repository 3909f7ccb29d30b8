"""Reports of a captured Workload: the versioned JSON document, GraphML, and a rich table with totals.

The JSON layout is documented in docs/workload-json.md; bump ``JSON_VERSION`` on any change that
breaks a reader.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from typing import Any

import networkx as nx

from codesign.workload import ConvDims, ConvNdDims, GemmDims, Layer, OpKind, Workload

__all__ = [
    "JSON_FORMAT", "JSON_VERSION", "moves_data", "dims_json", "loop_nest_json", "layer_json", "workload_json", "workload_json_text",
    "graphml_text", "effective_text", "print_report",
]

JSON_FORMAT = "codesign.workload"
JSON_VERSION = 1


def moves_data(layer: Layer) -> bool:
    """A RESHAPE (view) moves no data; every other layer reads and writes its tensors."""
    return layer.op is not OpKind.RESHAPE


def dims_json(dims: ConvDims | GemmDims | None) -> dict[str, Any] | None:
    if dims is None:
        return None
    body = asdict(dims)
    for key, value in body.items():
        if isinstance(value, tuple):
            body[key] = list(value)
    return {"type": "conv" if isinstance(dims, ConvDims) else "gemm", **body}


def loop_nest_json(nest: ConvNdDims) -> dict[str, Any]:
    """A convolution's own loop nest (3-D, transposed), beside the lowered ``dims`` the simulator maps."""
    body = {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(nest).items()}
    return {"type": "transposed_conv" if nest.transposed else "conv", **body, "macs": nest.macs}


def layer_json(layer: Layer, inputs: list[str]) -> dict[str, Any]:
    gemm = layer.gemm
    item: dict[str, Any] = {
        "name": layer.name,
        "op": layer.op.value,
        "macs": layer.macs,
        "params": layer.params,
        "elementwise_ops": layer.elementwise_ops,
        "aten": list(layer.aten),
        "module": layer.module,
        "inputs": inputs,
        "input_shapes": [list(shape) for shape in layer.input_shapes],
        "output_shape": list(layer.output_shape),
        "dims": dims_json(layer.dims),
        "gemm": asdict(gemm) if gemm is not None else None,
        "bits": {
            "weight": layer.bits.weight,
            "activation": layer.bits.activation,
            "accumulator": layer.bits.accumulator,
            "binarized": layer.bits.binarized,
        },
        "input_bytes": layer.input_bytes,
        "weight_bytes": layer.weight_bytes,
        "output_bytes": layer.output_bytes,
        "moves_data": moves_data(layer),
        "fusable": layer.fusable,
        "weight_density": layer.weight_density,
        "input_density": layer.input_density,
        "output_density": layer.output_density,
        "dead_channels": layer.dead_channels,
        "constant_channels": layer.constant_channels,
    }
    if layer.dead_input_channels:
        item["dead_input_channels"] = list(layer.dead_input_channels)
    if layer.nm_pattern:
        item["nm_pattern"] = f"{layer.nm_pattern[0]}:{layer.nm_pattern[1]}"
    if layer.effective_macs is not None:
        item["effective_macs"] = layer.effective_macs
    if layer.effective_dims is not None:
        item["effective_dims"] = dims_json(layer.effective_dims)
        item["effective_gemm"] = asdict(layer.effective_dims.gemm())
    if layer.folded:
        item["folded"] = list(layer.folded)
    if layer.loop_nest is not None:
        item["loop_nest"] = loop_nest_json(layer.loop_nest)
    return item


def workload_json(workload: Workload, *, fold_views: bool | None = None) -> dict[str, Any]:
    """The JSON document of a workload (``format``/``version`` first, then model, layers, totals)."""
    graph = workload.graph
    layers = [
        layer_json(layer, list(graph.predecessors(layer.name)) if layer.name in graph else [])
        for layer in workload.layers
    ]
    if fold_views is None:
        fold_views = any(layer.op is OpKind.RESHAPE and layer.folded for layer in workload.layers)
    return {
        "format": JSON_FORMAT,
        "version": JSON_VERSION,
        "model": workload.model,
        "input_shapes": [list(shape) for shape in workload.input_shapes],
        "folding": {"views": bool(fold_views)},
        "layers": layers,
        "totals": workload.totals(),
        "unsupported": _unsupported_json(workload),
    }


def _unsupported_json(workload: Workload) -> list[dict[str, Any]]:
    """Each unsupported op: its aten name, count, FlopCounterMode's MACs (null: no formula), the parameters
    only it reads."""
    details = {op.aten: op for op in workload.unsupported_ops}
    items = []
    for name, count in workload.unsupported:
        op = details.get(name)
        items.append({"aten": name, "count": count, "macs": op.macs if op else None, "params": op.params if op else 0})
    return items


_NUMBER_LIST = re.compile(r"\[\s*(-?[\d.eE+-]+(?:\s*,\s*-?[\d.eE+-]+)*)\s*\]")


def workload_json_text(workload: Workload, *, fold_views: bool | None = None) -> str:
    """Indented JSON with shapes and other number lists kept on one line."""
    text = json.dumps(workload_json(workload, fold_views=fold_views), indent=2)
    text = _NUMBER_LIST.sub(lambda match: "[" + ", ".join(part.strip() for part in match.group(1).split(",")) + "]", text)
    return text + "\n"


def graphml_text(workload: Workload) -> str:
    """GraphML of the layer graph; each node carries its kind, MACs, params, shapes and bytes."""
    export = nx.DiGraph(model=workload.model)
    for layer in workload.layers:
        export.add_node(
            layer.name,
            op=layer.op.value,
            macs=layer.macs,
            effective_macs=layer.macs_after_pruning,
            elementwise_ops=layer.elementwise_ops,
            params=layer.params,
            output_shape="x".join(str(size) for size in layer.output_shape),
            input_bytes=layer.input_bytes,
            weight_bytes=layer.weight_bytes,
            output_bytes=layer.output_bytes,
            weight_density=float(layer.weight_density),
            input_density=float(layer.input_density),
            output_density=float(layer.output_density),
            dead_channels=layer.dead_channels,
            constant_channels=layer.constant_channels,
            weight_bits=layer.bits.weight,
            activation_bits=layer.bits.activation,
            module=layer.module,
            fusable=layer.fusable,
        )
    for source, target in workload.graph.edges:
        export.add_edge(source, target)
    return "\n".join(nx.generate_graphml(export)) + "\n"


def _human(value: float) -> str:
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.2f}{suffix}"
    return f"{value:g}"


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(size) for size in shape)


_DIM_LABELS = {ConvDims: (("k", "K"), ("c", "C"), ("groups", "G")), GemmDims: (("m", "M"), ("k", "K"), ("n", "N"))}


def effective_text(layer: Layer) -> str:
    """The dimensions pruning changed, dense -> effective (``K 64->32, C 64->48``); "" when none did."""
    dense, effective = layer.dims, layer.effective_dims
    if dense is None or effective is None or type(dense) is not type(effective):
        return ""
    changes = [
        f"{label} {getattr(dense, field)}->{getattr(effective, field)}"
        for field, label in _DIM_LABELS[type(dense)]
        if getattr(dense, field) != getattr(effective, field)
    ]
    return ", ".join(changes)


def _channels_text(layer: Layer) -> str:
    parts = []
    if layer.dead_channels:
        parts.append(f"{layer.dead_channels} dead")
    if layer.constant_channels:
        parts.append(f"{layer.constant_channels} const")
    return ", ".join(parts)


def print_report(workload: Workload, console=None) -> None:
    """Per-layer table and totals on a rich console."""
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=200)  # files and pipes: wide enough that layer names are not wrapped
    table = Table(title=f"{workload.model}: {len(workload.layers)} layers", show_lines=False)
    columns = [
        ("#", "right"), ("layer", "left"), ("op", "left"), ("output", "left"), ("MACs", "right"),
        ("params", "right"), ("W/A bits", "center"), ("weight B", "right"), ("out B", "right"),
        ("W density", "right"), ("in density", "right"), ("effective", "left"), ("channels", "left"),
    ]
    rows = []
    for index, layer in enumerate(workload.layers):
        density = "" if layer.weight_density == 1.0 else f"{layer.weight_density:.3f}"
        if layer.nm_pattern:
            density += f" ({layer.nm_pattern[0]}:{layer.nm_pattern[1]})"
        input_density = "" if layer.input_density == 1.0 else f"{layer.input_density:.3f}"
        rows.append((
            str(index), layer.name, layer.op.value, _shape(layer.output_shape),
            f"{layer.macs:,}" if layer.macs else "", f"{layer.params:,}" if layer.params else "",
            f"{layer.bits.weight}/{layer.bits.activation}", f"{layer.weight_bytes:,}" if layer.weight_bytes else "",
            f"{layer.output_bytes:,}" if layer.output_bytes else "", density, input_density,
            effective_text(layer), _channels_text(layer),
        ))
    # the pruning and sparsity columns only when some layer has an entry there (a dense model has none)
    optional = {"in density", "effective", "channels"}
    shown = [index for index, (header, _) in enumerate(columns)
             if header not in optional or any(row[index] for row in rows)]
    for index in shown:
        table.add_column(columns[index][0], justify=columns[index][1])
    for row in rows:
        table.add_row(*(row[index] for index in shown))
    console.print(table)
    totals = workload.totals()
    summary = Table(title="totals", show_header=False)
    summary.add_column("quantity")
    summary.add_column("value", justify="right")
    summary.add_row("MACs", f"{totals['macs']:,} ({_human(totals['macs'])})")
    if totals["effective_macs"] != totals["macs"]:
        summary.add_row("MACs after pruning", f"{totals['effective_macs']:,} ({_human(totals['effective_macs'])})")
    summary.add_row("element ops", f"{totals['elementwise_ops']:,}")
    summary.add_row("params", f"{totals['params']:,} ({_human(totals['params'])})")
    summary.add_row("weight bytes", f"{totals['weight_bytes']:,}")
    summary.add_row("activation bytes", f"{totals['activation_bytes']:,}")
    summary.add_row("weight density", f"{totals['weight_density']:.4f}")
    summary.add_row("MAC in density", f"{totals['mac_input_density']:.4f}")
    console.print(summary)
    unmapped = workload.unmapped()
    if unmapped is not None:
        from codesign.unmapped import describe

        console.print(f"[yellow]unsupported ops (not in the layer graph): {describe(unmapped)}[/yellow]")
