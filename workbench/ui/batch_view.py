"""The Batch results tab: lists the folders ``python -m workbench.batch`` wrote under the
results root and shows one's summary, errors and figures.
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import pandas as pd

from workbench import batch as B
from workbench.ui.common import (PRIVATE, QUIET, _plot, guarded, note_update, tab_selected,
                                 table)

BATCH_PLOTS = 4  # figure slots of the Batch results tab; report.html in the folder has them all
BATCH_COMMAND = ("python -m workbench.batch CLIPS_DIR --checkpoint assets/checkpoints/static_theta"
                 " --checkpoint assets/checkpoints/f0_theta_bias --out results/digits")


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
        return [gr.skip()] * (4 + BATCH_PLOTS)
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
    return (info, table(tables.get("summary", pd.DataFrame())),
            table(tables.get("head_scores_summary", pd.DataFrame())), table(errors), *plots)


def build_batch_tab() -> SimpleNamespace:
    """The tab's components, built in place (inside gr.Tabs)."""
    with gr.Tab("Batch results", id="batch", elem_id="tab-batch") as tab:
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
        batch_heads = gr.Dataframe(label="Head scores per checkpoint and head, over clips "
                                         "(mean, sd, min, max of each score)",
                                   interactive=False, max_height=360, elem_id="batch-heads")
        batch_errors = gr.Dataframe(label="Errors (failed clip × checkpoint units)",
                                    interactive=False, max_height=240,
                                    elem_id="batch-errors")
    return SimpleNamespace(tab=tab, batch_choice=batch_choice, batch_refresh=batch_refresh,
                           batch_empty=batch_empty, batch_info=batch_info,
                           batch_plots=batch_plots, batch_summary=batch_summary,
                           batch_heads=batch_heads, batch_errors=batch_errors)


def wire_batch(b: SimpleNamespace, active_tab) -> None:
    """List the folders when the tab opens or on Refresh; show the chosen one."""
    batch_outputs = [b.batch_info, b.batch_summary, b.batch_heads, b.batch_errors,
                     *b.batch_plots]
    tab_selected(b.tab, "batch", active_tab).then(
        cb_batch_list, b.batch_choice, [b.batch_choice, b.batch_empty], **QUIET).then(
        cb_batch_results, b.batch_choice, batch_outputs, **QUIET)
    b.batch_refresh.click(cb_batch_list, b.batch_choice, [b.batch_choice, b.batch_empty],
                          **PRIVATE).then(cb_batch_results, b.batch_choice, batch_outputs,
                                          **QUIET)
    b.batch_choice.input(cb_batch_results, b.batch_choice, batch_outputs,
                         api_name="batch_results")
