"""echo_core.clip_run: the one pipeline that runs a checkpoint on a digit_clip, checked against
independent computations (a plain forward, hand-made inputs, the shipped checkpoints)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from echo_core import clip_run, rotary
from echo_core.decode import greedy_ids
from echo_core.errors import EchoError, TranscriptError
from echo_core.tokenizer import BOS, EOS


def test_model_inputs_convert_nan_at_the_door_and_only_for_f0_models(shipped_models):
    mel = np.zeros((shipped_models["static_theta"].dims.mels, 6), np.float32)
    f0 = np.array([np.nan, 120.0, 130.0, np.nan, 0.0, 140.0])
    f0_model = clip_run.model_inputs(shipped_models["mean_f0_theta"], mel, f0, [5, 6])
    np.testing.assert_array_equal(f0_model["f0"][0].numpy(), [0, 120, 130, 0, 0, 140])
    assert f0_model["f0"].dtype == torch.float32
    assert f0_model["input_ids"].tolist() == [[BOS, 5, 6]]
    assert f0_model["labels"].tolist() == [[5, 6, EOS]]
    assert clip_run.model_inputs(shipped_models["static_theta"], mel, f0)["f0"] is None


def test_run_clip_matches_a_plain_forward(shipped_models, digit_clip):
    """Greedy ids equal decode.greedy_ids on hand-built tensors; the captured teacher-forced
    loss and per-token log-probabilities equal a plain forward's cross-entropy."""
    model = shipped_models["mean_f0_theta"]
    mel, f0_frames = clip_run.clip_features(model, *digit_clip)
    run = clip_run.run_clip(model, mel, f0_frames, capture="forward")
    spec = torch.from_numpy(mel)[None]
    f0 = torch.from_numpy(np.nan_to_num(f0_frames, nan=0.0).astype(np.float32))[None]
    with torch.no_grad():
        ids = greedy_ids(model, spec, f0)[0]
        logits = model(torch.tensor([[BOS] + ids]), spectrogram=spec, f0=f0)["logits"][0]
    assert run.token_ids == ids and run.teacher_ids == ids
    assert run.transcript == run.tokenizer.decode(ids) == "four two seven"
    labels = torch.tensor(ids + [EOS])
    expected = torch.log_softmax(logits.double(), -1)[torch.arange(len(labels)), labels]
    np.testing.assert_allclose(run.token_logprobs, expected.numpy(), atol=1e-4)
    assert run.loss == pytest.approx(float(F.cross_entropy(logits, labels)), abs=1e-5)
    assert any(p.endswith("attna") for p in run.cache.attention)
    assert clip_run.transcribe(model, *digit_clip) == run.transcript


def test_teacher_text_and_its_errors(shipped_models, digit_clip):
    model = shipped_models["static_theta"]
    mel, f0_frames = clip_run.clip_features(model, *digit_clip)
    run = clip_run.run_clip(model, mel, f0_frames, teacher_text="Nine  oh", capture="forward")
    assert run.teacher_text == "nine oh" and run.teacher_ids == run.tokenizer.encode("nine oh")
    assert run.token_logprobs.shape == (len("nine oh") + 1,)
    with pytest.raises(TranscriptError, match="reads at most"):
        clip_run.run_clip(model, mel, f0_frames, teacher_text="a" * model.dims.text_ctx,
                          capture="forward")
    with pytest.raises(EchoError, match="capture must be"):
        clip_run.run_clip(model, mel, f0_frames, capture="everything")
    with pytest.raises(EchoError, match="one F0 value per mel frame"):
        clip_run.run_clip(model, mel, f0_frames[:-1])


def test_backward_capture_records_gradients_and_leaves_none(shipped_models, digit_clip):
    model = shipped_models["static_theta"]
    mel, f0_frames = clip_run.clip_features(model, *digit_clip)
    run = clip_run.run_clip(model, mel, f0_frames, capture="backward")
    assert run.cache.gradients and all(p.grad is None for p in model.parameters())


# ------------------------------------------------------------------ the formulas it relies on

