"""The pure parts of navigation (issue #21): F0 statistics of a time range, thumbnail block
means, audio spans of key columns, and what figures declare to the page's navigation script
(time axes, seek and pick targets). The browser side is tests/test_browser_navigable.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from echo_core import pitch
from workbench import analysis as A
from workbench import attention_nav as N
from workbench import figures as F
from workbench import figures_model as FM
from workbench import figures_attention as FA
from workbench.map_image import colour_table, colourise, decode_image


def _track() -> pitch.F0Track:
    """A hand-made track: Praat-like times (first frame not at 0), a gap, a ramp."""
    times = 0.012 + 0.008 * np.arange(200)
    hz = np.linspace(100.0, 300.0, 200)
    hz[60:90] = np.nan  # unvoiced
    return pitch.F0Track(times, hz)


def _stat(table: pd.DataFrame, name: str) -> float:
    return float(table.set_index("statistic").loc[name, "value"])


@pytest.mark.parametrize("start,end", [(0.3, 0.9), (0.0, 0.5), (0.7, 0.8), (1.2, 5.0)])
def test_range_statistics_match_numpy_on_the_frames_in_range(start, end):
    track = _track()
    start, end = A.check_time_range(start, end, duration=1.7)
    table = A.f0_statistics_table(track, (start, end))
    inside = (track.times >= start) & (track.times <= end)
    voiced = track.hz[inside & np.isfinite(track.hz)]
    assert _stat(table, "n frames") == inside.sum()
    assert _stat(table, "n voiced") == voiced.size
    assert _stat(table, "mean") == pytest.approx(voiced.mean(), abs=0.05)
    assert _stat(table, "median") == pytest.approx(np.median(voiced), abs=0.05)
    assert _stat(table, "min") == pytest.approx(voiced.min(), abs=0.05)
    assert _stat(table, "max") == pytest.approx(voiced.max(), abs=0.05)
    assert _stat(table, "std") == pytest.approx(voiced.std(), abs=0.05)
    assert _stat(table, "voiced fraction") == pytest.approx(voiced.size / inside.sum(),
                                                            abs=5e-4)


def test_whole_clip_table_is_unchanged_without_a_range():
    track = _track()
    assert A.f0_statistics_table(track).equals(A.f0_statistics_table(track, None))
    assert not A.f0_statistics_table(track).equals(A.f0_statistics_table(track, (0.3, 0.9)))


def test_a_range_in_the_gap_has_no_voiced_frame():
    track = _track()
    table = A.f0_statistics_table(track, (0.012 + 0.008 * 62, 0.012 + 0.008 * 85))
    assert _stat(table, "n voiced") == 0
    assert table.set_index("statistic").loc["mean", "value"] == "—"


@pytest.mark.parametrize("start,end", [(0.5, 0.5), (0.9, 0.3), (2.0, 3.0), (-2.0, -1.0),
                                       (float("nan"), 1.0), ("a", 1.0), (None, 1.0)])
def test_bad_ranges_are_refused_with_what_is_accepted(start, end):
    with pytest.raises(A.TimeRangeError):
        A.check_time_range(start, end, duration=1.7)


def test_range_ends_are_clipped_to_the_clip():
    assert A.check_time_range(-0.5, 9.0, duration=1.7) == (0.0, 1.7)


def _brute_block_means(m, size):
    rows, cols = m.shape
    out_r, out_c = min(rows, size), min(cols, size)
    out = np.full((out_r, out_c), np.nan)
    for i in range(out_r):
        r0, r1 = i * rows // out_r, (i + 1) * rows // out_r
        for j in range(out_c):
            c0, c1 = j * cols // out_c, (j + 1) * cols // out_c
            block = m[r0:r1, c0:c1]
            if np.isfinite(block).any():
                out[i, j] = np.nanmean(block)
    return out


def test_block_means_of_a_divisible_map_are_reshape_means():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(96, 144))
    expected = m.reshape(48, 2, 48, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(N.block_means(m, 48), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(83, 83), (320, 201), (10, 83), (49, 50)])
def test_block_means_match_a_loop_over_blocks(shape):
    rng = np.random.default_rng(1)
    m = rng.normal(size=shape)
    m[np.triu_indices(min(shape), 1)] = np.nan  # a causal mask: NaN above the diagonal
    got = N.block_means(m, 48)
    assert got.shape == (min(shape[0], 48), min(shape[1], 48))
    np.testing.assert_allclose(got, _brute_block_means(m, 48), rtol=1e-5, atol=1e-6)


def test_block_means_keep_an_all_nan_block_nan_and_never_enlarge():
    m = np.full((4, 4), np.nan)
    m[0, 0] = 1.0
    got = N.block_means(m, 2)
    assert got[0, 0] == 1.0 and np.isnan(got[1, 1])
    small = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(N.block_means(small, 48), small)


def test_position_spans_cover_the_axis_without_gaps():
    spans = N.position_spans(83, 28, 0.016)  # pooled in blocks of 3 positions
    assert spans.shape == (28, 2)
    np.testing.assert_allclose(spans[0], [0.0, 2.5 * 0.016])  # positions 0-2, 0 centred at 0
    np.testing.assert_allclose(spans[1:, 0], spans[:-1, 1])  # contiguous
    assert spans[-1, 1] == pytest.approx(82.5 * 0.016)  # the last block is short
    unpooled = N.position_spans(50, 50, 0.016)
    centres = unpooled[1:].mean(axis=1)  # each cell centred on its position's time
    np.testing.assert_allclose(centres, np.arange(1, 50) * 0.016)
    np.testing.assert_allclose(unpooled[1:, 1] - unpooled[1:, 0], 0.016)


def test_thumbnail_mosaic_tiles_each_map_with_transparent_gaps():
    rng = np.random.default_rng(2)
    maps = rng.normal(size=(3, 4, 8, 8)).astype(np.float32)
    mosaic = colour_table(FA.ATTENTION_COLORSCALE)[FA.thumbnail_indices(maps, gap=2)]
    assert mosaic.shape == (3 * 10 - 2, 4 * 10 - 2, 4)
    assert (mosaic[8:10, :, 3] == 0).all() and (mosaic[:, 8:10, 3] == 0).all()  # gaps
    assert (mosaic[:8, :8, 3] == 255).all()
    # each tile on its own range: its brightest cell has the scale's top colour
    top = colourise(np.array([[1.0]]), 0.0, 1.0, "Magma")[0, 0]
    i, j = np.unravel_index(np.argmax(maps[1, 2]), (8, 8))
    np.testing.assert_array_equal(mosaic[10 + i, 20 + j], top)


def test_attention_grid_cells_carry_layer_and_head_for_a_click():
    maps = np.random.default_rng(3).random((3, 4, 6, 6)).astype(np.float32)
    fig = FA.attention_grid(maps, np.array([1, 2, 3]), np.arange(4), "encoder self-attention",
                            pick="nav-head", selected=(2, 3))
    image, cells = fig.data
    assert decode_image(image.source).shape[:2] == FA.thumbnail_indices(maps).shape
    assert cells.meta == {"echo_pick": "nav-head", "kind": "encoder self-attention"}
    assert np.asarray(cells.customdata)[1, 3].tolist() == [2, 3]  # row = layer 2, col = head 3
    assert len(fig.layout.shapes) == 1  # the open head outlined


def test_thumbnails_of_a_result_are_block_means_of_its_maps():
    from types import SimpleNamespace

    rng = np.random.default_rng(4)
    layer = {"scores": rng.normal(size=(2, 100, 100)).astype(np.float32),
             "weights": rng.random((2, 100, 100)).astype(np.float32), "shape": (200, 200)}
    result = SimpleNamespace(attention={"encoder self-attention": [layer, None, layer]})
    layers, heads, maps = N.thumbnails(result, "encoder self-attention", "weights", size=48)
    assert layers.tolist() == [1, 2, 3] and heads.tolist() == [0, 1]
    assert maps.shape == (3, 2, 48, 48) and np.isnan(maps[1]).all()  # layer 2 not kept
    np.testing.assert_allclose(maps[2, 1], _brute_block_means(layer["weights"][1], 48),
                               rtol=1e-5)
    spans = N.key_spans(result, "encoder self-attention", 1, 0.016)
    np.testing.assert_allclose(spans[-1], [197.5 * 0.016, 199.5 * 0.016])  # pooled by 2


def _pitch_inputs():
    times = np.arange(100) * 0.008
    hz_bands = A.mel_band_hz(80)
    mel = np.random.default_rng(5).random((80, 100)).astype(np.float32)
    f0 = np.where(np.arange(100) % 30 < 20, 150.0 + np.arange(100), np.nan)
    return mel, times, hz_bands, times, f0


def test_pitch_figure_declares_time_and_can_draw_f0_on_its_own_hz_axis():
    mel_fig = F.pitch_figure(*_pitch_inputs(), range_to="nav-range")
    assert mel_fig.layout.meta["echo_time"] == {"xaxis": 1.0}
    assert mel_fig.layout.meta["echo_range"] == "nav-range" and mel_fig.layout.dragmode == "select"
    assert all(t.meta["echo_seek"] == "x" for t in mel_fig.data)
    hz_fig = F.pitch_figure(*_pitch_inputs(), f0_axis="hz")
    line = hz_fig.data[1]
    f0 = _pitch_inputs()[4]
    assert line.yaxis == "y2" and hz_fig.layout.yaxis2.overlaying == "y"
    np.testing.assert_array_equal(np.asarray(line.y), f0)  # Hz, not mel; NaN gaps kept
    assert np.isnan(np.asarray(line.y)[25]) and line.connectgaps is False
    assert mel_fig.data[1].yaxis is None  # the default stays on the mel axis
    np.testing.assert_allclose(np.asarray(mel_fig.data[1].y), F.hz_to_mel(f0))
    with pytest.raises(ValueError, match="f0_axis"):
        F.pitch_figure(*_pitch_inputs(), f0_axis="log")


def test_maps_declare_their_time_axes_in_their_own_units():
    pos = np.arange(0, 200, 2)
    sim = np.ones((100, 100), np.float32)
    frames = F.similarity_maps([("a", sim), ("b", sim)], pos, "positions", 0.016)
    assert frames.layout.meta["echo_time"] == {"xaxis": 62.5, "xaxis2": 62.5}
    seconds = F.bias_figure(sim, pos, np.full(100, 120.0), "seconds", 0.008)
    assert seconds.layout.meta["echo_time"] == {"xaxis": 1.0, "xaxis2": 1.0}


def test_cross_attention_cells_carry_their_audio_span():
    arr = np.random.default_rng(6).random((5, 40)).astype(np.float32)
    spans = N.position_spans(40, 40, 0.016)
    labels = np.array([f"{i}:t" for i in range(5)])
    fig = FM.attention_maps([("m", arr, np.arange(40.0), labels)], x_per_second=62.5,
                           spans=[spans])
    heat = fig.data[-1]
    assert heat.meta["echo_seek"] == "span"
    assert np.asarray(heat.customdata).shape == (5, 40, 2)
    np.testing.assert_allclose(np.asarray(heat.customdata)[3, 7], spans[7], rtol=1e-6)
    assert "audio %{customdata[0]" in heat.hovertemplate
    assert fig.layout.meta["echo_time"] == {"xaxis": 62.5}
    plain = FM.attention_maps([("m", arr)])
    assert plain.data[-1].meta is None and plain.layout.meta is None


def test_head_score_cells_can_open_their_head():
    df = pd.DataFrame({"kind": ["encoder self-attention"] * 4, "layer": [1, 1, 2, 2],
                       "head": [0, 1, 0, 1], "entropy_nats": [1.0, 2.0, 3.0, 4.0]})
    fig = FM.head_score_heatmaps(df, "entropy_nats", pick="nav-head")
    assert fig.data[0].meta["echo_pick"] == "nav-head"
    assert np.asarray(fig.data[0].customdata)[1, 0].tolist() == [2, 0]
    assert FM.head_score_heatmaps(df, "entropy_nats").data[0].meta is None


def test_a_picked_head_from_the_page_is_checked():
    from echo_core.errors import CaptureError
    from workbench.ui.model_nav import parse_pick

    assert parse_pick('{"kind": "decoder self-attention", "layer": 1, "head": 3, "n": 7}') == (
        "decoder self-attention", 1, 3)
    for bad in ("not json", '{"kind": "encoder self-attention"}',
                '{"kind": "mlp", "layer": 1, "head": 0}'):
        with pytest.raises(CaptureError):
            parse_pick(bad)
