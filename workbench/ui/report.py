"""The exports and the report: :class:`ReportSettings` (what the page's controls hold), then
:func:`collect`, which rebuilds every view's figures, tables and texts from the caches, the
"Export this view" buttons, and the "Download report" button (api: report).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from types import SimpleNamespace

import gradio as gr

from workbench import analysis as A
from workbench import export as X
from workbench import model_analysis as M
from workbench.ui.clip_views import (AXIS_UNITS, BIAS_SCALE, HEAD_DIM, LOG10_THETA, bias_view,
                                     pitch_view, rotary_view, sweep_view)
from workbench.ui.common import PRIVATE, _settings, guarded, session_clip
from workbench.ui.model_views import (COMPARE_LABEL, COMPARE_SCORE, ENCODER, HEAD_SCORES_SHOWN,
                                      compare_figures, model_figures, session_result)

VIEWS = ("pitch", "rotary", "bias", "model", "compare")
SESSION_FIELDS = frozenset({"clip_key", "praat", "model_key", "compare_state"})  # gr.State


@dataclass(frozen=True)
class ReportSettings:
    """The session's analysis as the page's controls hold it; the defaults are the controls'
    opening values. The field order is the order of the export events' inputs, hence of the
    /report endpoint's parameters (the session states among them are not API parameters)."""

    clip_key: str | None = None  # session: the loaded clip
    praat: dict | None = None  # session: the Praat settings the clip was tracked with
    log10_theta: float = LOG10_THETA
    head_dim: int = HEAD_DIM
    unit: str = AXIS_UNITS[0]
    tilt: float = 0.0
    bias_scale: float = BIAS_SCALE
    model_key: str | None = None  # session: the Model tab's result
    kind: str = ENCODER
    layer: int = 1  # numbered as in the module paths: encoder attention layers start at 1
    head: int = 0
    which: str = "scores"
    compare_state: dict | None = None  # session: {"a": result key, "b": result key}
    cmp_kind: str = ENCODER
    cmp_layer: int = 1
    cmp_head: int = 0
    cmp_which: str = "scores"
    score: str = HEAD_SCORES_SHOWN[0]
    cmp_score: str = COMPARE_SCORE
    grid: str = "frames"  # the Rotary tab's position grid (mel frames or model positions)

    def api_args(self) -> tuple:
        """The /report endpoint's parameters: the fields no session state holds, in order."""
        return tuple(getattr(self, f.name) for f in fields(self) if f.name not in SESSION_FIELDS)


def plain_text(markdown: str) -> str:
    """Markdown shown in the page as the plain text a .txt file in the report should hold:
    emphasis and code marks dropped, words and numbers kept."""
    import re

    text = re.sub(r"(\*\*|__)(.+?)\1", r"\2", markdown)
    text = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"\1", text)
    return text.replace("`", "")


