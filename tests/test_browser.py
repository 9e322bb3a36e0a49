"""End to end in Debian's Chromium (Playwright): the app as a user sees it.

Starts ``app.py`` on a free port in a subprocess, picks an example, runs every view, checks that
the plots rendered with a real size and that no error toast appeared, and saves screenshots to
test-artifacts/ (git-ignored). The Model and Compare parts need shipped checkpoints
(assets/checkpoints/*) and are skipped while there are none.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("BROWSER_PATH", "/usr/bin/chromium")
STARTUP_BOUND = 600  # s: the app answers in ~10 s idle; a loaded box may take minutes
ACTION_BOUND_MS = 300_000  # each wait ends as soon as the page is ready; this only stops a hang
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists() and not shutil.which("chromium"),
                                reason="Debian's chromium is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _shipped() -> list[str]:
    root = REPO / "assets" / "checkpoints"
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "model.safetensors").is_file()) \
        if root.is_dir() else []


@pytest.fixture(scope="module")
def uploads(tmp_path_factory) -> Path:
    """Where the app's Gradio keeps what the page sends it (a recording among them), so a test
    can read the very audio the app received."""
    return tmp_path_factory.mktemp("gradio")


@pytest.fixture(scope="module")
def server(tmp_path_factory, uploads):
    """The app in its own process. Its output goes to a file, not a pipe: nothing reads a pipe
    while the tests run, and once its buffer is full the app blocks on its next write (a run
    that warns hangs until the test's bound)."""
    port = _free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(uploads)}
    log_path = tmp_path_factory.mktemp("app") / "app.log"
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + STARTUP_BOUND  # readiness, not speed: generous under load
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                log.close()
                raise RuntimeError(f"app.py exited: {log_path.read_text()[-2000:]}")
            time.sleep(0.5)
    else:
        proc.terminate()
        log.close()
        raise RuntimeError(f"app.py did not answer within {STARTUP_BOUND} s")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def playwright_driver():
    """One Playwright per module (a second one inside it fails): tests that need their own
    browser (other launch flags) launch it from here."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def page(server, playwright_driver):
    ARTIFACTS.mkdir(exist_ok=True)
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(ACTION_BOUND_MS)
    page.goto(server)
    yield page
    browser.close()


def _rendered(page, selector: str, min_width: int = 300) -> None:
    """The plot exists, has a real size (not drawn too small in a hidden tab) and has data."""
    plot = page.locator(f"{selector} .js-plotly-plot").first
    plot.wait_for(state="visible")
    page.wait_for_function(
        "s => { const el = document.querySelector(s + ' .js-plotly-plot');"
        " return el && el.querySelector('.main-svg') && el.getBoundingClientRect().height > 150; }",
        arg=selector)
    box = plot.bounding_box()
    assert box and box["width"] >= min_width and box["height"] > 150, (selector, box)


def _no_error(page) -> None:
    errors = page.locator(".toast-body.error")
    assert errors.count() == 0, errors.first.inner_text()


def _tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def _typed(page, box, text: str) -> None:
    """Type ``text`` into a box as a user does, once the box keeps it. A slider inside an
    accordion that has just opened mounts lazily: its number box exists (and takes a fill) a
    moment before the slider's own effects run, which reset it to the slider's value (a person
    cannot type that fast). So: wait until the slider has drawn its range (its effects ran),
    then type, and check after two frames that the box still shows the text and has the focus
    (a blur then reaches it). Bounded: a box that never keeps the text fails here, naming it."""
    box.wait_for(state="visible")
    box.evaluate("""e => new Promise(resolve => {
        const range = e.closest('.block')?.querySelector('input[type=range]');
        const ready = () => !range || range.style.getPropertyValue('--range_progress') !== '';
        const check = () => ready() ? resolve() : requestAnimationFrame(check);
        check(); })""")
    settled = """([e, t]) => new Promise(resolve => requestAnimationFrame(() =>
        requestAnimationFrame(() => resolve(e.value === t && document.activeElement === e))))"""
    for _ in range(50):
        box.fill(text)
        if box.evaluate(f"e => ({settled})([e, {text!r}])"):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"the box never kept {text!r} (it shows {box.input_value()!r})")


def _clip_loaded(page) -> None:
    """Wait until the page's opening clip is in (a model run before that is refused with
    'no clip loaded'), so each test also passes when run alone."""
    page.wait_for_function("() => (document.querySelector('#clip-info')?.innerText || '')"
                           ".includes('frames of')")


def _choose(page, radio: str, label: str, value: str) -> None:
    """Click a radio's option until the radio holds it. A tab's content mounts on its first
    visit, and a click landing before Gradio has wired the radio is lost (the full suite once
    ran an intervention with the opening condition and waited its whole bound); a person
    cannot click that fast. Bounded: an option that never takes fails here, naming it."""
    for _ in range(20):
        page.locator(f"{radio} label", has_text=label).click()
        try:
            page.wait_for_function("([r, v]) => document.querySelector(r + ' input:checked')"
                                   "?.value === v", arg=[radio, value], timeout=500)
            return
        except PlaywrightTimeout:
            pass
    raise AssertionError(f"{radio}: the option {label!r} was clicked 20 times and never taken")


def _shot(page, name: str) -> None:
    time.sleep(0.5)  # let plotly finish its transitions
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_opens_with_an_example_and_switches_clip(page):
    _rendered(page, "#pitch-plot")
    assert "frames of 8 ms" in page.locator("#clip-info").inner_text()
    second = page.locator("#examples label").nth(1)
    name = second.inner_text().strip()
    second.click()
    page.wait_for_function("n => document.querySelector('#clip-info').innerText.includes(n)", arg=name)
    _rendered(page, "#pitch-plot")
    assert page.locator("#f0-stats").inner_text().count("Hz") >= 4
    _no_error(page)
    _shot(page, "1_audio_pitch")


def test_rotary_view_and_theta_slider(page):
    _clip_loaded(page)  # the tab's maps need the opening clip (run alone, it may not be in)
    _tab(page, "Rotary patterns")
    for plot in ("#sim-plot", "#variants-plot", "#curves-plot", "#sweep-plot"):
        _rendered(page, plot)
    number = page.locator("#theta input[type=number]")
    _typed(page, number, "5")
    number.press("Enter")
    page.wait_for_function("() => document.querySelector('#theta-md').innerText.includes('100,000')")
    _no_error(page)
    _shot(page, "2_rotary")


def test_a_slider_step_is_painted_by_the_page_itself(page):
    """A drag step (input events, no release: Gradio's event does not run) is fetched from the
    live route and painted by live_views.js: the maps' titles and the summary follow. The tab
    is opened only if it is not showing (a tab click redraws through Gradio, and that answer,
    for the values at the click, can land after a step made right after it: a known race)."""
    _clip_loaded(page)
    tab = page.get_by_role("tab", name="Rotary patterns")
    if tab.get_attribute("aria-selected") != "true":
        tab.click()
        _rendered(page, "#sim-plot")
        page.wait_for_timeout(3000)  # the tab's own redraw lands first (readiness, not speed)
    _rendered(page, "#sim-plot")
    page.wait_for_function("() => document.querySelector('#sim-plot .js-plotly-plot')"
                           "?.layout?.meta?.echo_live?.key")
    # as a user watching the maps: the slider at the top, the curves and bands below the fold
    page.evaluate("() => document.querySelector('#theta').scrollIntoView({block: 'start'})")
    assert page.evaluate("() => document.querySelector('#curves-plot').getBoundingClientRect()"
                         ".top > window.innerHeight")
    page.evaluate("() => { const r = document.querySelector('#theta input[type=range]');"
                  " r.value = 2.5; r.dispatchEvent(new Event('input', {bubbles: true})); }")
    page.wait_for_function("() => document.querySelector('#theta-md').innerText"
                           ".includes('θ = 316 (log₁₀ θ = 2.50)')")
    page.wait_for_function("() => [...document.querySelectorAll('#sim-plot .annotation-text')]"
                           ".some(a => a.textContent.includes('static θ = 316'))")
    # plots off screen are drawn once the steps pause, without scrolling to them
    page.wait_for_function("() => document.querySelector('#curves-plot .legend')"
                           "?.textContent.includes('static θ=316')")
    page.wait_for_function("() => Math.round(document.querySelector('#band-plot "
                           ".js-plotly-plot')?.layout?.shapes?.[0]?.x0) === 316")
    tilt = "#tilt input[type=range]"
    page.evaluate(f"() => {{ const r = document.querySelector('{tilt}'); r.value = -3.5;"
                  " r.dispatchEvent(new Event('input', {bubbles: true})); }")
    page.wait_for_function("() => [...document.querySelectorAll('#variants-plot "
                           ".annotation-text')].some(a => a.textContent.includes('tilt -3.5'))")
    _no_error(page)


def test_pitch_bias_view(page):
    _tab(page, "Pitch bias")
    _rendered(page, "#bias-plot")
    _rendered(page, "#prior-plot")
    page.locator("#tab-bias button", has_text="Export this view").click()  # PNG + HTML each
    page.wait_for_function("() => document.querySelectorAll('#downloads a').length >= 4")
    _no_error(page)
    _shot(page, "3_pitch_bias")


def test_model_view(page):
    if not _shipped():
        pytest.skip("no shipped checkpoint in assets/checkpoints yet")
    _clip_loaded(page)
    _tab(page, "Model")
    page.locator("#ckpt label").first.click()
    page.locator("#run-model").click()
    page.wait_for_function("() => { const t = document.querySelector('#report textarea, #report .cm-content');"
                           " return t && (t.value || t.innerText || '').includes('GATE vs MLP'); }",
                           timeout=ACTION_BOUND_MS)
    for plot in ("#gate-plot", "#attention-plot", "#head-score-plot"):
        _rendered(page, plot, min_width=250)
    assert page.locator("#gates").inner_text().count("encoder.blocks") >= 1
    # one heatmap panel per attention kind, and the table lists every head with its note
    assert page.locator("#head-score-plot .cartesianlayer .subplot").count() == 3
    assert "encoder self-attention" in page.locator("#head-score-table").inner_text()
    page.locator("#head-score-choice label", has_text="entropy").click()
    page.wait_for_function("() => document.querySelector('#head-score-plot .gtitle')"
                           ".textContent.includes('entropy')")
    _no_error(page)
    _shot(page, "4_model")


def test_compare_view(page):
    if len(_shipped()) < 2:
        pytest.skip("Compare needs two shipped checkpoints")
    _clip_loaded(page)
    _tab(page, "Compare")
    # the defaults: a fair pair (same corpus, budget and seed), here (c) against (b)
    assert page.locator("#ckpt-a input:checked").count() == 1
    assert page.locator("#ckpt-b input:checked").count() == 1
    page.locator("#run-compare").click()
    page.wait_for_function("() => document.querySelector('#transcript-b').innerText.includes('B ·')",
                           timeout=ACTION_BOUND_MS)
    _rendered(page, "#compare-gate-plot")
    _rendered(page, "#compare-attention-plot")
    _rendered(page, "#compare-head-score-a", min_width=250)
    _rendered(page, "#compare-head-score-b", min_width=250)
    assert "B − A" in page.locator("#compare-head-score-diff").inner_text()
    a_text = page.locator("#transcript-a").inner_text()
    assert ("built in" in a_text) == ("f0_theta_bias" in a_text)  # the one with pitch_bias on
    _no_error(page)
    _shot(page, "5_compare")


def test_interventions_view(page):
    """A user picks a checkpoint and a condition; both runs appear side by side, the token
    bars and the attention difference are drawn, the head table carries its null."""
    _clip_loaded(page)
    _tab(page, "Interventions")
    page.locator("#iv-ckpt label").first.click()  # the default: a mean-F0 vRoPE model
    _choose(page, "#iv-condition", "constant F0", "constant")
    page.locator("#run-intervention").click()
    page.wait_for_function("() => (document.querySelector('#iv-summary')?.innerText || '')"
                           ".includes('constant:100')", timeout=ACTION_BOUND_MS)
    assert "true F0" in page.locator("#iv-summary").inner_text()
    assert "F0 reaches" in page.locator("#iv-route").inner_text()
    _rendered(page, "#iv-tokens")
    _rendered(page, "#iv-attention")
    assert "follows_pitch" in page.locator("#iv-heads").inner_text()
    assert "θ in force" in page.locator("#iv-theta").inner_text()
    _no_error(page)
    _shot(page, "7_interventions")


def test_every_tab_keeps_the_tab_bar_intact(page):
    """Opening each tab (its content mounts on first visit) leaves every tab in the bar once,
    in order (a stray component between two tabs once made a tab overwrite its neighbour)."""
    _clip_loaded(page)
    names = page.locator("#views [role=tablist] [role=tab]").all_inner_texts()
    assert len(names) == len(set(names)) >= 9, names
    for name in names:
        _tab(page, name)
        page.wait_for_function("n => document.querySelector('#views [role=tab][aria-selected=true]')"
                               "?.innerText.trim() === n", arg=name)
        assert page.locator("#views [role=tablist] [role=tab]").all_inner_texts() == names, name
    _tab(page, names[0])


def test_learn_view_renders_formulas(page):
    _tab(page, "Learn")
    page.locator("#tab-learn .katex").first.wait_for(state="visible")
    lesson = page.locator("#tab-learn").inner_text()
    assert "dark red" in lesson and "10000" in lesson and "700 Hz" in lesson  # constants told
    assert "``" not in lesson  # prose, not a docstring
    page.get_by_text("Head scores: the exact definitions").click()  # folded away, still there
    definitions = page.locator("#head-score-definitions").inner_text()
    assert "pitch_partial_spearman" in definitions
    from echo_core import attention_priors

    assert f"MAX_PAIRS = {attention_priors.MAX_PAIRS}" in definitions  # the limits in force
    _no_error(page)
    _shot(page, "6_learn")
    page.locator("#lesson-2-open").click()  # a lesson's button opens the view it walks
    page.locator("#tab-rotary").wait_for(state="visible")
    assert page.get_by_role("tab", name="Rotary patterns").get_attribute("aria-selected") == "true"


# Held-out real-speaker takes (assets/clips/DIGITS.md): the first isolated one, and a
# connected string spliced from his takes.
MIC_CLIPS = {"isolated": ("digits_fsdd-jackson_zero.wav", "zero"),
             "connected": ("digits_fsdd-jackson_three-one-eight.wav", "three one eight")}
# The recording against the clip played: normalised cross-correlation at the best lag (1 is the
# same waveform up to gain; the recordings here measure 0.99 and above).
MIC_FIDELITY = 0.95


@pytest.fixture(scope="module", params=sorted(MIC_CLIPS))
def microphone_run(request, server, uploads, playwright_driver, tmp_path_factory) -> dict:
    """A person speaks into the app: Chromium's fake microphone plays a held-out real speaker's
    digits (FSDD jackson, never heard in training) into the record button; the Model view runs
    its default checkpoint on the recording. Returns the transcript shown, the microphone
    track's settings, the words spoken, the clip played and the recording the app received."""
    import numpy as np
    import soundfile as sf

    name, words = MIC_CLIPS[request.param]
    mic_clip = REPO / "assets" / "clips" / name
    samples, sr = sf.read(str(mic_clip), dtype="float32")
    # The fake device plays its file from when the page opens the microphone, a moment before
    # the recording starts, and loops it: a second of silence first keeps that moment from
    # cutting into the word; the silence after outlasts the recording.
    lead_s = 1.0
    padded = np.concatenate([np.zeros(int(lead_s * sr)), samples, np.zeros(8 * sr)])
    fake = tmp_path_factory.mktemp("microphone") / "microphone.wav"
    sf.write(str(fake), padded.astype(np.float32), sr, subtype="PCM_16")
    args = LAUNCH_ARGS + ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                          f"--use-file-for-fake-audio-capture={fake}"]
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=args)
    try:
        context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                      permissions=["microphone"])
        page = context.new_page()
        page.set_default_timeout(ACTION_BOUND_MS)
        page.goto(server)
        _clip_loaded(page)
        page.locator("#audio button[aria-label='Clear']").click()
        page.locator("#audio button[aria-label='Record audio']").click()
        before = {p: p.stat().st_mtime_ns for p in uploads.rglob("*.wav")}
        page.locator("#audio button", has_text="Record").first.click()
        page.wait_for_timeout((lead_s + len(samples) / sr) * 1000 + 1500)  # then some silence
        page.locator("#audio button:visible", has_text="Stop").first.click()
        page.wait_for_function("() => (document.querySelector('#clip-info')?.innerText || '')"
                               ".startsWith('audio')")  # the recording, not the example
        assert page.locator("#examples input:checked").count() == 0  # no example claimed
        received = [p for p in uploads.rglob("*.wav") if before.get(p) != p.stat().st_mtime_ns]
        assert len(received) == 1, received  # what the page sent the app
        _tab(page, "Model")
        assert page.locator("#ckpt input:checked").count() == 1  # the default checkpoint
        page.locator("#run-model").click()
        page.wait_for_function("() => (document.querySelector('#transcript textarea')?.value "
                               "|| '').trim().length > 0")
        transcript = page.locator("#transcript textarea").input_value().strip()
        _no_error(page)
        page.screenshot(path=str(ARTIFACTS / f"9_microphone_{request.param}.png"),
                        full_page=True)
        shutil.copy(received[0], ARTIFACTS / f"9_microphone_{request.param}.wav")
        settings = page.evaluate(  # what a plain audio request of the page gets
            "() => navigator.mediaDevices.getUserMedia({audio: true}).then(s => {"
            " const t = s.getAudioTracks()[0]; const got = t.getSettings();"
            " s.getTracks().forEach(x => x.stop()); return got; })")
    finally:
        browser.close()
    return dict(transcript=transcript, settings=settings, words=words, played=samples,
                played_sr=sr, recording=ARTIFACTS / f"9_microphone_{request.param}.wav")


