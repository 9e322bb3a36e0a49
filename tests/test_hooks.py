"""echo_core.hooks against plain hooks written here, the spec's sample counts and the formula."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from echo_core.errors import CaptureError, EchoError
from echo_core.hooks import (
    Cache,
    capture,
    component_statistics,
    format_report,
    gate_mlp_ratios,
    gradient_step_statistics,
    init_expected_ratio,
    init_ratio_baseline,
)
from echo_core.model import Echo
from echo_core.model_dims import EchoDims
from echo_core.model_layers import Residual


def make_model(seed=0, **kw) -> Echo:
    torch.manual_seed(seed)
    fields = dict(vocab=30, text_ctx=16, text_dims=32, text_head=2, text_idx=1, mels=12,
                  aud_ctx=100, aud_dims=32, aud_head=2, aud_idx=1, f0_rotary=True)
    return Echo(EchoDims(**{**fields, **kw}))


def batch(seed=0, frames=20, tokens=6, mels=12, vocab=30):
    g = torch.Generator().manual_seed(seed)
    f0 = 100 + 150 * torch.rand(2, frames, generator=g)
    f0[:, :4] = 0.0
    ids = torch.randint(1, vocab, (2, tokens), generator=g)
    return dict(input_ids=ids, spectrogram=torch.randn(2, mels, frames, generator=g), f0=f0,
                labels=ids)


def assert_no_hooks(model):
    for name, module in model.named_modules():
        assert not module._forward_hooks, name
        assert not module._forward_pre_hooks, name
        assert not module._backward_hooks, name
        assert not getattr(module, "_forward_hooks_with_kwargs", {}), name
    for name, p in model.named_parameters():
        assert not p._backward_hooks, name


# ---------------------------------------------------------------------------------------------
# Hooks are always removed

def test_hooks_removed_after_success():
    model = make_model()
    with capture(model, depth="full", gradients=True) as cache:
        model(**batch())["loss"].backward()
    assert cache.stats and cache.attention and cache.gradients
    assert_no_hooks(model)
    # and nothing is recorded afterwards
    before = sum(len(v) for v in cache.stats.values())
    model(**batch())
    assert sum(len(v) for v in cache.stats.values()) == before


@pytest.mark.parametrize("where", ["forward", "body"])
def test_hooks_removed_after_an_exception(where):
    model = make_model()
    with pytest.raises((EchoError, RuntimeError)):
        with capture(model, depth="full", gradients=True):
            if where == "forward":  # the forward itself fails half-way (wrong mel count)
                model(**{**batch(), "spectrogram": torch.randn(2, 7, 20)})
            else:
                model(**batch())["loss"].backward()
                raise RuntimeError("user code failed inside the block")
    assert_no_hooks(model)


def test_bad_capture_arguments():
    with pytest.raises(CaptureError, match="depth"):
        with capture(make_model(), depth="everything"):
            pass


# ---------------------------------------------------------------------------------------------
# Gate vs MLP ratios against a computation with plain hooks

def test_gate_mlp_ratios_match_plain_hooks():
    model = make_model(text_idx=2).eval()
    seen: dict[str, list[torch.Tensor]] = {}
    handles = []
    for path, module in model.named_modules():
        if path.endswith("mlp_gate.0") or path.endswith("mlp.0"):
            handles.append(module.register_forward_hook(
                lambda m, a, out, path=path: seen.setdefault(path, []).append(out.detach())))
    with torch.no_grad(), capture(model) as cache:
        model(**batch(0))
        model(**batch(1, frames=26, tokens=4))  # two calls of different sizes are pooled
    for h in handles:
        h.remove()
    df = gate_mlp_ratios(cache)
    blocks = sorted({p[: -len("mlp_gate.0")] for p in seen if p.endswith("mlp_gate.0")})
    assert sorted(df.block) == blocks
    assert "decoder.blocks.spectrogram.1." in blocks and "encoder.blocks.spectrogram.1." in blocks
    for row in df.itertuples():
        gate = torch.cat([t.flatten() for t in seen[row.block + "mlp_gate.0"]]).abs()
        mlp = torch.cat([t.flatten() for t in seen[row.block + "mlp.0"]]).abs()
        assert row.gate_mean == pytest.approx(gate.mean().item(), rel=1e-5)
        assert row.mlp_mean == pytest.approx(mlp.mean().item(), rel=1e-5)
        assert row.ratio == pytest.approx(gate.mean().item() / mlp.mean().item(), rel=1e-5)
        gs, ms = (gate < 0.01).float().mean().item(), (mlp < 0.01).float().mean().item()
        assert (row.gate_sparsity, row.mlp_sparsity) == pytest.approx((gs, ms))
        assert row.sparsity_difference == pytest.approx(gs - ms)
        assert row.status == ("🟢" if row.ratio < 2.0 else "🟡")
        assert row.init_expected_ratio == pytest.approx(math.sqrt(5 * 32 / 33))
    assert list(df.columns) == ["block", "gate_mean", "mlp_mean", "ratio", "gate_sparsity",
                                "mlp_sparsity", "sparsity_difference", "status",
                                "init_expected_ratio"]


def test_init_ratio_formula_holds_for_fresh_xavier_blocks():
    """sqrt(5d/(d+1)) is E|gate logit| / E|mlp.0| at init on RMS-normalised input: check it
    on freshly initialised Residual blocks (pooled over 16 copies, isotropic tokens)."""
    d = 64
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 50, d, generator=g)
    gate_sum = mlp_sum = 0.0
    for seed in range(16):
        torch.manual_seed(seed)
        block = Residual(d, 4)
        with torch.no_grad(), capture(block) as cache:
            block(x)
        gate_sum += cache["mlp_gate.0"][0]["mean_abs"]
        mlp_sum += cache["mlp.0"][0]["mean_abs"]
    assert gate_sum / mlp_sum == pytest.approx(math.sqrt(5 * d / (d + 1)), rel=0.05)
    for width in (32, 64, 512):
        assert init_expected_ratio(width) == pytest.approx(math.sqrt(5 * width / (width + 1)))


def test_init_ratio_baseline_of_a_whole_model():
    b = batch()
    inputs = {k: v for k, v in b.items() if k != "labels"}
    df = init_ratio_baseline(lambda: make_model(), inputs, copies=3)
    assert list(df.columns) == ["block", "init_ratio_mean", "init_ratio_std", "init_ratio_low",
                                "init_ratio_high"]
    assert len(df) == 3 and (df.init_ratio_mean > 0).all()
    # independently: the same seeded copies, measured one by one
    ratios = []
    for i in range(3):
        torch.manual_seed(i)
        fresh = make_model().eval()
        with torch.no_grad(), capture(fresh) as cache:
            fresh(**inputs)
        ratios.append(gate_mlp_ratios(cache).set_index("block")["ratio"])
    table = pd.concat(ratios, axis=1).loc[df.block]
    np.testing.assert_allclose(df.init_ratio_low, table.min(axis=1), rtol=1e-6)
    np.testing.assert_allclose(df.init_ratio_high, table.max(axis=1), rtol=1e-6)
    np.testing.assert_allclose(df.init_ratio_mean, table.mean(axis=1), rtol=1e-6)


def test_blocks_that_get_no_gradient_are_flagged():
    """The reference decoder runs its feature blocks but keeps only the last one's output:
    block 0 of decoder.blocks.spectrogram gets no gradient (docs/echo_model.md, section 7)."""
    from echo_core.hooks import blocks_with_gradient

    model = make_model(text_idx=2)
    b = batch()
    with capture(model, gradients=True) as cache:
        model(**b)["loss"].backward()
    blocks = ["decoder.blocks.spectrogram.0.", "decoder.blocks.spectrogram.1.",
              "decoder._blocks.0.", "encoder.blocks.spectrogram.1."]
    got = blocks_with_gradient(cache, blocks)
    assert got == {blocks[0]: False, blocks[1]: True, blocks[2]: True, blocks[3]: True}


# ---------------------------------------------------------------------------------------------
# Gradient statistics

def plain_gradient_means(model, b) -> dict[str, float]:
    model.zero_grad(set_to_none=True)
    model(**b)["loss"].backward()
    out = {n: p.grad.abs().mean().item() for n, p in model.named_parameters()
           if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return out


def test_gradient_statistics_match_plain_grads():
    model = make_model(text_idx=2, aud_idx=2)
    b = batch()
    expected = plain_gradient_means(model, b)
    cache = gradient_step_statistics(model, b)
    assert cache.steps == 1
    assert {n: v[0] for n, v in cache.gradients.items()} == pytest.approx(expected, rel=1e-6)
    assert all(p.grad is None for p in model.parameters())
    df = component_statistics(cache).set_index("component")
    gate = [v for n, v in expected.items() if n.endswith("mlp_gate.0.linear.weight")]
    assert df.loc["GATE", "avg"] == pytest.approx(np.mean(gate), rel=1e-6)
    assert df.loc["GATE", "min"] == pytest.approx(min(gate), rel=1e-6)
    assert df.loc["GATE", "max"] == pytest.approx(max(gate), rel=1e-6)
    ln = [v for n, v in expected.items() if n.split(".")[-2] in ("lna", "lnb", "lnc")]
    assert df.loc["LN", "samples"] == len(ln)
    assert df.loc["LN", "avg"] == pytest.approx(np.mean(ln), rel=1e-6)
    assert (df.source == "gradients").all()


def test_reference_config_sample_counts_per_step():
    """4 + 4 layers, features [spectrogram]: 9 GATE, 9 MLP, 10 each of Q/K/V/O, 19 LN,
    3 ENCODER, 1 BLEND per step (unused lnb / attnb and discarded feature blocks get none)."""
    model = make_model(text_idx=4, aud_idx=4)
    cache = gradient_step_statistics(model, [batch(0), batch(1)])
    df = component_statistics(cache).set_index("component")
    per_step = dict(GATE=9, MLP=9, Q=10, K=10, V=10, O=10, LN=19, ENCODER=3, BLEND=1)
    assert df["samples"].to_dict() == {c: 2 * n for c, n in per_step.items()}
    # the discarded decoder feature blocks got no gradient at all
    assert not any(n.startswith("decoder.blocks.spectrogram.0.") for n in cache.gradients)
    assert any(n.startswith("decoder.blocks.spectrogram.3.") for n in cache.gradients)


def test_no_gradients_is_a_capture_error():
    model = make_model().eval()
    with torch.no_grad(), capture(model) as cache:
        model(**batch())
    with pytest.raises(CaptureError, match="gradients=True"):
        component_statistics(cache)
    with pytest.raises(CaptureError, match="source"):
        component_statistics(cache, source="weights")
    with pytest.raises(CaptureError, match="labels"):
        gradient_step_statistics(model, {"input_ids": torch.ones(1, 3, dtype=torch.long)})


def test_activation_statistics_are_labelled_and_match_stats():
    model = make_model().eval()
    with torch.no_grad(), capture(model) as cache:
        model(**batch())
    df = component_statistics(cache, source="activations").set_index("component")
    assert df.attrs["source"] == "activations" and (df.source == "activations").all()
    q = [c["mean_abs"] for p, calls in cache.stats.items() if p.endswith((".attna.q", ".attnb.q"))
         for c in calls]
    assert df.loc["Q", "samples"] == len(q) and df.loc["Q", "avg"] == pytest.approx(np.mean(q))
    # only the one decoder feature block that cross-attends used its blend
    blend = model.decoder.blocks.spectrogram[0].blend
    assert df.loc["BLEND", "samples"] == 1
    assert df.loc["BLEND", "avg"] == pytest.approx(torch.sigmoid(blend).item())


def test_stats_of_a_call_match_the_tensor():
    model = make_model().eval()
    seen = {}
    h = model.decoder._blocks[0].attna.v.register_forward_hook(
        lambda m, a, out: seen.setdefault("v", out.detach()))
    with torch.no_grad(), capture(model) as cache:
        model(**batch())
    h.remove()
    stats = cache["decoder._blocks.0.attna.v"][0]
    v = seen["v"]
    assert stats["count"] == v.numel()
    assert (stats["min"], stats["max"]) == pytest.approx((v.min().item(), v.max().item()))
    assert stats["mean_abs"] == pytest.approx(v.abs().mean().item(), rel=1e-6)
    assert stats["near_zero"] == pytest.approx((v.abs() < 0.01).float().mean().item())


# ---------------------------------------------------------------------------------------------
# Full depth: attention maps, pitch bias, memory bound

def brute_pitch_bias(f0: np.ndarray, scale: float) -> np.ndarray:
    voiced = f0 > 0
    z = np.zeros_like(f0)
    z[voiced] = (f0[voiced] - f0[voiced].mean()) / (f0[voiced].std(ddof=1) + 1e-8)
    n = len(f0)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if voiced[i] and voiced[j]:
                out[i, j] = math.exp(-abs(z[i] - z[j]) * scale)
    return out


@pytest.mark.parametrize("applied", [False, True])
def test_full_capture_scores_weights_and_pitch_bias(applied):
    model = make_model(pitch_bias=applied, pitch_bias_scale=0.5).eval()
    b = batch()
    with torch.no_grad(), capture(model, depth="full") as cache:
        model(**b)
    assert cache.depth == "full" and not cache.dropped
    enc = cache.attention["encoder.blocks.spectrogram.1.attna"][0]
    assert enc["scores"].shape == (2, 2, 20, 20) and enc["pitch_bias_applied"] == applied
    assert enc["masked"] is False
    torch.testing.assert_close(enc["weights"], torch.softmax(enc["scores"], -1))
    for row in range(2):
        expected = 0.5 * brute_pitch_bias(b["f0"][row].double().numpy(), 1.0)
        np.testing.assert_allclose(enc["pitch_bias"][row, 0].numpy(), expected, atol=1e-5)
    cross = cache.attention["decoder.blocks.spectrogram.0.attnb"][0]
    assert cross["scores"].shape == (2, 2, 6, 20) and cross["pitch_bias"] is None
    assert cross["masked"] is False
    decoder_self = cache.attention["decoder._blocks.0.attna"][0]
    assert decoder_self["masked"] is (model.dims.decoder_mask != "none")
    assert set(cache.attention) >= {"decoder._blocks.0.attna", "decoder.blocks.spectrogram.0.attna"}


def test_pitch_bias_is_added_to_the_pre_softmax_scores():
    off = make_model(pitch_bias=False).eval()
    on = make_model(pitch_bias=True).eval()
    on.load_state_dict(off.state_dict())
    maps = []
    for model in (off, on):
        with torch.no_grad(), capture(model, depth="full") as cache:
            model(**batch())
        maps.append(cache.attention["encoder.blocks.spectrogram.1.attna"][0])
    torch.testing.assert_close(maps[1]["scores"] - maps[0]["scores"], maps[1]["pitch_bias"]
                               .expand_as(maps[0]["scores"]), atol=1e-5, rtol=0)


def test_attention_memory_bound_drops_and_records():
    model = make_model(text_idx=2).eval()
    encoder_maps = 2 * (2 * 2 * 20 * 20 * 4) + 2 * 20 * 20 * 4  # scores, weights, pitch bias
    decoder_self = 2 * (2 * 2 * 6 * 6 * 4)  # scores and weights of a 6-token self-attention
    budget = encoder_maps + 2 * decoder_self + 100  # room for the first three calls only
    with torch.no_grad(), capture(model, depth="full", max_attention_bytes=budget) as cache:
        model(**batch())
    kept = [p for p, calls in cache.attention.items() for _ in calls]
    assert kept == ["encoder.blocks.spectrogram.1.attna", "decoder._blocks.0.attna",
                    "decoder._blocks.1.attna"]
    assert cache.attention_bytes == encoder_maps + 2 * decoder_self
    assert [d["path"] for d in cache.dropped] == [
        "decoder.blocks.spectrogram.0.attna", "decoder.blocks.spectrogram.0.attnb",
        "decoder.blocks.spectrogram.1.attna", "decoder.blocks.spectrogram.1.attnb"]
    assert cache.dropped[1]["shape"] == (2, 2, 6, 20) and "dropped=4" in repr(cache)


def test_cache_repr_and_report():
    model = make_model()
    cache = gradient_step_statistics(model, batch())
    assert isinstance(cache, Cache)
    text = repr(cache)
    assert text.startswith("Cache(depth='stats'") and "gradient_steps=1" in text
    report = format_report(cache)
    lines = report.splitlines()
    assert lines[0].startswith("📊 COMPONENT STATISTICS")
    assert any(line.startswith("🚨 GATE vs MLP ACTIVATION PATTERNS") for line in lines)
    assert "  GATE: avg=" in report and "samples=3" in report
    ratios = gate_mlp_ratios(cache)
    for row in ratios.itertuples():
        assert f"{row.status} {row.block}:" in report
    with torch.no_grad(), capture(model) as forward_only:
        model(**batch())
    assert "no gradients recorded" in format_report(forward_only)
    assert isinstance(ratios, pd.DataFrame)
