"""Rank statistics (echo_core.rank_stats) against scipy: average ranks with and without ties,
ranks of table look-ups, batched Pearson, Spearman and the partial rank correlation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr, rankdata, spearmanr

from echo_core import rank_stats as rs


def test_ranks_match_scipy_with_and_without_ties():
    rng = np.random.default_rng(0)
    continuous = rng.normal(size=(3, 500))
    tied = rng.integers(0, 12, size=(2, 500)).astype(np.float32)
    for rows in (continuous, tied):
        got = rs.ranks(rows)
        assert got.dtype == np.float64 and got.shape == rows.shape
        for row, expected in zip(got, rows):
            assert np.array_equal(row, rankdata(expected))
    assert np.array_equal(rs.ranks([3, 1, 2]), [3.0, 1.0, 2.0])
    signed = np.array([0.5, -0.0, -2.0, 0.0, 1e-30, -1e-30, np.inf, -np.inf, 0.5], np.float32)
    assert np.array_equal(rs.ranks(signed), rankdata(signed))  # float32 integer-key path
    columns = np.asfortranarray(rng.random((50, 3)).astype(np.float32)).T  # not C-contiguous
    assert np.array_equal(rs.ranks(columns), [rankdata(c) for c in columns])
    with_nan = continuous.copy()
    with_nan[1, 7] = np.nan
    got = rs.ranks(with_nan)
    assert np.isnan(got[1]).all() and np.array_equal(got[0], rankdata(continuous[0]))


def test_table_ranks_equal_ranking_the_looked_up_values():
    rng = np.random.default_rng(1)
    table = np.round(rng.normal(size=60), 1)  # repeated values: ties across entries
    index = rng.integers(0, 60, size=3000)
    index[index == 17] = 18  # an entry never looked up
    assert np.array_equal(rs.table_ranks(table, index), rankdata(table[index]))
    lag_decay = -np.arange(40.0)
    lags = rng.integers(0, 40, size=2000)
    assert np.array_equal(rs.table_ranks(lag_decay, lags), rankdata(-lags))


def test_pearson_spearman_and_partial_against_scipy():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(4, 300))
    b = a[0] + rng.normal(size=300)
    got = rs.pearson(a, b)
    assert np.allclose(got, [pearsonr(row, b)[0] for row in a], atol=1e-12)
    assert np.isnan(rs.pearson(np.ones((1, 300)), b)).all()
    priors = np.stack([b, -b, rng.normal(size=300)])
    assert np.allclose(rs.pearson(a, priors), [[pearsonr(row, p)[0] for p in priors] for row in a],
                       atol=1e-12)
    x, y, z = rng.normal(size=(3, 400))
    y = y + x
    assert rs.spearman(x, y) == pytest.approx(spearmanr(x, y)[0], abs=1e-12)
    assert np.isnan(rs.spearman([1.0, 2.0], [2.0, 1.0]))
    # Partial rho = correlation of the rank residuals after regressing out z's ranks.
    rx, ry, rz = (rankdata(v) for v in (x, y, z))
    design = np.column_stack([np.ones_like(rz), rz])
    res = [r - design @ np.linalg.lstsq(design, r, rcond=None)[0] for r in (rx, ry)]
    assert rs.partial_spearman(x, y, z) == pytest.approx(np.corrcoef(*res)[0, 1], abs=1e-12)
    assert np.isnan(rs.partial_from(0.5, 1.0, 0.3))