def test_mean_f0_rules_against_hand_computation():
    f0 = np.array([np.nan, 100.0, 200.0, 0.0, 300.0])
    assert rotary.mean_f0(f0, "voiced") == pytest.approx(200.0)
    assert rotary.mean_f0(f0, "batch") == pytest.approx(600.0 / 5)
    assert rotary.mean_f0(np.full(4, np.nan), "voiced") == 0.0
    rows = torch.tensor([[0.0, 100.0, 200.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(rotary.mean_f0(rows, "voiced").numpy(), [150.0, 0.0])
    assert float(rotary.mean_f0(rows, "batch")) == pytest.approx(50.0)
    assert rotary.theta_from_f0(f0, 1000.0, "batch") == pytest.approx(
        1000.0 + np.log1p(120 / 700) / np.log1p(300 / 700) * 9200)
    with pytest.raises(EchoError, match="f0 mean rule"):
        rotary.mean_f0(f0, "median")


def test_frame_index_maps_positions_by_time():
    # 10 frames onto 4 positions: centres at 1.25, 3.75, 6.25, 8.75 frames -> floor
    np.testing.assert_array_equal(rotary.frame_index(10, 4), [1, 3, 6, 8])
    np.testing.assert_array_equal(rotary.frame_index(5, 5), np.arange(5))
    np.testing.assert_array_equal(rotary.frame_index(3, 6), [0, 0, 1, 1, 2, 2])
    f0 = np.arange(10.0)
    np.testing.assert_array_equal(rotary.f0_at_positions(f0, 4), [1.0, 3.0, 6.0, 8.0])
    rows = torch.arange(20.0).reshape(2, 10)
    np.testing.assert_array_equal(rotary.f0_at_positions(rows, 4).numpy(),
                                  [[1, 3, 6, 8], [11, 13, 16, 18]])


def test_speech_span_is_the_loud_stretch_plus_lead_and_tail():
    """A tone from 0.5 s to 1.0 s inside 2 s of silence: the span is its frames, widened by
    16 ms before and the 80 ms the corpus keeps after (frame i is centred on sample 128 i); all
    of a clip with nothing to cut; the padded clip decodes the frames of the speech."""
    from echo_core.audio import SPEECH_LEAD_FRAMES, SPEECH_TAIL_FRAMES, log_mel, speech_span

    sr = 16000
    x = np.zeros(2 * sr, np.float32)
    t = np.arange(sr // 2) / sr
    x[sr // 2: sr] = 0.3 * np.sin(2 * np.pi * 220 * t)
    mel = log_mel(x)
    start, stop = speech_span(mel)
    # frames whose 1024-sample window touches the tone: centres within 512 samples of it
    first, last = (sr // 2 - 512) // 128 + 1, (sr - 1 + 512) // 128
    assert (SPEECH_LEAD_FRAMES, SPEECH_TAIL_FRAMES) == (2, 10)
    assert abs(start - (first - 2)) <= 2
    assert abs(stop - (last + 10 + 1)) <= 2
    assert speech_span(mel, lead=0, tail=0) == (start + 2, stop - 10)
    assert speech_span(log_mel(x[sr // 2: sr])) == (0, log_mel(x[sr // 2: sr]).shape[1])
    assert speech_span(np.zeros((80, 50), np.float32)) == (0, 50)  # silence: nothing to cut


def test_silence_around_a_clip_does_not_change_its_transcript(shipped_models, digit_clip):
    """One second of silence either side (a recording) gives the transcript of the clip
    itself: greedy decoding reads the speech span; the capture sees every frame."""
    model = shipped_models["mean_f0_theta"]
    samples, sr = digit_clip
    padded = np.concatenate([np.zeros(sr, np.float32), samples, np.zeros(sr, np.float32)])
    assert clip_run.transcribe(model, padded, sr) == clip_run.transcribe(model, samples, sr)
    mel, f0 = clip_run.clip_features(model, padded, sr)
    run = clip_run.run_clip(model, mel, f0, capture="forward")
    start, stop = run.decoded_span
    assert start > 0 and stop < mel.shape[1] and run.mel.shape == mel.shape


def test_a_given_span_is_decoded_and_checked(shipped_models, digit_clip):
    """run_clip(span=...) decodes exactly those frames (speech_span's own span gives the same
    run; a whole-clip span decodes everything); a span outside the clip is refused."""
    from echo_core.audio import speech_span
    from echo_core.errors import EchoError

    model = shipped_models["mean_f0_theta"]
    samples, sr = digit_clip
    padded = np.concatenate([np.zeros(sr, np.float32), samples, np.zeros(sr, np.float32)])
    mel, f0 = clip_run.clip_features(model, padded, sr)
    default = clip_run.run_clip(model, mel, f0)
    same = clip_run.run_clip(model, mel, f0, span=speech_span(mel))
    assert same.decoded_span == default.decoded_span and same.token_ids == default.token_ids
    whole = clip_run.run_clip(model, mel, f0, span=(0, mel.shape[1]))
    assert whole.decoded_span == (0, mel.shape[1])
    for bad in ((5, 5), (-1, 10), (0, mel.shape[1] + 1)):
        with pytest.raises(EchoError, match="is not a stretch of the clip"):
            clip_run.run_clip(model, mel, f0, span=bad)
