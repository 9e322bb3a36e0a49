"""Echo Workbench: build the Gradio app and serve it (127.0.0.1:7860 unless GRADIO_SERVER_NAME /
GRADIO_SERVER_PORT say otherwise). The page opens with a bundled example clip loaded."""

import logging

from workbench import analysis, export
from workbench.ui import build_demo, launch_kwargs, mount_live_route

demo = build_demo()

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    demo.launch(prevent_thread_lock=True, **launch_kwargs())
    mount_live_route(demo.app)  # slider steps the page paints itself (workbench/ui/live_route)
    analysis.warm_up()  # once the server answers: the first librosa / Praat calls are slow
    export.warm_up()  # Chromium for PNG exports, in the background
    demo.block_thread()
