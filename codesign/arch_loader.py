"""Load an accelerator spec from a bundled preset or a YAML file, validated against the JSON schema.

Every problem with a spec becomes one ``SpecError`` line naming the file and the dotted field,
e.g. ``my.yaml: field pe.weight_bits: -1 is less than the minimum of 1``.
"""

from __future__ import annotations

import json
import math
from dataclasses import fields, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from codesign.arch import ArchSpec, BinaryArraySpec, BufferSpec, Dataflow, DramSpec, EnergyTable, NocKind, PeSpec
from codesign.energy import ENERGY_PRESETS, HOROWITZ_45NM, OVERRIDABLE_FIELDS, energy_preset
from codesign.errors import SpecError
from codesign.sparsity import OperandSparsity, SparsitySpec, StructuredSkip

__all__ = [
    "preset_names", "preset_yaml", "arch_from_dict", "arch_to_dict", "spec_dict_to_yaml", "arch_to_yaml",
    "load_arch"
]

_PRESET_SUFFIX = ".yaml"


# --------------------------------------------------------------------------- presets and schema


def _presets_dir():
    return resources.files("codesign") / "presets"


def preset_names() -> list[str]:
    """Names of the bundled accelerator presets, sorted."""
    return sorted(
        entry.name[: -len(_PRESET_SUFFIX)]
        for entry in _presets_dir().iterdir()
        if entry.name.endswith(_PRESET_SUFFIX)
    )


def preset_yaml(name: str) -> str:
    """The YAML text of the preset ``name`` (with its citing comments): a spec to start from."""
    if name not in preset_names():
        raise SpecError(f"unknown preset {name!r}; presets: {', '.join(preset_names())}")
    return (_presets_dir() / f"{name}{_PRESET_SUFFIX}").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _validator():
    import jsonschema

    text = (resources.files("codesign") / "schemas" / "arch.schema.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


# --------------------------------------------------------------------------- YAML parsing


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML loader that rejects a key given twice in one mapping (PyYAML keeps the last silently)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark
            )
        try:
            seen[key] = key_node.start_mark.line
        except TypeError:  # unhashable key: let the base constructor report it
            break
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _parse_yaml(text: str, origin: str) -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise SpecError(f"{origin}:{where}: malformed YAML: {problem}") from None


# --------------------------------------------------------------------------- validation messages


def _field_path(path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


_TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "object": "a mapping",
    "array": "a list",
}


