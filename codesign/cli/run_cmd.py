"""``codesign run MODEL --arch A --dataflow ws|os --simulator verilator|icarus``: compile the model, generate the
system, run the whole network on the RTL under cocotb and compare: every layer's measured cycles with the
prediction, the output with the integer reference bit for bit, and its SQNR against the float model."""

from __future__ import annotations

import argparse

__all__ = ["register", "run", "layer_rows"]


def register(subparsers: argparse._SubParsersAction) -> None:
    from codesign.cli.compile_cmd import add_compile_arguments

    parser = subparsers.add_parser(
        "run",
        help="run a model on the generated system's RTL: bit-exact and cycle-exact against the prediction",
        description=__doc__,
    )
    add_compile_arguments(parser)
    parser.add_argument("--simulator", default="verilator", metavar="verilator|icarus",
                        help="HDL simulator (default verilator)")
    parser.add_argument("--inputs", metavar="FILE", default=None,
                        help="a tensor saved with torch.save of the model's input shape to run (default: a seeded "
                        "random input)")
    parser.add_argument("--json", metavar="FILE", default=None, help="write the per-layer comparison as JSON")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="folder for the RTL's outputs (output.npy: int8 codes; output_float.npy: dequantized), "
                        "the Verilog, the DRAM image before and after and the result (default: a temporary folder, "
                        "outputs not kept); simulator builds are kept in ~/.cache/codesign/rtl (CODESIGN_RTL_CACHE)")
    parser.set_defaults(handler=run)


def layer_rows(compiled, measured_issue) -> list[dict]:
    """Per step of the program: its name, predicted cycles (first issue to last effect, docs/isa.md) and measured
    cycles (the same span on the RTL: a step ends with a SYNC of every unit, which dispatches once everything
    before it is complete, so its measured dispatch is the step's end)."""
    from codesign.contract.isa import Op

    timing, rows = compiled.schedule, []
    instructions = compiled.program.instructions
    for record in compiled.program.layers:
        first, last = record["first_instruction"], record["last_instruction"]
        if last < first:
            continue
        predicted = max(timing.issue[i] + timing.cycles[i] for i in range(first, last + 1)) - timing.issue[first]
        measured = None
        if all(measured_issue[i] >= 0 for i in range(first, last + 1)):
            if instructions[last].op in (Op.SYNC, Op.END):
                end = measured_issue[last]
            else:  # no closing SYNC: the last effect at the contract's cycles after the measured dispatches
                end = max(measured_issue[i] + timing.cycles[i] for i in range(first, last + 1))
            measured = end - measured_issue[first]
        rows.append({"step": record.get("name", record["layers"][0] if record.get("layers") else "?"),
                     "layers": list(record.get("layers", ())), "first_instruction": first,
                     "last_instruction": last, "predicted_cycles": int(predicted),
                     "measured_cycles": None if measured is None else int(measured)})
    return rows


