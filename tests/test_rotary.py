"""echo_core.rotary: every formula against brute force (explicit vectors, loops, arithmetic)."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
import torch

from echo_core import rotary as R
from echo_core.errors import RotaryError


def rotary_vectors(angles, radius=None):
    """(n, d) vectors [r cos a | r sin a], built explicitly."""
    r = np.ones(angles.shape[1]) if radius is None else np.asarray(radius, float)
    return np.concatenate([r * np.cos(angles), r * np.sin(angles)], axis=1)


def cosine_matrix(v):
    """Explicit n x n x d cosine similarity."""
    n = len(v)
    out = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            out[i, j] = v[i] @ v[j] / (np.linalg.norm(v[i]) * np.linalg.norm(v[j]))
    return out


def static_angles(n, head_dim, theta):
    freqs = [1.0 / theta ** (2 * k / head_dim) for k in range(head_dim // 2)]
    return np.array([[i * f for f in freqs] for i in range(n)])


def hand_theta(theta, mean_f0):
    return theta + math.log(1 + mean_f0 / 700) / math.log(1 + 300 / 700) * 9200


# ----------------------------------------------------------------------------- scalar helpers


def test_theta_from_f0_by_hand():
    assert R.theta_from_f0([np.nan, 0.0, 100.0, 200.0], 10000.0) == pytest.approx(
        hand_theta(10000.0, 150.0), rel=1e-12)
    assert R.theta_from_f0(300.0, 5000.0) == pytest.approx(5000.0 + 9200.0)
    assert R.theta_from_f0([0.0, np.nan], 7000.0) == 7000.0  # nothing voiced: static theta


def test_inv_freq_numpy_and_torch_agree_and_carry_gradient():
    theta = torch.tensor(12345.0, dtype=torch.float64, requires_grad=True)
    freqs = R.inv_freq(8, theta)
    np.testing.assert_allclose(freqs.detach().numpy(), R.inv_freq(8, 12345.0), rtol=1e-12)
    np.testing.assert_allclose(R.inv_freq(8, 12345.0), [12345.0 ** (-k / 8) for k in (0, 2, 4, 6)])
    freqs.sum().backward()
    assert theta.grad is not None and theta.grad != 0


# ----------------------------------------------------------------------------- similarity


@pytest.mark.parametrize("theta, f0", [(10000.0, None), (10000.0, 120.0), (600.0, [0, 90, 110])])
def test_position_similarity_vs_explicit_cosines(theta, f0):
    n, d = 12, 16
    voiced = [x for x in np.atleast_1d(f0 or []) if x > 0]
    theta_used = theta if f0 is None else hand_theta(theta, np.mean(voiced))
    want = cosine_matrix(rotary_vectors(static_angles(n, d, theta_used)))
    got = R.position_similarity(n, d, theta, f0=f0)
    assert got.shape == (n, n) and got.dtype == np.float64
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_position_similarity_with_pair_radius():
    n, d = 10, 12
    radius = np.linspace(0.2, 2.0, d // 2)
    want = cosine_matrix(rotary_vectors(static_angles(n, d, 10000.0), radius))
    np.testing.assert_allclose(R.position_similarity(n, d, radius=radius), want, atol=1e-12)


def test_similarity_vs_distance_is_the_first_row():
    lags, sim = R.similarity_vs_distance(20, 32, theta=5000.0, f0=[150.0, 0.0])
    np.testing.assert_array_equal(lags, np.arange(21))
    np.testing.assert_allclose(sim, R.position_similarity(21, 32, 5000.0, f0=150.0)[0], atol=1e-14)


def test_per_frame_angles_vs_explicit_loop():
    f0 = np.array([np.nan, 100.0, 100.0, 0.0, 250.0, 180.0, np.nan, 90.0])
    d, theta = 10, 10000.0
    angles = np.zeros((f0.size, d // 2))
    for t in range(1, f0.size):
        prev = f0[t - 1]
        theta_t = hand_theta(theta, prev) if np.isfinite(prev) and prev > 0 else theta
        for k in range(d // 2):
            angles[t, k] = angles[t - 1, k] + theta_t ** (-2 * k / d)
    np.testing.assert_allclose(R.rotation_angles_per_frame(f0, d, theta), angles, rtol=1e-13)
    np.testing.assert_allclose(
        R.position_similarity_per_frame(f0, d, theta), cosine_matrix(rotary_vectors(angles)),
        atol=1e-12)


def test_per_frame_with_constant_pitch_is_the_mean_f0_rotary():
    f0 = np.full(40, 140.0)
    np.testing.assert_allclose(
        R.position_similarity_per_frame(f0, 24), R.position_similarity(40, 24, f0=140.0),
        atol=1e-12)
    unvoiced = np.zeros(40)
    np.testing.assert_allclose(
        R.position_similarity_per_frame(unvoiced, 24), R.position_similarity(40, 24), atol=1e-12)


def test_per_frame_with_radius():
    f0 = np.array([100.0, 200.0, np.nan, 150.0, 120.0])
    radius = np.array([1.0, 0.5, 2.0])
    want = cosine_matrix(rotary_vectors(R.rotation_angles_per_frame(f0, 6), radius))
    got = R.position_similarity_per_frame(f0, 6, radius=radius)
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_per_frame_breaks_toeplitz():
    f0 = np.linspace(100, 300, 30)
    sim = R.position_similarity_per_frame(f0, 16)
    assert not np.allclose(sim[0, 1], sim[20, 21])  # same lag, different similarity


@pytest.mark.parametrize("per_frame", [False, True])
def test_display_similarity_equals_full_matrix_at_samples(per_frame):
    n, d = 1000, 32
    f0 = 150 + 60 * np.sin(np.arange(n) / 40.0)
    f0[::7] = np.nan
    positions, sim = R.display_similarity(n, d, 8000.0, f0=f0, max_size=64, per_frame=per_frame)
    full = (R.position_similarity_per_frame(f0, d, 8000.0) if per_frame
            else R.position_similarity(n, d, 8000.0, f0=f0))
    assert len(positions) == 64 and positions[0] == 0 and positions[-1] == n - 1
    assert np.all(np.diff(positions) > 0)
    np.testing.assert_allclose(sim, full[np.ix_(positions, positions)], atol=1e-10)


def test_display_similarity_small_n_is_the_full_matrix():
    positions, sim = R.display_similarity(50, 16, 10000.0, max_size=512)
    np.testing.assert_array_equal(positions, np.arange(50))
    np.testing.assert_allclose(sim, R.position_similarity(50, 16), atol=1e-14)


def test_display_similarity_huge_n_uses_sampled_lags():
    n = 200_000  # past the lag-table limit: unique sampled lags only
    positions, sim = R.display_similarity(n, 16, 10000.0, max_size=40)
    lags = np.abs(positions[:, None] - positions[None, :])
    np.testing.assert_allclose(sim, R.similarity_at_lags(lags, 16, 10000.0), atol=1e-12)


def test_display_similarity_of_a_30_second_clip_is_display_sized():
    """A 30 s clip (3750 frames) is drawn on at most 512 positions a side (its speed is measured
    in benchmarks/bench_similarity.py, not here)."""
    f0 = 120 + 30 * np.sin(np.arange(3750) / 50.0)
    for per_frame in (False, True):
        positions, sim = R.display_similarity(3750, 64, 10000.0, f0=f0, per_frame=per_frame)
        assert sim.shape == (512, 512) and positions.shape == (512,)
        assert positions[0] == 0 and positions[-1] <= 3749 and np.all(np.diff(positions) > 0)


def test_position_dot_product_shows_what_cosine_hides():
    n, d = 9, 8
    rho = np.linspace(0.5, 2.0, n)  # e.g. a radius derived from F0
    radius = np.array([1.0, 2.0, 0.5, 1.5])
    angles = static_angles(n, d, 10000.0)
    vectors = rotary_vectors(angles, radius) * rho[:, None]
    np.testing.assert_allclose(
        R.position_dot_product(n, d, radius=radius, radius_per_position=rho),
        vectors @ vectors.T / (d // 2), atol=1e-12)
    # The cosine of the same vectors does not see rho at all:
    np.testing.assert_allclose(cosine_matrix(vectors), R.position_similarity(n, d, radius=radius),
                               atol=1e-12)
    np.testing.assert_allclose(R.position_dot_product(n, d), R.position_similarity(n, d),
                               atol=1e-14)


# ----------------------------------------------------------------------------- pitch bias


def pitch_bias_loop(f0, scale):
    voiced = [i for i, x in enumerate(f0) if np.isfinite(x) and x > 0]
    values = [f0[i] for i in voiced]
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    out = np.zeros((len(f0), len(f0)))
    for i in voiced:
        for j in voiced:
            zi, zj = (f0[i] - mean) / (std + 1e-8), (f0[j] - mean) / (std + 1e-8)
            out[i, j] = math.exp(-abs(zi - zj) * scale)
    return out


F0_CONTOUR = np.array([0.0, 110.0, 130.0, np.nan, 180.0, 95.0, 0.0, 240.0, 150.0])


@pytest.mark.parametrize("scale", [1.0, 0.3, 2.5])
def test_pitch_bias_vs_double_loop(scale):
    got = R.pitch_bias(F0_CONTOUR, scale)
    np.testing.assert_allclose(got, pitch_bias_loop(F0_CONTOUR, scale), rtol=1e-12, atol=0)
    assert np.isfinite(got).all()


def test_pitch_bias_edge_cases():
    assert not R.pitch_bias(np.array([0.0, np.nan, 0.0])).any()  # nothing voiced: no boost
    one = R.pitch_bias(np.array([0.0, 120.0, 0.0]))
    np.testing.assert_array_equal(one, [[0, 0, 0], [0, 1, 0], [0, 0, 0]])
    batch = np.stack([F0_CONTOUR, F0_CONTOUR[::-1]])
    got = R.pitch_bias(batch, 0.7)
    assert got.shape == (2, 9, 9)
    np.testing.assert_allclose(got[1], pitch_bias_loop(F0_CONTOUR[::-1], 0.7), rtol=1e-12)


def test_pitch_bias_torch_matches_numpy_and_trains_scale():
    f0 = torch.tensor(np.nan_to_num(F0_CONTOUR), dtype=torch.float32)  # model convention: 0
    scale = torch.nn.Parameter(torch.tensor(0.8))
    bias = R.pitch_bias(f0, scale)
    assert isinstance(bias, torch.Tensor) and bias.shape == (9, 9) and bias.dtype == torch.float32
    np.testing.assert_allclose(bias.detach().numpy(), R.pitch_bias(F0_CONTOUR, 0.8), rtol=1e-5,
                               atol=1e-6)
    bias.sum().backward()
    # d/ds sum exp(-|dz| s) = -sum |dz| exp(-|dz| s) over voiced pairs, by hand:
    f = F0_CONTOUR[np.isfinite(F0_CONTOUR) & (F0_CONTOUR > 0)]
    z = (f - f.mean()) / (f.std(ddof=1) + 1e-8)
    dz = np.abs(z[:, None] - z[None, :])
    assert scale.grad.item() == pytest.approx(-(dz * np.exp(-dz * 0.8)).sum(), rel=1e-4)


def test_pitch_bias_torch_nan_input_and_batch():
    f0 = torch.tensor([[np.nan, 100.0, 120.0, 0.0], [150.0, 0.0, 160.0, 170.0]],
                      dtype=torch.float64)
    scale = torch.nn.Parameter(torch.tensor(1.0, dtype=torch.float64))
    bias = R.pitch_bias(f0, scale)
    np.testing.assert_allclose(bias.detach().numpy(), R.pitch_bias(f0.numpy()), rtol=1e-12)
    bias.sum().backward()
    assert torch.isfinite(scale.grad)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "call, match",
    [(lambda: R.position_similarity(0, 8), "n_positions"),
     (lambda: R.position_similarity(2.5, 8), "n_positions"),
     (lambda: R.position_similarity(R.MAX_FULL_POSITIONS + 1, 8), "n_positions"),
     (lambda: R.position_similarity(5, 7), "head_dim"),
     (lambda: R.position_similarity(5, 8, theta=1.0), "theta"),
     (lambda: R.position_similarity(5, 8, radius=[1.0, 1.0]), "radius"),
     (lambda: R.position_similarity(5, 8, radius=[1.0, np.nan, 1.0, 1.0]), "radius"),
     (lambda: R.position_similarity(5, 8, radius=np.zeros(4)), "radius"),
     (lambda: R.similarity_vs_distance(-1, 8), "max_lag"),
     (lambda: R.position_similarity_per_frame(np.zeros((2, 3)), 8), "f0"),
     (lambda: R.display_similarity(10, 8, f0=np.ones(9), per_frame=True), "one F0 value"),
     (lambda: R.display_similarity(10, 8, max_size=0), "max_size"),
     (lambda: R.position_dot_product(3, 8, radius_per_position=[1.0, 2.0]), "radius_per_position"),
     (lambda: R.pitch_bias(np.zeros(0)), "f0"),
     (lambda: R.pitch_bias(np.ones(3), float("nan")), "scale")],
)
def test_bad_arguments_raise_rotary_error(call, match):
    with pytest.raises(RotaryError, match=match):
        call()


def test_a_learned_radius_may_be_negative_only_its_square_weights():
    """A learned radius can cross zero in training; r_k^2 / sum r^2 is what weights the pairs,
    so a sign flip changes nothing (the model and the head-score prior accept it alike)."""
    r = np.array([1.0, -2.0, 0.5, 0.0])
    np.testing.assert_allclose(R.pair_weights(8, r), np.array([1.0, 4.0, 0.25, 0.0]) / 5.25)
    np.testing.assert_allclose(R.position_similarity(6, 8, radius=r),
                               R.position_similarity(6, 8, radius=np.abs(r)), atol=1e-15)
