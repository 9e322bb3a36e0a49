"""The Gradio app: the clip views (Audio & Pitch, Rotary patterns, Pitch bias), the exports, and
:func:`build_demo` / :func:`launch_kwargs`, which app.py calls to lay out every tab, wire the
events and launch. The other tabs live in ``model_views``, ``batch_view`` and ``learn``; callbacks
stay thin (validate, analyse, draw) and sessions keep only small keys.
"""

from __future__ import annotations

import os
from dataclasses import asdict

import gradio as gr
import numpy as np
import pandas as pd

from echo_core.audio import FRAME_SECONDS
from workbench import analysis as A
from workbench import export as X
from workbench import figures as F
from workbench import model_analysis as M
from workbench.ui.batch_view import batch_tab, wire_batch
from workbench.ui.common import (LIVE, MAX_FILE_SIZE, PRIVATE, QUIET, _export_button, _plot,
                                 _settings, guarded, tab_selected)
from workbench.ui.learn import HEAD_SCORE_MD, LATEX, LEARN_MD
from workbench.ui.model_views import (HEAD_SCORES_SHOWN, cb_checkpoints, compare_figures,
                                      compare_tab, model_figures, model_tab, wire_model)

HEAD_DIMS = [16, 32, 64, 128]
AXIS_UNITS = ["positions", "seconds"]
VARIANT_SIZE = 320  # the three variant maps are drawn smaller than the main pair
CURVE_MAX_LAG = 500  # 4 s of frames
SWEEP_THETAS = (1e2, 1e3, 1e4, 1e5, 1e6)
SWEEP_PITCHES = (None, 75.0, 150.0, 300.0, 600.0)
SWEEP_POSITIONS = 96
CONCURRENCY = 2  # the machine has two cores
PRAAT = A.pitch.PraatSettings()  # defaults of the settings panel
VIEWS = ("pitch", "rotary", "bias", "model", "compare")

CSS = """
.gradio-container {max-width: 1500px !important; margin: auto;}
#title h1 {margin-bottom: 0;}
.note {color: var(--body-text-color-subdued); font-size: 0.92em;}
.warn {border-left: 4px solid #f2b400; padding: 6px 12px; background: #fff8e1;}
#downloads {max-height: 260px; overflow-y: auto;}
#downloads .empty, #downloads .wrap {min-height: 0 !important; height: auto !important;}
"""


# ============================================================================= view builders
# Plain functions (no events): the callbacks and the exports both use them.

def praat_dict(method, floor, ceiling, voicing, silence, octave, jump, vuv, candidates,
               accurate) -> dict:
    return dict(method=method, pitch_floor=float(floor), pitch_ceiling=float(ceiling),
                voicing_threshold=float(voicing), silence_threshold=float(silence),
                octave_cost=float(octave), octave_jump_cost=float(jump),
                voiced_unvoiced_cost=float(vuv), max_candidates=int(candidates),
                very_accurate=bool(accurate))


def pitch_view(clip: A.Clip, settings) -> tuple:
    track = A.f0_track(clip, settings)
    mel, times, band_hz = A.mel_display(clip)
    fig = F.pitch_figure(mel, times, band_hz, track.times, track.hz,
                         title=f"{clip.name}: log-mel spectrogram and Praat F0")
    return fig, A.f0_statistics_table(track), track


def clip_markdown(clip: A.Clip, track) -> str:
    stats = A.pitch.f0_statistics(track)
    pitch_text = (f"mean F0 **{stats['mean']:.1f} Hz**, {stats['voiced_fraction']:.0%} voiced"
                  if np.isfinite(stats["mean"]) else "no voiced frame found")
    return (f"**{clip.name}**: {clip.duration:.2f} s, {clip.n_frames} frames of 8 ms; "
            f"{pitch_text}.")


