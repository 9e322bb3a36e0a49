"""Interactive speed where the user sees it: Debian's Chromium (Playwright) to painted pixels.

The app runs in its own process; a headless Chromium page drives it as a user would and times
each action from the input event to the frame in which the changed figures are painted: the
plot's rendered images (plotly draws heatmaps, and we draw large maps, as SVG <image>
elements) differ from before the action, and one more animation frame has passed. Beside each
to-pixels time stands the server time of the same action (the same callback over HTTP with
gradio_client), so the share the browser adds is visible.

Actions (medians over several repetitions): page load to the first painted plot; on a 30 s and a
3 s speech clip, a theta / head-dim / radius-tilt / bias-scale change (a click on the slider:
input, change and release events), one theta drag step of 0.4 (the input event alone, as while
the pointer is down) and steps of 0.02 in a row (a drag as the pointer moves it) until its
figures are painted; a 10 s Model run until its figures are
painted; the report zip until the download link appears. A slider's page is scrolled as a user
who watches the maps while moving it (the control at the top of the window); each slider
action reports the time until the plots then on screen are painted (the target) and until
every plot it changes is painted, the ones below the fold drawn by the page once the steps
pause (live_views.js). Baseline, side by side in the same run: the same app with every map
drawn as a plain plotly heatmap (``ECHO_IMAGE_MIN_CELLS`` set above any map size), what the app
sent before maps became images.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

from benchmarks import _harness as H
from benchmarks.bench_app import Server, _clip_file

CHROMIUM = os.environ.get("BROWSER_PATH", "/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run"]
WAIT_MS = 300_000  # a hang guard for every wait; the timings are measured in the page
HEATMAPS_ONLY = {"ECHO_IMAGE_MIN_CELLS": str(10**9)}
PRAAT = ["ac", 75.0, 600.0, 0.45, 0.03, 0.01, 0.35, 0.14, 15, False]  # the /extract_f0 defaults
DRAG_FINE = "theta drag, 0.02 steps (input only)"

# In-page helpers: a signature of what a plot has painted, and "run this action and resolve
# with the milliseconds until the plots' signatures all changed and one more frame passed".
PAGE_JS = """
() => {
  window.__sig = (sel) => {
    const root = document.querySelector(sel);
    if (!root) return '';
    const imgs = [...root.querySelectorAll('image')].map(i => {
      const h = i.getAttribute('href') || i.getAttribute('xlink:href') || '';
      return h.length + ':' + h.slice(-64);
    });
    const paths = root.querySelectorAll('.scatterlayer path.js-line, .barlayer path');
    const line = [...paths].map(p => { const d = p.getAttribute('d') || '';
                                       return d.length + ':' + d.slice(-24); }).join(',');
    const marks = [...root.querySelectorAll('.shapelayer path')]  // e.g. the theta marker
        .map(p => p.getAttribute('d') || '').join(',');
    const title = (root.querySelector('.gtitle') || {}).textContent || '';
    return imgs.join('|') + '#' + line + '#' + title + '#' + marks;
  };
  // resolves with, per plot, the ms until the frame after the one in which its change showed
  window.__until = (sels, before, t0) => new Promise((resolve, reject) => {
    const at = sels.map(() => null), seen = sels.map(() => false);
    const check = () => {
      const now = performance.now() - t0;
      sels.forEach((s, k) => { if (seen[k] && at[k] === null) at[k] = now; });
      sels.forEach((s, k) => {
        const sig = window.__sig(s);
        if (!seen[k] && sig !== before[k] && sig !== '') seen[k] = true;
      });
      if (at.every(x => x !== null)) resolve(at);
      else if (now > 30000) reject(new Error('no painted change of ' +
                                             sels.filter((s, k) => !seen[k]).join(', ')));
      else requestAnimationFrame(check);
    };
    requestAnimationFrame(check);
  });
  window.__onScreen = (sels) => sels.filter(s => {
    const r = document.querySelector(s).getBoundingClientRect();
    return r.width > 0 && r.bottom > 0 && r.top < window.innerHeight;
  });
}
"""


def _page(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    t0 = time.perf_counter()
    page.goto(url)
    page.evaluate(PAGE_JS)
    page.wait_for_function("() => window.__sig('#pitch-plot').includes('|') || "
                           "document.querySelector('#pitch-plot image')")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))")
    return page, time.perf_counter() - t0


def _timed_each(page, sels: list[str], action_js: str) -> list[float]:
    """Milliseconds from running ``action_js`` (in the page) to the painted change of each of
    sels."""
    return page.evaluate(
        """([sels, action]) => {
             const before = sels.map(s => window.__sig(s));
             const t0 = performance.now();
             (new Function(action))();
             return window.__until(sels, before, t0);
           }""", [sels, action_js])


def _timed(page, sels: list[str], action_js: str) -> float:
    """Milliseconds from running ``action_js`` to the painted change of all of sels."""
    return max(_timed_each(page, sels, action_js))


def _timed_views(page, sels: list[str], action_js: str) -> tuple[float, float]:
    """(ms until the plots of sels on screen painted, ms until all of sels painted). The page
    draws a slider step's plots below the fold when they scroll into view or the steps pause
    (live_views.js), so the user's wait is the first number; the second says when the rest
    caught up."""
    shown = page.evaluate("(s) => window.__onScreen(s)", sels)
    times = _timed_each(page, sels, action_js)
    on_screen = [t for s, t in zip(sels, times) if s in shown]
    if not on_screen:
        raise RuntimeError(f"none of {sels} is on screen: the benchmark's scroll is wrong")
    return max(on_screen), max(times)


def _scroll_to(page, sel: str) -> None:
    """Scroll as a user who drags a slider while watching the maps below it: the control at
    the top of the window."""
    page.evaluate("(s) => document.querySelector(s).scrollIntoView({block: 'start'})", sel)
    page.wait_for_timeout(800)  # plots scrolled into view draw what they were waiting for


def _settled(page, ms: float) -> float:
    """Let the action's trailing work (Gradio's release event) finish before the next one is
    timed, so no measurement carries the previous one's tail; returns ``ms``."""
    page.wait_for_timeout(1500)
    return ms


