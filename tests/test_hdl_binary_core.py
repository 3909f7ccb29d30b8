"""BinaryGemmCore in Amaranth's simulator: bit-exact binarized tiles against the XNOR-popcount model, exact
cycles against codesign.contract.binary_timing, stalls, malformed commands, params, manifest and CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.arch import BinaryArraySpec
from codesign.arch_loader import load_arch
from codesign.contract import binary_timing
from codesign.errors import HdlError
from codesign.pe import PeKind
from hdl.benches.amaranth_bench import run_cases_amaranth, stream_ports
from hdl.benches.binary_golden import assemble_binary_gemm, binary_gemm_case, binary_standard_cases, binary_tile_case
from hdl.benches.driver import BinaryCaseDriver
from hdl.binary_core import BinaryGemmCore
from hdl.params import BinaryCoreParams, CoreParams, binary_params_from_arch

PARAMS = [
    BinaryCoreParams(1, 1, 1, 7),
    BinaryCoreParams(2, 3, 8, 40),
    BinaryCoreParams(3, 2, 5, 17),  # max_k not a multiple of word_bits: K tiles of 15 bits
    BinaryCoreParams(4, 4, 32, 128),
]


@pytest.mark.parametrize("params", PARAMS, ids=lambda p: p.top_name)
def test_standard_cases_are_bit_exact_and_take_exactly_the_predicted_cycles(params):
    cases = binary_standard_cases(params, seed=params.rows * 10 + params.cols)
    for case, result in zip(cases, run_cases_amaranth(params, cases), strict=True):
        assert result.bit_exact, (case.name, result.mismatches[:2])
        if case.timed:
            assert result.tile_cycles == case.predicted_tile_cycles, case.name
            assert result.cycles == case.predicted_cycles, case.name
        else:
            assert result.cycles >= case.predicted_cycles, case.name
        if case.gemm is not None:
            assert np.array_equal(assemble_binary_gemm(params, case, result.result_rows),
                                  np.asarray(case.gemm["expected"]))


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.sampled_from([1, 3, 8, 13]), st.data())
def test_any_tile_sequence_takes_the_contracts_cycles(rows, cols, word_bits, data):
    params = BinaryCoreParams(rows, cols, word_bits, 4 * word_bits + 1)
    shapes = [(data.draw(st.integers(1, rows)), data.draw(st.integers(1, params.max_k)), data.draw(st.integers(1, cols)))
              for _ in range(data.draw(st.integers(1, 4)))]
    case = binary_tile_case(params, "random", shapes, np.random.default_rng(0))
    (result,) = run_cases_amaranth(params, [case])
    assert result.bit_exact, result.mismatches[:1]
    assert result.tile_cycles == [binary_timing.tile_cycles(m, k, n, rows, cols, word_bits) for m, k, n in shapes]
    assert result.cycles == binary_timing.sequence_cycles(shapes, rows, cols, word_bits)
    # the formulas themselves: k_words + 2 alone, k_words between commands
    assert result.tile_cycles == [-(-k // word_bits) + 2 for _, k, _ in shapes]


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 10_000))
def test_random_stalls_never_lose_or_corrupt_results(seed):
    params = BinaryCoreParams(2, 2, 4, 20)
    rng = np.random.default_rng(seed)
    shapes = [(int(rng.integers(1, 3)), int(rng.integers(1, 21)), int(rng.integers(1, 3))) for _ in range(4)]
    case = binary_tile_case(params, "stalls", shapes, rng, timed=False, valid_gap_share=float(rng.random() * 0.6),
                            ready_low_share=float(rng.random() * 0.9))
    (result,) = run_cases_amaranth(params, [case], seed=seed)
    assert result.bit_exact, result.mismatches[:1]
    assert result.cycles >= case.predicted_cycles


def _run_driver(params, driver) -> None:
    core = BinaryGemmCore(params)
    inputs, outputs = stream_ports(core, ("cmd", "weights", "acts"), ("results",))

    async def bench(ctx):
        for _ in range(driver.timeout_edges()):
            if driver.done:
                break
            for name, value in driver.drive().items():
                ctx.set(inputs[name], value)
            driver.observe({name: ctx.get(sig) for name, sig in outputs.items()})
            await ctx.tick()

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("sent,runs", [((0, 0, 0), (1, 1, 1)), ((3, 15, 3), (2, 10, 2))])
def test_malformed_commands_run_as_the_nearest_legal_tile(sent, runs):
    """m, k or n of 0 runs as 1; above the maximum as the maximum (the beats sent are the clamped tile's)."""
    params = BinaryCoreParams(2, 2, 4, 10)
    case = binary_tile_case(params, "clamped", [runs], np.random.default_rng(5))
    driver = BinaryCaseDriver(params, case)
    m, k, n = sent
    driver.cmd.beats = [m | (k << params.rows.bit_length()) | (n << (params.rows.bit_length() + params.max_k.bit_length()))]
    _run_driver(params, driver)
    assert driver.result.bit_exact, driver.result.mismatches
    assert driver.result.cycles == binary_timing.tile_cycles(*runs, 2, 2, 4)


def test_after_reset_only_cmd_is_ready():
    core = BinaryGemmCore(BinaryCoreParams(2, 2, 8, 16))
    seen = {}

    async def bench(ctx):
        await ctx.tick()
        seen.update(cmd=ctx.get(core.cmd.ready), acts=ctx.get(core.acts.ready), weights=ctx.get(core.weights.ready),
                    results=ctx.get(core.results.valid), busy=ctx.get(core.busy))
        ctx.set(core.acts.valid, 1)
        ctx.set(core.weights.valid, 1)  # operands without a command are not taken
        seen["acts_alone"] = ctx.get(core.acts.ready)

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == {"cmd": 1, "acts": 0, "weights": 0, "results": 0, "busy": 0, "acts_alone": 0}


def test_a_gemm_over_several_k_tiles_is_assembled_by_the_host():
    params = BinaryCoreParams(2, 2, 8, 16)  # K tiles of 16 bits: 2 words
    case = binary_gemm_case(params, "gemm", 5, 37, 3, np.random.default_rng(2))
    assert [t.k for t in case.tiles[:3]] == [16, 16, 5]
    (result,) = run_cases_amaranth(params, [case])
    assert result.bit_exact and result.cycles == case.predicted_cycles
    assert np.array_equal(assemble_binary_gemm(params, case, result.result_rows), np.asarray(case.gemm["expected"]))
    tiles, cycles = binary_timing.predict_gemm_tiles(5, 37, 3, 2, 2, 8, k_tile=16)
    assert cycles == result.cycles == sum(-(-k // 8) for _, k, _ in tiles) + 2


@pytest.mark.parametrize("kwargs,match", [
    ({"rows": 0}, "rows=0"), ({"cols": 65}, "cols=65"), ({"word_bits": 0}, "word_bits=0"),
    ({"word_bits": 8, "max_k": 7}, "max_k=7 must be an integer >= word_bits=8"),
    ({"word_bits": 1, "max_k": 1025}, "above MAX_WORDS"),
])
def test_params_are_checked(kwargs, match):
    with pytest.raises(HdlError, match=match):
        BinaryCoreParams(**kwargs)


def test_params_follow_the_arch_binary_array_and_the_contract():
    arch = load_arch("fpga-8x8")
    with pytest.raises(HdlError, match="has no binary_array"):
        binary_params_from_arch(arch)
    from dataclasses import replace

    arch = replace(arch, binary_array=BinaryArraySpec(rows=4, cols=6, word_bits=32, accumulator_bits=16))
    params = binary_params_from_arch(arch)
    assert (params.rows, params.cols, params.word_bits) == (4, 6, 32)
    assert params.max_k == binary_timing.max_tile_k(32, 16) == 1023 * 32 == params.k_tile
    assert params.acc_bits == 16 and params.pe.kind is PeKind.XNOR_POPCOUNT and params.pe.word_bits == 32
    small = replace(arch, binary_array=BinaryArraySpec(rows=2, cols=2, word_bits=64, accumulator_bits=12))
    assert binary_params_from_arch(small).max_k == 31 * 64  # 2047 // 64 whole words
    with pytest.raises(HdlError, match="cannot hold the dot product of one 64-bit word"):
        binary_params_from_arch(replace(arch, binary_array=BinaryArraySpec(2, 2, 64, 7)))
    with pytest.raises(HdlError, match="needs BinaryCoreParams"):
        BinaryGemmCore(CoreParams())


def test_manifest_prints_the_contract(tmp_path):
    from hdl.generate import emit_binary_core

    params = BinaryCoreParams(2, 3, 16, 64)
    design = emit_binary_core(params, tmp_path / "out")
    data = json.loads(design.manifest_path.read_text())
    assert data["cycles"] == binary_timing.CONTRACT.as_manifest()
    assert data["cycles"]["tile"] == "k_words + 2" and data["cycles"]["issue_interval"] == "k_words"
    assert data["cycles"]["symbols"]["k_words"].startswith("ceil(k / word_bits)")
    ports = {p["name"]: p["width"] for p in data["ports"]}
    assert ports["acts__payload"] == 2 * 16 and ports["weights__payload"] == 3 * 16
    assert ports["results__payload"] == 2 * 3 * params.acc_bits
    fields = {f["name"]: (f["lsb"], f["width"]) for f in data["cmd_fields"]}
    assert fields == {"m": (0, 2), "k": (2, 7), "n": (9, 2)}
    assert design.verilog_path.read_text().count("module xnor_gemm_2x3_w16(") == 1


def _write_arch(tmp_path, binary=True):
    path = tmp_path / "bnn.yaml"
    text = ("name: bnn\nrows: 8\ncols: 8\nglb: {size_bytes: 65536}\ndram: {bytes_per_cycle: 8}\n"
            "energy: {preset: horowitz-45nm}\n")
    if binary:
        text += "binary_array: {rows: 3, cols: 2, word_bits: 16, accumulator_bits: 10}\n"
    path.write_text(text)
    return path


def test_cli_hdl_emits_the_binary_core(tmp_path, capsys):
    from codesign.cli import main

    arch = _write_arch(tmp_path)
    assert main(["hdl", "--arch", str(arch), "--array", "binary", "--out", str(tmp_path / "rtl")]) == 0
    out = capsys.readouterr().out
    assert "xnor_gemm_3x2_w16" in out and "tile k_words + 2" in out
    data = json.loads((tmp_path / "rtl" / "manifest.json").read_text())
    assert data["kind"] == "binary_gemm_core" and data["parameters"]["max_k"] == 31 * 16
    assert main(["hdl", "--arch", str(arch), "--array", "binary", "--rows", "2", "--word-bits", "8",
                 "--out", str(tmp_path / "rtl2")]) == 0
    assert (tmp_path / "rtl2" / "xnor_gemm_2x2_w8.v").is_file()


@pytest.mark.parametrize("extra,match", [
    (["--array", "binary", "--dataflow", "ws"], "--dataflow applies to the integer GEMM core"),
    (["--array", "binary", "--unsigned"], "--unsigned applies"),
    (["--word-bits", "8"], "--word-bits applies to --array binary"),
])
def test_cli_rejects_options_of_the_other_array(tmp_path, capsys, extra, match):
    from codesign.cli import main

    assert main(["hdl", "--arch", str(_write_arch(tmp_path)), *extra, "--out", str(tmp_path / "o")]) == 2
    assert match in capsys.readouterr().err


def test_cli_names_a_missing_binary_array(tmp_path, capsys):
    from codesign.cli import main

    assert main(["hdl", "--arch", str(_write_arch(tmp_path, binary=False)), "--array", "binary",
                 "--out", str(tmp_path / "o")]) == 2
    assert "has no binary_array" in capsys.readouterr().err
