"""Pitch interventions: run a checkpoint on a clip under a named pitch condition, beside the
true F0, and measure what changed. What activation patching is to TransformerLens, for pitch.

Everything runs through the one pipeline (``clip_run``), so the true-F0 condition reproduces
``clip_run.transcribe`` exactly. The text scored under every condition is the same reference
(the clip's own transcript under the true F0 unless one is given), so per-token
log-likelihoods are comparable: delta NLL > 0 means the condition made the reference *less*
likely, i.e. the model used the pitch it lost. A model whose F0 reaches neither its rotary nor
an attention bias receives no F0 at all (``model_inputs`` gives it None): every contour
condition leaves it bit-identical, which :func:`f0_route` says in words.

For a set of clips, :func:`paired_bootstrap` turns per-clip deltas into a mean with a 95%
interval, so "this model uses pitch" is a claim with an interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import attention_priors as priors
from . import clip_run, rotary
from .audio import HOP_LENGTH, SAMPLE_RATE, audio_from_array
from .decode import model_uses_f0, wer_cer
from .pitch import F0Track, align_to_frames, extract_f0
from .pitch_conditions import Condition, parse_condition, shift_audio, transform_contour

BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0


@dataclass
class ConditionRun:
    """One checkpoint on one clip under one pitch condition."""

    condition: str
    transcript: str  # decoded under the condition (decode.transcript_ids)
    f0_frames: np.ndarray  # (T,) the contour the model was given (Hz, NaN unvoiced)
    reference: str  # the text scored (same for every condition of a comparison)
    token_logprobs: np.ndarray  # (len(reference tokens) + 1,): log p of each token and eos
    nll: float  # mean negative log-likelihood per token of the reference
    theta: pd.DataFrame  # theta in force per attention module (theta_table)
    run: clip_run.ClipRun  # the pipeline's record (mel, cache when captured)


def f0_route(model) -> str:
    """Where the F0 goes in this model, in words (the UI shows it instead of empty numbers)."""
    dims = model.dims
    if not model_uses_f0(model):
        return ("F0 does not reach this model: its rotary uses learned frequencies and it adds "
                "no pitch bias, so every contour condition leaves it unchanged (only the audio "
                "conditions can move it)")
    parts = []
    if dims.f0_rotary:
        parts.append(f"rotary theta from F0 ({dims.theta_mode}, mean rule {dims.f0_mean!r})")
    if dims.pitch_bias:
        parts.append("pitch-similarity bias added to encoder self-attention")
    return "F0 reaches: " + " and ".join(parts)


def theta_table(model, f0_frames: np.ndarray) -> pd.DataFrame:
    """Theta in force per attention module for this contour: module, kind, source, theta
    (the learned static base), theta_in_force. F0 models: theta_eff by the model's own mean
    rule (per-frame models: the median over frames of theta_eff(f0_t)); models without F0:
    the base implied by the learned inv_freq (its frequencies, read as a theta)."""
    from .attention_kinds import attention_kind
    from .checkpoint import implied_theta
    from .model_layers import MultiheadA

    uses_f0 = model_uses_f0(model)
    f0 = np.asarray(f0_frames, dtype=np.float64)
    rows = []
    for path, module in model.named_modules():
        if not isinstance(module, MultiheadA) or attention_kind(path) is None:
            continue
        info = priors.rope_info(module)
        kind = attention_kind(path)[0]
        if uses_f0 and info["f0_rotary"]:
            if info["per_frame"] and kind != "decoder self-attention":
                voiced = rotary.voiced_mask(f0)
                per_frame = rotary.theta_eff(info["theta"], np.where(voiced, f0, 0.0))
                value, source = float(np.median(per_frame)), "F0 per frame (median)"
            else:
                value = priors.theta_used(info, f0)
                source = f"F0 mean ({info['f0_mean']})"
        else:
            value, source = implied_theta(module.rope.inv_freq.detach()), "learned inv_freq"
        rows.append(dict(module=path, kind=kind, source=source, theta=info["theta"],
                         theta_in_force=float(value)))
    return pd.DataFrame(rows, columns=["module", "kind", "source", "theta", "theta_in_force"])


def _inputs_under(condition: Condition, model, samples: np.ndarray, track: F0Track,
                  other_f0=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(samples, mel, f0_frames) the model gets under ``condition``."""
    if condition.changes_audio:
        shifted = shift_audio(samples, SAMPLE_RATE, float(condition.value))
        new_track = extract_f0(shifted, SAMPLE_RATE) if condition.kind == "audio" else track
        mel, f0_frames = clip_run.clip_features(model, shifted, SAMPLE_RATE, new_track)
        return shifted, mel, f0_frames
    mel, f0_frames = clip_run.clip_features(model, samples, SAMPLE_RATE, track)
    return samples, mel, transform_contour(condition, f0_frames, other_f0)


