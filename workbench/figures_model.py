"""Plotly figure builders of a model run: gate/MLP bars against their at-init band, attention
maps, per-token log-probabilities and the head-score heatmaps. Arrays in, figures out, in the
look and with the map helpers of ``workbench.figures`` (clip, rotary and bias figures).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from workbench import nav_meta as nav
from workbench.figures import (SIMILARITY_COLORSCALE, BIAS_COLORSCALE, ATTENTION_COLORSCALE,
                               STATUS_COLORS, OTHER_COLOR, SERIES_COLORS, TOP_LEGEND, _map_traces,
                               _finite_range, _scale, _fast, _columns, _panel_title, _axis,
                               empty_figure)


# ============================================================================= model

def _expected_line(expected: float | None) -> dict:
    """Layout entries drawing the at-initialisation ratio as a dashed line across the plot."""
    if expected is None or not np.isfinite(expected):
        return {}
    y = float(expected)
    return dict(shapes=[dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=y, y1=y,
                             line=dict(color="#444", dash="dash"))],
                annotations=[dict(xref="paper", x=0, yref="y", y=y, xanchor="left",
                                  yanchor="bottom", showarrow=False,
                                  text=f"at initialisation ≈ {y:.2f}")])


BAND_COLORS = {"below": "#1f77b4", "within": "#8fbc8f", "above": "#f2b400"}


def band_relation(ratios, low, high) -> list[str]:
    """Where each measured ratio sits against its block's at-initialisation band."""
    return ["below" if r < lo else "above" if r > hi else "within"
            for r, lo, hi in zip(ratios, low, high)]


def gate_ratio_bars(blocks: Sequence[str], ratios: np.ndarray, status: Sequence[str],
                    expected: float | None = None,
                    title: str = "Gate / MLP activation ratio per block",
                    band: tuple[np.ndarray, np.ndarray] | None = None) -> go.Figure:
    """One bar per block with the at-initialisation expectation as a line. With ``band`` (low,
    high per block: fresh initialisations of the same dims) each block's band is drawn as a
    grey range and bars are coloured by where they sit against it (a ratio inside its band
    says nothing learned); without it, by the reference's status marker (< 2 green)."""
    blocks = np.asarray(list(blocks), dtype=object)
    ratios = np.asarray(ratios, dtype=np.float64)
    data = []
    if band is not None:
        low, high = (np.asarray(b, dtype=np.float64) for b in band)
        where = band_relation(ratios, low, high)
        colors = [BAND_COLORS[w] for w in where]
        data.append(dict(type="bar", x=blocks, y=high - low, base=low, name="at init (band)",
                         marker=dict(color="rgba(120,120,120,0.25)"), width=0.8,
                         hovertemplate="%{x}<br>fresh inits: %{base:.2f}–%{customdata:.2f}"
                                       "<extra></extra>", customdata=high))
        hover = [f"ratio={r:.3f} ({w} the at-init band)" for r, w in zip(ratios, where)]
    else:
        colors = [STATUS_COLORS.get(s, OTHER_COLOR) for s in status]
        hover = [f"ratio={r:.3f}" for r in ratios]
    data.append(dict(type="bar", x=blocks, y=ratios, marker=dict(color=colors), width=0.4,
                     name="measured", hovertext=np.asarray(hover, dtype=object),
                     hovertemplate="%{x}<br>%{hovertext}<extra></extra>"))
    layout = dict(yaxis=dict(title=dict(text="mean|gate logit| / mean|MLP pre-act|"),
                             rangemode="tozero"), barmode="overlay", legend=TOP_LEGEND,
                  xaxis=dict(title=dict(text="block"), tickangle=-30), **_expected_line(expected))
    return _fast(data, layout, title, height=400)


def grouped_ratio_bars(series: Mapping[str, tuple[Sequence[str], np.ndarray]],
                       expected: float | None = None,
                       title: str = "Gate / MLP ratio per block") -> go.Figure:
    """Grouped bars: one colour per checkpoint, blocks on x."""
    bars = [dict(type="bar", x=np.asarray(list(blocks), dtype=object),
                 y=np.asarray(ratios, dtype=np.float64), name=label,
                 marker=dict(color=SERIES_COLORS[i % len(SERIES_COLORS)]))
            for i, (label, (blocks, ratios)) in enumerate(series.items())]
    layout = dict(yaxis=dict(title=dict(text="gate / MLP ratio"), rangemode="tozero"),
                  xaxis=dict(title=dict(text="block"), tickangle=-30), barmode="group",
                  legend=TOP_LEGEND, **_expected_line(expected))
    return _fast(bars, layout, title, height=420)


