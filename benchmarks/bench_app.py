"""The Gradio app: cold start to the first HTTP answer, and a slider update over the HTTP API.

Cold start: ``python app.py`` in a fresh process (GRADIO_SERVER_PORT set to a free port) until
``GET /`` answers, against the same for a minimal Gradio app (a Markdown and a Textbox: the
floor any Gradio app pays, the baseline). Peak memory here is the server process's own peak RSS (VmHWM)
at its first answer, not a delta.

Slider update: with the app running and a 30 s clip loaded through the ``extract_f0``
endpoint, one call of the ``similarity_map`` endpoint (what releasing the theta slider sends)
through ``gradio_client``, against the same callback called in-process (the baseline) and the
callback plus serialising its figures to JSON (what Gradio adds before the network), and a
no-op endpoint of the minimal app through the same client (the floor of any API call).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from benchmarks import _harness as H
from benchmarks import _signals as S

APP = H.REPO / "app.py"
START_TIMEOUT = 120.0
MINIMAL_APP = '''import os
import gradio as gr
with gr.Blocks() as demo:
    gr.Markdown("hello")
    box = gr.Textbox()
    box.submit(lambda text: text, box, box, api_name="echo")
demo.launch(server_name="127.0.0.1", server_port=int(os.environ["GRADIO_SERVER_PORT"]))
'''
THETAS = (3.0, 3.5, 4.0, 4.5, 5.0)  # the range the slider calls sweep, never repeating a value
# (one step's figures are memoised: a repeated value would time a cache hit)


def _fresh_thetas():
    """log10 theta values spread over THETAS' range, each used once (golden-ratio steps)."""
    low, high = min(THETAS), max(THETAS)
    k = 0
    while True:
        k += 1
        yield round(low + (high - low) * ((k * 0.6180339887) % 1.0), 6)


def _env(port: int) -> dict:
    return {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(H.REPO)}


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP status is an answer
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


class Server:
    """A script served on a free port, in its own process group (stopped by that group's id)."""

    def __init__(self, script: Path):
        self.port = H.free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = tempfile.TemporaryFile()
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, str(script)], cwd=H.REPO,
                                     env=_env(self.port), stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait(self) -> float:
        """Seconds from process start to the first HTTP answer."""
        while time.perf_counter() - self.started < START_TIMEOUT:
            if self.proc.poll() is not None:
                self.log.seek(0)
                tail = self.log.read().decode(errors="replace").strip().splitlines()[-5:]
                raise RuntimeError(f"server exited {self.proc.returncode}: {' | '.join(tail)}")
            if _answers(self.url):
                return time.perf_counter() - self.started
            time.sleep(0.02)
        raise TimeoutError(f"no HTTP answer within {START_TIMEOUT:.0f} s")

    def peak_rss(self) -> int:
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                return next(int(line.split()[1]) * 1024 for line in f
                            if line.startswith("VmHWM:"))
        except (OSError, StopIteration):
            return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # our own child's group only
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def make_cold_start(script: str):
    """Factory: one call = start the script, wait for its first answer, stop it."""
    path = Path(script)
    peaks: list[int] = []

    def call():
        with Server(path) as server:
            seconds = server.wait()
            peaks.append(server.peak_rss())
        return seconds

    call.peaks = peaks
    return call


def _clip_file(seconds: float, start: float = 0.0) -> str:
    """A wav of ``seconds`` of looped real speech from ``start`` s on (another start gives
    audio the app has not analysed: its results are memoised per clip)."""
    import soundfile as sf

    suffix = f"-from-{start:g}s" if start else ""
    path = Path(tempfile.gettempdir()) / f"echo-bench-speech-{seconds:g}s{suffix}.wav"
    if not path.exists():
        first = int(round(start * S.SR))
        speech = S.real_speech(float(seconds + start))[first:first + int(round(seconds * S.SR))]
        sf.write(path, speech, S.SR, subtype="PCM_16")
    return str(path)


def _endpoint_kwargs(client, api_name: str, values: dict) -> dict:
    """Keyword arguments for an endpoint: ``values`` matched by parameter-name substring."""
    info = client.view_api(return_format="dict", print_info=False)["named_endpoints"][api_name]
    kwargs = {}
    for p in info["parameters"]:
        name = p["parameter_name"]
        match = next((v for k, v in values.items() if k in name), None)
        if match is not None:
            kwargs[name] = match
        elif not p.get("parameter_has_default"):
            raise RuntimeError(f"{api_name} needs {name!r}, which the benchmark cannot supply")
    return kwargs


