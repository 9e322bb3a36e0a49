"""workbench.analysis and .cache: cached per-clip features and display-resolution maps,
checked against independent computations (brute-force rotary vectors, full matrices, a signal
of known pitch). Model runs: test_model_analysis.py."""

import math

import numpy as np
import pandas as pd
import pytest

from echo_core import rotary
from echo_core.errors import AudioError, PitchSettingsError, RotaryError
from workbench import analysis as A
from workbench.cache import LRU


# ----------------------------------------------------------------------------- helpers

def brute_similarity(angles_i: np.ndarray, angles_j: np.ndarray, weights=None) -> np.ndarray:
    """Cosine similarity of explicit [cos | sin] rotary vectors (an independent route)."""
    half = angles_i.shape[1]
    w = np.full(half, 1.0 / half) if weights is None else weights / weights.sum()
    vi = np.concatenate([np.cos(angles_i), np.sin(angles_i)], 1) * np.sqrt(np.r_[w, w])
    vj = np.concatenate([np.cos(angles_j), np.sin(angles_j)], 1) * np.sqrt(np.r_[w, w])
    return vi @ vj.T


def freqs(head_dim, theta):
    return theta ** (-np.arange(0, head_dim, 2) / head_dim)


@pytest.fixture(scope="module")
def glide():
    """A 2 s synthetic glide 110 -> 220 Hz with a silent gap: known F0."""
    samples, true_f0 = A.synthetic_samples(2.0)
    return A._register(samples, 16000, "glide"), true_f0


# ----------------------------------------------------------------------------- caches & clips

def test_lru_is_bounded_and_keeps_recent_items():
    cache = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # refreshes a
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3 and len(cache) == 2
    calls = []
    assert cache.get_or_compute("d", lambda: calls.append(1) or 4) == 4
    assert cache.get_or_compute("d", lambda: calls.append(1) or 5) == 4 and calls == [1]


def test_lru_is_bounded_by_bytes_too():
    from workbench.cache import nbytes

    mb = np.zeros(2**18, np.float32)  # 1 MiB
    assert nbytes(mb) == 2**20 and nbytes((mb, mb)) == 2**20  # shared arrays count once
    frame = pd.DataFrame({"a": np.zeros(1000)})
    assert nbytes({"t": frame}) >= 8000
    cache = LRU(100, max_bytes=3 * 2**20 + 1000)
    for i in range(5):
        cache.put(i, np.zeros(2**18, np.float32))
    assert len(cache) == 3 and cache.bytes <= 3 * 2**20 + 1000
    assert cache.get(0) is None and cache.get(4) is not None
    huge = np.zeros(2**20, np.float32)  # 4 MiB: returned, not kept
    assert cache.put("huge", huge) is huge and cache.get("huge") is None and len(cache) == 3
    cache.put(4, np.zeros(10, np.float32))  # replacing an entry releases its bytes
    assert cache.bytes < 3 * 2**20


def test_clip_content_is_a_hash_and_names_stay_per_upload(write_wav):
    samples, _ = A.synthetic_samples(0.5)
    a = A.clip_from_path(write_wav(samples, 16000, "a.wav"))
    b = A.clip_from_path(write_wav(samples, 16000, "b.wav"))  # same content, other file
    assert a.content == b.content and A.get_clip(a.key).n_frames == 1 + len(a.samples) // 128
    # another session uploading the same sound under another name never renames a's clip
    assert a.key != b.key
    assert A.get_clip(a.key).name == "a.wav" and A.get_clip(b.key).name == "b.wav"
    assert A.clip_from_path(write_wav(samples, 16000, "a.wav")).key == a.key  # same upload again
    c = A.clip_from_array(16000, samples[::-1].copy())
    assert c.content != a.content


def test_get_clip_explains_missing_clips():
    with pytest.raises(AudioError, match="no clip loaded"):
        A.get_clip(None)
    with pytest.raises(AudioError, match="load it again"):
        A.get_clip("0" * 16)


def test_examples_include_bundled_clips_and_the_synthetic_glide():
    examples = A.example_clips()
    assert A.SYNTHETIC_NAME in examples
    for name, path in examples.items():
        if path:
            assert path.endswith((".wav", ".flac", ".ogg", ".mp3"))
    assert A.load_example(A.SYNTHETIC_NAME).duration == pytest.approx(3.0)
    with pytest.raises(AudioError, match="unknown example"):
        A.load_example("no such clip")


# ----------------------------------------------------------------------------- pitch

def test_f0_of_the_known_glide(glide):
    clip, true_f0 = glide
    f0 = A.frame_f0(clip)
    assert f0.shape == (clip.n_frames,)
    truth = true_f0[np.minimum(np.arange(clip.n_frames) * 128, len(true_f0) - 1)]
    both = np.isfinite(f0) & np.isfinite(truth)
    assert both.mean() > 0.8
    np.testing.assert_allclose(f0[both], truth[both], rtol=0.03)
    gap = np.isnan(truth)
    gap_inner = gap & np.roll(gap, 5) & np.roll(gap, -5)  # away from the edges of the gap
    assert np.isnan(f0[gap_inner]).all()  # unvoiced stays NaN, never 0


