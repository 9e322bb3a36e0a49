"""Per-head attention scores: does a head follow pitch, rotary position, or plain distance?

Computed from the attention maps that ``hooks.capture(model, depth="full")`` records (the
softmax ``weights``, (B, H, nq, nk), batch row 0). Every score is defined here once; the Learn
view quotes these docstrings.

Pairs. For encoder self-attention a *pair* is (query i, key j) with i != j and both frames
voiced (F0 finite and > 0). The diagonal is left out because it is maximal under every prior
(pitch, rotary, distance) and would inflate all of them alike. The weights are renormalised
over the voiced keys of each voiced query row (a row then sums to 1), so multiplying a row by
a positive constant changes nothing.

Long maps (the cost of the scores must stay a small fraction of the forward pass, which is
an n^2 pass itself): the query rows are the voiced positions among every s-th one, s =
ceil(n / ``MAX_ROWS``), evenly spaced in time (s = 1 up to ``MAX_ROWS`` positions); and at
most ``MAX_PAIRS`` pairs are drawn once, deterministically (numpy generator, seed 0), and
shared by every layer and head (the constants, pairs and priors live in ``attention_priors``).
On the shipped models and 10 s of speech (626 positions, 5000 of 95790 pairs) this moves the
rank scores by 0.012-0.017 rms (0.04 at most) and entropy and distance by 1.3-1.6 % rms (6 %
at most) from their values over every voiced row and pair.

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
* ``mean_distance_frames``: mean over the query rows of sum_j a_ij |i - j| with the row's
  full softmax (all keys); ``mean_distance_ms`` = frames x the duration of one position (8 ms
  per mel frame; 16 ms when the model's spectrogram front end has ``spec_stride`` 2).
* ``entropy_nats``: mean over the query rows of -sum_j a_ij ln a_ij (full softmax row);
  ``entropy_normalised`` = entropy / ln(number of keys the row may attend to), 1 = uniform.

Decoder self-attention: queries and keys are text tokens, which carry no F0: pitch scores
are NaN; pairs are all allowed (not masked) off-diagonal token pairs; distances are in tokens
(``mean_distance_ms`` NaN). Decoder cross-attention (text queries, audio keys): there is no
shared position axis, so rotary, distance and partial scores and distances are NaN, and
``pitch_spearman`` is rho(key marginal m_j, F0_j) over voiced keys, with m_j = mean over
queries of a_qj: "does this head listen more to high-pitched frames". Entropy is defined for
every kind. The ``note`` column says what each row's pitch score means.

A null for the pitch scores (``head_score_null``): F0 is smooth, so a head that attends nearby
frames correlates with *any* smooth contour. Each pitch score is recomputed on the same maps
against K = 10 seeded null contours of the same clip (5 rolled in time by 20-80 % of the clip,
5 with the voiced values shuffled among the voiced frames). ``<score>_null_mean`` and
``<score>_null_p95`` (95th percentile of |null|) describe them; ``<score>_p`` = (1 + #{|null| >=
|observed|}) / (K + 1) is the exceedance, the share of nulls (counting the observation) that do
at least as well; ``follows_pitch`` holds when |pitch_partial_spearman| (cross-attention:
|pitch_spearman|) is above its null's 95th percentile. Only such heads may be said to follow
pitch; with K = 10 the smallest possible p is 1/11.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import rotary
from .attention_kinds import DECODER_CROSS, DECODER_SELF, ENCODER_SELF, attention_kind
from .attention_priors import (MAX_PAIRS, MAX_ROWS, PairSample, check_voicing, pair_sample,
                               rope_info, rotary_prior_ranks, row_step)
from .errors import CaptureError
from .rank_stats import pearson, partial_from, ranks

FRAME_MS = 8.0  # one mel / F0 frame (hop 128 at 16 kHz)

SCORES = ("pitch_spearman", "rotary_spearman", "distance_spearman", "pitch_partial_spearman",
          "mean_distance_frames", "mean_distance_ms", "entropy_nats", "entropy_normalised")
NOTES = {ENCODER_SELF: "pitch: rho(attention, exp(-|z_i - z_j|)) over voiced off-diagonal pairs",
         DECODER_SELF: "pitch: n/a (text tokens have no F0); distances in tokens",
         DECODER_CROSS: "pitch: rho(mean attention a key receives, key F0) over voiced keys; "
                        "rotary/distance: n/a (text and audio share no position axis)"}


# ============================================================================= per-head scores

def _weights(weights) -> np.ndarray:
    """(H, nq, nk) weights as float32/float64 without a copy; a copy only to clip negatives."""
    w = np.asarray(weights)
    if w.dtype not in (np.float32, np.float64):
        w = w.astype(np.float64)
    return np.maximum(w, 0.0) if w.size and w.min() < 0 else w


def key_marginal(w: np.ndarray) -> np.ndarray:
    """m_j = mean over queries of the row-normalised weights a_qj / sum_k a_qk, (H, nk); rows
    with no weight count as 0. One weighted pass, no normalised copy of the map."""
    total = w @ np.ones(w.shape[-1], w.dtype)  # (H, nq)
    inverse = np.divide(1.0, total, out=np.zeros(total.shape), where=total > 0)
    return np.einsum("hqk,hq->hk", w, inverse.astype(w.dtype)) / w.shape[1]


def _sum_a_ln_a(w: np.ndarray, scores: np.ndarray | None, total: np.ndarray,
                lse: np.ndarray | None) -> np.ndarray:
    """sum_j a_ij ln a_ij per row of w (H, r, nk).

    Given the pre-softmax ``scores`` whose softmax the weights are (as captured) and each
    row's log-sum-exp ``lse``: ln a_ij = s_ij - lse_i, so the sum is sum_j a_ij s_ij - t_i
    lse_i, with no log per weight (otherwise the costliest pass over the map).
    """
    if scores is None:
        from scipy.special import xlogy

        return xlogy(w, w).sum(-1, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        a_s = np.einsum("hrk,hrk->hr", w, scores).astype(np.float64)
        if not np.isfinite(a_s).all():  # -inf scores of masked keys: 0 * -inf
            a_s = np.einsum("hrk,hrk->hr", w, np.where(w > 0, scores, 0.0)).astype(np.float64)
    return a_s - total * lse


def _row_lse(w: np.ndarray, s: np.ndarray, diagonal: np.ndarray | None) -> np.ndarray:
    """log-sum-exp of each row's scores (H, r) from one key: a_ik = exp(s_ik - lse_i), so
    lse_i = s_ik - ln a_ik, one log per row. Self-attention uses the diagonal key
    (``diagonal``: the rows' own positions; a single gather); rows whose diagonal weight is
    below 1e-30 (float32 loses digits there) and other maps use the row's largest weight
    (softmax is monotonic: max a and max s sit at the same key)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if diagonal is None:
            return s.max(-1).astype(np.float64) - np.log(w.max(-1).astype(np.float64))
        r = np.arange(diagonal.size)
        a_k, s_k = w[:, r, diagonal].astype(np.float64), s[:, r, diagonal].astype(np.float64)
        lse = s_k - np.log(a_k)
        h, q = np.nonzero(~(a_k > 1e-30))
        if h.size:
            lse[h, q] = s[h, q].max(-1) - np.log(w[h, q].max(-1).astype(np.float64))
    return lse


def entropy_and_distance(weights: np.ndarray, rows: np.ndarray, allowed: np.ndarray | None = None,
                         max_rows: int = MAX_ROWS, scores: np.ndarray | None = None,
                         self_map: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per head (H,): mean entropy (nats), mean normalised entropy, mean |i - j| over the query
    rows marked in ``rows`` (bool, (nq,)); on long maps only those among every
    :func:`row_step`-th position. ``weights`` (H, nq, nk) non-negative (see :func:`_weights`).

    Each row is renormalised over its allowed keys (all keys unless ``allowed``, (nq, nk)):
    with t = sum_j a_ij, H = ln t - sum_j a_ij ln a_ij / t and D = sum_j a_ij |i - j| / t, so
    the renormalised row is never built. ``scores``: the pre-softmax scores of ``weights``,
    when known, save the per-weight log (see :func:`_sum_a_ln_a`); ``self_map``: queries and
    keys share positions (see :func:`_row_lse`). A row with no weight counts as 0. The
    normalised entropy averages only rows with more than one allowed key.
    """
    weights, rows = np.asarray(weights), np.asarray(rows, bool)
    step = row_step(rows.size, max_rows)
    used = np.flatnonzero(rows[::step])  # into the strided rows
    w = weights[:, ::step]  # (H, r, nk): a view
    nk = w.shape[-1]
    position = np.arange(0, rows.size, step)
    s = None if scores is None else np.asarray(scores)[:, ::step]
    lse = None if s is None else _row_lse(w, s, position if self_map else None)
    if allowed is not None and not np.all(allowed):
        keep = np.asarray(allowed, bool)[::step]
        w = w * keep[None]
        n_keys = keep.sum(-1)
    else:
        n_keys = np.full(w.shape[1], nk)
    total = (w @ np.ones(nk, w.dtype)).astype(np.float64)  # (H, r): row sums (BLAS)
    has = total > 0
    safe = np.where(has, total, 1.0)
    entropy = np.where(has, np.log(safe) - _sum_a_ln_a(w, s, total, lse) / safe, 0.0)
    lag = np.abs(position.astype(w.dtype)[:, None] - np.arange(nk, dtype=w.dtype)[None, :])
    distance = np.where(has, np.einsum("hrk,rk->hr", w, lag) / safe, 0.0)
    entropy, distance, n_keys = entropy[:, used], distance[:, used], n_keys[used]
    multi = n_keys > 1
    normalised = (entropy[:, multi] / np.log(n_keys[multi])).mean(-1) if multi.any() \
        else np.full(w.shape[0], np.nan)
    return entropy.mean(-1), normalised, distance.mean(-1)


def self_attention_scores(weights: np.ndarray, f0=None, rope_info: dict | None = None,
                          rope_f0=None, allowed: np.ndarray | None = None,
                          max_pairs: int = MAX_PAIRS, frame_ms: float | None = FRAME_MS
                          ) -> pd.DataFrame:
    """Scores of every head of one self-attention map ``weights`` (H, n, n), one row per head.

    ``f0`` (Hz at the frames, NaN/<=0 unvoiced) switches the pitch scores on and restricts
    pairs and rows to voiced frames (VoicingError if too little voicing); None (text tokens)
    leaves pitch scores NaN. ``rope_info`` / ``rope_f0`` give the rotary prior (NaN without).
    ``allowed`` (n, n) marks pairs a mask lets through. ``frame_ms``: duration of one
    position. Definitions: module docstring.
    """
    w = _weights(weights)
    if w.ndim != 3 or w.shape[1] != w.shape[2]:
        raise CaptureError(f"self-attention weights must be (heads, n, n), got {w.shape}")
    pairs = pair_sample(w.shape[1], f0, allowed, max_pairs)
    return pd.DataFrame(_self_rows([w], pairs, [rope_info], rope_f0, frame_ms)[0])


STACK_LIMIT = 1 << 20  # map elements: the layers of smaller maps are scored as one array


def _stacked(maps: list, scores: list | None) -> tuple[list, list]:
    """The maps (and scores) as one concatenated block when small (fewer numpy calls for the
    many tiny decoder maps), else as they are (no copy of large encoder maps)."""
    scores = [None] * len(maps) if scores is None else scores
    if len(maps) > 1 and sum(m.size for m in maps) <= STACK_LIMIT:
        return [np.concatenate(maps)], [None if scores[0] is None else np.concatenate(scores)]
    return maps, scores


def _by_layer(heads: list, scores_of) -> list[list]:
    """Per layer, one dict per head: {"head": h, **scores_of(g)}, g the head's index among the
    heads of all layers (scored in one batch)."""
    start = np.cumsum([0, *heads])
    return [[dict(head=h, **scores_of(int(start[k]) + h)) for h in range(count)]
            for k, count in enumerate(heads)]


def _self_rows(layers: list, pairs: PairSample, rope_infos: list, rope_f0=None,
               frame_ms: float | None = FRAME_MS, scores: list | None = None) -> list[list]:
    """Per layer, one dict of scores per head of its self-attention map (H, n, n) over the
    shared ``pairs``; the heads of all layers are ranked and correlated in one batch.
    ``layers``: float, non-negative maps (see :func:`_weights`); ``rope_infos``: one per layer
    (None: no rotary prior); ``scores``: the matching pre-softmax maps, if known."""
    for w in layers:
        if w.ndim != 3 or w.shape[1:] != (pairs.n, pairs.n):
            raise CaptureError(f"self-attention weights must be (heads, {pairs.n}, {pairs.n}), "
                               f"got {w.shape}")
    heads = [w.shape[0] for w in layers]
    start = np.cumsum([0, *heads])
    blocks, score_blocks = _stacked(layers, scores)
    if pairs.mask is not None:
        blocks = [w * pairs.mask[None] for w in blocks]
    i, j, nan = pairs.i, pairs.j, np.full(start[-1], np.nan)
    r_ap, r_ad, r_rot, partial = nan, nan, nan.copy(), nan
    gathered, parts = [], []
    for w, s in zip(blocks, score_blocks):  # each block's strided query rows once, while hot
        if i.size >= 3:  # renormalise over the scored keys of the query rows
            mass = w[:, ::pairs.step] @ pairs.rows.astype(w.dtype)  # float32 ranks fastest
            gathered.append(w[:, i, j] / np.where(mass > 0, mass, 1.0)[:, i // pairs.step])
        parts.append(entropy_and_distance(w, pairs.rows, pairs.mask, scores=s, self_map=True))
    entropy, normalised, dist = (np.concatenate(column) for column in zip(*parts))
    if gathered:
        ranked = ranks(np.concatenate(gathered))  # (all heads, pairs)
        priors = [pairs.distance_ranks] + ([] if pairs.pitch_ranks is None
                                           else [pairs.pitch_ranks])
        rho = pearson(ranked, np.stack(priors))
        r_ad = rho[:, 0]
        if pairs.pitch_ranks is not None:
            r_ap = rho[:, 1]
            partial = partial_from(r_ap, r_ad, pairs.r_pitch_distance)
        for layer, info in enumerate(rope_infos):
            if info is not None:
                part = slice(start[layer], start[layer + 1])
                r_rot[part] = pearson(ranked[part], rotary_prior_ranks(info, i, j, rope_f0))
    ms = dist * frame_ms if frame_ms else nan
    return _by_layer(heads, lambda g: dict(
        n_pairs=int(i.size), pitch_spearman=float(r_ap[g]), rotary_spearman=float(r_rot[g]),
        distance_spearman=float(r_ad[g]), pitch_partial_spearman=float(partial[g]),
        mean_distance_frames=float(dist[g]), mean_distance_ms=float(ms[g]),
        entropy_nats=float(entropy[g]), entropy_normalised=float(normalised[g])))


def cross_attention_scores(weights: np.ndarray, f0) -> pd.DataFrame:
    """Scores of every head of a cross-attention map (H, n_text, n_audio), one row per head:
    pitch_spearman = rho(key marginal, key F0) over voiced keys, entropies over all keys,
    the position scores NaN (no shared axis). Definitions: module docstring."""
    return pd.DataFrame(_cross_rows(weights, f0)[0])


def _cross_rows(layers, f0, scores: list | None = None) -> list[list]:
    """Per layer, one dict of scores per head of its cross-attention map (H, n_text, n_audio);
    small maps of several layers are scored as one array. A single map gives one list."""
    single = not isinstance(layers, list)
    layers = [_weights(layers)] if single else layers
    if any(w.ndim != 3 for w in layers):
        raise CaptureError("cross-attention weights must be (heads, nq, nk), got "
                           f"{[w.shape for w in layers]}")
    heads = [w.shape[0] for w in layers]
    f0k = rotary.f0_at_positions(f0, layers[0].shape[2])
    keys = check_voicing(f0k)
    blocks, score_blocks = _stacked(layers, scores)
    parts = [entropy_and_distance(w, np.ones(w.shape[1], bool), scores=sc)
             for w, sc in zip(blocks, score_blocks)]
    entropy, normalised = (np.concatenate(column) for column in list(zip(*parts))[:2])
    marginal = np.concatenate([key_marginal(w)[:, keys] for w in blocks])  # (heads, voiced)
    pitch = pearson(ranks(marginal), ranks(f0k[keys])) if keys.sum() >= 3 \
        else np.full(sum(heads), np.nan)
    nan = np.nan
    return _by_layer(heads, lambda g: dict(
        n_pairs=int(keys.sum()), pitch_spearman=float(pitch[g]), rotary_spearman=nan,
        distance_spearman=nan, pitch_partial_spearman=nan, mean_distance_frames=nan,
        mean_distance_ms=nan, entropy_nats=float(entropy[g]),
        entropy_normalised=float(normalised[g])))


# ============================================================================= whole model

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
    paths = sorted(set(cache.attention) | {d["path"] for d in cache.dropped})
    located = [(p, attention_kind(p)[:2]) for p in paths if attention_kind(p) is not None]
    if not located:
        raise CaptureError("the cache holds no attention maps: run the forward pass inside "
                           "hooks.capture(model, depth='full')")
    rows = []  # plain dicts, one DataFrame at the end: pandas per layer cost more than numpy
    groups: dict = {}  # maps of one kind, shape and mask share pairs and are scored together
    for path, (kind, layer) in located:
        calls = cache.attention.get(path)
        module = model.get_submodule(path)
        if not calls:  # dropped: too large to keep
            note = "map not kept (capture max_attention_bytes): no scores"
            rows += [dict(module=path, kind=kind, layer=layer, head=h, n_pairs=0,
                          **{s: np.nan for s in SCORES}, note=note) for h in range(module.head)]
            continue
        call = calls[-1]
        weights = call["weights"][0].detach().float().numpy()  # (H, nq, nk)
        if kind != DECODER_CROSS and weights.shape[1] != weights.shape[2]:
            raise CaptureError(
                f"{path} recorded a {weights.shape[1]} x {weights.shape[2]} self-attention map: "
                "score a teacher-forced forward (model(input_ids=..., ...) inside the capture), "
                "not cached greedy decoding, whose steps see one new query each")
        scores = call["scores"][0].detach().float().numpy()
        masked = call.get("masked", True) and not np.isfinite(scores.min())  # -inf: blocked
        allowed = (scores > -np.inf).all(0) if masked else None
        info = rope_info(module)
        if kind == DECODER_SELF:
            info["per_frame"] = False  # per-frame theta applies to audio positions only
        note = NOTES[kind]
        if call.get("pitch_bias_applied"):
            note += "; the model ADDS the pitch bias to these scores (partly built in)"
        key = (kind, weights.shape[1:], None if allowed is None else allowed.tobytes())
        groups.setdefault(key, []).append(dict(path=path, layer=layer, weights=weights,
                                               scores=scores, allowed=allowed, info=info,
                                               note=note))
    for (kind, shape, _), members in groups.items():
        maps, scores = [m["weights"] for m in members], [m["scores"] for m in members]
        if kind == DECODER_CROSS:
            parts = _cross_rows(maps, f0, scores)
        else:
            audio, n = kind == ENCODER_SELF, shape[-1]
            pairs = pair_sample(n, f0 if audio else None, members[0]["allowed"], max_pairs)
            # decoder self: text positions, rotary by the mean-F0 theta over the clip's frames
            rope_f0 = None if not f0_given else rotary.f0_at_positions(f0, n) if audio else f0
            parts = _self_rows(maps, pairs, [m["info"] for m in members], rope_f0,
                               FRAME_MS * f0.size / n if audio else None, scores)
        for m, part in zip(members, parts):
            rows += [dict(module=m["path"], kind=kind, layer=m["layer"], **r, note=m["note"])
                     for r in part]
    order = {ENCODER_SELF: 0, DECODER_SELF: 1, DECODER_CROSS: 2}
    rows.sort(key=lambda r: (order[r["kind"]], r["layer"], r["head"]))  # stable
    columns = ["module", "kind", "layer", "head", "n_pairs", *SCORES, "note"]
    return pd.DataFrame(rows, columns=columns)
