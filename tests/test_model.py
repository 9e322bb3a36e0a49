"""echo_core.model against the reference vectors, brute-force math and the spec's key names."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from echo_core import rotary as R
from echo_core.errors import ConfigError, EchoError
from echo_core.model import Echo
from echo_core.model_dims import EchoDims
from echo_core.model_layers import (
    MultiheadA,
    apply_rotary,
    get_activation,
    rotary,
    sinusoids,
)



def small_dims(**kw) -> EchoDims:
    fields = dict(vocab=30, text_ctx=16, text_dims=32, text_head=2, text_idx=1, mels=12,
                  aud_ctx=100, aud_dims=32, aud_head=2, aud_idx=1)
    return EchoDims(**{**fields, **kw})


def small_inputs(batch=2, frames=24, tokens=6, mels=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    f0 = 100 + 150 * torch.rand(batch, frames, generator=g)
    f0[:, :3] = 0.0  # leading unvoiced frames
    return dict(input_ids=torch.randint(1, 30, (batch, tokens), generator=g),
                spectrogram=torch.randn(batch, mels, frames, generator=g), f0=f0)


# ---------------------------------------------------------------------------------------------
# Reference vectors

def test_reference_vector_logits_and_encoder(reference_vector):
    config, state, inputs, expected = reference_vector
    model = Echo(EchoDims.from_dict(config)).eval()
    model.load_state_dict(state, strict=True)
    with torch.no_grad():
        enc = model.encode(spectrogram=inputs["spectrogram"], f0=inputs["f0"])
        out = model(inputs["input_ids"], spectrogram=inputs["spectrogram"], f0=inputs["f0"])
    for feature in config["features"]:
        torch.testing.assert_close(enc[feature], expected[f"encoder.{feature}"], atol=1e-4, rtol=0)
    torch.testing.assert_close(out["logits"], expected["logits"], atol=1e-4, rtol=0)


def test_reference_vector_is_sensitive_to_the_quirks(reference_vector):
    """The vector pins the reference's decoder: a causal mask or ignoring f0 breaks the match."""
    config, state, inputs, expected = reference_vector
    for change in (dict(decoder_mask="causal"), dict(f0_rotary=False)):
        model = Echo(EchoDims.from_dict({**config, **change})).eval()
        model.load_state_dict(state, strict=True)
        with torch.no_grad():
            logits = model(inputs["input_ids"], spectrogram=inputs["spectrogram"],
                           f0=inputs["f0"])["logits"]
        assert (logits - expected["logits"]).abs().max() > 1e-3, change


def test_reference_state_dict_keys_match_exactly(reference_vector):
    config, state, _, _ = reference_vector
    assert set(Echo(EchoDims.from_dict(config)).state_dict()) == set(state)


# ---------------------------------------------------------------------------------------------
# Config

def test_dims_round_trip_and_defaults_are_reference_behaviour():
    dims = small_dims(features=["pitch", "spectrogram"], debug=["x"])
    assert EchoDims.from_dict(dims.to_dict()) == dims
    assert json.loads(json.dumps(dims.to_dict())) == dims.to_dict()
    d = small_dims()
    assert (d.decoder_mask, d.pitch_bias, d.pitch_bias_scale, d.theta_mode, d.variable_radius,
            d.act, d.cross_attn, d.f0_rotary, d.features) == (
        "additive", False, 1.0, "mean_f0", False, "gelu", True, False, ["spectrogram"])


@pytest.mark.parametrize("field, value", [
    ("bogus", 1), ("text_dims", 0), ("text_dims", 33), ("vocab", "40"), ("text_idx", -1),
    ("cross_attn", "yes"), ("features", ["spectrogram", "spectrogram"]), ("features", []),
    ("features", ["spec_phase"]), ("act", "swiglu"), ("decoder_mask", "future"),
    ("theta_mode", "frame"), ("pitch_bias_scale", float("nan")), ("aud_dims", 64),
    ("pitch_bias", 1), ("debug", "x"), ("spec_stride", 4), ("spec_stride", True),
    ("spec_stride", 0),
])
def test_from_dict_rejects_bad_fields_naming_them(field, value):
    fields = {**small_dims().to_dict(), field: value}
    with pytest.raises(ConfigError, match=field):
        EchoDims.from_dict(fields)


