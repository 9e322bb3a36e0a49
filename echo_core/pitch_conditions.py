"""Pitch conditions: small pure transforms of an F0 contour (or of the audio) that ask whether a
checkpoint uses the pitch it is given.

A condition is named by a short string, ``kind`` or ``kind:value`` (the form the app, the HTTP
API and ``batch --conditions`` take):

=================  =====================================================================
``true``           the clip's own Praat F0 (the reference every other condition is compared to)
``constant:HZ``    every voiced frame at HZ (voicing kept): only the level remains
``scaled:K``       voiced values times K (voicing kept)
``semitones:N``    voiced values shifted by N semitones, i.e. times 2^(N/12)
``shuffled:SEED``  voiced values permuted among the voiced frames (seeded): level and
                   distribution kept, the contour's order and its link to the speech lost
``reversed``       voiced values in reverse order over the voiced frames
``rolled:FRAC``    the whole contour (voicing included) rolled in time by FRAC of the clip
``other:NAME``     another clip's contour, stretched in time to this clip's frames
``unvoiced``       every frame unvoiced (the model then sees 0 Hz everywhere)
``audio:N``        the audio pitch-shifted by N semitones (librosa), F0 re-extracted from it
``audio_keep:N``   the audio pitch-shifted by N semitones, with the *original* F0
=================  =====================================================================

Contours are Hz per frame with NaN unvoiced (what users see); transforms never turn NaN into 0
(the model's door does that, once). "Voicing kept" conditions change values only where the
true contour is voiced, so the set of frames the model and the head scores treat as voiced is
the same as under ``true``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import rotary
from .errors import EchoError

KINDS = ("true", "constant", "scaled", "semitones", "shuffled", "reversed", "rolled", "other",
         "unvoiced", "audio", "audio_keep")
DEFAULTS = {"constant": "100", "scaled": "1.5", "semitones": "4", "shuffled": "0",
            "rolled": "0.5", "audio": "4", "audio_keep": "4"}
AUDIO_KINDS = ("audio", "audio_keep")
SEMITONE_LIMIT = 24.0  # a pitch shift beyond two octaves is not speech any more


class ConditionError(EchoError):
    """A pitch condition that cannot be parsed or applied (names what is accepted)."""


@dataclass(frozen=True)
class Condition:
    """A parsed condition: ``kind`` and its value (a number, or a clip name for ``other``)."""

    kind: str
    value: float | str | None = None

    @property
    def name(self) -> str:
        if self.value is None:
            return self.kind
        value = f"{self.value:g}" if isinstance(self.value, float) else self.value
        return f"{self.kind}:{value}"

    @property
    def changes_audio(self) -> bool:
        return self.kind in AUDIO_KINDS


ACCEPTED = ("true, constant:HZ, scaled:K, semitones:N, shuffled:SEED, reversed, rolled:FRAC, "
            "other:CLIP, unvoiced, audio:N (pitch-shifted audio, new F0), audio_keep:N "
            "(pitch-shifted audio, original F0)")


def parse_condition(text: str) -> Condition:
    """``"constant:100"`` -> Condition("constant", 100.0); ConditionError naming the accepted
    forms for anything else. A kind that takes a value gets its default when none is given."""
    if not isinstance(text, str) or not text.strip():
        raise ConditionError(f"empty pitch condition; accepted: {ACCEPTED}")
    kind, _, raw = text.strip().partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise ConditionError(f"unknown pitch condition {text!r}; accepted: {ACCEPTED}")
    if kind in ("true", "reversed", "unvoiced"):
        if raw.strip():
            raise ConditionError(f"{kind!r} takes no value, got {text!r}")
        return Condition(kind)
    if kind == "other":
        if not raw.strip():
            raise ConditionError("'other' needs the name of the clip whose contour to borrow, "
                                 "e.g. other:low_three_one_four")
        return Condition(kind, raw.strip())
    raw = raw.strip() or DEFAULTS[kind]
    try:
        value = float(raw)
    except ValueError:
        raise ConditionError(f"{kind} needs a number, got {raw!r} (e.g. {kind}:"
                             f"{DEFAULTS[kind]})") from None
    _check_value(kind, value)
    return Condition(kind, value)


def _check_value(kind: str, value: float) -> None:
    if not np.isfinite(value):
        raise ConditionError(f"{kind} needs a finite number, got {value}")
    if kind == "constant" and not 20.0 <= value <= 2000.0:
        raise ConditionError(f"constant F0 must be 20-2000 Hz, got {value:g}")
    if kind == "scaled" and not 0.05 <= value <= 20.0:
        raise ConditionError(f"scale factor must be 0.05-20, got {value:g}")
    if kind in ("semitones", "audio", "audio_keep") and abs(value) > SEMITONE_LIMIT:
        raise ConditionError(f"a shift of {value:g} semitones is outside ±{SEMITONE_LIMIT:g}")
    if kind == "shuffled" and (value < 0 or value != int(value)):
        raise ConditionError(f"shuffle seed must be a non-negative integer, got {value:g}")
    if kind == "rolled" and not -1.0 < value < 1.0:
        raise ConditionError(f"roll must be a fraction of the clip in (-1, 1), got {value:g}")


# ------------------------------------------------------------------------ contour transforms

def _contour(f0) -> np.ndarray:
    f0 = np.array(f0, dtype=np.float64)  # a copy: transforms are pure
    if f0.ndim != 1:
        raise ConditionError(f"an F0 contour is 1-D (Hz per frame), got shape {f0.shape}")
    f0[~rotary.voiced_mask(f0)] = np.nan  # 0 and negative mean unvoiced: NaN for users
    return f0


def constant(f0, hz: float) -> np.ndarray:
    out = _contour(f0)
    out[np.isfinite(out)] = float(hz)
    return out


def scaled(f0, factor: float) -> np.ndarray:
    return _contour(f0) * float(factor)


def semitones(f0, n: float) -> np.ndarray:
    return _contour(f0) * 2.0 ** (float(n) / 12.0)


def shuffled(f0, seed: int = 0) -> np.ndarray:
    out = _contour(f0)
    voiced = np.flatnonzero(np.isfinite(out))
    out[voiced] = out[voiced][np.random.default_rng(int(seed)).permutation(voiced.size)]
    return out


def reversed_voiced(f0) -> np.ndarray:
    out = _contour(f0)
    voiced = np.flatnonzero(np.isfinite(out))
    out[voiced] = out[voiced][::-1]
    return out


def rolled(f0, fraction: float = 0.5) -> np.ndarray:
    out = _contour(f0)
    return np.roll(out, int(round(float(fraction) * out.size)))


def borrowed(f0, other) -> np.ndarray:
    """``other`` (another clip's contour) stretched in time onto ``f0``'s frames, by the same
    nearest-frame-in-time rule the model uses to map F0 onto positions."""
    target, source = _contour(f0), _contour(other)
    if source.size == 0:
        raise ConditionError("the other clip has no F0 frames")
    return rotary.f0_at_positions(source, target.size)


def all_unvoiced(f0) -> np.ndarray:
    return np.full(_contour(f0).shape, np.nan)


def transform_contour(condition: Condition, f0, other=None) -> np.ndarray:
    """The contour under a (non-audio) condition; ``other``: the borrowed contour for
    ``other:NAME``. Audio conditions are applied to the samples (:func:`shift_audio`)."""
    kind, value = condition.kind, condition.value
    if kind == "true":
        return _contour(f0)
    if kind == "other":
        if other is None:
            raise ConditionError(f"{condition.name}: the other clip's contour was not given")
        return borrowed(f0, other)
    table = {"constant": lambda: constant(f0, value), "scaled": lambda: scaled(f0, value),
             "semitones": lambda: semitones(f0, value), "shuffled": lambda: shuffled(f0, value),
             "reversed": lambda: reversed_voiced(f0), "rolled": lambda: rolled(f0, value),
             "unvoiced": lambda: all_unvoiced(f0)}
    if kind not in table:
        raise ConditionError(f"{condition.name} changes the audio, not the contour")
    return table[kind]()


def shift_audio(samples: np.ndarray, sr: int, n_semitones: float) -> np.ndarray:
    """The samples pitch-shifted by ``n_semitones`` with librosa (phase vocoder + resampling),
    same length and rate, clipped to [-1, 1]."""
    import librosa

    samples = np.asarray(samples, dtype=np.float32)
    shifted = librosa.effects.pitch_shift(samples, sr=int(sr), n_steps=float(n_semitones))
    return np.clip(shifted, -1.0, 1.0).astype(np.float32)