def test_f0_is_cached_per_settings(glide):
    clip, _ = glide
    assert A.f0_track(clip) is A.f0_track(clip)
    other = A.praat_settings(pitch_floor=100.0)
    assert A.f0_track(clip, other) is not A.f0_track(clip)


def test_praat_settings_are_validated():
    with pytest.raises(PitchSettingsError):
        A.praat_settings(pitch_floor=300.0, pitch_ceiling=200.0)
    with pytest.raises(PitchSettingsError, match="unknown"):
        A.praat_settings(not_a_setting=1)


def test_statistics_table_and_csv(glide):
    clip, _ = glide
    track = A.f0_track(clip)
    table = A.f0_statistics_table(track)
    stats = dict(zip(table["statistic"], table["value"]))
    assert float(stats["mean"]) == pytest.approx(np.nanmean(track.hz), abs=0.05)
    assert int(stats["n voiced"]) == int(np.isfinite(track.hz).sum())
    assert A.f0_csv(track).splitlines()[0] == "time_s,f0_hz"
    assert np.isnan(A.f0_table(track)["f0_hz"]).sum() == np.isnan(track.hz).sum()


def test_mel_band_centres_match_librosa():
    import librosa

    expected = librosa.mel_frequencies(130, fmin=0.0, fmax=8000.0, htk=True)[1:-1]
    np.testing.assert_allclose(A.mel_band_hz(128), expected, rtol=1e-9)


def test_mel_display_max_pools_long_clips():
    samples, _ = A.synthetic_samples(3.0)
    clip = A._register(samples, 16000, "three seconds")
    full = A.mel(clip)
    image, times, band_hz = A.mel_display(clip, max_frames=100)
    group = math.ceil(full.shape[1] / 100)
    assert image.shape[1] <= 100 and len(times) == image.shape[1] and len(band_hz) == full.shape[0]
    np.testing.assert_allclose(image[:, 3], full[:, 3 * group:4 * group].max(axis=1))
    assert times[0] == pytest.approx((group - 1) / 2 * 0.008)


# ----------------------------------------------------------------------------- rotary

def test_static_display_map_equals_brute_force_at_the_sampled_positions():
    n, d, theta = 1300, 32, 5000.0
    pos, sim = A.similarity_display(n, d, theta, mode="static", max_size=256)
    assert len(pos) <= 256 and pos[0] == 0 and pos[-1] == n - 1
    angles = np.outer(pos, freqs(d, theta))
    np.testing.assert_allclose(sim, brute_similarity(angles, angles), atol=1e-5)
    assert sim.dtype == np.float32


def test_mean_f0_map_uses_the_voiced_mean():
    n, d = 600, 16
    f0 = np.where(np.arange(n) % 3 == 0, np.nan, 200.0)
    pos, sim = A.similarity_display(n, d, 1000.0, f0, "mean_f0", max_size=100)
    theta_eff = 1000.0 + math.log1p(200 / 700) / math.log1p(300 / 700) * 9200
    assert A.clip_theta(f0, 1000.0) == pytest.approx(theta_eff)
    angles = np.outer(pos, freqs(d, theta_eff))
    np.testing.assert_allclose(sim, brute_similarity(angles, angles), atol=1e-5)


