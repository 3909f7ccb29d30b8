"""`codesign arch`: list the bundled accelerator presets, or print one (or a YAML file) as a spec to start from."""

from __future__ import annotations

import argparse
import sys

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "arch",
        help="list accelerator presets or print one as YAML",
        description=__doc__,
    )
    actions = parser.add_subparsers(dest="arch_action", metavar="ACTION")
    listing = actions.add_parser("list", help="list the bundled presets", description="List the bundled presets.")
    listing.set_defaults(handler=run)
    show = actions.add_parser(
        "show",
        help="print a preset (or validate a YAML file and print it) as YAML",
        description="Print a preset with its citing comments, or validate a YAML spec and print it normalized.",
    )
    show.add_argument("ref", metavar="NAME|FILE", help="preset name (see `codesign arch list`) or YAML file")
    show.add_argument(
        "--full",
        action="store_true",
        help="print the spec normalized with every energy entry written out (to override any of them)",
    )
    show.add_argument("-o", "--output", metavar="FILE", help="write the YAML to FILE instead of stdout")
    show.set_defaults(handler=run)
    parser.set_defaults(handler=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_usage(sys.stderr)
    print("codesign arch: error: choose an action: list or show", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    if args.arch_action == "list":
        return _list()
    return _show(args.ref, full=args.full, output=args.output)


def _list() -> int:
    from rich.console import Console
    from rich.table import Table

    from codesign.arch_loader import load_arch, preset_names

    table = Table(title="Accelerator presets (codesign arch show NAME)")
    table.add_column("name", no_wrap=True, style="bold")
    table.add_column("array", no_wrap=True)
    table.add_column("bits w/a/acc", no_wrap=True)
    table.add_column("dataflows", no_wrap=True)
    table.add_column("buffer", no_wrap=True, justify="right")
    table.add_column("clock", no_wrap=True, justify="right")
    table.add_column("energy table", no_wrap=True)
    for name in preset_names():
        spec = load_arch(name)
        table.add_row(
            name,
            f"{spec.rows}x{spec.cols} {spec.noc.value}",
            f"{spec.pe.weight_bits}/{spec.pe.activation_bits}/{spec.pe.accumulator_bits}",
            ", ".join(d.value for d in spec.dataflows),
            _size(spec.glb.size_bytes),
            f"{spec.clock_mhz:g} MHz",
            spec.energy.name,
        )
    Console(file=sys.stdout, width=max(120, Console().width)).print(table)
    return 0


def _size(size_bytes: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size_bytes >= scale and size_bytes % (scale // 16) == 0:
            return f"{size_bytes / scale:g} {unit}"
    return f"{size_bytes} B"


def _full_dict(spec) -> dict:
    from dataclasses import fields

    from codesign.arch import EnergyTable
    from codesign.arch_loader import arch_to_dict

    data = arch_to_dict(spec)
    energy = {"preset": data["energy"]["preset"], "name": spec.energy.name, "source": spec.energy.source}
    energy["unit"] = spec.energy.unit
    skip = {"name", "source", "unit", "preset"}
    energy.update({f.name: getattr(spec.energy, f.name) for f in fields(EnergyTable) if f.name not in skip})
    data["energy"] = energy
    return data


def _show(ref: str, full: bool, output: str | None) -> int:
    from codesign.arch_loader import arch_to_yaml, load_arch, preset_names, preset_yaml, spec_dict_to_yaml

    spec = load_arch(ref)  # validates a file, or raises SpecError naming the unknown preset
    if full:
        text = spec_dict_to_yaml(_full_dict(spec))
    elif ref in preset_names():
        text = preset_yaml(ref)
    else:
        text = f"# {ref}: valid; normalized by codesign arch show\n" + arch_to_yaml(spec)
    if output:
        from codesign.atomic_write import write_text_atomic

        write_text_atomic(output, text)
        print(f"wrote {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
