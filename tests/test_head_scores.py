"""Per-head scores (echo_core.head_scores): synthetic maps built to follow pitch, distance, the
rotary prior or nothing are ranked correctly; the statistics match independent computations;
invariances hold; barely voiced clips are refused; a shipped checkpoint gives a full table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from echo_core import attention_priors as priors
from echo_core import head_scores as hs
from echo_core import errors, rank_stats, rotary

REPO = Path(__file__).resolve().parents[1]
N = 150


def _softmax(scores: np.ndarray) -> np.ndarray:
    e = np.exp(scores - scores.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.fixture(scope="module")
def f0() -> np.ndarray:
    """A wandering contour (not monotone in time) with two unvoiced gaps (NaN)."""
    t = np.arange(N)
    hz = 160 + 45 * np.sin(2 * np.pi * t / 37) + 25 * np.sin(2 * np.pi * t / 13 + 1.0)
    hz[40:55] = np.nan
    hz[100:108] = np.nan
    return hz


@pytest.fixture(scope="module")
def rope() -> dict:
    """A static rotary with a fast base, so its similarity oscillates with the lag."""
    return dict(head_dim=16, inv_freq=rotary.inv_freq(16, 40.0), theta=40.0, radius=None,
                f0_rotary=False, per_frame=False, f0_mean="voiced")


@pytest.fixture(scope="module")
def maps(f0, rope) -> np.ndarray:
    """(4, N, N) heads: follows pitch, follows distance, follows rotary, random."""
    i, j = np.meshgrid(np.arange(N), np.arange(N), indexing="ij")
    pitch_map = 6.0 * rotary.pitch_bias(f0, 1.0)
    distance_map = -np.abs(i - j) / 4.0
    rotary_map = 6.0 * priors.rotary_prior(rope, i.ravel(), j.ravel()).reshape(N, N)
    random_map = np.random.default_rng(1).normal(size=(N, N))
    return _softmax(np.stack([pitch_map, distance_map, rotary_map, random_map]))


@pytest.fixture(scope="module")
def table(maps, f0, rope) -> pd.DataFrame:
    """Scores over every voiced pair (no sampling), so brute force can check them exactly."""
    n = maps.shape[-1]
    return hs.self_attention_scores(maps, f0, rope, None, max_pairs=n * n).set_index("head")


def test_each_score_picks_the_map_built_for_it(table):
    pitch, distance, rot, rand = 0, 1, 2, 3
    s = table
    assert s.pitch_spearman.idxmax() == pitch and s.pitch_spearman[pitch] > 0.9
    assert s.distance_spearman.idxmax() == distance and s.distance_spearman[distance] > 0.9
    assert s.rotary_spearman.idxmax() == rot and s.rotary_spearman[rot] > 0.9
    assert abs(s.pitch_partial_spearman[distance]) < 0.1
    assert s.pitch_partial_spearman[pitch] > 0.8
    assert all(abs(s.loc[rand, c]) < 0.1 for c in ("pitch_spearman", "distance_spearman",
                                                    "rotary_spearman", "pitch_partial_spearman"))
    # Local head: short distance, low entropy; random head: near uniform.
    assert s.mean_distance_frames.idxmin() == distance
    assert s.entropy_normalised.idxmax() == rand and s.entropy_normalised[rand] > 0.9
    assert s.entropy_normalised[distance] < s.entropy_normalised[rand] - 0.2
    assert np.allclose(s.mean_distance_ms, s.mean_distance_frames * 8.0)


def test_partial_score_separates_pitch_from_distance_on_a_glide():
    """On a rising glide, pitch similarity falls with distance: a purely local head looks
    pitch-aligned (rho ~ 0.7) until distance is controlled for (partial ~ 0)."""
    t = np.arange(N)
    glide = 120 + 100 * t / N + 20 * np.sin(2 * np.pi * t / 9)
    glide[40:50] = np.nan
    i, j = np.meshgrid(t, t, indexing="ij")
    heads = _softmax(np.stack([6.0 * rotary.pitch_bias(glide, 1.0), -np.abs(i - j) / 4.0]))
    s = hs.self_attention_scores(heads, glide)
    assert s.pitch_spearman[1] > 0.6 and abs(s.pitch_partial_spearman[1]) < 0.05
    assert s.pitch_partial_spearman[0] > 0.9
    assert s.rotary_spearman.isna().all()  # no rope given


def test_statistics_match_independent_computations(maps, f0, table):
    voiced = rotary.voiced_mask(f0)
    idx = np.flatnonzero(voiced)
    queries = idx[idx % priors.row_step(N) == 0]  # N > MAX_ROWS: every row_step-th voiced row
    assert 0 < queries.size < idx.size
    w = maps[3][np.ix_(queries, idx)]
    w = w / w.sum(-1, keepdims=True)  # renormalised over voiced keys
    off = queries[:, None] != idx[None, :]
    a = w[off]
    p = rotary.pitch_bias(f0, 1.0)[np.ix_(queries, idx)][off]
    d = -np.abs(queries[:, None] - idx[None, :])[off]
    assert table.n_pairs[3] == a.size
    assert table.pitch_spearman[3] == pytest.approx(spearmanr(a, p)[0], abs=1e-9)
    assert table.distance_spearman[3] == pytest.approx(spearmanr(a, d)[0], abs=1e-9)
    # Partial correlation = correlation of the rank residuals after regressing out distance.
    ra, rp, rd = (rank_stats.ranks(v) for v in (a, p, d))
    design = np.column_stack([np.ones_like(rd), rd])
    res = [r - design @ np.linalg.lstsq(design, r, rcond=None)[0] for r in (ra, rp)]
    assert table.pitch_partial_spearman[3] == pytest.approx(np.corrcoef(*res)[0, 1], abs=1e-9)
    # Entropy and distance: plain loops over the voiced query rows of the full softmax (on a
    # map longer than MAX_ROWS: those among every row_step-th position).
    ent, dist = [], []
    for q in queries:
        row = maps[1][q]
        ent.append(-sum(x * np.log(x) for x in row if x > 0))
        dist.append(sum(row[k] * abs(q - k) for k in range(N)))
    assert table.entropy_nats[1] == pytest.approx(np.mean(ent), rel=1e-9)
    assert table.entropy_normalised[1] == pytest.approx(np.mean(ent) / np.log(N), rel=1e-9)
    assert table.mean_distance_frames[1] == pytest.approx(np.mean(dist), rel=1e-9)


def test_rotary_prior_matches_the_rotary_maps(f0):
    i, j = np.meshgrid(np.arange(60), np.arange(60), indexing="ij")
    info = dict(head_dim=32, inv_freq=None, theta=10000.0, radius=None, f0_rotary=True,
                per_frame=False, f0_mean="voiced")
    got = priors.rotary_prior(info, i.ravel(), j.ravel(), f0[:60]).reshape(60, 60)
    assert np.allclose(got, rotary.position_similarity(60, 32, 10000.0, f0=f0[:60]))
    info["per_frame"] = True
    got = priors.rotary_prior(info, i.ravel(), j.ravel(), f0[:60]).reshape(60, 60)
    assert np.allclose(got, rotary.position_similarity_per_frame(f0[:60], 32, 10000.0))
    info.update(per_frame=False, f0_mean="batch")  # reference: mean with unvoiced as 0
    mean = np.nan_to_num(f0[:60]).mean()
    assert priors.theta_used(info, f0[:60]) == pytest.approx(10000.0 + rotary.pitch_factor(mean)
                                                         * rotary.THETA_SPAN)


def test_invariances(maps, f0, rope, table):
    # Rows scaled by positive constants (unnormalised attention) change nothing.
    scale = np.random.default_rng(2).uniform(0.1, 10.0, size=(4, N, 1))
    everything = N * N  # the fixture scores every pair
    scaled = hs.self_attention_scores(maps * scale, f0, rope, None,
                                      max_pairs=everything).set_index("head")
    pd.testing.assert_frame_equal(scaled, table, rtol=1e-9)
    # Rank scores ignore strictly increasing transforms of either side.
    x, y = np.random.default_rng(3).normal(size=(2, 500))
    assert rank_stats.spearman(x, y) == pytest.approx(rank_stats.spearman(np.exp(x), y**3 + 5 * y),
                                                     abs=1e-12)
    # A pre-softmax shift per row (what softmax ignores) changes nothing either.
    shifted = hs.self_attention_scores(_softmax(np.log(maps) + scale), f0, rope, None,
                                       max_pairs=everything)
    pd.testing.assert_frame_equal(shifted.set_index("head"), table, rtol=1e-9)
    # The pair sample is deterministic and bounded.
    a = priors.sample_pairs(np.ones(400, bool), max_pairs=1000)
    b = priors.sample_pairs(np.ones(400, bool), max_pairs=1000)
    assert a[0].size == 1000 and np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.any(a[0] == a[1])


def test_pair_numbering_matches_the_grid_it_avoids():
    """sample_pairs numbers the off-diagonal pairs arithmetically; the same pairs, in the same
    row-major order, as enumerating the grid of scored positions."""
    ok = np.random.default_rng(5).random(90) < 0.6
    grid = ok[:, None] & ok[None, :]
    np.fill_diagonal(grid, False)
    i, j = priors.sample_pairs(ok, max_pairs=10**6)
    assert np.array_equal(i, np.nonzero(grid)[0]) and np.array_equal(j, np.nonzero(grid)[1])
    every_third = grid & (np.arange(90) % 3 == 0)[:, None]  # query rows on a step-3 grid
    i, j = priors.sample_pairs(ok, max_pairs=10**6, step=3)
    assert np.array_equal(i, np.nonzero(every_third)[0])
    assert np.array_equal(j, np.nonzero(every_third)[1])
    si, sj = priors.sample_pairs(ok, max_pairs=500)
    assert si.size == 500 and grid[si, sj].all()
    assert np.unique(si * 90 + sj).size == 500 and np.all(np.diff(si * 90 + sj) > 0)
    causal = np.tril(np.ones((90, 90), bool))
    ci, cj = priors.sample_pairs(ok, max_pairs=10**6, allowed=causal)
    assert np.array_equal(ci, np.nonzero(grid & causal)[0])
    assert priors.sample_pairs(np.ones(1, bool))[0].size == 0


def test_entropy_from_scores_equals_the_per_weight_log():
    """The scores path (lse = max s - ln max a) gives the xlogy entropy, with and without a
    causal mask (-inf scores), on unnormalised-looking and very peaked rows."""
    rng = np.random.default_rng(6)
    scores = rng.normal(scale=4.0, size=(3, 70, 70))
    scores[1, :, 5] += 60.0  # a head that puts (almost) everything on one key
    weights = _softmax(scores)
    rows = rng.random(70) < 0.7
    plain = hs.entropy_and_distance(weights, rows)
    for self_map in (False, True):  # lse from the largest weight / from the diagonal
        fast = hs.entropy_and_distance(weights, rows, scores=scores, self_map=self_map)
        assert np.allclose(plain, fast, rtol=1e-9, atol=1e-12)
    scores[2, 3, 3] = -200.0  # a diagonal weight below 1e-30: that row falls back to the max
    weights = _softmax(scores)
    assert weights[2, 3, 3] < 1e-30
    assert np.allclose(hs.entropy_and_distance(weights, rows),
                       hs.entropy_and_distance(weights, rows, scores=scores, self_map=True),
                       rtol=1e-9, atol=1e-12)
    causal = np.tril(np.ones((70, 70), bool))
    masked_scores = np.where(causal, scores, -np.inf)
    masked = _softmax(masked_scores)
    plain = hs.entropy_and_distance(masked, rows, causal)
    fast = hs.entropy_and_distance(masked, rows, causal, scores=masked_scores, self_map=True)
    assert np.allclose(plain, fast, rtol=1e-9, atol=1e-12)
    # A stricter allowed set than the mask: rows renormalised, lse still of the full row.
    band = causal & ~np.tril(np.ones((70, 70), bool), -10)
    assert np.allclose(hs.entropy_and_distance(masked, rows, band),
                       hs.entropy_and_distance(masked, rows, band, scores=masked_scores),
                       rtol=1e-9, atol=1e-12)


def test_long_maps_average_evenly_spaced_rows():
    """Beyond MAX_ROWS query rows, entropy and distance are the plain means over the scored rows
    among every row_step-th position (brute force on those rows)."""
    n = 700
    rng = np.random.default_rng(7)
    assert priors.MAX_ROWS < n
    weights = _softmax(rng.normal(scale=3.0, size=(2, n, n)))
    rows = rng.random(n) < 0.5
    step = priors.row_step(n)
    assert step > 1
    assert np.arange(0, n, step).size <= priors.MAX_ROWS < np.arange(0, n, step - 1).size
    used = [q for q in range(0, n, step) if rows[q]]
    ent = [[-(weights[h, q] * np.log(weights[h, q])).sum() for q in used] for h in range(2)]
    dist = [[(weights[h, q] * np.abs(q - np.arange(n))).sum() for q in used] for h in range(2)]
    got_ent, got_norm, got_dist = hs.entropy_and_distance(weights, rows)
    assert np.allclose(got_ent, np.mean(ent, 1), rtol=1e-9)
    assert np.allclose(got_norm, np.mean(ent, 1) / np.log(n), rtol=1e-9)
    assert np.allclose(got_dist, np.mean(dist, 1), rtol=1e-9)


def test_too_little_voicing_is_refused(maps, rope):
    few = np.full(N, np.nan)
    few[:8] = 150.0
    with pytest.raises(errors.VoicingError, match="voiced frames"):
        hs.self_attention_scores(maps, few, rope, None)
    sparse = np.full(N, np.nan)
    sparse[: int(0.15 * N)] = 150.0  # 22 voiced frames but only 15 %
    with pytest.raises(errors.VoicingError, match="15%"):
        priors.check_voicing(sparse)
    assert issubclass(errors.VoicingError, errors.EchoError)


def test_cross_attention_key_marginal(f0):
    rng = np.random.default_rng(4)
    w_up = _softmax(np.broadcast_to(np.nan_to_num(f0, nan=0.0) / 20.0, (1, 7, N)))
    w_rand = _softmax(rng.normal(size=(1, 7, N)))
    up = hs.cross_attention_scores(np.concatenate([w_up, w_rand]), f0)
    assert up.pitch_spearman[0] == pytest.approx(1.0)
    assert abs(up.pitch_spearman[1]) < 0.3
    assert up[["rotary_spearman", "distance_spearman"]].isna().all().all()
    # Unnormalised rows and an all-zero row: the marginal of the row-normalised map, by loops.
    raw = rng.uniform(0.0, 3.0, size=(2, 5, N)).astype(np.float32)
    raw[1, 2] = 0.0
    expected = np.zeros((2, N))
    for h in range(2):
        for q in range(5):
            if raw[h, q].sum() > 0:
                expected[h] += raw[h, q] / raw[h, q].sum() / 5
    assert np.allclose(hs.key_marginal(raw), expected, rtol=1e-5)
    keys = rotary.voiced_mask(f0)
    got = hs.cross_attention_scores(raw, f0).pitch_spearman
    assert np.allclose(got, [spearmanr(e[keys], f0[keys])[0] for e in expected], atol=1e-6)


def test_shipped_checkpoint_gives_a_full_finite_table():
    from echo_core import audio, checkpoint, pitch
    from workbench import figures_model as FM
    from workbench import model_analysis

    ckpt = REPO / "assets" / "checkpoints" / "f0_theta_bias"
    clip = REPO / "assets" / "clips" / "low_three_one_four.wav"
    if not (ckpt / "config.json").exists() or not clip.exists():
        pytest.skip("shipped checkpoint or clip missing")
    model = checkpoint.load_checkpoint(ckpt)
    a = audio.load_audio(clip)
    feats = {"n_mels": model.dims.mels, "fmin": 0.0, "fmax": None,
             **(model.meta or {}).get("features", {})}
    mel = audio.log_mel(a.samples, a.sr, n_mels=int(feats["n_mels"]),
                        fmin=float(feats["fmin"]), fmax=feats["fmax"])
    f0 = pitch.align_to_frames(pitch.extract_f0(a.samples, a.sr), mel.shape[1])
    df = model_analysis.head_scores(model, mel, f0, token_ids=[5, 6, 7, 8])
    d = model.dims
    n_feat = len(d.features)
    counts = df.groupby("kind").size()
    assert counts[hs.ENCODER_SELF] == d.aud_idx * d.aud_head * n_feat
    assert counts[hs.DECODER_SELF] == d.text_idx * d.text_head
    assert counts[hs.DECODER_CROSS] == d.text_idx * d.text_head * n_feat
    enc = df[df.kind == hs.ENCODER_SELF]
    assert np.isfinite(enc[list(hs.SCORES)].to_numpy()).all()
    assert np.isfinite(df[["entropy_nats", "entropy_normalised"]].to_numpy()).all()
    assert ((df.entropy_normalised >= 0) & (df.entropy_normalised <= 1 + 1e-9)).all()
    assert df.attrs["forward_seconds"] > 0
    fig = FM.head_score_heatmaps(df, "pitch_spearman")
    assert len(fig.data) == 3
    assert fig.data[0].z.shape == (d.aud_idx, d.aud_head)
    assert fig.data[0].zmin == -1 and np.isnan(fig.data[1].z).all()
    with pytest.raises(ValueError, match="unknown score"):
        FM.head_score_heatmaps(df, "nope")


def test_a_capture_of_cached_decoding_is_refused_with_a_reason():
    """Greedy decoding with the key/value cache records one-query decoder maps; the table asks
    for a teacher-forced forward instead of failing somewhere inside."""
    import torch

    from echo_core import decode, hooks
    from echo_core.model import Echo
    from echo_core.model_dims import EchoDims

    torch.manual_seed(0)
    model = Echo(EchoDims(vocab=30, text_ctx=8, text_dims=32, text_head=2, text_idx=1, mels=12,
                          aud_ctx=100, aud_dims=32, aud_head=2, aud_idx=1, f0_rotary=True,
                          decoder_mask="causal")).eval()
    f0 = torch.full((1, 60), 150.0)
    with hooks.capture(model, depth="full") as cache:
        decode.greedy_ids(model, torch.randn(1, 12, 60), f0, max_tokens=3)
    with pytest.raises(errors.CaptureError, match="teacher-forced forward"):
        hs.head_score_table(cache, model, f0[0].numpy())


@pytest.mark.parametrize("f0_rotary", [False, True])
def test_rope_info_prior_matches_the_models_own_rotations(f0, f0_rotary):
    """The prior read from a module equals the cosine similarity of the rotations the module
    itself applies (torch, learned inv_freq or theta_eff by the voiced-mean rule)."""
    import torch

    from echo_core.model_layers import MultiheadA

    torch.manual_seed(0)
    m = MultiheadA(64, 4, audio=True, f0_rotary=f0_rotary, f0_mean="voiced")
    with torch.no_grad():
        m.rope.inv_freq.mul_(torch.linspace(0.5, 3.0, 8))  # "learned": not the initial base
        m.rope.theta.fill_(7000.0)
        f0_model = torch.from_numpy(np.nan_to_num(f0, nan=0.0)).float()[None]
        rot = m.rope(N, f0_model if f0_rotary else None)[0]  # (N, d/2) complex
    expected = (rot[:, None, :] * rot[None, :, :].conj()).real.mean(-1).double().numpy()
    i, j = np.meshgrid(np.arange(N), np.arange(N), indexing="ij")
    got = priors.rotary_prior(priors.rope_info(m), i.ravel(), j.ravel(), f0).reshape(N, N)
    assert np.allclose(got, expected, atol=1e-4)