def _set_slider(elem_id: str, value: float) -> str:
    """JS that sets a Gradio slider's range input and fires what a drag fires."""
    return (f"const r = document.querySelector('#{elem_id} input[type=range]');"
            f"r.value = {value}; r.dispatchEvent(new Event('input', {{bubbles: true}}));"
            "r.dispatchEvent(new Event('change', {bubbles: true}));"
            "r.dispatchEvent(new PointerEvent('pointerup', {bubbles: true}));")


def _drag_step(elem_id: str, value: float) -> str:
    """JS for one step of a drag: the range input's input event alone (the pointer is still
    down, so no change / release yet)."""
    return (f"const r = document.querySelector('#{elem_id} input[type=range]');"
            f"r.value = {value}; r.dispatchEvent(new Event('input', {{bubbles: true}}));")


def _set_radio(elem_id: str, value) -> str:
    """JS that clicks one choice of a Gradio radio, as a user does."""
    return (f"const r = [...document.querySelectorAll('#{elem_id} input[type=radio]')]"
            f".find(i => i.value == '{value}'); r.click();")


def _load_clip(page, path: str) -> None:
    """Upload a file as a user does: clear the player (it opens with an example), then drop the
    file on the upload area."""
    page.wait_for_function("() => document.querySelector('#clip-info') && !document"
                           ".querySelector('#clip-info').innerText.includes('Loading')")
    clear = page.locator("#audio button[aria-label='Clear']")
    if clear.count():
        clear.first.click()
    page.locator("#audio input[type=file]").set_input_files(path)
    page.wait_for_function("() => document.querySelector('#clip-info') && "
                           f"document.querySelector('#clip-info').innerText.includes("
                           f"'{Path(path).name}')")


def _tab(page, name: str, sels: list[str]) -> None:
    """Open a tab and wait until its plots have painted something (an image or a line)."""
    page.get_by_role("tab", name=name).click()
    page.wait_for_function("([s]) => s.every(x => document.querySelector(x + ' .js-plotly-plot')"
                           " && !window.__sig(x).startsWith('##'))", arg=[sels])
    page.wait_for_timeout(1500)  # the tab's chained redraws (sweep) land before timing starts


ROTARY = ["#sim-plot", "#variants-plot", "#curves-plot", "#band-plot"]
ON_SCREEN = "plots on screen painted"  # what the user watching the maps waits for
EVERY = "every changed plot painted (below the fold: when idle)"
MODEL = ["#gate-plot", "#attention-plot", "#attention-grid", "#head-score-plot"]
MODEL_SECONDS = 10.0


def _model_clip(k: int) -> str:
    """A 10 s window of looped speech, a different one for each ``k``: a model run's result is
    memoised per clip, so every timed run needs audio the app has not analysed."""
    return _clip_file(MODEL_SECONDS, start=3.7 * k)


