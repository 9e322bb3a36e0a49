"""The Zoo tab: the model-zoo study as shipped (assets/checkpoints/zoo): which config hears
whom, whether pitch helps against fair controls, whether a wrong F0 hurts, and the verdicts.
Read on first visit (the tables are small and static)."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from echo_core.errors import EchoError
from workbench import zoo_results as Z
from workbench.ui.common import QUIET, message_box, tab_selected
from workbench.zoo_figure import wer_bars

INTRO = ("Six configurations trained on one corpus (espeak-ng, flite and festival voices, "
         "real FSDD speakers, spliced digit strings, augmented), one schedule and budget; "
         "only the rotary/pitch settings and the seed differ. Test sets are speakers no model "
         "heard. Intervals: paired bootstrap over test utterances (95%). The Free Spoken Digit "
         "Dataset (CC BY-SA 4.0) provides the real speakers; the zoo checkpoints share its "
         "licence. The Model view's default checkpoint is config (c) trained longer (not part "
         "of this comparison): its error rates are in `assets/checkpoints/zoo/RESULTS.md`, "
         "\"The default model\", beside the full text of this study.")


def cb_zoo():
    """(figure, WER table, comparisons, interventions, verdicts, message) of the shipped study."""
    try:
        study = Z.load_study()
    except EchoError as e:
        return (gr.skip(),) * 5 + (gr.update(value=str(e), visible=True),)
    return (wer_bars(*Z.wer_arrays(study)), Z.wer_table(study), Z.comparison_table(study),
            Z.intervention_matrix(study), Z.verdict_markdown(study), gr.update(visible=False))


def build_zoo_tab() -> SimpleNamespace:
    with gr.Tab("Zoo", id="zoo", elem_id="tab-zoo") as tab:
        gr.Markdown(INTRO, elem_classes="note")
        message = message_box("zoo-message")
        figure = gr.Plot(elem_id="zoo-wer-plot", show_label=False)
        gr.Markdown("**Word error rate (%)**: mean over seeds; [min, max] when several seeds.")
        wer = gr.Dataframe(elem_id="zoo-wer", interactive=False, wrap=True)
        gr.Markdown("**Does pitch help recognition?** WER(first) − WER(second), paired over "
                    "the same test utterances; negative: the first is better.")
        comps = gr.Dataframe(elem_id="zoo-comparisons", interactive=False, wrap=True)
        gr.Markdown("**Does a wrong F0 hurt?** Δ NLL per token of the true transcript "
                    "(teacher-forced) under each condition minus the true F0, all test clips. "
                    "Shuffling keeps the mean F0, the only thing mean-F0 models see; constant "
                    "100 Hz moves it.")
        inter = gr.Dataframe(elem_id="zoo-interventions", interactive=False, wrap=True)
        gr.Markdown("**Verdicts**")
        verdicts = gr.Markdown(elem_id="zoo-verdicts")
    return SimpleNamespace(tab=tab, message=message, figure=figure, wer=wer, comps=comps,
                           inter=inter, verdicts=verdicts)


def wire_zoo(z: SimpleNamespace, active_tab) -> None:
    tab_selected(z.tab, "zoo", active_tab).then(
        cb_zoo, None, [z.figure, z.wer, z.comps, z.inter, z.verdicts, z.message], **QUIET)
