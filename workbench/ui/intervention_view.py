"""The Interventions tab: does this checkpoint use pitch? Run it on the clip under the true F0
and under one pitch condition, side by side (transcripts, per-token log-likelihood change, theta
per layer, the encoder attention difference, head scores against their null).
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import numpy as np

from echo_core.pitch_conditions import DEFAULTS
from workbench import analysis as A
from workbench import checkpoints as C
from workbench import figures as F
from workbench import figures_model as FM
from workbench import intervention_analysis as IA
from workbench.ui.common import (PRIVATE, QUIET, InputError, _plot, _settings, api_endpoint,
                                 guarded, message_box, note_update, on_page, session_clip,
                                 tab_selected, table)

CONDITIONS = [  # (label, kind): what the radio offers; "true" is always run beside
    ("constant F0 (Hz)", "constant"), ("scaled F0 (× factor)", "scaled"),
    ("shifted F0 (semitones)", "semitones"), ("shuffled voiced F0 (seed)", "shuffled"),
    ("reversed voiced F0", "reversed"), ("time-rolled F0 (fraction of clip)", "rolled"),
    ("another clip's F0", "other"), ("all unvoiced", "unvoiced"),
    ("pitch-shifted audio, new F0 (semitones)", "audio"),
    ("pitch-shifted audio, original F0 (semitones)", "audio_keep")]
NO_VALUE = ("reversed", "unvoiced", "other")
HEAD_COLUMNS = ["kind", "layer", "head", "pitch_spearman", "pitch_spearman_null_p95",
                "pitch_spearman_p", "pitch_partial_spearman", "pitch_partial_spearman_null_mean",
                "pitch_partial_spearman_null_p95", "pitch_partial_spearman_p", "follows_pitch"]
EXPLAIN = ("Both runs score the same text (the true-F0 transcript unless you type one): "
           "Δ NLL > 0 means the condition made it *less* likely, i.e. the model used the pitch "
           "it lost. A head **follows pitch** only when |its pitch score| beats the 95th "
           "percentile of the same score against 10 null contours of this clip (5 time-rolled, "
           "5 shuffled); `p` is the share of nulls that do at least as well.")


def condition_text(kind: str, value, other: str | None) -> str:
    """The condition string the library parses, from the radio, the number and the clip."""
    if kind == "other":
        return f"other:{other or ''}"
    if kind in NO_VALUE:
        return kind
    return f"{kind}:{DEFAULTS.get(kind, '') if value is None else f'{float(value):g}'}"


def difference_figure(result: IA.InterventionResult, layer: int, head: int):
    """The true-F0 map of one encoder layer (numbered as in the head-score table: block 1 is
    the first attention block) and head, beside condition − true on a symmetric scale."""
    if not result.attention["true"]:
        return F.empty_figure("this model kept no encoder self-attention map for the clip")
    cond, true, diff = result.attention_difference(int(layer) - 1, int(head))
    bound = max(float(np.nanmax(np.abs(diff))), 1e-9)
    return FM.attention_maps(
        [(f"true F0: encoder layer {int(layer)}, head {int(head)}", true),
         (f"{result.condition} − true F0 (max |Δ| {bound:.2g})", diff)],
        x_title="key (display position)", y_title="query (display position)",
        title="Encoder self-attention: the true-F0 map and what the condition changed",
        colorbar_title="weight / Δ", zrange=(-bound, bound), colorscale="RdBu_r")


@guarded
def cb_intervene(key, praat, ckpt, kind, value, other, reference, layer=0, head=0):
    """Run a checkpoint under the true F0 and one pitch condition (api: intervene)."""
    clip, settings = session_clip(key), _settings(praat)
    if not ckpt:
        raise InputError("Pick a checkpoint first.", title="No checkpoint")
    if kind == "other" and not other:
        raise InputError("Pick the clip whose F0 to borrow (“Borrow the F0 of”).",
                       title="No clip to borrow from")
    other_clip = A.load_example(other) if kind == "other" and other else None
    result = IA.run_intervention(clip, settings, ckpt, condition_text(kind, value, other),
                                 other_clip, reference or "")
    route = result.route if result.uses_f0 else f"⚠️ {result.route}."
    layers = len(result.attention["true"])
    heads = result.attention["true"][0]["weights"].shape[0] if layers else 1
    heads_table = (table(result.head_scores[HEAD_COLUMNS], 3) if result.head_scores is not None
                   else None)
    note = "" if result.head_scores is not None else \
        f"No head scores for this clip: {result.head_scores_error}"
    return (result.key, route, table(result.summary), FM.token_logprob_bars(
                result.tokens, result.logprob_true, result.logprob_condition, result.condition),
            table(result.theta, 6),
            gr.update(minimum=1, maximum=max(layers, 2), value=1, interactive=layers > 1),
            gr.update(minimum=0, maximum=max(heads - 1, 1), value=0, interactive=heads > 1),
            difference_figure(result, 1, 0), heads_table, note_update(note))


@guarded
def cb_difference(result_key, layer, head):
    if not result_key:
        return gr.skip()
    return difference_figure(IA.get_result(result_key), layer, head)


def cb_condition_kind(kind):
    """Show the number box for kinds that take a value (with its default), the clip picker
    for another clip's contour."""
    return (gr.update(visible=kind not in NO_VALUE, value=float(DEFAULTS[kind])
                      if kind in DEFAULTS else None),
            gr.update(visible=kind == "other"))


