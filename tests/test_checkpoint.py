"""echo_core.checkpoint: every format, config inference, safety, errors, save and diff."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from echo_core.checkpoint import (
    CheckpointDtypeError,
    CheckpointTooLargeError,
    KeyMismatchError,
    NotACheckpointError,
    OverrideConflictError,
    ShapeMismatchError,
    UnsafeCheckpointError,
    diff_checkpoints,
    implied_theta,
    infer_dims,
    load_checkpoint,
    save_checkpoint,
)
from echo_core.errors import CheckpointError, ConfigError
from echo_core.model import Echo
from echo_core.model_dims import EchoDims

NOT_INFERABLE = ("act", "f0_rotary", "aud_ctx", "debug")


@pytest.fixture(scope="module")
def vector(reference_vector):
    return reference_vector


def logits_of(model, inputs):
    with torch.no_grad():
        return model(inputs["input_ids"], spectrogram=inputs["spectrogram"],
                     f0=inputs["f0"])["logits"]


def small_model(seed=0, **kw) -> Echo:
    torch.manual_seed(seed)
    fields = dict(vocab=30, text_ctx=16, text_dims=32, text_head=2, text_idx=1, mels=12,
                  aud_ctx=100, aud_dims=32, aud_head=2, aud_idx=1)
    return Echo(EchoDims(**{**fields, **kw})).eval()


# ---------------------------------------------------------------------------------------------
# Inference of dimensions

def test_infer_dims_from_bare_reference_state_dict(vector):
    config, state, _, _ = vector
    dims = infer_dims(state, f0_rotary=True, aud_ctx=config["aud_ctx"])
    assert dims.to_dict() == {**EchoDims.from_dict(config).to_dict()}
    inferred = infer_dims(state).to_dict()
    for key, value in config.items():
        if key not in NOT_INFERABLE:
            assert inferred[key] == value, key


@pytest.mark.parametrize("kw", [
    dict(text_idx=3, aud_idx=2, text_head=4, aud_head=8, text_dims=64, aud_dims=64),
    dict(features=["waveform", "pitch"], cross_attn=False, text_idx=2),
    dict(features=["spectrogram", "waveform", "pitch"], variable_radius=True, mels=20),
])
def test_infer_dims_recovers_every_inferable_field(kw):
    model = small_model(**kw)
    inferred = infer_dims(model.state_dict()).to_dict()
    for key, value in model.dims.to_dict().items():
        if key in NOT_INFERABLE or (key == "mels" and "spectrogram" not in model.dims.features):
            continue  # mels is read from the spectrogram front end only
        assert inferred[key] == value, key


def test_infer_dims_overrides_contradicting_the_weights(vector):
    _, state, _, _ = vector
    with pytest.raises(OverrideConflictError, match="text_dims=128"):
        infer_dims(state, text_dims=128)
    with pytest.raises(OverrideConflictError, match="features"):
        infer_dims(state, features=["waveform"])
    with pytest.raises(ConfigError, match="nonsense"):
        infer_dims(state, nonsense=1)
    assert infer_dims(state, act="relu").act == "relu"


def test_features_order_is_an_override_of_the_same_set():
    model = small_model(features=["pitch", "spectrogram"])
    assert infer_dims(model.state_dict()).features == ["spectrogram", "pitch"]
    assert infer_dims(model.state_dict(), features=["pitch", "spectrogram"]).features == \
        ["pitch", "spectrogram"]


# ---------------------------------------------------------------------------------------------
# Every loading format reproduces the reference logits

def _write(kind: str, state: dict, root: Path) -> Path:
    if kind == "hf_bin":
        root.mkdir()
        torch.save(state, root / "pytorch_model.bin")
        return root
    if kind == "hf_safetensors":
        root.mkdir()
        save_file(state, str(root / "model.safetensors"))
        return root
    path = root.with_suffix({"file_safetensors": ".safetensors", "file_bin": ".bin",
                             "file_pt": ".pt"}[kind])
    if kind == "file_safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


@pytest.mark.parametrize("kind", ["hf_bin", "hf_safetensors", "file_safetensors", "file_bin",
                                  "file_pt"])
def test_reference_formats_load_and_match(vector, tmp_path, kind):
    _, state, inputs, expected = vector
    path = _write(kind, state, tmp_path / "ckpt")
    model = load_checkpoint(path, f0_rotary=True)
    assert not model.training
    assert model.meta["source"] == "reference"
    assert model.dims.decoder_mask == "additive"
    torch.testing.assert_close(logits_of(model, inputs), expected["logits"], atol=1e-4, rtol=0)


def test_project_folder_round_trip(vector, tmp_path):
    config, state, inputs, expected = vector
    model = Echo(EchoDims.from_dict({**config, "pitch_bias_scale": 0.5})).eval()
    model.load_state_dict(state)
    out = save_checkpoint(model, tmp_path / "proj", meta={"tokenizer": "tok.json", "seed": 3})
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    saved = json.loads((out / "config.json").read_text())
    assert saved["dims"] == model.dims.to_dict() and saved["meta"] == {"tokenizer": "tok.json",
                                                                         "seed": 3}
    loaded = load_checkpoint(out)
    assert loaded.dims == model.dims
    assert loaded.meta["source"] == "project" and loaded.meta["seed"] == 3
    assert Path(loaded.meta["path"]) == out
    torch.testing.assert_close(logits_of(loaded, inputs), expected["logits"], atol=1e-4, rtol=0)
    # the config also travels inside the safetensors file
    alone = load_checkpoint(out / "model.safetensors")
    assert alone.dims == model.dims and alone.meta["source"] == "project"
    # re-saving a loaded model does not write the load-time keys
    save_checkpoint(loaded, tmp_path / "again")
    assert "source" not in json.loads((tmp_path / "again" / "config.json").read_text())["meta"]


def test_hf_config_json_supplies_fields_it_names(vector, tmp_path):
    _, state, inputs, expected = vector
    folder = _write("hf_bin", state, tmp_path / "hf")
    (folder / "config.json").write_text(json.dumps({"f0_rotary": True, "act": "gelu",
                                                    "architectures": ["Echo"]}))
    model = load_checkpoint(folder)
    assert model.dims.f0_rotary and model.meta["source"] == "reference"
    torch.testing.assert_close(logits_of(model, inputs), expected["logits"], atol=1e-4, rtol=0)


def test_wrapped_and_prefixed_state_dicts(tmp_path):
    model = small_model()
    torch.save({"state_dict": {"model." + k: v for k, v in model.state_dict().items()}},
               tmp_path / "w.pt")
    loaded = load_checkpoint(tmp_path / "w.pt")
    for k, v in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v)


def test_shared_tensors_save(tmp_path):
    model = small_model()
    block = model.decoder._blocks[0]
    block.lnb.weight = block.lna.weight  # tie two parameters: shared storage in the state dict
    save_checkpoint(model, tmp_path / "tied")
    loaded = load_checkpoint(tmp_path / "tied")
    torch.testing.assert_close(loaded.decoder._blocks[0].lnb.weight, block.lna.weight)


# ---------------------------------------------------------------------------------------------
# Safety: pickled code is never executed

class Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


@pytest.mark.parametrize("writer", ["torch_zip", "legacy_pickle"])
def test_malicious_pickle_is_refused_without_running(tmp_path, writer):
    marker = tmp_path / "marker"
    state = {**small_model().state_dict(), "evil": Payload(marker)}
    path = tmp_path / "pytorch_model.bin"
    if writer == "torch_zip":
        torch.save(state, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(state, f, protocol=2)
    with pytest.raises(UnsafeCheckpointError, match="exec"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path)  # the same file found in a folder
    assert not marker.exists()
    if writer == "legacy_pickle":  # control: the payload is live under a plain unpickler
        with open(path, "rb") as f:
            pickle.load(f)
        assert marker.exists()


# ---------------------------------------------------------------------------------------------
# Errors

def test_not_a_checkpoint(tmp_path):
    (tmp_path / "random.bin").write_bytes(os.urandom(4096))
    (tmp_path / "random.safetensors").write_bytes(os.urandom(4096))
    (tmp_path / "notes.pt").write_text("these are not weights\n" * 20)
    (tmp_path / "empty.bin").write_bytes(b"")
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json!!}")
    for name in ["random.bin", "random.safetensors", "notes.pt", "empty.bin", "empty_dir",
                 "missing_path", "broken.safetensors"]:
        with pytest.raises(NotACheckpointError):
            load_checkpoint(tmp_path / name)
    torch.save({"a": [1, 2]}, tmp_path / "list.pt")
    with pytest.raises(NotACheckpointError, match="not tensors"):
        load_checkpoint(tmp_path / "list.pt")
    save_file({"x": torch.ones(3)}, str(tmp_path / "other_model.safetensors"))
    with pytest.raises(NotACheckpointError, match="decoder.token.weight"):
        load_checkpoint(tmp_path / "other_model.safetensors")


def test_missing_and_unexpected_keys_are_listed_and_truncated(tmp_path):
    state = small_model().state_dict()
    drop = [k for k in state if k.endswith((".fzero", ".min_theta", ".max_theta"))][:13]
    assert len(drop) == 13
    broken = {k: v for k, v in state.items() if k not in drop}
    broken.update({f"extra.{i}": torch.zeros(1) for i in range(2)})
    save_file(broken, str(tmp_path / "m.safetensors"))
    with pytest.raises(KeyMismatchError) as err:
        load_checkpoint(tmp_path / "m.safetensors")
    message = str(err.value)
    assert "13 missing" in message and "and 3 more" in message
    assert "2 unexpected: extra.0, extra.1" in message
    assert sorted(err.value.missing) == sorted(drop)


def test_shape_mismatch_is_listed(tmp_path):
    state = dict(small_model().state_dict())
    state["decoder._blocks.0.mlp.0.linear.weight"] = torch.zeros(100, 32)
    save_file(state, str(tmp_path / "m.safetensors"))
    with pytest.raises(ShapeMismatchError, match=r"mlp\.0\.linear\.weight: file \(100, 32\) vs "
                                                 r"model \(128, 32\)"):
        load_checkpoint(tmp_path / "m.safetensors")


def test_wrong_dtype(tmp_path):
    state = dict(small_model().state_dict())
    state["decoder.positional"] = state["decoder.positional"].to(torch.int32)
    save_file(state, str(tmp_path / "m.safetensors"))
    with pytest.raises(CheckpointDtypeError, match="decoder.positional"):
        load_checkpoint(tmp_path / "m.safetensors")
    half = {k: v.half() for k, v in small_model().state_dict().items()}  # floats are fine
    save_file(half, str(tmp_path / "h.safetensors"))
    assert load_checkpoint(tmp_path / "h.safetensors").decoder.positional.dtype == torch.float32


def test_override_conflict_and_size_limit(tmp_path):
    save_checkpoint(small_model(), tmp_path / "p")
    with pytest.raises(OverrideConflictError, match="aud_idx"):
        load_checkpoint(tmp_path / "p", aud_idx=4)
    assert load_checkpoint(tmp_path / "p", decoder_mask="causal").dims.decoder_mask == "causal"
    with pytest.raises(CheckpointTooLargeError, match="limit"):
        load_checkpoint(tmp_path / "p", max_bytes=1000)


def test_project_config_contradicting_weights(tmp_path):
    folder = save_checkpoint(small_model(), tmp_path / "p")
    config = json.loads((folder / "config.json").read_text())
    config["dims"]["text_idx"] = 3
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(OverrideConflictError, match="text_idx=3"):
        load_checkpoint(folder)


# ---------------------------------------------------------------------------------------------
# Comparing checkpoints

def test_diff_checkpoints_relative_changes():
    a, b = small_model(0), small_model(0)
    with torch.no_grad():
        w = b.decoder._blocks[0].mlp[0].linear.weight
        w.add_(0.1 * torch.ones_like(w))
        b.decoder._blocks[0].attna.rope.theta.fill_(12000.0)
        b.encoder.blocks.spectrogram[1].attna.rope.inv_freq.copy_(
            torch.tensor(5000.0) ** -(torch.arange(0, 16, 2) / 16))
    df = diff_checkpoints(a, b)
    rows = df.set_index("name")
    mlp = rows.loc["decoder._blocks.0.mlp.0"]
    wa = a.decoder._blocks[0].mlp[0].linear.weight.detach()
    ba = a.decoder._blocks[0].mlp[0].linear.bias.detach()
    norm_a = torch.sqrt((wa ** 2).sum() + (ba ** 2).sum())
    assert mlp["kind"] == "module"
    assert mlp["rel_change"] == pytest.approx(0.1 * wa.numel() ** 0.5 / norm_a.item(), rel=1e-5)
    assert rows.loc["decoder._blocks.0.mlp.2", "rel_change"] == 0.0
    theta = rows.loc["decoder._blocks.0.attna.rope.theta"]
    assert (theta["kind"], theta["a"], theta["b"]) == ("scalar", 10000.0, 12000.0)
    inv = rows.loc["encoder.blocks.spectrogram.1.attna.rope.inv_freq"]
    assert (inv["a"], inv["b"]) == pytest.approx((19000.0, 5000.0), rel=1e-4)
    assert {"decoder._blocks.0.blend", "decoder.blend.spectrogram",
            "decoder._blocks.0.attna.fzero"} <= set(df[df.kind == "scalar"].name)
    assert implied_theta(torch.tensor(10000.0) ** -(torch.arange(0, 8, 2) / 8)) == \
        pytest.approx(10000.0, rel=1e-6)


def test_diff_checkpoints_other_architecture_compares_common_keys(tmp_path):
    a, b = small_model(0), small_model(1, aud_idx=2)
    b.load_state_dict(a.state_dict(), strict=False)  # common weights equal, block 2 extra
    df = diff_checkpoints(a, save_checkpoint(b, tmp_path / "b"))
    assert df.attrs["only_in_a"] == []
    assert df.attrs["only_in_b"] and all(k.startswith("encoder.blocks.spectrogram.2.")
                                         for k in df.attrs["only_in_b"])
    assert len(df) > 50 and (df.rel_change == 0).all()
    with pytest.raises(CheckpointError, match="no parameter"):
        diff_checkpoints(a, {"x": torch.ones(2)})


def test_the_shape_check_skeleton_draws_nothing_and_loads_no_compiler(tmp_path):
    """The meta-device skeleton has the real model's keys and shapes; building it draws no
    random numbers (a real model after it starts the seed's stream as usual) and, in a fresh
    interpreter, loading a checkpoint does not import torch's compiler stack (torch._dynamo,
    which torch's normal_ on meta tensors pulls in: seconds on the first Model run)."""
    import subprocess
    import sys

    dims = EchoDims(vocab=31, text_ctx=16, text_dims=32, text_head=2, text_idx=1, mels=20,
                    aud_ctx=100, aud_dims=32, aud_head=2, aud_idx=1, decoder_mask="causal")
    with torch.device("meta"):
        skeleton = Echo(dims)
    real = Echo(dims)
    assert {k: v.shape for k, v in skeleton.state_dict().items()} == \
        {k: v.shape for k, v in real.state_dict().items()}
    torch.manual_seed(3)
    with torch.device("meta"):
        Echo(dims)
    after_skeleton = torch.rand(4)
    torch.manual_seed(3)
    assert torch.equal(after_skeleton, torch.rand(4))
    save_checkpoint(real, tmp_path / "ckpt")
    code = ("import sys; from echo_core.checkpoint import load_checkpoint; "
            f"load_checkpoint({str(tmp_path / 'ckpt')!r}); "
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
