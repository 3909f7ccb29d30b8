"""The peer-benchmark harness writes inputs the peers read as the same layers we simulate.

No peer venv needed: these check our side of the comparison (SCALE-Sim topology rows, its cycle closed
form against the difference terms, ZigZag layer dicts) without running SCALE-Sim or ZigZag.
"""

from __future__ import annotations

import configparser
import math
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import peer_scalesim as ps  # noqa: E402
import peer_zigzag as pz  # noqa: E402
from codesign.workload import ConvDims, GemmDims  # noqa: E402
from codesign.contract.gemm_timing import gemm_compute_cycles  # noqa: E402


def conv(k=8, c=4, h=16, w=16, r=3, s=3, stride=1, pad=1, groups=1) -> ConvDims:
    p = (h + 2 * pad - r) // stride + 1
    q = (w + 2 * pad - s) // stride + 1
    return ConvDims(n=1, k=k, c=c, p=p, q=q, r=r, s=s, h=h, w=w, groups=groups, stride=(stride, stride),
                    padding=(pad, pad))


conv_dims = st.builds(
    lambda r, stride, pad, extra, k, c: conv(k=k, c=c, h=r + extra, w=r + extra + 1, r=r, s=r, stride=stride,
                                              pad=min(pad, r - 1)),
    r=st.integers(1, 7), stride=st.integers(1, 4), pad=st.integers(0, 3), extra=st.integers(0, 40),
    k=st.integers(1, 70), c=st.integers(1, 70))


@given(conv_dims)
def test_prepadded_row_gives_scalesim_our_output_size(dims):
    (row,) = ps.conv_rows("layer", dims)
    assert row.ofmap_hw() == (dims.p, dims.q)
    assert row.ifmap_h <= dims.h + 2 * dims.padding[0]  # only padded rows the output reads


@given(conv_dims)
def test_conv_row_lowers_to_our_gemm(dims):
    (row,) = ps.conv_rows("layer", dims)
    assert row.gemms() == [dims.gemm()]


def test_depthwise_conv_is_one_DP_row_split_per_channel():
    dims = conv(k=32, c=32, groups=32)
    (row,) = ps.conv_rows("dw", dims)
    assert row.depthwise and row.simulated_layers() == 32
    assert row.channels == 32 and row.filters == 1
    (gemm,) = row.gemms()
    assert gemm == dims.gemm()  # 32 GEMMs of (P*Q) x 9 x 1
    assert gemm.macs == dims.macs


def test_grouped_conv_is_one_row_per_group():
    dims = conv(k=12, c=8, groups=4)
    rows = ps.conv_rows("g", dims)
    assert len(rows) == 4 and all(not row.depthwise for row in rows)
    assert sum(g.macs for row in rows for g in row.gemms()) == dims.macs


def test_layer_names_never_trigger_scalesim_depthwise_by_accident():
    (row,) = ps.conv_rows("blocks.DPconv, 3", conv())
    assert not row.depthwise and "," not in row.name and " " not in row.name


@pytest.mark.parametrize("bad", [
    ConvDims(n=2, k=4, c=4, p=8, q=8, r=1, s=1, h=8, w=8),
    ConvDims(n=1, k=4, c=4, p=6, q=6, r=3, s=3, h=10, w=10, dilation=(2, 2)),
    ConvDims(n=1, k=4, c=4, p=4, q=8, r=1, s=1, h=8, w=8, stride=(2, 1)),
])
def test_layers_scalesim_cannot_express_are_refused(bad):
    with pytest.raises(ValueError):
        ps.conv_rows("bad", bad)


@given(st.integers(1, 300), st.integers(1, 300), st.integers(1, 300), st.integers(1, 3))
def test_gemm_rows_read_back_as_the_same_gemm(m, k, n, batch):
    rows = ps.gemm_rows("fc", GemmDims(batch, m, k, n))
    assert len(rows) == batch
    assert all(row.gemms() == [GemmDims(1, m, k, n)] for row in rows)


def test_topology_csv_has_header_and_trailing_comma_per_row():
    rows = ps.conv_rows("a", conv()) + ps.gemm_rows("b", GemmDims(1, 3, 4, 5))
    lines = ps.topology_csv(rows).splitlines()
    assert len(lines) == 3
    # SCALE-Sim drops the last cell of every line (row.split(',')[:-1]): 8 fields must survive.
    assert all(len(line.split(",")[:-1]) == 8 for line in lines)


def test_config_has_every_key_scalesim_reads():
    parser = configparser.ConfigParser()
    parser.read_string(ps.config_ini("run", 16, 8, "os"))
    arch = parser["architecture_presets"]
    assert (int(arch["ArrayHeight"]), int(arch["ArrayWidth"]), arch["Dataflow"]) == (16, 8, "os")
    for key in ("IfmapSramSzkB", "FilterSramSzkB", "OfmapSramSzkB", "IfmapOffset", "FilterOffset",
                "OfmapOffset", "ReadRequestBuffer", "WriteRequestBuffer"):
        assert key in arch
    assert parser["run_presets"]["InterfaceBandwidth"] == "CALC"
    assert parser["layout"]["IfmapCustomLayout"] == "False"
    assert parser["sparsity"]["SparsitySupport"] == "false"
    assert parser["general"]["run_name"] == "run"


def test_config_refuses_a_dataflow_outside_the_comparison():
    with pytest.raises(ValueError, match="rs"):
        ps.config_ini("run", 8, 8, "rs")


