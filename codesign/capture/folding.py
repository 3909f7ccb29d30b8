"""Patterns of exported nodes that form one layer: channel shuffles, and chains of views.

A channel shuffle (Zhang et al., ShuffleNet, CVPR 2018) is exported as view (split C into g x C/g)
-> transpose(g, C/g) -> [contiguous] -> view back. It moves every activation once, so it becomes one
CHANNEL_SHUFFLE node. Consecutive views move no data and may be folded into one RESHAPE node.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch.fx import Node

__all__ = ["SPLIT_VIEW_OPS", "COPY_OPS", "MERGE_VIEW_OPS", "packet_name", "shape_of", "match_channel_shuffle"]

SPLIT_VIEW_OPS = frozenset({"view", "_unsafe_view", "reshape", "unflatten"})
COPY_OPS = frozenset({"contiguous", "clone"})
MERGE_VIEW_OPS = frozenset({"view", "_unsafe_view", "reshape", "flatten"})


def packet_name(node: Node) -> str | None:
    """``conv2d`` for a node calling ``aten.conv2d.default``; None for non-aten calls."""
    target = node.target
    packet = getattr(target, "overloadpacket", None)
    if node.op != "call_function" or packet is None:
        return None
    return getattr(packet, "__name__", None)


def shape_of(node: Node) -> tuple[int, ...] | None:
    value = node.meta.get("val")
    if isinstance(value, torch.Tensor):
        return tuple(int(size) for size in value.shape)
    meta = node.meta.get("tensor_meta")
    if meta is not None and hasattr(meta, "shape"):
        return tuple(int(size) for size in meta.shape)
    return None


def _swapped_dims(node: Node, rank: int) -> tuple[int, int] | None:
    """The two dims a transpose / two-dim permute swaps, normalised to non-negative."""
    name = packet_name(node)
    if name in ("transpose", "swapaxes"):
        first, second = (int(node.args[1]) % rank, int(node.args[2]) % rank)
        return (min(first, second), max(first, second))
    if name == "permute":
        order = [int(item) % rank for item in node.args[1]]
        moved = [index for index, item in enumerate(order) if item != index]
        if len(moved) == 2 and order[moved[0]] == moved[1]:
            return (moved[0], moved[1])
    return None


def _single_user(node: Node) -> Node | None:
    users = list(node.users)
    return users[0] if len(users) == 1 else None


def match_channel_shuffle(node: Node) -> list[Node] | None:
    """The nodes of a channel shuffle starting at ``node`` (the splitting view), or None."""
    if packet_name(node) not in SPLIT_VIEW_OPS or not node.args or not isinstance(node.args[0], Node):
        return None
    source_shape = shape_of(node.args[0])
    split_shape = shape_of(node)
    if source_shape is None or split_shape is None or len(split_shape) != len(source_shape) + 1:
        return None
    axis = _split_axis(source_shape, split_shape)
    if axis is None:
        return None
    transpose = _single_user(node)
    if transpose is None or _swapped_dims(transpose, len(split_shape)) != (axis, axis + 1):
        return None
    members = [node, transpose]
    current = transpose
    following = _single_user(current)
    while following is not None and packet_name(following) in COPY_OPS:
        members.append(following)
        current = following
        following = _single_user(current)
    if following is None or packet_name(following) not in MERGE_VIEW_OPS:
        return None
    if shape_of(following) != source_shape:
        return None
    members.append(following)
    return members


def _split_axis(source: Sequence[int], split: Sequence[int]) -> int | None:
    """The axis of ``source`` that ``split`` divides into two (g, C/g) factors, both > 1."""
    for axis in range(len(source)):
        if (
            tuple(split[:axis]) == tuple(source[:axis])
            and tuple(split[axis + 2 :]) == tuple(source[axis + 1 :])
            and split[axis] * split[axis + 1] == source[axis]
            and split[axis] > 1
            and split[axis + 1] > 1
        ):
            return axis
    return None
