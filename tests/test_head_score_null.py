"""The head-score null: a head beats it only when it follows this clip's pitch, not when it
attends nearby frames of a smooth contour."""

from __future__ import annotations

import numpy as np
import pytest

from echo_core import head_score_null as N
from echo_core import head_scores as hs
from echo_core import rotary

SIZE = 160


def _softmax(scores):
    e = np.exp(scores - scores.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _scores(maps):
    return lambda contour: hs.self_attention_scores(maps, contour, max_pairs=SIZE * SIZE)


def test_null_contours_are_seeded_rolls_and_shuffles():
    f0 = np.where(np.arange(50) % 7 == 0, np.nan, 100.0 + np.arange(50.0))
    a, b = N.null_contours(f0, 6, seed=4), N.null_contours(f0, 6, seed=4)
    assert len(a) == 6 and all(np.array_equal(x, y, equal_nan=True) for x, y in zip(a, b))
    voiced = np.isfinite(f0)
    for shuffled in a[3:]:  # voicing kept, values permuted
        np.testing.assert_array_equal(np.isfinite(shuffled), voiced)
        assert sorted(shuffled[voiced]) == sorted(f0[voiced])
    for rolled in a[:3]:  # the whole contour moved by 20-80 % of the clip
        shift = next(s for s in range(50) if np.array_equal(np.roll(f0, s), rolled,
                                                            equal_nan=True))
        assert 0.2 * 50 - 1 <= shift <= 0.8 * 50 + 1


def test_pitch_following_map_beats_its_null_and_a_local_map_does_not():
    t = np.arange(SIZE)
    f0 = 120 + 100 * t / SIZE + 20 * np.sin(2 * np.pi * t / 9)  # a glide: smooth, local
    f0[60:70] = np.nan
    i, j = np.meshgrid(t, t, indexing="ij")
    maps = _softmax(np.stack([6.0 * rotary.pitch_bias(f0, 1.0), -np.abs(i - j) / 3.0]))
    observed = hs.self_attention_scores(maps, f0, max_pairs=SIZE * SIZE)
    table = N.with_null(observed, _scores(maps), f0, k=10, seed=0).set_index("head")
    assert (table.k_null == 10).all()
    pitch, local = table.loc[0], table.loc[1]
    assert pitch.follows_pitch and pitch.pitch_partial_spearman_p == pytest.approx(1 / 11)
    assert pitch.pitch_spearman_p == pytest.approx(1 / 11)
    # the local head correlates with the smooth contour (raw rho is high) but not beyond
    # what rolled contours give; its partial score stays within the null
    assert local.pitch_spearman > 0.3 and not local.follows_pitch
    assert local.pitch_spearman_p > 0.05
    assert abs(local.pitch_partial_spearman) <= local.pitch_partial_spearman_null_p95


def test_null_columns_match_a_direct_computation():
    t = np.arange(SIZE)
    f0 = 140 + 20 * np.sin(2 * np.pi * t / 23)
    maps = _softmax(np.random.default_rng(2).normal(size=(2, SIZE, SIZE)))
    table = N.with_null(hs.self_attention_scores(maps, f0, max_pairs=SIZE * SIZE),
                        _scores(maps), f0, k=4, seed=1)
    nulls = np.array([_scores(maps)(c).pitch_spearman.to_numpy()
                      for c in N.null_contours(f0, 4, 1)])  # (k, heads)
    np.testing.assert_allclose(table.pitch_spearman_null_mean, nulls.mean(0))
    np.testing.assert_allclose(table.pitch_spearman_null_p95,
                               np.percentile(np.abs(nulls), 95, axis=0))
    count = (np.abs(nulls) >= np.abs(table.pitch_spearman.to_numpy())).sum(0)
    np.testing.assert_allclose(table.pitch_spearman_p, (1 + count) / 5)
