"""Forgiving input errors (issue #21): the page's events keep the last good state and show the
message beside the control; the message never shows a server path and gives advice a page user
can follow; typed values outside a slider's range are named; the Model view says when a clip is
silent, too short or unvoiced. Callbacks are called as functions (no server, no browser)."""

from __future__ import annotations

import numpy as np
import pytest

gr = pytest.importorskip("gradio")

from echo_core.audio import SAMPLE_RATE, _too_long, load_audio  # noqa: E402
from echo_core.errors import AudioError, EchoError  # noqa: E402
from workbench import analysis as A  # noqa: E402
from workbench import checkpoints as C  # noqa: E402
from workbench import model_analysis as M  # noqa: E402
from workbench.ui import clip_views, common, model_views  # noqa: E402

PRAAT = ["ac", 75.0, 600.0, 0.45, 0.03, 0.01, 0.35, 0.14, 15, False]


# ----------------------------------------------------------------------------- message text

def test_server_paths_are_cut_to_the_file_name():
    said = common.user_message(EchoError(
        "/tmp/echo-workbench-uploads/0531af1aaad5a59a/config.json is not valid JSON; "
        "cannot read '/tmp/gradio/ab12/clip.wav': 10/20 frames, a / b, https://gradio.app/docs"))
    assert "/tmp" not in said and "0531af" not in said
    assert said.startswith("config.json is not valid JSON") and "'clip.wav'" in said
    assert "10/20 frames, a / b, https://gradio.app/docs" in said  # not paths: untouched


def test_missing_or_odd_audio_files_are_named_without_their_folder(tmp_path):
    for path, expected in ((tmp_path / "gone.wav", "audio file not found: 'gone.wav'"),
                           (tmp_path, "is not a regular file")):
        with pytest.raises(AudioError, match=expected) as err:
            load_audio(path)
        assert str(tmp_path) not in str(err.value)


def test_too_long_says_trim_the_clip_on_the_page_and_keeps_the_library_advice():
    error = _too_long(2083.3, 600.0, "'hours.wav' (length declared in its header)")
    assert "raise max_seconds" in str(error)  # a Python caller can
    said = common.user_message(error)
    assert "max_seconds" not in said
    assert said == ("'hours.wav' (length declared in its header) is 2083.3 s long, over the "
                    "limit of 600 s: clips up to 10 min are accepted; trim the clip")
    assert "clips up to 30 s are accepted" in common.user_message(_too_long(31.0, 30.0, "x"))


def test_a_text_file_renamed_wav_is_refused_by_name_only(tmp_path):
    notes = tmp_path / "notes.wav"
    notes.write_text("these are my notes, not audio\n")
    with pytest.raises(common.InputError) as err:
        clip_views.cb_extract_f0(str(notes), *PRAAT)
    assert "'notes.wav' could not be decoded as audio" in err.value.message
    assert str(tmp_path) not in err.value.message


def test_an_unreadable_uploaded_config_is_named_without_the_upload_folder(tmp_path):
    (tmp_path / "config.json").write_text("not json")
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 64)
    with pytest.raises(common.InputError) as err:
        model_views.cb_upload([str(tmp_path / "config.json"), str(tmp_path / "model.safetensors")],
                              "from config", "from config", "from config", [])
    assert err.value.message.startswith("config.json is not valid JSON")
    assert str(C.UPLOAD_ROOT) not in err.value.message and "/" not in err.value.message


# ----------------------------------------------------------------------------- forgiving events

def test_forgiving_keeps_the_outputs_and_shows_the_message(tmp_path):
    page = common.forgiving(clip_views.cb_extract_f0, 6, "The clip analysed before stays loaded.")
    notes = tmp_path / "notes.wav"
    notes.write_text("not audio")
    *outputs, note = page(str(notes), *PRAAT)
    assert outputs == [gr.skip()] * 6  # the last good clip, summary and plot stay
    assert note["visible"] and "could not be decoded as audio" in note["value"]
    assert note["value"].endswith("The clip analysed before stays loaded.")
    wav = tmp_path / "tone.wav"
    import soundfile as sf

    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    sf.write(wav, (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), SAMPLE_RATE)
    *outputs, note = page(str(wav), *PRAAT)
    assert "tone.wav" in outputs[2] and note == {"__type__": "update", "value": "",
                                                 "visible": False}


