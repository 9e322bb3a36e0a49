"""Plotly figure builders: arrays in, figures out.

No gradio, no file I/O, no data loading: every builder takes numpy arrays (already reduced to
display resolution by ``workbench.analysis``) and returns a ``go.Figure``, so the pictures can be
tested without a browser (check ``fig.data``, axis titles, colour ranges, NaN gaps). Arrays go
to plotly as numpy (float32 where large) and travel as compact typed arrays, never JSON lists.

The maps redrawn while a slider moves (similarity, curves, bias, attention) are assembled from
plain dicts without plotly's per-property validation, which costs more than the maths (about
20 ms per figure); the tests check those figures like the others. Maps of more than
``IMAGE_MIN_CELLS`` cells are sent as a colour-mapped lossless WebP (``workbench.map_image``): the
browser paints an image in milliseconds where a 512 x 512 heatmap held its main thread for
seconds. Their hover values ride either in a coarse invisible heatmap (maps whose cells are
clicked) or, for the maps a slider redraws, in the image's meta for the page's map_hover.js.
"""

from __future__ import annotations

import functools
import os
from typing import Mapping, Sequence

import numpy as np
import plotly.colors as pc
import plotly.graph_objects as go
import plotly.io as pio

from workbench import nav_meta as nav
from workbench.map_image import colour_indices, hover_grid, map_data_uri, mosaic

TEMPLATE = "plotly_white"
SIMILARITY_COLORSCALE = "RdBu_r"  # diverging: -1 blue, 0 white, +1 red
BIAS_COLORSCALE = "Viridis"
ATTENTION_COLORSCALE = "Magma"
F0_COLOR = "#00e5ff"  # cyan reads well over the dark mel colours
TRACK_COLOR = "#d62728"
STATUS_COLORS = {"🟢": "#2ca02c", "🟡": "#f2b400"}  # hooks' markers: ratio < 2, >= 2
OTHER_COLOR = "#999999"
SERIES_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
HZ_TICKS = (100, 200, 500, 1000, 2000, 4000, 8000)
TOP_LEGEND = dict(orientation="h", x=1.0, xanchor="right", y=1.02, yanchor="bottom")


# Larger numeric maps travel as an image + a hover grid. ECHO_IMAGE_MIN_CELLS overrides it (a huge
# value draws every map as a plain heatmap: the baseline of benchmarks/bench_browser.py).
IMAGE_MIN_CELLS = int(os.environ.get("ECHO_IMAGE_MIN_CELLS", 20_000))
OVERLAY_CELLS = 64  # hover values per side of a map whose hover the page draws (meta, ~22 kB)


# ============================================================================= helpers


def _numeric(values) -> bool:
    return values is not None and np.asarray(values).dtype.kind in "iuf" and len(values) > 1


