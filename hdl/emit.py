"""Verilog emission of Amaranth components, a machine-readable manifest, and writing both to a folder.

A manifest tells a testbench or an SoC integrator everything needed to drive the module without
reading Python: top module name, every port with direction and width, and the build parameters.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from codesign.atomic_write import write_text_atomic
from codesign.errors import HdlError, OutputError

__all__ = [
    "MANIFEST_NAME", "MANIFEST_VERSION", "to_verilog", "top_ports", "port_list", "manifest", "EmittedDesign",
    "prepare_out_dir", "write_design", "emit",
]

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


def _check_name(name: str) -> None:
    if not name or not (name[0].isalpha() or name[0] == "_") or not all(ch.isalnum() or ch == "_" for ch in name):
        raise HdlError(f"module name {name!r} is not a Verilog identifier")


# Yosys script after Amaranth's RTLIL: ``proc`` (with its mux pass) turns every combinational
# process into continuous assignments, so no ``always @*`` block is left for a simulator to skip at
# time 0 (Icarus under -g2012 and other SystemVerilog modes run an ``always @*`` only on a change of
# its inputs, and Yosys' time-0 trigger is a declaration initialiser, which SystemVerilog applies
# before time 0 without an event). ``-noparallelcase`` writes one-hot muxes as plain case statements
# with a don't-care default (no overlapping casez patterns); without ``-norename`` Yosys' internal
# names become ``_N_`` (an escaped ``\$name`` function call is not legal for Icarus).
_YOSYS_SCRIPT = ("proc -norom", "memory_collect", "write_verilog -noparallelcase")


def to_verilog(component: Any, name: str) -> str:
    """Verilog text of a ``wiring.Component``: ports from its signature, plus ``clk`` and ``rst`` when it has
    registers or synchronous memory ports (a purely combinational component has neither).

    Parameters: ``component``, an Amaranth ``wiring.Component`` (e.g. ``GemmCore``); ``name``, the top
    module's name (a Verilog identifier). Returns the Verilog source as a string (no source
    locations), plain Verilog-2001 without ``always @*`` blocks, so it behaves the same under every
    ``-g`` mode of Icarus and under Verilator (docs/verilator-waivers.md). Raises HdlError for a name
    that is not a Verilog identifier or when Yosys fails.
    """
    from amaranth._toolchain.yosys import YosysError, find_yosys
    from amaranth.back import rtlil

    _check_name(name)
    rtlil_text = rtlil.convert(component, name=name, emit_src=False)
    script = [f"read_rtlil <<rtlil\n{rtlil_text}\nrtlil", *_YOSYS_SCRIPT]
    try:
        yosys = find_yosys(lambda version: version >= (0, 40))
        return yosys.run(["-q", "-"], "\n".join(script), ignore_warnings=True)
    except YosysError as exc:  # pragma: no cover - only on a broken toolchain
        raise HdlError(f"yosys could not write Verilog for {name}: {exc}") from None


def top_ports(verilog_text: str, name: str) -> list[str]:
    """The port names of module ``name`` in ``verilog_text``, in its header's order (HdlError if absent)."""
    found = re.search(rf"^module {re.escape(name)}\(([^)]*)\);", verilog_text, re.M)
    if found is None:
        raise HdlError(f"the Verilog has no module {name}")
    return [port.strip() for port in found.group(1).split(",") if port.strip()]


def port_list(component: Any, *, has_sync_domain: bool = True) -> list[dict[str, Any]]:
    """Ports as Verilog names them: ``path__joined__by__double_underscores``, direction and width.

    Amaranth adds ``clk`` and ``rst`` for a component that uses the ``sync`` domain (``emit`` reads
    whether it did from the Verilog: a purely combinational component has neither).
    """
    from amaranth.hdl import Value, ValueCastable
    from amaranth.lib import wiring

    ports: list[dict[str, Any]] = []
    if has_sync_domain:
        ports.append({"name": "clk", "direction": "in", "width": 1})
        ports.append({"name": "rst", "direction": "in", "width": 1})
    for path, member, value in component.signature.flatten(component):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        if not isinstance(value, Value):
            continue
        ports.append(
            {
                "name": "__".join(map(str, path)),
                "direction": "in" if member.flow == wiring.In else "out",
                "width": len(value),
            }
        )
    return ports


def manifest(
    component: Any,
    name: str,
    parameters: Mapping[str, Any],
    *,
    kind: str,
    has_sync_domain: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest dict of one generated module (JSON-serializable)."""
    _check_name(name)
    data: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "top": name,
        "kind": kind,
        "verilog": f"{name}.v",
        "parameters": dict(parameters),
        "ports": port_list(component, has_sync_domain=has_sync_domain),
    }
    if extra:
        data.update(extra)
    try:
        json.dumps(data)  # fail here, not half-way through a write
    except (TypeError, ValueError) as exc:
        raise HdlError(f"manifest of {name} is not JSON-serializable: {exc}") from None
    return data


@dataclass(frozen=True)
class EmittedDesign:
    """Where a design was written, and its manifest."""

    verilog_path: Path
    manifest_path: Path
    manifest: dict[str, Any]


def prepare_out_dir(out_dir: str | os.PathLike) -> Path:
    """Create ``out_dir`` (its parent must exist) or accept an existing folder."""
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"cannot write to {folder}: it exists and is not a folder")
    if not folder.exists():
        if not folder.parent.is_dir() and str(folder.parent) not in ("", "."):
            raise OutputError(f"cannot create {folder}: folder {folder.parent} does not exist")
        try:
            folder.mkdir()
        except OSError as exc:
            raise OutputError(f"cannot create {folder}: {exc.strerror}") from None
    return folder


def write_design(out_dir: str | os.PathLike, verilog_text: str, manifest_data: Mapping[str, Any]) -> EmittedDesign:
    """Write ``<top>.v`` and ``manifest.json`` into ``out_dir``, each all-or-nothing."""
    folder = prepare_out_dir(out_dir)
    data = dict(manifest_data)
    verilog_path = write_text_atomic(folder / data["verilog"], verilog_text)
    manifest_path = write_text_atomic(folder / MANIFEST_NAME, json.dumps(data, indent=2, sort_keys=False) + "\n")
    return EmittedDesign(verilog_path, manifest_path, data)


def emit(
    component: Any,
    name: str,
    out_dir: str | os.PathLike,
    parameters: Mapping[str, Any],
    *,
    kind: str,
    extra: Mapping[str, Any] | None = None,
) -> EmittedDesign:
    """Convert ``component`` to Verilog and write it with its manifest into ``out_dir``.

    Parameters: ``component``, a ``wiring.Component``; ``name``, its top module name (a Verilog
    identifier, also the file name ``<name>.v``); ``out_dir``, the folder (created if its parent
    exists); ``parameters``, the build parameters the manifest lists; ``kind``, the manifest's
    design kind (e.g. "gemm_core"); ``extra``, more top-level manifest entries.
    Returns the ``EmittedDesign`` (Verilog path, manifest path, manifest dict). Raises HdlError for a
    bad name, a manifest that is not JSON-serializable or a Yosys failure; OutputError when the
    folder cannot be created or a file cannot be written (each file is written all-or-nothing).
    """
    _check_name(name)
    text = to_verilog(component, name)
    data = manifest(component, name, parameters, kind=kind, extra=extra,
                    has_sync_domain="clk" in top_ports(text, name))
    return write_design(out_dir, text, data)
