"""Joint CTC/attention beam search: the attention decoder proposes, the CTC head checks.

Why: a character-level attention decoder that is left to itself drops or repeats a whole word
now and then ("six zero" -> "six zero zero"): nothing in it ties the transcript to the number of
words the audio holds. The CTC head, trained beside the decoder on the same encoder
(``train --ctc-weight``), scores a prefix by how well it aligns with every frame, so a repeated
or missing word costs it dearly. Each hypothesis here is scored by

    (1 - ctc_weight) * log p_att(prefix) + ctc_weight * log p_ctc(prefix ...)

where the second term is the CTC *prefix* probability (all alignments of the frames so far that
start with the prefix; the full probability once eos is chosen): Watanabe et al., "Hybrid
CTC/Attention Architecture for End-to-End Speech Recognition", IEEE JSTSP 2017, Algorithm 2.
Both terms only fall as a prefix grows, so the search may stop as soon as no open hypothesis can
beat the worst of ``beam`` finished ones: the result is the best of what the beam kept, not an
approximation of the stop rule.

``ctc_prefix_extend`` is a pure numpy function of log-probabilities (tested against brute-force
sums over alignments); ``joint_beam_ids`` runs the model.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import EchoError
from .tokenizer import BOS, EOS, PAD

NEG = -1e30  # log 0 that stays finite under addition
# The app's and the evaluation's settings, fixed before they were measured on any test set:
# the CTC weight the models were trained with (train --ctc-weight 0.5) and a beam of 6.
JOINT_BEAM = 6
JOINT_CTC_WEIGHT = 0.5


def ctc_empty_prefix(log_probs: np.ndarray, blank: int = PAD) -> np.ndarray:
    """(T, 2) forward variables of the empty prefix: [log r_n, log r_b] per frame (the empty
    prefix ends in blank after every frame: the running sum of blank log-probabilities)."""
    r = np.full((log_probs.shape[0], 2), NEG)
    r[:, 1] = np.cumsum(log_probs[:, blank])
    return r


def _logsumexp(a: np.ndarray) -> np.ndarray:
    """log sum exp over the last axis, shifted by the row maximum (a vectorised sum, several
    times faster than a running ``np.logaddexp.reduce``)."""
    top = a.max(axis=-1)
    return np.log(np.exp(a - top[..., None]).sum(axis=-1)) + top


def ctc_prefix_extend(log_probs: np.ndarray, r_prev: np.ndarray, last: np.ndarray,
                      candidates: np.ndarray, blank: int = PAD,
                      states: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """CTC prefix scores of N extended prefixes ``prefix_i + c_i`` at once.

    log_probs: (T, V) frame log-probabilities of the CTC head (one clip, its real frames).
    r_prev: (N, T, 2) forward variables [log r_n, log r_b] of each row's prefix
    (``ctc_empty_prefix`` for the empty one); last: (N,) each prefix's last token, -1 when
    empty; candidates: (N,) token ids, none the blank; eos gives the prefix's full probability.
    Returns psi (N,) = log p(prefix_i + c_i, ...) and r (N, T, 2) of the extended prefixes
    (None with ``states=False``: a search needs them only for the hypotheses it keeps).

    The recursions of Algorithm 2 (r_n[t] = (r_n[t-1] + phi[t-1]) p_t(c), r_b[t] = (r_b[t-1] +
    r_n[t-1]) p_t(blank)) are linear, so each is a running log-sum-exp after dividing out the
    running product of its emission probabilities: one C loop (``np.logaddexp.accumulate``)
    per array instead of a Python loop over frames. Float64 keeps the division exact enough
    (the running sums stay far below 1e13).
    """
    lp = np.asarray(log_probs, dtype=np.float64)
    cands = np.asarray(candidates, dtype=np.int64)
    last = np.asarray(last, dtype=np.int64)
    if np.any(cands == blank):
        raise EchoError("the CTC blank cannot extend a prefix")
    n, T = len(cands), lp.shape[0]
    x = lp[:, cands].T  # (N, T) log p_t(c_i)
    prev_total = np.logaddexp(r_prev[..., 0], r_prev[..., 1])  # (N, T)
    # phi: the prefix's mass that c may follow (only its blank-ending part when c repeats it)
    phi = np.where((cands == last)[:, None], r_prev[..., 1], prev_total)
    first = np.where(last < 0, x[:, 0], NEG)  # r_n[0]: only the empty prefix starts with c
    psi = np.logaddexp(first, _logsumexp(phi[:, :-1] + x[:, 1:])) if T > 1 else first
    psi = np.where(cands == EOS, prev_total[:, -1], psi)
    if not states:
        return psi, None
    cum_x = np.cumsum(x, axis=1)
    steps = np.concatenate([(first - cum_x[:, 0])[:, None], phi[:, :-1] - cum_x[:, :-1]], axis=1)
    r_n = np.logaddexp.accumulate(steps, axis=1) + cum_x
    cum_b = np.cumsum(lp[:, blank])
    steps_b = np.concatenate([np.full((n, 1), NEG), r_n[:, :-1] - cum_b[None, :-1]], axis=1)
    r_b = np.logaddexp.accumulate(steps_b, axis=1) + cum_b[None, :]
    return psi, np.stack([np.maximum(r_n, NEG), np.maximum(r_b, NEG)], axis=-1)


def _reorder_cache(cache: dict, parents: torch.Tensor) -> None:
    """Point every cached key and value at the rows of the hypotheses that survived (the
    cross-attention's audio keys are the same in every row, the text ones are not)."""
    for key, value in cache.items():
        if key == "cross":  # the audio's keys and values: the same in every row
            continue
        if isinstance(value, dict):
            _reorder_cache(value, parents)
        elif key in ("k", "v") and isinstance(value, torch.Tensor):  # (under "self" only)
            cache[key] = value.index_select(0, parents)


def joint_beam_ids(model, spectrogram: torch.Tensor, f0: torch.Tensor | None, *,
                   beam: int = JOINT_BEAM, ctc_weight: float = JOINT_CTC_WEIGHT,
                   max_tokens: int | None = None) -> list[int]:
    """Token ids (without bos/eos) of one clip, (1, n_mels, T) log-mel and (1, T) model F0
    (None for models without F0): the best hypothesis of :func:`joint_beam_search`."""
    return joint_beam_search(model, spectrogram, f0, beam=beam, ctc_weight=ctc_weight,
                             max_tokens=max_tokens)[0][1]


@torch.no_grad()
def joint_beam_search(model, spectrogram: torch.Tensor, f0: torch.Tensor | None, *,
                      beam: int = JOINT_BEAM, ctc_weight: float = JOINT_CTC_WEIGHT,
                      max_tokens: int | None = None) -> list[tuple[float, list[int]]]:
    """Joint CTC/attention beam search on one clip: up to ``beam`` (score, ids without
    bos/eos) pairs, best first; a score is (1 - ctc_weight) log p_att(ids + eos) + ctc_weight
    log p_ctc(ids). When the length limit comes first, the best open hypothesis as it stands.

    Needs a model with a CTC head (``EchoDims.ctc_head``). ``beam`` hypotheses are kept; each
    step scores the ``beam + 2`` likeliest next tokens of every open hypothesis under the
    decoder, and eos, by both terms. The decoder runs ``beam`` rows with its key/value
    cache (causal decoders), reordered as hypotheses survive, so a step costs one token per row.
    """
    from .decode import encode, model_uses_f0

    if not model.dims.ctc_head:
        raise EchoError("joint CTC/attention decoding needs a model with a CTC head "
                        "(trained with --ctc-weight); use greedy decoding for this one")
    if spectrogram.shape[0] != 1:
        raise EchoError("joint decoding takes one clip at a time")
    if not 0.0 <= ctc_weight <= 1.0:
        raise EchoError(f"ctc_weight must lie in [0, 1], got {ctc_weight}")
    k = max(1, int(beam))
    f0 = f0 if model_uses_f0(model) else None
    padding = model.padding(spectrogram, f0, None)
    f0 = f0 if padding is None else padding.mask_f0(f0)
    encoded = encode(model, spectrogram, f0, padding)
    ctc_lp = model.ctc(encoded["spectrogram"])[0].float().log_softmax(-1).numpy()  # (n, V)
    limit = model.dims.text_ctx - 1 if max_tokens is None else min(max_tokens,
                                                                    model.dims.text_ctx - 1)
    enc_k = {n: v.expand(k, *v.shape[1:]) for n, v in encoded.items()}
    f0_k = None if f0 is None else f0.expand(k, -1)
    pad_k = model.padding(spectrogram.expand(k, -1, -1), f0_k, None)
    cache = {} if model.decoder.incremental else None
    # the k decoder rows; a hypothesis: (score, att log p, ids without bos, CTC variables)
    rows = [(0.0, 0.0, [], ctc_empty_prefix(ctc_lp))]
    finished: list[tuple[float, list[int]]] = []
    n_cand = min(k + 2, ctc_lp.shape[1] - 1)
    prefix = torch.full((k, 1), BOS, dtype=torch.long)  # each decoder row's tokens
    for _ in range(limit + 1):
        logits = model.decoder(prefix, enc_k, f0=f0_k, cache=cache, padding=pad_k)[:, -1]
        att = logits.float().log_softmax(-1).numpy()[:len(rows)]
        att[:, [PAD, BOS]] = -np.inf
        if len(rows[0][2]) >= limit:  # the prefix fills text_ctx: only eos may follow
            att[:, np.arange(att.shape[1]) != EOS] = -np.inf
        parent, cands = [], []  # (row, token) pairs: each row's likeliest next tokens
        for h, row in enumerate(att):
            top = np.argsort(-row)[:n_cand]
            if EOS not in top:  # ending is always scored: when the audio holds no more words,
                top = np.append(top, EOS)  # the CTC term says so only through eos
            top = top[np.isfinite(row[top])]
            parent += [h] * len(top)
            cands += top.tolist()
        parent, cands = np.array(parent), np.array(cands)
        r_rows = np.stack([h[3] for h in rows])
        last = np.array([h[2][-1] if h[2] else -1 for h in rows])
        psi, _ = ctc_prefix_extend(ctc_lp, r_rows[parent], last[parent], cands, states=False)
        att_sum = np.array([rows[h][1] for h in parent]) + att[parent, cands]
        score = (1.0 - ctc_weight) * att_sum + ctc_weight * psi
        kept = []
        for j in np.argsort(-score, kind="stable")[:k]:  # the best k; eos ends a hypothesis
            if cands[j] == EOS:
                finished.append((float(score[j]), rows[parent[j]][2]))
            else:
                kept.append(j)
        finished = sorted(finished, key=lambda f: -f[0])[:k]
        if not kept or (len(finished) >= k and float(score[kept[0]]) < finished[-1][0]):
            break  # every open score only falls from here
        _, r_new = ctc_prefix_extend(ctc_lp, r_rows[parent[kept]], last[parent[kept]],
                                     cands[kept])  # forward variables of the kept only
        rows = [(float(score[j]), float(att_sum[j]), rows[parent[j]][2] + [int(cands[j])],
                 r_new[n]) for n, j in enumerate(kept)]
        fill = kept + [kept[0]] * (k - len(kept))  # spare rows repeat the best (not scored)
        if cache is not None:
            _reorder_cache(cache, torch.as_tensor(parent[fill], dtype=torch.long))
        prefix = torch.cat([prefix[torch.as_tensor(parent[fill])],
                            torch.as_tensor(cands[fill], dtype=torch.long)[:, None]], dim=1)
    return finished or [(rows[0][0], rows[0][2])]