def _map_traces(z, x, y, axis: str, *, colorscale: str, zmin: float, zmax: float, name: str,
                showscale: bool, colorbar: dict, hovertemplate: str,
                hover: Mapping | None = None, **extra) -> list[dict]:
    """A map as traces on subplot ``axis``: a plain heatmap when small (or on a categorical
    axis), else an image at full resolution plus what carries hover values and the colour bar.
    Rows run downwards.

    ``hover`` None: an invisible heatmap of at most map_image.HOVER_CELLS a side (plotly's own
    hover and click events: maps whose cells do something when clicked). ``hover`` a dict of
    labels (nav_meta.hover_values' ``x_label``, ``y_label``, ``z_label``, ``lag``): no hover
    trace at all; the values ride in the image's meta and the page's map_hover.js shows them
    under the pointer, and a one-point scatter carries the colour bar. A small map drawn as a
    plain heatmap gets the lag |x - y| as its customdata when ``lag`` is set. The invisible heatmap cost plotly.js more
    to redraw than the rest of the figure (plotly paints and PNG-encodes it at plot size),
    so the maps a slider redraws use this (issue #20)."""
    z = np.asarray(z, dtype=np.float32)
    x = np.arange(z.shape[1]) if x is None else x
    y = np.arange(z.shape[0]) if y is None else y
    heat = dict(type="heatmap", z=z, x=x, y=y, zmin=zmin, zmax=zmax,
                colorscale=_scale(colorscale), name=name, showscale=showscale,
                colorbar=colorbar, xaxis=f"x{axis}", yaxis=f"y{axis}",
                hovertemplate=hovertemplate, **extra)
    if z.size < IMAGE_MIN_CELLS or not (_numeric(x) and _numeric(y)):
        if hover is not None and hover.get("lag"):
            coords = np.asarray(x, dtype=np.float64)
            heat["customdata"] = np.abs(np.asarray(y, dtype=np.float64)[:, None]
                                        - coords[None, :]).astype(np.float32)
        return [heat]
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    image = dict(type="image", source=map_data_uri(colour_indices(z, zmin, zmax), colorscale),
                 x0=float(x[0]), dx=float(x[-1] - x[0]) / (x.size - 1), y0=float(y[0]),
                 dy=float(y[-1] - y[0]) / (y.size - 1), name=name, hoverinfo="skip",
                 xaxis=f"x{axis}", yaxis=f"y{axis}")
    if hover is not None:
        rows, cols = hover_grid(z.shape[0], OVERLAY_CELLS), hover_grid(z.shape[1], OVERLAY_CELLS)
        image["meta"] = nav.hover_values(name, x[cols], y[rows], z[np.ix_(rows, cols)], zmin,
                                       zmax, **hover)
        return [image] + ([_colorbar_trace(colorscale, zmin, zmax, colorbar, axis)]
                          if showscale else [])
    rows, cols = hover_grid(z.shape[0]), hover_grid(z.shape[1])
    heat.update(z=z[np.ix_(rows, cols)], x=x[cols], y=y[rows], opacity=0.0,
                hoverlabel=dict(bgcolor="#333", font=dict(color="white")))
    if extra.get("customdata") is not None:
        heat["customdata"] = np.asarray(extra["customdata"])[np.ix_(rows, cols)]
    return [image, heat]


def _colorbar_trace(colorscale, zmin: float, zmax: float, colorbar: dict, axis: str) -> dict:
    """A colour bar without a heatmap: one invisible marker whose colour scale is shown."""
    return dict(type="scatter", x=[None], y=[None], mode="markers", hoverinfo="skip",
                showlegend=False, xaxis=f"x{axis}", yaxis=f"y{axis}",
                marker=dict(size=0, color=[float(zmin)], cmin=float(zmin), cmax=float(zmax),
                            colorscale=_scale(colorscale), showscale=True, colorbar=colorbar))


def _finite_range(arrays, default=(0.0, 1.0)) -> tuple[float, float]:
    """(min, max) over the finite values of several arrays (a tiny span is widened)."""
    finite = np.concatenate([np.asarray(a, dtype=np.float64)[np.isfinite(a)].ravel()
                             for a in arrays]) if arrays else np.zeros(0)
    if not finite.size:
        return default
    lo, hi = float(finite.min()), float(finite.max())
    return lo, hi if hi > lo else lo + 1e-6

NICE_MANTISSAS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


def nice_ceiling(x: float) -> float:
    """The smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 times a power of ten that is >= ``x``
    (> 0), at most a third above it. A fitted colour scale rounded out to such a bound holds
    still over most of a slider drag (the maps change, the colour bar does not), which is
    easier to read, and lets the page swap the maps' pictures without replotting (issue #20)."""
    x = float(x)
    if not (np.isfinite(x) and x > 0):
        raise ValueError(f"nice_ceiling needs a finite x > 0, got {x}")
    power = 10.0 ** np.floor(np.log10(x))
    for m in NICE_MANTISSAS:
        if m * power >= x * (1 - 1e-12):
            return float(m * power)
    return float(10.0 * power)  # unreachable but for rounding at the top of the decade


TEMPLATE_TRACE_TYPES = ("bar", "heatmap", "scatter")  # the trace types the builders draw