def _yaml_repr(value: Any) -> str:
    """A value as the user wrote it in YAML (null, true, 'text', 4.5), cut to one short line."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("...").strip()
    return text if len(text) <= 60 else text[:57] + "..."


def _non_finite(data: Any, path: list) -> list | None:
    """Path of the first NaN or infinity in ``data`` (a JSON schema lets NaN through every bound)."""
    if isinstance(data, float) and not math.isfinite(data):
        return path
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return None
    for key, value in items:
        found = _non_finite(value, path + [key])
        if found is not None:
            return found
    return None


def _message(error) -> str:
    """One line for a jsonschema error: the dotted field and what is wrong with it."""
    path = list(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted((k for k in error.instance if k not in allowed), key=str) if isinstance(error.instance, dict) else []
        key = str(extra[0]) if extra else "?"
        return f"field {_field_path(path + [key])}: unknown key (allowed here: {', '.join(allowed)})"
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        key = missing[0] if missing else "?"
        return f"field {_field_path(path + [key])}: missing (required)"
    if error.validator == "enum":
        allowed = ", ".join(str(v) for v in error.validator_value)
        return f"field {_field_path(path)}: {error.instance!r} is not one of: {allowed}"
    if error.validator == "type":
        wanted = _TYPE_WORDS.get(error.validator_value, str(error.validator_value))
        hint = " such as {preset: horowitz-45nm}" if path == ["energy"] else ""
        return f"field {_field_path(path)}: expected {wanted}{hint}, got {_yaml_repr(error.instance)}"
    where = _field_path(path) or "(top level)"
    return f"field {where}: {error.message}"


def _validate(data: Any, origin: str) -> None:
    if not isinstance(data, dict):
        kind = "an empty document" if data is None else f"a {type(data).__name__}"
        raise SpecError(f"{origin}: the spec must be a mapping of fields, got {kind}")
    errors = sorted(_validator().iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    if errors:
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise SpecError(f"{origin}: {_message(errors[0])}{more}")
    bad = _non_finite(data, [])
    if bad is not None:
        raise SpecError(f"{origin}: field {_field_path(bad)}: must be a finite number")


# --------------------------------------------------------------------------- dict <-> ArchSpec


def _energy_from(block: dict, origin: str) -> EnergyTable:
    base = energy_preset(block["preset"])
    overrides = {k: block[k] for k in OVERRIDABLE_FIELDS if k in block}
    for key in ("access_bits", "glb_reference_bytes"):
        if key in overrides:
            overrides[key] = int(overrides[key])
    for key in OVERRIDABLE_FIELDS:
        if key in overrides and key not in ("access_bits", "glb_reference_bytes"):
            overrides[key] = float(overrides[key])
    changed = sorted(k for k, v in overrides.items() if v != getattr(base, k))
    # A changed table never goes by the preset's own name or source: results must say what made them.
    name = block.get("name", base.name)
    source = block.get("source", base.source)
    if changed and name == base.name:
        name = f"{base.name}+{'+'.join(changed)}"
    if changed and source == base.source:
        source = f"{base.source}; overridden in {origin}: " + ", ".join(f"{k}={overrides[k]:g}" for k in changed)
    return replace(base, name=name, source=source, unit=block.get("unit", base.unit), **overrides)


def _pe_from(block: dict) -> PeSpec:
    """The PE block: counts and widths as integers, kind, signedness and multiplier as given."""
    words = {k: (v if k in ("kind", "multiplier", "weight_signed", "activation_signed") else int(v))
             for k, v in block.items()}
    return PeSpec(**words)


def _pe_to_dict(pe: PeSpec) -> dict:
    return {f.name: (getattr(pe, f.name).value if f.name == "kind" else getattr(pe, f.name)) for f in fields(PeSpec)}


def _sparsity_from(block: dict, origin: str) -> SparsitySpec:
    """The sparsity block; an operand it does not name keeps the default (docs/arch-yaml.md)."""
    default = SparsitySpec()
    operands = {}
    for key in ("weights", "activations"):
        given = block.get(key)
        if given is None:
            operands[key] = getattr(default, key)
            continue
        words = dict(given)
        if "levels" in words:
            words["levels"] = tuple(words["levels"])
        base = getattr(default, key)
        words.setdefault("action", base.action)
        if "structured" in words:
            try:
                words["structured"] = StructuredSkip(**{k: int(v) for k, v in words["structured"].items()})
            except SpecError as exc:
                raise SpecError(f"{origin}: field sparsity.{key}.structured: "
                                f"{str(exc).removeprefix('structured: ')}") from None
        try:
            operands[key] = OperandSparsity(**words)
        except SpecError as exc:
            raise SpecError(f"{origin}: field sparsity.{key}: {str(exc).removeprefix('sparsity: ')}") from None
    return SparsitySpec(**operands)


def _sparsity_to_dict(spec: SparsitySpec) -> dict:
    out = {}
    default = SparsitySpec()
    for key in ("weights", "activations"):
        operand, base = getattr(spec, key), getattr(default, key)
        if operand == base:
            continue
        item: dict[str, Any] = {"format": operand.format.value, "action": operand.action.value}
        if operand.metadata_bits:
            item["metadata_bits"] = operand.metadata_bits
        if operand.compressed:
            item["levels"] = list(operand.levels)
        if operand.word_bits:
            item["word_bits"] = operand.word_bits
        if not operand.compress_network_input:
            item["compress_network_input"] = False
        if operand.structured is not None:
            item["structured"] = {"n": operand.structured.n, "m": operand.structured.m}
        out[key] = item
    return out


def _glb_from(block: dict, origin: str) -> BufferSpec:
    """The glb block; ``allocation`` and its ``filter_bytes`` checked together (docs/arch-yaml.md)."""
    words = {k: (v if k == "allocation" else int(v)) for k, v in block.items()}
    try:
        return BufferSpec(**words)
    except SpecError as exc:
        raise SpecError(f"{origin}: field {exc}") from None


def _glb_to_dict(glb: BufferSpec) -> dict:
    """The glb block; the allocation only when it is not the default (specs without one read as before)."""
    out = {f.name: getattr(glb, f.name) for f in fields(BufferSpec) if f.name not in ("allocation", "filter_bytes")}
    if glb.split:
        out.update(allocation=glb.allocation, filter_bytes=glb.filter_bytes)
    return out


def arch_from_dict(data: Any, origin: str = "<spec>", default_name: str = "custom") -> ArchSpec:
    """Validate a spec given as plain data (as parsed from YAML) and build the ``ArchSpec``."""
    _validate(data, origin)
    pe = _pe_from(data.get("pe", {}))
    glb = _glb_from(data["glb"], origin)
    dram_block = data["dram"]
    dram = DramSpec(
        bytes_per_cycle=float(dram_block["bytes_per_cycle"]),
        latency_cycles=int(dram_block.get("latency_cycles", DramSpec.latency_cycles)),
    )
    defaults = {f.name: f.default for f in fields(ArchSpec)}
    dataflows = tuple(Dataflow(d) for d in data["dataflows"]) if "dataflows" in data else defaults["dataflows"]
    sparsity = _sparsity_from(data.get("sparsity", {}), origin)
    try:
        sparsity.check_array(int(data["rows"]), tuple(d.value for d in dataflows))
    except SpecError as exc:
        raise SpecError(f"{origin}: field sparsity.weights.structured: {str(exc).removeprefix('sparsity: ')}") from None
    return ArchSpec(
        name=data.get("name", default_name),
        rows=int(data["rows"]),
        cols=int(data["cols"]),
        pe=pe,
        glb=glb,
        dram=dram,
        energy=_energy_from(data["energy"], origin),
        noc=NocKind(data["noc"]) if "noc" in data else defaults["noc"],
        clock_mhz=float(data.get("clock_mhz", defaults["clock_mhz"])),
        dataflows=dataflows,
        source=origin,
        description=data.get("description", ""),
        sparsity=sparsity,
        binary_array=BinaryArraySpec(**{k: (v if k == "dataflow" else int(v)) for k, v in data["binary_array"].items()})
        if "binary_array" in data else None,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _energy_to_dict(table: EnergyTable) -> dict:
    base = ENERGY_PRESETS.get(table.preset, HOROWITZ_45NM)
    out: dict[str, Any] = {"preset": base.name}
    overridden = [k for k in OVERRIDABLE_FIELDS if getattr(table, k) != getattr(base, k)]
    if table.name != base.name or overridden:
        out["name"] = table.name
        out["source"] = table.source
    if table.unit != base.unit:
        out["unit"] = table.unit
    for key in overridden:
        out[key] = getattr(table, key)
    return out


def arch_to_dict(spec: ArchSpec) -> dict:
    """A spec as plain data that validates against the schema; ``arch_from_dict`` gives it back."""
    out: dict[str, Any] = {"name": spec.name}
    if spec.description:
        out["description"] = spec.description
    out.update(
        {
            "rows": spec.rows,
            "cols": spec.cols,
            "clock_mhz": _plain(spec.clock_mhz),
            "noc": NocKind(spec.noc).value,
            "dataflows": [Dataflow(d).value for d in spec.dataflows],
            "pe": _pe_to_dict(spec.pe),
            "glb": _glb_to_dict(spec.glb),
            "dram": {
                "bytes_per_cycle": _plain(spec.dram.bytes_per_cycle),
                "latency_cycles": spec.dram.latency_cycles,
            },
            "energy": _energy_to_dict(spec.energy),
        }
    )
    sparsity = _sparsity_to_dict(spec.sparsity)
    if sparsity:
        out["sparsity"] = sparsity
    if spec.binary_array is not None:
        out["binary_array"] = {f.name: getattr(spec.binary_array, f.name) for f in fields(BinaryArraySpec)}
    return out


class _SpecDumper(yaml.SafeDumper):
    """Block-style mappings, flow-style lists (``dataflows: [ws, os]``), as in the presets."""


_SpecDumper.add_representer(
    list, lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)
)


def spec_dict_to_yaml(data: dict) -> str:
    """Spec data as YAML text, keys in the order given, lists inline."""
    return yaml.dump(data, Dumper=_SpecDumper, sort_keys=False, default_flow_style=False)


def arch_to_yaml(spec: ArchSpec) -> str:
    """A spec as YAML text in the field order of the schema."""
    return spec_dict_to_yaml(arch_to_dict(spec))


# --------------------------------------------------------------------------- entry point


def load_arch(ref: str | Path) -> ArchSpec:
    """Load an accelerator spec.

    Parameters:
        ref: a bundled preset's name (see ``preset_names()``) or the path of a YAML file
            (docs/arch-yaml.md; validated against ``codesign/schemas/arch.schema.json``).

    Returns the frozen ``ArchSpec``.

    Raises ``SpecError`` (one line naming the file and the dotted field) for an unknown preset, a missing or
    unreadable file, malformed YAML, or a spec the schema or the energy tables reject.
    """
    text_ref = str(ref)
    if not isinstance(ref, Path) and text_ref in preset_names():
        data = _parse_yaml(preset_yaml(text_ref), f"preset {text_ref}")
        return arch_from_dict(data, origin=text_ref, default_name=text_ref)
    path = Path(text_ref)
    if not path.exists():
        looks_like_file = path.suffix in (".yaml", ".yml") or "/" in text_ref or "\\" in text_ref
        if looks_like_file:
            raise SpecError(f"{text_ref}: no such file")
        raise SpecError(f"unknown preset {text_ref!r} (and no such file); presets: {', '.join(preset_names())}")
    if path.is_dir():
        raise SpecError(f"{text_ref}: is a directory, not a YAML spec")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise SpecError(f"{text_ref}: cannot read: {reason}") from None
    return arch_from_dict(_parse_yaml(text, text_ref), origin=text_ref, default_name=path.stem)