def rotary_view(clip, settings, log10_theta, head_dim, unit, tilt) -> tuple[str, dict, dict]:
    """(summary markdown, figures, tables) of the Rotary patterns view."""
    theta, head_dim = A.theta_from_slider(log10_theta), int(head_dim)
    f0, n = A.frame_f0(clip, settings), clip.n_frames
    theta_clip = A.clip_theta(f0, theta)
    voiced = A.rotary.voiced_mask(f0)
    mean_f0 = float(f0[voiced].mean()) if voiced.any() else float("nan")
    pos, static = A.similarity_display(n, head_dim, theta, None, "static")
    _, modulated = A.similarity_display(n, head_dim, theta, f0, "mean_f0")
    figs = {"similarity": F.similarity_maps(
        [(f"static θ = {theta:,.0f}", static),
         (f"clip θ_eff = {theta_clip:,.0f} (mean F0)", modulated)],
        pos, unit, FRAME_SECONDS, title=f"Position similarity, head dim {head_dim}")}
    vpos, per_frame = A.similarity_display(n, head_dim, theta, f0, "per_frame", VARIANT_SIZE)
    _, radius = A.similarity_display(n, head_dim, theta, f0, "mean_f0", VARIANT_SIZE,
                                     radius=A.pair_radius(head_dim, tilt))
    _, dot = A.dot_product_display(n, head_dim, theta, f0, VARIANT_SIZE)
    figs["variants"] = F.similarity_maps(
        [("per-frame θ (F0 each frame)", per_frame), (f"pair radius, tilt {tilt:+.1f}", radius),
         ("F0 radius: dot product ρᵢρⱼ·sim", dot)], vpos, unit, FRAME_SECONDS,
        title="Variants beyond the reference")
    curves = [(f"static θ={theta:,.0f}", theta, None),
              (f"clip mean F0 {mean_f0:.0f} Hz → θ_eff={theta_clip:,.0f}", theta, f0),
              ("F0 100 Hz", theta, 100.0), ("F0 300 Hz", theta, 300.0),
              ("reference inv_freq (base 19000, no F0)", 19000.0, None)]
    curves = A.distance_curves(curves, max(min(n - 1, CURVE_MAX_LAG), 1), head_dim)
    figs["distance"] = F.similarity_curves(curves, unit, FRAME_SECONDS,
                                           title="Similarity vs distance (one row of each map)")
    tables = {"similarity_vs_distance": pd.DataFrame(
        {"lag_frames": curves[0][1], "lag_s": curves[0][1] * FRAME_SECONDS,
         **{label: sim for label, _, sim in curves}})}
    text = (f"**θ = {theta:,.0f}** (log₁₀ θ = {float(log10_theta):.2f}) · head dim {head_dim} · "
            + (f"clip mean F0 **{mean_f0:.1f} Hz** → θ_eff = **{theta_clip:,.0f}**"
               if np.isfinite(mean_f0) else "no voiced frame: θ_eff = θ")
            + f" · {n} frames shown at {len(pos)}×{len(pos)}")
    return text, figs, tables


def sweep_view(head_dim) -> dict:
    maps = A.sweep_maps(SWEEP_THETAS, SWEEP_PITCHES, SWEEP_POSITIONS, int(head_dim))
    cols = ["no F0 (static)"] + [f"mean F0 {p:g} Hz" for p in SWEEP_PITCHES[1:]]
    rows = [f"θ = {t:,.0f}" for t in SWEEP_THETAS]
    title = (f"Theta × pitch sweep ({SWEEP_POSITIONS} positions, head dim {int(head_dim)}): "
             "narrow bands = fast rotation")
    return {"sweep": F.sweep_grid(maps, rows, cols, title=title)}


def bias_view(clip, settings, scale, log10_theta, head_dim, unit) -> dict:
    theta = A.theta_from_slider(log10_theta)
    f0, n = A.frame_f0(clip, settings), clip.n_frames
    pos, sim = A.similarity_display(n, int(head_dim), theta, f0, "mean_f0")
    bias = A.bias_display(f0, float(scale), pos)
    return {
        "pitch_bias": F.bias_figure(
            bias, pos, f0[pos], unit, FRAME_SECONDS,
            title=f"Pitch bias exp(−|zᵢ−zⱼ|·{float(scale):g}): unvoiced rows and columns get 0 "
                  "(no boost)"),
        "combined_prior": F.bias_figure(
            A.combined_prior(sim, bias), pos, f0[pos], unit, FRAME_SECONDS,
            title=f"Combined prior: rotary similarity (θ_eff = {A.clip_theta(f0, theta):,.0f}) "
                  "+ pitch bias", colorbar_title="sim + bias", zrange=(-2.0, 2.0),
            colorscale=F.SIMILARITY_COLORSCALE),
    }


