"""F0 trackers side by side: time, real-time factor, peak memory and accuracy in cents.

Compared on the same signal: the project's ``echo_core.pitch.extract_f0`` (Praat "ac" through
parselmouth, 8 ms step, floor 75 Hz, ceiling 600 Hz, plus validation and NaN conversion), the
bare parselmouth call it wraps (``Sound.to_pitch_ac`` with the same settings, plus reading the
frequency array; the baseline), librosa ``pyin`` and ``yin`` (frame_length 1024 at 16 kHz =
64 ms, hop 128 = 8 ms, fmin 75, fmax 600). Accuracy is against a synthetic voice of known F0
(``benchmarks._signals``): median |error| in cents over frames voiced in both the truth and the
estimate. A third group times the trackers on real speech (the example clips, looped).
"""

from __future__ import annotations

import math
import sys

import numpy as np

from benchmarks import _harness as H
from benchmarks import _signals as S

PRAAT = dict(time_step=0.008, pitch_floor=75.0, pitch_ceiling=600.0, max_number_of_candidates=15,
             very_accurate=False, silence_threshold=0.03, voicing_threshold=0.45,
             octave_cost=0.01, octave_jump_cost=0.35, voiced_unvoiced_cost=0.14)
LIBROSA = dict(fmin=75.0, fmax=600.0, sr=S.SR, frame_length=1024, hop_length=128)
METHODS = {  # name -> (key, is baseline)
    "echo_core extract_f0 (ours)": ("ours", False),
    "parselmouth to_pitch_ac": ("praat", True),
    "librosa pyin": ("pyin", False),
    "librosa yin": ("yin", False),
}


def track(key: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frame times s, F0 Hz with NaN or 0 unvoiced) of one tracker on 16 kHz samples."""
    if key == "ours":
        from echo_core.pitch import extract_f0

        t = extract_f0(x, S.SR)
        return t.times, t.hz
    if key == "praat":
        import parselmouth

        pitch = parselmouth.Sound(np.asarray(x, np.float64), S.SR).to_pitch_ac(**PRAAT)
        return np.asarray(pitch.xs()), pitch.selected_array["frequency"]
    import librosa

    if key == "pyin":
        f0, _, _ = librosa.pyin(x, **LIBROSA)
    elif key == "yin":
        f0 = librosa.yin(x, **LIBROSA)
    else:
        raise ValueError(f"unknown tracker {key!r}; accepted: ours, praat, pyin, yin")
    return librosa.times_like(f0, sr=S.SR, hop_length=LIBROSA["hop_length"]), f0


def signal(source: str, seconds: float) -> np.ndarray:
    if source == "synthetic":
        return S.synthetic_voice(float(seconds))[0]
    if source == "speech":
        return S.real_speech(float(seconds))
    raise ValueError(f"unknown source {source!r}; accepted: synthetic, speech")


def make_f0(key: str, seconds: float, source: str = "synthetic"):
    """Factory: warm the tracker up on 0.5 s (imports, numba JIT), return the timed call."""
    x = signal(source, seconds)
    track(key, np.ascontiguousarray(x[: S.SR // 2]))
    return lambda: track(key, x)


def run_group(rep: H.Report, args, source: str, seconds: float, keys: dict[str, str]) -> None:
    group = f"{source} {seconds:g} s"
    runs = {name: make_f0(key, seconds, source) for name, key in keys.items()}
    timing = H.time_methods(runs, args.repeat, args.budget, args.quick)
    x = signal(source, seconds)
    truth = S.synthetic_voice(float(seconds))[1] if source == "synthetic" else None
    for name, key in keys.items():
        times, hz = track(key, x)
        extra = {"rtf": timing[name].get("seconds", math.nan) / seconds}
        if truth is not None:
            errors = S.f0_errors(times, hz, truth)
            extra.update(cents=errors["cents_median_abs"], cents_p90=errors["cents_p90_abs"],
                         gpe=errors["gross_error_rate"], voicing_recall=errors["voicing_recall"],
                         false_voicing=errors["false_voicing"], frames=errors["frames_compared"])
        else:
            with np.errstate(invalid="ignore"):
                extra["voiced_fraction"] = float(np.mean(np.isfinite(hz) & (hz > 0)))
        memory = H.measure_memory(__name__, "make_f0", {"key": key, "seconds": seconds,
                                                        "source": source}, args.isolate)
        rep.row(group, name, timing[name], baseline=METHODS[name][1], memory=memory, extra=extra)


def main(argv=None) -> dict:
    args = H.parse_args(__doc__.splitlines()[0], argv)
    rep = H.Report("f0", "F0 trackers: time, real-time factor, accuracy (cents)", args)
    every = {name: key for name, (key, _) in METHODS.items()}
    if args.quick:
        run_group(rep, args, "synthetic", 1.0, every)
    else:
        run_group(rep, args, "synthetic", 10.0, every)
        run_group(rep, args, "synthetic", 60.0, every)
        run_group(rep, args, "speech", 10.0, every)
    rep.note("rtf = seconds of compute per second of audio (lower is faster). cents = median "
             "|error| over frames voiced in both truth and estimate, frames within 25 ms of a "
             "voicing edge excluded; gpe = share of those frames off by > 20 %; "
             "false_voicing = share of silent-gap frames called voiced (yin has no voicing "
             "decision, so 1.0). The synthetic voice has a +-20 cent 5.5 Hz vibrato: a long "
             "window (pyin/yin 64 ms vs Praat's 40 ms at 75 Hz) averages over more of it.")
    rep.note("pyin runs on the 60 s clip too (about 0.2 s of compute per second of audio here): "
             "fewer rounds fit the time budget there, see the runs field.")
    return rep.finish()


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
