"""Character tokenizer and greedy decoding (stop at eos, stop at the length limit, encoder once)."""

import numpy as np
import pytest
import torch

from echo_core.errors import CheckpointError, TranscriptError
from echo_core.tokenizer import BOS, EOS, PAD, CharTokenizer

tok = CharTokenizer()


# --- tokenizer ------------------------------------------------------------------------------

def test_round_trip_and_specials():
    text = "nine oh one"
    ids = tok.encode(text, bos=True, eos=True)
    assert ids[0] == BOS and ids[-1] == EOS and len(ids) == len(text) + 2
    assert tok.decode(ids) == text
    assert tok.encode("a z") == [3 + 2, 3, 3 + 27]  # " " is id 3, "'" id 4, "a" id 5
    assert tok.vocab_size == 3 + 28


def test_normalises_case_and_whitespace():
    assert tok.decode(tok.encode("  Four\tTWO  ")) == "four two"


@pytest.mark.parametrize("bad", ["4 2", "caf\u00e9", "one, two"])
def test_untokenisable_text_names_the_characters(bad):
    with pytest.raises(TranscriptError, match="accepted characters"):
        tok.encode(bad)


def test_decode_stops_at_eos_and_skips_pad_bos():
    ids = [BOS] + tok.encode("ab") + [PAD, EOS] + tok.encode("cd")
    assert tok.decode(ids) == "ab"
    with pytest.raises(TranscriptError, match="outside"):
        tok.decode([tok.vocab_size])


def test_save_load(tmp_path):
    custom = CharTokenizer("xyz ")
    path = custom.save(tmp_path)
    assert path.name == "tokenizer.json"
    again = CharTokenizer.load(tmp_path)
    assert again.characters == "xyz " and again.encode("zy x") == custom.encode("zy x")
    (tmp_path / "bad.json").write_text('{"type": "bpe"}')
    with pytest.raises(TranscriptError):
        CharTokenizer.load(tmp_path / "bad.json")
    with pytest.raises(TranscriptError):
        CharTokenizer("aa")


# --- decoding with a tiny random model ------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_model():
    from echo_core.train import make_dims
    from echo_core.model import Echo

    torch.manual_seed(0)
    model = Echo(make_dims("tiny", tok.vocab_size, 32, {"text_ctx": 12}))
    model.meta = {"features": {"n_mels": 32, "fmin": 0.0, "fmax": 8000.0}}
    return model.eval()


def _tone(seconds=0.4, hz=150.0, sr=16000):
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _force(model, rule):
    """Rewrite decoder logits with rule(step, logits) via a forward hook (removed by caller);
    step counts the decoder calls: 1 at the first generated token."""
    calls = []

    def hook(module, args, output):
        calls.append(None)
        return rule(len(calls), output.clone())
    return model.decoder.register_forward_hook(hook)


def test_transcribe_stops_at_length_limit(tiny_model):
    from echo_core.clip_run import transcribe

    def never_eos(step, logits):
        logits[..., :3] = -1e9
        logits[..., tok.encode("a")[0]] = 1e9
        return logits

    handle = _force(tiny_model, never_eos)
    try:
        text = transcribe(tiny_model, _tone(), 16000, tokenizer=tok)
        shorter = transcribe(tiny_model, _tone(), 16000, tokenizer=tok, max_tokens=4)
    finally:
        handle.remove()
    assert text == "a" * (tiny_model.dims.text_ctx - 1)
    assert shorter == "aaaa"


def test_transcribe_stops_at_eos(tiny_model):
    from echo_core.clip_run import transcribe

    def three_then_eos(step, logits):
        logits[..., :] = -1e9
        logits[..., EOS if step > 3 else tok.encode("b")[0]] = 1e9
        return logits

    handle = _force(tiny_model, three_then_eos)
    try:
        assert transcribe(tiny_model, _tone(), 16000, tokenizer=tok) == "bbb"
    finally:
        handle.remove()


def test_encode_once_greedy_matches_full_forward(tiny_model):
    """Greedy with the encoder run once equals re-running the whole model on each prefix."""
    from echo_core.decode import greedy_ids

    torch.manual_seed(1)
    spec = torch.randn(2, 32, 50)
    f0 = torch.full((2, 50), 140.0)
    f0[:, :10] = 0
    got = greedy_ids(tiny_model, spec, f0)
    for b in range(2):
        ids = [BOS]
        with torch.no_grad():
            for _ in range(tiny_model.dims.text_ctx - 1):
                logits = tiny_model(torch.tensor([ids]), spectrogram=spec[b:b + 1],
                                    f0=f0[b:b + 1])["logits"]
                nxt = int(logits[0, -1].argmax())
                if nxt == EOS:
                    break
                ids.append(nxt)
        assert got[b] == ids[1:]