def _input(args, compiled, inputs):
    import numpy as np
    import torch

    from codesign.errors import ModelLoadError

    shape = compiled.net.graph.shapes[compiled.net.input_name]
    if args.inputs:
        try:
            tensor = torch.load(args.inputs, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same one-line error
            raise ModelLoadError(f"--inputs {args.inputs}: cannot read a tensor ({str(exc).splitlines()[0]})") from None
        if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != tuple(shape):
            got = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise ModelLoadError(f"--inputs {args.inputs}: a tensor of shape {tuple(shape)} is needed, not {got}")
        return tensor.float().numpy()
    generator = torch.Generator().manual_seed(2 * args.seed)
    return torch.randn(tuple(shape), generator=generator, dtype=inputs[0].dtype).numpy().astype(np.float32)


def run(args: argparse.Namespace) -> int:
    import json
    import tempfile
    from pathlib import Path

    import numpy as np

    from codesign.atomic_write import check_folder, check_writable, write_text_atomic
    from codesign.cli.compile_cmd import check_compile_options, compile_from_args
    from codesign.compiler.build import dram_image, read_output
    from codesign.integer.reference import quantize_input, run_reference
    from codesign.integer.scheme import dequantize
    from hdl.cocotb_run import ensure_simulator_on_path
    from hdl.system.params import DEFAULT_IMEM_DEPTH, system_params_from_arch
    from hdl.system.rtl_run import run_system

    arch, bits = check_compile_options(args)
    ensure_simulator_on_path(args.simulator)
    if args.json:
        check_writable(args.json)
    out = check_folder(args.out) if args.out else None
    name, inputs, compiled = compile_from_args(args, arch, bits, command="run")
    count = len(compiled.program.instructions)
    # the default instruction memory (one system, and one simulator build, for every program that fits it)
    depth = max(DEFAULT_IMEM_DEPTH, 1 << (count - 1).bit_length())
    params = system_params_from_arch(arch, args.dataflow, acc_rows=compiled.program.acc_rows, imem_depth=depth)
    x = _input(args, compiled, inputs)
    codes = quantize_input(compiled.net, x)
    reference = run_reference(compiled.net, codes)[compiled.net.output_name]
    dram = dram_image(compiled, codes)
    memory_map = compiled.program.memory_map
    predicted_total = compiled.schedule.total_cycles
    with tempfile.TemporaryDirectory(prefix="codesign-run-") as scratch:
        work = (out / "rtl") if out else Path(scratch)
        result = run_system(params, dram.tobytes(), memory_map["program"], count, args.simulator, work,
                            max_cycles=2 * predicted_total + 10_000)
    dram_after = np.frombuffer(result.dram, dtype=np.uint8)
    output = read_output(compiled.program.output, dram_after)
    exact = bool(result.done and (output == reference.reshape(output.shape)).all())
    rows = layer_rows(compiled, result.issue)
    for row in rows:
        row["cycles_equal"] = row["measured_cycles"] == row["predicted_cycles"]
    cycles_equal = result.done and result.cycles == predicted_total and all(r["cycles_equal"] for r in rows)
    float_out = dequantize(output, compiled.net.output_qparams)
    module = compiled.prepared.program.module()
    import torch

    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy().reshape(float_out.shape)
    noise = float(((expected - float_out) ** 2).mean())
    sqnr = 10 * np.log10(float((expected ** 2).mean()) / noise) if noise > 0 else float("inf")
    if out:
        out.mkdir(parents=True, exist_ok=True)
        np.save(out / "output.npy", output.astype(np.int8))
        np.save(out / "output_float.npy", float_out.astype(np.float32))
    _print(name, arch, args, rows, result, predicted_total, exact, sqnr, out)
    if args.json:
        document = {"model": name, "arch": arch.name, "dataflow": args.dataflow, "simulator": args.simulator,
                    "instructions": count, "predicted_cycles": predicted_total, "measured_cycles": result.cycles,
                    "done": result.done, "error_code": result.error_code, "error_pc": result.error_pc,
                    "bit_exact": exact, "cycles_equal": bool(cycles_equal), "sqnr_db": sqnr,
                    "rtl_seconds": round(result.seconds, 1), "layers": rows}
        write_text_atomic(args.json, json.dumps(document, indent=2) + "\n")
    return 0 if exact and cycles_equal else 1


def _print(name, arch, args, rows, result, predicted_total, exact, sqnr, out) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console() if Console().is_terminal else Console(width=140)
    state = "DONE" if result.done else (f"ERROR {result.error_code} at instruction {result.error_pc}"
                                        if not result.timed_out else "no DONE within the cycle limit")
    console.print(f"{name} on the generated {arch.name} system ({args.dataflow}, {args.simulator}): {state}; "
                  f"{result.cycles} cycles measured, {predicted_total} predicted; output "
                  f"{'bit-exact' if exact else 'NOT bit-exact'} against the integer reference; "
                  f"SQNR {sqnr:.1f} dB against the float model; RTL run {result.seconds:.0f} s",
                  markup=False, highlight=False, soft_wrap=True)
    table = Table(title="per step: predicted and measured cycles")
    for column in ("step", "instructions", "predicted", "measured", ""):
        table.add_column(column, justify="left" if column in ("step", "") else "right")
    for row in rows:
        measured = "" if row["measured_cycles"] is None else str(row["measured_cycles"])
        table.add_row(row["step"], f"{row['first_instruction']}..{row['last_instruction']}",
                      str(row["predicted_cycles"]), measured, "equal" if row["cycles_equal"] else "DIFFERENT")
    console.print(table)
    if out:
        console.print(f"wrote {out / 'output.npy'} and {out / 'output_float.npy'}", markup=False, highlight=False)
