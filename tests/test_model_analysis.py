"""workbench.checkpoints and .model_analysis: the checkpoint registry and model runs on a clip
(statistics, maps, head scores, comparisons), checked against separate captured forwards."""

import math

import numpy as np
import pytest
from _maps import map_layers

from echo_core import head_scores as hs
from echo_core.errors import CaptureError, CheckpointError, ConfigError, EchoError, TranscriptError
from workbench import analysis as A
from workbench import checkpoints as C
from workbench import model_analysis as M


@pytest.fixture(scope="module")
def glide():
    """A 2 s synthetic glide 110 -> 220 Hz with a silent gap: known F0."""
    samples, true_f0 = A.synthetic_samples(2.0)
    return A._register(samples, 16000, "glide"), true_f0


def test_pool_is_a_block_mean():
    a = np.arange(2 * 10 * 7, dtype=np.float32).reshape(2, 10, 7)
    pooled = M._pool(a, 4)
    assert pooled.shape == (2, 4, 4)
    np.testing.assert_allclose(pooled[1, 0, 0], a[1, 0:3, 0:2].mean())


# ----------------------------------------------------------------------------- models

@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory):
    """Two tiny random checkpoints (causal with pitch bias; reference additive mask)."""
    import torch

    from echo_core.checkpoint import save_checkpoint
    from echo_core.model import Echo
    from echo_core.model_dims import EchoDims
    from echo_core.tokenizer import CharTokenizer

    tok = CharTokenizer()
    ids = {}
    for name, extra in [("causal_bias", dict(decoder_mask="causal", f0_rotary=True, pitch_bias=True)),
                        ("reference", dict(f0_rotary=False))]:
        torch.manual_seed(0)
        dims = EchoDims(vocab=tok.vocab_size, text_ctx=24, text_dims=32, text_head=2, text_idx=1,
                        mels=32, aud_ctx=640, aud_dims=32, aud_head=2, aud_idx=2, **extra)
        folder = tmp_path_factory.mktemp(name)
        save_checkpoint(Echo(dims), folder, meta={"features": {"n_mels": 32, "fmin": 0.0, "fmax": 8000.0}})
        tok.save(folder)
        ids[name] = C.register_checkpoint(folder, f"tiny {name}")
    return ids


def test_run_model_statistics_maps_and_warnings(tiny_checkpoints, glide):
    clip, _ = glide
    result = M.run_model(clip, None, tiny_checkpoints["causal_bias"], {}, "one two")
    assert result.teacher_text == "one two" and result.teacher_source == "typed transcript"
    assert set(result.gradients["component"]) >= {"GATE", "MLP", "Q", "K", "V", "O", "LN"}
    assert (result.gradients["samples"] > 0).any() and np.isfinite(result.loss)
    assert list(result.gates["block"]) == ["encoder.blocks.spectrogram.1.", "encoder.blocks.spectrogram.2.",
                                           "decoder._blocks.0.", "decoder.blocks.spectrogram.0."]
    expected = math.sqrt(5 * 32 / 33)
    assert result.expected_ratio == pytest.approx(expected)
    from workbench.ui import model_views

    assert model_views.warning_markdown(result) == ""  # causal decoder: no warning
    assert result.bias is not None and result.bias_applied
    # The bias map is drawn against time: its sampled positions x the duration of one position.
    assert result.bias_positions.shape == (result.bias.shape[0],)
    assert np.all(np.diff(result.bias_positions) > 0)
    figure = model_views.model_figures(result, "encoder self-attention", 1, 0, "weights")
    heat = map_layers(figure["pitch_bias_as_used"])[0]  # image + hover grid, or a heatmap
    assert heat["x"][-1] == pytest.approx(result.bias_positions[-1] * 0.008)
    assert 1.9 < heat["x"][-1] <= 2.0 + 1e-6 and figure["pitch_bias_as_used"].layout.xaxis.title.text == \
        "time (s)"
    layers, heads = M.attention_shape(result, "encoder self-attention")
    assert (layers, heads) == (2, 2)
    m, xt, yt, x, y = M.attention_map(result, "decoder self-attention", 0, 1, "weights")
    assert m.shape == (8, 8) and list(y)[:2] == ["0:<bos>", "1:o"]
    assert m[0, 1] == 0.0  # the causal mask blocks the future: no weight ...
    np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-5)  # softmax rows
    scores = M.attention_map(result, "decoder self-attention", 0, 1, "scores")[0]
    assert np.isnan(scores[0, 1]) and np.isfinite(np.tril(scores)).all()  # ... and -inf is a gap
    with pytest.raises(CaptureError):
        M.attention_map(result, "decoder self-attention", 5, 0)
    # encoder layers are numbered as in the module paths and head-score tables: 1..2 here
    assert M.attention_map(result, "encoder self-attention", 1, 0)[0].shape[0] > 0
    with pytest.raises(CaptureError, match=r"layer must be 1\.\.2, got 0"):
        M.attention_map(result, "encoder self-attention", 0, 0)
    assert set(result.head_scores.query("kind == 'encoder self-attention'").layer) == {1, 2}
    assert M.run_model(clip, None, tiny_checkpoints["causal_bias"], {}, "one two") is result  # cached


