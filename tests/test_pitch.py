"""echo_core.pitch: Praat F0 on signals of known pitch, time alignment, NaN conventions."""

from __future__ import annotations

import csv
import dataclasses
import io

import numpy as np
import pytest

from echo_core.audio import FRAME_SECONDS, load_audio
from echo_core.errors import AudioError, PitchSettingsError
from echo_core.pitch import (
    F0Track,
    PraatSettings,
    align_to_frames,
    extract_f0,
    f0_for_model,
    f0_statistics,
    f0_to_csv,
)

SR = 16000
PRE, GLIDE, POST = 0.3, 1.0, 0.3  # s: silence, 120 -> 240 Hz exponential glide, silence
GLIDE_TOL_CENTS = 2.0  # one 8 ms frame of the glide is 9.6 cents: a 1-frame shift fails this


def harmonic(phase):
    """Five harmonics, 1/k amplitudes: voice-like, unambiguous pitch."""
    return sum(0.3 / k * np.sin(k * phase) for k in range(1, 6))


def glide_f0(t):
    return 120.0 * 2.0 ** ((np.asarray(t) - PRE) / GLIDE)


def glide_signal(sr):
    t = np.arange(int(round((PRE + GLIDE + POST) * sr))) / sr
    tau = np.clip(t - PRE, 0.0, GLIDE)
    x = harmonic(2 * np.pi * 120.0 * GLIDE / np.log(2) * (2.0 ** (tau / GLIDE) - 1))  # exact phase
    x[(t < PRE) | (t >= PRE + GLIDE)] = 0.0
    return x


def cents(hz, ref):
    return 1200.0 * np.log2(np.asarray(hz) / np.asarray(ref))


@pytest.fixture(scope="module")
def glide_track(tmp_path_factory):
    """The glide written as 44.1 kHz *stereo* 16-bit WAV and read back through load_audio."""
    import soundfile as sf

    x = glide_signal(44100)
    path = tmp_path_factory.mktemp("glide") / "glide.wav"
    sf.write(path, np.stack([x, 0.8 * x], axis=1), 44100, subtype="PCM_16")
    audio = load_audio(path)
    return audio, extract_f0(audio.samples, audio.sr)


# ----------------------------------------------------------------------------- known pitch


def test_glide_values_at_praats_own_times(glide_track):
    _, track = glide_track
    inside = (track.times > PRE + 0.06) & (track.times < PRE + GLIDE - 0.06)
    assert inside.sum() > 100
    assert track.voiced[inside].all()
    error = np.abs(cents(track.hz[inside], glide_f0(track.times[inside])))
    assert np.median(error) < GLIDE_TOL_CENTS


@pytest.mark.parametrize("shift", [-1, 1])
def test_glide_comparison_detects_a_one_frame_shift(glide_track, shift):
    _, track = glide_track
    idx = np.flatnonzero((track.times > PRE + 0.06) & (track.times < PRE + GLIDE - 0.06))
    error = np.abs(cents(track.hz[idx + shift], glide_f0(track.times[idx])))
    assert np.median(error) > GLIDE_TOL_CENTS  # so the test above would catch misalignment


def test_praat_times_are_kept(glide_track):
    audio, track = glide_track
    assert track.times[0] > 0 and not np.isclose(track.times[0] % FRAME_SECONDS, 0)
    np.testing.assert_allclose(np.diff(track.times), FRAME_SECONDS)
    assert track.times[-1] < audio.duration


def test_glide_silent_edges_are_nan(glide_track):
    _, track = glide_track
    outside = (track.times < PRE - 0.05) | (track.times > PRE + GLIDE + 0.05)
    assert outside.sum() > 40 and np.isnan(track.hz[outside]).all()
    assert not (track.hz == 0).any()


def test_glide_aligned_to_mel_frames(glide_track):
    audio, track = glide_track
    n_frames = 1 + len(audio) // 128
    aligned = align_to_frames(track, n_frames)
    t = np.arange(n_frames) * FRAME_SECONDS
    inside = (t > PRE + 0.06) & (t < PRE + GLIDE - 0.06)
    assert np.isfinite(aligned[inside]).all()
    assert np.median(np.abs(cents(aligned[inside], glide_f0(t[inside])))) < GLIDE_TOL_CENTS
    outside = (t < PRE - 0.05) | (t > PRE + GLIDE + 0.05)
    assert np.isnan(aligned[outside]).all()


