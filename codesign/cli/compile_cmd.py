"""``codesign compile MODEL --arch A --dataflow ws|os --out DIR``: the program, weight image and manifest for the
generated system, from the simulator's schedule; the integer reference's SQNR against the float model."""

from __future__ import annotations

import argparse

__all__ = ["register", "run", "add_compile_arguments", "check_compile_options", "compile_from_args"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compile",
        help="compile a model to a program for the generated accelerator (int8, bit-exact executor)",
        description="Quantize the model to int8 (calibrated as the accuracy proxy), simulate it once and write the "
        "program (program.bin, program.lst), the weight image (weights.bin) and manifest.json into DIR, from the "
        "mappings, tiling and fusion the simulator chose. The executor runs the program on one input and checks "
        "it equals the integer reference bit for bit.",
    )
    add_compile_arguments(parser)
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the four files (created)")
    parser.add_argument("--no-check", dest="check", action="store_false",
                        help="skip running the program on the executor")
    parser.set_defaults(handler=run)


def add_compile_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``compile`` and ``run`` share: the model, the accelerator, and how the model is quantized."""
    from codesign.cli.model_args import MODEL_HELP

    parser.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    parser.add_argument("--input-shape", metavar="N,C,H,W", default=None, help="shape of the example input")
    parser.add_argument("--arch", required=True, metavar="PRESET|FILE.yaml", help="accelerator preset or YAML spec")
    parser.add_argument("--dataflow", required=True, metavar="ws|os", help="the GEMM core's dataflow")
    parser.add_argument("--bits", default="8", metavar="8", help="weight and activation bits (the system runs 8)")
    parser.add_argument("--calibration", type=int, default=16, metavar="N", help="seeded calibration inputs (16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the calibration and check inputs (0)")
    parser.add_argument("--clipping", default="mse", metavar="mse|max", help="activation clipping (mse)")
    parser.add_argument("--reestimate-bn", action="store_true",
                        help="re-estimate batch-norm statistics on the calibration inputs (random-initialised "
                        "models; on by default for zoo: models)")


def check_compile_options(args: argparse.Namespace):
    """(arch, bits) of the options, each checked (one-line errors) before the model is loaded."""
    from codesign.arch_loader import load_arch
    from codesign.compiler.build import check_system_bits
    from codesign.errors import MappingError

    bits = _bits(args.bits)
    arch = load_arch(args.arch)
    check_system_bits(arch, bits)
    if args.dataflow not in ("ws", "os"):
        raise MappingError(f"--dataflow {args.dataflow!r}: the generated system runs ws or os")
    if args.clipping not in ("mse", "max"):
        from codesign.accuracy import AccuracyError

        raise AccuracyError(f"--clipping {args.clipping!r} is not mse or max")
    return arch, bits


def compile_from_args(args: argparse.Namespace, arch, bits, command: str = "compile"):
    """(name, example inputs, Compiled) of the model the options name."""
    import torch

    from codesign.cli.model_args import parse_input_shape
    from codesign.compiler.build import compile_model
    from codesign.model_ref import load_model

    name, model, inputs = load_model(args.model, parse_input_shape(args.input_shape))
    if not isinstance(model, torch.nn.Module):
        from codesign.errors import ModelLoadError

        raise ModelLoadError(f"{command} needs the model's module (a factory or zoo name), not an exported program")
    reestimate = args.reestimate_bn or str(args.model).startswith("zoo:")
    compiled = compile_model(model, inputs, arch, args.dataflow, calibration=args.calibration, seed=args.seed,
                             clipping=args.clipping, reestimate_bn=reestimate, bits=bits, name=name)
    return name, inputs, compiled


def _bits(text: str) -> tuple[int, int]:
    from codesign.errors import BitWidthError

    parts = [part.strip() for part in str(text).split(",") if part.strip()]
    try:
        values = [int(part) for part in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values *= 2
    if len(values) not in (2, 3):
        raise BitWidthError(f"--bits {text!r} must be N or W,A (the system runs 8)")
    return values[0], values[1]


def run(args: argparse.Namespace) -> int:
    import torch

    from codesign.atomic_write import check_folder

    arch, bits = check_compile_options(args)
    out = check_folder(args.out)
    from codesign.compiler.artifacts import write_artifacts
    from codesign.compiler.build import run_compiled
    from codesign.integer.reference import evaluate, quantize_input, run_reference

    name, inputs, compiled = compile_from_args(args, arch, bits)
    shape = compiled.net.graph.shapes[compiled.net.input_name]
    generator = torch.Generator().manual_seed(2 * args.seed)
    samples = torch.randn((8 * shape[0], *inputs[0].shape[1:]), generator=generator, dtype=inputs[0].dtype)
    result = evaluate(compiled.net, compiled.prepared.program.module(), (samples,))
    check = ""
    if args.check:
        codes = quantize_input(compiled.net, samples[:shape[0]].numpy())
        output, execution = run_compiled(compiled, codes)
        reference = run_reference(compiled.net, codes)[compiled.net.output_name].reshape(output.shape)
        equal = bool((output == reference).all())
        check = (f"; executor {'equals' if equal else 'DIFFERS FROM'} the integer reference, "
                 f"{execution.cycles} cycles")
        if not equal:
            print(f"codesign: error: the executor's output differs from the integer reference{check}")
            return 1
    write_artifacts(compiled, out, result.sqnr_db, name)
    program = compiled.program
    print(f"{name} on {arch.name} ({args.dataflow}): {len(program.instructions)} instructions, "
          f"{len(program.weights)} weight bytes, {compiled.schedule.total_cycles} cycles predicted "
          f"(simulator {compiled.sim.cycles}); integer reference SQNR {result.sqnr_db:.1f} dB over "
          f"{result.samples} inputs{check}")
    print(f"wrote {out}/program.bin, program.lst, weights.bin, manifest.json")
    return 0
