"""Training on a tiny espeak corpus: the loss falls, checkpoints round-trip, resuming is exact."""

import json
import shlex
import shutil

import numpy as np
import pytest
import torch

from echo_core import corpus, train
from echo_core.train import TrainConfig, length_batches, lr_at

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is not installed (apt-get install espeak-ng)")
FEATURES = dict(n_mels=32, fmin=0.0, fmax=8000.0)


def _cfg(data, out, **kw):
    base = dict(data=str(data), out=str(out), config="tiny", steps=30, batch_frames=3000,
                max_batch=8, lr=3e-3, warmup=5, eval_every=1000, save_every=10, log_every=5,
                eval_clips=4, test_eval=False, progress=False, **FEATURES)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    root = tmp_path_factory.mktemp("digits")
    corpus.write_corpus(root, 20, seed=0, workers=1, progress=False)
    corpus.build_features(root, workers=1, progress=False, **FEATURES)
    return root


# --- pure pieces ----------------------------------------------------------------------------

def test_lr_schedule_warms_up_and_decays_to_floor():
    cfg = TrainConfig(data="x", out="y", steps=1000, warmup=100, lr=1e-3, min_lr_ratio=0.01)
    assert lr_at(0, cfg) == pytest.approx(1e-5)
    assert lr_at(99, cfg) == pytest.approx(1e-3)
    assert lr_at(100, cfg) == pytest.approx(1e-3)
    assert lr_at(1000, cfg) == pytest.approx(1e-5)
    lrs = [lr_at(s, cfg) for s in range(100, 1001)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_length_batches_cover_every_clip_once_within_budget():
    rng = np.random.default_rng(0)
    lengths = rng.integers(50, 500, 300)
    batches = length_batches(lengths, batch_frames=2000, max_batch=16, rng=rng)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(300))
    for b in batches:
        assert len(b) <= 16 and (len(b) == 1 or lengths[b].max() * len(b) <= 2000)
    # similar lengths: each batch spans a small part of the length range
    assert np.median([np.ptp(lengths[b]) for b in batches]) < 60


def test_unknown_preset_is_a_config_error():
    from echo_core.errors import ConfigError
    with pytest.raises(ConfigError, match="static_theta"):
        train.make_dims("nope", 31, 80)


# --- a real (tiny) run ----------------------------------------------------------------------

def _losses(out):
    return [r["loss"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines())
            if "loss" in r]


@needs_espeak
def test_training_lowers_loss_and_round_trips(tiny_corpus, tmp_path):
    from echo_core.checkpoint import load_checkpoint

    out = tmp_path / "run"
    model = train.train(_cfg(tiny_corpus, out))
    losses = _losses(out)
    assert len(losses) == 6 and losses[-1] < 0.85 * losses[0]
    for name in ("config.json", "model.safetensors", "tokenizer.json", "README.md"):
        assert (out / name).is_file()
    loaded = load_checkpoint(out)
    assert loaded.meta["features"] == FEATURES and loaded.meta["steps"] == 30
    card = (out / "README.md").read_text()  # the card's command trains this run again
    command = card.split("Reproduce (from the same corpus): `")[1].split("`")[0]
    args = shlex.split(command)[3:]
    assert args[args.index("--data") + 1] == str(tiny_corpus)
    assert args[args.index("--steps") + 1] == "30" and args[args.index("--config") + 1] == "tiny"
    assert args[args.index("--n-mels") + 1] == "32"  # the tiny corpus's features, not the default
    assert "not scored at the end of training" in card  # the tiny run skips its test eval
    from echo_core.train_card import _test_row
    assert "12.50% / 3.00% on 8 clips" in _test_row({"wer": 0.125, "cer": 0.03, "clips": 8})
    spec = torch.randn(1, 32, 60)
    f0 = torch.full((1, 60), 120.0)
    ids = torch.tensor([[1, 5, 6, 7]])
    with torch.no_grad():
        a = model.eval()(ids, spectrogram=spec, f0=f0)["logits"]
        b = loaded(ids, spectrogram=spec, f0=f0)["logits"]
    assert torch.equal(a, b)


@needs_espeak
def test_resume_continues_exactly(tiny_corpus, tmp_path):
    from echo_core.checkpoint import load_checkpoint

    straight = tmp_path / "straight"
    train.train(_cfg(tiny_corpus, straight, steps=20))
    resumed = tmp_path / "resumed"
    train.train(_cfg(tiny_corpus, resumed, steps=20, stop_at=10))
    assert not (resumed / "model.safetensors").exists()  # interrupted: only the resumable state
    # the second call finds resumed/last (step 10) and continues to step 20
    train.train(_cfg(tiny_corpus, resumed, steps=20))
    a = load_checkpoint(straight).state_dict()
    b = load_checkpoint(resumed).state_dict()
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)
    assert _losses(straight) == pytest.approx(_losses(resumed), rel=1e-5)


