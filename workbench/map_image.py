"""Large maps as images: colour-mapped on the server, sent as one lossless WebP, drawn by the
browser in one ``drawImage``.

A 512 x 512 plotly heatmap is 262,144 cells the browser must colour one by one (seconds of main
thread per update, ~1.4 MB of base64 each); the same map as a lossless WebP is ~10-100 kB
(measured on a 512 x 512 similarity map: 2-9 kB, against 73 kB as PNG and 45-80 kB as lossy WebP)
and paints in milliseconds. Lossless: the picture is exactly the colour-mapped values. Values
stay readable where the user points: figures sample a coarse grid of them (:func:`hover_grid`)
for a hover trace or for the page's hover script (``workbench.figures._map_traces``).
"""

from __future__ import annotations

import base64
import functools
import io

import numpy as np
import plotly.colors as pc

LUT_SIZE = 256
NAN_RGBA = (0, 0, 0, 0)  # NaN cells (masked, unvoiced) are transparent: the page shows through
# Lossless WebP at its fastest setting (quality = effort 0, method 0): a 512 x 512 map encodes in
# ~6 ms instead of ~35 ms at effort 30, for a file about 10% larger (measured 2,016 against
# 1,858 bytes on a smooth similarity map). Six maps are encoded per theta move.
WEBP_EFFORT = 0
WEBP_METHOD = 0


def colour_table(colorscale) -> np.ndarray:
    """(LUT_SIZE, 4) uint8 RGBA of a plotly colour scale, a name ("RdBu_r", "Viridis", ...) or
    explicit [[position, colour], ...] stops, sampled evenly: the colours plotly.js would
    give the heatmap."""
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
    return np.concatenate([rgb, np.full((LUT_SIZE, 1), 255.0)], axis=1).astype(np.uint8)


def colourise(z: np.ndarray, zmin: float, zmax: float, colorscale) -> np.ndarray:
    """(H, W, 4) uint8: ``z`` mapped linearly from [zmin, zmax] onto the colour scale (values
    outside are clipped), NaN transparent."""
    z = np.asarray(z, dtype=np.float32)
    span = float(zmax) - float(zmin)
    scaled = (z - float(zmin)) / (span if span > 0 else 1.0)
    index = np.clip(np.nan_to_num(scaled, nan=0.0) * (LUT_SIZE - 1) + 0.5, 0, LUT_SIZE - 1)
    rgba = colour_table(colorscale)[index.astype(np.intp)]
    rgba[~np.isfinite(z)] = NAN_RGBA
    return rgba


def mosaic(maps: np.ndarray, colorscale, gap: int, zrange) -> np.ndarray:
    """(R*(s+gap)-gap, C*(s+gap)-gap, 4) uint8: the (R, C, s, s) maps colour-mapped and tiled row
    by row with ``gap`` transparent pixels between them: many small maps as one image (one
    subplot for the browser to lay out instead of R x C). ``zrange``: (lo, hi) shared by every
    tile, or a function of one tile giving its own."""
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 4:
        raise ValueError(f"maps must be (rows, cols, s, s), got shape {maps.shape}")
    n_rows, n_cols, rows, cols = maps.shape
    out = np.zeros((n_rows * (rows + gap) - gap, n_cols * (cols + gap) - gap, 4), np.uint8)
    for i in range(n_rows):
        for j in range(n_cols):
            lo, hi = zrange(maps[i, j]) if callable(zrange) else zrange
            top, left = i * (rows + gap), j * (cols + gap)
            out[top:top + rows, left:left + cols] = colourise(maps[i, j], lo, hi, colorscale)
    return out


def image_data_uri(rgba: np.ndarray) -> str:
    """A ``data:image/webp;base64,...`` URI of an (H, W, 4) uint8 image (row 0 at the top),
    lossless, alpha kept."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba), "RGBA").save(
        buffer, format="WEBP", lossless=True, quality=WEBP_EFFORT, method=WEBP_METHOD)
    return "data:image/webp;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


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
