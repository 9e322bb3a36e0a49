"""What a figure tells the page's navigation script (``workbench/ui/playhead.js``).

The script knows no plot ids: each figure declares what in it is navigable, in plotly's free
``meta`` fields, so a figure drawn anywhere gets the playhead and the clicks by construction and
a re-rendered plot keeps them. Plain dicts, no plotly import: the builders add them to theirs.

* ``layout.meta.echo_time = {"xaxis2": 62.5, ...}``: those x axes are time-like, in units per
  second of audio (1 for seconds, 125 for 8 ms frames); the playhead is drawn on them.
* ``trace.meta.echo_seek = "x"``: a click seeks the player to the clicked x (through the
  trace's x axis scale above).
* ``trace.meta.echo_seek = "span"``: each cell's customdata starts with (t0, t1) in seconds;
  hovering marks that stretch of audio on the player, a click plays it.
* ``trace.meta.echo_pick = "nav-head"``: a click sends ``{kind, layer, head}`` (customdata
  (layer, head), ``trace.meta.kind``) to the hidden textbox of that elem_id.
* ``trace.meta.echo_hover = {"name", "x", "y", "z", "zmin", "zmax", "labels"}``: a map drawn as
  an image with no hover trace; the page (``workbench/ui/map_hover.js``) shows the value of the
  grid cell nearest the pointer: ``z[row][col]`` at ``(x[col], y[row])`` in the trace's axis
  units, with the labels given (and ``|x - y|`` as the lag when ``labels["lag"]``).
* ``layout.meta.echo_range = "nav-range"``: a horizontal drag-select sends ``[t0, t1]`` (s)
  to the hidden textbox of that elem_id.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np


def time_axes(layout: dict, per_second: Mapping[str, float]) -> dict:
    """``layout`` with its time-like x axes declared (axis layout key -> units per second)."""
    meta = dict(layout.get("meta") or {})
    meta["echo_time"] = {**meta.get("echo_time", {}),
                         **{k: float(v) for k, v in per_second.items()}}
    return {**layout, "meta": meta}


def range_target(layout: dict, elem_id: str) -> dict:
    """``layout`` whose horizontal drag-select sends its time range to ``elem_id``; the drag
    selects (zoom stays in the mode bar)."""
    meta = {**(layout.get("meta") or {}), "echo_range": elem_id}
    return {**layout, "meta": meta, "dragmode": "select", "selectdirection": "h"}


def seek_on_click(trace: dict, how: str = "x") -> dict:
    """``trace`` whose clicks seek the player: ``"x"`` to the clicked x, ``"span"`` to the
    (t0, t1) at the start of the cell's customdata (and hover marks that stretch)."""
    if how not in ("x", "span"):
        raise ValueError(f"seek how must be 'x' or 'span', got {how!r}")
    return {**trace, "meta": {**(trace.get("meta") or {}), "echo_seek": how}}


def pick_on_click(trace: dict, kind: str, elem_id: str = "nav-head") -> dict:
    """``trace`` whose clicks open a head: customdata (layer, head) per cell."""
    return {**trace, "meta": {**(trace.get("meta") or {}), "echo_pick": elem_id, "kind": kind}}


def hover_values(name: str, x, y, z, zmin: float, zmax: float, *, x_label: str = "x",
               y_label: str = "y", z_label: str = "value", lag: bool = False) -> dict:
    """The meta of an image map whose hover the page draws: a (rows, cols) grid of values
    ``z`` at coordinates ``x`` (columns) and ``y`` (rows), float32 (they travel as typed arrays)."""
    z = np.asarray(z, dtype=np.float32)
    x, y = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float32)
    if z.shape != (y.size, x.size):
        raise ValueError(f"hover grid z {z.shape} does not match y {y.size} x x {x.size}")
    return {"echo_hover": {"name": name, "x": x, "y": y, "z": z, "zmin": float(zmin),
                           "zmax": float(zmax),
                           "labels": {"x": x_label, "y": y_label, "z": z_label, "lag": lag}}}
