"""Per-head attention scores: does a head follow pitch, rotary position, or plain distance?

Computed from the attention maps that ``hooks.capture(model, depth="full")`` records (the
softmax ``weights``, (B, H, nq, nk), batch row 0). Every score is defined here once; the Learn
view quotes these docstrings.

Pairs. For encoder self-attention a *pair* is (query i, key j) with i != j and both frames
voiced (F0 finite and > 0). The diagonal is left out because it is maximal under every prior
(pitch, rotary, distance) and would inflate all of them alike. The weights are renormalised
over the voiced keys of each voiced query row (a row then sums to 1), so multiplying a row by
a positive constant changes nothing. Long clips: at most ``max_pairs`` pairs are drawn once,
deterministically (numpy generator, seed 0), and shared by every layer and head.

Scores (rank scores use Spearman's rho = Pearson correlation of average ranks; they are
invariant to any strictly increasing transform of either side):

* ``pitch_spearman``: rho(attention a_ij, pitch similarity P_ij = exp(-|z_i - z_j|)), z the
  F0 z-score over voiced frames (``rotary.pitch_bias`` with scale 1).
* ``rotary_spearman``: rho(a_ij, R_ij), R the rotary position similarity in force for that
  layer: sum_k w_k cos(phi_ik - phi_jk) with the layer's own frequencies (learned ``inv_freq``
  when the model gets no F0; theta_eff(rope.theta, mean F0) by the model's own mean rule when
  ``f0_rotary``; accumulated per-frame angles when ``theta_mode="per_frame"``), w_k = 1/(d/2)
  or r_k^2 / sum r^2 with a learned radius.
* ``distance_spearman``: rho(a_ij, -|i - j|): the plain distance-decay baseline (rank-identical
  to exp(-|i - j| / tau) for every tau, so no tau is needed).
* ``pitch_partial_spearman``: the partial rank correlation of attention with pitch similarity
  controlling for distance, (r_ap - r_ad r_pd) / sqrt((1 - r_ad^2)(1 - r_pd^2)) over the same
  pairs. Near 0: the head's "pitch following" is explained by attending nearby (F0 is smooth).
* ``mean_distance_frames``: mean over voiced query rows of sum_j a_ij |i - j| with the row's
  full softmax (all keys); ``mean_distance_ms`` = frames x the duration of one position (8 ms
  per mel frame; 16 ms when the model's spectrogram front end has ``spec_stride`` 2).
* ``entropy_nats``: mean over voiced query rows of -sum_j a_ij ln a_ij (full softmax row);
  ``entropy_normalised`` = entropy / ln(number of keys the row may attend to), 1 = uniform.
  On long clips both means use at most ``MAX_ROWS`` voiced rows, evenly spaced in time: this
  keeps the cost of the scores a small fraction of the forward pass (an n^2 pass otherwise).

Decoder self-attention: queries and keys are text tokens, which carry no F0: pitch scores
are NaN; pairs are all allowed (not masked) off-diagonal token pairs; distances are in tokens
(``mean_distance_ms`` NaN). Decoder cross-attention (text queries, audio keys): there is no
shared position axis, so rotary, distance and partial scores and distances are NaN, and
``pitch_spearman`` is rho(key marginal m_j, F0_j) over voiced keys, with m_j = mean over
queries of a_qj: "does this head listen more to high-pitched frames". Entropy is defined for
every kind. The ``note`` column says what each row's pitch score means.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from . import rotary
from .errors import CaptureError, VoicingError

FRAME_MS = 8.0  # one mel / F0 frame (hop 128 at 16 kHz)
MIN_VOICED_FRAMES = 10  # fewer voiced frames: pitch scores are not computed
MIN_VOICED_FRACTION = 0.2  # nor when less than this fraction of the frames is voiced
MAX_PAIRS = 10_000  # pairs ranked per head (Spearman SE ~0.01); bounds the cost of long clips
MAX_ROWS = 256  # query rows averaged for entropy and distance (evenly spaced) on long clips
SEED = 0  # the deterministic pair sample

ENCODER_SELF, DECODER_SELF, DECODER_CROSS = ("encoder self-attention", "decoder self-attention",
                                             "decoder cross-attention")
KIND_PATTERNS = {ENCODER_SELF: r"^encoder\.blocks\.\w+\.(\d+)\.attna$",
                 DECODER_SELF: r"^decoder\._blocks\.(\d+)\.attna$",
                 DECODER_CROSS: r"^decoder\.blocks\.\w+\.(\d+)\.attnb$"}
SCORES = ("pitch_spearman", "rotary_spearman", "distance_spearman", "pitch_partial_spearman",
          "mean_distance_frames", "mean_distance_ms", "entropy_nats", "entropy_normalised")
NOTES = {ENCODER_SELF: "pitch: rho(attention, exp(-|z_i - z_j|)) over voiced off-diagonal pairs",
         DECODER_SELF: "pitch: n/a (text tokens have no F0); distances in tokens",
         DECODER_CROSS: "pitch: rho(mean attention a key receives, key F0) over voiced keys; "
                        "rotary/distance: n/a (text and audio share no position axis)"}


# ============================================================================= rank statistics

def ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), float64."""
    from scipy.stats import rankdata

    return rankdata(np.asarray(x, dtype=np.float64))


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def spearman(x, y) -> float:
    """Spearman's rho: Pearson correlation of average ranks; NaN when either side is constant."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.size < 3:
        return float("nan")
    return _pearson(ranks(x), ranks(y))


def partial_from(r_xy: float, r_xz: float, r_yz: float) -> float:
    """Partial correlation of x and y controlling for z, from the three pairwise ones."""
    denom = np.sqrt((1 - r_xz**2) * (1 - r_yz**2))
    return float((r_xy - r_xz * r_yz) / denom) if denom > 1e-12 else float("nan")


def partial_spearman(x, y, z) -> float:
    """Partial rank correlation of x and y controlling for z (Spearman's rhos, then the
    first-order partial formula)."""
    rx, ry, rz = (ranks(v) for v in (x, y, z))
    return partial_from(_pearson(rx, ry), _pearson(rx, rz), _pearson(ry, rz))


# ============================================================================= pairs and priors

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


def sample_pairs(query_ok: np.ndarray, key_ok: np.ndarray, max_pairs: int = MAX_PAIRS,
                 allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) index arrays of off-diagonal pairs with query_ok[i], key_ok[j] (and allowed[i, j]),
    at most ``max_pairs`` of them, drawn deterministically (seed 0) when there are more."""
    ok = np.asarray(query_ok, bool)[:, None] & np.asarray(key_ok, bool)[None, :]
    np.fill_diagonal(ok, False)
    if allowed is not None:
        ok &= allowed
    i, j = np.nonzero(ok)
    if i.size > max_pairs:
        pick = np.sort(np.random.default_rng(SEED).choice(i.size, max_pairs, replace=False))
        i, j = i[pick], j[pick]
    return i, j