# ============================================================================= callbacks

@guarded
def cb_extract_f0(audio_path, method, floor, ceiling, voicing, silence, octave, jump, vuv,
                  candidates, accurate, progress=gr.Progress()):
    """Load the clip, track F0 with Praat, draw the pitch view (api: extract_f0).

    No audio (the player was cleared) changes nothing: the last clip stays analysed.
    """
    if not audio_path:
        return [gr.skip()] * 6
    fields = praat_dict(method, floor, ceiling, voicing, silence, octave, jump, vuv, candidates,
                        accurate)
    settings = A.praat_settings(**fields)
    progress(0.1, desc="decoding audio")
    clip = A.clip_from_path(audio_path, name=os.path.basename(str(audio_path)))
    progress(0.4, desc="tracking F0 (Praat)")
    fig, stats, track = pitch_view(clip, settings)
    csv = X.write_text(A.f0_csv(track), f"{os.path.splitext(clip.name)[0]}_f0.csv", "f0")
    return clip.key, fields, clip_markdown(clip, track), fig, stats, csv


@guarded
def cb_load_example(name):
    """Put an example clip into the audio player (its change event runs the analysis)."""
    if not name:
        return gr.skip()
    if name == A.SYNTHETIC_NAME:
        clip = A.synthetic_clip()
        return clip.sr, clip.samples
    return A.example_clips()[name]


@guarded
def cb_pitch(key, praat):
    if not key:
        return gr.skip(), gr.skip()
    fig, stats, _ = pitch_view(A.get_clip(key), _settings(praat))
    return fig, stats


@guarded
def cb_rotary(key, praat, log10_theta, head_dim, unit, tilt):
    """Similarity maps for one theta and head dim (api: similarity_map)."""
    text, figs, _ = rotary_view(A.get_clip(key), _settings(praat), log10_theta, head_dim, unit,
                                tilt)
    return text, figs["similarity"], figs["variants"], figs["distance"]


@guarded
def cb_sweep(head_dim):
    return sweep_view(head_dim)["sweep"]


@guarded
def cb_bias(key, praat, scale, log10_theta, head_dim, unit):
    figs = bias_view(A.get_clip(key), _settings(praat), scale, log10_theta, head_dim, unit)
    return figs["pitch_bias"], figs["combined_prior"]


@guarded
def cb_refresh_active(tab, key, praat, log10_theta, head_dim, unit, tilt, scale):
    """After a new clip redraw the visible tab only (hidden plots are drawn on Tab.select)."""
    rotary, bias = [gr.skip()] * 4, [gr.skip()] * 2
    if key and tab == "rotary":
        rotary = list(cb_rotary(key, praat, log10_theta, head_dim, unit, tilt))
    if key and tab == "bias":
        bias = list(cb_bias(key, praat, scale, log10_theta, head_dim, unit))
    return rotary + bias


# ----------------------------------------------------------------------------- exports

def collect(key, praat, log10_theta, head_dim, unit, tilt, scale, model_key, kind, layer, head,
            which, compare_state, cmp_kind, cmp_layer, cmp_head, cmp_which,
            score=HEAD_SCORES_SHOWN[0], cmp_score="pitch_partial_spearman", views=VIEWS):
    """Figures, tables, texts and settings of the current analysis, rebuilt from the caches."""
    figs, tables, texts = {}, {}, {}
    clip, settings = A.get_clip(key), _settings(praat)
    if "pitch" in views:
        figs["pitch"], tables["f0_statistics"], track = pitch_view(clip, settings)
        tables["f0_track"] = A.f0_table(track)
    if "rotary" in views:
        texts["rotary_settings"], rotary_figs, rotary_tables = rotary_view(
            clip, settings, log10_theta, head_dim, unit, tilt)
        figs.update(rotary_figs)
        tables.update(rotary_tables)
        figs.update(sweep_view(head_dim))
    if "bias" in views:
        figs.update(bias_view(clip, settings, scale, log10_theta, head_dim, unit))
    info = {"clip": {"name": clip.name, "key": clip.key, "seconds": clip.duration},
            "praat": asdict(settings),
            "rotary": {"theta": 10 ** float(log10_theta), "head_dim": int(head_dim),
                       "axes": unit, "radius_tilt": float(tilt)},
            "pitch_bias_scale": float(scale)}
    if "model" in views and M.RESULTS.get(model_key) is not None:
        result = M.get_result(model_key)
        figs.update(model_figures(result, kind, layer, head, which, score))
        tables.update(result.tables())
        texts["model_report"], texts["transcript"] = result.report, result.transcript
        info["model"] = {**result.settings(), "head_score": score,
                         "attention": [kind, int(layer), int(head), which]}
    state = compare_state or {}
    if "compare" in views and all(M.RESULTS.get(state.get(k)) is not None for k in "ab"):
        ra, rb = M.get_result(state["a"]), M.get_result(state["b"])
        figs.update(compare_figures(ra, rb, cmp_kind, cmp_layer, cmp_head, cmp_which,
                                    cmp_score))
        tables["parameter_differences"], tables["learned_scalars_compare"] = M.compare_tables(ra,
                                                                                             rb)
        tables["head_scores_difference"] = M.head_score_difference(ra, rb, cmp_score)
        texts["transcripts_compare"] = (f"A {ra.label}: {ra.transcript}\n"
                                        f"B {rb.label}: {rb.transcript}\n")
        info["compare"] = {"a": ra.settings(), "b": rb.settings(),
                           "attention": [cmp_kind, int(cmp_layer), int(cmp_head), cmp_which],
                           "head_score": cmp_score}
    return figs, tables, texts, info


