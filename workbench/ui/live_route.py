"""Slider steps painted by the page itself: one plain HTTP route beside Gradio's.

Measured in Chromium (benchmarks/RESULTS.md): the server builds a theta step's five outputs in
~0.1-0.2 s, but Gradio's front end then spends ~0.3-0.4 s on the event itself (dispatch, status,
state) and ~0.1 s per updated plot (its Plot component re-lays out every figure), so a theta move
painted in ~1 s. Here the page (live_views.js) posts the slider values to ``ROUTE``; the server
runs the *same* callbacks (clip_views.cb_rotary, cb_variants, cb_sweep, cb_bias: one pipeline,
memoised per step, so Gradio's own event for the same values costs nothing more) and answers
with the figures' plotly JSON and the theta summary; the page hands each figure to Plotly.react
on the plot it already shows. Gradio's event still runs (when the slider is released) and keeps
its state, the exports and the HTTP API as they were.

The request names the session's clip by its content key and Praat settings, which the page
reads from the figures it was sent (``layout.meta.echo_live``); no server path travels. A bad
request gets status 422 and the callbacks' own message; the page then leaves the step to
Gradio's event, which shows that message where the user looks.
"""

from __future__ import annotations

import json
import logging

import gradio as gr
import plotly.io as pio
from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from workbench.ui import clip_views as CV

log = logging.getLogger(__name__)

ROUTE = "/echo/live"
MAX_BODY = 16_384  # bytes: a step's values, key and Praat settings are ~0.5 kB

# view -> (callback, the request fields it takes in order, the elem_ids of its outputs)
VIEWS = {
    "rotary": (CV.cb_rotary, ("key", "praat", "log10_theta", "head_dim", "unit", "tilt", "grid"),
               ("theta-md", "sim-plot", "variants-plot", "curves-plot", "band-plot")),
    "variants": (CV.cb_variants,
                 ("key", "praat", "log10_theta", "head_dim", "unit", "tilt", "grid"),
                 ("variants-plot",)),
    "sweep": (CV.cb_sweep, ("head_dim",), ("sweep-plot",)),
    "bias": (CV.cb_bias, ("key", "praat", "scale", "log10_theta", "head_dim", "unit"),
             ("bias-plot", "prior-plot")),
}


class LiveRequestError(ValueError):
    """A request the route cannot answer (malformed, unknown view, a missing field)."""


def _outputs(view: str, values: dict) -> dict[str, str]:
    """{elem_id: JSON text} of one view's outputs for the request's values."""
    if view not in VIEWS:
        raise LiveRequestError(f"unknown view {view!r}; accepted: {', '.join(VIEWS)}")
    callback, fields, elem_ids = VIEWS[view]
    missing = [f for f in fields if f not in values]
    if missing:
        raise LiveRequestError(f"view {view!r} needs {', '.join(missing)}")
    out = callback(*(values[f] for f in fields), live=True)
    out = out if isinstance(out, tuple) else (out,)
    return {elem_id: json.dumps({"markdown": x}) if isinstance(x, str) else
            '{"figure": ' + pio.to_json(x, validate=False) + "}"
            for elem_id, x in zip(elem_ids, out)}


def answer(body: bytes) -> tuple[int, str]:
    """(HTTP status, JSON text) for one request body {"views": [...], "values": {...}}."""
    try:
        if len(body) > MAX_BODY:
            raise LiveRequestError(f"request of {len(body)} bytes; at most {MAX_BODY} accepted")
        request = json.loads(body)
        views, values = request["views"], request["values"]
        if not isinstance(views, list) or not isinstance(values, dict):
            raise LiveRequestError("views must be a list and values an object")
        outputs = {}
        for view in views:
            outputs.update(_outputs(str(view), values))
    except gr.Error as e:  # the callbacks' own message (InputError): Gradio's event shows it
        return 422, json.dumps({"error": e.message})
    except (LiveRequestError, ValueError, KeyError, TypeError) as e:
        return 422, json.dumps({"error": f"not a live-view request: {e}"})
    parts = ", ".join(f"{json.dumps(k)}: {v}" for k, v in outputs.items())
    return 200, '{"outputs": {' + parts + "}}"


def mount(app) -> None:
    """Add ``ROUTE`` to the running Gradio server's FastAPI app, ahead of Gradio's own routes.
    The figures are built in the thread pool, beside Gradio's workers, not on the event loop."""
    async def live(request: Request):
        status, text = await run_in_threadpool(answer, await request.body())
        return Response(text, status_code=status, media_type="application/json")

    app.add_api_route(ROUTE, live, methods=["POST"], include_in_schema=False)
    app.router.routes.insert(0, app.router.routes.pop())  # before any catch-all of Gradio's
