"""Figure builders for navigating attention: bertviz's model view (a layers x heads grid of
thumbnails). Arrays in, figures out, like ``workbench.figures``.

The grid is one lossless image (every thumbnail colour-mapped on the server and tiled) under an
invisible heatmap with one cell per thumbnail: the browser draws a single image whatever the
number of heads, and the heatmap carries the hover text and the click that opens a head.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from workbench import nav_meta as nav
from workbench.figures import ATTENTION_COLORSCALE, _fast, _finite_range
from workbench.map_image import map_data_uri, mosaic

GAP = 3  # transparent pixels between thumbnails
CELL_PX = 80  # about how tall a thumbnail row is drawn (sets the figure height)


def thumbnail_indices(maps: np.ndarray, gap: int = GAP) -> np.ndarray:
    """(L*(s+gap)-gap, H*(s+gap)-gap) uint8 colour indices (map_image.colour_indices): the
    (L, H, s, s) thumbnails tiled row by row, each on its own colour range (patterns, not
    magnitudes, are compared across heads), NaN cells and the gaps transparent."""
    return mosaic(maps, gap, lambda tile: _finite_range([tile]))


def attention_grid(maps: np.ndarray, layers: np.ndarray, heads: np.ndarray, kind: str,
                   title: str | None = None, pick: str | None = None,
                   selected: tuple[int, int] | None = None) -> go.Figure:
    """The model view: one thumbnail per (layer, head) of one attention kind, layers down, heads
    across, numbered as given. ``pick`` names the hidden textbox a click sends the head to;
    ``selected`` (layer, head) is outlined (the head the big map shows)."""
    maps = np.asarray(maps, dtype=np.float32)
    n_layers, n_heads, rows, cols = maps.shape
    step_y, step_x = rows + GAP, cols + GAP
    xc = np.arange(n_heads) * step_x + (cols - 1) / 2.0  # tile centres, image pixel units
    yc = np.arange(n_layers) * step_y + (rows - 1) / 2.0
    pairs = np.stack(np.meshgrid(np.asarray(layers), np.asarray(heads), indexing="ij"), axis=-1)
    image = dict(type="image", source=map_data_uri(thumbnail_indices(maps), ATTENTION_COLORSCALE),
                 x0=0, dx=1, y0=0, dy=1, hoverinfo="skip", name="thumbnails")
    cells = dict(type="heatmap", z=np.zeros((n_layers, n_heads), np.float32), x=xc, y=yc,
                 customdata=pairs, opacity=0.0, showscale=False, name=kind,
                 hovertemplate="layer %{customdata[0]}, head %{customdata[1]}<br>click to open"
                               "<extra></extra>")
    if pick:
        cells = nav.pick_on_click(cells, kind, pick)
    shapes = []
    if selected is not None:
        where = np.argwhere((pairs[..., 0] == selected[0]) & (pairs[..., 1] == selected[1]))
        if where.size:
            i, j = where[0]
            shapes.append(dict(type="rect", x0=j * step_x - 1.5, x1=j * step_x + cols + 0.5,
                               y0=i * step_y - 1.5, y1=i * step_y + rows + 0.5,
                               line=dict(color="#1f77b4", width=3)))
    layout = dict(
        xaxis=dict(tickmode="array", tickvals=xc, ticktext=[f"h{h}" for h in heads],
                   showgrid=False, zeroline=False, side="top",
                   constrain="domain"),
        yaxis=dict(tickmode="array", tickvals=yc, ticktext=[f"L{l}" for l in layers],
                   title=dict(text="layer"), showgrid=False, zeroline=False,
                   autorange="reversed", scaleanchor="x", constrain="domain"),
        shapes=shapes, margin=dict(l=60, r=20, t=90, b=20))
    height = int(np.clip(n_layers * CELL_PX + 130, 240, 900))
    return _fast([image, cells], layout,
                 title or f"{kind}: every layer and head (each on its own colour range)",
                 height)
