"""Figure builders: arrays in, plotly figures out; checked on fig.data and the layout."""

import numpy as np
import pytest

from _maps import colour_bars
from workbench import figures as F
from workbench import figures_model as FM


def _heatmaps(fig):
    return [t for t in fig.data if t.type == "heatmap"]


def test_hz_to_mel_matches_librosa_htk():
    import librosa

    hz = np.array([0.0, 50.0, 150.0, 700.0, 1000.0, 4000.0, 8000.0])
    np.testing.assert_allclose(F.hz_to_mel(hz), librosa.hz_to_mel(hz, htk=True), rtol=1e-9)
    assert np.isnan(F.hz_to_mel(np.nan))


def test_pitch_figure_keeps_unvoiced_gaps_and_time_axis():
    mel = np.random.default_rng(0).random((8, 50)).astype(np.float32)
    times = np.arange(50) * 0.008
    hz = np.full(50, 150.0)
    hz[10:20] = np.nan  # unvoiced run
    fig = F.pitch_figure(mel, times, np.linspace(100, 4000, 8), times, hz)
    heat, line = fig.data
    assert heat.type == "heatmap" and line.type == "scatter"
    assert line.connectgaps is False
    y = np.asarray(line.y, dtype=float)
    assert np.isnan(y[10:20]).all() and np.isfinite(y[:10]).all() and np.isfinite(y[20:]).all()
    # the line is drawn on the mel axis, its hover data stay in Hz
    import librosa

    assert y[0] == pytest.approx(librosa.hz_to_mel(150.0, htk=True))
    assert np.asarray(line.customdata, dtype=float)[0] == 150.0
    assert fig.layout.xaxis.title.text == "time (s)"
    assert "Hz" in fig.layout.yaxis.title.text
    np.testing.assert_allclose(np.asarray(heat.x), times)


def test_pitch_figure_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        F.pitch_figure(np.zeros((8, 10)), np.arange(9), np.arange(8), np.arange(3), np.zeros(3))


@pytest.mark.parametrize("unit, title, scale", [("positions", "position (frame)", 1.0),
                                                ("seconds", "time (s)", 0.008)])
def test_similarity_maps_fixed_colour_range_and_units(unit, title, scale):
    positions = np.array([0, 10, 20, 30])
    sim = np.eye(4, dtype=np.float32)
    fig = F.similarity_maps([("a", sim), ("b", sim)], positions, unit=unit, hop_seconds=0.008)
    heats = _heatmaps(fig)
    assert len(heats) == 2
    for h in heats:
        assert (h.zmin, h.zmax) == (-1.0, 1.0)
        np.testing.assert_allclose(np.asarray(h.x, dtype=float), positions * scale)
    assert fig.layout.xaxis.title.text == title and fig.layout.yaxis.title.text == title
    assert [h.showscale for h in heats] == [False, True]  # one shared colour bar
    lag = np.abs(np.subtract.outer(positions, positions)) * scale  # the hover's lag column
    np.testing.assert_allclose(np.asarray(heats[0].customdata, dtype=float), lag, rtol=1e-6)


def test_sweep_grid_is_one_mosaic_on_the_same_scale():
    maps = np.zeros((2, 3, 5, 5), dtype=np.float32)
    maps[1, 2] = np.eye(5)
    fig = F.sweep_grid(maps, ["θ=1e2", "θ=1e4"], ["none", "100 Hz", "300 Hz"])
    images = [t for t in fig.data if t.type == "image"]
    assert len(images) == 1  # one subplot for the browser, not 6
    bars = [t for t in fig.data if t.type == "scatter" and t.marker.showscale]
    assert len(bars) == 1 and (bars[0].marker.cmin, bars[0].marker.cmax) == (-1.0, 1.0)
    from workbench.map_image import colourise, decode_image

    pixels = decode_image(images[0].source)
    gap = 2  # max(2, 5 // 6)
    assert pixels.shape[:2] == (2 * 5 + gap, 3 * 5 + 2 * gap)
    tile = pixels[5 + gap:, 2 * (5 + gap):]  # row 1, column 2
    np.testing.assert_array_equal(tile, colourise(maps[1, 2], -1.0, 1.0, F.SIMILARITY_COLORSCALE))
    assert (pixels[5:5 + gap, :, 3] == 0).all()  # the gaps are transparent
    texts = [a.text for a in fig.layout.annotations]
    assert texts == ["none", "100 Hz", "300 Hz", "θ=1e2", "θ=1e4"]
    with pytest.raises(ValueError):
        F.sweep_grid(maps, ["only one row"], ["a", "b", "c"])


