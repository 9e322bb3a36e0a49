"""Pitch interventions on the shipped checkpoints: the true condition is the pipeline itself,
a model without F0 is untouched by every contour condition, theta follows the formula, and
the paired bootstrap matches independent computations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from echo_core import interventions as I
from echo_core import rotary
from echo_core.clip_run import transcribe

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "assets" / "clips" / "digits_en-us_m5_four-two-seven.wav"
CONTOUR_CONDITIONS = ("constant:100", "scaled:1.5", "semitones:-5", "shuffled:1", "reversed",
                      "rolled:0.5", "unvoiced")


def test_true_condition_reproduces_transcribe(shipped_models, digit_clip):
    for model in shipped_models.values():
        run = I.run_condition(model, *digit_clip, "true")
        assert run.transcript == transcribe(model, *digit_clip)
        assert run.reference == run.transcript
        assert run.nll == pytest.approx(-np.mean(run.token_logprobs))


def test_a_model_without_f0_is_bit_identical_under_every_contour_condition(shipped_models,
                                                                           digit_clip):
    model = shipped_models["static_theta"]
    assert "does not reach" in I.f0_route(model)
    table, runs = I.compare_conditions(model, *digit_clip, CONTOUR_CONDITIONS)
    true = runs["true"]
    for name in CONTOUR_CONDITIONS:
        np.testing.assert_array_equal(runs[name].token_logprobs, true.token_logprobs)
        assert runs[name].transcript == true.transcript
    assert (table.delta_nll == 0).all() and not table.changed.any()
    assert (table.theta_in_force == table.theta_in_force.iloc[0]).all()


def test_theta_in_force_follows_the_formula_and_the_contour(shipped_models, digit_clip):
    model = shipped_models["mean_f0_theta"]
    assert "rotary theta from F0" in I.f0_route(model)
    run = I.run_condition(model, *digit_clip, "constant:300")
    rule = model.dims.f0_mean
    expected = rotary.theta_eff(10000.0, rotary.mean_f0(run.f0_frames, rule))  # independent
    encoder = run.theta[run.theta.kind == "encoder self-attention"]
    for row in encoder.itertuples():
        assert row.theta_in_force == pytest.approx(
            rotary.theta_eff(row.theta, rotary.mean_f0(run.f0_frames, rule)))
    assert encoder.theta.iloc[0] == pytest.approx(10000.0, rel=1e-3)
    assert encoder.theta_in_force.iloc[0] == pytest.approx(expected, rel=1e-3)
    true = I.run_condition(model, *digit_clip, "true")
    assert not np.array_equal(run.token_logprobs, true.token_logprobs)  # F0 reaches this one
    assert run.reference == true.transcript  # the text scored is the true-F0 transcript


def test_sensitivity_summary_rows(shipped_models, digit_clip):
    table, runs = I.compare_conditions(shipped_models["mean_f0_theta"], *digit_clip,
                                       ["shuffled:0", "audio_keep:3"])
    assert list(table.condition) == ["true", "shuffled:0", "audio_keep:3"]
    assert table.delta_nll.iloc[0] == 0.0
    for row in table.itertuples():
        assert row.delta_nll == pytest.approx(row.nll - table.nll.iloc[0])
    np.testing.assert_array_equal(  # audio_keep keeps the original contour
        np.isfinite(runs["audio_keep:3"].f0_frames), np.isfinite(runs["true"].f0_frames))


def test_paired_bootstrap_against_independent_computations():
    assert I.paired_bootstrap([0.3] * 7) == (0.3, 0.3, 0.3)
    assert all(np.isnan(I.paired_bootstrap([])))
    d = np.random.default_rng(5).normal(0.2, 1.0, 400)
    mean, low, high = I.paired_bootstrap(d, n_samples=4000)
    assert mean == pytest.approx(d.mean())
    half = 1.96 * d.std(ddof=1) / np.sqrt(d.size)  # the normal approximation
    assert low == pytest.approx(d.mean() - half, abs=0.02)
    assert high == pytest.approx(d.mean() + half, abs=0.02)


# ------------------------------------------------------------------ the workbench's view of it

def test_intervention_analysis_beside_the_true_run():
    from echo_core.pitch_conditions import ConditionError
    from workbench import analysis as A
    from workbench import intervention_analysis as IA

    clip = A.clip_from_path(CLIP)
    with pytest.raises(ConditionError, match="other than the true F0"):
        IA.run_intervention(clip, None, "shipped/static_theta", "true")
    with pytest.raises(ConditionError, match="pick that clip"):
        IA.run_intervention(clip, None, "shipped/static_theta", "other:x")
    r = IA.run_intervention(clip, None, "shipped/mean_f0_theta", "constant:300")
    assert list(r.summary["condition"]) == ["true F0", "constant:300"]
    assert r.summary["Δ NLL"].iloc[1] == pytest.approx(
        -np.mean(r.logprob_condition) + np.mean(r.logprob_true))
    assert len(r.tokens) == len(r.logprob_true) == len(r.logprob_condition)
    encoder = r.theta[r.theta.kind == "encoder self-attention"]
    assert (encoder["θ in force (condition)"] > encoder["θ in force (true F0)"]).all()  # 300 Hz
    cond, true, diff = r.attention_difference(0, 1)
    np.testing.assert_allclose(diff, cond - true)
    assert {"pitch_partial_spearman_null_p95", "follows_pitch"} <= set(r.head_scores.columns)
    with pytest.raises(ConditionError, match="head must be"):
        r.attention_difference(0, 99)
    assert IA.get_result(r.key) is r
