"""``codesign sim ... --machine system``: the generated system's cycles, per step and in total, by the cycle
contract its RTL is built to (``codesign.contract.system_timing``: the instructions ``codesign compile`` emits,
dispatched and timed as docs/isa.md says; ``codesign run`` measures the same numbers on the RTL), beside the
abstract accelerator model's cycles for the same layers (docs/simulator.md). docs/isa.md names where they differ."""

from __future__ import annotations

import argparse
import json

__all__ = ["run_system_sim"]


def run_system_sim(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from codesign.arch_loader import load_arch
    from codesign.atomic_write import check_writable, write_text_atomic
    from codesign.compiler.artifacts import manifest
    from codesign.compiler.build import check_system_bits, compile_model
    from codesign.errors import MappingError, ModelLoadError
    from codesign.model_ref import load_model

    dataflow = str(args.dataflow).lower()
    if dataflow not in ("ws", "os"):
        raise MappingError(f"--machine system runs the generated ws or os core: --dataflow ws or os, not {dataflow}")
    for flag, given in (("--report", args.report), ("--csv", args.csv), ("--no-fuse", not args.fuse),
                        ("--no-onchip-activations", not args.onchip_activations)):
        if given:
            raise MappingError(f"{flag} applies to the abstract model, not to --machine system")
    check_writable(args.json)
    arch = load_arch(args.arch)
    bits = None if args.bits is None else tuple(int(b) for b in str(args.bits).split(",")[:2])
    check_system_bits(arch, bits)
    from codesign.cli.model_args import parse_input_shape

    name, model, inputs = load_model(args.model, parse_input_shape(args.input_shape))
    import torch

    if not isinstance(model, torch.nn.Module):
        raise ModelLoadError("--machine system needs the model's module (a factory or zoo name), not an exported "
                             "program")
    compiled = compile_model(model, inputs, arch, dataflow, reestimate_bn=str(args.model).startswith("zoo:"),
                             name=name)
    data = manifest(compiled, None, name)
    if args.json:
        write_text_atomic(args.json, json.dumps(data, indent=2) + "\n")
    if args.quiet:
        return 0
    console = Console() if Console().is_terminal else Console(width=160)
    cycles = data["cycles"]
    console.print(f"{name} on the generated {arch.name} system ({dataflow}): {cycles['predicted']:,} cycles "
                  f"(boot {cycles['boot']:,}, then {cycles['after_boot']:,}), {data['instructions']:,} instructions; "
                  f"the abstract model of {arch.name}: {cycles['simulator']:,} cycles", markup=False,
                  highlight=False, soft_wrap=True)
    rows = sorted(data["layers"], key=lambda row: -row["predicted_cycles"])
    shown = rows if args.layers else rows[: args.max_rows or 10]
    table = Table(title=f"{'every step' if args.layers else f'the {len(shown)} longest of {len(rows)} steps'}: "
                        "system cycles (docs/isa.md) beside the abstract model's (docs/simulator.md)")
    for column in ("step", "kind", "system cycles", "abstract cycles", "system / abstract"):
        table.add_column(column, justify="left" if column in ("step", "kind") else "right")
    for row in (sorted(shown, key=lambda r: r["first_instruction"]) if args.layers else shown):
        ratio = f"{row['predicted_cycles'] / row['simulator_cycles']:.2f}" if row["simulator_cycles"] else ""
        table.add_row(row["name"], row["kind"], f"{row['predicted_cycles']:,}", f"{row['simulator_cycles']:,}", ratio)
    console.print(table)
    console.print("machine: the generated system (codesign hdl --system), timed instruction by instruction; "
                  "codesign run measures it on the RTL. The abstract model differs in the program's boot, the "
                  "accumulator that keeps partial sums off the GLB, and staging-bound layers (docs/isa.md)",
                  markup=False, highlight=False, soft_wrap=True)
    return 0
