"""The Gradio app: the only package that imports gradio and speaks to the user."""

from workbench.ui.clip_views import build_demo, launch_kwargs

__all__ = ["build_demo", "launch_kwargs"]
