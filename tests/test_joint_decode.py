"""Joint CTC/attention decoding: CTC prefix scores against brute-force sums over alignments, the
search's scores against an independent teacher-forced forward and torch's CTC loss, greedy as
its special case, and the CTC head's trip through training, checkpoints and the clip pipeline."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from echo_core.errors import EchoError
from echo_core.joint_decode import (ctc_empty_prefix, ctc_prefix_extend, joint_beam_ids,
                                    joint_beam_search)
from echo_core.model import Echo
from echo_core.tokenizer import BOS, EOS, PAD, CharTokenizer

tok = CharTokenizer()


def _collapse(path, blank=PAD):
    out, prev = [], None
    for s in path:
        if s != prev and s != blank:
            out.append(s)
        prev = s
    return tuple(out)


def _brute(log_probs: np.ndarray, prefix: tuple, full: bool) -> float:
    """log of the summed probability of every alignment whose collapse starts with (or, full:
    equals) ``prefix``: the definition, by enumeration."""
    T, V = log_probs.shape
    total = 0.0
    for path in itertools.product(range(V), repeat=T):
        out = _collapse(path)
        if (out == prefix) if full else (out[:len(prefix)] == prefix):
            total += np.exp(sum(log_probs[t, s] for t, s in enumerate(path)))
    return np.log(total)


@pytest.mark.parametrize("seed", [0, 1])
def test_prefix_scores_equal_sums_over_alignments(seed):
    rng = np.random.default_rng(seed)
    T, V = 5, 5  # tokens: pad (blank) 0, bos 1, eos 2, and 3, 4
    lp = np.log(rng.dirichlet(np.ones(V), size=T))
    r_empty = ctc_empty_prefix(lp)
    cands = np.array([3, 4, EOS])
    psi, r_one = ctc_prefix_extend(lp, np.stack([r_empty] * 3), np.full(3, -1), cands)
    assert psi[0] == pytest.approx(_brute(lp, (3,), False), abs=1e-9)
    assert psi[1] == pytest.approx(_brute(lp, (4,), False), abs=1e-9)
    assert psi[2] == pytest.approx(_brute(lp, (), True), abs=1e-9)  # the empty transcript
    # from prefix (3,): a repeat (needs a blank between), another token, and the end
    psi2, r_two = ctc_prefix_extend(lp, np.stack([r_one[0]] * 3), np.full(3, 3), cands)
    assert psi2[0] == pytest.approx(_brute(lp, (3, 3), False), abs=1e-9)
    assert psi2[1] == pytest.approx(_brute(lp, (3, 4), False), abs=1e-9)
    assert psi2[2] == pytest.approx(_brute(lp, (3,), True), abs=1e-9)
    # a third step from (3, 3): its full probability
    psi3, _ = ctc_prefix_extend(lp, r_two[:1], np.array([3]), np.array([EOS]))
    assert psi3[0] == pytest.approx(_brute(lp, (3, 3), True), abs=1e-9)


def test_the_blank_cannot_extend_a_prefix():
    lp = np.log(np.full((3, 4), 0.25))
    with pytest.raises(EchoError, match="blank"):
        ctc_prefix_extend(lp, ctc_empty_prefix(lp)[None], np.array([-1]), np.array([PAD]))


@pytest.fixture(scope="module")
def ctc_model():
    from echo_core.train import make_dims

    torch.manual_seed(0)
    model = Echo(make_dims("tiny", tok.vocab_size, 32, {"text_ctx": 10, "ctc_head": True,
                                                         "key_padding_mask": True}))
    model.meta = {"features": {"n_mels": 32, "fmin": 0.0, "fmax": 8000.0}}
    return model.eval()


def _inputs(seed=0, frames=40):
    g = torch.Generator().manual_seed(seed)
    spec = torch.randn(1, 32, frames, generator=g)
    f0 = torch.where(torch.rand(1, frames, generator=g) > 0.3,
                     120 + 40 * torch.rand(1, frames, generator=g), torch.zeros(1, frames))
    return spec, f0


def _independent_score(model, spec, f0, ids, ctc_weight):
    """(1 - w) log p_att(ids + eos) by one full teacher-forced forward (no cache) + w log
    p_ctc(ids) by torch's CTC loss."""
    with torch.no_grad():
        inp = torch.tensor([[BOS] + ids])
        logits = model(inp, spectrogram=spec, f0=f0)["logits"][0].log_softmax(-1)
        att = float(sum(logits[i, t] for i, t in enumerate(ids + [EOS])))
        enc = model.encode(spectrogram=spec, f0=f0, padding=model.padding(spec, f0, None))
        lp = model.ctc(enc["spectrogram"]).log_softmax(-1)  # (1, n, V)
        ctc = -float(F.ctc_loss(lp.transpose(0, 1), torch.tensor([ids or [0]])[:, :len(ids)],
                                torch.tensor([lp.shape[1]]), torch.tensor([len(ids)]),
                                blank=PAD, reduction="sum"))
    return (1 - ctc_weight) * att + ctc_weight * ctc


