"""Pitch conditions: each transform against an independent computation, and the parser."""

from __future__ import annotations

import numpy as np
import pytest

from echo_core import pitch_conditions as C

F0 = np.array([np.nan, 100.0, 110.0, 0.0, 120.0, 130.0, np.nan, 140.0])
VOICED = np.array([False, True, True, False, True, True, False, True])


def test_parse_accepts_the_documented_forms_and_names_them():
    assert C.parse_condition("true") == C.Condition("true")
    assert C.parse_condition(" Constant:100 ").name == "constant:100"
    assert C.parse_condition("shuffled").value == 0.0  # default seed
    assert C.parse_condition("other:low_three_one_four").value == "low_three_one_four"
    assert C.parse_condition("audio:-3").changes_audio


@pytest.mark.parametrize("text, match", [
    ("", "empty"), ("sideways", "unknown pitch condition"), ("constant:abc", "needs a number"),
    ("constant:5", "20-2000 Hz"), ("semitones:40", "outside"), ("rolled:1.5", "fraction"),
    ("reversed:2", "takes no value"), ("other", "needs the name"), ("shuffled:1.5", "integer")])
def test_parse_refuses_with_what_is_accepted(text, match):
    with pytest.raises(C.ConditionError, match=match):
        C.parse_condition(text)
    assert issubclass(C.ConditionError, ValueError)


def test_value_transforms_keep_voicing_and_match_hand_computation():
    np.testing.assert_array_equal(np.isfinite(C.constant(F0, 90.0)), VOICED)
    np.testing.assert_allclose(C.constant(F0, 90.0)[VOICED], 90.0)
    np.testing.assert_allclose(C.scaled(F0, 0.5)[VOICED], [50, 55, 60, 65, 70])
    np.testing.assert_allclose(C.semitones(F0, 12)[VOICED], [200, 220, 240, 260, 280])
    np.testing.assert_allclose(C.semitones(F0, -7)[1], 100.0 / 1.4983070768766815)  # 2^(7/12)
    np.testing.assert_allclose(C.reversed_voiced(F0)[VOICED], [140, 130, 120, 110, 100])
    assert np.isnan(C.all_unvoiced(F0)).all()
    assert np.isnan(C.constant(F0, 90.0)[3])  # 0 Hz is unvoiced: NaN, never 0


def test_shuffle_is_a_seeded_permutation_of_the_voiced_values():
    a, b = C.shuffled(F0, 3), C.shuffled(F0, 3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.isfinite(a), VOICED)
    assert sorted(a[VOICED]) == sorted(F0[VOICED])
    rng = np.random.default_rng(3)  # independent: the same generator draws the permutation
    np.testing.assert_array_equal(a[VOICED], F0[VOICED][rng.permutation(5)])


def test_roll_moves_the_whole_contour_by_a_fraction_of_the_clip():
    out = C.rolled(F0, 0.25)  # 8 frames -> 2
    expected = np.array([np.nan, 140.0, np.nan, 100.0, 110.0, np.nan, 120.0, 130.0])
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_allclose(out[~np.isnan(out)], expected[~np.isnan(expected)])


def test_borrowed_contour_is_stretched_by_time():
    other = np.array([200.0, np.nan, 300.0, 400.0])
    out = C.borrowed(F0, other)  # 8 target frames read other's frames 0,0,1,1,2,2,3,3
    expected = np.array([200, 200, np.nan, np.nan, 300, 300, 400, 400])
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_allclose(out[np.isfinite(out)], expected[np.isfinite(expected)])


def test_transforms_are_pure_and_dispatch_by_name():
    before = F0.copy()
    for name in ("true", "constant:90", "scaled:2", "semitones:3", "shuffled:1", "reversed",
                 "rolled:0.5", "unvoiced"):
        C.transform_contour(C.parse_condition(name), F0)
    np.testing.assert_array_equal(F0, before)
    np.testing.assert_allclose(C.transform_contour(C.parse_condition("scaled:2"), F0)[VOICED],
                               2 * F0[VOICED])
    with pytest.raises(C.ConditionError, match="other clip"):
        C.transform_contour(C.parse_condition("other:x"), F0)
    with pytest.raises(C.ConditionError, match="changes the audio"):
        C.transform_contour(C.parse_condition("audio:2"), F0)


def test_audio_shift_moves_a_tone_by_the_semitones():
    """A 200 Hz tone shifted up 12 semitones peaks at 400 Hz (independent: the FFT)."""
    sr = 16000
    t = np.arange(sr) / sr
    tone = (0.5 * np.sin(2 * np.pi * 200.0 * t)).astype(np.float32)
    shifted = C.shift_audio(tone, sr, 12.0)
    assert shifted.shape == tone.shape and shifted.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(shifted[2000:-2000] * np.hanning(sr - 4000)))
    peak = np.fft.rfftfreq(sr - 4000, 1 / sr)[np.argmax(spectrum)]
    assert peak == pytest.approx(400.0, abs=5.0)
