"""The pairs the head scores rank, and the priors they rank attention against.

Definitions (which pairs, which rows, which prior): ``head_scores``' module docstring. Here:
the voicing check, the deterministic pair sample shared by every layer of one map shape, the
pitch, rotary and distance priors at those pairs (never an n x n map), and what a prior needs
to know about a module (:func:`rope_info`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import rotary
from .errors import VoicingError
from .rank_stats import pearson, ranks, table_ranks

MIN_VOICED_FRAMES = 10  # fewer voiced frames: pitch scores are not computed
MIN_VOICED_FRACTION = 0.2  # nor when less than this fraction of the frames is voiced
MAX_PAIRS = 5_000  # pairs ranked per head (Spearman SE ~0.015); bounds the cost of long clips
MAX_ROWS = 128  # query positions read for entropy and distance (evenly spaced) on long clips
SEED = 0  # the deterministic pair sample


def check_voicing(f0) -> np.ndarray:
    """The voiced mask of a frame contour (Hz, NaN or <= 0 unvoiced), or VoicingError."""
    voiced = rotary.voiced_mask(f0)
    n, k = voiced.size, int(voiced.sum())
    if k < MIN_VOICED_FRAMES or k < MIN_VOICED_FRACTION * n:
        raise VoicingError(
            f"the clip has {k} voiced frames out of {n} ({k / max(n, 1):.0%}); pitch scores "
            f"need at least {MIN_VOICED_FRAMES} voiced frames and {MIN_VOICED_FRACTION:.0%} "
            "voicing: pick a clip with more voiced speech or lower the Praat voicing threshold")
    return voiced


def row_step(n_rows: int, max_rows: int = MAX_ROWS) -> int:
    """Entropy and distance average the scored rows among every ``step``-th query position:
    at most ``max_rows`` rows, evenly spaced in time, read through a strided view of the map
    (no copy)."""
    return max(1, -(-n_rows // max_rows))


def sample_pairs(ok: np.ndarray, max_pairs: int = MAX_PAIRS, allowed: np.ndarray | None = None,
                 step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) index arrays of the off-diagonal pairs of scored positions (ok[i], ok[j], i a
    multiple of ``step``, and allowed[i, j] when given), in row-major order; at most
    ``max_pairs`` of them, drawn deterministically (seed 0) when there are more. Without a
    mask the pairs are numbered arithmetically (each query row holds the m - 1 other scored
    keys), so the n x n grid is never built."""
    ok = np.asarray(ok, bool)
    queries = ok & (np.arange(ok.size) % step == 0)
    if allowed is None:
        keys, rows = np.flatnonzero(ok), np.flatnonzero(queries)
        per_row = max(keys.size - 1, 1)
        total = rows.size * (keys.size - 1) if keys.size else 0
        flat = np.arange(total) if total <= max_pairs else _draw(total, max_pairs)
        a, b = np.divmod(flat, per_row)
        i = rows[a]
        return i, keys[b + (b >= np.searchsorted(keys, i))]  # skip the row's own key
    grid = queries[:, None] & ok[None, :] & np.asarray(allowed, bool)
    np.fill_diagonal(grid, False)
    i, j = np.nonzero(grid)
    if i.size > max_pairs:
        pick = _draw(i.size, max_pairs)
        i, j = i[pick], j[pick]
    return i, j


def _draw(total: int, k: int) -> np.ndarray:
    """k of range(total) without replacement, sorted; the same for every call (seed 0)."""
    return np.sort(np.random.default_rng(SEED).choice(total, k, replace=False, shuffle=False))


def _rotary_per_lag(rope_info: dict, max_lag: int, f0) -> np.ndarray | None:
    """R as a function of the lag 0..max_lag, or None when per-frame angles make R depend on
    the pair itself."""
    d, radius = rope_info["head_dim"], rope_info.get("radius")
    lags = np.arange(max_lag + 1, dtype=np.float64)
    if f0 is None or not rope_info["f0_rotary"]:
        return np.cos(lags[:, None] * rope_info["inv_freq"]) @ rotary.pair_weights(d, radius)
    if rope_info["per_frame"]:
        return None
    return rotary.similarity_at_lags(lags, d, theta_used(rope_info, f0), radius=radius)


def _per_frame_prior(rope_info: dict, i: np.ndarray, j: np.ndarray, f0) -> np.ndarray:
    f0 = np.asarray(f0, dtype=np.float64)
    d = rope_info["head_dim"]
    angles = rotary.rotation_angles_per_frame(np.where(np.isfinite(f0), f0, 0.0), d,
                                              rope_info["theta"])  # (n, d/2)
    return np.cos(angles[i] - angles[j]) @ rotary.pair_weights(d, rope_info.get("radius"))