# Reported by scalesim==3.0.0 (InterfaceBandwidth CALC, no stalls), measured with bench/peer_scalesim.py.
MEASURED_SCALESIM = [
    ("ws", 8, GemmDims(1, 64, 64, 64), 5503),
    ("os", 8, GemmDims(1, 64, 64, 64), 4991),
    ("ws", 32, GemmDims(1, 100, 75, 50), 1163),
    ("os", 16, GemmDims(1, 49, 33, 17), 503),
    ("ws", 32, GemmDims(32, 784, 9, 1), 28064),  # depthwise 3x3, 32 channels at 28x28
    ("os", 32, GemmDims(32, 784, 9, 1), 56768),
]


@pytest.mark.parametrize("dataflow, array, gemm, measured", MEASURED_SCALESIM)
def test_scalesim_closed_form_reproduces_its_measured_cycles(dataflow, array, gemm, measured):
    assert ps.scalesim_model_cycles(dataflow, gemm, array, array) == measured


gemms = st.builds(GemmDims, batch=st.integers(1, 4), m=st.integers(1, 400), k=st.integers(1, 400),
                  n=st.integers(1, 400))


@settings(max_examples=200)
@given(st.sampled_from(["ws", "os"]), st.sampled_from([4, 8, 16, 32]), st.sampled_from([4, 8, 16, 32]), gemms)
def test_difference_terms_account_for_every_cycle(dataflow, rows, cols, gemm):
    ours = gemm_compute_cycles(dataflow, gemm.m, gemm.k, gemm.n, rows, cols, batch=gemm.batch)
    theirs = ps.scalesim_model_cycles(dataflow, gemm, rows, cols)
    assert ours - theirs == ps.difference_terms(dataflow, gemm, rows, cols).total


def test_ws_fold_padding_is_zero_when_k_fills_the_rows():
    assert ps.difference_terms("ws", GemmDims(1, 50, 64, 40), 16, 16).fold_padding == 0
    assert ps.difference_terms("ws", GemmDims(1, 50, 65, 40), 16, 16).fold_padding == -15 * 3


def test_os_differs_from_scalesim_only_by_the_last_tiles_drain_and_its_off_by_one():
    # M = 100 on 32 rows: row folds of 32, 32, 32 and 4; the last tile drains its 4 rows after the
    # last issue, every earlier drain hides behind the next tile, and our interval is its fold.
    terms = ps.difference_terms("os", GemmDims(1, 100, 9, 40), 32, 32)
    assert (terms.output_drain, terms.tile_constant, terms.tile_gaps, terms.off_by_one) == (4, 0, 0, 1)


def test_compute_report_parser_reads_total_and_stall_columns():
    text = ("LayerID, Total Cycles (incl. prefetch), Total Cycles, Stall Cycles, Overall Util %, "
            "Mapping Efficiency %, Compute Util %,\n0, 700, 631, 0, 40.5, 100.0, 90.1,\n1, 9, 5, 2, 1, 1, 1,\n")
    assert ps.parse_compute_report(text) == ([631, 5], [0, 2])


@given(conv_dims, st.integers(1, 4))
def test_zigzag_layer_has_our_macs_and_a_consistent_input_window(dims, groups):
    dims = conv(k=groups * dims.k, c=groups * dims.c, h=dims.h, w=dims.w, r=dims.r, s=dims.s,
                stride=dims.stride[0], pad=dims.padding[0], groups=groups)
    layer = pz.zigzag_layer(3, "x", dims)
    sizes = dict(zip(layer["loop_dims"], layer["loop_sizes"]))
    assert math.prod(sizes.values()) == dims.macs
    in_x, in_y = layer["pr_loop_sizes"]
    (pad_x, _), (pad_y, _) = layer["padding"]
    stride = dims.stride[0]
    assert (sizes["OX"] - 1) * stride + sizes["FX"] <= in_x + 2 * pad_x
    assert (sizes["OY"] - 1) * stride + sizes["FY"] <= in_y + 2 * pad_y
    assert layer["operand_source"] == {"W": 3, "I": 3}


def test_zigzag_gemm_layer_has_our_macs():
    layer = pz.zigzag_layer(0, "fc", GemmDims(2, 5, 7, 11))
    assert math.prod(layer["loop_sizes"]) == 2 * 5 * 7 * 11


def test_zigzag_mapping_unrolls_the_named_dims_on_the_array():
    (entry,) = pz.mapping_spec("ws", rows=16, cols=8)
    assert entry["spatial_mapping"] == {"D1": ["K, 8"], "D2": ["C, 16"]}
    with pytest.raises(ps.PeerError, match="rs"):
        pz.mapping_spec("rs")


def test_closed_form_run_splits_back_onto_cases_like_a_real_run():
    cases = ps.shape_cases()
    run = ps.closed_form_run(cases, 16, "ws")
    assert len(run.cycles) == sum(row.simulated_layers() for case in cases for row in case.rows)
    for row in ps.compare(cases, 16, "ws", run):
        assert row.scalesim == row.scalesim_model
        assert row.adjusted == row.ours


def test_child_peak_rss_is_read_from_what_the_child_prints():
    code = ps.PEAK_RSS_SNIPPET + "\n_print_peak_rss()\n"
    wall, peak_mb, out, _, status = ps.run_child([sys.executable, "-c", code])
    assert status == 0 and wall > 0
    assert 1 < peak_mb < 1024  # a bare interpreter, whatever its parent holds


@pytest.mark.parametrize("argv", [
    ["--closed-form", "--networks", "no-such-model"],
    ["--closed-form", "--networks", "resnet18", "--arrays", "eight"],
])
def test_bad_benchmark_arguments_are_one_line_and_exit_2(argv, capsys):
    assert ps.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("peer_scalesim: error: ") and "\n" not in err
