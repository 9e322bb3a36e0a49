"""Large maps as images: colour-mapped on the server, sent as one PNG, drawn by the browser in
one ``drawImage``.

A 512 x 512 plotly heatmap is 262,144 cells the browser must colour one by one (seconds of main
thread per update, ~1.4 MB of base64 each); the same map as a PNG is tens of kilobytes and paints
in milliseconds. Values stay readable where the user points: figures lay a coarse, invisible
heatmap (at most :data:`HOVER_CELLS` a side) over the image for hover and for the colour bar.
"""

from __future__ import annotations

import base64
import functools
import io

import numpy as np
import plotly.colors as pc

LUT_SIZE = 256
NAN_RGBA = (0, 0, 0, 0)  # NaN cells (masked, unvoiced) are transparent: the page shows through
PNG_COMPRESSION = 3  # zlib level: smooth maps compress well already at low levels (fast)


@functools.lru_cache(maxsize=16)
def colour_table(colorscale: str) -> np.ndarray:
    """(LUT_SIZE, 4) uint8 RGBA of a named plotly colour scale ("RdBu_r", "Viridis", ...),
    sampled evenly: the same colours plotly.js would give the heatmap."""
    scale = pc.get_colorscale(colorscale)
    samples = pc.sample_colorscale(scale, np.linspace(0.0, 1.0, LUT_SIZE).tolist(),
                                   colortype="tuple")
    rgb = np.clip(np.round(np.asarray(samples, dtype=np.float64) * 255.0), 0, 255)
    return np.concatenate([rgb, np.full((LUT_SIZE, 1), 255.0)], axis=1).astype(np.uint8)


def colourise(z: np.ndarray, zmin: float, zmax: float, colorscale: str) -> np.ndarray:
    """(H, W, 4) uint8: ``z`` mapped linearly from [zmin, zmax] onto the colour scale (values
    outside are clipped), NaN transparent."""
    z = np.asarray(z, dtype=np.float32)
    span = float(zmax) - float(zmin)
    scaled = (z - float(zmin)) / (span if span > 0 else 1.0)
    index = np.clip(np.nan_to_num(scaled, nan=0.0) * (LUT_SIZE - 1) + 0.5, 0, LUT_SIZE - 1)
    rgba = colour_table(colorscale)[index.astype(np.intp)]
    rgba[~np.isfinite(z)] = NAN_RGBA
    return rgba


def png_data_uri(rgba: np.ndarray) -> str:
    """A ``data:image/png;base64,...`` URI of an (H, W, 4) uint8 image (row 0 at the top)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba), "RGBA").save(
        buffer, format="PNG", compress_level=PNG_COMPRESSION)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_png(uri: str) -> np.ndarray:
    """The (H, W, 4) uint8 pixels of a PNG data URI (tests and exports read images back)."""
    from PIL import Image

    raw = base64.b64decode(uri.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(raw)).convert("RGBA"))


HOVER_CELLS = 96  # hover grid: at most this many cells a side over an image map


def hover_grid(n: int, cells: int = HOVER_CELLS) -> np.ndarray:
    """Indices of at most ``cells`` evenly spread rows (or columns) of an n-long axis, first and
    last included: where the invisible hover heatmap samples the map."""
    if n <= cells:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, cells)).astype(np.intp))
