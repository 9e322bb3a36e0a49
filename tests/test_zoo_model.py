"""The model zoo's switches: key padding mask (a padded batch = clips alone), the frozen-theta
control (nothing trains its frequencies) and the null-F0 control (contours swapped)."""

import numpy as np
import pytest
import torch

from echo_core import rotary as R
from echo_core.decode import batch_greedy
from echo_core.errors import ConfigError
from echo_core.model import Echo, centre_mel, cosine_basis
from echo_core.model_dims import EchoDims
from echo_core.tokenizer import CharTokenizer
from echo_core.train import (BASE_DIMS, PRESETS, borrowed_contours, corpus_theta, make_dims)

TINY = {k: v for k, v in PRESETS["tiny"].items() if k != "f0_rotary"}
VARIANTS = {
    "learned": dict(f0_rotary=False),
    "frozen": dict(f0_rotary=False, freeze_theta=14321.0),
    "mean_f0": dict(f0_rotary=True),
    "mean_f0_bias": dict(f0_rotary=True, pitch_bias=True),
    "per_frame": dict(f0_rotary=True, theta_mode="per_frame"),
    "mel_mean_norm": dict(f0_rotary=True, mel_mean_norm=16),
    "mel_mean_norm_3": dict(f0_rotary=True, mel_mean_norm=3),
    "dropout": dict(f0_rotary=True, dropout=0.3),  # eval mode: no dropout, padding as alone
}


def _model(variant, key_padding_mask=True, seed=0):
    torch.manual_seed(seed)
    dims = make_dims("tiny", 31, 16, {**TINY, **VARIANTS[variant], "mels": 16,
                                      "key_padding_mask": key_padding_mask})
    return Echo(dims).eval()