def test_from_dict_reports_missing_fields():
    fields = small_dims().to_dict()
    del fields["vocab"]
    with pytest.raises(ConfigError, match="vocab"):
        EchoDims.from_dict(fields)


def test_waveform_needs_width_multiple_of_8():
    with pytest.raises(ConfigError, match="multiple of 8"):
        small_dims(text_dims=36, aud_dims=36, features=["waveform"])


# ---------------------------------------------------------------------------------------------
# Building blocks vs independent computations

def test_activation_table_and_fallback():
    assert isinstance(get_activation("swish"), torch.nn.SiLU)
    assert isinstance(get_activation("leaky_relu"), torch.nn.LeakyReLU)
    assert isinstance(get_activation("unknown"), torch.nn.GELU)
    assert isinstance(get_activation(torch.nn.ReLU()), torch.nn.GELU)  # the reference's quirk


def test_sinusoids_match_whisper_formula():
    length, channels = 7, 10
    inc = np.log(10000) / (channels // 2 - 1)
    t = np.arange(length)[:, None] * np.exp(-inc * np.arange(channels // 2))[None]
    np.testing.assert_allclose(sinusoids(length, channels).numpy(),
                               np.concatenate([np.sin(t), np.cos(t)], 1), atol=1e-6)


def test_apply_rotary_matches_per_pair_loop():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 5, 8, generator=g)
    angles = torch.rand(1, 5, 4, generator=g) * 6
    out = apply_rotary(x, torch.polar(torch.ones_like(angles), angles))
    expected = x.clone()
    for t in range(5):
        for k in range(4):
            c, s = math.cos(angles[0, t, k]), math.sin(angles[0, t, k])
            a, b = x[..., t, 2 * k], x[..., t, 2 * k + 1]
            expected[..., t, 2 * k], expected[..., t, 2 * k + 1] = a * c - b * s, a * s + b * c
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_rotary_init_and_frequencies():
    rope = rotary(16)
    np.testing.assert_allclose(rope.inv_freq.detach().numpy(),
                               1 / 19000 ** (np.arange(0, 16, 2) / 16), rtol=1e-6)
    assert [p.item() for p in (rope.theta, rope.min_theta, rope.max_theta, rope.pitch_scale)] \
        == [10000.0, 600.0, 2400.0, 1.0]
    # Without f0: angles t * inv_freq. With f0: the mean of the WHOLE tensor (zeros included).
    np.testing.assert_allclose(rope.angles(4)[0].detach().numpy(),
                               np.outer(np.arange(4), rope.inv_freq.detach().numpy()), rtol=1e-6)
    f0 = torch.tensor([[0.0, 200.0, 250.0, 0.0]])
    m = 112.5
    theta = 10000 + math.log(1 + m / 700) / math.log(1 + 300 / 700) * 9200
    np.testing.assert_allclose(rope.angles(4, f0)[0].detach().numpy(),
                               np.outer(np.arange(4), theta ** -(np.arange(0, 16, 2) / 16)),
                               rtol=1e-5)


def test_voiced_f0_mean_is_per_utterance_and_matches_theta_from_f0():
    """f0_mean="voiced": each utterance gets rotary.theta_from_f0 of its own voiced frames."""
    rope = rotary(16, f0_mean="voiced")
    f0 = torch.tensor([[0.0, 200.0, 250.0, 0.0], [0.0, 0.0, 0.0, 0.0], [90.0, 95.0, 0.0, 0.0]])
    angles = rope.angles(4, f0).detach().numpy()  # (3, 4, 8)
    for row, contour in enumerate(f0.numpy()):
        hz = np.where(contour > 0, contour, np.nan)  # what a user sees: NaN unvoiced
        theta = R.theta_from_f0(hz, 10000.0)
        np.testing.assert_allclose(angles[row], np.outer(np.arange(4), R.inv_freq(16, theta)),
                                   rtol=1e-5)
    assert R.theta_from_f0(np.full(4, np.nan)) == 10000.0  # nothing voiced: static theta


def test_voiced_f0_mean_makes_logits_independent_of_batch_mates():
    torch.manual_seed(0)
    model = Echo(small_dims(f0_rotary=True, f0_mean="voiced", decoder_mask="causal")).eval()
    inputs = small_inputs(batch=2)
    with torch.no_grad():
        both = model(**inputs)["logits"]
        alone = model(**{k: v[:1] for k, v in inputs.items()})["logits"]
    torch.testing.assert_close(both[:1], alone, rtol=1e-5, atol=1e-5)
    # The reference's batch-wide mean does depend on the other utterance.
    ref = Echo(small_dims(f0_rotary=True)).eval()
    with torch.no_grad():
        mixed = ref(**inputs)["logits"][:1]
        single = ref(**{k: v[:1] for k, v in inputs.items()})["logits"]
    assert (mixed - single).abs().max() > 10 * (both[:1] - alone).abs().max() + 1e-5


def test_per_frame_angles_torch_branch_matches_the_numpy_branch():
    """The model's torch branch of rotation_angles_per_frame against its numpy branch (which
    test_rotary checks against an explicit loop)."""
    f0 = np.array([0.0, 120.0, 180.0, 0.0, 240.0, 90.0])
    ours = R.rotation_angles_per_frame(torch.tensor(f0)[None].float(), 8, torch.tensor(10000.0))[0]
    np.testing.assert_allclose(ours.numpy(), R.rotation_angles_per_frame(f0, 8, 10000.0),
                               rtol=1e-5, atol=1e-6)
    flat = R.rotation_angles_per_frame(torch.full((1, 5), 150.0), 8, torch.tensor(10000.0))[0]
    theta = R.theta_eff(10000.0, 150.0)
    np.testing.assert_allclose(flat.numpy(), np.outer(np.arange(5), R.inv_freq(8, theta)),
                               rtol=1e-5)


def brute_attention(att: MultiheadA, x, mask=None, f0=None):
    """Plain per-head loop of the reference's MultiheadA (rotary from the module)."""
    H, hd = att.head, att.head_dim
    q, k, v = att.q(x), att.k(x), att.v(x)
    n = x.shape[1]
    rot = att.rope(n, f0)
    out = torch.zeros_like(q)
    small = min(max(F.softplus(att.fzero).item(), 0.0), 0.001)
    for b in range(x.shape[0]):
        for h in range(H):
            sl = slice(h * hd, (h + 1) * hd)
            qh = apply_rotary(q[b, :, sl][None, None], rot)[0, 0]
            kh = apply_rotary(k[b, :, sl][None, None], rot)[0, 0]
            s = hd ** -0.25
            scores = (qh * s) @ (kh * s).T
            z = torch.tensor([small if kh[j, 0] == 0 else 1.0 for j in range(n)])
            if mask is not None:
                scores = scores + mask[:n, :n] * z[None, :]
            scores = scores * z[None, :]
            out[b, :, sl] = torch.softmax(scores, -1) @ v[b, :, sl]
    return att.o(out)


def test_multihead_attention_zero_key_quirk_matches_brute_force():
    torch.manual_seed(0)
    att = MultiheadA(16, 2).eval()
    x = torch.randn(2, 5, 16)
    x[:, 2] = 0.0  # k has no bias: these keys are exactly 0 -> scale clamp(softplus(fzero))
    mask = torch.tril(torch.ones(5, 5))
    f0 = torch.tensor([[0.0, 120.0, 200.0, 180.0, 0.0]])
    with torch.no_grad():
        for m, f in [(None, None), (mask, None), (mask, f0)]:
            torch.testing.assert_close(att(x, mask=m, f0=f), brute_attention(att, x, m, f),
                                       atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# Whole-model behaviour

def test_inv_freq_used_only_without_f0():
    torch.manual_seed(0)
    model = Echo(small_dims(f0_rotary=True)).eval()
    inp = small_inputs()
    with torch.no_grad():
        with_f0 = model(**inp)["logits"]
        without = model(inp["input_ids"], spectrogram=inp["spectrogram"])["logits"]
        for name, p in model.named_parameters():
            if name.endswith("rope.inv_freq"):
                p.mul_(3.0)
        torch.testing.assert_close(model(**inp)["logits"], with_f0)
        assert (model(inp["input_ids"], spectrogram=inp["spectrogram"])["logits"]
                - without).abs().max() > 1e-4


def test_f0_falls_back_to_pitch_input():
    torch.manual_seed(0)
    model = Echo(small_dims(features=["spectrogram", "pitch"], f0_rotary=True)).eval()
    inp = small_inputs()
    pitch = inp["f0"][:, None, :]  # (B, 1, T)
    with torch.no_grad():
        a = model.encode(spectrogram=inp["spectrogram"], pitch=pitch)
        b = model.encode(spectrogram=inp["spectrogram"], pitch=pitch, f0=inp["f0"])
        c = model.encode(spectrogram=inp["spectrogram"], pitch=pitch, f0=inp["f0"] * 0 + 300)
    torch.testing.assert_close(a["spectrogram"], b["spectrogram"])
    assert (a["spectrogram"] - c["spectrogram"]).abs().max() > 1e-4


def test_decoder_mask_switch():
    """The reference decoder sees the future (mask added as +1); "causal" does not."""
    inp = small_inputs()
    later = inp["input_ids"].clone()
    later[:, 4:] = (later[:, 4:] % 29) + 1
    for mode, leaks in (("additive", True), ("causal", False)):
        torch.manual_seed(0)
        model = Echo(small_dims(decoder_mask=mode)).eval()
        with torch.no_grad():
            a = model(inp["input_ids"], spectrogram=inp["spectrogram"])["logits"][:, :4]
            b = model(later, spectrogram=inp["spectrogram"])["logits"][:, :4]
        assert ((a - b).abs().max() > 1e-5) == leaks, mode


def test_loss_ignores_index_zero():
    torch.manual_seed(0)
    model = Echo(small_dims()).eval()
    inp = small_inputs()
    labels = inp["input_ids"].clone()
    labels[:, -2:] = 0
    out = model(inp["input_ids"], spectrogram=inp["spectrogram"], labels=labels)
    logp = torch.log_softmax(out["logits"], -1)
    keep = labels != 0
    manual = -logp.gather(-1, labels[..., None])[..., 0][keep].mean()
    torch.testing.assert_close(out["loss"], manual)


def test_pitch_bias_switch_changes_only_when_on():
    torch.manual_seed(0)
    off = Echo(small_dims(f0_rotary=True)).eval()
    on = Echo(small_dims(f0_rotary=True, pitch_bias=True, pitch_bias_scale=2.0)).eval()
    on.load_state_dict(off.state_dict())
    inp = small_inputs()
    with torch.no_grad():
        a, b = off(**inp)["logits"], on(**inp)["logits"]
        c = on(inp["input_ids"], spectrogram=inp["spectrogram"])["logits"]  # no f0: no bias
        d = off(inp["input_ids"], spectrogram=inp["spectrogram"])["logits"]
    assert (a - b).abs().max() > 1e-4
    torch.testing.assert_close(c, d)


def test_per_frame_theta_mode_equals_mean_mode_for_flat_f0():
    inp = small_inputs()
    flat = torch.full_like(inp["f0"], 180.0)
    torch.manual_seed(0)
    mean = Echo(small_dims(f0_rotary=True)).eval()
    frame = Echo(small_dims(f0_rotary=True, theta_mode="per_frame")).eval()
    frame.load_state_dict(mean.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(frame(**{**inp, "f0": flat})["logits"],
                                   mean(**{**inp, "f0": flat})["logits"], atol=1e-4, rtol=1e-4)
        assert (frame(**inp)["logits"] - mean(**inp)["logits"]).abs().max() > 1e-4


def test_bad_inputs_raise_echo_errors():
    model = Echo(small_dims(f0_rotary=True)).eval()
    inp = small_inputs()
    with pytest.raises(EchoError, match="text_ctx"):
        model(torch.ones(1, 17, dtype=torch.long), spectrogram=inp["spectrogram"][:1])
    bad = inp["f0"].clone()
    bad[0, 5] = float("nan")
    with pytest.raises(EchoError, match="f0_for_model"):
        model(**{**inp, "f0": bad})


# ---------------------------------------------------------------------------------------------
# Other configurations: they build, run, and carry the spec's key names

def run(model, frames=24, samples=3200, **inputs):
    g = torch.Generator().manual_seed(0)
    feats = model.dims.features
    given = {"spectrogram": torch.randn(2, model.dims.mels, frames, generator=g),
             "waveform": torch.randn(2, 1, samples, generator=g),
             "pitch": 100 + 100 * torch.rand(2, 1, frames, generator=g)}
    given = {k: v for k, v in given.items() if k in feats}
    with torch.no_grad():
        enc = model.encode(**given)
        out = model(torch.randint(1, 30, (2, 5), generator=g), **given, **inputs)
    return enc, out


@pytest.mark.parametrize("act", ["relu", "swish", "elu", "softshrink", "tanh"])
def test_other_activations_run(act):
    model = Echo(small_dims(act=act, features=["pitch"])).eval()
    enc, out = run(model)
    assert out["logits"].shape == (2, 5, 30)
    assert enc["pitch"].shape == (2, 12, 32)  # pitch front end has stride 2
    assert isinstance(model.encoder.blocks.pitch[1].mlp[1], type(get_activation(act)))
    assert isinstance(model.encoder.blocks.pitch[0].encoder[1], type(get_activation(act)))
    assert isinstance(model.decoder._blocks[0].mlp[1], torch.nn.GELU)  # decoder: always GELU


def test_waveform_config_keys_and_160x_downsampling():
    model = Echo(small_dims(features=["waveform"])).eval()
    enc, out = run(model, samples=3200)
    assert enc["waveform"].shape == (2, 20, 32)
    keys = set(model.state_dict())
    for k in ["encoder.blocks.waveform.0.downsample.0.weight",
              "encoder.blocks.waveform.0.downsample.2.weight",
              "encoder.blocks.waveform.0.downsample.4.weight",
              "encoder.blocks.waveform.0.encoder.0.weight",
              "encoder.blocks.waveform.0.encoder.2.weight",
              "encoder.blocks.waveform.0.norm.weight",
              "decoder.blocks.waveform.0.attnb.q.linear.weight", "decoder.blend.waveform"]:
        assert k in keys, k
    assert model.encoder.blocks.waveform[0].encoder[0].groups == 4  # d / 8
    assert isinstance(model.encoder.blocks.waveform[0].downsample[1], torch.nn.GELU)


def test_cgate_config_only_for_all_three_features():
    model = Echo(small_dims(features=["spectrogram", "waveform", "pitch"], act="relu")).eval()
    enc, out = run(model, frames=20, samples=20 * 128)
    assert set(enc) == {"spectrogram", "waveform", "pitch"}
    keys = set(model.state_dict())
    for part in ["sgate.0.linear.weight", "wgate.0.linear.weight", "pgate.0.linear.weight",
                 "integration.linear.weight"]:
        assert f"encoder.blocks.spectrogram.1.cgate.{part}" in keys
    assert not any(".mlp_gate." in k for k in keys if k.startswith("encoder."))
    reordered = Echo(small_dims(features=["pitch", "waveform", "spectrogram"]))
    assert not any(".cgate." in k for k in reordered.state_dict())


def test_cross_attn_false_drops_decoder_self_blocks_cross_attention():
    model = Echo(small_dims(cross_attn=False, text_idx=2)).eval()
    _, out = run(model)
    assert out["logits"].shape == (2, 5, 30)
    keys = set(model.state_dict())
    assert not any(k.startswith("decoder._blocks.0.attnb.") or k.startswith("decoder._blocks.0.lnb")
                   for k in keys)
    assert "decoder.blocks.spectrogram.1.attnb.q.linear.weight" in keys
    assert "encoder.blocks.spectrogram.1.attnb.k.linear.weight" in keys
    assert "decoder._blocks.0.attna.k.linear.bias" not in keys  # k has no bias


def test_module_paths_read_like_the_reference():
    names = dict(Echo(small_dims(text_idx=2, aud_idx=3)).named_modules())
    for path in ["encoder.blocks.spectrogram.1", "encoder.blocks.spectrogram.3",
                 "decoder._blocks.1", "decoder.blocks.spectrogram.1",
                 "decoder._blocks.0.mlp_gate.0", "decoder._blocks.0.mlp.0", "encoder.rope",
                 "encoder.blocks.spectrogram.0.encoder.4", "decoder.ln_dec"]:
        assert path in names, path
    for slot in ["waveform", "pitch", "spec_envelope", "spec_phase"]:
        assert len(names[f"encoder.blocks.{slot}"]) == 0


def test_variable_radius_weights_pairs_by_radius_squared():
    """rope.radius r_k scales pair k of q and k: the score of pair k is weighted by r_k^2."""
    torch.manual_seed(0)
    model = Echo(small_dims(variable_radius=True)).eval()
    assert "decoder._blocks.0.attna.rope.radius" in model.state_dict()
    rope = model.decoder._blocks[0].attna.rope
    with torch.no_grad():
        rope.radius.copy_(torch.linspace(0.5, 2.0, rope.radius.numel()))
    q, k = torch.randn(1, 1, 3, 16), torch.randn(1, 1, 3, 16)
    rot = rope(3)
    scores = apply_rotary(q, rot) @ apply_rotary(k, rot).transpose(-1, -2)
    unit = torch.polar(torch.ones_like(rope.angles(3)), rope.angles(3))
    qr, kr = apply_rotary(q, unit), apply_rotary(k, unit)
    w = rope.radius.detach().repeat_interleave(2) ** 2
    torch.testing.assert_close(scores, (qr * w) @ kr.transpose(-1, -2), atol=1e-5, rtol=1e-5)


def test_spec_stride_steps_the_first_conv_and_maps_f0_by_time():
    """stride 2 = the reference front end's first conv with stride 2 (same weights, brute
    force via F.conv1d), the encoder runs on ceil(T/2) positions, and the pitch bias it adds is
    rotary.pitch_bias of the F0 contour mapped onto those positions by time."""
    assert small_dims().spec_stride == 1  # the reference's front end
    torch.manual_seed(0)
    one = Echo(small_dims(f0_rotary=True, pitch_bias=True)).eval()
    two = Echo(small_dims(f0_rotary=True, pitch_bias=True, spec_stride=2)).eval()
    two.load_state_dict(one.state_dict())  # the stride changes no parameter shape
    inp = small_inputs(frames=25)
    front = two.encoder.blocks.spectrogram[0].encoder[0]
    with torch.no_grad():
        got = front(inp["spectrogram"])
        want = F.conv1d(inp["spectrogram"], front.weight, front.bias, stride=2, padding=1)
        enc = two.encode(spectrogram=inp["spectrogram"], f0=inp["f0"])["spectrogram"]
    torch.testing.assert_close(got, want)
    assert got.shape[-1] == 13 and enc.shape[1] == 13
    att = two.encoder.blocks.spectrogram[1].attna
    with torch.no_grad():
        bias = att.pitch_bias_map(inp["f0"], 13)[:, 0]
    index = np.minimum(((np.arange(13) + 0.5) * 25 / 13).astype(int), 24)
    want_bias = R.pitch_bias(inp["f0"].numpy()[:, index], 1.0)
    np.testing.assert_allclose(bias.numpy(), want_bias, atol=1e-5)
    with torch.no_grad():
        logits = two(**inp)["logits"]
    assert torch.isfinite(logits).all() and logits.shape[:2] == inp["input_ids"].shape
