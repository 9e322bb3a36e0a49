"""Export figures (PNG via kaleido, standalone HTML), tables (CSV) and a zip report bundle.

Files go to a private temporary folder per export (under the system temp dir, which the app
serves for downloads); folders older than an hour are removed on the next export, so exports
never accumulate. PNG rendering uses kaleido with Debian's Chromium (``BROWSER_PATH``), kept
running between exports (``kaleido.start_sync_server``): starting Chromium cost ~5 s per export,
rendering a figure in a running one ~0.5 s. :func:`warm_up` starts it in the background.

Maps are plotly image traces (lossless WebP). For a static export plotly.js re-samples such an
image pixel by pixel in JavaScript unless the trace says ``zsmooth="fast"`` (then the browser
scales the image itself): ~0.3 s per map, most of a report's time. :func:`png_ready` sets it on
the copies the PNGs are rendered from; the pages and the HTML files keep their settings.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Mapping

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

EXPORT_ROOT = Path(tempfile.gettempdir()) / "echo-workbench-exports"
MAX_AGE_SECONDS = 3600
PNG_SIZE = dict(width=1200, scale=1)  # height: each figure's own
KALEIDO_TABS = 2  # figures rendered at once (the machine has two cores)
_KALEIDO_LOCK = threading.Lock()  # one Chromium at a time: the machine has two cores

if os.path.exists("/usr/bin/chromium"):  # Debian's Chromium: kaleido cannot download one here
    os.environ.setdefault("BROWSER_PATH", "/usr/bin/chromium")
log = logging.getLogger(__name__)


def slug(name: str) -> str:
    """A safe file stem from a display name ("Pitch bias (scale 1)" -> "pitch_bias_scale_1")."""
    stem = re.sub(r"[^a-zA-Z0-9]+", "_", name.strip().lower()).strip("_")
    return stem or "item"


def new_folder(prefix: str = "export") -> Path:
    """A fresh folder for one export, after removing expired ones."""
    EXPORT_ROOT.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in EXPORT_ROOT.iterdir():
        try:
            if now - old.stat().st_mtime > MAX_AGE_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    return Path(tempfile.mkdtemp(prefix=f"{slug(prefix)}-", dir=EXPORT_ROOT))


def write_html(fig: go.Figure, path: Path, include_plotlyjs: bool | str = True) -> Path:
    """An HTML file that opens offline: plotly.js inlined (True), or "directory": one shared
    plotly.min.js beside the files (the report bundle, so the zip holds it once)."""
    pio.write_html(fig, str(path), include_plotlyjs=include_plotlyjs, full_html=True)
    return path


_SERVER: dict = {"started": False}


def _kaleido_server() -> None:
    """Start kaleido's persistent Chromium once per process (stopped at exit); callers hold
    _KALEIDO_LOCK."""
    if _SERVER["started"]:
        return
    import kaleido

    kaleido.start_sync_server(n=KALEIDO_TABS, silence_warnings=True)
    atexit.register(kaleido.stop_sync_server, silence_warnings=True)
    _SERVER["started"] = True


def warm_up() -> None:
    """Start Chromium for PNG exports in a background thread, so the first export does not
    pay its start-up; failures are left for the export itself to report."""
    def start():
        try:
            with _KALEIDO_LOCK:
                _kaleido_server()
                pio.to_image(go.Figure(), format="png", width=10, height=10)
        except Exception:  # noqa: BLE001 - the real export says what went wrong
            log.info("PNG export warm-up failed", exc_info=True)

    threading.Thread(target=start, name="kaleido-warm-up", daemon=True).start()


def png_ready(fig: go.Figure) -> go.Figure:
    """A copy of ``fig`` whose image traces the browser scales itself (``zsmooth="fast"``,
    where the trace leaves zsmooth unset), so plotly.js does not re-sample them pixel by
    pixel for the static image; other traces are untouched."""
    images = [i for i, t in enumerate(fig.data)
              if t.type == "image" and t.source and t.zsmooth is None]
    if not images:
        return fig
    out = go.Figure(fig)
    for i in images:
        out.data[i].zsmooth = "fast"
    return out


PNG_FAILED_NOTE = "PNG_EXPORT_FAILED.txt"  # written in place of the PNGs when none could be


def write_pngs(figures: Mapping[str, go.Figure], folder: Path) -> list[Path]:
    """Render several figures to PNG in one kaleido session (one browser start for all).

    If no browser can render them, the exports go on without PNGs and a note file says why.
    """
    if not figures:
        return []
    paths = [folder / f"{slug(name)}.png" for name in figures]
    heights = [int(fig.layout.height or 500) for fig in figures.values()]
    try:
        with _KALEIDO_LOCK:
            _kaleido_server()
            pio.write_images([png_ready(f) for f in figures.values()], [str(p) for p in paths],
                             format="png",
                             width=PNG_SIZE["width"], height=heights, scale=PNG_SIZE["scale"])
    except Exception as e:  # kaleido / Chromium missing or crashed: keep HTML and CSV
        log.exception("PNG export failed")
        note = folder / PNG_FAILED_NOTE
        browser = os.environ.get("BROWSER_PATH")
        note.write_text(f"PNG rendering needs Chromium (BROWSER_PATH={browser}) and failed: "
                        f"{type(e).__name__}: {e}\nThe HTML files hold the same figures, "
                        "interactive.\n", encoding="utf-8")
        return [note]
    return paths


def write_csv(table: pd.DataFrame, path: Path) -> Path:
    table.to_csv(path, index=False)
    return path


def export_view(name: str, figures: Mapping[str, go.Figure], tables: Mapping[str, pd.DataFrame],
                png: bool = True) -> list[str]:
    """Every figure of a view as PNG and HTML and every table as CSV; returns the file paths."""
    folder = new_folder(name)
    files: list[Path] = []
    for title, fig in figures.items():
        files.append(write_html(fig, folder / f"{slug(title)}.html"))
    if png:
        files.extend(write_pngs(figures, folder))
    for title, table in tables.items():
        files.append(write_csv(table, folder / f"{slug(title)}.csv"))
    return [str(p) for p in sorted(files)]


def report_bundle(figures: Mapping[str, go.Figure], tables: Mapping[str, pd.DataFrame],
                  texts: Mapping[str, str], settings: Mapping, name: str = "echo_report",
                  png: bool = True) -> str:
    """One zip with figures/ (PNG + HTML), tables/ (CSV), the text report(s) and settings.json.

    The PNGs (Chromium, through kaleido: most of a report's time) render in a thread, into a
    folder of their own, while this one writes and zips everything else; they go in last
    under figures/, stored as they are (a PNG is compressed already)."""
    folder = new_folder(name)
    staging, png_folder = folder / name, folder / "png"
    for sub in (staging / "figures", staging / "tables", png_folder):
        sub.mkdir(parents=True)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-png") as pool:
        pngs = pool.submit(write_pngs, figures, png_folder) if png else None
        for title, fig in figures.items():
            write_html(fig, staging / "figures" / f"{slug(title)}.html",
                       include_plotlyjs="directory")
        for title, table in tables.items():
            write_csv(table, staging / "tables" / f"{slug(title)}.csv")
        for title, text in texts.items():
            (staging / f"{slug(title)}.txt").write_text(text, encoding="utf-8")
        (staging / "settings.json").write_text(json.dumps(settings, indent=2, default=str)
                                               + "\n", encoding="utf-8")
        archive = folder / f"{name}.zip"
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(staging.rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(folder))
            for path in sorted(pngs.result() if pngs else []):
                stored = zipfile.ZIP_STORED if path.suffix == ".png" else zipfile.ZIP_DEFLATED
                zf.write(path, f"{name}/figures/{path.name}", compress_type=stored)
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(png_folder, ignore_errors=True)
    return str(archive)


def write_text(text: str, filename: str, prefix: str = "download") -> str:
    """A single text file (e.g. the F0 CSV) in a fresh export folder."""
    path = new_folder(prefix) / filename
    path.write_text(text, encoding="utf-8")
    return str(path)