def f0_at_positions(f0, n: int) -> np.ndarray:
    """The frame contour mapped onto n positions by time, as the model does (position i covers
    the fraction (i + 0.5) / n of the utterance); identity when the lengths agree."""
    f0 = np.asarray(f0, dtype=np.float64)
    if f0.size == n:
        return f0
    index = np.minimum(((np.arange(n) + 0.5) * f0.size / n).astype(int), f0.size - 1)
    return f0[index]


def rotary_prior(rope_info: dict, i: np.ndarray, j: np.ndarray, f0=None) -> np.ndarray:
    """Rotary similarity R_ij of the pairs under the layer's rope (see :func:`rope_info`).

    ``rope_info``: {"head_dim", "inv_freq" (learned, used without F0), "theta", "radius",
    "f0_rotary", "per_frame", "f0_mean"}; ``f0`` the contour at the layer's positions (Hz,
    NaN/0 unvoiced) or None when the model got no F0. Without per-frame angles R depends on
    the lag alone, so it is evaluated once per distinct lag and looked up.
    """
    d = rope_info["head_dim"]
    radius = rope_info.get("radius")
    pairs = d // 2
    weights = np.full(pairs, 1.0 / pairs) if radius is None else radius**2 / np.sum(radius**2)
    lag = np.abs(np.asarray(i) - np.asarray(j))
    if f0 is None or not rope_info["f0_rotary"]:
        per_lag = np.cos(np.arange(lag.max(initial=0) + 1, dtype=np.float64)[:, None]
                         * rope_info["inv_freq"]) @ weights
        return per_lag[lag]
    f0 = np.asarray(f0, dtype=np.float64)
    if rope_info["per_frame"]:
        angles = rotary.rotation_angles_per_frame(np.where(np.isfinite(f0), f0, 0.0), d,
                                                  rope_info["theta"])  # (n, d/2)
        return np.cos(angles[i] - angles[j]) @ weights
    per_lag = rotary.similarity_at_lags(np.arange(lag.max(initial=0) + 1), d,
                                        theta_used(rope_info, f0), radius=radius)
    return per_lag[lag]


