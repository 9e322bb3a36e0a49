"""Per-clip analysis without UI: clips, their cached pitch and mel features, and the rotary
and pitch-bias maps at display resolution, as arrays and DataFrames (``workbench.figures`` draws
them). A session keeps only a clip's key; clips and features live in bounded caches keyed by
content, so sessions with the same clip share work.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from echo_core import audio, pitch, rotary
from echo_core.errors import AudioError, EchoError, PitchSettingsError, RotaryError
from workbench.cache import LRU, content_key

REPO = Path(__file__).resolve().parent.parent
CLIPS_DIR = REPO / "assets" / "clips"
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
SYNTHETIC_NAME = "synthetic glide (known F0)"
MAX_DISPLAY = 512  # largest side of any map sent to the browser
MEL_DISPLAY_FRAMES = 1600  # time columns of the spectrogram image
THETA_RANGE = (1e2, 1e6)  # what the log slider offers

CLIPS = LRU(16, 400 * 2**20)  # clip key -> Clip (a 10-minute clip is 38 MB)
FEATURES = LRU(64, 400 * 2**20)  # (clip content, what, settings) -> arrays


# ============================================================================= clips

@dataclass(frozen=True)
class Clip:
    """A mono 16 kHz clip and its identity.

    ``content`` hashes the samples: derived features are cached by it, so sessions with the same
    sound share work. ``key`` is what a session holds: content *and* name, so a second upload of
    the same sound under another name never renames the first session's clip."""

    key: str
    name: str
    samples: np.ndarray
    sr: int
    content: str

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sr

    @property
    def n_frames(self) -> int:
        """Mel frames of the reference pipeline (centred STFT): 1 + len // hop."""
        return 1 + len(self.samples) // audio.HOP_LENGTH


def _register(samples: np.ndarray, sr: int, name: str) -> Clip:
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    content = content_key(samples, int(sr))
    key = f"{content}-{content_key(name)[:12]}"
    clip = CLIPS.get(key)
    if clip is None:
        clip = CLIPS.put(key, Clip(key=key, name=name, samples=samples, sr=int(sr),
                                   content=content))
    return clip


def clip_from_path(path: str | Path, name: str | None = None) -> Clip:
    """Load an audio file (resampled to 16 kHz mono) and register it; AudioError if unusable."""
    a = audio.load_audio(str(path))
    return _register(a.samples, a.sr, name or Path(path).name)


def clip_from_array(sr: int, samples: np.ndarray, name: str = "recording") -> Clip:
    """Register samples from the browser (any rate, int or float, mono or stereo)."""
    a = audio.audio_from_array(np.asarray(samples), int(sr))
    return _register(a.samples, a.sr, name)


def get_clip(key: str | None) -> Clip:
    """The clip behind a session's key; a clear error when none was loaded or it was evicted."""
    if not key:
        raise AudioError("no clip loaded (no clip key given): load one with clip_from_path or "
                         "clip_from_array first")
    clip = CLIPS.get(key)
    if clip is None:
        raise AudioError(f"the clip is no longer in memory (the server keeps the {CLIPS.maxsize} "
                         "most recent): load it again")
    return clip


def example_clips() -> dict[str, str]:
    """Bundled example clips (assets/clips), name -> path, plus the synthetic known-F0 clip.

    Spoken-digit clips (what the shipped checkpoints were trained on) come first: the first
    entry is the clip the app opens with. The synthetic clip has no file (path "").
    """
    found = {}
    if CLIPS_DIR.is_dir():
        paths = [p for p in CLIPS_DIR.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES]
        for p in sorted(paths, key=lambda p: (not p.stem.startswith("digits"), p.stem)):
            found[p.stem] = str(p)
    found[SYNTHETIC_NAME] = ""
    return found