def rotary_prior(rope_info: dict, i: np.ndarray, j: np.ndarray, f0=None) -> np.ndarray:
    """Rotary similarity R_ij of the pairs under the layer's rope (see :func:`rope_info`).

    ``rope_info``: {"head_dim", "inv_freq" (learned, used without F0), "theta", "radius",
    "f0_rotary", "per_frame", "f0_mean"}; ``f0`` the contour at the layer's positions (Hz,
    NaN/0 unvoiced) or None when the model got no F0. Without per-frame angles R depends on
    the lag alone, so it is evaluated once per distinct lag and looked up.
    """
    lag = np.abs(np.asarray(i) - np.asarray(j))
    table = _rotary_per_lag(rope_info, int(lag.max(initial=0)), f0)
    return _per_frame_prior(rope_info, i, j, f0) if table is None else table[lag]


def rotary_prior_ranks(rope_info: dict, i: np.ndarray, j: np.ndarray, f0=None) -> np.ndarray:
    """``ranks(rotary_prior(...))``, ranked on the per-lag table when R depends on the lag
    alone (no sort of the pairs)."""
    lag = np.abs(np.asarray(i) - np.asarray(j))
    table = _rotary_per_lag(rope_info, int(lag.max(initial=0)), f0)
    return ranks(_per_frame_prior(rope_info, i, j, f0)) if table is None \
        else table_ranks(table, lag)


def theta_used(rope_info: dict, f0) -> float:
    """theta_eff of a mean-F0 layer by the model's own mean rule (rotary.mean_f0)."""
    return rotary.theta_from_f0(f0, rope_info["theta"], rope_info["f0_mean"])


def pitch_prior(f0, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """P_ij = exp(-|z_i - z_j|) at the pairs: ``rotary.pitch_bias(f0, 1)[i, j]`` for voiced
    pairs, without building the n x n map."""
    z = rotary.pitch_z(f0)
    return np.exp(-np.abs(z[i] - z[j]))


@dataclass(frozen=True)
class PairSample:
    """The pairs scored in every self-attention map of one shape, and what the layers of that
    shape share (computed once per clip): the scored rows, the mask, the distance and pitch
    prior ranks and their correlation."""

    n: int
    i: np.ndarray
    j: np.ndarray
    rows: np.ndarray  # (n,) bool: positions scored (voiced frames; every token)
    step: int  # query rows are the scored positions among every step-th (see row_step)
    mask: np.ndarray | None  # (n, n) pairs a mask lets through; None when all are
    distance_ranks: np.ndarray
    pitch_ranks: np.ndarray | None  # None: no F0 (text tokens)
    r_pitch_distance: float


def pair_sample(n: int, f0=None, allowed: np.ndarray | None = None,
                max_pairs: int = MAX_PAIRS) -> PairSample:
    """The :class:`PairSample` of an (n, n) self-attention map. ``f0`` (Hz at the frames, NaN
    unvoiced; mapped onto the n positions by time) restricts rows and keys to voiced frames
    and switches the pitch prior on (VoicingError if too little voicing); None scores every
    position. ``allowed`` (n, n) marks the pairs a mask lets through. Query rows are those
    entropy and distance read (:func:`row_step`), so one strided pass serves both."""
    f0_pos = None if f0 is None else rotary.f0_at_positions(f0, n)
    rows = np.ones(n, bool) if f0 is None else check_voicing(f0_pos)
    mask = None if allowed is None or np.all(allowed) else np.asarray(allowed, bool)
    step = row_step(n)
    i, j = sample_pairs(rows, max_pairs, mask, step)
    lag = np.abs(i - j)
    distance_ranks = table_ranks(-np.arange(lag.max(initial=0) + 1.0), lag)
    pitch_ranks = None if f0 is None else ranks(pitch_prior(f0_pos, i, j))
    r_pd = np.nan if pitch_ranks is None or i.size < 3 else pearson(pitch_ranks, distance_ranks)
    return PairSample(n, i, j, rows, step, mask, distance_ranks, pitch_ranks, r_pd)


def rope_info(module) -> dict:
    """What :func:`rotary_prior` needs from a MultiheadA: its rope's learned values and the
    model switches that decide which frequencies are in force."""
    rope = module.rope
    radius = getattr(rope, "radius", None)
    return dict(head_dim=int(module.head_dim),
                inv_freq=rope.inv_freq.detach().double().numpy(),
                theta=float(rope.theta.detach()),
                radius=None if radius is None else radius.detach().double().numpy(),
                f0_rotary=bool(module.f0_rotary), per_frame=bool(module.per_frame),
                f0_mean=getattr(rope, "f0_mean", "batch"))
