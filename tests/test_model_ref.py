"""Model references resolve to (name, model, example inputs); every bad one is a one-line ModelLoadError."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch
from torch import nn

from codesign.errors import ModelLoadError
from codesign.cli import main
from codesign.model_ref import load_model

FACTORIES = textwrap.dedent(
    """
    import torch
    from torch import nn

    def pair():
        return nn.Linear(4, 2), (torch.randn(3, 4),)

    def bare():
        return nn.Conv2d(3, 2, 1)

    def broken():
        raise RuntimeError("weights missing")

    def junk():
        return 42

    not_callable = 7
    """
)


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "tiny_models.py"
    path.write_text(FACTORIES)
    return path


def test_file_factory_returning_module_and_inputs(model_file):
    name, model, inputs = load_model(f"{model_file}:pair", None)
    assert name == "tiny_models:pair"
    assert isinstance(model, nn.Linear)
    assert [tuple(x.shape) for x in inputs] == [(3, 4)]


def test_input_shape_replaces_the_example_inputs(model_file):
    _, _, inputs = load_model(f"{model_file}:pair", (5, 4))
    assert [tuple(x.shape) for x in inputs] == [(5, 4)]


def test_factory_returning_only_a_module_needs_an_input_shape(model_file):
    with pytest.raises(ModelLoadError, match="--input-shape"):
        load_model(f"{model_file}:bare", None)
    _, model, inputs = load_model(f"{model_file}:bare", (1, 3, 4, 4))
    assert isinstance(model, nn.Conv2d) and inputs[0].shape == (1, 3, 4, 4)


def test_package_module_factory(model_file, monkeypatch):
    monkeypatch.syspath_prepend(str(model_file.parent))
    monkeypatch.delitem(sys.modules, "tiny_models", raising=False)
    name, model, _ = load_model("tiny_models:pair", None)
    monkeypatch.delitem(sys.modules, "tiny_models")
    assert name == "tiny_models:pair" and isinstance(model, nn.Linear)


@pytest.mark.parametrize(
    ("suffix", "message"),
    [
        (":missing", "no factory named 'missing'"),
        (":broken", "the factory failed: RuntimeError: weights missing"),
        (":junk", "returned int"),
        (":not_callable", "not callable"),
    ],
)
def test_bad_factories_say_what_is_wrong(model_file, suffix, message):
    with pytest.raises(ModelLoadError, match=message):
        load_model(f"{model_file}{suffix}", (1, 4))


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("no/such/file.py:build", "does not exist"),
        ("no_such_package_xyz.models:build", "no module named 'no_such_package_xyz'"),
        ("just_a_name", "is not one of"),
        ("", "empty model reference"),
        ("missing.pt2", "does not exist"),
    ],
)
def test_unresolvable_references_are_one_line_errors(ref, message):
    with pytest.raises(ModelLoadError, match=message) as caught:
        load_model(ref, (1, 4))
    assert "\n" not in str(caught.value)


def test_file_that_fails_to_import_is_a_load_error(tmp_path):
    path = tmp_path / "bad_syntax.py"
    path.write_text("def broken(:\n")
    with pytest.raises(ModelLoadError, match="cannot import"):
        load_model(f"{path}:broken", None)


def test_non_positive_input_shape_is_rejected(model_file):
    with pytest.raises(ModelLoadError, match="positive"):
        load_model(f"{model_file}:bare", (1, 0, 4))


def test_saved_exported_program_round_trips(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()
    path = tmp_path / "net.pt2"
    torch.export.save(torch.export.export(model, (torch.randn(1, 3, 8, 8),)), str(path))
    name, program, inputs = load_model(str(path), None)
    assert name == "net"
    assert isinstance(program, torch.export.ExportedProgram)
    assert inputs[0].shape == (1, 3, 8, 8)
    with pytest.raises(ModelLoadError, match="exported for input shape"):
        load_model(str(path), (1, 3, 16, 16))


def test_a_corrupt_pt2_file_is_a_load_error(tmp_path):
    path = tmp_path / "corrupt.pt2"
    path.write_bytes(b"not a zip archive")
    with pytest.raises(ModelLoadError, match="cannot load exported program"):
        load_model(str(path), None)


def _zoo_names() -> list[str]:
    try:
        from codesign import zoo
    except ImportError:
        return []
    return zoo.names()


@pytest.mark.skipif(not _zoo_names(), reason="the model zoo is not installed")
def test_zoo_reference_builds_the_named_model():
    name = _zoo_names()[-1]
    resolved, model, inputs = load_model(f"zoo:{name}", None)
    assert resolved == name and isinstance(model, nn.Module) and len(inputs) == 1


@pytest.mark.skipif(not _zoo_names(), reason="the model zoo is not installed")
def test_unknown_zoo_name_lists_the_valid_ones():
    with pytest.raises(ModelLoadError, match="unknown zoo model 'nope'.*valid names"):
        load_model("zoo:nope", None)


def test_an_input_shape_too_large_to_allocate_is_one_line_and_exit_2(capsys):
    status = main(["graph", "zoo:resnet18-cifar", "--input-shape", "1,3,100000,100000"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and "30,000,000,000 elements" in err
