"""predict_gemm_tiles: how a GEMM is cut into tiles on the core, and their back-to-back cycles."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.contract import tile_timing
from codesign.contract.gemm_timing import gemm_compute_cycles, predict_gemm_tiles, tile_classes

dims = st.integers(1, 40)
arrays = st.integers(1, 9)
flows = st.sampled_from(["ws", "os"])


@settings(max_examples=150, deadline=None)
@given(flow=flows, m=dims, k=dims, n=dims, rows=arrays, cols=arrays)
def test_tiles_cover_the_gemm_exactly_once(flow, m, k, n, rows, cols):
    tiles, _ = predict_gemm_tiles(flow, m, k, n, rows, cols)
    assert sum(tm * tk * tn for tm, tk, tn in tiles) == m * k * n


@settings(max_examples=150, deadline=None)
@given(flow=flows, m=dims, k=dims, n=dims, rows=arrays, cols=arrays, stream=st.none() | st.integers(1, 12))
def test_tiles_respect_the_array_bounds(flow, m, k, n, rows, cols, stream):
    tiles, _ = predict_gemm_tiles(flow, m, k, n, rows, cols, stream_tile=stream)
    for tm, tk, tn in tiles:
        assert tn <= cols
        if flow == "ws":
            assert tk <= rows and (stream is None or tm <= stream)
        else:
            assert tm <= rows and (stream is None or tk <= stream)


@settings(max_examples=150, deadline=None)
@given(flow=flows, m=dims, k=dims, n=dims, rows=arrays, cols=arrays, stream=st.none() | st.integers(1, 12))
def test_cycles_are_the_contract_summed_back_to_back(flow, m, k, n, rows, cols, stream):
    tiles, cycles = predict_gemm_tiles(flow, m, k, n, rows, cols, stream_tile=stream)
    # docs/core-protocol.md, written out: WS tiles run one after another with a 1-edge gap; OS tiles
    # issue every k + rows + cols - 2 edges and only the last tile's m-row drain adds to the end.
    if flow == "ws":
        expected = sum(tk + tm + rows + cols + 1 for tm, tk, _ in tiles) - 1
    else:
        expected = sum(tk + rows + cols - 2 for _, tk, _ in tiles) + tiles[-1][0]
    assert cycles == expected


@settings(max_examples=150, deadline=None)
@given(flow=flows, m=dims, k=dims, n=dims, rows=arrays, cols=arrays, stream=st.none() | st.integers(1, 12),
       batch=st.integers(1, 4))
def test_fast_cycles_equal_the_listed_tiles(flow, m, k, n, rows, cols, stream, batch):
    tiles, _ = predict_gemm_tiles(flow, m, k, n, rows, cols, stream_tile=stream)
    listed = tile_timing.sequence_cycles(flow, tiles * batch, rows, cols)
    assert gemm_compute_cycles(flow, m, k, n, rows, cols, stream_tile=stream, batch=batch) == listed
    assert tile_classes(flow, m, k, n, rows, cols, stream_tile=stream, batch=batch).tiles == len(tiles) * batch


def test_reduction_is_innermost_so_partial_sums_accumulate_on_consecutive_tiles():
    tiles, _ = predict_gemm_tiles("ws", 5, 10, 6, 4, 4)
    # n folds of 4 then 2; k folds of 4, 4, 2 innermost
    assert tiles == [(5, 4, 4), (5, 4, 4), (5, 2, 4), (5, 4, 2), (5, 4, 2), (5, 2, 2)]


def test_a_gemm_that_fits_is_one_tile():
    tiles, cycles = predict_gemm_tiles("os", 3, 17, 2, 4, 4)
    assert tiles == [(3, 17, 2)]
    assert cycles == tile_timing.tile_cycles("os", 3, 17, 2, 4, 4)


@pytest.mark.parametrize("args", [("rs", 2, 2, 2, 2, 2), ("ws", 0, 2, 2, 2, 2), ("os", 2, 2, 2, 0, 2),
                                  ("ws", 2, 2, -1, 2, 2)])
def test_bad_arguments_are_rejected(args):
    with pytest.raises(ValueError):
        predict_gemm_tiles(*args)


@settings(max_examples=100, deadline=None)
@given(flow=flows, rows=arrays, cols=arrays, data=st.data())
def test_a_sequence_is_the_issue_intervals_then_the_last_tiles_own_cycles(flow, rows, cols, data):
    m_max, k_max = (40, rows) if flow == "ws" else (rows, 40)
    tiles = data.draw(st.lists(st.tuples(st.integers(1, m_max), st.integers(1, k_max), st.integers(1, cols)),
                               min_size=1, max_size=5))
    total = tile_timing.sequence_cycles(flow, tiles, rows, cols)
    intervals = [tile_timing.issue_interval(flow, *t, rows, cols) for t in tiles]
    assert total == sum(intervals[:-1]) + tile_timing.tile_cycles(flow, *tiles[-1], rows, cols)
    # Adding a tile in front costs exactly that tile's interval.
    assert tile_timing.sequence_cycles(flow, [tiles[0]] + tiles, rows, cols) == total + intervals[0]


@settings(max_examples=100, deadline=None)
@given(rows=arrays, cols=arrays, m=st.integers(1, 9), k=st.integers(1, 60), n=st.integers(1, 9))
def test_os_issues_the_next_tile_when_the_array_is_free_and_ws_after_the_last_result(rows, cols, m, k, n):
    m, n = min(m, rows), min(n, cols)
    # OS: the first beat rides with the command, k - 1 more beats, rows + cols - 1 edges to the last MAC,
    # on whose edge the tile is copied out and the next command accepted.
    assert tile_timing.issue_interval("os", m, k, n, rows, cols) == (k - 1) + (rows + cols - 1)
    # The drain of m <= rows rows is over before the next tile's copy: the overlap hides all of it.
    assert tile_timing.tile_cycles("os", m, k, n, rows, cols) - tile_timing.issue_interval("os", m, k, n, rows, cols) == m
    kw = min(k, rows)
    assert tile_timing.issue_interval("ws", m, kw, n, rows, cols) == tile_timing.tile_cycles("ws", m, kw, n, rows, cols) + 1


def test_an_empty_sequence_takes_no_cycles_and_bad_dataflows_are_rejected():
    assert tile_timing.sequence_cycles("os", [], 4, 4) == 0
    with pytest.raises(ValueError, match="rs"):
        tile_timing.issue_interval("rs", 1, 1, 1, 2, 2)
    with pytest.raises(ValueError, match="m=5"):
        tile_timing.issue_interval("os", 5, 1, 1, 4, 4)