@needs_espeak
def test_init_starts_from_a_checkpoints_weights(tiny_corpus, tmp_path):
    """--init copies a checkpoint's weights (fine-tuning); zero learning rate keeps them exactly,
    the meta names the source, and a model of other dims is refused with the fields that differ."""
    from echo_core.checkpoint import load_checkpoint
    from echo_core.errors import ConfigError

    first = tmp_path / "first"
    train.train(_cfg(tiny_corpus, first, steps=10))
    tuned = tmp_path / "tuned"
    train.train(_cfg(tiny_corpus, tuned, steps=5, lr=0.0, weight_decay=0.0, init=str(first)))
    a, b = load_checkpoint(first).state_dict(), load_checkpoint(tuned).state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    assert load_checkpoint(tuned).meta["init_from"] == {"checkpoint": "first", "its_steps": 10}
    again = tmp_path / "again"  # a second stage counts every step behind its weights
    train.train(_cfg(tiny_corpus, again, steps=3, lr=0.0, weight_decay=0.0, init=str(tuned)))
    assert load_checkpoint(again).meta["init_from"] == {"checkpoint": "tuned", "its_steps": 15}
    centred = tmp_path / "centred"  # a stage may turn on the mean normalisation and dropout
    train.train(_cfg(tiny_corpus, centred, steps=2, lr=0.0, weight_decay=0.0, init=str(first),
                     overrides={"mel_mean_norm": 3, "dropout": 0.2}))
    c = load_checkpoint(centred)
    assert c.dims.mel_mean_norm == 3 and load_checkpoint(first).dims.mel_mean_norm == 0
    assert c.dims.dropout == 0.2 and load_checkpoint(first).dims.dropout == 0.0
    for k, v in c.state_dict().items():
        torch.testing.assert_close(a[k], v, rtol=0, atol=0, msg=k)
    with pytest.raises(ConfigError, match="aud_dims"):
        train.train(_cfg(tiny_corpus, tmp_path / "other", steps=5, init=str(first),
                         overrides={"aud_dims": 64, "text_dims": 64}))
    assert not (tmp_path / "other").exists()
    from echo_core.errors import EchoError
    with pytest.raises(EchoError, match="does not exist"):  # a mistyped --init
        train.train(_cfg(tiny_corpus, tmp_path / "typo", steps=5, init=str(tmp_path / "firts")))
    assert not (tmp_path / "typo").exists()


@needs_espeak
def test_a_stage_starts_its_ctc_head_from_the_checkpoints(tiny_corpus, tmp_path):
    """With --init, the training CTC head starts from the source's head (at zero lr the final
    head is the source's exactly), so the first loss is the trained model's, not a fresh
    head's; --no-init-ctc draws a fresh head, and the reproduce command says so."""
    from echo_core.checkpoint import load_checkpoint
    from echo_core.study_cards import train_command

    ctc = dict(ctc_weight=0.5, overrides={"key_padding_mask": True})
    first = tmp_path / "first"
    train.train(_cfg(tiny_corpus, first, steps=30, **ctc))
    source = load_checkpoint(first)
    for init_ctc, out in ((True, tmp_path / "copied"), (False, tmp_path / "fresh")):
        train.train(_cfg(tiny_corpus, out, steps=5, lr=0.0, weight_decay=0.0, init=str(first),
                         init_ctc=init_ctc, **ctc))
        tuned = load_checkpoint(out)
        assert tuned.meta["init_from"]["ctc_head"] == ("copied" if init_ctc else "fresh")
        same = torch.equal(tuned.ctc.weight, source.ctc.weight)
        assert same == init_ctc
    copied, fresh = (_losses(tmp_path / name)[0] for name in ("copied", "fresh"))
    assert copied < fresh  # the source head has learned something; a fresh one has not
    e = {"run": str(tmp_path / "fresh"), "preset": "tiny", "seed": 0}
    assert "--no-init-ctc" in train_command(e, {"key_padding_mask": True})
    assert "init-ctc" not in train_command({**e, "run": str(tmp_path / "copied")},
                                           {"key_padding_mask": True})
    from echo_core.checkpoint import save_checkpoint  # a stage trained before the switch
    older = load_checkpoint(tmp_path / "copied")
    settings = {k: v for k, v in older.meta["train"].items() if k != "init_ctc"}
    save_checkpoint(older, tmp_path / "older", meta={**older.meta, "train": settings})
    assert "--no-init-ctc" in train_command({**e, "run": str(tmp_path / "older")},
                                            {"key_padding_mask": True})


def test_every_setting_that_changes_the_learning_is_in_the_meta():
    """A checkpoint's meta["train"] names every setting that changes what it learns, so its
    card's reproduce command is complete (--band-limit was once missing). The rest are
    bookkeeping or recorded elsewhere in the meta (preset, seed, features, init_from, dims)."""
    from dataclasses import fields

    from echo_core.train import TrainConfig, _train_settings

    elsewhere = {"data", "out", "config", "seed", "eval_every", "eval_clips", "save_every",
                 "log_every", "threads", "n_mels", "fmin", "fmax", "test_eval", "stop_at",
                 "progress", "init", "overrides"}
    names = {f.name for f in fields(TrainConfig)}
    assert elsewhere <= names
    assert set(_train_settings(TrainConfig(data="", out=""))) == names - elsewhere
