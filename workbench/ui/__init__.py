"""The Gradio app, the only package that imports gradio and speaks to the user.

page (build_demo composes the views, launch_kwargs), clip_views (Audio & Pitch, Rotary
patterns, Pitch bias), model_views (Model, Compare), model_nav (the Model view's
navigation: playhead-ready maps, the layers x heads grid, picked heads), playhead.js (the page's
navigation script), live_route + live_views.js (slider steps the page paints itself, without a
Gradio event per step), batch_view (Batch results), learn (Learn),
report (ReportSettings, collect, the exports and the report), common (what they share).
"""

from workbench.ui.live_route import mount as mount_live_route
from workbench.ui.page import build_demo, launch_kwargs

__all__ = ["build_demo", "launch_kwargs", "mount_live_route"]