def synthetic_samples(seconds: float = 3.0, sr: int = audio.SAMPLE_RATE,
                      f0_start: float = 110.0, f0_end: float = 220.0,
                      gap: tuple[float, float] = (0.45, 0.55)) -> tuple[np.ndarray, np.ndarray]:
    """A vowel-like harmonic tone gliding f0_start -> f0_end with a silent (unvoiced) gap.

    Returns (samples, true F0 per sample, NaN in the gap): a clip whose pitch is known, for the
    examples and for tests.
    """
    t = np.arange(int(seconds * sr)) / sr
    f0 = f0_start * (f0_end / f0_start) ** (t / seconds)  # exponential glide
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = np.zeros_like(t)
    for h in range(1, 30):  # harmonics shaped by three formants
        fh = h * f0
        gain = sum(np.exp(-((fh - f) / 150.0) ** 2) for f in (700.0, 1200.0, 2600.0)) + 0.05 / h
        x += np.where(fh < sr / 2 - 500, gain, 0.0) * np.sin(h * phase)
    silent = (t >= gap[0] * seconds) & (t < gap[1] * seconds)
    x[silent] = 0.0
    x = 0.5 * x / np.max(np.abs(x))
    return x.astype(np.float32), np.where(silent, np.nan, f0)


def synthetic_clip(seconds: float = 3.0) -> Clip:
    samples, _ = synthetic_samples(seconds)
    return _register(samples, audio.SAMPLE_RATE, SYNTHETIC_NAME)


def load_example(name: str) -> Clip:
    """An example clip by its name in :func:`example_clips`."""
    examples = example_clips()
    if name not in examples:
        raise AudioError(f"unknown example {name!r}; available: {', '.join(examples)}")
    if name == SYNTHETIC_NAME:
        return synthetic_clip()
    return clip_from_path(examples[name], name)


def warm_up() -> None:
    """Run the feature pipeline once on a short tone (the first librosa / Praat calls are slow)
    so the first visitor does not wait for it. app.py calls it in a background thread."""
    samples, _ = synthetic_samples(0.5)
    audio.log_mel(samples)
    pitch.extract_f0(samples, audio.SAMPLE_RATE)


# ============================================================================= pitch & features

PRAAT_FIELDS = tuple(f.name for f in dataclasses.fields(pitch.PraatSettings))


def praat_settings(**fields) -> pitch.PraatSettings:
    """Validated Praat settings from UI fields (the time step stays at the 8 ms mel hop)."""
    unknown = sorted(set(fields) - set(PRAAT_FIELDS))
    if unknown:
        raise PitchSettingsError(f"unknown Praat settings {unknown}; accepted: "
                                 f"{', '.join(PRAAT_FIELDS)}")
    return pitch.PraatSettings(**fields).validate()


def settings_key(settings: pitch.PraatSettings | None) -> tuple:
    """Cache key of Praat settings (None: the defaults)."""
    return dataclasses.astuple(settings or pitch.PraatSettings())


def f0_track(clip: Clip, settings: pitch.PraatSettings | None = None) -> pitch.F0Track:
    """Praat F0 of a clip (cached per clip and settings)."""
    key = (clip.content, "f0", settings_key(settings))
    return FEATURES.get_or_compute(key, lambda: pitch.extract_f0(clip.samples, clip.sr, settings))


def frame_f0(clip: Clip, settings: pitch.PraatSettings | None = None) -> np.ndarray:
    """F0 on the mel frame grid (n_frames,), NaN unvoiced, aligned by time."""
    key = (clip.content, "frame_f0", settings_key(settings))
    return FEATURES.get_or_compute(
        key, lambda: pitch.align_to_frames(f0_track(clip, settings), clip.n_frames))


def mel(clip: Clip, n_mels: int = audio.N_MELS, fmin: float = 0.0,
        fmax: float | None = None) -> np.ndarray:
    """Log-mel features (n_mels, T) of the reference pipeline, cached."""
    key = (clip.content, "mel", n_mels, fmin, fmax)
    return FEATURES.get_or_compute(
        key, lambda: audio.log_mel(clip.samples, clip.sr, n_mels=n_mels, fmin=fmin, fmax=fmax))


