"""The Model and Compare tabs: run a checkpoint (or two) on the session's clip, show its
statistics, attention maps, pitch bias and per-head scores (and the texts that explain them),
and manage the checkpoint radios and uploads.
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import numpy as np
import pandas as pd

from echo_core.attention_kinds import FIRST_LAYER
from echo_core.errors import EchoError
from workbench import checkpoints as C
from workbench import figures as F
from workbench import figures_model as FM
from workbench import model_analysis as M
from workbench.ui.common import (LIVE, MAX_FILE_SIZE, PRIVATE, QUIET, InputError,
                                 _export_button, _plot, _settings, api_endpoint, guarded,
                                 message_box, note_update, on_page, session_clip, tab_selected,
                                 table)
from workbench.ui.model_nav import NAV_HEAD, attention_figure, grid_figure, parse_pick

ATTENTION_KINDS = list(M.ATTENTION_KINDS)
ENCODER = ATTENTION_KINDS[0]
NO_BIAS = "This model's encoder gets no F0, so there is no pitch bias to show."
HEAD_SCORES_SHOWN = ("pitch_spearman", "pitch_partial_spearman", "rotary_spearman",
                     "distance_spearman", "mean_distance_ms", "entropy_normalised")
HEAD_SCORE_CHOICES = [(FM.HEAD_SCORE_LABELS[s], s) for s in HEAD_SCORES_SHOWN]
COMPARE_SCORE = "pitch_partial_spearman"  # the Compare tab's opening head score
MODEL_OUTPUT_NAMES = (  # cb_analyze's outputs in order (the first is the session's state)
    "model_key", "mask_warn", "transcript", "model_info", "acts", "grads", "gates", "gate_plot",
    "report", "att_layer", "att_head", "att_plot", "used_bias_plot", "learned", "hs_note",
    "hs_plot", "hs_table")
PAGE_RUN_OUTPUT_NAMES = MODEL_OUTPUT_NAMES + ("grid_plot",)  # cb_analyze_page's: + the grid
RUN_LABEL, COMPARE_LABEL = "Run the model on the clip", "Compare on the clip"  # the buttons
MASK_WARNING = ("⚠️ **This checkpoint uses the reference's non-causal (additive) decoder "
                "mask**: the mask is *added* to the scores (+1 on and below the diagonal), so "
                "every token can attend to future tokens. Teacher-forced statistics therefore see "
                "the whole transcript, and greedy decoding runs the model differently from how "
                "it was trained.")


# ============================================================================= view builders

def head_score_figure(result, score, title: str | None = None, pick: str | None = None):
    """Layer x head heatmaps of one score, or the reason there are none; with ``pick`` a click
    on a cell opens that head (the Model view)."""
    if result.head_scores is None:
        return F.empty_figure(f"no head scores: {result.head_scores_error}")
    return FM.head_score_heatmaps(result.head_scores, score, title=title, pick=pick)


def model_figures(result, kind, layer, head, which, score=HEAD_SCORES_SHOWN[0]) -> dict:
    g = result.gates
    figs = {"gate_mlp_ratio": FM.gate_ratio_bars(g["block"], g["ratio"], g["status"],
                                                result.expected_ratio,
                                                band=(g["init_ratio_low"], g["init_ratio_high"])),
            "attention": attention_figure([result], kind, layer, head, which),
            "head_scores": head_score_figure(result, score, pick=NAV_HEAD)}
    if result.bias is not None:
        top = max(1.0, float(np.nanmax(result.bias)))
        figs["pitch_bias_as_used"] = F.bias_figure(
            result.bias, result.bias_positions, result.bias_f0, "seconds",
            M.position_seconds(result.dims["spec_stride"]), zrange=(0.0, top),
            title=("Pitch bias as added to the first encoder block's scores" if result.bias_applied
                   else "Pitch bias this model would see (not applied: pitch_bias is off)"))
    return figs


def compare_figures(ra, rb, kind, layer, head, which, score=COMPARE_SCORE) -> dict:
    series = {r.label: (list(r.gates["block"]), r.gates["ratio"].to_numpy()) for r in (ra, rb)}
    label = FM.HEAD_SCORE_LABELS.get(score, score)
    return {"gate_mlp_ratio_compare": FM.grouped_ratio_bars(series, ra.expected_ratio),
            "attention_compare": attention_figure([ra, rb], kind, layer, head, which),
            "head_scores_a": head_score_figure(ra, score, f"A · {ra.label}: {label}"),
            "head_scores_b": head_score_figure(rb, score, f"B · {rb.label}: {label}")}


def head_score_table(result):
    """The score table for display (empty when the clip could not be scored)."""
    return table(result.head_scores) if result.head_scores is not None else pd.DataFrame()


def gates_table(result):
    """Gate/MLP table: where each ratio sits against its block's at-init band (coloured), and
    the reference's own marker (green < 2, amber >= 2, a threshold below the at-init value)."""
    g = result.gates
    df = table(result.gates_display())
    where = FM.band_relation(g["ratio"], g["init_ratio_low"], g["init_ratio_high"])
    df["status"] = [f"{w} init band" for w in where]
    df.insert(1, "reference marker", ["🟢 < 2" if s == "🟢" else "🟡 ≥ 2" for s in g["status"]])
    colours = {f"{w} init band": f"background-color: {c}33" for w, c in FM.BAND_COLORS.items()}
    return df.style.map(lambda v: colours.get(v, ""), subset=["status"])


