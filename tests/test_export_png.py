"""PNG export of image-trace maps: the browser scales the image (zsmooth "fast") and the PNG
still shows the map's pixels where the map is; the report bundle renders its PNGs beside the
rest and holds each file once."""

import zipfile

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from PIL import Image

from workbench import export as X
from workbench.map_image import LUT_SIZE, map_data_uri


def _two_colour_map() -> go.Figure:
    """A 64 x 64 image as the app sends maps (map_image.map_data_uri: a palette PNG): left half
    the scale's first colour, right half its last, filling the plot area."""
    indices = np.zeros((64, 64), np.uint8)
    indices[:, 32:] = LUT_SIZE - 1
    source = map_data_uri(indices, [[0.0, "rgb(255,0,0)"], [1.0, "rgb(0,0,255)"]])
    fig = go.Figure(go.Image(source=source, x0=0, dx=1, y0=0, dy=1))
    fig.add_trace(go.Scatter(x=[0, 63], y=[0, 63], mode="markers", opacity=0))
    fig.update_layout(height=X.PNG_SIZE["width"],  # square, as wide as the PNG
                       margin=dict(l=0, r=0, t=0, b=0), showlegend=False)
    fig.update_xaxes(visible=False, range=[-0.5, 63.5])
    fig.update_yaxes(visible=False, range=[63.5, -0.5])
    return fig


def test_png_ready_sets_fast_scaling_on_a_copy_only():
    fig = _two_colour_map()
    ready = X.png_ready(fig)
    assert ready.data[0].zsmooth == "fast" and fig.data[0].zsmooth is None
    assert ready.data[1].type == "scatter"
    chosen = go.Figure(go.Image(source=fig.data[0].source, zsmooth=False))
    assert X.png_ready(chosen) is chosen  # a trace that chose its smoothing keeps it
    plain = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
    assert X.png_ready(plain) is plain


def test_exported_png_shows_the_map_where_it_is(tmp_path):
    [path] = X.write_pngs({"map": _two_colour_map()}, tmp_path)
    png = np.asarray(Image.open(path).convert("RGB")).astype(int)
    h, w, _ = png.shape
    rows = slice(h // 4, 3 * h // 4)
    left, right = png[rows, w // 8: 3 * w // 8], png[rows, 5 * w // 8: 7 * w // 8]
    assert (left[..., 0] > 230).all() and (left[..., 2] < 25).all(), "left half is not red"
    assert (right[..., 2] > 230).all() and (right[..., 0] < 25).all(), "right half is not blue"


def _bundle_names(tmp_path, monkeypatch, **kw):
    monkeypatch.setattr(X, "EXPORT_ROOT", tmp_path)
    figures = {"map": _two_colour_map(), "line": go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))}
    path = X.report_bundle(figures, {"t": pd.DataFrame({"a": [1]})}, {"notes": "n"},
                           {"theta": 1}, **kw)
    with zipfile.ZipFile(path) as zf:
        return zf.infolist()


def test_report_bundle_holds_each_file_once_with_pngs_rendered_beside(tmp_path, monkeypatch):
    """The PNGs render in a thread while the rest is written and zipped: each figure's PNG
    (stored, it is compressed already) and HTML is in the zip exactly once, beside one
    plotly.js, the table, the text and the settings."""
    infos = _bundle_names(tmp_path, monkeypatch)
    names = [i.filename for i in infos]
    assert len(names) == len(set(names))
    short = sorted(n.split("/", 1)[1] for n in names)
    assert short == ["figures/line.html", "figures/line.png", "figures/map.html",
                     "figures/map.png", "figures/plotly.min.js", "notes.txt", "settings.json",
                     "tables/t.csv"]
    stored = {i.filename.rsplit("/", 1)[1]: i.compress_type for i in infos}
    assert stored["map.png"] == stored["line.png"] == 0  # ZIP_STORED
    assert stored["map.html"] == 8  # ZIP_DEFLATED


def test_report_bundle_says_why_when_no_png_could_be_rendered(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("no browser")

    monkeypatch.setattr(X.pio, "write_images", fail)
    names = [i.filename.split("/", 1)[1] for i in _bundle_names(tmp_path, monkeypatch)]
    assert names.count(f"figures/{X.PNG_FAILED_NOTE}") == 1
    assert not [n for n in names if n.endswith(".png")]
