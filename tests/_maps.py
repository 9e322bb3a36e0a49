"""Read the maps of a figure whichever way they travel: a plain heatmap (small maps, clickable
cells) or an image whose hover values ride in ``meta.echo_hover`` (maps a slider redraws)."""

from __future__ import annotations

import numpy as np


def map_layers(fig) -> list[dict]:
    """One dict per map (name, z, x, y, zmin, zmax): for an image map z is its hover grid."""
    out = []
    for t in fig.data:
        hover = (t.meta or {}).get("echo_hover") if t.type == "image" else None
        if hover is not None:
            out.append(dict(name=hover["name"], z=np.asarray(hover["z"]),
                            x=np.asarray(hover["x"]), y=np.asarray(hover["y"]),
                            zmin=hover["zmin"], zmax=hover["zmax"], labels=hover["labels"]))
        elif t.type == "heatmap" and t.opacity != 0:
            out.append(dict(name=t.name, z=np.asarray(t.z, dtype=float), x=t.x, y=t.y,
                            zmin=t.zmin, zmax=t.zmax, labels=None))
    return out


def colour_bars(fig) -> list[dict]:
    """(title, min, max) of every colour bar shown, from heatmaps or one-point scatters."""
    bars = []
    for t in fig.data:
        if t.type == "heatmap" and t.showscale:
            bars.append(dict(title=t.colorbar.title.text, min=t.zmin, max=t.zmax))
        elif t.type == "scatter" and t.marker is not None and t.marker.showscale:
            bars.append(dict(title=t.marker.colorbar.title.text, min=t.marker.cmin,
                             max=t.marker.cmax))
    return bars