def mask_note(result) -> str:
    additive = result.dims.get("decoder_mask") == "additive"
    ablated = (" · *ablated: " + ", ".join(f"{k}={v}" for k, v in result.overrides.items())
               + "*") if result.overrides else ""
    return (" ⚠️ *non-causal (additive) decoder mask*" if additive else "") + ablated


def bias_note(result) -> str:
    return (" ⚠️ *pitch bias added to the scores: pitch alignment partly built in*"
            if result.pitch_bias_in_scores else "")


def warning_markdown(result) -> str:
    """Why the transcript may mislead: the clip (silent, too short, unvoiced) and the additive
    decoder mask; "" when neither applies."""
    lines = [f"⚠️ **{w[0].upper()}{w[1:]}.**" for w in getattr(result, "clip_warnings", [])]
    if result.dims.get("decoder_mask") == "additive":
        lines.append(MASK_WARNING)
    return "  \n".join(lines)


def previous_run_marked(message: str, key, praat, ckpt, act, f0_rotary, decoder_mask,
                        transcript, kind, which, score, previous_key, progress=None) -> list:
    """The Model view's outputs after a failed run (cb_analyze_page's arguments): every panel
    keeps the last good run (so its sliders still work), and the run summary says so, naming
    that run, so nothing from it passes as the answer to the failed request."""
    previous = M.RESULTS.get(previous_key) if previous_key else None
    what = (info_markdown(previous) if previous is not None else "")
    marked = ("⚠️ **The last run failed** (see the message above): the panels below are from "
              "the run before it" + (f":  \n{what}" if what else "; there was none yet."))
    outputs = [gr.skip()] * len(PAGE_RUN_OUTPUT_NAMES)
    outputs[MODEL_OUTPUT_NAMES.index("model_info")] = marked
    return outputs


def info_markdown(result) -> str:
    """What ran on what: layers, theta mode, pitch bias, mask, test scores, the gradient step."""
    d = result.dims
    test = result.meta.get("test") or {}
    score = f" · test WER {test['wer']:.3f}, CER {test['cer']:.3f}" if "wer" in test else ""
    if result.overrides:  # an ablated run is not the model the test WER was measured on
        changed = ", ".join(f"{k}={v}" for k, v in result.overrides.items())
        score = f" · **ablated run** ({changed})" + (
            ": the checkpoint's test WER does not apply" if "wer" in test else "")
    theta = (f"pitch-modulated θ ({d.get('theta_mode', 'mean_f0')}, F0 mean over "
             f"{'voiced frames' if d.get('f0_mean') == 'voiced' else 'all frames'})"
             if d.get("f0_rotary") else "learned inv_freq (no F0)")
    bias = "pitch bias **on**" if d.get("pitch_bias") else "pitch bias off"
    return (f"**{result.label}** ({result.meta.get('source', '?')}) on *{result.clip_name}*: "
            f"{d['aud_idx']} encoder + {d['text_idx']} decoder layers, d={d['aud_dims']}, "
            f"{d['aud_head']} heads, {d['mels']} mels · {theta} · {bias} · decoder mask "
            f"`{d.get('decoder_mask')}`{score}  \nTranscript decoded by "
            f"{result.decoding}. Gradient step: teacher-forced on the "
            f"{result.teacher_source} “{result.teacher_text}” (loss {result.loss:.3f})."
            + "".join(f"  \n⚠️ {w}" for w in result.warnings))


