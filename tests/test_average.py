"""Checkpoint averaging (echo_core.average): the mean is the mean, dims must agree."""

import pytest
import torch

from echo_core.average import average_checkpoints, average_state, main
from echo_core.checkpoint import load_checkpoint, save_checkpoint
from echo_core.errors import CheckpointError
from echo_core.model import Echo
from echo_core.model_dims import EchoDims
from echo_core.tokenizer import CharTokenizer


def _tiny(folder, seed, **extra):
    torch.manual_seed(seed)
    dims = EchoDims(vocab=CharTokenizer().vocab_size, text_ctx=16, text_dims=32, text_head=2,
                    text_idx=1, mels=16, aud_ctx=64, aud_dims=32, aud_head=2, aud_idx=1,
                    ctc_head=True, **extra)
    model = Echo(dims)
    save_checkpoint(model, folder, meta={"features": {"n_mels": 16}, "seed": seed})
    CharTokenizer().save(folder)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_average_is_the_weighted_mean_of_every_tensor(tmp_path):
    a = _tiny(tmp_path / "a", 0)
    b = _tiny(tmp_path / "b", 1)
    out = average_checkpoints([tmp_path / "a", tmp_path / "b"], tmp_path / "soup")
    soup = load_checkpoint(out)
    state = soup.state_dict()
    assert set(state) == set(a) and any(k.startswith("ctc.") for k in state)
    differs = 0
    for k in a:
        torch.testing.assert_close(state[k], (a[k] + b[k]) / 2, rtol=0, atol=1e-6)
        differs += not torch.equal(a[k], b[k])
    assert differs > 10  # the two seeds really differ
    assert soup.meta["averaged_from"] == [{"checkpoint": "a", "weight": 1.0},
                                          {"checkpoint": "b", "weight": 1.0}]
    assert soup.meta["seed"] == 0 and (out / "tokenizer.json").exists()
    main(["--out", str(tmp_path / "w"), "--weights", "3,1", str(tmp_path / "a"),
          str(tmp_path / "b")])
    weighted = load_checkpoint(tmp_path / "w").state_dict()
    for k in a:
        torch.testing.assert_close(weighted[k], (3 * a[k] + b[k]) / 4, rtol=0, atol=1e-6)


def test_average_refuses_what_cannot_be_averaged(tmp_path, capsys):
    _tiny(tmp_path / "a", 0)
    _tiny(tmp_path / "other", 0, f0_rotary=False, decoder_mask="causal")
    with pytest.raises(CheckpointError, match="other dims"):
        average_checkpoints([tmp_path / "a", tmp_path / "other"], tmp_path / "x")
    _tiny(tmp_path / "dropped", 1, dropout=0.2)  # training-only: the weights still mix
    mixed = load_checkpoint(average_checkpoints([tmp_path / "a", tmp_path / "dropped"],
                                                tmp_path / "mixed"))
    assert mixed.dims.dropout == 0.0
    with pytest.raises(SystemExit) as caught:  # the CLI: a message, no traceback
        main(["--out", str(tmp_path / "y"), str(tmp_path / "a"), str(tmp_path / "other")])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "other dims" in err and "Traceback" not in err
    with pytest.raises(CheckpointError, match="at least two"):
        average_checkpoints([tmp_path / "a"], tmp_path / "x")
    state = {"w": torch.ones(2)}
    with pytest.raises(CheckpointError, match="shapes differ"):
        average_state([state, {"w": torch.ones(3)}], [1, 1])
    with pytest.raises(CheckpointError, match="non-float"):
        average_state([{"n": torch.tensor([1])}, {"n": torch.tensor([2])}], [1, 1])
    with pytest.raises(CheckpointError, match="weights must be"):
        average_state([state, state], [1, -1])


def test_card_reproduces_an_average_by_training_then_averaging(tmp_path):
    """The model card of an averaged checkpoint names the first source's training command
    (with that source's --out) and then the average, not a training of the average itself."""
    from echo_core.study_cards import _make_commands
    from echo_core.train import TrainConfig, _train_settings

    settings = _train_settings(TrainConfig(data="", out="", lr=3e-4, spectral_tilt=0.9))
    for name, seed in (("stage9", 0), ("stage8", 1)):
        _tiny(tmp_path / name, seed)
        model = load_checkpoint(tmp_path / name)
        save_checkpoint(model, tmp_path / name, meta={**model.meta, "train": settings})
    soup = average_checkpoints([tmp_path / "stage9", tmp_path / "stage8"], tmp_path / "soup")
    e = {"run": str(soup), "preset": "mean_f0_theta", "seed": 0}
    text = _make_commands(e, {"key_padding_mask": True}, "data/x",
                          load_checkpoint(soup).meta["averaged_from"])
    train, average = text.split(" then ")
    assert "--out runs/stage9" in train and "--spectral-tilt 0.9" in train
    assert average == "`python -m echo_core.average --out runs/soup runs/stage9 runs/stage8`"
    plain = _make_commands(dict(e, run=str(tmp_path / "stage8")), {}, "data/x")
    assert " then " not in plain and "--out runs/stage8" in plain