def test_run_model_head_scores_equal_a_separate_captured_forward(tiny_checkpoints, glide):
    """The scores run_model takes from its own (forward + backward) capture equal those of an
    independent no-grad forward (model_analysis.head_scores) on the same mel, F0 and tokens."""
    from echo_core import decode

    clip, _ = glide
    result = M.run_model(clip, None, tiny_checkpoints["causal_bias"], {}, "one two")
    table = result.head_scores
    assert result.head_scores_error == "" and len(table) == (2 + 1 + 1) * 2  # modules x heads
    assert np.isfinite(table.loc[table["kind"] == hs.ENCODER_SELF, "pitch_spearman"]).all()
    from workbench.ui.model_views import head_score_markdown

    assert result.pitch_bias_in_scores and "partly built in" in head_score_markdown(result)
    assert "head_scores" in result.tables()
    model = C.load_model(tiny_checkpoints["causal_bias"])
    ids = decode.load_tokenizer(model).encode("one two")
    mel = M._features(model, clip, [])
    separate = M.head_scores(model, mel, A.frame_f0(clip, None), token_ids=ids)
    cols = list(hs.SCORES)
    np.testing.assert_allclose(table[cols].to_numpy(float), separate[cols].to_numpy(float),
                               atol=1e-5, equal_nan=True)
    # B − A of a model against itself is 0 wherever the score exists.
    diff = M.head_score_difference(result, result, "pitch_partial_spearman")
    finite = np.isfinite(table["pitch_partial_spearman"]).sum()
    assert len(diff) == finite == 2 * 2 and (diff["B − A"] == 0.0).all()  # encoder rows only
    with pytest.raises(EchoError, match="accepted"):
        M.head_score_difference(result, result, "loudness")


def test_barely_voiced_clip_still_runs_without_scores(tiny_checkpoints):
    """White noise: Praat finds (almost) no voicing; the model view works, the scores say why."""
    noise = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    clip = A._register(noise, 16000, "noise")
    result = M.run_model(clip, None, tiny_checkpoints["reference"])
    assert result.head_scores is None and "voiced frames" in result.head_scores_error
    from workbench.ui.model_views import head_score_markdown

    assert "voiced frames" in head_score_markdown(result) and "head_scores" not in result.tables()
    assert len(result.gates) > 0 and np.isfinite(result.loss)
    empty = M.head_score_difference(result, result, "pitch_spearman")
    assert list(empty.columns) == ["kind", "layer", "head", "A", "B", "B − A"] and empty.empty


def test_reference_mask_is_flagged_and_greedy_text_used(tiny_checkpoints, glide):
    clip, _ = glide
    result = M.run_model(clip, None, tiny_checkpoints["reference"])
    from workbench.ui.model_views import warning_markdown

    assert "non-causal" in warning_markdown(result)
    assert result.teacher_source == "model's transcript"
    assert result.decoding == "greedy search"  # a checkpoint without a CTC head
    assert result.bias is None  # no F0 reaches a static-theta model
    # no F0: theta in force is the base its frequencies imply, said so, one definition with
    # the Interventions view (interventions.theta_table)
    learned = result.learned.dropna(subset=["θ in force (this clip)"])
    assert (learned["θ from"] == "learned inv_freq").all() and len(learned)
    np.testing.assert_allclose(learned["θ in force (this clip)"],
                               learned["inv_freq implied theta"], rtol=1e-9)


def test_compare_tables_split_modules_and_scalars(tiny_checkpoints, glide):
    clip, _ = glide
    a = M.run_model(clip, None, tiny_checkpoints["causal_bias"])
    b = M.run_model(clip, None, tiny_checkpoints["reference"])
    diff, scalars = M.compare_tables(a, b)
    assert set(diff["kind"]) <= {"module", "inv_freq"} and set(scalars["kind"]) == {"scalar"}
    assert (diff["rel_change"] == 0).all()  # same seed, same init: only the switches differ


def test_model_errors_are_user_errors(tiny_checkpoints, glide):
    clip, _ = glide
    with pytest.raises(TranscriptError):
        M.run_model(clip, None, tiny_checkpoints["causal_bias"], {}, "digits 123")
    with pytest.raises(CheckpointError, match="unknown checkpoint"):
        M.run_model(clip, None, "/etc/passwd")
    with pytest.raises(ConfigError, match="unknown override"):
        M.run_model(clip, None, tiny_checkpoints["reference"], {"vocab": 3})


def test_upload_of_a_bare_state_dict_with_overrides(tmp_path, tiny_checkpoints):
    from safetensors.torch import load_file, save_file

    source = C.resolve(tiny_checkpoints["reference"])[0] / "model.safetensors"
    bare = tmp_path / "reference_weights.safetensors"
    save_file(load_file(str(source)), str(bare))  # weights only, no config metadata
    cid = C.register_upload([str(bare)], {"act": "relu"})
    assert cid in [c[1] for c in C.checkpoint_choices([cid])]  # listed for the uploading session
    assert cid not in [c[1] for c in C.checkpoint_choices()]  # and for nobody else
    model = C.load_model(cid)
    assert model.dims.act == "relu" and model.meta["source"] == "reference"
    assert model.dims.decoder_mask == "additive"
    with pytest.raises(CheckpointError, match="exactly one weights file"):
        C.register_upload([str(tmp_path / "x.json")])


def test_pool_takes_exact_block_means_without_padding():
    """7 positions to at most 3: blocks of 3, 3 and 1; the last block is its own mean (edge
    padding used to weight it as three copies of the last value)."""
    a = np.arange(7.0)[None, :] * np.ones((7, 1))  # (7, 7): value = key index
    pooled = M._pool(a[None], 3)[0]
    assert pooled.shape == (3, 3)
    np.testing.assert_allclose(pooled[0], [1.0, 4.0, 6.0])
    b = np.arange(8.0).reshape(1, 2, 4)  # keys 4 -> blocks of 2; queries 2 stay
    np.testing.assert_allclose(M._pool(b, 3), [[[0.5, 2.5], [4.5, 6.5]]])