def head_score_markdown(result) -> str:
    """What the head-score plot cannot say by itself: missing scores, built-in alignment."""
    if result.head_scores is None:
        return f"⚠️ No per-head scores for this clip: {result.head_scores_error}"
    if result.pitch_bias_in_scores:
        return ("⚠️ **This model adds the pitch bias to its attention scores** "
                "(`pitch_bias` on): high pitch alignment of those heads is partly built "
                "in, not learned. Rows concerned say so in the `note` column.")
    return ""


# ============================================================================= callbacks

def session_result(key: str | None, button: str = RUN_LABEL) -> M.ModelResult:
    """The session's model analysis; when there is none, the message names the button."""
    try:
        return M.get_result(key)
    except EchoError as e:
        raise InputError(f"{e}: press “{button}” first") from e


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


def _choices(uploads, selected=None, fallback=None):
    """Radio choices with ``selected`` kept if still offered, else ``fallback``, else the
    first."""
    choices = C.checkpoint_choices(uploads or [])
    ids = [c[1] for c in choices]
    value = next((v for v in (selected, fallback) if v in ids), ids[0] if ids else None)
    return gr.update(choices=choices, value=value)


def cb_checkpoints(uploads):
    """Refresh the checkpoint radios on page load (checkpoints shipped after start-up appear):
    Model on the default checkpoint, Compare on the index's pair."""
    empty = not C.checkpoint_choices(uploads or [])
    first, second = C.compare_pair()
    return (_choices(uploads, C.default_checkpoint()), _choices(uploads, first),
            _choices(uploads, second),
            gr.update(visible=empty))


@guarded
def cb_upload(files, act, f0_rotary, decoder_mask, uploads):
    if not files:
        return [gr.skip()] * 5
    paths = [f if isinstance(f, str) else f.name for f in (files if isinstance(files, list)
                                                           else [files])]
    ckpt = C.register_upload(paths, overrides(act, f0_rotary, decoder_mask))
    uploads = [u for u in (uploads or []) if u != ckpt][-7:] + [ckpt]
    gr.Info("Checkpoint uploaded and loaded; it is now selectable in Model and Compare.")
    first, second = C.compare_pair()
    return (_choices(uploads, ckpt), _choices(uploads, first), _choices(uploads, second),
            gr.update(visible=False), uploads)


def _index_slider(count: int, first: int = 0):
    """A first..first+count-1 slider (gradio needs max > min, so a single choice is locked)."""
    return gr.update(minimum=first, maximum=first + max(count - 1, 1), value=first,
                     interactive=count > 1)


def _layer_slider(count: int, kind: str):
    """Layers numbered as in the module paths and the head-score tables."""
    return _index_slider(count, FIRST_LAYER[kind])


@guarded
def cb_analyze(key, praat, ckpt, act, f0_rotary, decoder_mask, transcript, kind, which,
               score=HEAD_SCORES_SHOWN[0], progress=gr.Progress()):
    """Run a checkpoint on the clip: transcript, statistics, report, maps (api: analyze_model)."""
    clip, settings = session_clip(key), _settings(praat)
    if not ckpt:
        raise InputError("Pick a shipped checkpoint or upload one first.", title="No checkpoint")
    result = M.run_model(clip, settings, ckpt, overrides(act, f0_rotary, decoder_mask),
                         transcript or "", progress=lambda f, what: progress(f, desc=what))
    figs = model_figures(result, kind, FIRST_LAYER[kind], 0, which, score)
    layers, heads = M.attention_shape(result, kind)
    warning = warning_markdown(result)
    if warning or result.warnings:
        additive = result.dims.get("decoder_mask") == "additive"
        gr.Warning(" ".join([f"{w[0].upper()}{w[1:]}." for w in result.clip_warnings]
                            + result.warnings + (["This checkpoint uses the reference's "
                                                  "non-causal (additive) decoder mask."]
                                                 if additive else [])))
    return (result.key, gr.update(value=warning, visible=bool(warning)), result.transcript,
            info_markdown(result), table(result.activations), table(result.gradients),
            gates_table(result), figs["gate_mlp_ratio"], result.report,
            _layer_slider(layers, kind),
            _index_slider(heads), figs["attention"],
            figs.get("pitch_bias_as_used", F.empty_figure(NO_BIAS)), table(result.learned, 6),
            note_update(head_score_markdown(result)), figs["head_scores"],
            head_score_table(result))