def slider_http(rep: H.Report, args, seconds: float) -> None:
    from gradio_client import Client, handle_file

    from workbench import analysis as A
    from workbench.ui import clip_views

    group = f"slider update, {seconds:g} s clip"
    path = _clip_file(seconds)
    with Server(APP) as server:
        started = server.wait()
        if args.quick:  # this start stands in for the cold-start group (one server less)
            rep.row("cold start -> first HTTP answer", "app.py (Echo Workbench)",
                    {"seconds": started, "runs": 1, "number": 1, "min_s": started,
                     "max_s": started},
                    memory={"peak_bytes": server.peak_rss(), "mem_method": "server VmHWM"})
        client = Client(server.url, verbose=False)
        load = _endpoint_kwargs(client, "/extract_f0", {"audio": handle_file(path)})
        client.predict(api_name="/extract_f0", **load)  # sets the session's clip
        theta = _fresh_thetas()
        base = _endpoint_kwargs(client, "/similarity_map", {"theta": 4.0, "head_dim": 64,
                                                            "unit": "positions", "tilt": 0.0})
        theta_name = next(k for k in base if "theta" in k)

        def http():
            return client.predict(api_name="/similarity_map", **{**base, theta_name: next(theta)})

        http()
        clip = A.clip_from_path(path, Path(path).name)

        def inproc():  # praat None: the default settings, as extract_f0 stored them
            return clip_views.cb_rotary(clip.key, None, next(theta), 64, "positions", 0.0)

        def inproc_json():
            out = inproc()
            return sum(len(x.to_json()) for x in out if hasattr(x, "to_json"))

        inproc()
        runs = {"in-process cb_rotary (5 outputs)": inproc,
                "in-process cb_rotary + figures to JSON": inproc_json,
                "HTTP /similarity_map via gradio_client": http}
        with contextlib.ExitStack() as stack:
            if not args.quick:  # the floor of any API call: a no-op on the minimal app
                minimal = stack.enter_context(Server(_minimal_script()))
                minimal.wait()
                echo = Client(minimal.url, verbose=False)
                echo.predict("x", api_name="/echo")
                runs["HTTP no-op endpoint of a minimal Gradio app"] = \
                    lambda: echo.predict("x", api_name="/echo")
            timing = H.time_methods(runs, args.repeat, args.budget, args.quick)
        payload = len(json.dumps(http(), default=str))
        peak = server.peak_rss()
    for name in runs:
        ours = name.startswith("HTTP /similarity_map")
        extra = {"json_mb": inproc_json() / H.MB} if "JSON" in name else {}
        if ours:
            extra["response_mb"] = payload / H.MB
        rep.row(group, name, timing[name], baseline=name.startswith("in-process cb_rotary ("),
                memory={"peak_bytes": peak, "mem_method": "app server VmHWM"} if ours else None,
                extra=extra)


def _minimal_script() -> Path:
    path = Path(tempfile.gettempdir()) / "echo_bench_minimal_gradio_app.py"
    path.write_text(MINIMAL_APP)
    return path


def cold_start(rep: H.Report, args) -> None:
    runs = {"minimal Gradio app": make_cold_start(str(_minimal_script())),
            "app.py (Echo Workbench)": make_cold_start(str(APP))}
    timing = H.time_methods(runs, min(args.repeat, 3), args.budget, args.quick)
    for name, fn in runs.items():
        peak = max(fn.peaks) if fn.peaks else None
        rep.row("cold start -> first HTTP answer", name, timing[name],
                baseline=name.startswith("minimal"),
                memory={"peak_bytes": peak, "mem_method": "server VmHWM"} if peak else None)
    app = timing["app.py (Echo Workbench)"].get("seconds")
    rep.target("app cold start", "<= 6 s", H.fmt_seconds(app), None if app is None else app <= 6)


def main(argv=None) -> dict:
    args = H.parse_args(__doc__.splitlines()[0], argv)
    rep = H.Report("app", "Gradio app: cold start and slider update", args)
    if not args.quick:
        cold_start(rep, args)
    slider_http(rep, args, 3.0 if args.quick else 30.0)
    rep.note("Cold start runs round-robin (minimal app, our app, ...): each sample is a new "
             "process. Slider calls cycle log10 theta through 3.0-5.0 so no call repeats the "
             "previous one.")
    return rep.finish()


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
