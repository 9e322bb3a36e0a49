"""Figures and a self-contained HTML report for a batch results folder (workbench.batch).

Tables in, plotly figures out (no data loading here). The report inlines plotly.js once (the
machine has no network, so a CDN link would leave the plots blank) and the rest are divs.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from echo_core.attention_kinds import DECODER_CROSS, DECODER_SELF, ENCODER_SELF
from workbench.figures import SERIES_COLORS, TOP_LEGEND, _frame, empty_figure

SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "cross", "star", "hexagon")
SHORT_KIND = {ENCODER_SELF: "enc-self", DECODER_SELF: "dec-self", DECODER_CROSS: "cross"}
SCORE_SHOWN = "pitch_spearman"  # the head score drawn across clips (all are in the tables)

REPORT_FILE = "report.html"


def _styled(fig: go.Figure, title: str, height: int = 460, **layout) -> go.Figure:
    """The app's look (template, title, legend on top) for a batch figure."""
    fig.update_layout(**_frame(title, height), legend=TOP_LEGEND, **layout)
    return fig


def _colour(i: int) -> str:
    return SERIES_COLORS[i % len(SERIES_COLORS)]


def _blocks(results: pd.DataFrame) -> pd.DataFrame:
    if not len(results) or "record" not in results:
        return pd.DataFrame()
    return results[results["record"] == "block"]


def ratio_distributions(results: pd.DataFrame) -> go.Figure:
    """Box + points of the gate/MLP ratio, one box per block and checkpoint."""
    blocks = _blocks(results)
    if not len(blocks):
        return empty_figure("no block rows: no clip was analysed")
    fig = go.Figure()
    for i, (checkpoint, df) in enumerate(blocks.groupby("checkpoint", sort=True)):
        fig.add_trace(go.Box(x=df["name"].to_numpy(), y=df["ratio"].to_numpy(dtype=float),
                             name=str(checkpoint), boxpoints="all", jitter=0.3,
                             marker_color=_colour(i)))
    return _styled(fig, "Gate/MLP ratio per block (one point per clip)", boxmode="group",
                   xaxis_title="block", yaxis_title="mean |gate| / mean |mlp.0|")


def checkpoint_pairs(results: pd.DataFrame) -> list[go.Figure]:
    """Ratio of checkpoint A against checkpoint B, clip by clip (each pair of checkpoints)."""
    blocks = _blocks(results)
    if not len(blocks):
        return []
    wide = blocks.pivot_table(index=["clip", "name"], columns="checkpoint", values="ratio")
    names = list(wide.columns)
    figs = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            df = wide[[a, b]].dropna().reset_index()
            fig = go.Figure()
            for j, (block, part) in enumerate(df.groupby("name", sort=True)):
                fig.add_trace(go.Scatter(x=part[a].to_numpy(), y=part[b].to_numpy(),
                                         mode="markers", name=str(block),
                                         marker=dict(color=_colour(j),
                                                     symbol=SYMBOLS[j // len(SERIES_COLORS)
                                                                    % len(SYMBOLS)]),
                                         text=part["clip"].to_numpy()))
            if len(df):
                lo, hi = float(df[[a, b]].min().min()), float(df[[a, b]].max().max())
                fig.add_trace(go.Scatter(x=np.array([lo, hi]), y=np.array([lo, hi]),
                                         mode="lines", name="equal", line=dict(dash="dot")))
            figs.append(_styled(fig, f"Gate/MLP ratio: {a} against {b}", xaxis_title=a,
                                yaxis_title=b))
    return figs


def ratio_vs_f0(results: pd.DataFrame) -> go.Figure:
    """Ratio against the clip's median F0, one trace per checkpoint x block."""
    blocks = _blocks(results)
    if not len(blocks):
        return empty_figure("no block rows: no clip was analysed")
    fig = go.Figure()
    checkpoints = sorted(blocks["checkpoint"].unique())
    names = sorted(blocks["name"].unique())
    for (checkpoint, block), df in blocks.groupby(["checkpoint", "name"], sort=True):
        # colour = checkpoint, marker = block: every legend entry is told apart
        fig.add_trace(go.Scatter(x=df["f0_median"].to_numpy(dtype=float),
                                 y=df["ratio"].to_numpy(dtype=float), mode="markers",
                                 name=f"{checkpoint} {block}", text=df["clip"].to_numpy(),
                                 legendgroup=str(checkpoint),
                                 marker=dict(color=_colour(checkpoints.index(checkpoint)),
                                             symbol=SYMBOLS[names.index(block) % len(SYMBOLS)],
                                             size=8)))
    return _styled(fig, "Gate/MLP ratio against median F0 of the clip",
                   xaxis_title="median F0 (Hz, voiced frames)", yaxis_title="ratio")


