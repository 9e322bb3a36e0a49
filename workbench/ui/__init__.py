"""The Gradio app, the only package that imports gradio and speaks to the user.

page (build_demo composes the views, launch_kwargs), clip_views (Audio & Pitch, Rotary
patterns, Pitch bias), model_views (Model, Compare), batch_view (Batch results), learn (Learn),
report (ReportSettings, collect, the exports and the report), common (what they share).
"""

from workbench.ui.page import build_demo, launch_kwargs

__all__ = ["build_demo", "launch_kwargs"]