def attention_maps(maps: Sequence[tuple], x_title: str = "key position",
                   y_title: str = "query position", title: str = "Attention",
                   colorbar_title: str = "score", zrange: tuple[float, float] | None = None,
                   colorscale: str = ATTENTION_COLORSCALE, x_per_second: float | None = None,
                   spans: Sequence[np.ndarray | None] | None = None) -> go.Figure:
    """One or more attention maps (queries x keys) side by side on a shared colour range.

    Each item is (label, array) or (label, array, x values, y values); values may be token
    labels (categorical axis) or frame numbers. NaN cells (blocked by a causal mask) are gaps.
    ``x_per_second``: the key axis is audio positions, that many per second (the playhead is
    drawn on it). ``spans``: per map, the (k, 2) audio time span (s) of each key column or
    None; hover names the span and a click plays it.
    """
    if not maps:
        raise ValueError("attention_maps needs at least one map")
    items = [(m[0], np.asarray(m[1], dtype=np.float32), *(list(m[2:4]) + [None, None])[:2])
             for m in maps]
    if zrange is None:
        zrange = _finite_range([a for _, a, _, _ in items])
    domains = _columns(len(items), 0.07)
    data, layout = [], {"annotations": []}
    for i, (label, arr, x, y) in enumerate(items):
        a = _axis(i)
        span = spans[i] if spans is not None else None
        extra = {}
        if span is not None:  # (q, k, 2): every cell carries its key column's time span
            extra["customdata"] = np.ascontiguousarray(np.broadcast_to(
                np.asarray(span, dtype=np.float32)[None], arr.shape + (2,)))
        traces = _map_traces(arr, x, y, a, colorscale=colorscale, zmin=zrange[0],
                             zmax=zrange[1], name=label, showscale=i == len(items) - 1,
                             colorbar=dict(title=dict(text=colorbar_title), len=0.9),
                             hovertemplate="q=%{y}<br>k=%{x}<br>" + (
                                 "audio %{customdata[0]:.2f}–%{customdata[1]:.2f} s<br>"
                                 if span is not None else "") + "%{z:.3f}<extra></extra>",
                             **extra)
        if span is not None:
            traces[-1] = nav.seek_on_click(traces[-1], "span")
        data += traces
        layout[f"xaxis{a}"] = dict(domain=domains[i], anchor=f"y{a}", title=dict(text=x_title))
        layout[f"yaxis{a}"] = dict(anchor=f"x{a}", autorange="reversed",
                                   title=dict(text=y_title if i == 0 else ""))
        layout["annotations"].append(_panel_title(label, domains[i]))
    if x_per_second:
        layout = nav.time_axes(layout, {f"xaxis{_axis(i)}": x_per_second
                                        for i in range(len(items))})
    return _fast(data, layout, title, height=460)


def token_logprob_bars(tokens: Sequence[str], true: np.ndarray, condition: np.ndarray,
                       condition_name: str, title: str = "Per-token log-likelihood change"
                       ) -> go.Figure:
    """One bar per reference token: log p under the condition minus log p under the true F0
    (below 0: the condition made the token less likely), with both values on hover."""
    true = np.asarray(true, dtype=np.float64)
    condition = np.asarray(condition, dtype=np.float64)
    delta = condition - true
    colors = np.where(delta < 0, SERIES_COLORS[1], SERIES_COLORS[0])
    bar = dict(type="bar", x=np.asarray(list(tokens), dtype=object), y=delta,
               marker=dict(color=colors), customdata=np.stack([true, condition], axis=1),
               name="Δ log p",
               hovertemplate="%{x}<br>Δ log p = %{y:.4f}<br>true F0: %{customdata[0]:.4f}"
                             "<br>" + condition_name + ": %{customdata[1]:.4f}<extra></extra>")
    layout = dict(xaxis=dict(title=dict(text="reference token"), type="category"),
                  yaxis=dict(title=dict(text=f"log p({condition_name}) − log p(true F0)"),
                             zeroline=True),
                  annotations=[dict(xref="paper", yref="paper", x=1.0, y=1.02, xanchor="right",
                                    yanchor="bottom", showarrow=False,
                                    text=f"mean Δ = {delta.mean():+.4f} nats / token")])
    return _fast([bar], layout, title, height=360)


# ========================================================================= head scores (issue #8)

HEAD_SCORE_LABELS = {
    "pitch_spearman": "ρ(attention, pitch similarity)",
    "rotary_spearman": "ρ(attention, rotary prior)",
    "distance_spearman": "ρ(attention, −|i−j|)",
    "pitch_partial_spearman": "partial ρ(attention, pitch | distance)",
    "mean_distance_frames": "mean attention distance (frames / tokens)",
    "mean_distance_ms": "mean attention distance (ms)",
    "entropy_nats": "attention entropy (nats)",
    "entropy_normalised": "attention entropy / ln n",
}
_SIGNED_SCORES = ("pitch_spearman", "rotary_spearman", "distance_spearman",
                  "pitch_partial_spearman")