def collect(s: ReportSettings, views=VIEWS):
    """Figures, tables, texts and settings of the current analysis, rebuilt from the caches."""
    figs, tables, texts = {}, {}, {}
    clip, praat = session_clip(s.clip_key), _settings(s.praat)
    if "pitch" in views:
        figs["pitch"], tables["f0_statistics"], track = pitch_view(clip, praat)
        tables["f0_track"] = A.f0_table(track)
    if "rotary" in views:
        settings_md, rotary_figs, rotary_tables = rotary_view(
            clip, praat, s.log10_theta, s.head_dim, s.unit, s.tilt, s.grid)
        texts["rotary_settings"] = plain_text(settings_md)
        figs.update(rotary_figs)
        tables.update(rotary_tables)
        figs.update(sweep_view(s.head_dim))
    if "bias" in views:
        figs.update(bias_view(clip, praat, s.bias_scale, s.log10_theta, s.head_dim, s.unit))
    info = {"clip": {"name": clip.name, "key": clip.key, "seconds": clip.duration},
            "praat": asdict(praat),
            "rotary": {"theta": 10 ** float(s.log10_theta), "head_dim": int(s.head_dim),
                       "axes": s.unit, "radius_tilt": float(s.tilt), "grid": s.grid},
            "pitch_bias_scale": float(s.bias_scale)}
    if "model" in views and M.RESULTS.get(s.model_key) is not None:
        result = session_result(s.model_key)
        figs.update(model_figures(result, s.kind, s.layer, s.head, s.which, s.score))
        tables.update(result.tables())
        texts["model_report"], texts["transcript"] = result.report, result.transcript
        info["model"] = {**result.settings(), "head_score": s.score,
                         "attention": [s.kind, int(s.layer), int(s.head), s.which]}
    state = s.compare_state or {}
    if "compare" in views and all(M.RESULTS.get(state.get(k)) is not None for k in "ab"):
        ra, rb = (session_result(state[k], COMPARE_LABEL) for k in "ab")
        figs.update(compare_figures(ra, rb, s.cmp_kind, s.cmp_layer, s.cmp_head, s.cmp_which,
                                    s.cmp_score))
        tables["parameter_differences"], tables["learned_scalars_compare"] = M.compare_tables(ra,
                                                                                             rb)
        tables["head_scores_difference"] = M.head_score_difference(ra, rb, s.cmp_score)
        texts["transcripts_compare"] = (f"A {ra.label}: {ra.transcript}\n"
                                        f"B {rb.label}: {rb.transcript}\n")
        info["compare"] = {"a": ra.settings(), "b": rb.settings(),
                           "attention": [s.cmp_kind, int(s.cmp_layer), int(s.cmp_head),
                                         s.cmp_which],
                           "head_score": s.cmp_score}
    return figs, tables, texts, info


def export_view(view: str, settings: ReportSettings) -> list[str]:
    """Every figure of one view as PNG and HTML, every table as CSV."""
    figs, tables, _, _ = collect(settings, views=(view,))
    if not figs and not tables:
        raise gr.Error("Nothing to export in this view yet: run it first.",
                       title="Nothing to export")
    return X.export_view(view, figs, tables)


# ============================================================================= callbacks
# Gradio passes the controls' values positionally, in ReportSettings' field order.

@guarded
def cb_export_view(view, *inputs, progress=gr.Progress()):
    """One view's export (see export_view)."""
    progress(0.2, desc="rendering figures (PNG via Chromium)")
    return export_view(view, ReportSettings(*inputs))


@guarded
def cb_report(*inputs, progress=gr.Progress()):
    """The zip bundle: every figure (PNG + HTML), table (CSV), text report and the settings."""
    progress(0.1, desc="collecting the analysis")
    figs, tables, texts, info = collect(ReportSettings(*inputs))
    progress(0.4, desc=f"rendering {len(figs)} figures")
    return [X.report_bundle(figs, tables, texts, info)]


# ============================================================================= layout + wiring

def build_downloads_row() -> SimpleNamespace:
    """The report button and the file list every export lands in (below the tabs)."""
    with gr.Row(equal_height=False):
        report_btn = gr.Button("Download report (zip): figures, tables, text report, "
                               "settings", elem_id="report-btn")
        files = gr.File(label="Downloads (exports and report)", file_count="multiple",
                        interactive=False, elem_id="downloads")
    return SimpleNamespace(report_btn=report_btn, files=files)


def report_inputs(**components) -> list:
    """The components holding each ReportSettings field, in field order: every field named, the
    session fields held by gr.State (not API parameters), the others by controls."""
    names = [f.name for f in fields(ReportSettings)]
    if set(components) != set(names):
        raise TypeError(f"report inputs differ from ReportSettings: "
                        f"{sorted(set(components) ^ set(names))}")
    misplaced = [name for name in names
                 if isinstance(components[name], gr.State) != (name in SESSION_FIELDS)]
    if misplaced:
        raise TypeError(f"session fields must be gr.State, the others controls: {misplaced}")
    return [components[name] for name in names]


def wire_exports(downloads: SimpleNamespace, inputs: list, buttons: dict) -> None:
    """Each view's export button ({view: button}) and the report button; one export at a
    time."""
    for view, button in buttons.items():
        button.click(cb_export_view, [gr.State(view)] + inputs, downloads.files, **PRIVATE,
                     concurrency_id="export", concurrency_limit=1)
    downloads.report_btn.click(cb_report, inputs, downloads.files, api_name="report",
                               concurrency_id="export", concurrency_limit=1)
