"""Training-time augmentations of the log-mel: masks, the vocal tract warp, the spectral tilt,
the telephone band, the clipped onset, the time stretch and the time warp, each against an
independent computation, and each drawing nothing when it is off."""

import numpy as np
import pytest
from scipy.signal import freqz, lfilter

from echo_core.audio import SAMPLE_RATE, log_mel
from echo_core.errors import EchoError
from echo_core.mel_augment import (FLOOR_UNITS, band_gain, band_limit_mel, first_order_gain,
                                   mel_centres, onset_crop_start,
                                   onset_frame, spec_augment, stretch_time, tilt_mel,
                                   warp_frames, warp_mel, warp_time)
from echo_core.train import TrainConfig


def test_spec_augment_only_fills_masks_with_the_mean():
    mel = np.random.default_rng(1).normal(size=(32, 100)).astype(np.float32)
    cfg = TrainConfig(data="x", out="y", freq_masks=2, freq_width=6, time_masks=2, time_ratio=0.1)
    out = spec_augment(mel, np.random.default_rng(2), cfg)
    changed = out != mel
    assert np.allclose(out[changed], mel.mean())
    assert changed.any() and changed.mean() < 0.5
    assert not np.shares_memory(out, mel)


def test_frequency_warp_stretches_the_mel_axis():
    """warp_mel: alpha 1 is the identity; on a ramp over the channels, channel f reads f / alpha
    (edges held). spec_augment draws alpha from its rng first, and only when the warp is on."""
    ramp = np.repeat(np.arange(80, dtype=np.float32)[:, None], 5, axis=1)
    assert np.array_equal(warp_mel(ramp, 1.0), ramp)
    np.testing.assert_allclose(warp_mel(ramp, 1.25)[:, 0], np.arange(80) / 1.25, atol=1e-5)
    np.testing.assert_allclose(warp_mel(ramp, 0.8)[:, 0], np.minimum(np.arange(80) / 0.8, 79),
                               atol=1e-5)
    mel = np.random.default_rng(1).normal(size=(80, 50)).astype(np.float32)
    cfg = TrainConfig(data="", out="", freq_masks=0, time_masks=0, freq_warp=0.1)
    alpha = np.random.default_rng(3).uniform(0.9, 1.1)
    np.testing.assert_allclose(spec_augment(mel, np.random.default_rng(3), cfg),
                               warp_mel(mel, alpha))
    plain = TrainConfig(data="", out="")  # no warp: the masks draw exactly as before it existed
    rng, expected = np.random.default_rng(5), mel.copy()
    for _ in range(plain.freq_masks):
        w = int(rng.integers(0, plain.freq_width + 1))
        f = int(rng.integers(0, max(1, 80 - w)))
        expected[f:f + w] = mel.mean()
    for _ in range(plain.time_masks):
        w = int(rng.integers(0, int(plain.time_ratio * 50) + 1))
        t = int(rng.integers(0, max(1, 50 - w)))
        expected[:, t:t + w] = mel.mean()
    assert np.array_equal(spec_augment(mel, np.random.default_rng(5), plain), expected)


def test_first_order_gain_is_the_filter_response():
    """The tilt's gain equals scipy's frequency response of [1, -coef] (in log10 power)."""
    freqs = np.linspace(0, SAMPLE_RATE / 2, 37)
    for coef in (-0.9, -0.3, 0.0, 0.5, 0.95):
        _, h = freqz([1.0, -coef], worN=freqs, fs=SAMPLE_RATE)
        np.testing.assert_allclose(first_order_gain(freqs, coef), np.log10(np.abs(h) ** 2),
                                   atol=1e-9)


def test_tilt_mel_matches_filtering_the_audio():
    """On stationary noise, the features of the filtered audio minus those of the audio are the
    tilt's shift (time-averaged, level removed), away from the band's two ends where a filter's
    skirt spans a steep part of the response."""
    rng = np.random.default_rng(0)
    noise = rng.normal(size=SAMPLE_RATE * 2).astype(np.float32) * 0.1
    coef = 0.8
    mel = log_mel(noise, n_mels=80, fmax=8000.0)
    filtered = log_mel(lfilter([1.0, -coef], [1.0], noise).astype(np.float32), n_mels=80,
                       fmax=8000.0)
    measured = (filtered - mel).mean(axis=1)
    measured -= measured.mean()
    centres = mel_centres(80, 0.0, 8000.0)
    shifted = tilt_mel(mel, coef, centres) - mel
    expected = shifted.mean(axis=1) - shifted.mean()
    inner = slice(10, 75)
    np.testing.assert_allclose(measured[inner], expected[inner], atol=0.02)
    assert np.ptp(expected) > 0.3  # a real tilt: 0.8 spans over 12 dB across the band