def cb_analyze_page(key, praat, ckpt, act, f0_rotary, decoder_mask, transcript, kind, which,
                    score, previous_key, progress=gr.Progress()):
    """The page's run: cb_analyze, with the session's last result key last (for
    previous_run_marked when this run fails), and the thumbnail grid as one more output: in
    the same answer, not a second event after it (a round trip and Gradio's dispatch, ~0.2 s)."""
    out = cb_analyze(key, praat, ckpt, act, f0_rotary, decoder_mask, transcript, kind, which,
                     score, progress=progress)
    grid = grid_figure(session_result(out[0]), kind, which, FIRST_LAYER[kind], 0)
    return (*out, grid)


@guarded
def cb_head_scores(result_key, score):
    if not result_key or M.RESULTS.get(result_key) is None:
        return gr.skip()
    return head_score_figure(session_result(result_key), score, pick=NAV_HEAD)


@guarded
def cb_grid(result_key, kind, which, layer, head):
    """The thumbnail grid of the chosen kind, the open head outlined."""
    if not result_key or M.RESULTS.get(result_key) is None:
        return gr.skip()
    return grid_figure(session_result(result_key), kind, which, layer, head)


@guarded
def cb_pick(result_key, payload, which):
    """A thumbnail or head-score cell was clicked: set the kind, layer and head controls and
    open that head's map (the sliders' ranges follow the kind)."""
    if not result_key or not payload:
        return [gr.skip()] * 5
    result = session_result(result_key)
    kind, layer, head = parse_pick(payload)
    figure = attention_figure([result], kind, layer, head, which)  # checks layer and head
    layers, heads = M.attention_shape(result, kind)
    first = FIRST_LAYER[kind]
    return (kind, gr.update(minimum=first, maximum=first + max(layers - 1, 1), value=layer,
                            interactive=layers > 1),
            gr.update(minimum=0, maximum=max(heads - 1, 1), value=head, interactive=heads > 1),
            figure, grid_figure(result, kind, which, layer, head))


@guarded
def cb_attention(result_key, kind, layer, head, which):
    if not result_key:
        return gr.skip()
    return attention_figure([session_result(result_key)], kind, layer, head, which)


@guarded
def cb_attention_kind(result_key, kind, which):
    if not result_key:
        return [gr.skip()] * 3
    layers, heads = M.attention_shape(session_result(result_key), kind)
    return (_layer_slider(layers, kind), _index_slider(heads),
            cb_attention(result_key, kind, FIRST_LAYER[kind], 0, which))


@guarded
def cb_model_tab(result_key, kind, layer, head, which, score):
    """Redraw the model plots when the tab becomes visible (hidden plots render too small)."""
    if not result_key or M.RESULTS.get(result_key) is None:
        return [gr.skip()] * 4
    figs = model_figures(session_result(result_key), kind, layer, head, which, score)
    return (figs["gate_mlp_ratio"], figs["attention"],
            figs.get("pitch_bias_as_used", F.empty_figure(NO_BIAS)), figs["head_scores"])


@guarded
def cb_compare(key, praat, ckpt_a, ckpt_b, kind, which, score=COMPARE_SCORE,
               act="from config", f0_rotary="from config", decoder_mask="from config",
               progress=gr.Progress()):
    """Two checkpoints on the same clip, both with the Model tab's run settings (api:
    compare_models)."""
    clip, settings = session_clip(key), _settings(praat)
    if not ckpt_a or not ckpt_b:
        raise InputError("Pick two checkpoints (A and B).", title="Missing checkpoint")
    run_settings = overrides(act, f0_rotary, decoder_mask)
    ra = M.run_model(clip, settings, ckpt_a, run_settings,
                     progress=lambda f, what: progress(f / 2, desc=f"A: {what}"))
    rb = M.run_model(clip, settings, ckpt_b, run_settings,
                     progress=lambda f, what: progress(0.5 + f / 2, desc=f"B: {what}"))
    figs = compare_figures(ra, rb, kind, FIRST_LAYER[kind], 0, which, score)
    (layers_a, heads_a), (layers_b, heads_b) = (M.attention_shape(r, kind) for r in (ra, rb))
    diff, scalars = M.compare_tables(ra, rb)
    diff = diff.sort_values("rel_change", ascending=False, kind="stable")
    scalars = scalars.sort_values("change", key=abs, ascending=False, kind="stable")
    return ({"a": ra.key, "b": rb.key},
            f"**A · {ra.label}:** “{ra.transcript}”{mask_note(ra)}{bias_note(ra)}",
            f"**B · {rb.label}:** “{rb.transcript}”{mask_note(rb)}{bias_note(rb)}",
            figs["gate_mlp_ratio_compare"], _layer_slider(min(layers_a, layers_b), kind),
            _index_slider(min(heads_a, heads_b)), figs["attention_compare"], table(diff),
            table(scalars, 6), figs["head_scores_a"], figs["head_scores_b"],
            table(M.head_score_difference(ra, rb, score)))