def test_microphone_recording_reaches_the_model(microphone_run):
    """The recording becomes the clip and the default checkpoint transcribes it into digit
    words (the page's path from the record button to a transcript works)."""
    from echo_core.corpus import DIGIT_WORDS

    transcript = microphone_run["transcript"]
    assert transcript and set(transcript.split()) <= set(DIGIT_WORDS), transcript


def test_microphone_recording_is_the_clip_spoken(microphone_run):
    """The app receives the words whole and unprocessed: the recording, mixed to mono and
    brought to the clip's rate, holds the clip played at one lag with a normalised
    cross-correlation of at least MIC_FIDELITY, the whole clip inside the recording."""
    import numpy as np
    from scipy.signal import correlate

    from echo_core.audio import load_audio

    played = microphone_run["played"].astype(np.float64)
    sr = microphone_run["played_sr"]
    recording = load_audio(microphone_run["recording"], sr=sr).samples.astype(np.float64)
    assert len(recording) > len(played)
    sliding = correlate(recording, played, mode="valid")  # lag 0 .. len(rec) - len(played)
    window = np.convolve(recording ** 2, np.ones(len(played)), mode="valid")
    # Near-silent windows would divide rounding noise by almost nothing: floor them well
    # below any window that holds the words.
    window = np.maximum(window, 1e-6 * window.max())
    score = sliding / (np.linalg.norm(played) * np.sqrt(window))
    lag = int(np.argmax(score))
    assert score.max() <= 1 + 1e-9  # Cauchy-Schwarz: the normalisation is right
    assert score[lag] >= MIC_FIDELITY, (score[lag], lag / sr)