@pytest.mark.parametrize("ctc_weight", [0.3, 0.5, 1.0])
def test_search_scores_equal_an_independent_forward_and_ctc_loss(ctc_model, ctc_weight):
    """Every finished hypothesis's score is what a full forward and torch's CTC loss give: the
    cached, reordered decoder rows and the prefix scores are right along the whole search."""
    spec, f0 = _inputs()
    found = joint_beam_search(ctc_model, spec, f0, beam=4, ctc_weight=ctc_weight, max_tokens=6)
    assert found and [s for s, _ in found] == sorted((s for s, _ in found), reverse=True)
    for score, ids in found:  # (at the length limit only eos may follow: all end with it)
        assert score == pytest.approx(_independent_score(ctc_model, spec, f0, ids, ctc_weight),
                                      abs=1e-4)


def _greedy_by_full_forwards(model, spec, f0, limit):
    """Greedy by re-running the whole model on each prefix; pad (the CTC blank) and bos are
    never a transcript's token, so neither may be chosen."""
    ids = []
    with torch.no_grad():
        while len(ids) < limit:
            logits = model(torch.tensor([[BOS] + ids]), spectrogram=spec, f0=f0)["logits"][0, -1]
            logits[[PAD, BOS]] = -float("inf")
            nxt = int(logits.argmax())
            if nxt == EOS:
                break
            ids.append(nxt)
    return ids


def test_without_the_ctc_term_a_beam_of_one_is_greedy(ctc_model):
    for seed in range(3):
        spec, f0 = _inputs(seed)
        assert joint_beam_ids(ctc_model, spec, f0, beam=1, ctc_weight=0.0, max_tokens=7) == \
            _greedy_by_full_forwards(ctc_model, spec, f0, 7)


def test_bad_requests_are_named(ctc_model, tiny_plain):
    spec, f0 = _inputs()
    with pytest.raises(EchoError, match="CTC head"):
        joint_beam_ids(tiny_plain, spec, f0)
    with pytest.raises(EchoError, match=r"\[0, 1\]"):
        joint_beam_ids(ctc_model, spec, f0, ctc_weight=1.5)
    with pytest.raises(EchoError, match="one clip"):
        joint_beam_ids(ctc_model, spec.repeat(2, 1, 1), f0.repeat(2, 1))


@pytest.fixture(scope="module")
def tiny_plain():
    from echo_core.train import make_dims

    torch.manual_seed(1)
    return Echo(make_dims("tiny", tok.vocab_size, 32, {"text_ctx": 10})).eval()