def head_score_spread(summary: pd.DataFrame, score: str = SCORE_SHOWN) -> go.Figure:
    """Per head (kind, layer, head on x), the score's mean over clips with whiskers of one
    standard deviation, one colour per checkpoint: which heads follow pitch consistently."""
    if not len(summary) or f"{score}_mean" not in summary:
        return empty_figure("no head scores: no clip could be scored")
    fig = go.Figure()
    for i, (checkpoint, df) in enumerate(summary.groupby("checkpoint", sort=True)):
        df = df.dropna(subset=[f"{score}_mean"])
        x = np.array([f"{SHORT_KIND.get(k, k)} L{layer} H{head}" for k, layer, head in
                      zip(df["kind"], df["layer"], df["head"])], dtype=object)
        fig.add_trace(go.Scatter(
            x=x, y=df[f"{score}_mean"].to_numpy(float), mode="markers", name=str(checkpoint),
            marker=dict(color=_colour(i), size=8),
            error_y=dict(type="data", array=df[f"{score}_std"].fillna(0).to_numpy(float),
                         thickness=1.2, width=3),
            customdata=np.stack([df["clips"].to_numpy(float), df[f"{score}_min"].to_numpy(float),
                                 df[f"{score}_max"].to_numpy(float)], axis=1),
            hovertemplate="%{x}: mean %{y:.3f}<br>clips %{customdata[0]:.0f}, range "
                          "[%{customdata[1]:.3f}, %{customdata[2]:.3f}]<extra></extra>"))
    fig.add_hline(y=0, line=dict(color="#999999", width=1, dash="dot"))
    return _styled(fig, f"Head scores across clips: {score} (mean ± 1 sd over clips)",
                   xaxis=dict(title=dict(text="attention kind, layer, head"), tickangle=-45),
                   yaxis_title=score)


def figures_from_tables(tables: dict) -> list[go.Figure]:
    """The report's figures, in order."""
    results = tables.get("results", pd.DataFrame())
    heads = tables.get("head_scores_summary", pd.DataFrame())
    return [ratio_distributions(results), head_score_spread(heads), *checkpoint_pairs(results),
            ratio_vs_f0(results)]


def _table_html(df: pd.DataFrame, caption: str, max_rows: int = 200) -> str:
    body = df.head(max_rows).to_html(index=False, float_format=lambda v: f"{v:.4g}",
                                     na_rep="", border=0)
    more = f"<p>({len(df) - max_rows} more rows in the CSV)</p>" if len(df) > max_rows else ""
    return f"<h2>{html.escape(caption)}</h2>{body}{more}"


def write_report(out_dir, tables: dict) -> Path:
    """report.html beside the tables: figures, summary, errors. Self-contained (inline
    plotly.js, written once)."""
    out_dir = Path(out_dir)
    figs = figures_from_tables(tables)
    divs = [fig.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, fig in enumerate(figs)]
    results = tables.get("results", pd.DataFrame())
    n_clips = results["clip"].nunique() if len(results) else 0
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Echo batch report</title>",
        ("<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
         "font-size:12px}td,th{padding:2px 6px;border-bottom:1px solid #ddd}</style></head>"
         "<body>"),
        "<h1>Echo batch report</h1>",
        (f"<p>{n_clips} clip(s) analysed, {len(tables.get('errors', []))} error(s). Ratios are "
         "mean |gate logit| / mean |mlp.0 output| per block (echo_core.hooks.gate_mlp_ratios); "
         "F0 from Praat (echo_core.pitch).</p>"),
        *divs,
        _table_html(tables.get("summary", pd.DataFrame()), "Summary per checkpoint and block"),
        _table_html(tables.get("head_scores_summary", pd.DataFrame()),
                    "Head scores per checkpoint and head, over clips"),
        _table_html(tables.get("errors", pd.DataFrame()), "Errors"),
        "</body></html>",
    ]
    path = out_dir / REPORT_FILE
    tmp = out_dir / f".{REPORT_FILE}.tmp"
    tmp.write_text("\n".join(parts), encoding="utf-8")
    tmp.replace(path)
    return path
