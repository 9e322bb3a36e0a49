"""F0 (pitch) tracking with Praat (parselmouth), aligned by time onto the mel frames.

Praat's frames are centred in the sound, so its first frame is *not* at t = 0; a track keeps
Praat's real frame times and ``align_to_frames`` maps it by time onto mel frame centres i * 8 ms.
Unvoiced frames are NaN in every array a user sees; ``f0_for_model`` is the one place where NaN
becomes the 0 the reference model expects.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .audio import FRAME_SECONDS
from .errors import AudioError, PitchSettingsError

METHODS = ("ac", "cc", "shs")  # Praat's autocorrelation, cross-correlation, subharmonic summation
MAX_TIME_STEP = 1.0  # s; a coarser step is not a pitch contour any more

# Phrases in Praat's errors for a sound shorter than its analysis window (a normal case for us).
_TOO_SHORT_PHRASES = (
    "shorter than window length",
    "zero pitch frames",
    "must not be less than",
    "would have no samples",
)


@dataclass
class PraatSettings:
    """Praat's "To Pitch" parameters, named and defaulted as in Praat (units in the comments).

    ``time_step`` defaults to the mel hop (8 ms) so F0 frames and mel frames share a grid; Praat's
    own default (0.75 / floor = 10 ms) does not. The cost/threshold fields apply to "ac" and
    "cc"; the ``shs_*`` fields only to "shs" (which uses pitch_floor, pitch_ceiling,
    time_step and max_candidates too).
    """

    method: str = "ac"
    time_step: float = FRAME_SECONDS  # s between frames
    pitch_floor: float = 75.0  # Hz; also sets the window (3 periods: 40 ms at 75 Hz)
    pitch_ceiling: float = 600.0  # Hz; candidates above are ignored
    voicing_threshold: float = 0.45  # periodicity (0-1) a frame needs to count as voiced
    silence_threshold: float = 0.03  # fraction of global peak below which a frame is silent
    octave_cost: float = 0.01  # per octave: favours higher candidates
    octave_jump_cost: float = 0.35  # penalises octave jumps between frames
    voiced_unvoiced_cost: float = 0.14  # penalises voiced/unvoiced transitions
    max_candidates: int = 15
    very_accurate: bool = False  # Gaussian window of 6 periods instead of Hanning of 3
    shs_max_frequency_component: float = 1250.0  # Hz ("maximum frequency component")
    shs_max_subharmonics: int = 15
    shs_compression_factor: float = 0.84
    shs_points_per_octave: int = 48

    def validate(self) -> "PraatSettings":
        """Check every field; raise PitchSettingsError naming the first bad one."""

        def bad(field, accepted):
            value = getattr(self, field)
            raise PitchSettingsError(f"{field}={value!r} is not valid; accepted: {accepted}")

        def number(field):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                bad(field, "a number")
            if not math.isfinite(float(value)):
                bad(field, "a finite number")
            return float(value)

        def integer(field, low, high):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                bad(field, f"an integer from {low} to {high}")
            if not low <= value <= high:
                bad(field, f"an integer from {low} to {high}")

        if self.method not in METHODS:
            bad("method", " / ".join(repr(m) for m in METHODS))
        if not 0 < number("time_step") <= MAX_TIME_STEP:
            bad("time_step", f"seconds, 0 < time_step <= {MAX_TIME_STEP:g}")
        if not number("pitch_floor") > 0:
            bad("pitch_floor", "a positive frequency in Hz (typically 50-100)")
        if not number("pitch_ceiling") > self.pitch_floor:
            bad("pitch_ceiling", f"Hz, above pitch_floor ({self.pitch_floor:g} Hz)")
        for field in ("voicing_threshold", "silence_threshold"):
            if not 0 <= number(field) <= 1:
                bad(field, "a fraction from 0 to 1")
        for field in ("octave_cost", "octave_jump_cost", "voiced_unvoiced_cost"):
            if not 0 <= number(field) <= 10:
                bad(field, "a cost from 0 to 10 (Praat's defaults are 0.01 / 0.35 / 0.14)")
        integer("max_candidates", 2, 100)
        if not isinstance(self.very_accurate, (bool, np.bool_)):
            bad("very_accurate", "True or False")
        if not number("shs_max_frequency_component") >= self.pitch_ceiling:
            bad("shs_max_frequency_component", f"Hz, >= pitch_ceiling ({self.pitch_ceiling:g})")
        integer("shs_max_subharmonics", 1, 100)
        if not 0 < number("shs_compression_factor") <= 1:
            bad("shs_compression_factor", "a factor with 0 < factor <= 1")
        integer("shs_points_per_octave", 1, 1000)
        return self

    @property
    def window_seconds(self) -> float:
        """Length of the "ac" analysis window: Praat needs at least this much sound."""
        return (6.0 if self.very_accurate else 3.0) / self.pitch_floor


@dataclass
class F0Track:
    """F0 in Hz at Praat's frame centres (s). Unvoiced frames are NaN: 0 and negatives given to
    the constructor are turned into NaN, so the invariant holds for tracks built by hand too."""

    times: np.ndarray
    hz: np.ndarray

    def __post_init__(self):
        self.times = np.asarray(self.times, dtype=np.float64).reshape(-1)
        hz = np.asarray(self.hz, dtype=np.float64).reshape(-1).copy()
        if self.times.shape != hz.shape:
            raise PitchSettingsError(
                f"F0Track needs one time per F0 value, got {self.times.size} times and "
                f"{hz.size} values"
            )
        with np.errstate(invalid="ignore"):
            hz[~(np.isfinite(hz) & (hz > 0))] = np.nan
        self.hz = hz

    @property
    def voiced(self) -> np.ndarray:
        """Boolean mask of voiced frames."""
        return np.isfinite(self.hz)

    def __len__(self) -> int:
        return self.hz.size


def _settings_with(settings, overrides) -> PraatSettings:
    base = PraatSettings() if settings is None else settings
    if not isinstance(base, PraatSettings):
        raise PitchSettingsError(f"settings must be a PraatSettings, got {type(base).__name__}")
    names = {f.name for f in dataclasses.fields(PraatSettings)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise PitchSettingsError(
            f"unknown pitch setting(s) {unknown}; accepted: {', '.join(sorted(names))}"
        )
    return dataclasses.replace(base, **overrides).validate()


def extract_f0(samples, sr, settings: PraatSettings | None = None, **overrides) -> F0Track:
    """Praat pitch track of a mono signal; keyword overrides replace fields of ``settings``.

    Silence gives an all-NaN track; a clip shorter than Praat's analysis window gives an empty
    track (Praat refuses to analyse it; that is a normal case, not an error).
    """
    import parselmouth

    s = _settings_with(settings, overrides)
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise AudioError(f"samples must be mono 1-D, got shape {x.shape}; mix channels first")
    if isinstance(sr, bool) or not np.isscalar(sr) or not float(sr) > 0:
        raise AudioError(f"sr must be a positive sample rate in Hz, got {sr!r}")
    if not np.isfinite(x).all():
        raise AudioError("samples contain NaN or Inf; accepted: finite samples")
    if s.pitch_ceiling > sr / 2:
        raise PitchSettingsError(
            f"pitch_ceiling={s.pitch_ceiling:g} Hz is above half the sample rate ({sr / 2:g} Hz); "
            "accepted: a ceiling below the Nyquist frequency"
        )
    empty = F0Track(np.zeros(0), np.zeros(0))
    if x.size < 2:
        return empty
    sound = parselmouth.Sound(x, sampling_frequency=float(sr))
    try:
        if s.method == "shs":
            pitch = sound.to_pitch_shs(
                time_step=s.time_step, minimum_pitch=s.pitch_floor,
                max_number_of_candidates=s.max_candidates,
                maximum_frequency_component=s.shs_max_frequency_component,
                max_number_of_subharmonics=s.shs_max_subharmonics,
                compression_factor=s.shs_compression_factor, ceiling=s.pitch_ceiling,
                number_of_points_per_octave=s.shs_points_per_octave,
            )
        else:
            method = sound.to_pitch_ac if s.method == "ac" else sound.to_pitch_cc
            pitch = method(
                time_step=s.time_step, pitch_floor=s.pitch_floor,
                max_number_of_candidates=s.max_candidates, very_accurate=bool(s.very_accurate),
                silence_threshold=s.silence_threshold, voicing_threshold=s.voicing_threshold,
                octave_cost=s.octave_cost, octave_jump_cost=s.octave_jump_cost,
                voiced_unvoiced_cost=s.voiced_unvoiced_cost, pitch_ceiling=s.pitch_ceiling,
            )
    except parselmouth.PraatError as e:
        message = str(e)
        if any(p in message for p in _TOO_SHORT_PHRASES) or x.size / sr < s.window_seconds:
            return empty
        raise PitchSettingsError(f"Praat could not track pitch with these settings: {message}") \
            from e
    return F0Track(times=np.asarray(pitch.xs()), hz=pitch.selected_array["frequency"])


def _hz_of(track_or_hz) -> np.ndarray:
    if isinstance(track_or_hz, F0Track):
        return track_or_hz.hz
    hz = np.asarray(track_or_hz, dtype=np.float64).reshape(-1).copy()
    with np.errstate(invalid="ignore"):
        hz[~(np.isfinite(hz) & (hz > 0))] = np.nan
    return hz


def f0_statistics(track) -> dict:
    """NaN-safe summary over voiced frames (Hz; std is the population std, ddof 0).

    Accepts an F0Track or an array of Hz (NaN or <= 0 unvoiced). With no voiced frame every Hz
    statistic is NaN and voiced_fraction is 0.
    """
    hz = _hz_of(track)
    voiced = hz[np.isfinite(hz)]
    n, n_voiced = hz.size, voiced.size
    stats = dict.fromkeys(("median", "mean", "min", "max", "std"), math.nan)
    if n_voiced:
        stats = {
            "median": float(np.median(voiced)), "mean": float(voiced.mean()),
            "min": float(voiced.min()), "max": float(voiced.max()), "std": float(voiced.std()),
        }
    stats.update(voiced_fraction=n_voiced / n if n else 0.0, n_frames=n, n_voiced=n_voiced)
    return stats


def align_to_frames(track: F0Track, n_frames, hop_seconds=FRAME_SECONDS) -> np.ndarray:
    """F0 at mel frame centres i * hop (i < n_frames), by time; NaN where unvoiced.

    A mel frame is voiced only if its nearest track frame is voiced and lies within half a track
    step of it. Its value is then interpolated linearly (in Hz) between the two track frames
    around it when both are voiced, else it takes the nearest voiced value. So voiced runs keep
    their shape and gaps stay gaps instead of being bridged.
    """
    if not isinstance(track, F0Track):
        raise PitchSettingsError(f"align_to_frames needs an F0Track, got {type(track).__name__}")
    if isinstance(n_frames, bool) or int(n_frames) != n_frames or n_frames < 0:
        raise PitchSettingsError(f"n_frames must be a non-negative integer, got {n_frames!r}")
    if not float(hop_seconds) > 0:
        raise PitchSettingsError(f"hop_seconds must be positive, got {hop_seconds!r}")
    targets = np.arange(int(n_frames)) * float(hop_seconds)
    out = np.full(targets.size, np.nan)
    times, hz = track.times, track.hz
    if times.size == 0 or targets.size == 0:
        return out
    order = np.argsort(times, kind="stable")
    times, hz = times[order], hz[order]
    steps = np.diff(times)
    step = float(np.median(steps)) if steps.size else float(hop_seconds)

    right = np.clip(np.searchsorted(times, targets, side="left"), 0, times.size - 1)
    left = np.clip(right - 1, 0, times.size - 1)
    nearest = np.where(np.abs(targets - times[left]) <= np.abs(times[right] - targets), left, right)
    near = np.abs(targets - times[nearest]) <= 0.5 * step + 1e-9
    voiced = near & np.isfinite(hz[nearest])
    out[voiced] = hz[nearest][voiced]

    inside = (times[left] <= targets) & (targets <= times[right]) & (left != right)
    both = voiced & inside & np.isfinite(hz[left]) & np.isfinite(hz[right])
    span = times[right] - times[left]
    weight = np.where(both, (targets - times[left]) / np.where(span > 0, span, 1.0), 0.0)
    out[both] = (hz[left] + weight * (hz[right] - hz[left]))[both]
    return out


def f0_for_model(hz) -> np.ndarray:
    """float32 F0 with unvoiced (NaN, <= 0, Inf) as 0: the reference model's convention.

    This is the only function that turns NaN into 0; accepts an F0Track or an array.
    """
    out = np.nan_to_num(_hz_of(hz), nan=0.0)
    return out.astype(np.float32)


def f0_table(track: F0Track):
    """The track as a pandas table (time_s, f0_hz with NaN unvoiced): what users export."""
    import pandas as pd

    if not isinstance(track, F0Track):
        raise PitchSettingsError(f"an F0 table needs an F0Track, got {type(track).__name__}")
    return pd.DataFrame({"time_s": np.asarray(track.times, dtype=np.float64),
                         "f0_hz": np.asarray(track.hz, dtype=np.float64)})


def f0_to_csv(track: F0Track) -> str:
    """:func:`f0_table` as CSV text (header ``time_s,f0_hz``; unvoiced frames have an empty
    f0 field; 6 decimals)."""
    return f0_table(track).to_csv(index=False, lineterminator="\n", float_format="%.6f")