def test_the_head_travels_from_training_through_the_checkpoint(tmp_path, tiny_plain, ctc_model):
    """train.with_ctc_head gives the same model plus ``ctc``; the checkpoint keeps it (config
    and weights-only inference agree); fine-tuning from it copies the head into the training
    head when one is given, and leaves a fresh model without one."""
    from echo_core.checkpoint import infer_dims, load_checkpoint, save_checkpoint
    from echo_core.decode import decoding_name
    from echo_core.train import _init_from, with_ctc_head

    head = torch.nn.Linear(tiny_plain.dims.aud_dims, tiny_plain.dims.vocab)
    joined = with_ctc_head(tiny_plain, head)
    assert joined.dims.ctc_head and not tiny_plain.dims.ctc_head
    assert not hasattr(tiny_plain, "ctc")
    spec, f0 = _inputs()
    inp = torch.tensor([[BOS, 5, 6]])
    with torch.no_grad():
        assert torch.equal(joined(inp, spectrogram=spec, f0=f0)["logits"],
                           tiny_plain(inp, spectrogram=spec, f0=f0)["logits"])
    assert torch.equal(joined.ctc.weight, head.weight)
    save_checkpoint(joined, tmp_path / "run")
    loaded = load_checkpoint(tmp_path / "run")
    assert loaded.dims.ctc_head and torch.equal(loaded.ctc.weight, head.weight)
    assert infer_dims(loaded.state_dict()).ctc_head
    assert decoding_name(loaded).startswith("joint CTC/attention")
    assert decoding_name(tiny_plain) == "greedy search"
    fresh = Echo(tiny_plain.dims)
    assert "ctc_head" not in _init_from(fresh, str(tmp_path / "run"))
    assert torch.equal(fresh.decoder.token.weight, tiny_plain.decoder.token.weight)
    assert not hasattr(fresh, "ctc")
    training_head = torch.nn.Linear(tiny_plain.dims.aud_dims, tiny_plain.dims.vocab)
    assert not torch.equal(training_head.weight, head.weight)
    meta = _init_from(Echo(tiny_plain.dims), str(tmp_path / "run"), training_head)
    assert meta["ctc_head"] == "copied"
    assert torch.equal(training_head.weight, head.weight)
    assert torch.equal(training_head.bias, head.bias)
    save_checkpoint(tiny_plain, tmp_path / "headless")  # a source without a head: nothing to copy
    other = torch.nn.Linear(tiny_plain.dims.aud_dims, tiny_plain.dims.vocab)
    before = other.weight.clone()
    meta = _init_from(Echo(tiny_plain.dims), str(tmp_path / "headless"), other)
    assert meta["ctc_head"] == "fresh" and torch.equal(other.weight, before)
    meta = _init_from(Echo(tiny_plain.dims), str(tmp_path / "run"), other, copy_ctc=False)
    assert meta["ctc_head"] == "fresh" and torch.equal(other.weight, before)  # --no-init-ctc


def test_the_clip_pipeline_decodes_a_ctc_model_jointly(ctc_model):
    from echo_core import clip_run
    from echo_core.decode import decoding_name

    rng = np.random.default_rng(0)
    mel = rng.normal(size=(32, 60)).astype(np.float32)
    mel[:, 20:40] += 3.0  # something louder than the rest to decode
    f0 = np.where(rng.random(60) > 0.3, 130.0, np.nan)
    run = clip_run.run_clip(ctc_model, mel, f0, tokenizer=tok, max_tokens=5)
    assert run.decoding == decoding_name(ctc_model)
    a, b = run.decoded_span
    inputs = clip_run.model_inputs(ctc_model, mel[:, a:b], f0[a:b])
    assert run.token_ids == joint_beam_ids(ctc_model, inputs["spectrogram"], inputs["f0"],
                                           max_tokens=5)


def test_audio_too_short_for_more_words_ends_the_transcript(ctc_model):
    """One encoder position holds at most one CTC label: whatever the decoder proposes, the
    search ends there (eos is always scored), instead of ranking impossible hypotheses."""
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        spec, f0 = torch.randn(1, 32, 1, generator=g), torch.full((1, 1), 120.0)
        found = joint_beam_search(ctc_model, spec, f0, beam=3, max_tokens=6)
        score, ids = found[0]
        assert len(ids) <= 1 and np.isfinite(score) and score > -1e6


def test_the_evaluation_decodes_as_the_app_does(ctc_model):
    """study_eval.joint_decode_set (cached features) gives the transcripts the app's pipeline
    (clip_run.run_clip) gives: the search on each clip's speech span, here with quiet frames
    around two of the clips that the span leaves out."""
    from echo_core import clip_run
    from echo_core.audio import speech_span
    from echo_core.study_eval import joint_decode_set

    rng = np.random.default_rng(1)
    mels = [rng.normal(size=(32, n)).astype(np.float32) for n in (30, 45, 60)]
    for m, (a, b) in zip(mels[1:], [(8, 40), (0, 50)]):  # 3 units = 120 dB below the rest
        m[:, :a] -= 3
        m[:, b:] -= 3
    assert all(speech_span(m) != (0, m.shape[1]) for m in mels[1:])  # the span cuts
    f0s = [np.where(rng.random(m.shape[1]) > 0.3, 110.0 + 40 * rng.random(m.shape[1]), np.nan)
           for m in mels]
    got = joint_decode_set(ctc_model, tok, np.arange(3), mels, f0s)
    assert got == [clip_run.run_clip(ctc_model, m, f, tokenizer=tok).transcript
                   for m, f in zip(mels, f0s)]