NA_REASONS = {  # why a score is n/a for a whole kind of map (shown in the empty panel)
    **{("decoder self-attention", s): "n/a: text tokens carry no F0"
       for s in ("pitch_spearman", "pitch_partial_spearman")},
    **{("decoder cross-attention", s): "n/a: text and audio share no position axis"
       for s in ("rotary_spearman", "distance_spearman", "pitch_partial_spearman",
                 "mean_distance_frames", "mean_distance_ms")},
    ("decoder self-attention", "mean_distance_ms"): "n/a: distances are in tokens",
}


def head_score_heatmaps(df, score: str, title: str | None = None,
                        pick: str | None = None) -> go.Figure:
    """One layer × head heatmap per attention kind (columns of ``echo_core.head_scores``
    .head_score_table: kind, layer, head, <score>) side by side on a shared colour range.

    Rank correlations use a diverging scale fixed at [-1, 1] (0 = white: no relation); the
    other scores a sequential scale. A kind whose score is all NaN (e.g. pitch for decoder
    self-attention) shows as an empty panel with "n/a" in its title. ``pick`` names the hidden
    textbox a click on a cell sends its (kind, layer, head) to.
    """
    if score not in df.columns:
        raise ValueError(f"unknown score {score!r}; accepted: {list(HEAD_SCORE_LABELS)}")
    kinds = list(dict.fromkeys(df["kind"]))
    if not kinds:
        return empty_figure("no attention heads to score")
    signed = score in _SIGNED_SCORES
    values = df[score].to_numpy(dtype=np.float64)
    finite = values[np.isfinite(values)]
    if signed:
        zrange = (-1.0, 1.0)
    elif finite.size:
        zrange = (float(finite.min()), float(max(finite.max(), finite.min() + 1e-6)))
    else:
        zrange = (0.0, 1.0)
    label = HEAD_SCORE_LABELS.get(score, score)
    domains = _columns(len(kinds), 0.08)
    data, layout = [], {"annotations": []}
    for i, kind in enumerate(kinds):
        part = df[df["kind"] == kind]
        layers = np.sort(part["layer"].unique())
        heads = np.sort(part["head"].unique())
        z = np.full((layers.size, heads.size), np.nan, dtype=np.float32)  # (layers, heads)
        li = np.searchsorted(layers, part["layer"].to_numpy())
        hi = np.searchsorted(heads, part["head"].to_numpy())
        z[li, hi] = part[score].to_numpy(dtype=np.float32)
        a = _axis(i)
        data.append(dict(type="heatmap", z=z, x=heads, y=layers, zmin=zrange[0],
                         zmax=zrange[1],
                         colorscale=_scale(SIMILARITY_COLORSCALE if signed else BIAS_COLORSCALE),
                         showscale=i == len(kinds) - 1, xaxis=f"x{a}", yaxis=f"y{a}",
                         colorbar=dict(title=dict(text=score), len=0.9),
                         texttemplate="%{z:.2f}", xgap=1, ygap=1,
                         hovertemplate=f"{kind}<br>layer %{{y}}, head %{{x}}<br>"
                                       f"{score} = %{{z:.3f}}<extra></extra>"))
        if pick:
            data[-1] = nav.pick_on_click({**data[-1], "customdata": np.stack(
                np.meshgrid(layers, heads, indexing="ij"), axis=-1)}, kind, pick)
        layout[f"xaxis{a}"] = dict(domain=domains[i], anchor=f"y{a}", title=dict(text="head"),
                                   tickmode="array", tickvals=heads)
        layout[f"yaxis{a}"] = dict(anchor=f"x{a}", autorange="reversed", tickmode="array",
                                   tickvals=layers, title=dict(text="layer" if i == 0 else ""))
        empty = not np.isfinite(z).any()
        layout["annotations"].append(_panel_title(kind + (" (n/a)" if empty else ""),
                                                  domains[i]))
        if empty:  # say why instead of drawing empty axes
            data[-1]["visible"] = False
            layout[f"xaxis{a}"]["visible"] = layout[f"yaxis{a}"]["visible"] = False
            reason = (NA_REASONS.get((kind, score)) or "not defined for this kind of map")
            layout["annotations"].append(dict(
                text=reason, x=sum(domains[i]) / 2, y=0.5, xref="paper", yref="paper",
                showarrow=False, font=dict(size=12, color="#777"), xanchor="center"))
    return _fast(data, layout, title or label, height=360)