def _batch(lengths, n_mels=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    T = max(lengths)
    spec = torch.randn(len(lengths), n_mels, T, generator=g)
    f0 = 80 + 200 * torch.rand(len(lengths), T, generator=g)
    f0[torch.rand(len(lengths), T, generator=g) < 0.3] = 0.0  # unvoiced frames
    return spec, f0


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_padded_batch_gives_each_clip_its_own_logits(variant):
    model = _model(variant)
    lengths = [37, 64, 51, 20]
    spec, f0 = _batch(lengths)
    spec[0, :, 37:] = 5.0  # whatever the padding holds must not matter
    f0[0, 37:] = 300.0
    ids = torch.randint(3, 31, (4, 7), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        batched = model(ids, spectrogram=spec, f0=f0, lengths=lengths)["logits"]
        for b, n in enumerate(lengths):
            alone = model(ids[b:b + 1], spectrogram=spec[b:b + 1, :, :n],
                          f0=f0[b:b + 1, :n])["logits"]
            assert torch.allclose(batched[b:b + 1], alone, atol=1e-5), variant


def test_without_the_switch_padding_changes_logits():
    model = _model("mean_f0", key_padding_mask=False)
    spec, f0 = _batch([30, 60])
    ids = torch.randint(3, 31, (2, 5))
    with torch.no_grad():
        batched = model(ids, spectrogram=spec, f0=f0)["logits"]
        alone = model(ids[:1], spectrogram=spec[:1, :, :30], f0=f0[:1, :30])["logits"]
    assert (batched[:1] - alone).abs().max() > 1e-4


@pytest.mark.parametrize("variant", ["mean_f0_bias", "per_frame"])
def test_batch_greedy_matches_one_clip_at_a_time(variant):
    model = _model(variant)
    tokenizer = CharTokenizer()
    rng = np.random.default_rng(3)
    mels = [rng.normal(size=(16, n)).astype(np.float32) for n in (25, 70, 44)]
    f0s = [np.where(rng.random(m.shape[1]) < 0.7, 90 + 150 * rng.random(m.shape[1]), 0.0)
           .astype(np.float32) for m in mels]
    together = batch_greedy(model, mels, f0s, tokenizer)
    alone = [batch_greedy(model, [m], [f], tokenizer)[0] for m, f in zip(mels, f0s)]
    assert together == alone


def test_padding_rejects_bad_lengths_and_unsupported_features():
    model = _model("mean_f0")
    spec, f0 = _batch([10, 20])
    with pytest.raises(Exception, match="lengths"):
        model(torch.ones(2, 3, dtype=torch.long), spectrogram=spec, f0=f0, lengths=[10, 21])
    with pytest.raises(ConfigError, match="key_padding_mask"):
        EchoDims.from_dict({**BASE_DIMS, "vocab": 31, "features": ["spectrogram", "pitch"],
                            "key_padding_mask": True})


@pytest.mark.parametrize("terms", [None, 16, 3, 1])
def test_centre_mel_removes_the_smooth_part_of_each_clips_own_mean(terms):
    """Against scipy's orthonormal DCT: the clip's mean over its real frames, its first
    ``terms`` cosine terms kept (all: the mean itself), subtracted; padding stays 0."""
    from scipy.fft import dct, idct

    spec, _ = _batch([12, 30, 7])
    lengths = [12, 30, 7]
    frames = torch.arange(30)[None, :] < torch.tensor(lengths)[:, None]
    out = centre_mel(spec, frames, terms=terms).numpy()
    for b, n in enumerate(lengths):
        clip = spec[b, :, :n].numpy().astype(np.float64)
        c = dct(clip.mean(axis=1), norm="ortho")
        c[16 if terms is None else terms:] = 0.0
        expected = clip - idct(c, norm="ortho")[:, None]
        np.testing.assert_allclose(out[b, :, :n], expected, atol=1e-5)
        assert not out[b, :, n:].any()  # padding stays zero
    alone = centre_mel(spec[1:2], terms=terms).numpy()
    np.testing.assert_allclose(alone, out[1:2], atol=1e-5)


def test_cosine_basis_is_orthonormal():
    basis = cosine_basis(16, 16).double()
    torch.testing.assert_close(basis.T @ basis, torch.eye(16, dtype=torch.float64), atol=1e-6,
                               rtol=0)


@pytest.mark.parametrize("terms", [16, 3])
def test_mel_mean_norm_makes_logits_blind_to_a_fixed_colouring(terms):
    """A colouring of the whole clip within the removed terms (any constant per channel when
    all are removed) changes nothing with the switch on, and changes the logits without it."""
    spec, f0 = _batch([40, 40])
    if terms == 16:
        colour = torch.linspace(-1.5, 1.0, 16)
    else:  # level, tilt and curvature: a mix of the first three cosines
        colour = cosine_basis(16, 3) @ torch.tensor([2.0, -1.5, 0.7])
    ids = torch.randint(3, 31, (2, 6), generator=torch.Generator().manual_seed(2))
    for switch in (terms, 0):
        torch.manual_seed(0)
        dims = make_dims("tiny", 31, 16, {**TINY, "f0_rotary": True, "mels": 16,
                                          "key_padding_mask": True, "mel_mean_norm": switch})
        model = Echo(dims).eval()
        with torch.no_grad():
            plain = model(ids, spectrogram=spec, f0=f0, lengths=[40, 25])["logits"]
            coloured = model(ids, spectrogram=spec + colour[None, :, None], f0=f0,
                             lengths=[40, 25])["logits"]
        assert torch.allclose(plain, coloured, atol=1e-4) == bool(switch)


def test_mel_mean_norm_is_checked():
    with pytest.raises(ConfigError, match="mel_mean_norm"):
        EchoDims.from_dict({**BASE_DIMS, "vocab": 31, "features": ["waveform"],
                            "mel_mean_norm": 3})
    with pytest.raises(ConfigError, match="mel_mean_norm"):
        EchoDims.from_dict({**BASE_DIMS, "vocab": 31, "mel_mean_norm": BASE_DIMS["mels"] + 1})
    with pytest.raises(ConfigError, match="mel_mean_norm"):
        EchoDims.from_dict({**BASE_DIMS, "vocab": 31, "mel_mean_norm": True})


def test_dropout_drops_each_residual_branch_while_training_only():
    """Each block's self-attention and MLP outputs are dropped (the kept ones scaled by
    1/(1-p)) before they join x: with both branches stubbed to constants, every element of
    out - x is one of the four sums the two masks allow, about p of each branch is dropped,
    and eval mode adds both branches whole."""
    from echo_core.model_layers import Residual

    p, d = 0.4, 8
    block = Residual(d, 2, cross_attn=False, dropout=p)
    a, m = torch.full((1, 50, d), 1.0), torch.full((1, 50, d), 10.0)
    block.attna.forward = lambda *args, **kw: a
    block.mlp.forward = lambda h: m
    block.mlp_gate.forward = lambda h: torch.ones(h.shape[:-1] + (1,))
    x = torch.randn(1, 50, d)
    block.eval()
    torch.testing.assert_close(block(x) - x, a + m)
    block.train()
    torch.manual_seed(0)
    added = block(x) - x
    scale = 1 / (1 - p)
    allowed = torch.tensor([0.0, 1.0 * scale, 10.0 * scale, 11.0 * scale])
    nearest = (added[..., None] - allowed).abs().min(-1)
    assert nearest.values.max() < 1e-5
    kinds = nearest.indices
    attention_kept = ((kinds == 1) | (kinds == 3)).float().mean().item()
    mlp_kept = ((kinds == 2) | (kinds == 3)).float().mean().item()
    assert abs(attention_kept - (1 - p)) < 0.1 and abs(mlp_kept - (1 - p)) < 0.1


def test_dropout_leaves_eval_logits_alone_and_is_checked():
    """A model with dropout gives, in eval mode, the logits of the same weights without it;
    in train mode it draws; the value must be a probability below 1."""
    spec, f0 = _batch([30])
    ids = torch.randint(3, 31, (1, 5), generator=torch.Generator().manual_seed(3))
    plain, dropped = _model("mean_f0"), _model("dropout")
    dropped.load_state_dict(plain.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(dropped(ids, spectrogram=spec, f0=f0)["logits"],
                                   plain(ids, spectrogram=spec, f0=f0)["logits"])
        dropped.train()
        assert not torch.allclose(dropped(ids, spectrogram=spec, f0=f0)["logits"],
                                  plain(ids, spectrogram=spec, f0=f0)["logits"])
    for bad in (1.0, -0.1, True, "0.1"):
        with pytest.raises(ConfigError, match="dropout"):
            EchoDims.from_dict({**BASE_DIMS, "vocab": 31, "dropout": bad})


def test_frozen_theta_frequencies_never_train():
    model = _model("frozen", key_padding_mask=False)
    ropes = [m for m in model.modules() if m.__class__.__name__ == "rotary"]
    expected = torch.as_tensor(R.inv_freq(ropes[0].dims, 14321.0), dtype=torch.float32)
    names = {n for n, _ in model.named_parameters()}
    assert not any(n.endswith("inv_freq") for n in names)
    assert all(torch.equal(r.inv_freq, expected) for r in ropes)
    assert any(k.endswith("rope.inv_freq") for k in model.state_dict())  # saved with the weights
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    spec, f0 = _batch([30, 30])
    ids = torch.randint(3, 31, (2, 6))
    for _ in range(3):
        loss = model(ids, spectrogram=spec, labels=ids)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(torch.equal(r.inv_freq, expected) for r in ropes)
    learned = _model("learned", key_padding_mask=False)
    assert any(n.endswith("inv_freq") for n, _ in learned.named_parameters())


def test_frozen_theta_excludes_f0_and_corpus_theta_is_theta_eff_of_the_mean():
    with pytest.raises(ConfigError, match="freeze_theta"):
        EchoDims.from_dict({**BASE_DIMS, "vocab": 31, "f0_rotary": True, "freeze_theta": 1e4})
    with pytest.raises(ConfigError, match="freeze_theta"):
        EchoDims.from_dict({**BASE_DIMS, "vocab": 31, "freeze_theta": -1.0})
    f0s = [np.array([100.0, np.nan, 200.0]), np.array([np.nan, 300.0]), np.array([900.0])]
    assert corpus_theta(f0s, [0, 1]) == pytest.approx(R.theta_eff(10000.0, 200.0))


def test_null_contours_are_other_clips_stretched():
    # contour i is constant at 100 + i Hz, so a borrowed contour names its source clip
    f0s = [np.full(20 + 5 * i, 100.0 + i) for i in range(8)]
    f0s[3][::2] = np.nan
    pool = np.arange(8)
    out = borrowed_contours(pool, f0s, pool, np.random.default_rng(0))
    sources = []
    for i, contour in enumerate(out):
        assert contour.shape == f0s[i].shape  # stretched onto the clip's own frames
        j = int(round(np.nanmax(contour) - 100))
        assert j != i
        assert np.allclose(contour, R.f0_at_positions(f0s[j], f0s[i].size), equal_nan=True)
        sources.append(j)
    assert len(set(sources)) > 2  # random, not one fixed donor


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    import shutil

    from echo_core import corpus

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    root = tmp_path_factory.mktemp("digits")
    corpus.write_corpus(root, 16, seed=0, workers=1, progress=False)
    corpus.build_features(root, n_mels=16, fmax=8000.0, workers=1, progress=False)
    return root


def _train(tiny_corpus, tmp_path, config, monkeypatch=None, seen=None):
    from echo_core import train

    if monkeypatch is not None:
        original = train.collate

        def spy(indices, mels, f0s, token_ids, augment=None):
            if augment is not None:  # training batches only
                seen.append({int(i): np.asarray(f0s[i]) for i in indices})
            return original(indices, mels, f0s, token_ids, augment)

        monkeypatch.setattr(train, "collate", spy)
    cfg = train.TrainConfig(data=str(tiny_corpus), out=str(tmp_path / config), config=config,
                            steps=2, batch_frames=3000, max_batch=4, warmup=1, eval_every=1000,
                            save_every=1000, eval_clips=2, test_eval=False, progress=False,
                            n_mels=16, fmax=8000.0,
                            overrides={**TINY, "key_padding_mask": True})
    return train.train(cfg)


def test_null_f0_training_swaps_contours(tiny_corpus, tmp_path, monkeypatch):
    from echo_core.corpus import load_features

    seen = []
    model = _train(tiny_corpus, tmp_path, "null_f0_theta", monkeypatch, seen)
    assert model.meta["f0_input"] == "borrowed" and model.dims.key_padding_mask
    _, _, f0s = load_features(tiny_corpus, 16, 0.0, 8000.0, build=False)
    swapped = 0
    for batch in seen:
        for i, contour in batch.items():
            assert contour.shape == f0s[i].shape
            swapped += not np.allclose(contour, f0s[i], equal_nan=True)
    assert seen and swapped == sum(len(b) for b in seen)


def test_frozen_theta_training_fixes_theta_from_the_corpus(tiny_corpus, tmp_path):
    from echo_core.corpus import load_features

    model = _train(tiny_corpus, tmp_path, "frozen_theta")
    specs, _, f0s = load_features(tiny_corpus, 16, 0.0, 8000.0, build=False)
    train_idx = [i for i, s in enumerate(specs) if s.split == "train"]
    assert model.dims.freeze_theta == pytest.approx(corpus_theta(f0s, train_idx), abs=1e-3)
    rope = model.encoder.blocks["spectrogram"][1].attna.rope
    assert torch.allclose(rope.inv_freq, torch.as_tensor(
        R.inv_freq(rope.dims, model.dims.freeze_theta), dtype=torch.float32))
