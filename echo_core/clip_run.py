"""Run a checkpoint on a clip: the one pipeline behind transcription, the app's Model view,
batch analysis, the notebooks, the benchmarks and pitch interventions.

Each step exists once, here:
1. features as stored with the checkpoint (``meta["features"]``: log-mel settings) and the
   Praat F0 aligned by time to the mel frames (NaN unvoiced: what users see);
2. the model's door (:func:`model_inputs`): the F0 becomes the model's 0-for-unvoiced float32
   only here (``pitch.f0_for_model``) and only models that read F0 receive it;
3. decoding of the speech span (``decode.transcript_ids``: greedy with cached keys and values,
   or joint CTC/attention beam search for a model with a CTC head)
   (``audio.speech_span``: the models were trained on clips cut close to the speech and
   invent words in the silence around a recording; the capture below still sees every frame);
4. optionally one teacher-forced forward on a text (the model's transcript by default) inside
   ``hooks.capture``, with or without a backward pass, keeping attention maps up to
   :data:`MAX_ATTENTION_BYTES`.
The caller owns threads and locks (the app serialises hook captures on a shared model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audio import HOP_LENGTH, SAMPLE_RATE, audio_from_array, log_mel, speech_span
from .decode import (decoding_name, feature_settings, load_tokenizer, model_uses_f0,
                     transcript_ids, wer_cer)
from .errors import EchoError, TranscriptError
from .pitch import F0Track, align_to_frames, extract_f0, f0_for_model
from .tokenizer import BOS, EOS, CharTokenizer

MAX_ATTENTION_BYTES = 1024 * 2**20  # keep every attention map of a clip up to 30 s
CAPTURES = (None, "forward", "backward")  # what run_clip records besides the transcript


@dataclass
class ClipRun:
    """One checkpoint on one clip: inputs as the model saw them, its transcript, and the
    teacher-forced capture when one was asked for."""

    mel: np.ndarray  # (n_mels, T) log-mel as the checkpoint expects
    f0_frames: np.ndarray  # (T,) Hz on the mel frames, NaN unvoiced
    uses_f0: bool  # whether the model received the F0 (f0_rotary or pitch_bias)
    token_ids: list[int]  # the decoded transcript, without bos/eos
    transcript: str  # decoded; token ids joined by spaces when there is no tokenizer
    tokenizer: CharTokenizer | None
    teacher_ids: list[int] = field(default_factory=list)  # the captured forward's text
    teacher_text: str = ""
    cache: object | None = None  # hooks.Cache of the teacher-forced forward
    loss: float = float("nan")  # mean cross-entropy of the teacher text (with eos)
    token_logprobs: np.ndarray | None = None  # (len(teacher_ids) + 1,) log p of each + eos
    decoded_span: tuple[int, int] = (0, 0)  # [start, stop) mel frames the decoding read
    decoding: str = ""  # how the transcript was decoded (decode.decoding_name); "" not decoded


def clip_features(model, samples: np.ndarray, sr: int = SAMPLE_RATE,
                  track: F0Track | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(log-mel (n_mels, T) with the checkpoint's settings, F0 (T,) Hz on the mel frames, NaN
    unvoiced) for raw audio at any rate (resampled to 16 kHz). ``track``: a Praat F0 track of
    the same audio already at hand (e.g. shared by several checkpoints), else extracted with
    the default settings."""
    audio = audio_from_array(samples, sr)
    settings = feature_settings(model)
    mel = log_mel(audio.samples, SAMPLE_RATE, n_mels=int(settings["n_mels"]),
                  fmin=float(settings["fmin"]), fmax=settings["fmax"])
    track = track if track is not None else extract_f0(audio.samples, SAMPLE_RATE)
    return mel, align_to_frames(track, mel.shape[1])


def model_inputs(model, mel: np.ndarray, f0_frames: np.ndarray, token_ids=None,
                 samples: np.ndarray | None = None) -> dict:
    """Echo.forward keyword arguments for one clip: the model's door. ``f0_frames`` (NaN
    unvoiced) becomes the model's float32 with 0 unvoiced, given only to models that read F0;
    ``token_ids`` (without bos) become input_ids with bos and labels with eos; the waveform
    stream (16 kHz ``samples``) and the pitch stream are fed when the model has them."""
    import torch

    dims = model.dims
    f0_model = torch.from_numpy(f0_for_model(f0_frames))[None]  # (1, T), 0 = unvoiced
    inputs = {"f0": f0_model if model_uses_f0(model) else None}
    if "spectrogram" in dims.features:
        inputs["spectrogram"] = torch.from_numpy(np.asarray(mel, np.float32))[None]  # (1, n_mels, T)
    if "waveform" in dims.features:
        if samples is None:
            raise EchoError("this model reads the waveform: pass the clip's 16 kHz samples")
        inputs["waveform"] = torch.from_numpy(np.asarray(samples, np.float32))[None]
    if "pitch" in dims.features:
        inputs["pitch"] = f0_model
    if token_ids is not None:
        inputs["input_ids"] = torch.tensor([[BOS] + list(token_ids)])
        inputs["labels"] = torch.tensor([list(token_ids) + [EOS]])
    return inputs


def _tokenizer_or_none(model, tokenizer):
    if tokenizer is not None:
        return tokenizer
    try:
        return load_tokenizer(model)
    except EchoError:
        return None