def test_vibrato():
    t = np.arange(int(1.6 * SR)) / SR
    true = lambda t: 200.0 * 2.0 ** (50 / 1200 * np.sin(2 * np.pi * 5 * t))  # noqa: E731  +-50 c
    x = harmonic(2 * np.pi * np.cumsum(true(t)) / SR)
    track = extract_f0(x, SR)
    idx = np.flatnonzero((track.times > 0.1) & (track.times < 1.5))
    assert track.voiced[idx].all()
    assert np.median(np.abs(cents(track.hz[idx], true(track.times[idx])))) < 3.0
    shifted = np.abs(cents(track.hz[idx + 1], true(track.times[idx])))
    assert np.median(shifted) > 3.0


@pytest.mark.parametrize("method, tol", [("ac", 0.005), ("cc", 0.005), ("shs", 0.02)])
def test_methods_on_steady_tone(method, tol):
    x = harmonic(2 * np.pi * 180.0 * np.arange(SR) / SR)
    stats = f0_statistics(extract_f0(x, SR, method=method))
    assert stats["voiced_fraction"] > 0.8
    assert abs(stats["median"] / 180.0 - 1) < tol


def test_real_speech(arctic_path):
    audio = load_audio(arctic_path)
    stats = f0_statistics(extract_f0(audio.samples, audio.sr))
    assert 0.2 < stats["voiced_fraction"] < 0.8
    assert 80 < stats["median"] < 300
    assert stats["n_frames"] == pytest.approx(audio.duration / FRAME_SECONDS, abs=10)


def test_example_clips_have_the_pitch_their_names_say(clips_dir):
    medians = {}
    for name in ("low_three_one_four", "high_two_seven_nine", "arctic_a0007"):
        audio = load_audio(clips_dir / f"{name}.wav")
        assert audio.sr == SR and 2.0 <= audio.duration <= 4.0
        medians[name] = f0_statistics(extract_f0(audio.samples, audio.sr))["median"]
    assert medians["low_three_one_four"] < 110 < medians["arctic_a0007"] < 200
    assert medians["high_two_seven_nine"] > 230


# ----------------------------------------------------------------------------- normal edge cases


def test_silence_is_all_nan():
    track = extract_f0(np.zeros(SR), SR)
    assert len(track) > 100 and np.isnan(track.hz).all()
    stats = f0_statistics(track)
    assert stats["voiced_fraction"] == 0.0 and stats["n_voiced"] == 0
    assert all(np.isnan(stats[k]) for k in ("median", "mean", "min", "max", "std"))


@pytest.mark.parametrize("method", ["ac", "cc", "shs"])
@pytest.mark.parametrize("n", [0, 1, 160, 400])
def test_too_short_for_praat_is_an_empty_track(method, n):
    x = 0.5 * np.sin(2 * np.pi * 200 * np.arange(n) / SR)
    track = extract_f0(x, SR, method=method)
    assert len(track) == 0 and track.times.shape == (0,)
    assert np.isnan(align_to_frames(track, 3)).all()
    assert f0_statistics(track)["voiced_fraction"] == 0.0


def test_unvoiced_noise_is_mostly_nan():
    noise = 0.3 * np.random.default_rng(0).standard_normal(SR)
    assert f0_statistics(extract_f0(noise, SR))["voiced_fraction"] < 0.2


# ----------------------------------------------------------------------------- settings


def test_settings_defaults_are_praats():
    s = PraatSettings()
    assert (s.method, s.time_step, s.pitch_floor, s.pitch_ceiling) == ("ac", 0.008, 75.0, 600.0)
    assert (s.voicing_threshold, s.silence_threshold, s.octave_cost) == (0.45, 0.03, 0.01)
    assert (s.octave_jump_cost, s.voiced_unvoiced_cost, s.max_candidates) == (0.35, 0.14, 15)
    assert s.very_accurate is False and s.validate() is s


@pytest.mark.parametrize(
    "field, value",
    [("method", "yin"), ("time_step", 0.0), ("time_step", float("nan")), ("pitch_floor", -5.0),
     ("pitch_ceiling", 50.0), ("voicing_threshold", 1.5), ("silence_threshold", -0.1),
     ("octave_cost", -1.0), ("octave_jump_cost", float("inf")), ("voiced_unvoiced_cost", "x"),
     ("max_candidates", 1), ("max_candidates", 2.5), ("very_accurate", "yes"),
     ("shs_max_frequency_component", 300.0), ("shs_compression_factor", 1.5),
     ("shs_max_subharmonics", 0), ("shs_points_per_octave", 0)],
)
def test_settings_validation_names_the_field(field, value):
    with pytest.raises(PitchSettingsError, match=field):
        dataclasses.replace(PraatSettings(), **{field: value}).validate()
    with pytest.raises(PitchSettingsError, match=field):
        extract_f0(np.zeros(SR), SR, **{field: value})