def mel_band_hz(n_mels: int = audio.N_MELS, fmin: float = 0.0, fmax: float | None = None,
                sr: int = audio.SAMPLE_RATE) -> np.ndarray:
    """Centre frequency (Hz) of each HTK mel band, for labelling the spectrogram axis."""
    fmax = sr / 2 if fmax is None else fmax
    mel_lo, mel_hi = (2595.0 * np.log10(1 + f / 700.0) for f in (fmin, fmax))
    edges = np.linspace(mel_lo, mel_hi, n_mels + 2)
    return 700.0 * (10 ** (edges[1:-1] / 2595.0) - 1)


def mel_display(clip: Clip, max_frames: int = MEL_DISPLAY_FRAMES
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mel image (n_mels, <= max_frames), frame times (s), band centres (Hz)) for the pitch view.

    Long clips are reduced by max-pooling groups of frames so short bright events survive.
    """
    m = mel(clip)
    times = audio.frame_times(m.shape[1])
    if m.shape[1] > max_frames:
        group = math.ceil(m.shape[1] / max_frames)
        n = m.shape[1] // group * group
        m = m[:, :n].reshape(m.shape[0], -1, group).max(axis=2)
        times = times[:n].reshape(-1, group).mean(axis=1)
    return m.astype(np.float32), times, mel_band_hz(m.shape[0])


class TimeRangeError(EchoError):
    """A time selection that is not a range inside the clip."""


def check_time_range(start, end, duration: float) -> tuple[float, float]:
    """(start, end) in seconds as floats, or TimeRangeError naming what is accepted: finite,
    start < end, and overlapping [0, duration] (the ends are clipped to it)."""
    try:
        start, end = float(start), float(end)
    except (TypeError, ValueError) as e:
        raise TimeRangeError(f"a time range needs two numbers (seconds), got {start!r} and "
                             f"{end!r}") from e
    if not (math.isfinite(start) and math.isfinite(end)) or start >= end:
        raise TimeRangeError(f"a time range needs from < to (seconds), got {start:g} to {end:g}")
    if end <= 0 or start >= duration:
        raise TimeRangeError(f"{start:g}–{end:g} s lies outside the clip (0–{duration:.2f} s)")
    return max(start, 0.0), min(end, float(duration))


def track_in_range(track: pitch.F0Track, start: float, end: float) -> pitch.F0Track:
    """The Praat frames whose centre times lie in [start, end] s: the sub-track a Praat
    selection's statistics are computed over (frames are selected by time, not counted)."""
    keep = (track.times >= start) & (track.times <= end)
    return pitch.F0Track(track.times[keep], track.hz[keep])


def f0_statistics_table(track, time_range: tuple[float, float] | None = None) -> pd.DataFrame:
    """The F0 statistics as a (statistic, value, unit) table, formatted for reading; with
    ``time_range`` (start, end) s, of the frames in that range only (:func:`track_in_range`)."""
    if time_range is not None:
        track = track_in_range(track, *time_range)
    units = dict(median="Hz", mean="Hz", min="Hz", max="Hz", std="Hz", n_frames="frames",
                 n_voiced="frames")
    rows = []
    for name, value in pitch.f0_statistics(track).items():
        v = float(value)
        if not np.isfinite(v):
            text = "—"
        elif name.startswith("n_"):
            text = f"{int(v)}"
        else:
            text = f"{v:.3f}" if name == "voiced_fraction" else f"{v:.1f}"
        rows.append({"statistic": name.replace("_", " "), "value": text,
                     "unit": units.get(name, "")})
    return pd.DataFrame(rows)


f0_table = pitch.f0_table  # the F0 track as a table (time_s, f0_hz, NaN unvoiced)
f0_csv = pitch.f0_to_csv  # the same table as CSV text


# ============================================================================= rotary

def theta_from_slider(log10_theta: float) -> float:
    """Theta from the log slider, checked against the range the UI offers."""
    theta = 10.0 ** float(log10_theta)
    if not THETA_RANGE[0] * 0.999 <= theta <= THETA_RANGE[1] * 1.001:
        raise RotaryError(f"theta must be between {THETA_RANGE[0]:g} and {THETA_RANGE[1]:g}, "
                          f"got {theta:g}")
    return theta


def clip_theta(f0_frames: np.ndarray, theta: float) -> float:
    """The clip's pitch-modulated theta (mean F0 of voiced frames, see rotary.theta_from_f0)."""
    return rotary.theta_from_f0(f0_frames, theta)


