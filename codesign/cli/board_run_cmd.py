"""``codesign board-run MODEL --arch A --dataflow ws|os --port /dev/ttyUSB0``: compile the model for the board system
(its DRAM in on-chip memory, ``dram.latency_cycles`` = the on-chip memory's), load the image over the UART link
(docs/board.md), start, wait for DONE, read CYCLES and the output; compare the output with the integer reference
bit for bit and the measured cycles with the prediction."""

from __future__ import annotations

import argparse

__all__ = ["register", "run", "open_port"]


def register(subparsers: argparse._SubParsersAction) -> None:
    from codesign.cli.compile_cmd import add_compile_arguments

    parser = subparsers.add_parser(
        "board-run",
        help="run a model on the board system over its UART link: bit-exact and cycle-exact against the prediction",
        description=__doc__,
    )
    add_compile_arguments(parser)
    parser.add_argument("--port", required=True, metavar="DEVICE", help="the board's serial port (/dev/ttyUSB0)")
    parser.add_argument("--baud", type=int, default=115200, help="the UART's baud rate, as built (115200)")
    parser.add_argument("--board", default="ulx3s", metavar="ulx3s|icebreaker",
                        help="the board the system was built for (the fit check; default ulx3s)")
    parser.add_argument("--inputs", metavar="FILE", default=None,
                        help="a tensor saved with torch.save of the model's input shape (default: a seeded random "
                        "input)")
    parser.add_argument("--timeout", type=float, default=2.0, metavar="S",
                        help="seconds to wait for each answer of the board (2)")
    parser.add_argument("--run-timeout", type=float, default=60.0, metavar="S",
                        help="seconds to wait for DONE after START (60)")
    parser.set_defaults(handler=run)


def open_port(port: str, baud: int, timeout: float):
    """The serial port (pyserial), or a one-line BoardLinkError."""
    from codesign.board_host import BoardLinkError

    try:
        import serial
    except ImportError:
        raise BoardLinkError("board-run needs pyserial (pip install pyserial) for --port") from None
    try:
        return serial.Serial(port, baudrate=baud, bytesize=8, parity="N", stopbits=1, timeout=timeout)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise BoardLinkError(f"--port {port}: cannot open ({str(exc).splitlines()[0]})") from None


def run(args: argparse.Namespace, *, stream=None) -> int:
    """The command; ``stream`` (an object with ``write``/``read``) replaces the serial port (tests)."""
    import numpy as np

    from codesign.board_host import BoardLink
    from codesign.cli.compile_cmd import check_compile_options, compile_from_args
    from codesign.cli.run_cmd import _input
    from codesign.compiler.build import dram_image, read_output
    from codesign.errors import HdlError
    from codesign.integer.reference import quantize_input, run_reference
    from hdl.system.board import BOARD_CLOCK_HZ, check_board_fit, memory_plan
    from hdl.system.onchip_memory import board_arch, memory_bytes_for
    from hdl.system.params import system_params_from_arch

    arch, bits = check_compile_options(args)
    if args.board not in BOARD_CLOCK_HZ:
        raise HdlError(f"--board {args.board!r}: choose one of {', '.join(BOARD_CLOCK_HZ)}")
    if args.baud <= 0 or args.timeout <= 0 or args.run_timeout <= 0:
        raise HdlError("--baud, --timeout and --run-timeout must be positive")
    if stream is None:
        stream = open_port(args.port, args.baud, args.timeout)
    arch = board_arch(arch)
    name, inputs, compiled = compile_from_args(args, arch, bits, command="board-run")
    program = compiled.program
    count = len(program.instructions)
    depth = max(256, 1 << (count - 1).bit_length())
    params = system_params_from_arch(arch, args.dataflow, acc_rows=program.acc_rows, imem_depth=depth)
    x = _input(args, compiled, inputs)
    codes = quantize_input(compiled.net, x)
    reference = run_reference(compiled.net, codes)[compiled.net.output_name]
    dram = dram_image(compiled, codes)
    memory_map = program.memory_map
    memory_bytes = memory_bytes_for(dram.size)
    check_board_fit(params, memory_bytes, args.board)
    print(f"{name} for the {args.board} board system ({arch.name}, {args.dataflow}): {count} instructions, "
          f"{memory_bytes} bytes of on-chip memory")
    for region in memory_plan(memory_map, len(compiled.binary), memory_bytes):
        print(f"  {region.name:8s} 0x{region.address:06x}  {region.bytes:7d} bytes  {region.where}")

    # a frame's bytes take at most a quarter of the answer timeout on the line (the reply follows the whole frame)
    link = BoardLink(stream, chunk=max(16, min(4096, int(args.baud / 10 * args.timeout / 4))))
    link.read_csr(0x04)  # STATUS: the board answers before anything is sent
    output = program.output
    for address, length in ((memory_map["weights"], memory_map["weights_bytes"]),
                            (memory_map["input"], memory_map["input_bytes"]),
                            (output.dram, output.bytes),  # cleared: a stale result cannot pass
                            (memory_map["program"], len(compiled.binary))):
        if length:
            link.write_memory(address, dram[address:address + length].tobytes())
    result = link.run(memory_map["program"], count, timeout_s=args.run_timeout)
    after = np.zeros(memory_bytes, dtype=np.uint8)
    after[output.dram:output.dram + output.bytes] = np.frombuffer(link.read_memory(output.dram, output.bytes),
                                                                  dtype=np.uint8)
    measured = read_output(output, after)
    exact = bool(result.done and (measured == reference.reshape(measured.shape)).all())
    predicted = compiled.schedule.total_cycles
    state = "DONE" if result.done else f"ERROR {result.error_code} at instruction {result.error_pc}"
    clock = BOARD_CLOCK_HZ[args.board]
    print(f"{state}: {result.cycles} cycles measured, {predicted} predicted "
          f"({'equal' if result.cycles == predicted else 'DIFFERENT'}; {result.cycles / clock * 1e3:.3f} ms at "
          f"{clock / 1e6:g} MHz); output {'bit-exact' if exact else 'NOT bit-exact'} against the integer reference")
    return 0 if exact and result.cycles == predicted else 1
