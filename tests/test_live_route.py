"""The live route (slider steps the page paints itself, workbench/ui/live_route.py): it answers
with exactly the figures Gradio's callbacks draw, names bad requests, and Gradio's release event
then sends nothing the page already shows. Plus the cache it leans on: one computation per key
when two callers ask together."""

from __future__ import annotations

import json
import threading

import gradio as gr
import plotly.io as pio
import pytest

from conftest import CLIPS_DIR
from workbench.cache import LRU
from workbench.ui import clip_views, live_route

PRAAT = ["ac", 75.0, 600.0, 0.45, 0.03, 0.01, 0.35, 0.14, 15, False]


@pytest.fixture(scope="module")
def loaded():
    """(clip key, Praat settings) of a bundled clip, as the page's session holds them."""
    key, praat, *_ = clip_views.cb_extract_f0(str(CLIPS_DIR / "high_two_seven_nine.wav"), *PRAAT)
    return key, praat


def _ask(views, **values) -> tuple[int, dict]:
    status, text = live_route.answer(json.dumps({"views": views, "values": values}).encode())
    return status, json.loads(text)


def _values(loaded, **over):
    key, praat = loaded
    return {"key": key, "praat": praat, "log10_theta": 3.73, "head_dim": 32, "unit": "seconds",
            "tilt": -1.2, "grid": "model", "scale": 2.5, **over}


def test_rotary_step_is_the_callbacks_figures(loaded):
    values = _values(loaded)
    status, body = _ask(["rotary", "sweep"], **values)
    assert status == 200
    expected = clip_views.cb_rotary(*[values[f] for f in ("key", "praat", "log10_theta",
                                                          "head_dim", "unit", "tilt", "grid")])
    out = body["outputs"]
    assert out["theta-md"]["markdown"] == expected[0]
    assert "θ = 5,370" in expected[0]  # 10 ** 3.73
    for elem_id, fig in zip(("sim-plot", "variants-plot", "curves-plot", "band-plot"),
                            expected[1:]):
        assert out[elem_id]["figure"] == json.loads(pio.to_json(fig, validate=False)), elem_id
    sweep = json.loads(pio.to_json(clip_views.cb_sweep(32), validate=False))
    assert out["sweep-plot"]["figure"] == sweep
    # what the page needs for its next step rides in the figure (no server path)
    live = out["sim-plot"]["figure"]["layout"]["meta"]["echo_live"]
    assert live == {"key": values["key"], "praat": values["praat"], "unit": "seconds",
                    "grid": "model"}


def test_bias_and_variants_steps(loaded):
    values = _values(loaded, scale=0.35, tilt=2.0)
    status, body = _ask(["bias", "variants"], **values)
    assert status == 200 and set(body["outputs"]) == {"bias-plot", "prior-plot", "variants-plot"}
    bias, prior = clip_views.cb_bias(values["key"], values["praat"], 0.35, 3.73, 32, "seconds")
    assert body["outputs"]["prior-plot"]["figure"] == json.loads(pio.to_json(prior,
                                                                             validate=False))
    assert "0.35" in body["outputs"]["bias-plot"]["figure"]["layout"]["title"]["text"]
    assert "tilt +2.0" in json.dumps(body["outputs"]["variants-plot"]["figure"]["layout"])


@pytest.mark.parametrize("views, over, said", [
    (["spectrum"], {}, "unknown view 'spectrum'; accepted: rotary, variants, sweep, bias"),
    (["rotary"], {"key": None}, "no clip loaded"),
    (["rotary"], {"key": "0123456789abcdef-0000"}, "no longer in memory"),
    (["rotary"], {"log10_theta": 9.0}, "theta must be between 100 and 1e+06"),
    (["bias"], {"scale": -1.0}, "bias scale must be a finite number >= 0"),
])
def test_bad_steps_are_named(loaded, views, over, said):
    status, body = _ask(views, **_values(loaded, **over))
    assert status == 422 and said in body["error"], body
    assert "/" not in body["error"].replace("10⁶", "")  # no server path


def test_malformed_requests_are_named(loaded):
    values = _values(loaded)
    del values["tilt"]
    assert _ask(["rotary"], **values) == (422, {"error": "not a live-view request: view "
                                                "'rotary' needs tilt"})
    status, text = live_route.answer(b"{not json")
    assert status == 422 and "not a live-view request" in json.loads(text)["error"]
    status, text = live_route.answer(b" " * (live_route.MAX_BODY + 1))
    assert status == 422 and f"at most {live_route.MAX_BODY} accepted" in text


def test_release_sends_nothing_the_page_already_painted(loaded):
    values = _values(loaded, log10_theta=4.87)
    args = [values[f] for f in ("key", "praat", "log10_theta", "head_dim", "unit", "tilt",
                                "grid")]
    before = clip_views.cb_rotary_released(*args)  # no live step yet: the figures
    assert "θ = 74,131" in before[0] and all(not isinstance(x, dict) for x in before)
    assert _ask(["rotary"], **values)[0] == 200
    after = clip_views.cb_rotary_released(*args)
    assert after == tuple(gr.skip() for _ in before)
    other = clip_views.cb_rotary_released(*args[:2], 4.88, *args[3:])  # a step not painted
    assert "θ = 75,858" in other[0]
    # the API endpoint's callback always answers in full
    assert clip_views.cb_rotary(*args)[0] == before[0]


def test_concurrent_callers_compute_once():
    cache, calls = LRU(maxsize=4), []
    started, release = threading.Event(), threading.Event()

    def compute():
        calls.append(1)
        started.set()
        release.wait(60)
        return "value"

    results = []
    first = threading.Thread(target=lambda: results.append(cache.get_or_compute("k", compute)))
    first.start()
    assert started.wait(60)
    second = threading.Thread(target=lambda: results.append(cache.get_or_compute("k", compute)))
    second.start()
    second.join(0.5)  # the second caller waits for the first one's computation
    assert second.is_alive() and calls == [1]
    release.set()
    first.join(60)
    second.join(60)
    assert results == ["value", "value"] and calls == [1]