def _teacher(model, tokenizer, teacher_text: str | None, teacher_ids, decoded: list[int],
             transcript: str):
    """(token ids, normalised text) of the text the captured forward reads."""
    if teacher_ids is not None:
        ids = [int(i) for i in teacher_ids]
        text = tokenizer.decode(ids) if tokenizer else " ".join(map(str, ids))
    elif not teacher_text or not teacher_text.strip():
        return list(decoded), transcript
    elif tokenizer is None:
        raise TranscriptError("this checkpoint has no tokenizer, so a typed transcript cannot "
                              "be tokenised; leave it empty to use the model's own output")
    else:
        ids, text = tokenizer.encode(teacher_text), tokenizer.normalize(teacher_text)
    if len(ids) > model.dims.text_ctx - 1:
        raise TranscriptError(f"the transcript has {len(ids)} tokens; this model reads at most "
                              f"{model.dims.text_ctx - 1} (text_ctx minus the start token)")
    return ids, text


def run_clip(model, mel: np.ndarray, f0_frames: np.ndarray, *,
             tokenizer: CharTokenizer | None = None, teacher_text: str | None = None,
             teacher_ids=None, capture: str | None = None, samples: np.ndarray | None = None,
             max_tokens: int | None = None, decode: bool = True,
             max_attention_bytes: int = MAX_ATTENTION_BYTES,
             span: tuple[int, int] | None = None) -> ClipRun:
    """The model's transcript of one clip (``decode.transcript_ids``), then (``capture`` "forward" or "backward") one
    teacher-forced forward under ``hooks.capture(depth="full")`` on ``teacher_text`` or
    ``teacher_ids`` (without bos; the model's transcript when neither is given), with a
    backward pass and gradient statistics for "backward". ``mel`` (n_mels, T) and
    ``f0_frames`` (T,) as :func:`clip_features` returns them; ``tokenizer``: the checkpoint's
    own when None (token ids shown when it has none). ``decode=False`` skips decoding when
    only the capture of given ids is wanted. ``span``: the [start, stop) frames to decode
    instead of ``audio.speech_span``'s (a measurement of the span itself). TranscriptError for
    a text the model cannot read."""
    import torch

    from . import hooks

    if capture not in CAPTURES:
        raise EchoError(f"capture must be one of {CAPTURES}, got {capture!r}")
    mel = np.asarray(mel, np.float32)
    f0_frames = np.asarray(f0_frames, np.float64)
    if mel.ndim != 2 or f0_frames.shape != (mel.shape[1],):
        raise EchoError(f"need mel (n_mels, T) and one F0 value per mel frame (T,), got "
                        f"{mel.shape} and {f0_frames.shape}")
    tokenizer = _tokenizer_or_none(model, tokenizer)
    ids, wanted, span = [], span, (0, mel.shape[1])
    if decode:
        span = speech_span(mel) if wanted is None else (int(wanted[0]), int(wanted[1]))
        a, b = span
        if not 0 <= a < b <= mel.shape[1]:
            raise EchoError(f"span {span} is not a stretch of the clip's {mel.shape[1]} frames")
        inputs = model_inputs(model, mel[:, a:b], f0_frames[a:b], samples=None if samples is None
                              else samples[a * HOP_LENGTH: b * HOP_LENGTH])
        with torch.no_grad():
            ids = transcript_ids(model, inputs.get("spectrogram"), inputs["f0"],
                                 max_tokens=max_tokens)
    transcript = tokenizer.decode(ids) if tokenizer else " ".join(map(str, ids))
    run = ClipRun(mel=mel, f0_frames=f0_frames, uses_f0=model_uses_f0(model), token_ids=ids,
                  transcript=transcript, tokenizer=tokenizer, decoded_span=span,
                  decoding=decoding_name(model) if decode else "")
    if capture is None:
        return run
    run.teacher_ids, run.teacher_text = _teacher(model, tokenizer, teacher_text, teacher_ids,
                                                 ids, transcript)
    inputs = model_inputs(model, mel, f0_frames, run.teacher_ids, samples)
    backward = capture == "backward"
    model.zero_grad(set_to_none=True)
    try:
        with hooks.capture(model, depth="full", gradients=backward,
                           max_attention_bytes=max_attention_bytes) as cache, \
                torch.set_grad_enabled(backward):
            out = model(**inputs)
            if backward:
                out["loss"].backward()
    finally:
        model.zero_grad(set_to_none=True)
    logprobs = torch.log_softmax(out["logits"][0].detach().float(), dim=-1)  # (L, vocab)
    labels = inputs["labels"][0]
    run.cache, run.loss = cache, float(out["loss"].detach())
    run.token_logprobs = logprobs[torch.arange(labels.numel()), labels].numpy()
    return run


def transcribe(model, samples: np.ndarray, sr: int, tokenizer: CharTokenizer | None = None,
               max_tokens: int | None = None) -> str:
    """The model's transcript of raw audio (any rate; resampled to 16 kHz, features as trained)."""
    tokenizer = tokenizer or load_tokenizer(model)
    model.eval()
    audio = audio_from_array(samples, sr)
    mel, f0_frames = clip_features(model, audio.samples, SAMPLE_RATE)
    return run_clip(model, mel, f0_frames, tokenizer=tokenizer, max_tokens=max_tokens,
                    samples=audio.samples).transcript


def evaluate(model, clips, tokenizer: CharTokenizer | None = None) -> tuple[float, float]:
    """(WER, CER) of the model's transcripts (``transcript_ids``) for ``clips``: (wav path or (samples, sr), text) pairs."""
    import soundfile as sf

    tokenizer = tokenizer or load_tokenizer(model)
    refs, hyps = [], []
    for audio, text in clips:
        if isinstance(audio, (str, Path)):
            samples, sr = sf.read(str(audio), dtype="float32")
        else:
            samples, sr = audio
        refs.append(tokenizer.normalize(text))
        hyps.append(transcribe(model, samples, sr, tokenizer))
    return wer_cer(refs, hyps)