@functools.lru_cache(maxsize=1)
def _template() -> dict:
    """plotly_white, with every axis's tick labels allowed past the plot's edge: plotly.js's
    default ("hide past div") measures every label against every other on each redraw, which
    took ~50 ms of a slider step's ~200 ms of painting (Chromium profile, issue #20); labels do
    not reach the div's edge here.

    Only the trace types the builders draw keep their defaults (``TEMPLATE_TRACE_TYPES``; a
    test holds the builders to it): plotly_white styles 24, and every figure carried all of
    them (7.3 of its kB), which each slider step built, measured, sent and parsed again."""
    template = pio.templates[TEMPLATE].to_plotly_json()
    template["data"] = {k: v for k, v in template["data"].items() if k in TEMPLATE_TRACE_TYPES}
    layout, data = template["layout"], template["data"]
    for axis in ("xaxis", "yaxis"):
        layout[axis] = {**layout.get(axis, {}), "ticklabeloverflow": "allow"}
    colour_bars = [data["heatmap"][0].setdefault("colorbar", {}),
                   data["scatter"][0].setdefault("marker", {}).setdefault("colorbar", {}),
                   layout.setdefault("coloraxis", {}).setdefault("colorbar", {})]
    for bar in colour_bars:  # a colour bar's ticks are an axis too
        bar["ticklabeloverflow"] = "allow"
    return template


def _scale(name) -> list:
    """A named colour scale as explicit stops (explicit stops pass through): unvalidated figures
    reach plotly.js as they are, and plotly.js knows neither reversed ("_r") nor
    matplotlib-style names."""
    return _named_scale(name) if isinstance(name, str) else name


@functools.lru_cache(maxsize=8)
def _named_scale(name: str) -> list:
    return pc.get_colorscale(name)


