"""Echo Workbench: build the Gradio app and serve it (127.0.0.1:7860 unless GRADIO_SERVER_NAME /
GRADIO_SERVER_PORT say otherwise). The page opens with a bundled example clip loaded."""

import logging

from workbench.analysis import warm_up
from workbench.ui import build_demo, launch_kwargs

demo = build_demo()

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    demo.launch(prevent_thread_lock=True, **launch_kwargs())
    warm_up()  # once the server answers: the first librosa / Praat calls are slow
    demo.block_thread()
