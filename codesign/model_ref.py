"""Model references on the command line: ``zoo:NAME``, ``package.module:factory``,
``path/to/file.py:factory`` or a saved ``torch.export`` program (``file.pt2``).

A factory takes no arguments and returns a module, or a (module, example_inputs) pair. Every
failure is a ModelLoadError with a one-line message.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import math
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterator

from codesign.errors import CodesignError, ModelLoadError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch.export import ExportedProgram

__all__ = ["REF_FORMS", "load_model", "MAX_INPUT_ELEMENTS"]

REF_FORMS = "zoo:NAME, package.module:factory, path/to/file.py:factory, or file.pt2"


def load_model(
    ref: str, input_shape: tuple[int, ...] | None = None
) -> tuple[str, "torch.nn.Module | ExportedProgram", tuple["torch.Tensor", ...]]:
    """Resolve ``ref`` to (name, module or exported program, example inputs).

    ``input_shape`` replaces the example inputs with one random tensor of that shape; it is
    required when a factory returns only a module.
    """
    if not isinstance(ref, str) or not ref.strip():
        raise ModelLoadError(f"empty model reference; use {REF_FORMS}")
    ref = ref.strip()
    if input_shape is not None:
        input_shape = _check_shape(input_shape)
    if ref.startswith("zoo:"):
        return _load_zoo(ref[len("zoo:") :], input_shape)
    if ref.endswith(".pt2"):
        return _load_program(Path(ref), input_shape)
    location, sep, factory = ref.rpartition(":")
    if not sep or not location or not factory:
        raise ModelLoadError(f"model reference {ref!r} is not one of {REF_FORMS}")
    if location.endswith(".py"):
        module = _import_file(Path(location))
        label = f"{Path(location).stem}:{factory}"
    else:
        module = _import_module(location)
        label = f"{location}:{factory}"
    return _call_factory(module, factory, label, input_shape)


# 2**28 float32 values = 1 GiB: an example input only needs the shapes a layer sees.
MAX_INPUT_ELEMENTS = 1 << 28


def _check_shape(shape: Any) -> tuple[int, ...]:
    try:
        values = tuple(int(size) for size in shape)
    except (TypeError, ValueError):
        values = ()
    if not values or any(size <= 0 for size in values):
        raise ModelLoadError(f"input shape {shape!r} must be a non-empty list of positive integers")
    elements = math.prod(values)
    if elements > MAX_INPUT_ELEMENTS:
        raise ModelLoadError(
            f"input shape {values} has {elements:,} elements ({elements * 4 / 2**30:.1f} GiB as float32), more than "
            f"the {MAX_INPUT_ELEMENTS:,} an example input may have; capture at a smaller size"
        )
    return values


def _random_input(shape: tuple[int, ...]) -> tuple["torch.Tensor", ...]:
    import torch

    generator = torch.Generator().manual_seed(0)
    return (torch.randn(shape, generator=generator),)


def _load_zoo(name: str, input_shape: tuple[int, ...] | None):
    try:
        from codesign import zoo
    except ImportError:
        raise ModelLoadError("the model zoo is not available in this installation") from None
    if name not in zoo.names():
        raise ModelLoadError(f"unknown zoo model {name!r}; valid names: {', '.join(zoo.names())}")
    module, example_inputs = zoo.build(name)
    if input_shape is not None:
        example_inputs = _random_input(input_shape)
    return name, module, tuple(example_inputs)


def _load_program(path: Path, input_shape: tuple[int, ...] | None):
    if not path.is_file():
        raise ModelLoadError(f"exported program {path} does not exist")
    import torch

    from codesign.capture.export import first_line, quiet_torch

    try:
        with quiet_torch():
            program = torch.export.load(str(path))
    except Exception as exc:  # a corrupt or foreign file: one line, not a traceback
        raise ModelLoadError(f"cannot load exported program {path}: {first_line(exc)}") from None
    shapes = _program_input_shapes(program)
    if input_shape is not None and shapes and tuple(shapes[0]) != input_shape:
        raise ModelLoadError(
            f"{path} was exported for input shape {tuple(shapes[0])}, not {input_shape}; "
            "export it again at that shape or drop --input-shape"
        )
    example = getattr(program, "example_inputs", None)
    if example and isinstance(example, tuple) and example[0]:
        example_inputs = tuple(example[0])
    else:
        example_inputs = tuple(torch.zeros(shape) for shape in shapes)
    return path.stem, program, example_inputs


def _program_input_shapes(program) -> list[tuple[int, ...]]:
    user_inputs = set(program.graph_signature.user_inputs)
    shapes = []
    for node in program.graph_module.graph.nodes:
        if node.op == "placeholder" and node.name in user_inputs:
            value = node.meta.get("val")
            if hasattr(value, "shape"):
                shapes.append(tuple(int(size) for size in value.shape))
    return shapes


@contextlib.contextmanager
def _on_sys_path(folder: str) -> Iterator[None]:
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        yield
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist")
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:10]
    module_name = f"codesign_user_model_{resolved.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        with _on_sys_path(str(resolved.parent)):
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
    except CodesignError:
        raise
    except BaseException as exc:  # user code: any failure (even SystemExit) is a load error
        sys.modules.pop(module_name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ModelLoadError(f"cannot import {path}: {_one_line(exc)}") from None
    return module


def _import_module(name: str) -> ModuleType:
    try:
        with _on_sys_path(os.getcwd()):
            return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or name
        raise ModelLoadError(f"cannot import module {name!r}: no module named {missing!r}") from None
    except CodesignError:
        raise
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ModelLoadError(f"cannot import module {name!r}: {_one_line(exc)}") from None


def _call_factory(module: ModuleType, factory: str, label: str, input_shape: tuple[int, ...] | None):
    import torch

    function = getattr(module, factory, None)
    if function is None:
        raise ModelLoadError(f"{label}: no factory named {factory!r} there")
    if isinstance(function, torch.nn.Module):
        result: Any = function
    elif callable(function):
        try:
            result = function()
        except CodesignError:
            raise
        except Exception as exc:
            raise ModelLoadError(f"{label}: the factory failed: {_one_line(exc)}") from None
    else:
        raise ModelLoadError(f"{label}: {factory!r} is not callable")
    example_inputs: Any = None
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], torch.nn.Module):
        result, example_inputs = result
    if not isinstance(result, torch.nn.Module):
        raise ModelLoadError(
            f"{label}: the factory returned {type(result).__name__}, expected a torch.nn.Module "
            "or a (module, example_inputs) pair"
        )
    if input_shape is not None:
        example_inputs = _random_input(input_shape)
    if example_inputs is None:
        raise ModelLoadError(f"{label}: the factory returns only a module; pass --input-shape, e.g. 1,3,224,224")
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    if not isinstance(example_inputs, (tuple, list)) or not all(isinstance(x, torch.Tensor) for x in example_inputs):
        raise ModelLoadError(f"{label}: example inputs must be a tensor or a tuple of tensors")
    return label, result, tuple(example_inputs)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