def test_tilt_mel_keeps_the_floor_and_zero_is_identity():
    mel = np.random.default_rng(1).normal(size=(80, 40)).astype(np.float32)
    centres = mel_centres(80, 0.0, 8000.0)
    np.testing.assert_allclose(tilt_mel(mel, 0.0, centres), np.maximum(mel, mel.max() - FLOOR_UNITS))
    out = tilt_mel(mel, -0.9, centres)
    assert out.min() >= out.max() - FLOOR_UNITS - 1e-6
    assert out.dtype == mel.dtype


def _voice_like(seconds=1.0):
    """A 120 Hz pulse train (harmonics up to Nyquist) with a noise burst at half time (a
    fricative): energy on both sides of 4 kHz, unlike the white noise band_gain measures on.
    Silence before and after, as a trimmed corpus clip has: the resampler's start-up and
    run-out transients fall there."""
    n = int(seconds * SAMPLE_RATE)
    x = np.zeros(n, np.float32)
    x[::SAMPLE_RATE // 120] = 1.0
    rng = np.random.default_rng(5)
    x[n // 2:n // 2 + n // 5] += 0.3 * rng.normal(size=n // 5).astype(np.float32)
    pad = np.zeros(SAMPLE_RATE // 10, np.float32)
    return np.concatenate([pad, x, pad])


def test_band_limit_mel_matches_band_limiting_the_audio():
    """The features of the clip sent through augment.band_limit (8 kHz and back) are the
    clip's features with band_gain added and the floor applied again: exactly away from the
    band edge, within the resampler's roll-off on the three channels below it."""
    from echo_core.augment import band_limit

    x = _voice_like()
    expected = log_mel(band_limit(x, SAMPLE_RATE), n_mels=80, fmax=8000.0)
    out = band_limit_mel(log_mel(x, n_mels=80, fmax=8000.0), band_gain(80, 0.0, 8000.0))
    centres = mel_centres(80, 0.0, 8000.0)
    edge = (centres > 3600) & (centres < 4050)  # the roll-off: 3.69, 3.83, 3.97 kHz
    assert edge.sum() == 3
    np.testing.assert_allclose(out[~edge], expected[~edge], atol=0.02)
    np.testing.assert_allclose(out[edge], expected[edge], atol=0.35)
    above = centres > 4100
    assert np.all(out[above] == out.max() - FLOOR_UNITS)  # nothing above the band but the floor
    assert np.ptp(log_mel(x, n_mels=80, fmax=8000.0)[above]) > 1  # there was something before


def _share_changed(views_of, mel, seeds: int = 400) -> float:
    """Share of seeded streams for which a per-clip view (``views_of(rng)``, one clip) changed
    the clip: the switch's draw rate."""
    return float(np.mean([not np.array_equal(views_of(np.random.default_rng(s))[0][0], mel)
                          for s in range(seeds)]))


def test_band_limited_draws_one_choice_per_clip():
    from echo_core.train import band_limited

    mels = [np.random.default_rng(i).random((80, 30)).astype(np.float32) for i in range(2)]
    f0s = [np.full(30, 110.0, np.float32)] * 2
    gain = band_gain(80, 0.0, 8000.0)
    views, contours = band_limited([0, 1], mels, f0s, 1.0, gain, np.random.default_rng(0))
    for i in (0, 1):
        np.testing.assert_array_equal(views[i], band_limit_mel(mels[i], gain))
        assert contours[i] is f0s[i]
    assert 0.22 < _share_changed(lambda rng: band_limited([0], mels, f0s, 0.3, gain, rng),
                                 mels[0]) < 0.38
    with pytest.raises(ValueError, match="--band-limit must lie in"):
        TrainConfig(data="x", out="y", band_limit=1.5)


def test_view_augmentations_compose_each_reading_the_one_before():
    """train.augmented_views: with the telephone band and the clipped onset both on, the crop
    applies to the band-limited clip (a crop read from the original features would drop the
    band), drawing from the same stream as the crop alone."""
    from echo_core.train import augmented_views, cropped_onsets

    rng = np.random.default_rng(0)
    mels = [rng.random((80, 60)).astype(np.float32) for _ in range(2)]
    for m in mels:
        m[:, :10] -= 1.5  # a quiet lead-in to crop into
    f0s = [np.full(60, 110.0, np.float32)] * 2
    gain = band_gain(80, 0.0, 8000.0)
    cfg = TrainConfig(data="x", out="y", band_limit=1.0, onset_crop=1.0)
    views, _ = augmented_views([0, 1], mels, f0s, cfg, 5, gain)
    limited = {i: band_limit_mel(mels[i], gain) for i in (0, 1)}
    expected, _ = cropped_onsets([0, 1], limited, f0s, 1.0, np.random.default_rng([0, 17, 5]))
    above = mel_centres(80, 0.0, 8000.0) > 4100
    for i in (0, 1):
        np.testing.assert_array_equal(views[i], expected[i])
        assert np.all(views[i][above] == limited[i].max() - FLOOR_UNITS)


def test_spec_augment_draws_the_tilt_after_the_warp():
    mel = np.random.default_rng(2).normal(size=(80, 30)).astype(np.float32)
    centres = mel_centres(80, 0.0, 8000.0)
    cfg = TrainConfig(data="", out="", freq_masks=0, time_masks=0, freq_warp=0.1,
                      spectral_tilt=0.9)
    rng = np.random.default_rng(4)
    alpha = rng.uniform(0.9, 1.1)
    coef = rng.uniform(-0.9, 0.9)
    np.testing.assert_allclose(spec_augment(mel, np.random.default_rng(4), cfg),
                               tilt_mel(warp_mel(mel, alpha), coef, centres), rtol=1e-6)


def test_onset_frame_is_where_the_first_loud_sound_begins():
    mel = np.zeros((6, 30), np.float32)
    mel[:, 4:7] = 0.3  # a weak consonant, below half the range
    mel[:, 7:20] = 1.0  # the vowel
    mel[:, 25:27] = 1.0  # a later loud sound does not count
    assert onset_frame(mel) == 7
    assert onset_frame(np.full((6, 10), 0.5, np.float32)) == 0  # flat: nothing to find


def test_onset_crop_start_stays_within_the_onset_and_keeps_the_clip():
    mel = np.zeros((6, 40), np.float32)
    mel[:, 10:30] = 1.0
    assert all(onset_crop_start(mel, np.random.default_rng(s), 0.0) == 0 for s in range(50))
    starts = [onset_crop_start(mel, np.random.default_rng(s), 1.0) for s in range(400)]
    assert min(starts) == 0 and max(starts) == 12  # onset 10, up to two frames past it
    assert len(set(starts)) == 13  # every start in [0, 12] is drawn
    short = np.zeros((6, 10), np.float32)
    short[:, 8:] = 1.0
    assert max(onset_crop_start(short, np.random.default_rng(s), 1.0) for s in range(200)) == 2


def test_cropped_onsets_crop_mel_and_contour_alike():
    from echo_core.train import cropped_onsets

    rng = np.random.default_rng(0)
    mels = [rng.random((4, n)).astype(np.float32) for n in (30, 40, 50)]
    for m in mels:
        m[:, :12] -= 2.0  # quiet lead-in, then loud
    f0s = [np.arange(m.shape[1], dtype=np.float32) for m in mels]
    views, contours = cropped_onsets([0, 2], mels, f0s, 1.0, np.random.default_rng(1))
    assert sorted(views) == [0, 2]
    for i in (0, 2):
        start = mels[i].shape[1] - views[i].shape[1]
        assert 0 <= start <= 14
        np.testing.assert_array_equal(views[i], mels[i][:, start:])
        np.testing.assert_array_equal(contours[i], f0s[i][start:])


def test_stretch_time_resamples_mel_linearly_and_f0_by_nearest_frame():
    rng = np.random.default_rng(3)
    mel = rng.random((5, 21)).astype(np.float32)
    f0 = np.where(np.arange(21) % 4 == 0, np.nan, 100.0 + np.arange(21)).astype(np.float32)
    out, f0_out = stretch_time(mel, f0, 0.5)
    assert out.shape == (5, 10) and f0_out.shape == (10,)
    src = np.linspace(0, 20, 10)  # independent: numpy's own interpolation, channel by channel
    for c in range(5):
        np.testing.assert_allclose(out[c], np.interp(src, np.arange(21), mel[c]), rtol=1e-6)
    nearest = f0[np.rint(src).astype(int)]
    np.testing.assert_array_equal(np.isnan(f0_out), np.isnan(nearest))  # unvoiced stays NaN
    np.testing.assert_array_equal(f0_out[~np.isnan(nearest)], nearest[~np.isnan(nearest)])
    same, f0_same = stretch_time(mel, f0, 1.0)
    np.testing.assert_allclose(same, mel, rtol=1e-6)
    np.testing.assert_array_equal(np.isnan(f0_same), np.isnan(f0))
    longer, _ = stretch_time(mel, f0, 1.25)
    assert longer.shape == (5, 26)
    np.testing.assert_allclose(longer[:, [0, -1]], mel[:, [0, -1]], rtol=1e-6)  # ends kept


def test_stretched_draws_one_rate_per_clip_within_the_width():
    from echo_core.train import stretched

    mels = [np.zeros((3, 100), np.float32), np.zeros((3, 40), np.float32)]
    f0s = [np.full(100, 120.0, np.float32), np.full(40, 120.0, np.float32)]
    sizes = set()
    for seed in range(200):
        views, contours = stretched([0, 1], mels, f0s, 0.25, np.random.default_rng(seed))
        assert 75 <= views[0].shape[1] <= 125 and 30 <= views[1].shape[1] <= 50
        assert all(views[i].shape[1] == len(contours[i]) for i in (0, 1))
        sizes.add(views[0].shape[1])
    assert min(sizes) <= 77 and max(sizes) >= 123  # the whole range is drawn


def test_warp_frames_moves_the_anchor_to_the_target_and_keeps_the_ends():
    src = warp_frames(101, 0.3, 0.5)  # the frame at 30 plays at 50: the first half slower
    assert src.shape == (101,) and src[0] == 0.0 and src[-1] == 100.0
    assert abs(src[50] - 30.0) < 1e-9
    np.testing.assert_allclose(np.diff(src[:51]), 30 / 50)  # two straight pieces, by hand
    np.testing.assert_allclose(np.diff(src[50:]), 70 / 50)
    np.testing.assert_allclose(warp_frames(40, 0.4, 0.4), np.arange(40.0))  # no move: identity
    for bad in ((0.0, 0.5), (0.5, 1.0), (1.2, 0.5)):
        with pytest.raises(EchoError, match="strictly inside"):
            warp_frames(40, *bad)


def test_warp_time_resamples_like_the_stretch_and_keeps_unvoiced_frames():
    rng = np.random.default_rng(4)
    mel = rng.random((4, 31)).astype(np.float32)
    f0 = np.where(np.arange(31) % 3 == 0, np.nan, 90.0 + np.arange(31)).astype(np.float32)
    out, f0_out = warp_time(mel, f0, 0.25, 0.6)
    assert out.shape == mel.shape and f0_out.shape == f0.shape
    src = np.interp(np.arange(31.0), [0.0, 18.0, 30.0], [0.0, 7.5, 30.0])
    for c in range(4):
        np.testing.assert_allclose(out[c], np.interp(src, np.arange(31), mel[c]), rtol=1e-6)
    nearest = f0[np.rint(src).astype(int)]
    np.testing.assert_array_equal(np.isnan(f0_out), np.isnan(nearest))
    np.testing.assert_array_equal(f0_out[~np.isnan(nearest)], nearest[~np.isnan(nearest)])


def test_time_warped_draws_anchor_and_shift_within_the_width():
    from echo_core.train import time_warped

    ramp = np.tile(np.arange(200, dtype=np.float32), (2, 1))  # a mel whose value is its frame
    f0s = [np.full(200, 110.0, np.float32)]
    shifts = []
    for seed in range(300):
        views, contours = time_warped([0], [ramp], f0s, 0.15, np.random.default_rng(seed))
        out = views[0][0]
        assert out.shape == (200,) and len(contours[0]) == 200
        assert out[0] == 0.0 and out[-1] == 199.0 and np.all(np.diff(out) > 0)
        shifts.append(np.max(np.abs(out - np.arange(200))) / 199)  # the anchor's move
    assert max(shifts) <= 0.15 + 1e-6 and max(shifts) > 0.13  # the whole width is drawn


def test_time_warped_refuses_a_width_that_could_leave_the_clip():
    from echo_core.train import time_warped

    with pytest.raises(EchoError, match="time-warp"):
        time_warped([0], [np.zeros((2, 50), np.float32)], [np.zeros(50, np.float32)], 0.2,
                    np.random.default_rng(0))


def test_noise_floor_mel_matches_adding_the_noise_to_the_audio():
    """The clip's features with noise_floor_mel at L dB are, on average over the frames, the
    features of the audio with white noise L dB below its power added (augment.add_noise, four
    draws averaged): in the silence the floor fills, under the voice and under the fricative.
    Single frames differ as two draws of noise differ."""
    from echo_core.augment import add_noise
    from echo_core.mel_augment import noise_floor_mel, white_noise_power

    sr, frame = SAMPLE_RATE, 128
    t = np.arange(sr) / sr
    voiced = 0.1 * sum(np.sin(2 * np.pi * 120 * k * t) / k for k in range(1, 30))
    fricative = 0.02 * np.random.default_rng(5).standard_normal(sr) * np.hanning(sr)
    x = np.concatenate([voiced, np.zeros(2 * sr), fricative]).astype(np.float32)
    clean = log_mel(x, n_mels=80, fmax=8000.0)
    noise = white_noise_power(80, 0.0, 8000.0)
    regions = {"voice": slice(20, sr // frame - 20),
               "silence": slice(sr // frame + 20, 3 * sr // frame - 20),
               "fricative": slice(3 * sr // frame + 40, 4 * sr // frame - 40)}
    for level in (50.0, 35.0):
        audio = np.mean([log_mel(add_noise(x, level, np.random.default_rng(s)), n_mels=80,
                                 fmax=8000.0) for s in range(4)], axis=0)
        out = noise_floor_mel(clean, level, noise, start=7)
        assert out.dtype == clean.dtype and out.shape == clean.shape
        for name, r in regions.items():
            diff = audio[:, r].mean(axis=1) - out[:, r].mean(axis=1)
            assert abs(diff.mean()) < 0.01, (level, name, diff.mean())
            assert np.abs(diff).max() < 0.06, (level, name, np.abs(diff).max())
        silence = regions["silence"]
        assert out[:, silence].mean() > clean[:, silence].mean() + 0.15  # the floor is there
    # Well above the features' own floor (80 dB under the loudest bin), 10 dB more noise is
    # 0.25 units more in the silence
    louder = noise_floor_mel(clean, 25.0, noise, 7)[:, regions["silence"]].mean()
    quieter = noise_floor_mel(clean, 35.0, noise, 7)[:, regions["silence"]].mean()
    assert louder - quieter == pytest.approx(10 / 40, abs=0.005)


def test_noise_floored_draws_per_clip_and_is_checked():
    from echo_core.mel_augment import noise_floor_mel, white_noise_power
    from echo_core.train import noise_floored

    mels = [np.random.default_rng(i).random((80, 30)).astype(np.float32) for i in range(2)]
    f0s = [np.full(30, 110.0, np.float32)] * 2
    noise = white_noise_power(80, 0.0, 8000.0)
    views, contours = noise_floored([0, 1], mels, f0s, 1.0, noise, np.random.default_rng(0))
    rng = np.random.default_rng(0)
    for i in (0, 1):
        rng.random()
        level, start = rng.uniform(30.0, 60.0), int(rng.integers(noise[0].shape[1]))
        np.testing.assert_array_equal(views[i], noise_floor_mel(mels[i], level, noise, start))
        assert contours[i] is f0s[i]
    assert 0.22 < _share_changed(lambda rng: noise_floored([0], mels, f0s, 0.3, noise, rng),
                                 mels[0]) < 0.38
    with pytest.raises(ValueError, match="--noise-floor must lie in"):
        TrainConfig(data="x", out="y", noise_floor=-0.1)
