"""The page: :func:`build_demo` composes the views (each builds its own tab and wires its own
events) and :func:`launch_kwargs` holds the launch settings; app.py calls both.
"""

from __future__ import annotations

import os
from pathlib import Path

import gradio as gr

from workbench.ui import clip_views, intervention_view, model_views
from workbench.ui.batch_view import build_batch_tab, wire_batch
from workbench.ui.common import MAX_FILE_SIZE, session_state
from workbench.ui.learn import build_learn_tab, wire_learn
from workbench.ui.report import build_downloads_row, report_inputs, wire_exports
from workbench.ui.zoo_view import build_zoo_tab, wire_zoo

CONCURRENCY = 2  # the machine has two cores
CSS = """
.gradio-container {max-width: 1500px !important; margin: auto;}
#title h1 {margin-bottom: 0;}
.note {color: var(--body-text-color-subdued); font-size: 0.92em;}
.warn {border-left: 4px solid #f2b400; padding: 6px 12px; background: #fff8e1;}
#downloads {max-height: 260px; overflow-y: auto;}
#downloads .empty, #downloads .wrap {min-height: 0 !important; height: auto !important;}
"""


def build_demo() -> gr.Blocks:
    """Build the Blocks; no audio or model work happens here (the default clip loads on page
    load, models on request): the app answers within seconds of its start. Putting the opening
    clip's pitch view into the page's config saved ~0.6 s of page load but cost ~3.5 s of cold
    start (librosa's first import), so it is not done (benchmarks/RESULTS.md)."""
    with gr.Blocks(title="Echo Workbench", analytics_enabled=False) as demo:
        session = session_state()
        gr.Markdown("# Echo Workbench\nRotary position embeddings whose θ follows the voice's "
                    "pitch (vRoPE), and the pitch-similarity attention bias of the Echo "
                    "recogniser.", elem_id="title")
        header = clip_views.build_clip_header()
        with gr.Tabs(elem_id="views") as tabs:
            pitch = clip_views.build_pitch_tab()
            rotary = clip_views.build_rotary_tab()
            bias = clip_views.build_bias_tab()
            model = model_views.build_model_tab()
            compare = model_views.build_compare_tab()
            interventions = intervention_view.build_intervention_tab()
            batch = build_batch_tab()
            zoo = build_zoo_tab()
            learn = build_learn_tab()
        downloads = build_downloads_row()

        clip_views.wire_clip_views(demo, session, header, pitch, rotary, bias)
        model_views.wire_model(demo, session, model, compare)
        intervention_view.wire_interventions(demo, session, interventions)
        wire_batch(batch, session.active_tab)
        wire_zoo(zoo, session.active_tab)
        wire_learn(learn, session.active_tab, tabs)
        inputs = report_inputs(
            clip_key=session.clip_key, praat=session.praat, log10_theta=rotary.log_theta,
            head_dim=rotary.head_dim, unit=rotary.unit, tilt=rotary.tilt, bias_scale=bias.scale,
            model_key=session.model_key, kind=model.att_kind, layer=model.att_layer,
            head=model.att_head, which=model.att_which, compare_state=session.compare_state,
            cmp_kind=compare.cmp_kind, cmp_layer=compare.cmp_layer, cmp_head=compare.cmp_head,
            cmp_which=compare.cmp_which, score=model.hs_score, cmp_score=compare.cmp_score,
            grid=rotary.grid)
        wire_exports(downloads, inputs, {"pitch": pitch.export, "rotary": rotary.export,
                                         "bias": bias.export, "model": model.model_export,
                                         "compare": compare.compare_export})
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=64)
    return demo


NAV_SCRIPT = Path(__file__).with_name("playhead.js")  # playhead, click to seek, picks
HOVER_SCRIPT = Path(__file__).with_name("map_hover.js")  # values under the pointer on image maps
LIVE_SCRIPT = Path(__file__).with_name("live_views.js")  # slider steps painted by the page
RAW_MIC_SCRIPT = Path(__file__).with_name("raw_microphone.js")  # no AGC / noise suppression


def plotly_preload() -> str:
    """A ``modulepreload`` link for Gradio's plotly.js chunk (1.3 MB). Gradio imports it only
    when the first plot has a value, after the page's other scripts; fetched from the start it
    is parsed by then. The chunk's name carries a build hash, so it is looked up in the installed
    Gradio; "" if this Gradio has no such chunk."""
    assets = Path(gr.__file__).parent / "templates" / "frontend" / "assets"
    found = sorted(assets.glob("PlotlyPlot-*.js"))
    return f'<link rel="modulepreload" href="assets/{found[0].name}">' if found else ""


def launch_kwargs(**extra) -> dict:
    """launch() arguments: bind 127.0.0.1:7860 unless GRADIO_SERVER_NAME / _PORT say otherwise,
    cap uploads, and the theme, CSS and the navigation script (Gradio 6 takes them in
    launch)."""
    kwargs = dict(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                  server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                  max_file_size=MAX_FILE_SIZE, theme=gr.themes.Soft(), css=CSS,
                  head=plotly_preload() + "".join(
                      f"<script>{script.read_text(encoding='utf-8')}</script>"
                      for script in (NAV_SCRIPT, HOVER_SCRIPT, LIVE_SCRIPT, RAW_MIC_SCRIPT)),
                  footer_links=["api", "gradio"])
    kwargs.update(extra)
    return kwargs