@guarded
def cb_compare_scores(state, score):
    """A's and B's heatmaps of one score and the B − A table."""
    if not state or not all(M.RESULTS.get(state.get(k)) is not None for k in "ab"):
        return [gr.skip()] * 3
    ra, rb = (session_result(state[k], COMPARE_LABEL) for k in "ab")
    figs = compare_figures(ra, rb, ENCODER, FIRST_LAYER[ENCODER], 0, "scores", score)
    return (figs["head_scores_a"], figs["head_scores_b"],
            table(M.head_score_difference(ra, rb, score)))


@guarded
def cb_compare_attention(state, kind, layer, head, which):
    if not state:
        return gr.skip()
    results = [session_result(state[k], COMPARE_LABEL) for k in "ab"]
    return attention_figure(results, kind, layer, head, which)


# ============================================================================= layout + wiring

def build_model_tab() -> SimpleNamespace:
    """The Model tab's components, built in place (inside gr.Tabs)."""
    with gr.Tab("Model", id="model", elem_id="tab-model") as tab:
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                ckpt = gr.Radio(C.checkpoint_choices(), value=C.default_checkpoint(),
                                label="Checkpoint", elem_id="ckpt")
                no_ckpt = gr.Markdown("No checkpoint in `assets/checkpoints/` yet: "
                                      "upload one below.", elem_classes="warn",
                                      visible=not C.checkpoint_choices())
                with gr.Group(elem_id="run-settings"):
                    gr.Markdown("**Run settings (ablations)**: apply to any checkpoint, here "
                                "and in Compare; “from config” runs it as trained. A bare "
                                "reference state dict carries no config: set them before "
                                "uploading it.", elem_classes="note")
                    with gr.Row():
                        f0_rot = gr.Radio(["from config", "on", "off"], value="from config",
                                          label="f0_rotary", elem_id="run-f0-rotary")
                        dmask = gr.Radio(["from config", "additive", "causal"],
                                         value="from config", label="decoder_mask",
                                         elem_id="run-decoder-mask")
                    act = gr.Radio(["from config"] + C.ACTIVATION_NAMES,
                                   value="from config", label="act", elem_id="run-act")
                with gr.Accordion("Upload a checkpoint", open=False):
                    upload = gr.File(label="config.json + model.safetensors (+ "
                                           "tokenizer.json), or a bare reference state "
                                           "dict (.safetensors / .bin)",
                                     file_count="multiple", elem_id="ckpt-upload",
                                     file_types=[".safetensors", ".bin", ".pt", ".json"])
                    gr.Markdown(f"At most {MAX_FILE_SIZE} per file.", elem_classes="note")
                    upload_note = message_box("upload-message")
            with gr.Column(scale=3):
                teacher = gr.Textbox(label="Transcript for the gradient step (optional)",
                                     placeholder="empty: the model's own "
                                                 "transcript", elem_id="teacher")
                run = gr.Button(RUN_LABEL, variant="primary",
                                elem_id="run-model")
                run_note = message_box("run-message")
                mask_warn = gr.Markdown(visible=False, elem_classes="warn",
                                        elem_id="mask-warning")
                transcript = gr.Textbox(label="Transcript", interactive=False,
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
            att_layer = gr.Slider(1, 2, 1, step=1, label="Layer (numbered as in the head "
                                  "scores)")
            att_head = gr.Slider(0, 1, 0, step=1, label="Head")
        att_plot = _plot("Attention map", "attention-plot")
        grid_plot = _plot("All layers and heads", "attention-grid")
        nav_head = gr.Textbox(visible="hidden", elem_id=NAV_HEAD, label="picked head")
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
    return SimpleNamespace(
        tab=tab, ckpt=ckpt, no_ckpt=no_ckpt, upload=upload, upload_note=upload_note, act=act,
        f0_rot=f0_rot, dmask=dmask, teacher=teacher, run=run, run_note=run_note,
        mask_warn=mask_warn, transcript=transcript,
        model_info=model_info, acts=acts, grads=grads, gates=gates, gate_plot=gate_plot,
        report=report, att_kind=att_kind, att_which=att_which, att_layer=att_layer,
        att_head=att_head, att_plot=att_plot, grid_plot=grid_plot, nav_head=nav_head,
        used_bias_plot=used_bias_plot, learned=learned,
        hs_score=hs_score, hs_note=hs_note, hs_plot=hs_plot, hs_table=hs_table,
        model_export=model_export)


def build_compare_tab() -> SimpleNamespace:
    """The Compare tab's components, built in place (inside gr.Tabs)."""
    with gr.Tab("Compare", id="compare", elem_id="tab-compare") as tab:
        with gr.Row():
            ckpt_a = gr.Radio(C.checkpoint_choices(), value=C.compare_pair()[0],
                              label="Checkpoint A", elem_id="ckpt-a")
            ckpt_b = gr.Radio(C.checkpoint_choices(), value=C.compare_pair()[1],
                              label="Checkpoint B", elem_id="ckpt-b")
        compare_btn = gr.Button(COMPARE_LABEL, variant="primary",
                                elem_id="run-compare")
        compare_note = message_box("compare-message")
        with gr.Row():
            trans_a = gr.Markdown(elem_id="transcript-a")
            trans_b = gr.Markdown(elem_id="transcript-b")
        cmp_gate_plot = _plot("Gate MLP ratios compared", "compare-gate-plot")
        with gr.Row():
            cmp_kind = gr.Radio(ATTENTION_KINDS, value=ATTENTION_KINDS[0],
                                label="Attention")
            cmp_which = gr.Radio(["scores", "weights"], value="scores", label="Values")
            cmp_layer = gr.Slider(1, 2, 1, step=1, label="Layer (numbered as in the head "
                                  "scores)")
            cmp_head = gr.Slider(0, 1, 0, step=1, label="Head")
        cmp_att_plot = _plot("Attention compared", "compare-attention-plot")
        diff_table = gr.Dataframe(label="Parameter differences (diff_checkpoints), "
                                        "largest relative change first",
                                  interactive=False, max_height=360, elem_id="diff")
        scalars_table = gr.Dataframe(label="Learned scalars, largest change first",
                                     interactive=False,
                                     max_height=360, elem_id="scalars")
        cmp_score = gr.Radio(HEAD_SCORE_CHOICES, value=COMPARE_SCORE,
                             label="Head score (A and B)",
                             elem_id="compare-score-choice")
        with gr.Row(equal_height=False):
            cmp_hs_a = _plot("Head scores A", "compare-head-score-a", scale=1)
            cmp_hs_b = _plot("Head scores B", "compare-head-score-b", scale=1)
        cmp_hs_diff = gr.Dataframe(label="Head score B − A per (kind, layer, head)",
                                   interactive=False, max_height=360,
                                   elem_id="compare-head-score-diff")
        compare_export = _export_button()
    return SimpleNamespace(
        tab=tab, ckpt_a=ckpt_a, ckpt_b=ckpt_b, compare_btn=compare_btn, note=compare_note,
        trans_a=trans_a,
        trans_b=trans_b, cmp_gate_plot=cmp_gate_plot, cmp_kind=cmp_kind, cmp_which=cmp_which,
        cmp_layer=cmp_layer, cmp_head=cmp_head, cmp_att_plot=cmp_att_plot,
        diff_table=diff_table, scalars_table=scalars_table, cmp_score=cmp_score,
        cmp_hs_a=cmp_hs_a, cmp_hs_b=cmp_hs_b, cmp_hs_diff=cmp_hs_diff,
        compare_export=compare_export)


def wire_model(demo: gr.Blocks, session: SimpleNamespace, m: SimpleNamespace,
               c: SimpleNamespace) -> None:
    """Events of the Model (``m``) and Compare (``c``) tabs; the page wires their exports."""
    clip_key, praat_state, model_key = session.clip_key, session.praat, session.model_key
    compare_state, uploads, active_tab = session.compare_state, session.uploads, session.active_tab
    demo.load(cb_checkpoints, uploads, [m.ckpt, c.ckpt_a, c.ckpt_b, m.no_ckpt], **QUIET)
    grid = dict(fn=cb_grid, inputs=[model_key, m.att_kind, m.att_which, m.att_layer, m.att_head],
                outputs=m.grid_plot, **QUIET)
    tab_selected(m.tab, "model", active_tab).then(
        cb_model_tab, [model_key, m.att_kind, m.att_layer, m.att_head, m.att_which, m.hs_score],
        [m.gate_plot, m.att_plot, m.used_bias_plot, m.hs_plot], **QUIET).then(**grid)
    tab_selected(c.tab, "compare", active_tab).then(
        cb_compare_attention, [compare_state, c.cmp_kind, c.cmp_layer, c.cmp_head, c.cmp_which],
        c.cmp_att_plot, **QUIET).then(
        cb_compare_scores, [compare_state, c.cmp_score], [c.cmp_hs_a, c.cmp_hs_b, c.cmp_hs_diff],
        **QUIET)

    on_page(m.upload.upload, cb_upload, [m.upload, m.act, m.f0_rot, m.dmask, uploads],
            [m.ckpt, c.ckpt_a, c.ckpt_b, m.no_ckpt, uploads], m.upload_note,
            "The checkpoint choices are unchanged.")
    run_inputs = [clip_key, praat_state, m.ckpt, m.act, m.f0_rot, m.dmask, m.teacher, m.att_kind,
                  m.att_which, m.hs_score]
    run_outputs = [model_key] + [getattr(m, name) for name in MODEL_OUTPUT_NAMES[1:]]
    page_outputs = [model_key] + [getattr(m, name) for name in PAGE_RUN_OUTPUT_NAMES[1:]]
    one_at_a_time = dict(concurrency_id="model", concurrency_limit=1)
    on_page(m.run.click, cb_analyze_page, run_inputs + [model_key], page_outputs, m.run_note,
            on_error=previous_run_marked, **one_at_a_time)
    api_endpoint(cb_analyze, run_inputs, run_outputs, "analyze_model", **one_at_a_time)
    m.hs_score.input(cb_head_scores, [model_key, m.hs_score], m.hs_plot, **PRIVATE, **LIVE)
    m.att_kind.input(cb_attention_kind, [model_key, m.att_kind, m.att_which],
                     [m.att_layer, m.att_head, m.att_plot], **PRIVATE).then(**grid)
    for control in (m.att_layer, m.att_head, m.att_which):
        control.input(cb_attention, [model_key, m.att_kind, m.att_layer, m.att_head, m.att_which],
                      m.att_plot, **PRIVATE, **LIVE).then(**grid)
    m.nav_head.change(cb_pick, [model_key, m.nav_head, m.att_which],
                      [m.att_kind, m.att_layer, m.att_head, m.att_plot, m.grid_plot], **PRIVATE)

    compare_inputs = [clip_key, praat_state, c.ckpt_a, c.ckpt_b, c.cmp_kind, c.cmp_which,
                      c.cmp_score, m.act, m.f0_rot, m.dmask]
    compare_outputs = [compare_state, c.trans_a, c.trans_b, c.cmp_gate_plot, c.cmp_layer,
                       c.cmp_head, c.cmp_att_plot, c.diff_table, c.scalars_table, c.cmp_hs_a,
                       c.cmp_hs_b, c.cmp_hs_diff]
    on_page(c.compare_btn.click, cb_compare, compare_inputs, compare_outputs, c.note,
            "The panels below are still from the comparison before.", **one_at_a_time)
    api_endpoint(cb_compare, compare_inputs, compare_outputs, "compare_models", **one_at_a_time)
    c.cmp_score.input(cb_compare_scores, [compare_state, c.cmp_score],
                      [c.cmp_hs_a, c.cmp_hs_b, c.cmp_hs_diff], **PRIVATE, **LIVE)
    for control in (c.cmp_kind, c.cmp_layer, c.cmp_head, c.cmp_which):
        control.input(cb_compare_attention, [compare_state, c.cmp_kind, c.cmp_layer, c.cmp_head,
                                             c.cmp_which], c.cmp_att_plot, **PRIVATE, **LIVE)
