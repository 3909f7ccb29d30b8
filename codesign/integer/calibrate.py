"""Activation ranges for integer inference, measured as the accuracy proxy measures them.

The float model is the proxy's own calibration copy (``codesign.accuracy.calibration_model``: the same seeded
calibration inputs, batch norms re-estimated when asked); its exported graph runs on them and every tensor the
integer network stores is observed by ``codesign.accuracy.RangeObserver`` in calls of ``batch_size`` samples,
as the proxy observes the inputs of its MAC layers. So a MAC layer's input gets the clip the proxy gives it.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterable

from codesign.accuracy import AccuracyError, RangeObserver
from codesign.integer.scheme import QParams, activation_qparams

__all__ = ["run_graph", "observe_ranges", "ranges_to_qparams", "torch_threads"]


@contextlib.contextmanager
def torch_threads(count: int = 1):
    """Run with ``count`` intra-op torch threads, then restore: small batch-1 graphs run fastest on one thread,
    and the results do not depend on the machine's core count (as the accuracy proxy does)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run_graph(module: Any, inputs: tuple, names: Iterable[str] = ()) -> tuple[Any, dict]:
    """(the output of ``module`` (an exported program's ``.module()``) on ``inputs``, {node name: tensor} of the
    nodes in ``names``), one forward pass without gradients."""
    import torch
    from torch.fx import Interpreter

    wanted = set(names)
    seen: dict[str, torch.Tensor] = {}

    class Recorder(Interpreter):
        def run_node(self, node):
            result = super().run_node(node)
            if node.name in wanted:
                seen[node.name] = result.detach()
            return result

    with torch.no_grad():
        output = Recorder(module).run(*inputs)
    return output, seen


def observe_ranges(module: Any, names: list[str], inputs: tuple, example_batch: int, clipping: Any = "mse",
                   batch_size: int = 32) -> dict[str, RangeObserver]:
    """A finished ``RangeObserver`` per node of ``names`` over the calibration ``inputs`` (a tuple of tensors),
    run ``example_batch`` samples at a time (the exported graph's batch) and observed ``batch_size`` at a time."""
    import torch

    count = int(inputs[0].shape[0])
    if count % example_batch:
        raise AccuracyError(f"{count} calibration inputs do not split into batches of the example's {example_batch}")
    observers = {name: RangeObserver(clipping) for name in names}
    chunk: dict[str, list] = {name: [] for name in names}
    held = 0

    def flush() -> None:
        for name in names:
            if chunk[name]:
                observers[name].observe(torch.cat(chunk[name]))
                chunk[name] = []

    for start in range(0, count, example_batch):
        batch = tuple(t[start:start + example_batch] for t in inputs)
        _, seen = run_graph(module, batch, names)
        for name in names:
            chunk[name].append(seen[name])
        held += example_batch
        if held >= batch_size:
            flush()
            held = 0
    flush()
    for observer in observers.values():
        observer.finish()
    return observers


def ranges_to_qparams(observers: dict[str, RangeObserver], bits: int = 8) -> dict[str, QParams]:
    """int8 parameters per tensor: unsigned codes for a tensor never negative in calibration, else signed."""
    result = {}
    for name, observer in observers.items():
        unsigned = observer.minimum >= 0
        result[name] = activation_qparams(observer.clip(bits, unsigned), unsigned)
    return result