def test_per_frame_map_equals_a_loop_over_frames():
    n, d, theta = 700, 16, 800.0
    rng = np.random.default_rng(1)
    f0 = rng.uniform(90, 300, n)
    f0[100:150] = np.nan
    pos, sim = A.similarity_display(n, d, theta, f0, "per_frame", max_size=128)
    angle = np.zeros((n, d // 2))
    for t in range(1, n):  # accumulate frame by frame; unvoiced frames advance at static theta
        prev = f0[t - 1]
        th = theta if not np.isfinite(prev) else theta + math.log1p(prev / 700) / math.log1p(300 / 700) * 9200
        angle[t] = angle[t - 1] + freqs(d, th)
    np.testing.assert_allclose(sim, brute_similarity(angle[pos], angle[pos]), atol=1e-5)


def test_pair_radius_weights_the_mean():
    n, d, theta = 300, 16, 3000.0
    radius = A.pair_radius(d, 2.0)
    assert radius[-1] > radius[0]  # positive tilt favours the slow pairs
    pos, sim = A.similarity_display(n, d, theta, None, "static", radius=radius)
    angles = np.outer(pos, freqs(d, theta))
    np.testing.assert_allclose(sim, brute_similarity(angles, angles, radius**2), atol=1e-5)
    np.testing.assert_allclose(A.pair_radius(d, 0.0), 1.0)


def test_dot_product_display_equals_the_full_matrix_sampled():
    n, d, theta = 900, 16, 2000.0
    f0 = np.linspace(100, 250, n)
    f0[400:450] = np.nan
    pos, dot = A.dot_product_display(n, d, theta, f0, max_size=128)
    rho = A.f0_position_radius(f0)
    assert rho[420] == 0.0 and rho.max() == pytest.approx(1.0)
    full = rotary.position_dot_product(n, d, theta, f0=f0, radius_per_position=rho)
    np.testing.assert_allclose(dot, full[np.ix_(pos, pos)], atol=1e-5)


def test_theta_slider_range():
    assert A.theta_from_slider(4.0) == pytest.approx(1e4)
    with pytest.raises(RotaryError):
        A.theta_from_slider(7.0)
    with pytest.raises(RotaryError):
        A.similarity_display(10, 16, 1e4, None, "sideways")


def test_sweep_maps_bands_narrow_with_low_theta():
    maps = A.sweep_maps([1e2, 1e5], [None, 300.0], n_positions=40, head_dim=32)
    assert maps.shape == (2, 2, 40, 40)
    np.testing.assert_allclose(np.diagonal(maps, axis1=2, axis2=3), 1.0, atol=1e-6)
    # a small static theta decorrelates neighbours faster than a large one
    assert maps[0, 0, 0, 1:10].mean() < maps[1, 0, 0, 1:10].mean()
    # the pitch raises the effective theta, so at theta 1e2 it widens the bands
    assert maps[0, 1, 0, 1:10].mean() > maps[0, 0, 0, 1:10].mean()


def test_distance_curves_start_at_one():
    curves = A.distance_curves([("static", 1e4, None), ("f0", 1e4, 150.0)], 50, 32)
    for _, lags, sim in curves:
        assert lags[0] == 0 and sim[0] == pytest.approx(1.0) and len(sim) == 51


# ----------------------------------------------------------------------------- pitch bias

def test_bias_display_equals_the_full_bias_sampled():
    n = 1200
    rng = np.random.default_rng(2)
    f0 = rng.uniform(80, 260, n)
    f0[rng.random(n) < 0.2] = np.nan
    pos = rotary.display_positions(n, 200)
    shown = A.bias_display(f0, 1.5, pos)
    full = rotary.pitch_bias(f0, 1.5)
    np.testing.assert_allclose(shown, full[np.ix_(pos, pos)], atol=1e-5)
    unvoiced = np.isnan(f0[pos])
    assert (shown[unvoiced] == 0).all()
    with pytest.raises(RotaryError):
        A.bias_display(f0, -1.0, pos)


def test_combined_prior_is_the_sum():
    sim, bias = np.eye(3, dtype=np.float32), np.full((3, 3), 0.5, dtype=np.float32)
    expected = [[1.5, 0.5, 0.5], [0.5, 1.5, 0.5], [0.5, 0.5, 1.5]]  # written out, not recomputed
    np.testing.assert_allclose(A.combined_prior(sim, bias), expected)
    with pytest.raises(RotaryError):
        A.combined_prior(sim, np.zeros((2, 2)))


def _first_below_brute(head_dim, theta, level, max_lag):
    """The band's half-width from the rotary vectors themselves: rotate a query at position 0
    and a key at each lag, and take the first cosine below ``level``."""
    lags = np.arange(max_lag + 1, dtype=np.float64)
    freqs = theta ** (-np.arange(0, head_dim, 2) / head_dim)
    q = np.concatenate([np.cos(0 * freqs), np.sin(0 * freqs)])
    k = np.concatenate([np.cos(np.outer(lags, freqs)), np.sin(np.outer(lags, freqs))], axis=1)
    cos = k @ q / (np.linalg.norm(k, axis=1) * np.linalg.norm(q))
    below = np.flatnonzero(cos < level)
    return float(lags[below[0]]) if below.size else float("nan")


@pytest.mark.parametrize("head_dim, theta", [(16, 50.0), (32, 2000.0), (64, 10_000.0),
                                             (128, 3e5)])
def test_band_width_is_the_first_lag_below_the_level(head_dim, theta):
    expected = _first_below_brute(head_dim, theta, A.BAND_LEVEL, 3000)
    got = A.band_width(head_dim, theta, max_lag=3000)
    assert got == expected or (np.isnan(got) and np.isnan(expected))
    assert np.isnan(A.band_width(64, 1e6, max_lag=3))  # never below within the lags searched


def test_band_widths_modulate_theta_by_each_contours_mean_f0():
    """Per label, the band width at theta_eff(theta, the contour's voiced mean F0): equal to
    the brute force at that theta; no contour keeps theta."""
    f0 = np.array([np.nan, 120.0, 180.0, np.nan, 150.0])
    thetas = [100.0, 1000.0, 10_000.0]
    out = A.band_widths(thetas, [("static", None), ("clip", f0), ("200 Hz", 200.0)], 32)
    mean = np.nanmean(f0)
    for label, hz in (("static", None), ("clip", mean), ("200 Hz", 200.0)):
        used = [t if hz is None else t + rotary.pitch_factor(hz) * rotary.THETA_SPAN
                for t in thetas]
        np.testing.assert_array_equal(out[label], [_first_below_brute(32, t, 0.5, 20_000)
                                                   for t in used])