def theta_used(rope_info: dict, f0) -> float:
    """theta_eff of a mean-F0 layer by the model's rule: voiced mean ("voiced") or the mean
    with unvoiced frames as 0 ("batch", the reference)."""
    f0 = np.asarray(f0, dtype=np.float64)
    if rope_info["f0_mean"] == "voiced":
        return rotary.theta_from_f0(f0, rope_info["theta"])
    mean = float(np.mean(np.where(rotary.voiced_mask(f0), f0, 0.0)))
    return float(rotary.theta_eff(rope_info["theta"], mean))


def pitch_prior(f0, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """P_ij = exp(-|z_i - z_j|) at the pairs: ``rotary.pitch_bias(f0, 1)[i, j]`` for voiced
    pairs, without building the n x n map."""
    z = rotary.pitch_z(f0)
    return np.exp(-np.abs(z[i] - z[j]))


# ============================================================================= per-head scores

def _weights(weights) -> np.ndarray:
    """(H, nq, nk) weights as float32/float64 without a copy; a copy only to clip negatives."""
    w = np.asarray(weights)
    if w.dtype not in (np.float32, np.float64):
        w = w.astype(np.float64)
    return np.maximum(w, 0.0) if w.size and w.min() < 0 else w


def spread_rows(rows: np.ndarray, max_rows: int = MAX_ROWS) -> np.ndarray:
    """At most ``max_rows`` of the row indices, evenly spaced (all of them when fewer)."""
    rows = np.asarray(rows)
    if rows.size <= max_rows:
        return rows
    return rows[np.unique(np.linspace(0, rows.size - 1, max_rows).round().astype(int))]


def _row_normalise(w: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """(H, nq, nk) weights restricted to ``keys`` and renormalised per row (0 rows stay 0)."""
    w = np.where(keys[None, None, :], np.clip(w, 0.0, None), 0.0)
    total = w.sum(-1, keepdims=True)
    return np.divide(w, total, out=np.zeros_like(w), where=total > 0)


def entropy_and_distance(weights: np.ndarray, rows: np.ndarray, allowed: np.ndarray | None = None,
                         max_rows: int = MAX_ROWS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per head (H,): mean entropy (nats), mean normalised entropy, mean |i - j| over ``rows``
    (a bool mask or indices; at most ``max_rows`` of them, evenly spaced, for long clips).

    Each row is renormalised over its allowed keys (all keys unless ``allowed``, (nq, nk)):
    with t = sum_j a_ij, H = ln t - sum_j a_ij ln a_ij / t and D = sum_j a_ij |i - j| / t, so
    the renormalised row is never built. A row with no weight counts as 0. The normalised
    entropy averages only rows with more than one allowed key.
    """
    from scipy.special import xlogy

    w = _weights(weights)
    nk = w.shape[-1]
    idx = spread_rows(np.flatnonzero(rows) if np.asarray(rows).dtype == bool else rows, max_rows)
    w = w[:, idx]  # (H, r, nk), a copy of the rows used
    if allowed is not None and not np.all(allowed):
        keep = np.asarray(allowed, bool)[idx]
        w = w * keep[None]
        n_keys = keep.sum(-1)
    else:
        n_keys = np.full(idx.size, nk)
    total = w.sum(-1, dtype=np.float64)  # (H, r)
    has = total > 0
    safe = np.where(has, total, 1.0)
    entropy = np.where(has, np.log(safe) - xlogy(w, w).sum(-1, dtype=np.float64) / safe, 0.0)
    lag = np.abs(idx[:, None] - np.arange(nk)[None, :]).astype(w.dtype)  # (r, nk)
    distance = np.where(has, np.einsum("hrk,rk->hr", w, lag) / safe, 0.0)
    multi = n_keys > 1
    normalised = (entropy[:, multi] / np.log(n_keys[multi])).mean(-1) if multi.any() \
        else np.full(w.shape[0], np.nan)
    return entropy.mean(-1), normalised, distance.mean(-1)


def self_attention_scores(weights: np.ndarray, f0=None, rope_info: dict | None = None,
                          rope_f0=None, allowed: np.ndarray | None = None,
                          max_pairs: int = MAX_PAIRS, frame_ms: float | None = FRAME_MS
                          ) -> pd.DataFrame:
    """Scores of every head of one self-attention map ``weights`` (H, n, n), one row per head
    (see :func:`_self_rows`)."""
    return pd.DataFrame(_self_rows(weights, f0, rope_info, rope_f0, allowed, max_pairs,
                                   frame_ms))


def _self_rows(weights: np.ndarray, f0=None, rope_info: dict | None = None, rope_f0=None,
               allowed: np.ndarray | None = None, max_pairs: int = MAX_PAIRS,
               frame_ms: float | None = FRAME_MS) -> list[dict]:
    """Scores of every head of one self-attention map ``weights`` (H, n, n), one row per head.

    ``f0`` (n,) Hz at the map's positions (NaN/<=0 unvoiced) switches the pitch scores on and
    restricts pairs and rows to voiced frames (VoicingError if too little voicing); None (text
    tokens) leaves pitch scores NaN. ``rope_info`` / ``rope_f0`` give the rotary prior (NaN
    without). ``allowed`` (n, n) marks pairs a mask lets through. ``frame_ms``: duration of
    one position. Definitions: module docstring.
    """
    w = _weights(weights)
    if w.ndim != 3 or w.shape[1] != w.shape[2]:
        raise CaptureError(f"self-attention weights must be (heads, n, n), got {w.shape}")
    heads, n = w.shape[0], w.shape[1]
    f0_pos = None if f0 is None else f0_at_positions(f0, n)
    ok = np.ones(n, bool) if f0 is None else check_voicing(f0_pos)
    mask = None if allowed is None or np.all(allowed) else np.asarray(allowed, bool)
    i, j = sample_pairs(ok, ok, max_pairs, mask)
    if mask is not None:
        w = w * mask[None]
    voiced_mass = (w @ ok.astype(w.dtype)).astype(np.float64)  # (H, n): mass on voiced keys
    a = w[:, i, j] / np.where(voiced_mass > 0, voiced_mass, 1.0)[:, i]  # (H, pairs)
    distance_ranks = ranks(-np.abs(i - j).astype(np.float64))
    pitch_ranks = ranks(pitch_prior(f0_pos, i, j)) if f0 is not None else None
    rotary_ranks = ranks(rotary_prior(rope_info, i, j, rope_f0)) if rope_info is not None \
        else None
    r_pd = _pearson(pitch_ranks, distance_ranks) if pitch_ranks is not None else np.nan
    entropy, normalised, dist = entropy_and_distance(w, ok, mask)
    rows = []
    for h in range(heads):
        ra = ranks(a[h])
        r_ad = _pearson(ra, distance_ranks)
        r_ap = _pearson(ra, pitch_ranks) if pitch_ranks is not None else np.nan
        rows.append(dict(
            head=h, n_pairs=int(i.size),
            pitch_spearman=r_ap,
            rotary_spearman=_pearson(ra, rotary_ranks) if rotary_ranks is not None else np.nan,
            distance_spearman=r_ad,
            pitch_partial_spearman=(partial_from(r_ap, r_ad, r_pd) if pitch_ranks is not None
                                    else np.nan),
            mean_distance_frames=float(dist[h]),
            mean_distance_ms=float(dist[h] * frame_ms) if frame_ms else np.nan,
            entropy_nats=float(entropy[h]), entropy_normalised=float(normalised[h])))
    return rows


def cross_attention_scores(weights: np.ndarray, f0) -> pd.DataFrame:
    """Scores of every head of a cross-attention map (H, n_text, n_audio), one row per head:
    pitch_spearman = rho(key marginal, key F0) over voiced keys, entropies over all keys,
    the position scores NaN (no shared axis). Definitions: module docstring."""
    return pd.DataFrame(_cross_rows(weights, f0))


def _cross_rows(weights: np.ndarray, f0) -> list[dict]:
    w = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    if w.ndim != 3:
        raise CaptureError(f"cross-attention weights must be (heads, nq, nk), got {w.shape}")
    f0k = f0_at_positions(f0, w.shape[2])
    keys = check_voicing(f0k)
    entropy, normalised, _ = entropy_and_distance(w, np.ones(w.shape[1], bool))
    marginal = _row_normalise(w, np.ones(w.shape[2], bool)).mean(1)  # (H, nk)
    rows = [dict(head=h, n_pairs=int(keys.sum()),
                 pitch_spearman=spearman(marginal[h, keys], f0k[keys]),
                 rotary_spearman=np.nan, distance_spearman=np.nan,
                 pitch_partial_spearman=np.nan, mean_distance_frames=np.nan,
                 mean_distance_ms=np.nan, entropy_nats=float(entropy[h]),
                 entropy_normalised=float(normalised[h])) for h in range(w.shape[0])]
    return rows


# ============================================================================= whole model

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


def _kind_and_layer(path: str) -> tuple[str, int] | None:
    for kind, pattern in KIND_PATTERNS.items():
        match = re.match(pattern, path)
        if match:
            return kind, int(match.group(1))
    return None


def head_score_table(cache, model, f0, f0_given: bool = True,
                     max_pairs: int = MAX_PAIRS) -> pd.DataFrame:
    """Tidy table, one row per (attention module, head): module, kind, layer, head, n_pairs,
    the SCORES columns and a note. Uses the last recorded call of each module. ``layer`` is
    the index in the module path: encoder Residuals start at 1 (index 0 is the front end).
    Where the model adds the pitch bias to the scores (``pitch_bias=True``), the note says so:
    pitch alignment of those heads is then partly built in, not learned.

    ``f0``: the clip's frame contour (Hz, NaN unvoiced, one value per mel frame);
    ``f0_given``: whether the model received it (False: the rotary prior is the learned
    inv_freq even for f0_rotary models). Raises VoicingError for a barely voiced clip and
    CaptureError when the cache holds no attention maps.
    """
    f0 = np.asarray(f0, dtype=np.float64)
    check_voicing(f0)
    modules = dict(model.named_modules())
    paths = sorted(set(cache.attention) | {d["path"] for d in cache.dropped})
    located = [(p, _kind_and_layer(p)) for p in paths]
    located = [(p, kl) for p, kl in located if kl is not None]
    if not located:
        raise CaptureError("the cache holds no attention maps: run the forward pass inside "
                           "hooks.capture(model, depth='full')")
    rows = []  # plain dicts, one DataFrame at the end: pandas per layer cost more than numpy
    for path, (kind, layer) in located:
        calls = cache.attention.get(path)
        module = modules[path]
        if not calls:  # dropped: too large to keep
            part = [dict(head=h, n_pairs=0, **{s: np.nan for s in SCORES})
                    for h in range(module.head)]
            note = "map not kept (capture max_attention_bytes): no scores"
        else:
            call = calls[-1]
            weights = call["weights"][0].detach().float().numpy()  # (H, nq, nk)
            allowed = np.isfinite(call["scores"][0].detach().float().numpy()).all(0)  # -inf: masked
            allowed = None if allowed.all() else allowed
            info = rope_info(module)
            if kind == DECODER_CROSS:
                part = _cross_rows(weights, f0)
            elif kind == ENCODER_SELF:
                n = weights.shape[-1]
                rope_f0 = f0_at_positions(f0, n) if f0_given else None
                part = _self_rows(weights, f0, info, rope_f0, allowed, max_pairs,
                                  frame_ms=FRAME_MS * f0.size / n)
            else:  # decoder self: mean-F0 theta over the clip's frames, no pitch per token
                info["per_frame"] = False  # per-frame theta applies to audio positions only
                part = _self_rows(weights, None, info, f0 if f0_given else None, allowed,
                                  max_pairs, frame_ms=None)
            note = NOTES[kind]
            if call.get("pitch_bias_applied"):
                note += "; the model ADDS the pitch bias to these scores (partly built in)"
        rows += [dict(module=path, kind=kind, layer=layer, **r, note=note) for r in part]
    order = {ENCODER_SELF: 0, DECODER_SELF: 1, DECODER_CROSS: 2}
    rows.sort(key=lambda r: (order[r["kind"]], r["layer"], r["head"]))  # stable
    columns = ["module", "kind", "layer", "head", "n_pairs", *SCORES, "note"]
    return pd.DataFrame(rows, columns=columns)
