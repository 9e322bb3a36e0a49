"""Test signals shared by the benchmarks: a synthetic voice of known F0, and real speech looped.

The synthetic voice is what the F0 accuracy numbers are measured against, so it is built to be
hard in the ways speech is: phrases of 1.5-3.5 s at different pitches (about 80-300 Hz), each
with a declining glide and a 5.5 Hz vibrato of +-20 cents, vowel-like formant envelopes that
change from phrase to phrase, and short unvoiced gaps of faint noise between phrases. Everything
is seeded, so a worker subprocess rebuilds exactly the same signal from (seconds, seed).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

SR = 16000
REPO = Path(__file__).resolve().parent.parent
CLIPS_DIR = REPO / "assets" / "clips"
VIBRATO_HZ = 5.5
VIBRATO_CENTS = 20.0
GLIDE_OCTAVES = 0.4  # each phrase falls by this much from start to end (declination)
FADE_SECONDS = 0.02  # raised-cosine fade at phrase edges (no clicks)
NOISE_LEVEL = 10 ** (-50 / 20)  # gaps: white noise 50 dB below full scale
VOWELS = ((700.0, 1200.0, 2600.0), (300.0, 2300.0, 3000.0), (500.0, 900.0, 2500.0),
          (400.0, 1900.0, 2550.0), (350.0, 800.0, 2400.0))


def _phrases(seconds: float, rng: np.random.Generator) -> list[tuple[float, float, float, int]]:
    """(start s, end s, centre F0 Hz, vowel index) of each voiced phrase, gaps in between."""
    out, t = [], float(rng.uniform(0.1, 0.25))
    while t < seconds - 0.3:
        length = float(rng.uniform(1.5, 3.5))
        end = min(t + length, seconds - 0.1)
        centre = float(np.exp(rng.uniform(np.log(95.0), np.log(250.0))))
        out.append((t, end, centre, int(rng.integers(len(VOWELS)))))
        t = end + float(rng.uniform(0.15, 0.4))
    return out


@lru_cache(maxsize=4)
def synthetic_voice(seconds: float, seed: int = 0, sr: int = SR) -> tuple[np.ndarray, np.ndarray]:
    """(samples float32 in [-1, 1], true F0 per sample in Hz with NaN where unvoiced)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    f0 = np.full(n, np.nan)
    x = rng.standard_normal(n) * NOISE_LEVEL
    for start, end, centre, vowel in _phrases(seconds, rng):
        i0, i1 = int(start * sr), int(end * sr)
        tt = t[i0:i1]
        progress = (tt - start) / max(end - start, 1e-9)
        contour = centre * 2 ** (GLIDE_OCTAVES * (0.5 - progress))
        contour = contour * 2 ** (VIBRATO_CENTS / 1200 * np.sin(2 * np.pi * VIBRATO_HZ * tt))
        phase = 2 * np.pi * np.cumsum(contour) / sr
        tone = np.zeros_like(tt)
        for h in range(1, int(7000 / contour.min()) + 1):
            fh = h * contour
            gain = sum(np.exp(-(((fh - f) / 120.0) ** 2)) for f in VOWELS[vowel]) + 0.3 / h
            tone += np.where(fh < 7000.0, gain, 0.0) * np.sin(h * phase)
        fade = np.minimum(1.0, np.minimum(tt - start, end - tt) / FADE_SECONDS)
        envelope = 0.5 - 0.5 * np.cos(np.pi * np.clip(fade, 0.0, 1.0))
        x[i0:i1] += 0.3 * envelope * tone / np.max(np.abs(tone))
        f0[i0:i1] = contour
    x = 0.9 * x / np.max(np.abs(x))
    x, f0 = x.astype(np.float32), f0
    x.setflags(write=False)
    f0.setflags(write=False)
    return x, f0


def truth_at(times: np.ndarray, f0_per_sample: np.ndarray, margin: float = 0.025,
             sr: int = SR) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true F0 at ``times``, stably voiced mask, stably unvoiced mask).

    A frame counts as voiced (or unvoiced) only if every sample within +-``margin`` s is, so
    frames straddling a phrase edge are left out of every metric for every method alike.
    """
    times = np.asarray(times, dtype=np.float64)
    idx = np.clip(np.round(times * sr).astype(np.int64), 0, f0_per_sample.size - 1)
    voiced_samples = np.isfinite(f0_per_sample).astype(np.int64)
    csum = np.concatenate([[0], np.cumsum(voiced_samples)])
    half = int(margin * sr)
    lo = np.clip(idx - half, 0, f0_per_sample.size)
    hi = np.clip(idx + half + 1, 0, f0_per_sample.size)
    count = csum[hi] - csum[lo]
    return f0_per_sample[idx], count == (hi - lo), count == 0


def f0_errors(times, estimate, f0_per_sample) -> dict:
    """Accuracy of an F0 estimate against the known contour (cents over frames voiced in both).

    gross_error_rate: share of those frames off by more than 20 % (the usual GPE);
    voicing_recall: stably voiced frames the method calls voiced; false_voicing: stably unvoiced
    frames it calls voiced (1.0 for a tracker without a voicing decision, such as yin).
    """
    truth, voiced, unvoiced = truth_at(times, f0_per_sample)
    est = np.asarray(estimate, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        est_voiced = np.isfinite(est) & (est > 0)
    both = voiced & est_voiced
    cents = 1200.0 * np.abs(np.log2(est[both] / truth[both]))
    return {
        "cents_median_abs": float(np.median(cents)) if cents.size else float("nan"),
        "cents_p90_abs": float(np.percentile(cents, 90)) if cents.size else float("nan"),
        "gross_error_rate": float(np.mean(cents > 1200 * np.log2(1.2))) if cents.size else
        float("nan"),
        "voicing_recall": float(both.sum() / max(voiced.sum(), 1)),
        "false_voicing": float((unvoiced & est_voiced).sum() / max(unvoiced.sum(), 1)),
        "frames_compared": int(both.sum()),
    }


@lru_cache(maxsize=4)
def real_speech(seconds: float, sr: int = SR) -> np.ndarray:
    """The example clips of assets/clips joined (0.2 s silence between) and looped to length."""
    from echo_core.audio import load_audio

    pieces = []
    for path in sorted(CLIPS_DIR.glob("*.wav")):
        pieces += [load_audio(path, sr=sr).samples, np.zeros(int(0.2 * sr), np.float32)]
    if not pieces:  # no clips shipped: fall back to the synthetic voice
        return synthetic_voice(seconds, 1, sr)[0]
    joined = np.concatenate(pieces)
    n = int(round(seconds * sr))
    out = np.tile(joined, int(np.ceil(n / joined.size)))[:n].astype(np.float32)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=4)
def speech_f0_frames(seconds: float, n_frames: int | None = None) -> np.ndarray:
    """A realistic F0 contour on the mel frame grid (NaN unvoiced): Praat on looped speech."""
    from echo_core.audio import HOP_LENGTH
    from echo_core.pitch import align_to_frames, extract_f0

    x = real_speech(seconds)
    n = 1 + x.size // HOP_LENGTH if n_frames is None else n_frames
    out = align_to_frames(extract_f0(x, SR), n)
    out.setflags(write=False)
    return out