def test_overrides_and_unknown_names():
    x = harmonic(2 * np.pi * 180.0 * np.arange(SR) / SR)
    track = extract_f0(x, SR, PraatSettings(time_step=0.01), pitch_floor=100.0)
    np.testing.assert_allclose(np.diff(track.times), 0.01)
    with pytest.raises(PitchSettingsError, match="unknown pitch setting.*accepted"):
        extract_f0(x, SR, floor=60)


def test_ceiling_above_nyquist_and_bad_samples():
    with pytest.raises(PitchSettingsError, match="Nyquist"):
        extract_f0(np.zeros(1000), 1000)
    with pytest.raises(AudioError, match="NaN"):
        extract_f0(np.array([0.0, np.nan] * 1000), SR)
    with pytest.raises(AudioError, match="mono"):
        extract_f0(np.zeros((2, 1000)), SR)


# ----------------------------------------------------------------------------- track helpers


def test_track_constructor_turns_zero_into_nan():
    track = F0Track([0.01, 0.02, 0.03, 0.04], [0.0, 100.0, -3.0, np.inf])
    np.testing.assert_array_equal(track.voiced, [False, True, False, False])
    assert len(track) == 4
    with pytest.raises(PitchSettingsError):
        F0Track([0.0, 0.1], [1.0])


def test_align_by_time_interpolates_within_runs_and_keeps_gaps():
    # Praat-like track: frames every 10 ms from 14 ms, a one-frame gap at 44 ms, unvoiced at 74.
    times = 0.014 + 0.01 * np.arange(7)  # 14 24 34 44 54 64 74 ms
    hz = np.array([100, 110, 120, np.nan, 200, 210, np.nan])
    got = align_to_frames(F0Track(times, hz), 15, hop_seconds=0.006)  # targets 0, 6, ..., 84 ms
    want = [
        np.nan,  # 0 ms: 14 ms from the nearest frame, more than half a step (5 ms)
        np.nan,  # 6 ms: 8 ms away
        100.0,   # 12 ms: before the first frame but within 5 ms of it: its value
        104.0,   # 18 ms: 4/10 of the way from 100 to 110
        110.0,   # 24 ms: on a frame
        116.0,   # 30 ms
        120.0,   # 36 ms: nearest frame (34) voiced, the next (44) is the gap: hold 120
        np.nan,  # 42 ms: nearest frame is the gap
        np.nan,  # 48 ms: nearest frame (44) is the gap; not bridged from 120 to 200
        200.0,   # 54 ms: on a frame whose left neighbour is the gap
        206.0,   # 60 ms
        210.0,   # 66 ms: hold the end of the run
        np.nan,  # 72 ms: nearest frame (74) unvoiced
        np.nan,  # 78 ms
        np.nan,  # 84 ms: past the end
    ]
    np.testing.assert_allclose(got, want)


def test_align_single_frame_and_edges():
    track = F0Track([0.02], [150.0])
    got = align_to_frames(track, 6)  # frames 0, 8, 16, 24, 32, 40 ms; tolerance = half a hop
    np.testing.assert_array_equal(np.isfinite(got), [False, False, True, True, False, False])
    assert align_to_frames(track, 0).shape == (0,)
    with pytest.raises(PitchSettingsError):
        align_to_frames(track, -1)
    with pytest.raises(PitchSettingsError):
        align_to_frames(np.array([100.0]), 3)


def test_f0_for_model_is_the_only_zero():
    hz = np.array([np.nan, 100.0, 0.0, 123.5, np.inf])
    out = f0_for_model(hz)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [0, 100, 0, 123.5, 0])
    track = F0Track(np.arange(5) * 0.01, hz)
    np.testing.assert_array_equal(f0_for_model(track), out)
    assert np.isnan(track.hz[0])  # the track itself is untouched


def test_f0_statistics_against_numpy():
    hz = np.array([np.nan, 100.0, 200.0, 0.0, 300.0, 250.0])
    stats = f0_statistics(F0Track(np.arange(6) * 0.01, hz))
    voiced = np.array([100.0, 200.0, 300.0, 250.0])
    assert stats["median"] == np.median(voiced) and stats["mean"] == voiced.mean()
    assert stats["min"] == 100 and stats["max"] == 300
    assert stats["std"] == pytest.approx(voiced.std())
    assert (stats["n_frames"], stats["n_voiced"], stats["voiced_fraction"]) == (6, 4, 4 / 6)
    assert f0_statistics(hz) == stats


def test_csv_round_trip():
    track = F0Track([0.0205, 0.0285, 0.0365], [101.25, np.nan, 99.5])
    text = f0_to_csv(track)
    assert text.splitlines()[0] == "time_s,f0_hz"
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["f0_hz"] for r in rows] == ["101.250000", "", "99.500000"]
    np.testing.assert_allclose([float(r["time_s"]) for r in rows], track.times)
    assert f0_to_csv(F0Track([], [])) == "time_s,f0_hz\n"
