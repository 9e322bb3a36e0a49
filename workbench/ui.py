"""The Gradio app: view builders, callbacks, then the layout and the event wiring.

This is the only module that imports gradio. Callbacks are thin: validate, call
``workbench.analysis``, call ``workbench.figures``, return. Library errors (``EchoError``) become
``gr.Error(str(e))``: a message in the page, never a traceback. Per-session state is a few small
keys (``gr.State``); arrays live in the analysis module's bounded, content-keyed caches.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from dataclasses import asdict

import gradio as gr
import numpy as np
import pandas as pd

from echo_core.audio import FRAME_SECONDS
from echo_core.errors import EchoError
from workbench import analysis as A
from workbench import batch as B
from workbench import export as X
from workbench import figures as F

log = logging.getLogger("echo_workbench")

HEAD_DIMS = [16, 32, 64, 128]
AXIS_UNITS = ["positions", "seconds"]
VARIANT_SIZE = 320  # the three variant maps are drawn smaller than the main pair
CURVE_MAX_LAG = 500  # 4 s of frames
SWEEP_THETAS = (1e2, 1e3, 1e4, 1e5, 1e6)
SWEEP_PITCHES = (None, 75.0, 150.0, 300.0, 600.0)
SWEEP_POSITIONS = 96
MAX_FILE_SIZE = "200mb"  # per uploaded file (audio and checkpoints)
CONCURRENCY = 2  # the machine has two cores
ATTENTION_KINDS = list(A.ATTENTION_KINDS)
ENCODER = ATTENTION_KINDS[0]
PRAAT = A.pitch.PraatSettings()  # defaults of the settings panel
LATEX = [{"left": "$$", "right": "$$", "display": True},
         {"left": "$", "right": "$", "display": False}]
VIEWS = ("pitch", "rotary", "bias", "model", "compare")
NO_BIAS = "This model's encoder gets no F0, so there is no pitch bias to show."
HEAD_SCORES_SHOWN = ("pitch_spearman", "pitch_partial_spearman", "rotary_spearman",
                     "distance_spearman", "mean_distance_ms", "entropy_normalised")
BATCH_PLOTS = 4  # figure slots of the Batch results tab; report.html in the folder has them all
BATCH_COMMAND = ("python -m workbench.batch CLIPS_DIR --checkpoint assets/checkpoints/static_theta"
                 " --checkpoint assets/checkpoints/f0_theta_bias --out results/digits")
HEAD_SCORE_CHOICES = [(F.HEAD_SCORE_LABELS[s], s) for s in HEAD_SCORES_SHOWN]

CSS = """
.gradio-container {max-width: 1500px !important; margin: auto;}
#title h1 {margin-bottom: 0;}
.note {color: var(--body-text-color-subdued); font-size: 0.92em;}
.warn {border-left: 4px solid #f2b400; padding: 6px 12px; background: #fff8e1;}
#downloads {max-height: 260px; overflow-y: auto;}
#downloads .empty, #downloads .wrap {min-height: 0 !important; height: auto !important;}
"""


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
            raise gr.Error(str(e), title="Cannot do that") from e
        except Exception as e:  # a bug, not the user's fault: say so briefly
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(f"Unexpected {type(e).__name__}: {e}", title="Internal error") from e
        log.info("%s: %.0f ms", fn.__name__, (time.perf_counter() - start) * 1000)
        return out

    return wrapper


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


def attention_figure(results, kind, layer, head, which):
    """The attention maps of one or more results for the same layer and head."""
    maps = []
    for r in results:
        arr, x_title, y_title, x, y = A.attention_map(r, kind, int(layer), int(head), which)
        maps.append((f"{r.label}: layer {int(layer)}, head {int(head)}", arr, x, y))
    return F.attention_maps(maps, x_title=x_title, y_title=y_title,
                            title=f"{kind}: attention {which}", colorbar_title=which)


def head_score_figure(result, score, title: str | None = None):
    """Layer x head heatmaps of one score, or the reason there are none."""
    if result.head_scores is None:
        return F.empty_figure(f"no head scores: {result.head_scores_error}")
    return F.head_score_heatmaps(result.head_scores, score, title=title)


def model_figures(result, kind, layer, head, which, score=HEAD_SCORES_SHOWN[0]) -> dict:
    g = result.gates
    figs = {"gate_mlp_ratio": F.gate_ratio_bars(g["block"], g["ratio"], g["status"],
                                                result.expected_ratio),
            "attention": attention_figure([result], kind, layer, head, which),
            "head_scores": head_score_figure(result, score)}
    if result.bias is not None:
        top = max(1.0, float(np.nanmax(result.bias)))
        figs["pitch_bias_as_used"] = F.bias_figure(
            result.bias, np.arange(result.bias.shape[0]), result.bias_f0, "positions",
            FRAME_SECONDS, zrange=(0.0, top),
            title=("Pitch bias as added to the first encoder block's scores" if result.bias_applied
                   else "Pitch bias this model would see (not applied: pitch_bias is off)"))
    return figs


def compare_figures(ra, rb, kind, layer, head, which, score="pitch_partial_spearman") -> dict:
    series = {r.label: (list(r.gates["block"]), r.gates["ratio"].to_numpy()) for r in (ra, rb)}
    label = F.HEAD_SCORE_LABELS.get(score, score)
    return {"gate_mlp_ratio_compare": F.grouped_ratio_bars(series, ra.expected_ratio),
            "attention_compare": attention_figure([ra, rb], kind, layer, head, which),
            "head_scores_a": head_score_figure(ra, score, f"A · {ra.label}: {label}"),
            "head_scores_b": head_score_figure(rb, score, f"B · {rb.label}: {label}")}


def head_score_table(result):
    """The score table for display (empty when the clip could not be scored)."""
    return table(result.head_scores) if result.head_scores is not None else pd.DataFrame()


def note_update(text: str):
    return gr.update(value=text, visible=bool(text))


def table(df, digits: int = 4):
    """A DataFrame for display: floats to ``digits`` significant digits (CSVs keep them all)."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype.kind == "f":
            out[col] = ["—" if not np.isfinite(v) else f"{v:.{digits}g}" for v in out[col]]
    return out


def gates_table(result):
    """Gate/MLP table with a coloured status cell (green ratio < 2, amber >= 2)."""
    df = table(result.gates_display())
    df["status"] = ["🟢 < 2" if s == "🟢" else "🟡 ≥ 2" for s in result.gates["status"]]
    colours = {"🟢 < 2": "background-color: #d9f2d9", "🟡 ≥ 2": "background-color: #fff0c2"}
    return df.style.map(lambda v: colours.get(v, ""), subset=["status"])


def mask_note(result) -> str:
    additive = result.dims.get("decoder_mask") == "additive"
    return " ⚠️ *non-causal (additive) decoder mask*" if additive else ""


def bias_note(result) -> str:
    return (" ⚠️ *pitch bias added to the scores: pitch alignment partly built in*"
            if result.pitch_bias_in_scores else "")


# ============================================================================= callbacks

def _settings(state: dict | None):
    return A.praat_settings(**(state or {}))


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


def overrides(act, f0_rotary, decoder_mask) -> dict:
    """The override radios as EchoDims fields ("from config" means: not overridden)."""
    out = {}
    if act and act != "from config":
        out["act"] = act
    if f0_rotary and f0_rotary != "from config":
        out["f0_rotary"] = f0_rotary == "on"
    if decoder_mask and decoder_mask != "from config":
        out["decoder_mask"] = decoder_mask
    return out


def _choices(uploads, selected=None, index=0):
    choices = A.checkpoint_choices(uploads or [])
    ids = [c[1] for c in choices]
    value = selected if selected in ids else (ids[min(index, len(ids) - 1)] if ids else None)
    return gr.update(choices=choices, value=value)


def cb_checkpoints(uploads):
    """Refresh the checkpoint radios on page load (checkpoints shipped after start-up appear)."""
    empty = not A.checkpoint_choices(uploads or [])
    return (_choices(uploads), _choices(uploads), _choices(uploads, index=1),
            gr.update(visible=empty))


@guarded
def cb_upload(files, act, f0_rotary, decoder_mask, uploads):
    if not files:
        return [gr.skip()] * 5
    paths = [f if isinstance(f, str) else f.name for f in (files if isinstance(files, list)
                                                           else [files])]
    ckpt = A.register_upload(paths, overrides(act, f0_rotary, decoder_mask))
    uploads = [u for u in (uploads or []) if u != ckpt][-7:] + [ckpt]
    gr.Info("Checkpoint uploaded and loaded; it is now selectable in Model and Compare.")
    return (_choices(uploads, ckpt), _choices(uploads), _choices(uploads, index=1),
            gr.update(visible=False), uploads)


def _index_slider(count: int):
    """A 0..count-1 slider (gradio needs max > min, so a single choice is a locked 0..1)."""
    return gr.update(minimum=0, maximum=max(count - 1, 1), value=0, interactive=count > 1)


@guarded
def cb_analyze(key, praat, ckpt, act, f0_rotary, decoder_mask, transcript, kind, which,
               score=HEAD_SCORES_SHOWN[0], progress=gr.Progress()):
    """Run a checkpoint on the clip: transcript, statistics, report, maps (api: analyze_model)."""
    clip, settings = A.get_clip(key), _settings(praat)
    if not ckpt:
        raise gr.Error("Pick a shipped checkpoint or upload one first.", title="No checkpoint")
    result = A.run_model(clip, settings, ckpt, overrides(act, f0_rotary, decoder_mask),
                         transcript or "", progress=lambda f, what: progress(f, desc=what))
    figs = model_figures(result, kind, 0, 0, which, score)
    layers, heads = A.attention_shape(result, kind)
    warning = result.warning_markdown()
    if warning or result.warnings:
        gr.Warning(" ".join(result.warnings + (["This checkpoint uses the reference's "
                                                "non-causal (additive) decoder mask."]
                                               if warning else [])))
    return (result.key, gr.update(value=warning, visible=bool(warning)), result.transcript,
            result.info_markdown(), table(result.activations), table(result.gradients),
            gates_table(result), figs["gate_mlp_ratio"], result.report, _index_slider(layers),
            _index_slider(heads), figs["attention"],
            figs.get("pitch_bias_as_used", F.empty_figure(NO_BIAS)), table(result.learned, 6),
            note_update(result.head_score_markdown()), figs["head_scores"],
            head_score_table(result))


@guarded
def cb_head_scores(result_key, score):
    if not result_key or A.RESULTS.get(result_key) is None:
        return gr.skip()
    return head_score_figure(A.get_result(result_key), score)


@guarded
def cb_attention(result_key, kind, layer, head, which):
    if not result_key:
        return gr.skip()
    return attention_figure([A.get_result(result_key)], kind, layer, head, which)


@guarded
def cb_attention_kind(result_key, kind, which):
    if not result_key:
        return [gr.skip()] * 3
    layers, heads = A.attention_shape(A.get_result(result_key), kind)
    return (_index_slider(layers), _index_slider(heads),
            cb_attention(result_key, kind, 0, 0, which))


@guarded
def cb_model_tab(result_key, kind, layer, head, which, score):
    """Redraw the model plots when the tab becomes visible (hidden plots render too small)."""
    if not result_key or A.RESULTS.get(result_key) is None:
        return [gr.skip()] * 4
    figs = model_figures(A.get_result(result_key), kind, layer, head, which, score)
    return (figs["gate_mlp_ratio"], figs["attention"],
            figs.get("pitch_bias_as_used", F.empty_figure(NO_BIAS)), figs["head_scores"])


@guarded
def cb_compare(key, praat, ckpt_a, ckpt_b, kind, which, score="pitch_partial_spearman",
               progress=gr.Progress()):
    """Two checkpoints on the same clip (api: compare_models)."""
    clip, settings = A.get_clip(key), _settings(praat)
    if not ckpt_a or not ckpt_b:
        raise gr.Error("Pick two checkpoints (A and B).", title="Missing checkpoint")
    ra = A.run_model(clip, settings, ckpt_a,
                     progress=lambda f, what: progress(f / 2, desc=f"A: {what}"))
    rb = A.run_model(clip, settings, ckpt_b,
                     progress=lambda f, what: progress(0.5 + f / 2, desc=f"B: {what}"))
    figs = compare_figures(ra, rb, kind, 0, 0, which, score)
    (layers_a, heads_a), (layers_b, heads_b) = (A.attention_shape(r, kind) for r in (ra, rb))
    diff, scalars = A.compare_tables(ra, rb)
    diff = diff.sort_values("rel_change", ascending=False, kind="stable")
    scalars = scalars.sort_values("change", key=abs, ascending=False, kind="stable")
    return ({"a": ra.key, "b": rb.key},
            f"**A · {ra.label}:** “{ra.transcript}”{mask_note(ra)}{bias_note(ra)}",
            f"**B · {rb.label}:** “{rb.transcript}”{mask_note(rb)}{bias_note(rb)}",
            figs["gate_mlp_ratio_compare"], _index_slider(min(layers_a, layers_b)),
            _index_slider(min(heads_a, heads_b)), figs["attention_compare"], table(diff),
            table(scalars, 6), figs["head_scores_a"], figs["head_scores_b"],
            table(A.head_score_difference(ra, rb, score)))


@guarded
def cb_compare_scores(state, score):
    """A's and B's heatmaps of one score and the B − A table."""
    if not state or not all(A.RESULTS.get(state.get(k)) is not None for k in "ab"):
        return [gr.skip()] * 3
    ra, rb = A.get_result(state["a"]), A.get_result(state["b"])
    figs = compare_figures(ra, rb, ENCODER, 0, 0, "scores", score)
    return (figs["head_scores_a"], figs["head_scores_b"],
            table(A.head_score_difference(ra, rb, score)))


@guarded
def cb_compare_attention(state, kind, layer, head, which):
    if not state:
        return gr.skip()
    results = [A.get_result(state["a"]), A.get_result(state["b"])]
    return attention_figure(results, kind, layer, head, which)


# ----------------------------------------------------------------------------- exports

def batch_empty_note(names) -> str:
    """The empty state of the Batch results tab: where the app looks and how to fill it."""
    if names:
        return ""
    return (f"No batch results yet in `{B.results_root()}` (set `{B.RESULTS_ENV}` to list "
            f"another folder). Create one from the repository root:\n\n```\n{BATCH_COMMAND}\n"
            "```\n\nthen press **Refresh**.")


@guarded
def cb_batch_list(selected=None):
    """Re-list the results root; keep the selection while it is still there."""
    names = B.list_results()
    value = selected if selected in names else (names[0] if names else None)
    return gr.update(choices=names, value=value), note_update(batch_empty_note(names))


@guarded
def cb_batch_results(name):
    """Summary, errors and figures of one listed results folder (api: batch_results).

    Only names listed under the results root are opened (B.results_folder refuses the rest)."""
    if not name:
        return [gr.skip()] * (3 + BATCH_PLOTS)
    folder = B.results_folder(name)
    tables = B.load_results(folder)
    from workbench.batch_report import figures_from_tables

    figs = figures_from_tables(tables)
    results, errors = tables.get("results", pd.DataFrame()), tables.get("errors", pd.DataFrame())
    n_clips = results["clip"].nunique() if len(results) else 0
    n_ckpts = results["checkpoint"].nunique() if len(results) else 0
    more = (f" {len(figs) - BATCH_PLOTS} more figure(s) in `report.html`."
            if len(figs) > BATCH_PLOTS else "")
    info = (f"**{name}**: {n_clips} clip(s) × {n_ckpts} checkpoint(s), {len(errors)} failed "
            f"unit(s).{more}")
    plots = [gr.update(value=figs[i], visible=True) if i < len(figs)
             else gr.update(value=None, visible=False) for i in range(BATCH_PLOTS)]
    return (info, table(tables.get("summary", pd.DataFrame())), table(errors), *plots)


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
    if "model" in views and A.RESULTS.get(model_key) is not None:
        result = A.get_result(model_key)
        figs.update(model_figures(result, kind, layer, head, which, score))
        tables.update(result.tables())
        texts["model_report"], texts["transcript"] = result.report, result.transcript
        info["model"] = {**result.settings(), "head_score": score,
                         "attention": [kind, int(layer), int(head), which]}
    state = compare_state or {}
    if "compare" in views and all(A.RESULTS.get(state.get(k)) is not None for k in "ab"):
        ra, rb = A.get_result(state["a"]), A.get_result(state["b"])
        figs.update(compare_figures(ra, rb, cmp_kind, cmp_layer, cmp_head, cmp_which,
                                    cmp_score))
        tables["parameter_differences"], tables["learned_scalars_compare"] = A.compare_tables(ra,
                                                                                             rb)
        tables["head_scores_difference"] = A.head_score_difference(ra, rb, cmp_score)
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

LEARN_MD = r"""
## vRoPE in five formulas

**Rotary position embedding.** Each attention head splits its $d$ channels into $d/2$ pairs; pair
$k$ of the query/key at position $t$ is rotated by the angle $t\,\omega_k$ with
$$\omega_k = \theta^{-2k/d},\qquad k = 0,\dots,d/2-1.$$
Small $k$ rotate fast (local detail), large $k$ slowly (long range). Because rotations compose,
the score between positions $i$ and $j$ depends only on their distance. The **Rotary patterns**
tab draws how positions "see" each other:
$$s(i,j) = \frac{1}{d/2}\sum_k \cos\big((i-j)\,\omega_k\big)$$
(bright diagonal, bands whose width grows with $\theta$). Move the **θ slider** and the **head
dim** radio.

**Pitch-modulated theta (the Echo idea).** The base is shifted by the voice's mean pitch
$\bar f_0$:
$$p(\bar f_0) = \frac{\ln(1+\bar f_0/700)}{\ln(1+300/700)},\qquad
\theta_\text{eff} = \theta + p(\bar f_0)\,(10000-800).$$
A higher voice gives a larger $\theta_\text{eff}$, hence slower rotation and wider bands. The
reference takes the mean over the whole F0 tensor, zeros of unvoiced frames included; the
project's checkpoints (``f0_mean = voiced``) and these pictures average voiced frames only. The
**per-frame** variant lets $\theta$ follow $f_0(t)$ frame by frame, so the angle is
$a_k(t)=\sum_{s<t}\omega_k(\theta_\text{eff}(f_0(s)))$ and the map is no longer a function of
$i-j$ alone.

**Variable radius.** Weighting pair $k$ by $r_k$ gives $s = \sum_k r_k^2\cos(\cdot)/\sum_k r_k^2$
(second variant panel, **tilt** slider). A radius per *position* $\rho_i$ cancels out of a
cosine, so it is shown on the raw dot product $\rho_i\rho_j\,s(i,j)$ (third panel;
$\rho = f_0/\max f_0$, 0 unvoiced).

**Pitch-similarity bias.** With $z_i = (f_{0,i}-\mu)/(\sigma+10^{-8})$ over voiced frames,
$$b_{ij} = \exp\!\big(-|z_i - z_j|\cdot \text{scale}\big)$$
is added to the pre-softmax scores: frames of similar pitch attend to each other. Unvoiced rows
and columns get 0 (no boost). The reference defines it but never applies it; see the **Pitch
bias** tab (and the combined prior $s + b$).

**Reading the model statistics.** At initialisation the gate/MLP activation ratio is already
about $\sqrt{5d/(d+1)}$ ($\approx 2.23$ at $d=512$): the layer shapes alone set it. The **Model**
tab draws this baseline beside the measured ratios so nobody reads learned "pitch-aware gating"
into numbers the initial weights produce. It also warns when a checkpoint uses the reference's
non-causal (additive) decoder mask.

**Per-head scores.** The **Model** tab scores every attention head: does it follow pitch,
rotary position or plain distance, how far does it look and how spread is it? A high pitch
score can simply mean the head attends nearby (F0 changes slowly), so read it beside the
*partial* score (pitch controlling for distance). The definitions, as
`echo_core/head_scores.py` states them:
"""
HEAD_SCORE_MD = "```text\n" + (A.HEAD_SCORE_DEFINITIONS or "").strip() + "\n```"


def _plot(label: str, elem_id: str, **kw) -> gr.Plot:
    return gr.Plot(label=label, show_label=False, elem_id=elem_id, **kw)


def _export_button() -> gr.Button:
    return gr.Button("Export this view (PNG, HTML, CSV)", size="sm")


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

            # ---------------------------------------------------------------- 4 model
            with gr.Tab("Model", id="model", elem_id="tab-model") as tab_model:
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2):
                        ckpt = gr.Radio(A.checkpoint_choices(), label="Checkpoint", elem_id="ckpt")
                        no_ckpt = gr.Markdown("No checkpoint in `assets/checkpoints/` yet: "
                                              "upload one below.", elem_classes="warn",
                                              visible=not A.checkpoint_choices())
                        with gr.Accordion("Upload a checkpoint", open=False):
                            upload = gr.File(label="config.json + model.safetensors (+ "
                                                   "tokenizer.json), or a bare reference state "
                                                   "dict (.safetensors / .bin)",
                                             file_count="multiple", elem_id="ckpt-upload",
                                             file_types=[".safetensors", ".bin", ".pt", ".json"])
                            gr.Markdown(f"At most {MAX_FILE_SIZE} per file. Bare reference state "
                                        "dicts carry no config: set these before uploading.",
                                        elem_classes="note")
                            act = gr.Radio(["from config"] + A.ACTIVATION_NAMES,
                                           value="from config", label="act")
                            f0_rot = gr.Radio(["from config", "on", "off"], value="from config",
                                              label="f0_rotary")
                            dmask = gr.Radio(["from config", "additive", "causal"],
                                             value="from config", label="decoder_mask")
                    with gr.Column(scale=3):
                        teacher = gr.Textbox(label="Transcript for the gradient step (optional)",
                                             placeholder="empty: the model's own greedy "
                                                         "transcript", elem_id="teacher")
                        run = gr.Button("Run the model on the clip", variant="primary",
                                        elem_id="run-model")
                        mask_warn = gr.Markdown(visible=False, elem_classes="warn",
                                                elem_id="mask-warning")
                        transcript = gr.Textbox(label="Greedy transcript", interactive=False,
                                                elem_id="transcript", buttons=["copy"])
                        model_info = gr.Markdown(elem_id="model-info")
                with gr.Row():
                    acts = gr.Dataframe(label="Component statistics: forward activations",
                                        interactive=False, elem_id="acts")
                    grads = gr.Dataframe(label="Component statistics: gradients (one "
                                               "teacher-forced step)", interactive=False,
                                         elem_id="grads")
                with gr.Row(equal_height=False):
                    gates = gr.Dataframe(label="Gate vs MLP activations (🟢 ratio < 2, 🟡 ≥ 2; "
                                               "at init = the ratio initial weights give)",
                                         interactive=False, elem_id="gates", scale=1)
                    gate_plot = _plot("Gate MLP ratio per block", "gate-plot", scale=1)
                report = gr.Code(label="Text report", language=None, lines=12, elem_id="report",
                                 buttons=["copy", "download"])
                with gr.Row():
                    att_kind = gr.Radio(ATTENTION_KINDS, value=ATTENTION_KINDS[0],
                                        label="Attention")
                    att_which = gr.Radio(["scores", "weights"], value="scores", label="Values",
                                         info="pre-softmax scores or softmax weights")
                    att_layer = gr.Slider(0, 1, 0, step=1, label="Layer")
                    att_head = gr.Slider(0, 1, 0, step=1, label="Head")
                att_plot = _plot("Attention map", "attention-plot")
                with gr.Row(equal_height=False):
                    used_bias_plot = _plot("Pitch bias as used", "used-bias-plot", scale=3)
                    learned = gr.Dataframe(label="Learned rotary scalars per attention module",
                                           interactive=False, elem_id="learned", scale=2)
                gr.Markdown("### Per-head scores\nOne cell per layer and head; rank "
                            "correlations on a fixed −1…1 scale (definitions in the Learn "
                            "tab).",
                            elem_classes="note")
                hs_score = gr.Radio(HEAD_SCORE_CHOICES, value=HEAD_SCORES_SHOWN[0],
                                    label="Head score", elem_id="head-score-choice")
                hs_note = gr.Markdown(visible=False, elem_classes="warn",
                                      elem_id="head-score-note")
                hs_plot = _plot("Per-head scores", "head-score-plot")
                hs_table = gr.Dataframe(label="Per-head scores (every score; CSV in the "
                                              "export)",
                                        interactive=False, max_height=360,
                                        elem_id="head-score-table")
                model_export = _export_button()

            # ---------------------------------------------------------------- 5 compare
            with gr.Tab("Compare", id="compare", elem_id="tab-compare") as tab_compare:
                with gr.Row():
                    ckpt_a = gr.Radio(A.checkpoint_choices(), label="Checkpoint A",
                                      elem_id="ckpt-a")
                    ckpt_b = gr.Radio(A.checkpoint_choices(), label="Checkpoint B",
                                      elem_id="ckpt-b")
                compare_btn = gr.Button("Compare on the clip", variant="primary",
                                        elem_id="run-compare")
                with gr.Row():
                    trans_a = gr.Markdown(elem_id="transcript-a")
                    trans_b = gr.Markdown(elem_id="transcript-b")
                cmp_gate_plot = _plot("Gate MLP ratios compared", "compare-gate-plot")
                with gr.Row():
                    cmp_kind = gr.Radio(ATTENTION_KINDS, value=ATTENTION_KINDS[0],
                                        label="Attention")
                    cmp_which = gr.Radio(["scores", "weights"], value="scores", label="Values")
                    cmp_layer = gr.Slider(0, 1, 0, step=1, label="Layer")
                    cmp_head = gr.Slider(0, 1, 0, step=1, label="Head")
                cmp_att_plot = _plot("Attention compared", "compare-attention-plot")
                diff_table = gr.Dataframe(label="Parameter differences (diff_checkpoints), "
                                                "largest relative change first",
                                          interactive=False, max_height=360, elem_id="diff")
                scalars_table = gr.Dataframe(label="Learned scalars, largest change first",
                                             interactive=False,
                                             max_height=360, elem_id="scalars")
                cmp_score = gr.Radio(HEAD_SCORE_CHOICES, value="pitch_partial_spearman",
                                     label="Head score (A and B)",
                                     elem_id="compare-score-choice")
                with gr.Row(equal_height=False):
                    cmp_hs_a = _plot("Head scores A", "compare-head-score-a", scale=1)
                    cmp_hs_b = _plot("Head scores B", "compare-head-score-b", scale=1)
                cmp_hs_diff = gr.Dataframe(label="Head score B − A per (kind, layer, head)",
                                           interactive=False, max_height=360,
                                           elem_id="compare-head-score-diff")
                compare_export = _export_button()

            # ---------------------------------------------------------------- batch results
            with gr.Tab("Batch results", id="batch", elem_id="tab-batch") as tab_batch:
                names = B.list_results()
                with gr.Row():
                    batch_choice = gr.Radio(names, value=names[0] if names else None,
                                            label=f"Results folders (sub-folders of "
                                                  f"${B.RESULTS_ENV})", elem_id="batch-choice",
                                            scale=4)
                    batch_refresh = gr.Button("Refresh", size="sm", elem_id="batch-refresh",
                                              scale=1)
                batch_empty = gr.Markdown(batch_empty_note(names), visible=not names,
                                          elem_id="batch-empty")
                batch_info = gr.Markdown(elem_id="batch-info")
                batch_plots = [_plot(f"Batch figure {i + 1}", f"batch-plot-{i}", visible=False)
                               for i in range(BATCH_PLOTS)]
                batch_summary = gr.Dataframe(label="Summary per checkpoint and block",
                                             interactive=False, max_height=360,
                                             elem_id="batch-summary")
                batch_errors = gr.Dataframe(label="Errors (failed clip × checkpoint units)",
                                            interactive=False, max_height=240,
                                            elem_id="batch-errors")

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
        private = dict(api_visibility="private")
        quiet = dict(show_progress="hidden", **private)
        live = dict(trigger_mode="always_last", show_progress="hidden")
        refresh = dict(fn=cb_refresh_active, inputs=[active_tab] + rotary_inputs + [scale],
                       outputs=rotary_outputs + [bias_plot, prior_plot], **quiet)

        example.input(cb_load_example, example, audio, **private)
        audio.change(cb_extract_f0, [audio] + praat_inputs, pitch_outputs, api_name="extract_f0",
                     trigger_mode="always_last").success(**refresh)
        retrack.click(cb_extract_f0, [audio] + praat_inputs, pitch_outputs,
                      **private).success(**refresh)
        demo.load(cb_extract_f0, [audio] + praat_inputs, pitch_outputs,
                  **private).success(**refresh)
        demo.load(cb_checkpoints, uploads, [ckpt, ckpt_a, ckpt_b, no_ckpt], **quiet)

        # Tab.select: remember the visible tab and draw its plots now that they have a size.
        def selected(tab, name):
            return tab.select(lambda: name, None, active_tab, **quiet)

        selected(tab_pitch, "pitch").then(cb_pitch, [clip_key, praat_state], [pitch_plot, stats],
                                          **quiet)
        selected(tab_rotary, "rotary").then(cb_rotary, rotary_inputs, rotary_outputs,
                                            **quiet).then(cb_sweep, head_dim, sweep_plot, **quiet)
        selected(tab_bias, "bias").then(cb_bias, bias_inputs, [bias_plot, prior_plot], **quiet)
        selected(tab_model, "model").then(cb_model_tab, [model_key, att_kind, att_layer,
                                                         att_head, att_which, hs_score],
                                          [gate_plot, att_plot, used_bias_plot, hs_plot],
                                          **quiet)
        selected(tab_compare, "compare").then(cb_compare_attention, [compare_state, cmp_kind,
                                                                     cmp_layer, cmp_head,
                                                                     cmp_which],
                                              cmp_att_plot, **quiet).then(
            cb_compare_scores, [compare_state, cmp_score], [cmp_hs_a, cmp_hs_b, cmp_hs_diff],
            **quiet)
        selected(tab_learn, "learn")
        batch_outputs = [batch_info, batch_summary, batch_errors, *batch_plots]
        selected(tab_batch, "batch").then(cb_batch_list, batch_choice, [batch_choice,
                                                                        batch_empty],
                                          **quiet).then(cb_batch_results, batch_choice,
                                                        batch_outputs, **quiet)
        batch_refresh.click(cb_batch_list, batch_choice, [batch_choice, batch_empty],
                            **private).then(cb_batch_results, batch_choice, batch_outputs,
                                            **quiet)
        batch_choice.input(cb_batch_results, batch_choice, batch_outputs,
                           api_name="batch_results")

        log_theta.change(cb_rotary, rotary_inputs, rotary_outputs, api_name="similarity_map",
                         **live)
        tilt.change(cb_rotary, rotary_inputs, rotary_outputs, **private, **live)
        for control in (head_dim, unit):
            control.input(cb_rotary, rotary_inputs, rotary_outputs, **private, **live)
        head_dim.input(cb_sweep, head_dim, sweep_plot, **private, **live)
        scale.change(cb_bias, bias_inputs, [bias_plot, prior_plot], api_name="pitch_bias", **live)

        upload.upload(cb_upload, [upload, act, f0_rot, dmask, uploads],
                      [ckpt, ckpt_a, ckpt_b, no_ckpt, uploads], **private)
        run.click(cb_analyze, [clip_key, praat_state, ckpt, act, f0_rot, dmask, teacher, att_kind,
                               att_which, hs_score],
                  [model_key, mask_warn, transcript, model_info, acts, grads, gates, gate_plot,
                   report, att_layer, att_head, att_plot, used_bias_plot, learned, hs_note,
                   hs_plot, hs_table],
                  api_name="analyze_model", concurrency_id="model", concurrency_limit=1)
        hs_score.input(cb_head_scores, [model_key, hs_score], hs_plot, **private, **live)
        att_kind.input(cb_attention_kind, [model_key, att_kind, att_which],
                       [att_layer, att_head, att_plot], **private)
        for control in (att_layer, att_head, att_which):
            control.input(cb_attention, [model_key, att_kind, att_layer, att_head, att_which],
                          att_plot, **private, **live)

        compare_btn.click(cb_compare, [clip_key, praat_state, ckpt_a, ckpt_b, cmp_kind,
                                       cmp_which, cmp_score],
                          [compare_state, trans_a, trans_b, cmp_gate_plot, cmp_layer, cmp_head,
                           cmp_att_plot, diff_table, scalars_table, cmp_hs_a, cmp_hs_b,
                           cmp_hs_diff],
                          api_name="compare_models", concurrency_id="model", concurrency_limit=1)
        cmp_score.input(cb_compare_scores, [compare_state, cmp_score],
                        [cmp_hs_a, cmp_hs_b, cmp_hs_diff], **private, **live)
        for control in (cmp_kind, cmp_layer, cmp_head, cmp_which):
            control.input(cb_compare_attention, [compare_state, cmp_kind, cmp_layer, cmp_head,
                                                 cmp_which], cmp_att_plot, **private, **live)

        current = [clip_key, praat_state, log_theta, head_dim, unit, tilt, scale, model_key,
                   att_kind, att_layer, att_head, att_which, compare_state, cmp_kind, cmp_layer,
                   cmp_head, cmp_which, hs_score, cmp_score]
        for button, view in ((pitch_export, "pitch"), (rotary_export, "rotary"),
                             (bias_export, "bias"), (model_export, "model"),
                             (compare_export, "compare")):
            button.click(cb_export_view, [gr.State(view)] + current, files, **private,
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
