"""A null for the per-head pitch scores: does a head follow *this clip's* pitch, or would any
contour of the same kind score as well?

F0 is smooth, and a head that attends nearby frames correlates with any smooth contour. So each
pitch score is recomputed, on the same captured attention maps, against ``k`` null contours of
the same clip, half of them the contour rolled in time by a seeded random fraction (smoothness
and voicing runs kept, alignment with the speech lost) and half the voiced values shuffled
among the voiced frames (level and distribution kept, order lost). For each head and pitch score
the table gets:

* ``<score>_null_mean``: the mean of the k null scores;
* ``<score>_null_p95``: the 95th percentile of |null score|;
* ``<score>_p``: the exceedance, (1 + #{|null| >= |observed|}) / (k + 1), the share of nulls
  (counting the observation itself) that do at least as well: small means the observed score
  is rare under the null;
* ``follows_pitch``: |pitch_partial_spearman| (encoder self-attention; ``pitch_spearman`` for
  cross-attention) above its null's 95th percentile. Only such heads may be said to follow pitch.

Scores per null reuse ``head_scores.head_score_table`` on the same cache (no extra forward).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from .errors import VoicingError
from .head_scores import head_score_table
from .pitch_conditions import rolled, shuffled

PITCH_SCORES = ("pitch_spearman", "pitch_partial_spearman")
NULL_CONTOURS = 10  # k: half rolled, half shuffled
NULL_SEED = 0
MIN_ROLL = 0.2  # rolls are drawn from [MIN_ROLL, 1 - MIN_ROLL] of the clip: far from aligned


def null_contours(f0, k: int = NULL_CONTOURS, seed: int = NULL_SEED) -> list[np.ndarray]:
    """``k`` seeded null contours of ``f0`` (Hz, NaN unvoiced): ceil(k/2) rolled, the rest
    shuffled."""
    rng = np.random.default_rng(seed)
    n_rolled = (k + 1) // 2
    fractions = rng.uniform(MIN_ROLL, 1.0 - MIN_ROLL, n_rolled)
    seeds = rng.integers(0, 2**31, k - n_rolled)
    return [rolled(f0, f) for f in fractions] + [shuffled(f0, s) for s in seeds]


def head_scores_with_null(cache, model, f0, f0_given: bool = True, k: int = NULL_CONTOURS,
                          seed: int = NULL_SEED, table: pd.DataFrame | None = None
                          ) -> pd.DataFrame:
    """``head_score_table`` (or the given ``table`` of the same cache) with the null columns
    described in the module docstring, scored on the same cache (no extra forward)."""
    observed = table if table is not None else head_score_table(cache, model, f0, f0_given)
    return with_null(observed, lambda contour: head_score_table(cache, model, contour, f0_given),
                     f0, k, seed)


def with_null(observed: pd.DataFrame, score: Callable[[np.ndarray], pd.DataFrame], f0,
              k: int = NULL_CONTOURS, seed: int = NULL_SEED) -> pd.DataFrame:
    """``observed`` (a head-score table) with the null columns, ``score(contour)`` giving the
    same table for a null contour. Rows are matched by module and head (head alone for a
    single map). A null contour too barely voiced to score (a roll can move voicing) is left
    out; ``k_null`` counts the nulls actually scored."""
    keys = [c for c in ("module", "head") if c in observed.columns]
    nulls = []
    for contour in null_contours(f0, k, seed):
        try:
            nulls.append(score(contour).set_index(keys)[list(PITCH_SCORES)])
        except VoicingError:
            continue
    out = observed.copy()
    out["k_null"] = len(nulls)
    index = pd.MultiIndex.from_frame(out[keys]) if len(keys) > 1 else pd.Index(out[keys[0]])
    for name in PITCH_SCORES:
        obs = out[name].to_numpy(dtype=np.float64)
        null = np.stack([n[name].reindex(index).to_numpy(dtype=np.float64) for n in nulls],
                        axis=1) if nulls else np.full((len(out), 0), np.nan)  # (rows, k)
        with np.errstate(invalid="ignore"):
            count = (np.abs(null) >= np.abs(obs)[:, None]).sum(axis=1)
        has = np.isfinite(obs) & np.isfinite(null).all(axis=1) & (null.shape[1] > 0)
        out[f"{name}_null_mean"] = np.where(has, _nanmean(null), np.nan)
        out[f"{name}_null_p95"] = np.where(has, _abs_p95(null), np.nan)
        out[f"{name}_p"] = np.where(has, (1 + count) / (null.shape[1] + 1), np.nan)
    partial = out["pitch_partial_spearman"].to_numpy(dtype=np.float64)
    use_raw = ~np.isfinite(partial)  # cross-attention has no partial score
    value = np.where(use_raw, out["pitch_spearman"], partial)
    p95 = np.where(use_raw, out["pitch_spearman_null_p95"], out["pitch_partial_spearman_null_p95"])
    with np.errstate(invalid="ignore"):
        out["follows_pitch"] = np.isfinite(value) & np.isfinite(p95) & (np.abs(value) > p95)
    return out


def _nanmean(null: np.ndarray) -> np.ndarray:
    return null.mean(axis=1) if null.shape[1] else np.full(null.shape[0], np.nan)


def _abs_p95(null: np.ndarray) -> np.ndarray:
    return np.percentile(np.abs(null), 95, axis=1) if null.shape[1] else \
        np.full(null.shape[0], np.nan)
