"""Large maps as images: colour-mapped on the server, sent as one small PNG, drawn by the
browser in one ``drawImage``.

A 512 x 512 plotly heatmap is 262,144 cells the browser must colour one by one (seconds of main
thread per update, ~1.4 MB of base64 each); the same map as an image paints in milliseconds.
Maps travel as 8-bit palette PNGs: each cell is an index into the colour scale's table (NaN: a
transparent entry), so colour mapping is one index computation and zlib at its fastest level
compresses one byte per cell (measured on 512 x 512 maps: ~2.5-7 ms and 2-170 kB, against 7-38 ms
for lossless RGBA WebP at its fastest setting; a theta step encodes six maps). Lossless: the
picture is exactly the colour-mapped values. Values stay readable where the user points: figures
sample a coarse grid of them (:func:`hover_grid`) for a hover trace or for the page's hover
script (``workbench.figures._map_traces``).
"""

from __future__ import annotations

import base64
import functools
import io

import numpy as np
import plotly.colors as pc

LUT_SIZE = 255  # colours of a scale's table; index LUT_SIZE is transparent (NaN)
NAN_INDEX = LUT_SIZE
NAN_RGBA = (0, 0, 0, 0)  # NaN cells (masked, unvoiced) are transparent: the page shows through
PNG_LEVEL = 1  # zlib's fastest real compression: level 6 is ~1.5x slower for ~10% smaller files


def colour_table(colorscale) -> np.ndarray:
    """(LUT_SIZE + 1, 4) uint8 RGBA of a plotly colour scale, a name ("RdBu_r", "Viridis", ...)
    or explicit [[position, colour], ...] stops, sampled evenly (the colours plotly.js would
    give the heatmap), then the transparent entry of NaN cells."""
    key = colorscale if isinstance(colorscale, str) else tuple(
        (float(p), str(c)) for p, c in colorscale)
    return _colour_table(key)


@functools.lru_cache(maxsize=32)
def _colour_table(colorscale) -> np.ndarray:
    scale = pc.get_colorscale(colorscale) if isinstance(colorscale, str) else [
        list(stop) for stop in colorscale]
    samples = pc.sample_colorscale(scale, np.linspace(0.0, 1.0, LUT_SIZE).tolist(),
                                   colortype="tuple")
    rgb = np.clip(np.round(np.asarray(samples, dtype=np.float64) * 255.0), 0, 255)
    table = np.concatenate([rgb, np.full((LUT_SIZE, 1), 255.0)], axis=1).astype(np.uint8)
    table = np.concatenate([table, np.array([NAN_RGBA], np.uint8)])
    table.setflags(write=False)
    return table


def colour_indices(z: np.ndarray, zmin: float, zmax: float) -> np.ndarray:
    """(H, W) uint8: ``z`` mapped linearly from [zmin, zmax] onto the LUT_SIZE colours (values
    outside are clipped), NaN to NAN_INDEX."""
    z = np.asarray(z, dtype=np.float32)
    span = float(zmax) - float(zmin)
    scaled = (z - float(zmin)) / (span if span > 0 else 1.0)
    index = np.clip(np.nan_to_num(scaled, nan=0.0) * (LUT_SIZE - 1) + 0.5, 0, LUT_SIZE - 1)
    index = index.astype(np.uint8)
    index[~np.isfinite(z)] = NAN_INDEX
    return index


def colourise(z: np.ndarray, zmin: float, zmax: float, colorscale) -> np.ndarray:
    """(H, W, 4) uint8: ``z`` mapped linearly from [zmin, zmax] onto the colour scale (values
    outside are clipped), NaN transparent."""
    return colour_table(colorscale)[colour_indices(z, zmin, zmax)]


def map_data_uri(indices: np.ndarray, colorscale) -> str:
    """A ``data:image/png;base64,...`` URI of (H, W) colour indices (:func:`colour_indices`,
    row 0 at the top): an 8-bit palette PNG of the scale's table, NAN_INDEX transparent."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(indices, dtype=np.uint8), "P")
    table = colour_table(colorscale)
    image.putpalette(table[:, :3].ravel().tobytes())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_LEVEL, transparency=NAN_INDEX)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def mosaic(maps: np.ndarray, gap: int, zrange) -> np.ndarray:
    """(R*(s+gap)-gap, C*(s+gap)-gap) uint8 colour indices (:func:`colour_indices`): the
    (R, C, s, s) maps tiled row by row with ``gap`` transparent pixels between them: many small
    maps as one image (one subplot for the browser to lay out instead of R x C). ``zrange``:
    (lo, hi) shared by every tile, or a function of one tile giving its own."""
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 4:
        raise ValueError(f"maps must be (rows, cols, s, s), got shape {maps.shape}")
    n_rows, n_cols, rows, cols = maps.shape
    out = np.full((n_rows * (rows + gap) - gap, n_cols * (cols + gap) - gap), NAN_INDEX,
                  np.uint8)
    for i in range(n_rows):
        for j in range(n_cols):
            lo, hi = zrange(maps[i, j]) if callable(zrange) else zrange
            top, left = i * (rows + gap), j * (cols + gap)
            out[top:top + rows, left:left + cols] = colour_indices(maps[i, j], lo, hi)
    return out


def decode_image(uri: str) -> np.ndarray:
    """The (H, W, 4) uint8 pixels of an image data URI (tests read images back)."""
    from PIL import Image

    raw = base64.b64decode(uri.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(raw)).convert("RGBA"))


HOVER_CELLS = 64  # hover grid: at most this many cells a side over an image map (~45 kB)


def hover_grid(n: int, cells: int = HOVER_CELLS) -> np.ndarray:
    """Indices of at most ``cells`` evenly spread rows (or columns) of an n-long axis, first and
    last included: where the invisible hover heatmap samples the map."""
    if n <= cells:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, cells)).astype(np.intp))