def test_forgiving_uses_on_error_and_lets_bugs_raise():
    @common.guarded
    def refuses(x):
        raise AudioError(f"{x} is not acceptable")

    @common.guarded
    def buggy(x):
        raise KeyError(x)

    marked = common.forgiving(refuses, 2, on_error=lambda message, x: [message.upper(), x])
    *outputs, note = marked("this")
    assert outputs == ["THIS IS NOT ACCEPTABLE", "this"]
    assert "this is not acceptable" in note["value"]
    with pytest.raises(gr.Error, match="Unexpected KeyError") as err:
        common.forgiving(buggy, 1)("k")
    assert not isinstance(err.value, common.InputError)  # a bug is not the user's to fix


def test_the_api_endpoints_still_raise_for_clients():
    """The page's events are private and forgiving; each named endpoint is the raising callback
    on an event no page control triggers."""
    demo = __import__("workbench.ui", fromlist=["build_demo"]).build_demo()
    named = {f.api_name: f for f in demo.fns.values() if f.api_visibility == "public"}
    for name, fn in (("extract_f0", clip_views.cb_extract_f0),
                     ("analyze_model", model_views.cb_analyze),
                     ("compare_models", model_views.cb_compare)):
        assert named[name].fn is fn and not named[name].targets, name


# ----------------------------------------------------------------------------- typed values

@pytest.mark.parametrize("typed, used", [(5, "30"), (1e4, "300")])
def test_typed_value_outside_the_range_is_named(typed, used):
    said = common.clamp_message("Pitch floor (Hz)", typed, 30, 300)
    assert f"{typed:g} is outside the accepted range 30–300; {used} is used" in said
    assert said.startswith("⚠️ Pitch floor (Hz)")


@pytest.mark.parametrize("value", [30, 75.5, 300, None, ""])
def test_values_inside_the_range_or_not_numbers_say_nothing(value):
    assert common.clamp_message("Pitch floor (Hz)", value, 30, 300) == ""


# ----------------------------------------------------------------------------- Model view

def _clip(samples, name):
    return A.clip_from_array(SAMPLE_RATE, np.asarray(samples, dtype=np.float32), name=name)


@pytest.mark.parametrize("samples, expected", [
    (np.zeros(SAMPLE_RATE), ["silent"]),
    (0.3 * np.sin(2 * np.pi * 150 * np.arange(SAMPLE_RATE // 5) / SAMPLE_RATE), ["0.20 s long"]),
    (np.random.default_rng(0).normal(0, 0.1, SAMPLE_RATE), ["no voiced frame"]),
    (np.zeros(800), ["silent", "0.05 s long"]),
])
def test_clip_warnings_say_why_a_transcript_means_nothing(samples, expected):
    clip = _clip(samples, "odd.wav")
    said = M.clip_warnings(clip, A.frame_f0(clip))
    assert len(said) == len(expected)
    for text, fact in zip(said, expected):
        assert fact in text and "not meaningful" in text


def test_a_spoken_clip_gets_no_clip_warning(arctic_path):
    clip = A.clip_from_path(arctic_path)
    assert M.clip_warnings(clip, A.frame_f0(clip)) == []


def test_warning_markdown_puts_clip_warnings_before_the_mask_warning():
    from types import SimpleNamespace

    result = SimpleNamespace(clip_warnings=["the clip is silent (RMS level -inf dBFS, below -50 "
                                            "dBFS): the transcript is not meaningful"],
                             dims={"decoder_mask": "additive"})
    text = model_views.warning_markdown(result)
    assert text.startswith("⚠️ **The clip is silent")
    assert text.endswith(model_views.MASK_WARNING)
    result.dims["decoder_mask"] = "causal"
    result.clip_warnings = []
    assert model_views.warning_markdown(result) == ""


def test_a_failed_run_marks_the_panels_as_the_previous_run():
    n = len(model_views.PAGE_RUN_OUTPUT_NAMES)
    outputs = model_views.previous_run_marked("cannot tokenise '§'", *([None] * 10), None)
    assert len(outputs) == n
    info = outputs[model_views.MODEL_OUTPUT_NAMES.index("model_info")]
    assert "The last run failed" in info and "there was none yet" in info
    assert sum(o == gr.skip() for o in outputs) == n - 1  # every other panel stays