def test_similarity_curves_one_trace_per_setting_in_seconds():
    lags = np.arange(100)
    fig = F.similarity_curves([("a", lags, np.cos(lags / 10)), ("b", lags, np.ones(100))],
                              unit="seconds", hop_seconds=0.008)
    lines = [t for t in fig.data if t.type == "scatter"]
    assert [t.name for t in lines] == ["a", "b"]
    assert np.asarray(lines[0].x, dtype=float)[-1] == pytest.approx(99 * 0.008)
    assert tuple(fig.layout.yaxis.range) == (-1.0, 1.0)
    assert "distance" in fig.layout.xaxis.title.text


def test_bias_figure_draws_tracks_with_gaps_beside_the_map():
    positions = np.arange(6)
    f0 = np.array([100.0, 110.0, np.nan, np.nan, 140.0, 150.0])
    bias = np.ones((6, 6), dtype=np.float32)
    fig = F.bias_figure(bias, positions, f0)
    heats = _heatmaps(fig)
    tracks = [t for t in fig.data if t.type == "scatter"]
    assert len(heats) == 1 and len(tracks) == 2
    assert (heats[0].zmin, heats[0].zmax) == (0.0, 1.0)
    assert np.isnan(np.asarray(tracks[0].y, dtype=float)[2:4]).all()  # top track, F0 on y
    assert np.isnan(np.asarray(tracks[1].x, dtype=float)[2:4]).all()  # side track, F0 on x
    assert all(t.connectgaps is False for t in tracks)


def test_gate_ratio_bars_colour_by_the_init_band():
    fig = FM.gate_ratio_bars(["a.", "b.", "c."], np.array([0.5, 2.6, 5.0]), ["🟢", "🟡", "🟡"],
                            expected=2.2, band=(np.array([1.0, 1.0, 1.0]), np.array([3.0] * 3)))
    band, bars = fig.data
    np.testing.assert_allclose(band.base, [1.0, 1.0, 1.0])
    np.testing.assert_allclose(np.asarray(band.y, dtype=float), [2.0, 2.0, 2.0])
    assert list(bars.marker.color) == [FM.BAND_COLORS["below"], FM.BAND_COLORS["within"],
                                       FM.BAND_COLORS["above"]]
    assert FM.band_relation([0.5, 2.6, 5.0], [1, 1, 1], [3, 3, 3]) == ["below", "within", "above"]


def test_gate_ratio_bars_colour_by_status_and_show_init_baseline():
    fig = FM.gate_ratio_bars(["a.", "b."], np.array([1.5, 2.6]), ["🟢", "🟡"], expected=2.2)
    bar = fig.data[0]
    assert list(bar.marker.color) == [F.STATUS_COLORS["🟢"], F.STATUS_COLORS["🟡"]]
    assert any(abs(s.y0 - 2.2) < 1e-12 for s in fig.layout.shapes)  # the dashed expectation line


def test_grouped_ratio_bars_one_series_per_checkpoint():
    fig = FM.grouped_ratio_bars({"A": (["x.", "y."], np.array([1.0, 2.0])),
                                "B": (["x.", "y."], np.array([1.5, 2.5]))}, expected=2.0)
    assert [t.name for t in fig.data] == ["A", "B"] and fig.layout.barmode == "group"


