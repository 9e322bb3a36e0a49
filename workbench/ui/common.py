"""What the UI modules share: the error guard every callback wears and the forgiving form of it
the page's own events use, display tables, the session's clip and Praat settings, the session's
state, plot and button builders, and the event options.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from types import SimpleNamespace

import gradio as gr
import numpy as np

from echo_core.errors import ClipTooLongError, EchoError
from workbench import analysis as A

log = logging.getLogger("echo_workbench")

MAX_FILE_SIZE = "200mb"  # per uploaded file (audio and checkpoints)
PRIVATE = dict(api_visibility="private")  # events without an API endpoint
QUIET = dict(show_progress="hidden", **PRIVATE)
LIVE = dict(trigger_mode="always_last", show_progress="hidden")  # sliders: the last value wins
# Runs in the page before the event goes to the server: wait until the step the page is painting
# itself (live_views.js) is drawn, so Gradio's work for the event does not delay those pixels.
AFTER_LIVE_PAINT = dict(js="(...args) => window.echoLiveSettled ? "
                           "window.echoLiveSettled(...args) : args")
ERROR_TITLE = "Cannot do that"  # what the page says above a library error


# an absolute path (two or more segments, or one after a space): what a server must not show
_PATH = re.compile(r"(?<![\w.:/~-])/(?:[^\s/'\"`:;,()\[\]]+/)+([^\s/'\"`:;,()\[\]]+)")


class InputError(gr.Error):
    """Something the user can fix (a file that is not audio, a value out of range, a choice not
    made). API clients get it as an error; the page's own events show it beside the control
    and keep what was shown before (see :func:`forgiving`)."""

    def __init__(self, message: str, title: str = ERROR_TITLE):
        super().__init__(message, title=title)


def user_message(e: EchoError) -> str:
    """A library error as the page says it: server paths cut to the file's name (a temp folder
    means nothing to a user and tells a stranger about the server), and advice a page user can
    follow instead of the library's (raise ``max_seconds``)."""
    if isinstance(e, ClipTooLongError):
        limit = (f"{e.limit / 60:g} min" if e.limit >= 60 and e.limit % 60 == 0
                 else f"{e.limit:g} s")
        text = (f"{e.what} is {e.seconds:.1f} s long, over the limit of {e.limit:g} s: clips up "
                f"to {limit} are accepted; trim the clip")
    else:
        text = str(e)
    return _PATH.sub(r"\1", text)


def guarded(fn):
    """Library errors become InputError (a gr.Error: API clients see the message); anything
    else is a bug: logged with its traceback, shown briefly as an internal error."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            out = fn(*args, **kwargs)
        except gr.Error:
            raise
        except EchoError as e:
            raise InputError(user_message(e)) from e
        except Exception as e:  # a bug, not the user's fault: say so briefly
            log.exception("unexpected error in %s", fn.__name__)
            said = _PATH.sub(r"\1", str(e))
            raise gr.Error(f"Unexpected {type(e).__name__}: {said}", title="Internal error") from e
        log.info("%s: %.0f ms", fn.__name__, (time.perf_counter() - start) * 1000)
        return out

    return wrapper


def forgiving(fn, n_outputs: int, kept: str = "", on_error=None):
    """The page's form of a guarded callback, with one more output: a message Markdown.

    A gr.Error puts an "Error" badge over every output (hiding the last good clip, plot or radio
    and blocking clicks until dismissed). Here an InputError instead becomes a warning toast and
    the message beside the control, and the outputs keep what they showed (gr.skip), or what
    ``on_error(message, *args)`` returns for them. ``kept`` says what stays (e.g. "The clip
    analysed before stays loaded."). Bugs still raise. A success hides the message. API
    endpoints keep the raising callback (:func:`api_endpoint`).
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            out = fn(*args, **kwargs)
        except InputError as e:
            gr.Warning(e.message, title=e.title)
            outs = (on_error(e.message, *args, **kwargs) if on_error else [gr.skip()] * n_outputs)
            return (*outs, note_update(f"⚠️ {e.message}" + (f"  \n{kept}" if kept else "")))
        outs = (out,) if n_outputs == 1 else tuple(out)
        return (*outs, note_update(""))

    return wrapper


def on_page(trigger, fn, inputs, outputs: list, note, kept: str = "", on_error=None, **kwargs):
    """Wire ``fn`` (guarded) to a page event, forgiving: input errors go to ``note``."""
    return trigger(forgiving(fn, len(outputs), kept, on_error), inputs, outputs + [note],
                   **PRIVATE, **kwargs)


def api_endpoint(fn, inputs, outputs: list, api_name: str, **kwargs):
    """The same callback as a named endpoint no page control triggers: API clients call it by
    name and get input errors as errors, while the page's event (:func:`on_page`) forgives."""
    return gr.on([], fn, inputs, outputs, api_name=api_name, **kwargs)


def message_box(elem_id: str) -> gr.Markdown:
    """The hidden Markdown beside a control where its input errors appear."""
    return gr.Markdown(visible=False, elem_classes="warn", elem_id=elem_id)


def clamp_message(label: str, value, low: float, high: float) -> str:
    """What the page says when a typed value falls outside a slider's range ("" inside it)."""
    try:
        typed = float(value)
    except (TypeError, ValueError):
        return ""
    if low <= typed <= high:
        return ""
    used = min(max(typed, low), high)
    return (f"⚠️ {label}: {typed:g} is outside the accepted range {low:g}–{high:g}; "
            f"{used:g} is used.")


def say_clamped(sliders, note) -> None:
    """A value typed into a slider's number box outside its range is clamped by the page
    without a word; say which value is used and the accepted range. The release event carries
    the typed value before the clamp (preprocess=False: Gradio's own bounds check would reject
    it before the callback could explain it)."""
    for slider in sliders:
        def said(value, label=slider.label, low=slider.minimum, high=slider.maximum):
            return note_update(clamp_message(label, value, low, high))

        slider.release(said, slider, note, preprocess=False, **QUIET, **AFTER_LIVE_PAINT)


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
        raise InputError("no clip loaded: upload or record audio, or pick an example clip")
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