def test_feature_settings_must_match_model(tiny_model):
    from echo_core.clip_run import transcribe

    meta = tiny_model.meta
    tiny_model.meta = {"features": {"n_mels": 64}}
    try:
        with pytest.raises(CheckpointError, match="n_mels"):
            transcribe(tiny_model, _tone(), 16000, tokenizer=tok)
    finally:
        tiny_model.meta = meta


def test_wer_cer_independent_count():
    from echo_core.decode import wer_cer

    wer, cer = wer_cer(["one two three", "four"], ["one too three", ""])
    assert wer == pytest.approx(2 / 4)  # one substitution + one deletion over 4 words
    assert cer == pytest.approx((1 + 4) / (13 + 4))  # "two"->"too" is 1 edit, "four" 4


# --- incremental decoding (cached keys and values) ------------------------------------------

def _decoder_case(**kw):
    from echo_core.model import Echo
    from echo_core.model_dims import EchoDims

    torch.manual_seed(3)
    fields = dict(vocab=30, text_ctx=16, text_dims=32, text_head=4, text_idx=2, mels=12,
                  aud_ctx=100, aud_dims=32, aud_head=4, aud_idx=1, f0_rotary=True,
                  decoder_mask="causal", features=["spectrogram", "pitch"])
    model = Echo(EchoDims(**{**fields, **kw})).eval()
    g = torch.Generator().manual_seed(4)
    spec = torch.randn(2, 12, 40, generator=g)
    f0 = torch.where(torch.rand(2, 40, generator=g) < 0.3, 0.0, 120.0 + 80 * torch.rand(2, 40))
    ids = torch.randint(3, 30, (2, 12), generator=g)
    with torch.no_grad():
        enc = model.encode(spectrogram=spec, pitch=f0, f0=f0)
    return model, enc, f0, ids


@pytest.mark.parametrize("kw", [{}, dict(theta_mode="per_frame", variable_radius=True),
                                dict(f0_mean="voiced", cross_attn=False),
                                dict(f0_rotary=False)])
def test_cached_decoder_equals_the_full_prefix_at_every_step(kw):
    """Independent check: the full forward over each prefix (no cache) against the cache fed
    a 3-token first chunk, then one token per call; every decoder kind of rotary."""
    model, enc, f0, ids = _decoder_case(**kw)
    cache = {}
    with torch.no_grad():
        full = model.decoder(ids, enc, f0)
        chunks = [model.decoder(ids[:, :3], enc, f0, cache=cache)]
        for length in range(4, ids.shape[1] + 1):
            chunks.append(model.decoder(ids[:, :length], enc, f0, cache=cache))
            prefix = model.decoder(ids[:, :length], enc, f0)
            torch.testing.assert_close(chunks[-1][:, -1], prefix[:, -1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.cat(chunks, 1), full, atol=1e-5, rtol=1e-5)
    assert cache["length"] == ids.shape[1]
    self_keys = cache[("_blocks", 0)]["self"]["k"]
    assert self_keys.shape == (2, 4, ids.shape[1], 8)  # (B, H, positions so far, head_dim)


def test_cached_decoder_past_the_first_rotation_table():
    """A prefix longer than model_layers.TEXT_ROTATIONS: the rotation table grows, logits still equal
    the full forward."""
    from echo_core.model_layers import TEXT_ROTATIONS

    model, enc, f0, _ = _decoder_case(text_ctx=TEXT_ROTATIONS + 12, text_idx=1)
    ids = torch.randint(3, 30, (2, TEXT_ROTATIONS + 10), generator=torch.Generator().manual_seed(5))
    cache = {}
    with torch.no_grad():
        steps = [model.decoder(ids[:, :n], enc, f0, cache=cache)
                 for n in range(1, ids.shape[1] + 1)]
        full = model.decoder(ids, enc, f0)
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)
    assert cache[("_blocks", 0)]["self"]["rotations"].shape[1] >= ids.shape[1]


def test_cache_refuses_the_additive_decoder_and_a_stale_prefix():
    from echo_core.decode import greedy_ids
    from echo_core.errors import EchoError

    model, enc, f0, ids = _decoder_case(decoder_mask="additive")
    with torch.no_grad(), pytest.raises(EchoError, match="causal"):
        model.decoder(ids, enc, f0, cache={})
    assert len(greedy_ids(model, torch.randn(1, 12, 40), f0[:1], max_tokens=3)[0]) <= 3
    model, enc, f0, ids = _decoder_case()
    cache = {}
    with torch.no_grad():
        model.decoder(ids[:, :5], enc, f0, cache=cache)
        with pytest.raises(EchoError, match="holds 5 positions"):
            model.decoder(ids[:, :5], enc, f0, cache=cache)
