"""Training-time augmentations of a log-mel spectrogram (SpecAugment, a vocal tract warp, a
spectral tilt, a telephone band, a noise floor, a clipped onset, a time stretch, a time warp).

Why on the features and not in the corpus: each is drawn afresh for every step from the run's
seeded random stream, so one rendered corpus gives a new variant of every clip each epoch, and a
run that does not switch one on draws exactly the numbers it drew before the switch existed.

The features are ``audio.log_mel``'s: log10 power, floored 8 units below the clip's loudest bin,
then (x + 4) / 4, so one feature unit is 4 log10 units (40 dB) and the floor is 2 units below the
maximum.
"""

from __future__ import annotations

import functools

import numpy as np

from echo_core.audio import (DYNAMIC_RANGE, LOG10_PER_UNIT, SAMPLE_RATE, features_from_power,
                             power_from_features)
from echo_core.errors import EchoError

FLOOR_UNITS = DYNAMIC_RANGE / LOG10_PER_UNIT  # the features' floor below the clip's maximum
NOISE_FLOOR_DB = (30.0, 60.0)  # a noise floor this far below the clip's power, drawn uniformly


def warp_mel(mel: np.ndarray, alpha: float) -> np.ndarray:
    """The log-mel with its frequency axis stretched by ``alpha`` (> 1: formants move up, as
    for a shorter vocal tract): channel f reads channel f / alpha, linearly interpolated, the
    edges held. A cheap vocal tract length perturbation (Jaitly and Hinton, "Vocal Tract Length
    Perturbation (VTLP) improves speech recognition", 2013), on the mel axis."""
    n_mels = mel.shape[0]
    return linear_at(mel, np.clip(np.arange(n_mels) / alpha, 0, n_mels - 1), axis=0)


def linear_at(x: np.ndarray, source: np.ndarray, axis: int) -> np.ndarray:
    """``x`` read at fractional positions ``source`` (within [0, n - 1]) along ``axis``, each
    linearly interpolated between its two neighbours: the warp's channels and the stretch's
    frames."""
    n = x.shape[axis]
    low = np.floor(source).astype(np.intp)
    high = np.minimum(low + 1, n - 1)
    shape = [1] * x.ndim
    shape[axis] = -1
    frac = (source - low).astype(x.dtype).reshape(shape)
    return np.take(x, low, axis=axis) * (1 - frac) + np.take(x, high, axis=axis) * frac


@functools.lru_cache(maxsize=8)
def mel_centres(n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Centre frequency (Hz) of each HTK mel filter of ``audio.log_mel``'s filterbank (read
    only: one array per setting, shared by every call)."""
    import librosa

    centres = librosa.mel_frequencies(n_mels + 2, fmin=fmin, fmax=fmax, htk=True)[1:-1]
    centres.setflags(write=False)
    return centres


def first_order_gain(freqs: np.ndarray, coef: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """log10 power gain of the filter y[n] = x[n] - coef * x[n - 1] at ``freqs`` Hz:
    |1 - coef e^(-i w)|^2 = 1 - 2 coef cos w + coef^2 with w = 2 pi f / sr. coef > 0 is a
    pre-emphasis (highs up, lows down), coef < 0 the opposite."""
    w = 2 * np.pi * np.asarray(freqs, np.float64) / sr
    return np.log10(1 - 2 * coef * np.cos(w) + coef * coef)


def tilt_mel(mel: np.ndarray, coef: float, centres: np.ndarray) -> np.ndarray:
    """The log-mel as if the audio had passed a first-order filter (``first_order_gain``) before
    the features: a spectral tilt, as a microphone, a room or a darker or brighter voice gives.
    The gain's mean over the channels is removed (level is the gain augmentation's business) and
    the features' floor is applied again, 2 units below the new maximum."""
    gain = first_order_gain(centres, coef)
    shift = ((gain - gain.mean()) / LOG10_PER_UNIT).astype(mel.dtype)[:, None]
    out = mel + shift
    return np.maximum(out, out.max() - FLOOR_UNITS)


