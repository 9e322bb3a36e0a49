"""Augmentations of the zoo corpus, each checked against an independent measurement."""

import numpy as np
import pytest

from echo_core import augment as A

SR = 16000


def _tone(freq=220.0, seconds=1.0, amp=0.3):
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(x):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return np.fft.rfftfreq(x.size, 1 / SR)[int(np.argmax(spectrum))]


@pytest.mark.parametrize("snr", [5.0, 12.5, 30.0])
@pytest.mark.parametrize("colour", ["white", "pink"])
def test_noise_has_the_asked_snr(snr, colour):
    x = _tone()
    y = A.add_noise(x, snr, np.random.default_rng(0), colour)
    noise = y.astype(np.float64) - x
    measured = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(noise ** 2))
    assert measured == pytest.approx(snr, abs=0.01)


def test_gain_is_exact():
    x = _tone()
    assert np.allclose(A.gain(x, -6.0), x * 10 ** (-6 / 20), rtol=1e-6)
    assert np.allclose(A.gain(x, 20.0), x * 10.0, rtol=1e-6)


def test_band_limit_removes_energy_above_4khz():
    x = np.random.default_rng(1).standard_normal(SR).astype(np.float32) * 0.1
    y = A.band_limit(x, SR)
    assert y.shape == x.shape
    freqs = np.fft.rfftfreq(SR, 1 / SR)
    power = np.abs(np.fft.rfft(y)) ** 2
    power_in = np.abs(np.fft.rfft(x)) ** 2
    above = freqs > 4100
    assert power[above].sum() < 1e-4 * power_in[above].sum()
    below = freqs < 3500  # the passband is kept
    assert power[below].sum() == pytest.approx(power_in[below].sum(), rel=0.05)


def test_reverb_keeps_rms_and_adds_a_tail():
    x = np.zeros(SR // 2, np.float32)
    x[100] = 1.0
    y = A.reverb(x, SR, 0.4, np.random.default_rng(2))
    assert y.size == x.size + int(0.25 * 0.4 * SR)
    assert np.sqrt(np.mean(y.astype(np.float64) ** 2)) == pytest.approx(
        np.sqrt(np.mean(x.astype(np.float64) ** 2)), rel=1e-5)
    assert np.count_nonzero(np.abs(y[2000:]) > 1e-6) > 1000  # energy long after the click


def test_room_impulse_decays_60db_at_rt60():
    ir = A.room_impulse(SR, 0.3, np.random.default_rng(3))
    early = np.sqrt(np.mean(ir[100:800] ** 2))
    late = np.sqrt(np.mean(ir[-700:] ** 2))
    assert 20 * np.log10(early / late) > 45


def test_tempo_changes_length_not_pitch():
    x = _tone(300.0, 1.0)
    y = A.tempo(x, 1.25)
    assert y.size == pytest.approx(x.size / 1.25, rel=0.02)
    assert _peak_hz(y) == pytest.approx(300.0, abs=6)


def test_pitch_shift_moves_the_peak_by_semitones():
    x = _tone(200.0, 1.0)
    y = A.pitch_shift(x, SR, 12.0)
    assert y.size == x.size
    assert _peak_hz(y) == pytest.approx(400.0, abs=8)


def test_random_chain_is_seeded_and_described():
    x = _tone()
    a, da = A.random_chain(x, SR, np.random.default_rng(5))
    b, db = A.random_chain(x, SR, np.random.default_rng(5))
    assert da == db and np.array_equal(a, b) and np.abs(a).max() <= A.PEAK_LIMIT + 1e-6
    none, d0 = A.random_chain(x, SR, np.random.default_rng(5), {k: 0.0 for k in
                                                                A.CHAIN_PROBABILITIES})
    assert d0 == "" and np.array_equal(none, x)
    every, d1 = A.random_chain(x, SR, np.random.default_rng(5), {k: 1.0 for k in
                                                                 A.CHAIN_PROBABILITIES})
    assert [p.split("=")[0] for p in d1.split(";")] == list(A.CHAIN_PROBABILITIES)
