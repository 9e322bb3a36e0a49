"""What the UI modules share: the error guard every callback wears, display tables, the
session's clip and Praat settings, the session's state, plot and button builders, and the event
options.
"""

from __future__ import annotations

import functools
import logging
import time
from types import SimpleNamespace

import gradio as gr
import numpy as np

from echo_core.errors import EchoError
from workbench import analysis as A

log = logging.getLogger("echo_workbench")

MAX_FILE_SIZE = "200mb"  # per uploaded file (audio and checkpoints)
PRIVATE = dict(api_visibility="private")  # events without an API endpoint
QUIET = dict(show_progress="hidden", **PRIVATE)
LIVE = dict(trigger_mode="always_last", show_progress="hidden")  # sliders: the last value wins
ERROR_TITLE = "Cannot do that"  # what the page says above a library error


def guarded(fn):
    """Library errors become gr.Error (a message in the page); tracebacks stay in the log."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            out = fn(*args, **kwargs)
        except gr.Error:
            raise
        except EchoError as e:
            raise gr.Error(str(e), title=ERROR_TITLE) from e
        except Exception as e:  # a bug, not the user's fault: say so briefly
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(f"Unexpected {type(e).__name__}: {e}", title="Internal error") from e
        log.info("%s: %.0f ms", fn.__name__, (time.perf_counter() - start) * 1000)
        return out

    return wrapper


def note_update(text: str):
    return gr.update(value=text, visible=bool(text))


def table(df, digits: int = 4):
    """A DataFrame for display: floats to ``digits`` significant digits (CSVs keep them all)."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype.kind == "f":
            out[col] = ["—" if not np.isfinite(v) else f"{v:.{digits}g}" for v in out[col]]
    return out


def _settings(state: dict | None):
    return A.praat_settings(**(state or {}))


def session_clip(key: str | None) -> A.Clip:
    """The session's clip; with none loaded yet, the message names the controls that load one."""
    if not key:
        raise gr.Error("no clip loaded: upload or record audio, or pick an example clip",
                       title=ERROR_TITLE)
    return A.get_clip(key)


def session_state() -> SimpleNamespace:
    """The small per-session keys every view reads (built in place, inside gr.Blocks)."""
    return SimpleNamespace(clip_key=gr.State(None), praat=gr.State(None),
                           active_tab=gr.State("pitch"), model_key=gr.State(None),
                           compare_state=gr.State(None),
                           uploads=gr.State([]))  # checkpoint ids this session uploaded


def _plot(label: str, elem_id: str, **kw) -> gr.Plot:
    return gr.Plot(label=label, show_label=False, elem_id=elem_id, **kw)


def _export_button() -> gr.Button:
    return gr.Button("Export this view (PNG, HTML, CSV)", size="sm")


def tab_selected(tab, name: str, active_tab):
    """Tab.select: remember the visible tab (chain its redraw: hidden plots render too small)."""
    return tab.select(lambda: name, None, active_tab, **QUIET)
