"""The model-zoo figure: word error rate per unseen-speaker test set, one bar per config, the
seed spread as whiskers (min to max over seeds). Takes arrays, returns a figure."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from workbench.figures import SERIES_COLORS, TOP_LEGEND, _fast


def wer_bars(configs: Sequence[str], test_sets: Sequence[str], mean: np.ndarray,
             low: np.ndarray, high: np.ndarray) -> go.Figure:
    """Grouped bars: test sets on x, one colour per config (configs x sets arrays of WER %)."""
    x = np.asarray(list(test_sets), dtype=object)
    bars = []
    for i, label in enumerate(configs):
        m = np.asarray(mean[i], np.float64)
        bars.append(dict(
            type="bar", x=x, y=m, name=label,
            marker=dict(color=SERIES_COLORS[i % len(SERIES_COLORS)]),
            error_y=dict(type="data", symmetric=False, array=np.asarray(high[i]) - m,
                         arrayminus=m - np.asarray(low[i]), thickness=1.2, width=3),
            hovertemplate=f"{label}<br>%{{x}}: %{{y:.1f}}% WER<extra></extra>"))
    layout = dict(barmode="group", legend=TOP_LEGEND,
                  yaxis=dict(title=dict(text="word error rate (%)"), rangemode="tozero"),
                  xaxis=dict(title=dict(text="unseen-speaker test set")))
    layout["margin"] = dict(l=60, r=20, t=95, b=50)  # the legend row sits under the title
    layout["legend"] = {**TOP_LEGEND, "x": 0.0, "xanchor": "left"}
    return _fast(bars, layout, "Model zoo: WER per test set (bars: mean over seeds; whiskers: "
                 "min-max)", height=460)