def model_actions(url: str, repeat: int) -> dict[str, list[float]]:
    """A 10 s Model run (default checkpoint) until its figures are painted, then the report zip
    until its download link shows; each run on a clip the app has not seen."""
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {"10 s model run -> figures painted": [],
                                   "report zip -> download link": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page, _ = _page(browser, url)
            for k in range(repeat):
                _load_clip(page, _model_clip(k))
                if k == 0:
                    page.get_by_role("tab", name="Model").click()
                    page.wait_for_selector("#run-model")
                out["10 s model run -> figures painted"].append(_settled(page, _timed(
                    page, MODEL, "document.querySelector('#run-model').click();")))
                out["report zip -> download link"].append(_settled(page, _zip_ms(page)))
        finally:
            browser.close()
    return out


def _zip_ms(page) -> float:
    """Milliseconds from a click on "Download report" until a new .zip link is in the page."""
    return page.evaluate(
        """() => new Promise(resolve => {
             const links = () => [...document.querySelectorAll('#downloads a')]
                 .map(a => a.getAttribute('href') || '').filter(h => h.includes('.zip'));
             const before = new Set(links());
             const t0 = performance.now();
             document.querySelector('#report-btn').click();
             const check = () => {
               if (links().some(h => !before.has(h)))
                 requestAnimationFrame(() => resolve(performance.now() - t0));
               else requestAnimationFrame(check);
             };
             requestAnimationFrame(check);
           })""")


def browser_actions(url: str, clip: str, repeat: int) -> dict[str, list[float]]:
    """{action: [ms, ...]} for one app, one clip."""
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            loads = []
            for _ in range(repeat - 1):  # fresh pages (each its own context: a cold cache)
                extra, load_s = _page(browser, url)
                loads.append(1000 * load_s)
                extra.close()
            page, load_s = _page(browser, url)
            out["page load -> first plot"] = [*loads, 1000 * load_s]
            _load_clip(page, clip)
            _tab(page, "Rotary patterns", ROTARY)
            _scroll_to(page, "#theta")

            def timed(action: str, sels: list[str], js: str) -> None:
                on_screen, every = _timed_views(page, sels, js)
                out.setdefault(f"{action} -> {ON_SCREEN}", []).append(on_screen)
                out.setdefault(f"{action} -> {EVERY}", []).append(every)
                _settled(page, 0)

            # Every step is new to the app (the server memoises each step's figures): values
            # never repeat, and each head-dim change comes after an untimed theta step.
            thetas = [3.0, 3.4, 3.8, 4.2, 4.6, 5.0, 4.4, 3.6, 2.6, 5.6]
            for i in range(repeat):
                timed("theta change", ROTARY, _set_slider("theta", thetas[i % len(thetas)]))
            drags = [3.15, 3.55, 3.95, 4.35, 4.75, 5.15, 5.45, 2.85, 2.45, 5.85]
            for i in range(repeat):
                timed("theta drag step (input only)", ROTARY,
                      _drag_step("theta", drags[i % len(drags)]))
            # a drag as the pointer moves it: consecutive steps of 0.02 (about 2 px of the
            # slider), the first one untimed
            fine = [3.01 + 0.02 * i for i in range(repeat + 1)]
            _settled(page, _timed(page, ROTARY, _drag_step("theta", fine[0])))
            for i in range(repeat):
                timed(DRAG_FINE, ROTARY, _drag_step("theta", fine[i + 1]))
            for i in range(repeat):
                _settled(page, _timed(page, ROTARY, _set_slider("theta", 2.2 + 0.37 * i)))
                timed("head dim change", ROTARY + ["#sweep-plot"],
                      _set_radio("head-dim", (32, 64)[i % 2]))
            tilts = [-2.0, 1.5, -0.7, 2.9, -3.3, 0.6, -1.4, 3.6, -2.6, 1.1]
            _scroll_to(page, "#tilt")
            for i in range(repeat):
                timed("radius tilt", ["#variants-plot"], _set_slider("tilt", tilts[i % len(tilts)]))
            _tab(page, "Pitch bias", ["#bias-plot", "#prior-plot"])
            _scroll_to(page, "#bias-scale")
            scales = [0.5, 2.0, 0.85, 3.1, 1.35, 4.2, 0.2, 2.6, 1.75, 3.7]
            for i in range(repeat):
                timed("bias scale", ["#bias-plot", "#prior-plot"],
                      _set_slider("bias-scale", scales[i % len(scales)]))
        finally:
            browser.close()
    return out


def server_actions(url: str, clip: str, repeat: int) -> dict[str, list[float]]:
    """The same actions' server time: the endpoints over HTTP (gradio_client), in ms."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    client.predict(handle_file(clip), *PRAAT, api_name="/extract_f0")
    theta, bias = f"theta change -> {ON_SCREEN}", f"bias scale -> {ON_SCREEN}"
    out = {theta: [], bias: []}
    for i in range(repeat):
        t0 = time.perf_counter()
        client.predict(3.0 + 0.25 * (i % 8), 64, "positions", 0.0, api_name="/similarity_map")
        out[theta].append(1000 * (time.perf_counter() - t0))
        t0 = time.perf_counter()
        client.predict(0.3 + 0.45 * (i % 10), 4.0, 64, "positions", api_name="/pitch_bias")
        out[bias].append(1000 * (time.perf_counter() - t0))
    return out


def _row(rep, group: str, method: str, samples: list[float], baseline: bool, extra=None):
    seconds = [s / 1000 for s in samples]
    timing = dict(seconds=statistics.median(seconds), runs=len(seconds), number=1,
                  min_s=min(seconds), max_s=max(seconds))
    return rep.row(group, method, timing, baseline=baseline, extra=extra or {})


def main(argv=None) -> dict:
    args = H.parse_args(__doc__.splitlines()[0], argv)
    rep = H.Report("browser", "Browser: input to painted pixels (Chromium)", args)
    repeat = 3 if args.quick else max(5, args.repeat)
    clips = {"3 s": _clip_file(3.0)} if args.quick else {"30 s": _clip_file(30.0),
                                                         "3 s": _clip_file(3.0)}
    results = {}
    for label, env in (("images (this app)", {}), ("plain heatmaps (baseline)", HEATMAPS_ONLY)):
        os.environ.update(env)
        try:
            with Server(H.REPO / "app.py") as server:
                server.wait()
                for clip_label, clip in clips.items():
                    H.progress(f"browser | {label} | {clip_label}")
                    results[(label, clip_label, "browser")] = browser_actions(
                        server.url, clip, repeat)
                    results[(label, clip_label, "server")] = server_actions(
                        server.url, clip, repeat)
                H.progress(f"browser | {label} | model run and report")
                results[(label, "10 s", "browser")] = model_actions(server.url, repeat)
                results[(label, "10 s", "server")] = {}
        finally:
            for key in env:
                os.environ.pop(key, None)
    for clip_label in [*clips, "10 s"]:
        for action in results[("images (this app)", clip_label, "browser")]:
            group = f"{clip_label} clip: {action}"
            for label in ("plain heatmaps (baseline)", "images (this app)"):
                samples = results[(label, clip_label, "browser")][action]
                server = results[(label, clip_label, "server")].get(action)
                extra = {"server_ms": statistics.median(server)} if server else {}
                _row(rep, group, f"{label}: to pixels", samples,
                     baseline=label.startswith("plain"), extra=extra)
    _targets(rep, results, clips)
    rep.note("To-pixels times are measured inside the page (performance.now) from the input "
             "event to the animation frame after every changed plot's rendered image differs. "
             "server_ms: the same callback over HTTP with gradio_client (median).")
    return rep.finish()


def _targets(rep, results, clips) -> None:
    goals = {"30 s": 0.300, "3 s": 0.150}
    for clip_label in clips:
        browser = results[("images (this app)", clip_label, "browser")]
        for action in (f"{a} -> {ON_SCREEN}" for a in (
                "theta change", "theta drag step (input only)", DRAG_FINE, "head dim change",
                "radius tilt", "bias scale")):
            value = statistics.median(browser[action]) / 1000
            rep.target(f"{action}, {clip_label} clip", f"<= {goals[clip_label] * 1000:g} ms",
                       H.fmt_seconds(value), value <= goals[clip_label])
    model = results[("images (this app)", "10 s", "browser")]
    for action, goal in (("10 s model run -> figures painted", 1.5),
                         ("report zip -> download link", 5.0)):
        value = statistics.median(model[action]) / 1000
        rep.target(action, f"<= {goal:g} s", H.fmt_seconds(value), value <= goal)
    load = results[("images (this app)", next(iter(clips)), "browser")]["page load -> first plot"]
    value = statistics.median(load) / 1000
    rep.target("page load -> first plot", "<= 2 s", H.fmt_seconds(value), value <= 2.0)


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