@guarded
def cb_export_view(view, *current, progress=gr.Progress()):
    """Every figure of one view as PNG and HTML, every table as CSV."""
    progress(0.2, desc="rendering figures (PNG via Chromium)")
    figs, tables, _, _ = collect(*current, views=(view,))
    if not figs and not tables:
        raise gr.Error("Nothing to export in this view yet: run it first.",
                       title="Nothing to export")
    return X.export_view(view, figs, tables)


@guarded
def cb_report(*current, progress=gr.Progress()):
    """The zip bundle: every figure (PNG + HTML), table (CSV), text report and the settings."""
    progress(0.1, desc="collecting the analysis")
    figs, tables, texts, info = collect(*current)
    progress(0.4, desc=f"rendering {len(figs)} figures")
    return [X.report_bundle(figs, tables, texts, info)]


# ============================================================================= layout + wiring

def build_demo() -> gr.Blocks:
    """Build the Blocks; no audio or model work happens here (the default clip loads on page
    load, models on request)."""
    examples = A.example_clips()
    first = next(iter(examples))
    if examples[first]:
        first_value = examples[first]
    else:  # no bundled clip: open with the synthetic glide
        clip = A.synthetic_clip()
        first_value = (clip.sr, clip.samples)
    with gr.Blocks(title="Echo Workbench", analytics_enabled=False) as demo:
        clip_key, praat_state = gr.State(None), gr.State(None)
        active_tab, model_key, compare_state = gr.State("pitch"), gr.State(None), gr.State(None)
        uploads = gr.State([])  # checkpoint ids this session uploaded

        gr.Markdown("# Echo Workbench\nRotary position embeddings whose θ follows the voice's "
                    "pitch (vRoPE), and the pitch-similarity attention bias of the Echo "
                    "recogniser.", elem_id="title")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                audio = gr.Audio(value=first_value, type="filepath",
                                 label="Clip (upload or record; ≤ 10 min)",
                                 sources=["upload", "microphone"], elem_id="audio")
            with gr.Column(scale=2):
                example = gr.Radio(list(examples), value=first, label="Example clips",
                                   elem_id="examples")
                clip_info = gr.Markdown("Loading the example clip…", label="Clip summary",
                                        elem_id="clip-info")

        with gr.Tabs(elem_id="views"):
            # ---------------------------------------------------------------- 1 audio & pitch
            with gr.Tab("Audio & Pitch", id="pitch", elem_id="tab-pitch") as tab_pitch:
                pitch_plot = _plot("Spectrogram and F0", "pitch-plot")
                with gr.Row():
                    stats = gr.Dataframe(label="F0 statistics (voiced frames)", interactive=False,
                                         elem_id="f0-stats", scale=2)
                    with gr.Column(scale=1):
                        f0_csv = gr.DownloadButton("Download F0 (CSV)", elem_id="f0-csv")
                        gr.Markdown("Unvoiced frames are empty fields in the CSV and gaps in the "
                                    "plot. F0 is tracked every 8 ms, on the mel frames' grid.",
                                    elem_classes="note")
                with gr.Accordion("Praat pitch settings", open=False, elem_id="praat"):
                    with gr.Row():
                        method = gr.Radio(["ac", "cc", "shs"], value=PRAAT.method, label="Method",
                                          info="autocorrelation, cross-correlation, subharmonic "
                                               "summation")
                        accurate = gr.Checkbox(value=PRAAT.very_accurate, label="Very accurate")
                    with gr.Row():
                        floor = gr.Slider(30, 300, PRAAT.pitch_floor, step=1,
                                          label="Pitch floor (Hz)")
                        ceiling = gr.Slider(200, 1200, PRAAT.pitch_ceiling, step=10,
                                            label="Pitch ceiling (Hz)")
                        candidates = gr.Slider(2, 30, PRAAT.max_candidates, step=1,
                                               label="Max candidates")
                    with gr.Row():
                        voicing = gr.Slider(0, 1, PRAAT.voicing_threshold, step=0.01,
                                            label="Voicing threshold")
                        silence = gr.Slider(0, 1, PRAAT.silence_threshold, step=0.01,
                                            label="Silence threshold")
                    with gr.Row():
                        octave = gr.Slider(0, 1, PRAAT.octave_cost, step=0.01,
                                           label="Octave cost")
                        jump = gr.Slider(0, 2, PRAAT.octave_jump_cost, step=0.01,
                                         label="Octave-jump cost")
                        vuv = gr.Slider(0, 2, PRAAT.voiced_unvoiced_cost, step=0.01,
                                        label="Voiced/unvoiced cost")
                    retrack = gr.Button("Re-track F0 with these settings", variant="primary")
                pitch_export = _export_button()

            # ---------------------------------------------------------------- 2 rotary
            with gr.Tab("Rotary patterns", id="rotary", elem_id="tab-rotary") as tab_rotary:
                with gr.Row():
                    log_theta = gr.Slider(2, 6, 4, step=0.01, elem_id="theta", scale=3,
                                          label="log₁₀ θ (static base, 10² … 10⁶)",
                                          info="the value of θ is shown below")
                    head_dim = gr.Radio(HEAD_DIMS, value=64, label="Head dim", scale=2)
                    unit = gr.Radio(AXIS_UNITS, value="positions", label="Axes", scale=1)
                theta_md = gr.Markdown(label="Theta summary", elem_id="theta-md")
                sim_plot = _plot("Position similarity", "sim-plot")
                tilt = gr.Slider(-4, 4, 0, step=0.1, label="Pair-radius tilt (variant 2): > 0 "
                                 "favours slow pairs, < 0 fast ones")
                variants_plot = _plot("Similarity variants", "variants-plot")
                curves_plot = _plot("Similarity vs distance", "curves-plot")
                sweep_plot = _plot("Theta x pitch sweep", "sweep-plot")
                rotary_export = _export_button()

            # ---------------------------------------------------------------- 3 pitch bias
            with gr.Tab("Pitch bias", id="bias", elem_id="tab-bias") as tab_bias:
                with gr.Row():
                    scale = gr.Slider(0, 5, 1.0, step=0.05, label="Bias scale (pitch_scale)",
                                      scale=2)
                    gr.Markdown("z-scores use the voiced frames' mean and (unbiased) std. The "
                                "combined prior uses θ and head dim from the Rotary tab.",
                                elem_classes="note")
                bias_plot = _plot("Pitch bias", "bias-plot")
                prior_plot = _plot("Combined prior", "prior-plot")
                bias_export = _export_button()

            # ---------------------------------------------------------------- 4 model, 5 compare
            model = model_tab()
            compare = compare_tab()
            # ---------------------------------------------------------------- batch results
            batch = batch_tab()

            # ---------------------------------------------------------------- 6 learn
            with gr.Tab("Learn", id="learn", elem_id="tab-learn") as tab_learn:
                gr.Markdown(LEARN_MD, latex_delimiters=LATEX)
                gr.Markdown(HEAD_SCORE_MD, elem_id="head-score-definitions")

        with gr.Row(equal_height=False):
            report_btn = gr.Button("Download report (zip): figures, tables, text report, "
                                   "settings", elem_id="report-btn")
            files = gr.File(label="Downloads (exports and report)", file_count="multiple",
                            interactive=False, elem_id="downloads")

        # ============================================================ wiring
        praat_inputs = [method, floor, ceiling, voicing, silence, octave, jump, vuv, candidates,
                        accurate]
        pitch_outputs = [clip_key, praat_state, clip_info, pitch_plot, stats, f0_csv]
        rotary_inputs = [clip_key, praat_state, log_theta, head_dim, unit, tilt]
        rotary_outputs = [theta_md, sim_plot, variants_plot, curves_plot]
        bias_inputs = [clip_key, praat_state, scale, log_theta, head_dim, unit]
        refresh = dict(fn=cb_refresh_active, inputs=[active_tab] + rotary_inputs + [scale],
                       outputs=rotary_outputs + [bias_plot, prior_plot], **QUIET)

        example.input(cb_load_example, example, audio, **PRIVATE)
        audio.change(cb_extract_f0, [audio] + praat_inputs, pitch_outputs, api_name="extract_f0",
                     trigger_mode="always_last").success(**refresh)
        retrack.click(cb_extract_f0, [audio] + praat_inputs, pitch_outputs,
                      **PRIVATE).success(**refresh)
        demo.load(cb_extract_f0, [audio] + praat_inputs, pitch_outputs,
                  **PRIVATE).success(**refresh)
        demo.load(cb_checkpoints, uploads, [model.ckpt, compare.ckpt_a, compare.ckpt_b,
                                            model.no_ckpt], **QUIET)

        # Tab.select: remember the visible tab and draw its plots now that they have a size.
        tab_selected(tab_pitch, "pitch", active_tab).then(
            cb_pitch, [clip_key, praat_state], [pitch_plot, stats], **QUIET)
        tab_selected(tab_rotary, "rotary", active_tab).then(
            cb_rotary, rotary_inputs, rotary_outputs, **QUIET).then(
            cb_sweep, head_dim, sweep_plot, **QUIET)
        tab_selected(tab_bias, "bias", active_tab).then(
            cb_bias, bias_inputs, [bias_plot, prior_plot], **QUIET)
        tab_selected(tab_learn, "learn", active_tab)

        log_theta.change(cb_rotary, rotary_inputs, rotary_outputs, api_name="similarity_map",
                         **LIVE)
        tilt.change(cb_rotary, rotary_inputs, rotary_outputs, **PRIVATE, **LIVE)
        for control in (head_dim, unit):
            control.input(cb_rotary, rotary_inputs, rotary_outputs, **PRIVATE, **LIVE)
        head_dim.input(cb_sweep, head_dim, sweep_plot, **PRIVATE, **LIVE)
        scale.change(cb_bias, bias_inputs, [bias_plot, prior_plot], api_name="pitch_bias", **LIVE)

        wire_model(model, compare, clip_key, praat_state, model_key, compare_state, uploads,
                   active_tab)
        wire_batch(batch, active_tab)

        current = [clip_key, praat_state, log_theta, head_dim, unit, tilt, scale, model_key,
                   model.att_kind, model.att_layer, model.att_head, model.att_which,
                   compare_state, compare.cmp_kind, compare.cmp_layer, compare.cmp_head,
                   compare.cmp_which, model.hs_score, compare.cmp_score]
        for button, view in ((pitch_export, "pitch"), (rotary_export, "rotary"),
                             (bias_export, "bias"), (model.model_export, "model"),
                             (compare.compare_export, "compare")):
            button.click(cb_export_view, [gr.State(view)] + current, files, **PRIVATE,
                         concurrency_id="export", concurrency_limit=1)
        report_btn.click(cb_report, current, files, api_name="report", concurrency_id="export",
                         concurrency_limit=1)
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=64)
    return demo


def launch_kwargs(**extra) -> dict:
    """launch() arguments: bind 127.0.0.1:7860 unless GRADIO_SERVER_NAME / _PORT say otherwise,
    cap uploads, and the theme and CSS (Gradio 6 takes them in launch)."""
    kwargs = dict(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                  server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                  max_file_size=MAX_FILE_SIZE, theme=gr.themes.Soft(), css=CSS,
                  footer_links=["api", "gradio"])
    kwargs.update(extra)
    return kwargs