def test_attention_maps_share_a_colour_range_and_keep_blocked_cells_blank():
    a = np.array([[1.0, np.nan], [0.0, 2.0]])
    b = np.array([[-1.0, np.nan], [0.5, 0.5]])
    fig = FM.attention_maps([("A", a, np.array(["0:x", "1:y"]), None), ("B", b)])
    heats = _heatmaps(fig)
    assert len(heats) == 2
    assert all((h.zmin, h.zmax) == (-1.0, 2.0) for h in heats)  # min/max over both, NaN ignored
    assert list(heats[0].x) == ["0:x", "1:y"]
    assert np.isnan(np.asarray(heats[0].z, dtype=float)[0, 1])


def test_empty_figure_carries_its_message():
    fig = F.empty_figure("nothing yet")
    assert fig.layout.annotations[0].text == "nothing yet" and not fig.data


def test_builders_send_numpy_arrays_not_lists():
    fig = F.similarity_maps([("a", np.eye(3))], np.arange(3))
    assert isinstance(fig.data[0].z, np.ndarray) and fig.data[0].z.dtype == np.float32


def test_head_score_panels_that_are_na_say_why_instead_of_empty_axes():
    import pandas as pd

    df = pd.DataFrame({"kind": ["encoder self-attention", "decoder self-attention"],
                       "layer": [1, 0], "head": [0, 0], "pitch_spearman": [0.3, np.nan]})
    fig = FM.head_score_heatmaps(df, "pitch_spearman")
    assert fig.data[0].visible is not False and fig.data[1].visible is False
    assert fig.layout.xaxis2.visible is False
    texts = [a.text for a in fig.layout.annotations]
    assert "n/a: text tokens carry no F0" in texts and "decoder self-attention (n/a)" in texts


def test_large_maps_carry_their_hover_values_in_the_image_meta():
    """A map a slider redraws travels as an image plus a value grid for the page's hover script
    (no invisible heatmap, issue #20): the grid is the map sampled at evenly spread rows and
    columns (checked against an independent sampling), in the axis units, float32."""
    from workbench.map_image import colourise, decode_image

    n = 300
    positions = np.arange(n) * 2
    rng = np.random.default_rng(3)
    a = rng.uniform(-1, 1, (n, n)).astype(np.float32)
    fig = F.similarity_maps([("a", a), ("b", a.T.copy())], positions, unit="seconds",
                            hop_seconds=0.008)
    assert not [t for t in fig.data if t.type == "heatmap"]
    images = [t for t in fig.data if t.type == "image"]
    assert len(images) == 2
    take = np.unique(np.round(np.linspace(0, n - 1, F.OVERLAY_CELLS)).astype(int))
    for image, truth in zip(images, (a, a.T)):
        h = image.meta["echo_hover"]
        np.testing.assert_array_equal(np.asarray(h["z"]), truth[np.ix_(take, take)])
        np.testing.assert_allclose(np.asarray(h["x"]), positions[take] * 0.008, rtol=1e-6)
        np.testing.assert_allclose(np.asarray(h["y"]), positions[take] * 0.008, rtol=1e-6)
        assert (h["zmin"], h["zmax"]) == (-1.0, 1.0) and h["labels"]["lag"]
        np.testing.assert_array_equal(decode_image(image.source),
                                      colourise(truth, -1.0, 1.0, F.SIMILARITY_COLORSCALE))
    bars = [t for t in fig.data if t.type == "scatter" and t.marker.showscale]
    assert len(bars) == 1 and (bars[0].marker.cmin, bars[0].marker.cmax) == (-1.0, 1.0)
    assert '"echo_hover":{"name":"a","x":{"dtype":"f4"' in fig.to_json().replace(" ", "")