@functools.lru_cache(maxsize=8)
def band_gain(n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    """Per-channel change of the log-mel features (feature units) that ``augment.band_limit``
    (down to 8 kHz and back: nothing above 4 kHz) makes, measured once on seeded white noise:
    0 below about 3.7 kHz, the resampler's roll-off across the band edge, and at or below the
    features' floor above it (read only, one array per setting)."""
    from echo_core.audio import log_mel
    from echo_core.augment import band_limit

    noise = 0.1 * np.random.default_rng(0).standard_normal(4 * SAMPLE_RATE).astype(np.float32)
    full = log_mel(noise, SAMPLE_RATE, n_mels=n_mels, fmin=fmin, fmax=fmax)
    cut = log_mel(band_limit(noise, SAMPLE_RATE), SAMPLE_RATE, n_mels=n_mels, fmin=fmin, fmax=fmax)
    gain = np.median(cut - full, axis=1).astype(np.float32)
    gain[gain <= -FLOOR_UNITS / 2] = -2 * FLOOR_UNITS  # cut channels: surely under the floor
    gain.setflags(write=False)
    return gain


def band_limit_mel(mel: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """The log-mel as if the clip had been recorded in the telephone band, as the FSDD speakers
    were (``band_gain`` added, the floor applied again 2 units below the clip's maximum). Why
    on the features: the corpus band-limits only some augmented clips, so most synthetic clips
    keep the energy above 4 kHz (the /f/ of "five", the /s/ of "six") that a real 8 kHz
    recording lacks; this draws the telephone band afresh for any clip at each step."""
    out = mel + gain[:, None].astype(mel.dtype)
    return np.maximum(out, out.max() - FLOOR_UNITS)


FLOOR_TOLERANCE = 2e-3  # feature units: a bin this close to the floor is at it (float16 cache)


def power_above_floor(mel: np.ndarray) -> np.ndarray:
    """``audio.power_from_features`` with the bins at the features' floor read as holding no
    power (they held some at least 80 dB under the loudest bin): right once noise is added, as
    the noise is then what the features see there and they floor it again."""
    power = power_from_features(mel)
    power[np.asarray(mel) <= np.max(mel) - FLOOR_UNITS + FLOOR_TOLERANCE] = 0.0
    return power


@functools.lru_cache(maxsize=8)
def white_noise_power(n_mels: int, fmin: float, fmax: float | None) -> tuple[np.ndarray, float]:
    """Filterbank power frames (n_mels, T) of 8 s of seeded unit-variance white noise, and
    their mean over frames of the sum over channels. The filters are HTK triangles of peak 1,
    which sum to one between the first and last centres, so a clip's mean summed power over
    that second number is its mean power per sample, whatever its spectrum (read only)."""
    from echo_core.audio import log_mel

    noise = np.random.default_rng(1).standard_normal(8 * SAMPLE_RATE).astype(np.float32)
    power = power_from_features(log_mel(noise, SAMPLE_RATE, n_mels=n_mels, fmin=fmin,
                                        fmax=fmax))
    power.setflags(write=False)
    return power, float(power.sum(axis=0).mean())


def noise_floor_mel(mel: np.ndarray, level_db: float, noise: tuple[np.ndarray, float],
                    start: int) -> np.ndarray:
    """The log-mel as if white noise ``level_db`` below the clip's own power had been added to
    its audio: the filterbank powers add (signal and noise are independent), the noise's
    frames taken from ``white_noise_power`` from frame ``start`` on (wrapping), so the floor
    keeps the frame-to-frame texture of real noise. Why: a microphone always has a floor, the
    test clips have none, and a floor 50 dB down costs the held-out real speaker 3.6 WER
    points (``study_noise``)."""
    frames, per_sample = noise
    power = power_above_floor(mel)
    clip_power = float(power.sum(axis=0).mean()) / per_sample
    take = (int(start) + np.arange(mel.shape[1])) % frames.shape[1]
    power = power + clip_power * 10.0 ** (-float(level_db) / 10.0) * frames[:, take]
    return features_from_power(power).astype(mel.dtype, copy=False)


def spec_augment(mel: np.ndarray, rng: np.random.Generator, cfg) -> np.ndarray:
    """SpecAugment: frequency and time masks filled with the clip's mean (a copy).

    Before the masks, each only when switched on and then drawn in this order: with
    ``cfg.freq_warp`` > 0 a frequency warp (``warp_mel``, alpha uniform in 1 +- warp); with
    ``cfg.spectral_tilt`` > 0 a tilt (``tilt_mel``, coefficient uniform in +- tilt, on the
    centres of ``cfg``'s mel filters). A switch left off draws nothing, so runs without it keep
    their random stream.
    """
    mel = mel.copy()
    if cfg.freq_warp > 0:
        mel = warp_mel(mel, float(rng.uniform(1 - cfg.freq_warp, 1 + cfg.freq_warp)))
    if cfg.spectral_tilt > 0:
        centres = mel_centres(mel.shape[0], cfg.fmin, cfg.fmax or SAMPLE_RATE / 2)
        mel = tilt_mel(mel, float(rng.uniform(-cfg.spectral_tilt, cfg.spectral_tilt)), centres)
    fill = float(mel.mean())
    n_mels, n_frames = mel.shape
    for _ in range(cfg.freq_masks):
        w = int(rng.integers(0, cfg.freq_width + 1))
        f = int(rng.integers(0, max(1, n_mels - w)))
        mel[f:f + w] = fill
    for _ in range(cfg.time_masks):
        w = int(rng.integers(0, int(cfg.time_ratio * n_frames) + 1))
        t = int(rng.integers(0, max(1, n_frames - w)))
        mel[:, t:t + w] = fill
    return mel


def onset_frame(mel: np.ndarray) -> int:
    """The first frame whose mean over the channels reaches half way from the clip's quietest
    frame to its loudest: where the first loud sound (a vowel, mostly) begins."""
    energy = mel.mean(axis=0)
    low, high = float(energy.min()), float(energy.max())
    return int(np.argmax(energy >= low + 0.5 * (high - low)))


def onset_crop_start(mel: np.ndarray, rng: np.random.Generator, prob: float,
                     min_frames: int = 8) -> int:
    """How many leading frames to drop: 0, or with probability ``prob`` a number uniform in
    [0, onset_frame + 2], so the clip may begin inside its first consonant or at its first
    vowel, as a recording trimmed too tightly by a voice-activity detector does (some FSDD
    takes begin with "two", "five" or "three" already past their t, f or th). At least
    ``min_frames`` frames are kept. One draw always, so the stream does not depend on the clip.
    """
    u, pick = rng.random(), rng.random()
    if u >= prob:
        return 0
    top = min(onset_frame(mel) + 2, max(0, mel.shape[1] - min_frames))
    return int(pick * (top + 1)) if top > 0 else 0


def stretch_frames(n_frames: int, rate: float) -> np.ndarray:
    """Source positions (fractional frames) of a clip of ``n_frames`` stretched in time by
    ``rate`` (< 1: shorter, as spoken faster): round(n_frames * rate) points, at least 4, from
    the first frame to the last."""
    n = max(4, int(round(n_frames * rate)))
    return np.linspace(0.0, n_frames - 1, n)


def stretch_time(mel: np.ndarray, f0: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """The log-mel and its F0 contour as if spoken ``1 / rate`` times as fast (pitch and spectrum
    kept): the mel linearly interpolated between frames, the F0 taken from the nearest frame so
    an unvoiced frame (NaN) stays unvoiced and no pitch is invented between a voiced and an
    unvoiced one. Why: a real speaker's words are slower or faster than the corpus's voices, and
    a recogniser trained on a narrow range of tempos reads a word's length as a cue to which word
    it is (the unseen real speaker's slow "two" heard as "zero")."""
    return resample_time(mel, f0, stretch_frames(mel.shape[1], rate))


def warp_frames(n_frames: int, anchor: float, target: float) -> np.ndarray:
    """Source positions of SpecAugment's time warp: the frame at ``anchor`` (a fraction of the
    clip, strictly inside (0, 1)) moved to ``target`` (likewise), the two sides stretched
    linearly, so the clip keeps its length and its ends while the part before the anchor
    plays slower or faster than the part after it."""
    if not (0.0 < anchor < 1.0 and 0.0 < target < 1.0):
        raise EchoError(f"anchor and target must lie strictly inside (0, 1), got {anchor}, "
                         f"{target}")
    last = n_frames - 1.0
    return np.interp(np.arange(n_frames, dtype=np.float64), [0.0, target * last, last],
                     [0.0, anchor * last, last])


def warp_time(mel: np.ndarray, f0: np.ndarray, anchor: float,
              target: float) -> tuple[np.ndarray, np.ndarray]:
    """The log-mel and its F0 contour time-warped (``warp_frames``), resampled as
    ``stretch_time`` does. Why: a uniform stretch keeps the proportions inside a word (how long
    the burst is against the vowel); a speaker's own timing changes those too, and a model that
    reads them as a cue to the word mishears him."""
    return resample_time(mel, f0, warp_frames(mel.shape[1], anchor, target))


def resample_time(mel: np.ndarray, f0: np.ndarray,
                  src: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The log-mel linearly interpolated at the fractional frames ``src`` and the F0 contour
    taken from the nearest frame (an unvoiced NaN stays unvoiced; no pitch is invented)."""
    return linear_at(mel, src, axis=1), np.asarray(f0)[np.rint(src).astype(np.intp)]