def build_intervention_tab() -> SimpleNamespace:
    with gr.Tab("Interventions", id="interventions", elem_id="tab-interventions") as tab:
        gr.Markdown("Does this checkpoint **use** the pitch it is given? Pick a condition: the "
                    "model runs on the true F0 and on the changed one, and what moved is shown "
                    "side by side.", elem_classes="note")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                ckpt = gr.Radio(C.checkpoint_choices(), value=C.default_checkpoint(),
                                label="Checkpoint", elem_id="iv-ckpt")
                kind = gr.Radio(CONDITIONS, value="shuffled", label="Pitch condition",
                                elem_id="iv-condition")
                value = gr.Number(float(DEFAULTS["shuffled"]), label="Value", elem_id="iv-value")
                other = gr.Dropdown(list(A.example_clips()), label="Borrow the F0 of",
                                    visible=False, elem_id="iv-other")
                reference = gr.Textbox(label="Reference text (optional)", lines=1,
                                       placeholder="empty: the true-F0 transcript",
                                       elem_id="iv-reference")
                run = gr.Button("Run beside the true F0", variant="primary",
                                elem_id="run-intervention")
                note = message_box("iv-message")
            with gr.Column(scale=3):
                route = gr.Markdown(elem_id="iv-route")
                summary = gr.Dataframe(label="Transcripts and likelihood", interactive=False,
                                       elem_id="iv-summary")
                tokens = _plot("Per-token log-likelihood change", "iv-tokens")
        theta = gr.Dataframe(label="θ in force per layer", interactive=False, elem_id="iv-theta")
        with gr.Row():
            layer = gr.Slider(1, 2, 1, step=1, label="Encoder layer (as in the head scores)",
                              elem_id="iv-layer")
            head = gr.Slider(0, 1, 0, step=1, label="Head", elem_id="iv-head")
        attention = _plot("Attention difference", "iv-attention")
        gr.Markdown(EXPLAIN, elem_classes="note")
        heads_note = gr.Markdown(visible=False, elem_classes="warn")
        heads = gr.Dataframe(label="Head pitch scores with their null", interactive=False,
                             elem_id="iv-heads")
        # inside the Tab: a component between two Tabs shifts the tab bar's slots (gradio
        # registers a tab at its child index, so a later tab overwrote its neighbour)
        result_key = gr.State(None)
    return SimpleNamespace(tab=tab, ckpt=ckpt, kind=kind, value=value, other=other,
                           reference=reference, run=run, note=note, route=route, summary=summary,
                           tokens=tokens, theta=theta, layer=layer, head=head,
                           attention=attention, heads=heads, heads_note=heads_note,
                           result_key=result_key)


def wire_interventions(demo: gr.Blocks, session: SimpleNamespace, v: SimpleNamespace) -> None:
    outputs = [v.result_key, v.route, v.summary, v.tokens, v.theta, v.layer, v.head,
               v.attention, v.heads, v.heads_note]
    inputs = [session.clip_key, session.praat, v.ckpt, v.kind, v.value, v.other, v.reference]
    on_page(v.run.click, cb_intervene, inputs, outputs, v.note,
            "The results below are still from the run before.")
    api_endpoint(cb_intervene, inputs, outputs, "intervene")
    v.kind.input(cb_condition_kind, v.kind, [v.value, v.other], **QUIET)
    for control in (v.layer, v.head):
        control.release(cb_difference, [v.result_key, v.layer, v.head], v.attention, **PRIVATE)
    tab_selected(v.tab, "interventions", session.active_tab).then(
        cb_difference, [v.result_key, v.layer, v.head], v.attention, **QUIET)
    demo.load(lambda uploads: gr.update(choices=C.checkpoint_choices(uploads or [])),
              session.uploads, v.ckpt, **QUIET)
