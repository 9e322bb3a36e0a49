"""Forgiving input errors in Debian's Chromium (issue #21): what a new user sees after a bad
upload, a typed value outside a range, a silent clip in the Model view and a teacher text the
model cannot spell. Each state is saved to test-artifacts/forgiving_*.png. The fixtures are
test_browser.py's (app.py on a free port, one page for the module)."""

from __future__ import annotations

import numpy as np
import pytest

from test_browser import (_clip_loaded, _no_error, _rendered, _shipped, _shot, _tab,  # noqa: F401
                          _typed, page, playwright_driver, pytestmark, server, uploads)  # the fixtures and the skip without Chromium


def _message(page, elem_id: str, text: str) -> str:
    """Wait until the message box beside a control shows ``text``; return its text."""
    page.wait_for_function("([id, t]) => { const el = document.getElementById(id);"
                           " return el && el.offsetParent !== null && el.innerText.includes(t); }",
                           arg=[elem_id, text])
    return page.locator(f"#{elem_id}").inner_text()


def _hidden(page, elem_id: str) -> None:
    """Wait until the message box is gone (Gradio drops an invisible component from the page)."""
    page.wait_for_function("id => { const el = document.getElementById(id);"
                           " return !el || el.offsetParent === null; }", arg=elem_id)


def _no_error_badge(page) -> None:
    """No output carries Gradio's "Error" status (it hides the last good state and blocks
    clicks until dismissed)."""
    badges = page.locator("[data-testid='status-tracker'] .error:visible")
    assert badges.count() == 0, [badges.nth(i).inner_text() for i in range(badges.count())]


def _upload(page, path) -> None:
    clear = page.locator("#audio button[aria-label='Clear']")
    if clear.count():
        clear.first.click()
    page.locator("#audio input[type=file]").set_input_files(str(path))


def test_bad_upload_keeps_the_last_clip_and_says_why(page, tmp_path):
    _clip_loaded(page)
    _rendered(page, "#pitch-plot")
    before = page.locator("#clip-info").inner_text()
    notes = tmp_path / "notes.wav"
    notes.write_text("these are my notes, not audio\n" * 20)
    _upload(page, notes)
    said = _message(page, "clip-message", "could not be decoded as audio")
    assert "'notes.wav'" in said and "stays loaded" in said and "/tmp" not in said
    assert page.locator("#clip-info").inner_text() == before  # the last good clip stays
    _rendered(page, "#pitch-plot")
    _no_error_badge(page)
    _no_error(page)  # a warning toast, not an error
    _shot(page, "forgiving_1_bad_upload")
    page.locator("#examples label").nth(1).click()  # the controls still answer
    name = page.locator("#examples label").nth(1).inner_text().strip()
    page.wait_for_function("n => document.querySelector('#clip-info').innerText.includes(n)",
                           arg=name)
    _hidden(page, "clip-message")


def test_typed_pitch_floor_below_the_range_is_named(page):
    _tab(page, "Audio & Pitch")
    page.locator("#praat button, #praat .label-wrap").first.click()  # open the accordion
    floor = page.get_by_label("number input for Pitch floor (Hz)")
    _typed(page, floor, "5")
    floor.blur()
    said = _message(page, "praat-message", "outside the accepted range")
    assert "Pitch floor (Hz): 5 is outside the accepted range 30–300; 30 is used." in said
    assert floor.input_value() == "30"
    _no_error_badge(page)
    _shot(page, "forgiving_2_typed_floor")
    _typed(page, floor, "80")
    floor.blur()
    _hidden(page, "praat-message")


def test_typed_theta_above_the_range_is_named_and_drawn_at_the_top(page):
    """The theta box: a typed value outside 2-6 gets the message and the maps of the clamped
    value (the page's live steps ask only for values inside the range; the release draws)."""
    _tab(page, "Rotary patterns")
    _rendered(page, "#sim-plot")
    box = page.locator("#theta input[type=number]")
    _typed(page, box, "7.5")
    box.blur()
    said = _message(page, "rotary-message", "outside the accepted range")
    assert "7.5 is outside the accepted range 2–6; 6 is used." in said
    page.wait_for_function("() => document.querySelector('#theta-md').innerText"
                           ".includes('θ = 1,000,000')")
    _no_error_badge(page)
    _no_error(page)


def _run_model(page) -> None:
    page.locator("#run-model").click()


def test_silent_clip_in_the_model_view_is_flagged(page, tmp_path):
    if not _shipped():
        pytest.skip("no shipped checkpoint in assets/checkpoints yet")
    import soundfile as sf

    silent = tmp_path / "silence.wav"
    sf.write(silent, np.zeros(16000, dtype=np.float32), 16000, subtype="PCM_16")
    _tab(page, "Audio & Pitch")
    _upload(page, silent)
    page.wait_for_function("() => document.querySelector('#clip-info').innerText"
                           ".includes('silence.wav')")
    _tab(page, "Model")
    page.locator("#teacher textarea, #teacher input").first.fill("")
    _run_model(page)
    said = _message(page, "mask-warning", "silent")
    assert "not meaningful" in said
    assert "silence.wav" in page.locator("#model-info").inner_text()
    _no_error_badge(page)
    _shot(page, "forgiving_3_silent_model")


def test_failed_teacher_forced_run_marks_the_previous_panels(page):
    if not _shipped():
        pytest.skip("no shipped checkpoint in assets/checkpoints yet")
    _clip_loaded(page)
    _tab(page, "Model")
    if "Gradient step" not in page.locator("#model-info").inner_text():  # run alone: one run first
        _run_model(page)
        page.wait_for_function("() => document.querySelector('#model-info').innerText"
                               ".includes('Gradient step')")
    teacher = page.locator("#teacher textarea, #teacher input").first
    teacher.fill("§§ ünknown ∑")
    _run_model(page)
    said = _message(page, "run-message", "cannot tokenise")
    assert "/tmp" not in said
    info = page.locator("#model-info").inner_text()
    assert "The last run failed" in info and "run before it" in info and "Gradient step" in info
    _rendered(page, "#attention-plot", min_width=250)  # the previous run's panels stay usable
    _no_error_badge(page)
    _no_error(page)
    _shot(page, "forgiving_4_failed_teacher_run")
    teacher.fill("")


def test_unreadable_checkpoint_upload_keeps_the_radio(page, tmp_path):
    if not _shipped():
        pytest.skip("no shipped checkpoint in assets/checkpoints yet")
    _tab(page, "Model")
    checked = page.locator("#ckpt input:checked").get_attribute("value")
    page.locator("#tab-model .label-wrap", has_text="Upload a checkpoint").click()
    junk = tmp_path / "model.safetensors"
    junk.write_bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    page.locator("#ckpt-upload input[type=file]").set_input_files(str(junk))
    said = _message(page, "upload-message", "model.safetensors")
    assert "choices are unchanged" in said and "/tmp" not in said
    assert page.locator("#ckpt input:checked").get_attribute("value") == checked
    page.locator("#ckpt label").nth(1).click()  # the radio is not covered: it still answers
    assert page.locator("#ckpt input:checked").get_attribute("value") != checked
    _no_error_badge(page)
    _shot(page, "forgiving_5_bad_checkpoint")