def similarity_display(n_frames: int, head_dim: int, theta: float,
                       f0_frames: np.ndarray | None = None, mode: str = "static",
                       max_size: int = MAX_DISPLAY, radius: np.ndarray | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(positions (R,), similarity (R, R) float32) of one rotary setting at display resolution.

    mode: "static" (theta as given), "mean_f0" (the reference: theta modulated by the clip's
    mean F0), "per_frame" (angle accumulated frame by frame from a per-frame theta).
    ``radius`` (d/2,) weights the channel pairs (the variable-radius variant).
    """
    if mode not in ("static", "mean_f0", "per_frame"):
        raise RotaryError(f"unknown similarity mode {mode!r}; accepted: static, mean_f0, "
                          "per_frame")
    if mode != "static" and f0_frames is None:
        raise RotaryError(f"mode {mode!r} needs the clip's F0")
    positions, sim = rotary.display_similarity(
        n_frames, head_dim, theta, f0=None if mode == "static" else f0_frames,
        max_size=max_size, per_frame=mode == "per_frame", radius=radius)
    return positions, np.asarray(sim, dtype=np.float32)


def pair_radius(head_dim: int, tilt: float) -> np.ndarray:
    """Illustrative per-pair radius r_k = exp(tilt * (k / (d/2) - 1/2)), k = 0 the fastest pair.

    tilt > 0 weights the slow pairs (long range, wide bands), tilt < 0 the fast ones (narrow
    bands), 0 is the plain rotary. A model with ``variable_radius`` learns such a profile.
    """
    half = rotary.check_head_dim(head_dim) // 2
    if not math.isfinite(tilt):
        raise RotaryError(f"radius tilt must be a finite number, got {tilt!r}")
    return np.exp(float(tilt) * (np.arange(half) / half - 0.5))


def f0_position_radius(f0_frames: np.ndarray) -> np.ndarray:
    """A radius per position from pitch: F0 / max voiced F0, 0 where unvoiced (the model's F0 is
    0 there). It cancels out of a cosine similarity, so it is shown on the dot product."""
    f0 = np.asarray(f0_frames, dtype=np.float64)
    voiced = rotary.voiced_mask(f0)
    rho = np.zeros(f0.size)
    if voiced.any():
        rho[voiced] = f0[voiced] / f0[voiced].max()
    return rho


def dot_product_display(n_frames: int, head_dim: int, theta: float, f0_frames: np.ndarray,
                        max_size: int = MAX_DISPLAY) -> tuple[np.ndarray, np.ndarray]:
    """Unnormalised rotary dot product rho_i rho_j s(i - j) with the F0 radius, sampled.

    Equals rotary.position_dot_product(..., radius_per_position=rho) at the sampled positions,
    without the full n x n matrix.
    """
    positions, sim = similarity_display(n_frames, head_dim, theta, f0_frames, "mean_f0",
                                        max_size)
    rho = f0_position_radius(f0_frames)[positions]
    return positions, (sim * rho[:, None] * rho[None, :]).astype(np.float32)


def sweep_maps(thetas: Sequence[float], pitches: Sequence[float | None], n_positions: int = 96,
               head_dim: int = 64) -> np.ndarray:
    """(len(thetas), len(pitches), n, n) similarity maps for a theta x mean-F0 grid (cached).

    A pitch of None is the static rotary (no F0 modulation).
    """
    key = ("sweep", tuple(float(t) for t in thetas), tuple(pitches), n_positions, head_dim)

    def compute():
        out = np.empty((len(thetas), len(pitches), n_positions, n_positions), dtype=np.float32)
        for i, theta in enumerate(thetas):
            for j, hz in enumerate(pitches):
                out[i, j] = rotary.position_similarity(n_positions, head_dim, theta=theta,
                                                       f0=None if hz is None else float(hz))
        return out

    return FEATURES.get_or_compute(key, compute)


def distance_curves(settings: Sequence[tuple[str, float, Any]], max_lag: int, head_dim: int
                    ) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(label, lags, similarity) for each (label, theta, F0 contour / Hz / None) setting."""
    curves = []
    for label, theta, f0 in settings:
        lags, sim = rotary.similarity_vs_distance(max_lag, head_dim, theta=theta, f0=f0)
        curves.append((label, np.asarray(lags), np.asarray(sim, dtype=np.float64)))
    return curves


BAND_LEVEL = 0.5  # a band's half-width: the lag at which similarity first drops below this
BAND_MAX_LAG = 20_000  # lags searched (2.7 min of 8 ms frames); wider bands are "beyond"


def band_width(head_dim: int, theta: float, f0=None, level: float = BAND_LEVEL,
               max_lag: int = BAND_MAX_LAG) -> float:
    """The first lag (in positions) at which the rotary similarity s(l) drops below ``level``:
    how far a position "sees" before its neighbours decorrelate. NaN when it never does
    within ``max_lag``. ``f0`` modulates theta as in ``rotary.similarity_at_lags``."""
    start, stop = 0, min(64, max_lag)
    while start <= max_lag:  # search in doubling windows from 64 lags: bands are usually short
        lags = np.arange(start, stop + 1)
        below = np.flatnonzero(rotary.similarity_at_lags(lags, head_dim, theta, f0) < level)
        if below.size:
            return float(lags[below[0]])
        start, stop = stop + 1, min(2 * stop + 1, max_lag)
        if start > stop:
            break
    return float("nan")


def band_widths(thetas: Sequence[float], pitches: Sequence[tuple[str, Any]], head_dim: int
                ) -> dict[str, np.ndarray]:
    """{label: band width per theta} for (label, F0 contour / Hz / None) settings (cached)."""
    key = ("bands", tuple(float(t) for t in thetas), head_dim,
           tuple((label, content_key(np.asarray(f0, dtype=np.float64)) if f0 is not None
                  else None) for label, f0 in pitches))

    def compute():  # a contour by its voiced mean F0 (one Hz value: theta_eff alike), taken
        # once, not once per theta (a third of the cost)
        means = [(label, None if f0 is None else rotary.mean_f0(f0)) for label, f0 in pitches]
        return {label: np.array([band_width(head_dim, t, hz) for t in thetas])
                for label, hz in means}

    return FEATURES.get_or_compute(key, compute)


# ============================================================================= pitch bias

def bias_display(f0_frames: np.ndarray, scale: float, positions: np.ndarray) -> np.ndarray:
    """The reference pitch bias at the sampled ``positions``, z-scored over *all* voiced frames.

    |z_i - z_j| = |f_i - f_j| / (std + eps), so calling rotary.pitch_bias on the sampled contour
    with the scale multiplied by (std_sampled + eps) / (std_all + eps) gives exactly the full
    (n, n) map sampled, without building it.
    """
    if not math.isfinite(scale) or scale < 0:
        raise RotaryError(f"bias scale must be a finite number >= 0, got {scale!r}")
    f0_frames = np.asarray(f0_frames, dtype=np.float64)
    positions = np.asarray(positions)
    if len(positions) == len(f0_frames):
        return np.asarray(rotary.pitch_bias(f0_frames, scale), dtype=np.float32)
    sub = f0_frames[positions]
    voiced_all, voiced_sub = rotary.voiced_mask(f0_frames), rotary.voiced_mask(sub)
    if voiced_all.sum() < 2 or voiced_sub.sum() < 2:
        return np.asarray(rotary.pitch_bias(sub, scale), dtype=np.float32)
    eps = rotary.PITCH_BIAS_EPS
    std_all = float(np.std(f0_frames[voiced_all], ddof=1)) + eps
    std_sub = float(np.std(sub[voiced_sub], ddof=1)) + eps
    return np.asarray(rotary.pitch_bias(sub, scale * std_sub / std_all), dtype=np.float32)


def combined_prior(similarity: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """What a head sees before any learning: rotary similarity plus the additive pitch bias."""
    if similarity.shape != bias.shape:
        raise RotaryError(f"similarity {similarity.shape} and bias {bias.shape} differ in shape")
    return np.asarray(similarity, dtype=np.float32) + np.asarray(bias, dtype=np.float32)