def centred_scale(name: str, lo: float, hi: float, stops: int = 11) -> list:
    """Stops of a diverging scale stretched over [lo, hi] so that 0 keeps the scale's middle
    colour (white for RdBu): a map fitted to its data still reads "0 = unrelated"."""
    lo, hi = min(float(lo), -1e-9), max(float(hi), 1e-9)
    values = np.concatenate([np.linspace(lo, 0.0, stops // 2 + 1),
                             np.linspace(0.0, hi, stops // 2 + 1)[1:]])
    where = np.where(values < 0, 0.5 - 0.5 * values / lo, 0.5 + 0.5 * values / hi)
    colours = pc.sample_colorscale(_named_scale(name), where.tolist())
    return [[float((v - lo) / (hi - lo)), c] for v, c in zip(values, colours)]


def _frame(title: str, height: int) -> dict:
    return dict(template=_template(), height=height, margin=dict(l=60, r=20, t=55, b=50),
                title=dict(text=title, x=0.01, xanchor="left", font=dict(size=15)))


def _fast(data: list[dict], layout: dict, title: str, height: int) -> go.Figure:
    """A figure from plain trace / layout dicts, skipping plotly's property validation."""
    return go.Figure({"data": data, "layout": {**_frame(title, height), **layout}},
                     _validate=False)


def _columns(n: int, spacing: float) -> list[list[float]]:
    """x domains of ``n`` equal side-by-side panels."""
    width = (1.0 - spacing * (n - 1)) / n
    return [[i * (width + spacing), i * (width + spacing) + width] for i in range(n)]


def _panel_title(text: str, domain: list[float]) -> dict:
    return dict(text=text, x=sum(domain) / 2, y=1.0, xref="paper", yref="paper",
                xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=14))


def _axis(i: int) -> str:
    """Axis suffix of panel i (0 -> "", 1 -> "2", ...)."""
    return "" if i == 0 else str(i + 1)


def hz_to_mel(hz):
    """HTK mel scale (the one the log-mel features use); NaN passes through."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def axis_values(positions: np.ndarray, unit: str, hop_seconds: float) -> tuple[np.ndarray, str]:
    """Coordinates and axis title for frame positions shown in frames or in seconds."""
    positions = np.asarray(positions)
    if unit == "seconds":
        return (positions * hop_seconds).astype(np.float64), "time (s)"
    return positions.astype(np.int64), "position (frame)"


def units_per_second(unit: str, hop_seconds: float) -> float:
    """How many axis units one second of audio spans on an axis drawn by :func:`axis_values`
    (what the page's playhead needs to place the time on it)."""
    return 1.0 if unit == "seconds" else 1.0 / float(hop_seconds)


def empty_figure(message: str, height: int = 300) -> go.Figure:
    """A placeholder that says what to do instead of showing a blank frame."""
    note = dict(text=message, showarrow=False, font=dict(size=14, color="#666"),
                xref="paper", yref="paper", x=0.5, y=0.5)
    return _fast([], dict(xaxis=dict(visible=False), yaxis=dict(visible=False),
                          annotations=[note]), "", height)


# ============================================================================= audio & pitch

F0_AXES = ("mel", "hz")  # F0 on the spectrogram's mel axis, or on its own linear Hz axis


def pitch_figure(mel: np.ndarray, mel_times: np.ndarray, mel_hz: np.ndarray,
                 f0_times: np.ndarray, f0_hz: np.ndarray,
                 title: str = "Log-mel spectrogram and F0", f0_axis: str = "mel",
                 range_to: str | None = None) -> go.Figure:
    """Mel spectrogram with the F0 contour drawn over it.

    The y axis is in mel units (the picture looks like the features the model sees) with tick
    labels in Hz. ``f0_axis="mel"`` maps F0 with the same formula, so the line sits on the
    harmonic it tracks; ``"hz"`` draws it on its own linear Hz axis on the right (Praat's
    picture: small pitch movements are visible). Unvoiced frames are NaN and break the line
    (``connectgaps=False``). Time is declared to the page's navigation (playhead, click to
    seek); ``range_to`` names the hidden textbox a drag-select sends its time range to.
    """
    if f0_axis not in F0_AXES:
        raise ValueError(f"f0_axis must be one of {F0_AXES}, got {f0_axis!r}")
    mel = np.asarray(mel, dtype=np.float32)
    if mel.ndim != 2 or mel.shape != (len(mel_hz), len(mel_times)):
        raise ValueError(f"mel {mel.shape} does not match {len(mel_hz)} bands x "
                         f"{len(mel_times)} frames")
    f0_hz = np.asarray(f0_hz, dtype=np.float64)
    mel_y = hz_to_mel(mel_hz)
    top = float(mel_y.max()) if len(mel_y) else 1.0
    ticks = np.array([h for h in HZ_TICKS if hz_to_mel(h) <= top * 1.02], dtype=np.float64)
    own = f0_axis == "hz"
    f0_line = dict(type="scatter", x=np.asarray(f0_times, dtype=np.float64),
                   y=f0_hz if own else hz_to_mel(f0_hz), customdata=f0_hz, mode="lines",
                   line=dict(color=F0_COLOR, width=2.5), connectgaps=False, name="F0 (Praat)",
                   hovertemplate="t=%{x:.3f} s<br>F0=%{customdata:.1f} Hz<extra></extra>")
    if own:
        f0_line["yaxis"] = "y2"
    data = [nav.seek_on_click(dict(
                type="heatmap", z=mel, x=np.asarray(mel_times, dtype=np.float64), y=mel_y,
                colorscale=_scale("Inferno"), name="log-mel",
                colorbar=dict(title=dict(text="log-mel"), len=0.9, **({"x": 1.08} if own else {})),
                hovertemplate="t=%{x:.3f} s<br>mel=%{y:.0f}<br>%{z:.2f}<extra></extra>")),
            nav.seek_on_click(f0_line)]
    layout = dict(xaxis=dict(title=dict(text="time (s)")),
                  yaxis=dict(title=dict(text="frequency (Hz, mel scale)"),
                             tickvals=hz_to_mel(ticks),
                             ticktext=[f"{h / 1000:g}k" if h >= 1000 else f"{h:g}"
                                       for h in ticks]),
                  legend=TOP_LEGEND)
    if own:
        voiced = f0_hz[np.isfinite(f0_hz)]
        high = float(voiced.max()) * 1.15 if voiced.size else 500.0
        layout["yaxis2"] = dict(title=dict(text="F0 (Hz, linear)", font=dict(color="#0097a7")),
                                overlaying="y", side="right", range=[0.0, high],
                                showgrid=False, tickfont=dict(color="#0097a7"))
    layout = nav.time_axes(layout, {"xaxis": 1.0})
    if range_to:
        layout = nav.range_target(layout, range_to)
    return _fast(data, layout, title, height=400)


# ============================================================================= rotary

def _sim_traces(sim, coords, name: str, axis: str, showscale: bool,
                zrange: tuple[float, float] = (-1.0, 1.0), colorscale=SIMILARITY_COLORSCALE,
                colorbar_title: str = "cos sim", colorbar_x: float | None = None) -> list[dict]:
    colorbar = dict(title=dict(text=colorbar_title), len=0.9, thickness=14)
    if colorbar_x is not None:
        colorbar["x"] = colorbar_x
    return _map_traces(sim, coords, coords, axis, colorscale=colorscale,
                       zmin=zrange[0], zmax=zrange[1], name=name, showscale=showscale,
                       colorbar=colorbar,
                       hovertemplate="i=%{y}<br>j=%{x}<br>lag=%{customdata:.3~f}<br>"
                                     "sim=%{z:.3f}<extra>" + name + "</extra>",
                       hover=dict(x_label="j", y_label="i", z_label="sim", lag=True))


def similarity_maps(maps: Sequence[tuple[str, np.ndarray]], positions: np.ndarray,
                    unit: str = "positions", hop_seconds: float = 0.008,
                    title: str = "Position similarity", fit: bool = False,
                    difference: tuple[str, np.ndarray] | None = None) -> go.Figure:
    """Position-similarity maps side by side on one colour scale, [-1, 1] or (``fit``) the
    data's own range with 0 kept white; ``difference`` adds a last panel (label, map) on its
    own symmetric scale, so maps that look alike show where they differ. Fitted bounds are
    rounded out with :func:`nice_ceiling` (the colour bars hold still while theta moves).

    ``maps`` is a list of (label, (R, R) array) all sampled at the same ``positions``; y grows
    downwards like a matrix, so the diagonal (similarity 1) runs from top left to bottom right.
    """
    if not maps:
        raise ValueError("similarity_maps needs at least one map")
    coords, axis_title = axis_values(positions, unit, hop_seconds)
    panels = len(maps) + (difference is not None)
    # with a difference panel the shared colour bar sits between two maps: room for it and
    # for the next panel's tick labels
    domains = _columns(panels, 0.12 if difference is not None else 0.06)
    zrange, colorscale = (-1.0, 1.0), SIMILARITY_COLORSCALE
    if fit:
        lo = min(_finite_range([m for _, m in maps])[0], 0.0)
        lo = -min(nice_ceiling(-lo), 1.0) if lo < 0 else 0.0
        zrange, colorscale = (lo, 1.0), centred_scale(SIMILARITY_COLORSCALE, lo, 1.0)
    data, layout = [], {"annotations": []}
    for i, (label, sim) in enumerate(maps):
        a = _axis(i)
        data += _sim_traces(sim, coords, label, a, showscale=i == len(maps) - 1,
                            zrange=zrange, colorscale=colorscale,
                            colorbar_x=domains[i][1] + 0.005 if difference is not None else None)
        _square_panel(layout, a, domains[i], axis_title, first=i == 0)
        layout["annotations"].append(_panel_title(label, domains[i]))
    if difference is not None:
        a = _axis(len(maps))
        bound = nice_ceiling(max(float(np.nanmax(np.abs(difference[1]))), 1e-6))
        data += _sim_traces(difference[1], coords, difference[0], a, showscale=True,
                            zrange=(-bound, bound), colorscale=SIMILARITY_COLORSCALE,
                            colorbar_title="Δ sim")
        _square_panel(layout, a, domains[-1], axis_title, first=False)
        layout["annotations"].append(_panel_title(difference[0], domains[-1]))
    layout = nav.time_axes(layout, {f"xaxis{_axis(i)}": units_per_second(unit, hop_seconds)
                                    for i in range(panels)})
    return _fast(data, layout, title, height=460)


def _square_panel(layout: dict, a: str, domain: list[float], axis_title: str,
                  first: bool) -> None:
    """Axes of one map panel: y downwards, square cells (scaleanchor), the domain kept."""
    layout[f"xaxis{a}"] = dict(domain=domain, anchor=f"y{a}", title=dict(text=axis_title),
                               constrain="domain")
    layout[f"yaxis{a}"] = dict(domain=[0.0, 1.0], anchor=f"x{a}", autorange="reversed",
                               scaleanchor=f"x{a}", constrain="domain",
                               title=dict(text=axis_title if first else ""))


def band_width_figure(thetas: np.ndarray, widths: Mapping[str, np.ndarray], theta: float,
                      unit: str = "positions", hop_seconds: float = 0.008,
                      level: float = 0.5,
                      title: str = "How far a position sees: band width per θ") -> go.Figure:
    """Band width (the lag at which similarity first drops below ``level``) against θ on a log
    axis, one line per F0 setting, with the slider's θ marked: F0 raises θ_eff, so a pitch
    line lies above the static one until θ itself is large."""
    data = []
    for i, (label, width) in enumerate(widths.items()):
        y, _ = axis_values(np.asarray(width, dtype=np.float64), unit, hop_seconds)
        data.append(dict(type="scatter", x=np.asarray(thetas, dtype=np.float64), y=y,
                         mode="lines", name=label,
                         line=dict(width=2, color=SERIES_COLORS[i % len(SERIES_COLORS)]),
                         hovertemplate="θ=%{x:,.0f}<br>width=%{y:.3~f}<extra>" + label
                                       + "</extra>"))
    layout = dict(xaxis=dict(type="log", title=dict(text="θ (static base)")),
                  yaxis=dict(title=dict(text=f"lag where similarity < {level:g} "
                                             f"({'s' if unit == 'seconds' else 'positions'})"),
                             rangemode="tozero"),
                  legend=TOP_LEGEND,
                  shapes=[dict(type="line", xref="x", x0=float(theta), x1=float(theta),
                               yref="paper", y0=0, y1=1,
                               line=dict(color="#444", dash="dash", width=1))])
    return _fast(data, layout, title, height=360)


def sweep_grid(maps: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str],
               title: str = "Theta x pitch sweep") -> go.Figure:
    """Grid of small similarity maps: rows = static theta, columns = mean F0 (or none).

    ``maps`` has shape (rows, cols, R, R). A low effective theta gives narrow bands (fast
    rotation), a high one wide bands; the diagonal is always 1. Drawn as one mosaic image on
    one subplot (25 subplots with an image each took the browser seconds to lay out), column
    headers and frames in the column's colour, the shared [-1, 1] colour bar beside it.
    """
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 4 or maps.shape[:2] != (len(row_labels), len(col_labels)):
        raise ValueError(f"maps shape {maps.shape} does not match {len(row_labels)} rows x "
                         f"{len(col_labels)} columns")
    rows, cols, n = maps.shape[0], maps.shape[1], maps.shape[-1]
    gap = max(2, n // 6)
    step = n + gap
    image = dict(type="image", x0=0, dx=1, y0=0, dy=1, hoverinfo="skip", name="sweep",
                 source=map_data_uri(mosaic(maps, gap, (-1.0, 1.0)), SIMILARITY_COLORSCALE))
    width, height = cols * step - gap, rows * step - gap
    annotations, shapes = [], []
    for c, label in enumerate(col_labels):  # column headers and a frame around each column
        color = SERIES_COLORS[c % len(SERIES_COLORS)]
        x0 = c * step - 0.5
        annotations.append(dict(text=label, x=x0 + n / 2, y=-0.5, xref="x", yref="y",
                                xanchor="center", yanchor="bottom", showarrow=False,
                                font=dict(size=12, color=color)))
        shapes.append(dict(type="rect", xref="x", yref="y", x0=x0 - 1.5, x1=x0 + n + 1.5,
                           y0=-2, y1=height + 1, line=dict(color=color, width=2)))
    for r, label in enumerate(row_labels):
        annotations.append(dict(text=label, x=width + gap / 2, y=r * step + n / 2, xref="x",
                                yref="y", xanchor="left", yanchor="middle", textangle=90,
                                showarrow=False, font=dict(size=11)))
    bar = _colorbar_trace(SIMILARITY_COLORSCALE, -1.0, 1.0,
                          dict(title=dict(text="cos sim"), len=0.9, x=1.02), "")
    layout = dict(annotations=annotations, shapes=shapes,
                  xaxis=dict(visible=False, range=[-3, width + 2.5 * gap], constrain="domain"),
                  yaxis=dict(visible=False, range=[height + 2, -3], scaleanchor="x",
                             constrain="domain"))
    return _fast([image, bar], layout, title, height=max(320, 120 * rows + 100))


def similarity_curves(curves: Sequence[tuple[str, np.ndarray, np.ndarray]],
                      unit: str = "positions", hop_seconds: float = 0.008,
                      title: str = "Similarity vs distance") -> go.Figure:
    """Several (label, lags, similarity) curves in one plot, distance in frames or seconds."""
    data = []
    for i, (label, lags, sim) in enumerate(curves):
        x, _ = axis_values(lags, unit, hop_seconds)
        line = dict(width=2, color=SERIES_COLORS[i % len(SERIES_COLORS)],
                    dash=("solid", "solid", "dash", "dot", "dashdot")[i % 5])
        data.append(dict(type="scatter", x=x, y=np.asarray(sim, dtype=np.float64), mode="lines",
                         name=label, line=line))
    layout = dict(xaxis=dict(title=dict(text="distance (s)" if unit == "seconds"
                                        else "distance (frames)")),
                  yaxis=dict(title=dict(text="cos similarity"), range=[-1.0, 1.0]),
                  shapes=[dict(type="line", xref="paper", x0=0, x1=1, y0=0, y1=0,
                               line=dict(color="#888", width=1, dash="dot"))])
    return _fast(data, layout, title, height=380)


# ============================================================================= pitch bias

def bias_figure(bias: np.ndarray, positions: np.ndarray, f0_display: np.ndarray,
                unit: str = "positions", hop_seconds: float = 0.008, title: str = "Pitch bias",
                colorbar_title: str = "bias", zrange: tuple[float, float] | None = (0.0, 1.0),
                colorscale: str = BIAS_COLORSCALE) -> go.Figure:
    """A bias (or prior) map with the F0 track it came from drawn along both of its axes.

    Traces: the map (bottom right), F0 over the map's x axis (top), F0 sideways along its y
    axis (left). Unvoiced frames are NaN gaps in both tracks.
    """
    coords, axis_title = axis_values(positions, unit, hop_seconds)
    f0 = np.asarray(f0_display, dtype=np.float64)
    left, right = [0.0, 0.12], [0.14, 1.0]
    bottom, top = [0.0, 0.8], [0.83, 1.0]
    zrange = zrange or _finite_range([bias])
    heat = _map_traces(bias, coords, coords, "", colorscale=colorscale, zmin=zrange[0],
                       zmax=zrange[1], name=colorbar_title, showscale=True,
                       colorbar=dict(title=dict(text=colorbar_title), len=0.8, y=0.4),
                       hovertemplate="i=%{y}<br>j=%{x}<br>%{z:.3f}<extra></extra>",
                       hover=dict(x_label="j", y_label="i", z_label=colorbar_title))
    track = dict(type="scatter", mode="lines", connectgaps=False, name="F0 (Hz)",
                 line=dict(color=TRACK_COLOR, width=1.8), showlegend=False,
                 hovertemplate="%{x}, %{y}<extra>F0</extra>")
    data = [*heat, {**track, "x": coords, "y": f0, "xaxis": "x2", "yaxis": "y2"},
            {**track, "x": f0, "y": coords, "xaxis": "x3", "yaxis": "y3"}]
    layout = dict(
        xaxis=dict(domain=right, anchor="y", title=dict(text=axis_title)),
        yaxis=dict(domain=bottom, anchor="x", autorange="reversed", showticklabels=False),
        xaxis2=dict(domain=right, anchor="y2", matches="x", showticklabels=False),
        yaxis2=dict(domain=top, anchor="x2", title=dict(text="F0 (Hz)")),
        xaxis3=dict(domain=left, anchor="y3", title=dict(text="F0 (Hz)")),
        yaxis3=dict(domain=bottom, anchor="x3", matches="y", autorange="reversed",
                    title=dict(text=axis_title)))
    per_second = units_per_second(unit, hop_seconds)
    layout = nav.time_axes(layout, {"xaxis": per_second, "xaxis2": per_second})
    return _fast(data, layout, title, height=560)