def test_figures_let_tick_labels_overflow_so_redraws_skip_plotly_label_measuring():
    """Every axis and colour bar of a figure built here has ticklabeloverflow "allow" (plotly.js
    otherwise measures each tick label against the others on every redraw: issue #20), and the
    template is still plotly_white's."""
    import plotly.io as pio

    sim = np.cos(np.subtract.outer(np.arange(200), np.arange(200)) / 30.0)
    fig = F.similarity_maps([("static", sim), ("pitch", sim)], np.arange(200))
    full = fig.to_plotly_json()["layout"]["template"]
    assert full["layout"]["xaxis"]["ticklabeloverflow"] == "allow"
    assert full["layout"]["yaxis"]["ticklabeloverflow"] == "allow"
    assert full["data"]["heatmap"][0]["colorbar"]["ticklabeloverflow"] == "allow"
    assert full["data"]["scatter"][0]["marker"]["colorbar"]["ticklabeloverflow"] == "allow"
    white = pio.templates["plotly_white"].to_plotly_json()["layout"]
    assert full["layout"]["plot_bgcolor"] == white["plot_bgcolor"]


@pytest.mark.parametrize("x, expected", [(0.213, 0.25), (0.4529, 0.5), (0.4329, 0.5), (1.0, 1.0),
                                         (0.95, 1.0), (3.2e-4, 4e-4), (7.9, 8.0), (8.01, 10.0),
                                         (12.0, 12.0), (0.0601, 0.08)])
def test_nice_ceiling(x, expected):
    assert F.nice_ceiling(x) == pytest.approx(expected, rel=1e-12)


def test_nice_ceiling_is_the_least_nice_number_above():
    """Against a brute-force list of every nice number over ten decades."""
    nice = np.sort([m * 10.0 ** k for k in range(-6, 4) for m in F.NICE_MANTISSAS])
    for x in np.random.default_rng(0).uniform(-5.5, 2.5, 500):
        x = 10.0 ** x
        got = F.nice_ceiling(x)
        assert got == pytest.approx(nice[np.searchsorted(nice, x * (1 - 1e-12))], rel=1e-12)
        assert x <= got * (1 + 1e-12) and got <= x * 4 / 3 * (1 + 1e-12)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            F.nice_ceiling(bad)


def test_fitted_similarity_colour_bars_are_rounded_out():
    """The fitted range [lo, 1] has lo the negated nice ceiling of the data's minimum (never
    below -1), the difference panel +-(nice ceiling of its largest magnitude): the data always
    fits inside its bar, and two nearby steps of theta share their bars."""
    rng = np.random.default_rng(1)
    a = rng.uniform(-0.21, 1.0, (40, 40))
    d = rng.uniform(-0.43, 0.43, (40, 40))
    fig = F.similarity_maps([("a", a), ("b", a)], np.arange(40), fit=True, difference=("Δ", d))
    bars = sorted((b["min"], b["max"]) for b in colour_bars(fig))
    lo, bound = a.min(), np.abs(d).max()
    assert bars == [(-F.nice_ceiling(bound), F.nice_ceiling(bound)), (-F.nice_ceiling(-lo), 1.0)]
    assert -0.25 <= lo and bound <= 0.5
    full = F.similarity_maps([("a", a - 5.0)], np.arange(40), fit=True)
    assert [(b["min"], b["max"]) for b in colour_bars(full)] == [(-1.0, 1.0)]


def test_the_template_keeps_every_trace_type_the_builders_draw():
    """The figures' template keeps plotly_white's defaults only for TEMPLATE_TRACE_TYPES; every
    trace type named in the figure code (``type="..."`` dicts, ``go.Trace(`` objects) is among
    them, or one plotly_white has no defaults for (image, box)."""
    import re
    from pathlib import Path

    import plotly.io as pio

    styled = set(pio.templates["plotly_white"].to_plotly_json()["data"])
    kept = set(F._template()["data"])
    assert kept == set(F.TEMPLATE_TRACE_TYPES) <= styled
    source = "\n".join(p.read_text() for p in Path(F.__file__).parent.rglob("*.py"))
    named = set(re.findall(r'\btype="([a-z0-9]+)"', source))
    named |= {m.lower() for m in re.findall(r"\bgo\.([A-Z][a-z0-9]+)\(", source)} - {"figure"}
    axis_types = {"category", "log", "linear", "date", "data", "line", "rect", "tuple"}
    traces = named - axis_types
    assert {"heatmap", "scatter", "bar", "image"} <= traces
    assert not (traces & styled) - kept, sorted((traces & styled) - kept)