def run_condition(model, samples: np.ndarray, sr: int, condition: str | Condition, *,
                  reference_text: str | None = None, track: F0Track | None = None,
                  other_f0: np.ndarray | None = None, capture: bool = False,
                  tokenizer=None) -> ConditionRun:
    """The checkpoint on the clip under one pitch condition (see ``pitch_conditions``).

    ``reference_text``: the text whose per-token log-likelihood is measured; None: the clip's
    own transcript under the true F0 (one extra decode when the condition is not
    ``true``). ``track``: the clip's Praat track if already extracted. ``other_f0``: the borrowed
    contour for ``other:NAME``. ``capture``: keep the attention maps (``run.cache``)."""
    condition = parse_condition(condition) if isinstance(condition, str) else condition
    audio = audio_from_array(samples, sr)
    track = track if track is not None else extract_f0(audio.samples, SAMPLE_RATE)
    if reference_text is None and condition.kind != "true":
        reference_text = run_condition(model, audio.samples, SAMPLE_RATE, "true", track=track,
                                       tokenizer=tokenizer).transcript
    shifted, mel, f0_frames = _inputs_under(condition, model, audio.samples, track, other_f0)
    run = clip_run.run_clip(model, mel, f0_frames, tokenizer=tokenizer, samples=shifted,
                            teacher_text=reference_text, capture="forward")
    if not capture:
        run.cache = None
    return ConditionRun(condition=condition.name, transcript=run.transcript,
                        f0_frames=f0_frames, reference=run.teacher_text,
                        token_logprobs=run.token_logprobs,
                        nll=float(-np.mean(run.token_logprobs)),
                        theta=theta_table(model, f0_frames), run=run)


def compare_conditions(model, samples: np.ndarray, sr: int, conditions, *,
                       reference_text: str | None = None, other_f0: np.ndarray | None = None,
                       capture: bool = False) -> tuple[pd.DataFrame, dict[str, ConditionRun]]:
    """A pitch-sensitivity summary of one clip: every condition against the true F0.

    Returns (table, runs): one row per condition with its transcript, whether it differs
    from the true-F0 transcript, the CER between them, the mean NLL per reference token and
    delta NLL (condition - true), and the first encoder layer's theta in force; ``runs``
    maps condition name -> ConditionRun (``true`` included)."""
    audio = audio_from_array(samples, sr)
    track = extract_f0(audio.samples, SAMPLE_RATE)
    true = run_condition(model, audio.samples, SAMPLE_RATE, "true", track=track,
                         reference_text=reference_text, capture=capture)
    runs = {"true": true}
    for text in conditions:
        condition = parse_condition(text) if isinstance(text, str) else text
        if condition.kind == "true":
            continue
        runs[condition.name] = run_condition(
            model, audio.samples, SAMPLE_RATE, condition, reference_text=true.reference,
            track=track, other_f0=other_f0, capture=capture, tokenizer=true.run.tokenizer)
    return pd.DataFrame([dict(condition=name, **against_true(r, true))
                         for name, r in runs.items()]), runs


def against_true(run: ConditionRun, true: ConditionRun) -> dict:
    """One condition's numbers beside the true-F0 run: transcript, whether it changed, CER
    between the two transcripts, NLL per reference token and its change, the first layer's
    theta in force and the voiced frames the model was given."""
    cer = wer_cer([true.transcript], [run.transcript])[1] if true.transcript else float(
        run.transcript != "")
    theta = run.theta["theta_in_force"].iloc[0] if len(run.theta) else np.nan
    return dict(transcript=run.transcript, changed=run.transcript != true.transcript,
                cer_vs_true=cer, nll=run.nll, delta_nll=run.nll - true.nll,
                theta_in_force=theta, voiced_frames=int(np.isfinite(run.f0_frames).sum()))


def paired_bootstrap(deltas, n_samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED,
                     level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the mean of per-clip paired differences and its percentile bootstrap
    interval (clips resampled with replacement, ``n_samples`` times, seeded). NaN for no data;
    a single clip gives a zero-width interval."""
    d = np.asarray(deltas, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(int(n_samples), d.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(d.mean()), float(low), float(high)


def f0_frames_of(samples: np.ndarray, sr: int) -> np.ndarray:
    """A clip's Praat contour on its own mel frames (Hz, NaN unvoiced): what ``other:NAME``
    borrows (stretched in time onto the analysed clip by ``pitch_conditions.borrowed``)."""
    audio = audio_from_array(samples, sr)
    n_frames = 1 + len(audio.samples) // HOP_LENGTH
    return align_to_frames(extract_f0(audio.samples, SAMPLE_RATE), n_frames)