def test_microphone_transcript_is_the_models_reading_of_the_recording(microphone_run):
    """The app's transcript is the default checkpoint's transcript of exactly the audio it
    received (no step between the record button and the model changes what it hears).

    Whether that transcript is the words spoken is the model's business, not the page's: on
    the connected string, the default model turns "eight" into "six" for 2 of 10 draws of
    white noise 45 dB below the clip's power and 8 of 10 at 40 dB (its TRAINING.md, "A noise
    floor"), and CI once heard "six" through this very path; an exact-words check here would
    test the capture's noise floor. The model's accuracy on these clips as files is tested in
    test_zoo_checkpoints, its cost of a noise floor measured by `echo_core.study noise`."""
    from echo_core.audio import load_audio
    from echo_core.checkpoint import load_checkpoint
    from echo_core.clip_run import transcribe
    from workbench.checkpoints import default_checkpoint
    from workbench.model_analysis import model_session

    name = default_checkpoint().split("/", 1)[1]
    model = load_checkpoint(REPO / "assets" / "checkpoints" / name)
    audio = load_audio(microphone_run["recording"])
    with model_session():  # the app's torch threads: the same arithmetic
        assert microphone_run["transcript"] == transcribe(model, audio.samples, audio.sr)


def test_microphone_is_recorded_without_voice_call_processing(microphone_run):
    """raw_microphone.js: gain control, noise suppression and echo cancellation are off (they
    re-level words and reshape the spectrum a pitch tracker and the models read)."""
    settings = microphone_run["settings"]
    assert settings.get("autoGainControl") is False, settings
    assert settings.get("noiseSuppression") is False, settings
    assert settings.get("echoCancellation") is False, settings
