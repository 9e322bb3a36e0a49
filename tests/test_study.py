"""The zoo study's bookkeeping: error counts against jiwer, paired WER intervals, the
intervention table and the verdict rule, on hand-made evaluation records."""

import numpy as np
import pytest

from echo_core import study


def test_word_and_char_errors_match_jiwer():
    import jiwer

    pairs = [("one two three", "one three"), ("five", "five five oh"), ("oh nine", ""),
             ("seven eight", "seven eight"), ("two", "three")]
    for ref, hyp in pairs:
        out = jiwer.process_words(ref, hyp if hyp else " ")
        assert study.word_errors(ref, hyp) == out.substitutions + out.deletions + out.insertions
        chars = jiwer.process_characters(ref, hyp if hyp else " ")
        expected = chars.substitutions + chars.deletions + chars.insertions
        assert study.char_errors(ref, hyp) == (expected if hyp else len(ref))


def _eval(preset, seed, errors, uses_f0=True, deltas=None):
    errors = list(errors)
    sets = {"fsdd": dict(clips=list(range(len(errors))), hyps=[""] * len(errors),
                         word_errors=errors, words=[2] * len(errors),
                         char_errors=errors, chars=[8] * len(errors))}
    inter = [dict(test_set="fsdd", clip=i, condition="shuffled:0", delta_nll=d)
             for i, d in enumerate(deltas or [])]
    return dict(run=f"/x/{preset}_s{seed}", preset=preset, seed=seed, steps=10,
                wall_seconds=60.0, params=1, f0_input="true", uses_f0=uses_f0, sets=sets,
                interventions=inter, decode_seconds=1.0, intervention_seconds=1.0)


def test_error_table_spread_over_seeds():
    evals = [_eval("mean_f0_theta", 0, [0, 1, 0, 1]), _eval("mean_f0_theta", 1, [0, 0, 0, 0])]
    rows = {(r["config"], r["test_set"]): r for r in study.error_table(evals)}
    r = rows[("mean_f0_theta", "fsdd")]
    assert r["n_seeds"] == 2 and r["wer_seed0"] == pytest.approx(0.25)
    assert r["wer_min"] == 0 and r["wer_max"] == pytest.approx(0.25)
    assert rows[("mean_f0_theta", "real (fsdd both)")]["wer_mean"] == pytest.approx(0.125)


def test_comparison_mean_is_the_wer_difference_and_excludes_zero_when_clear():
    n = 200
    c = _eval("mean_f0_theta", 0, [0] * n)
    f = _eval("null_f0_theta", 0, [1] * (n // 2) + [0] * (n // 2))
    comps = {(x["first"], x["second"], x["test_set"]): x for x in study.comparisons([c, f])}
    x = comps[("mean_f0_theta", "null_f0_theta", "fsdd")]
    assert x["delta_wer"] == pytest.approx(0 - 0.25)
    assert x["high"] < 0 and x["excludes_zero"]


def test_verdicts_follow_the_rule():
    n = 100
    rng = np.random.default_rng(0)
    c = _eval("mean_f0_theta", 0, [0] * n, deltas=list(0.05 + 0.01 * rng.standard_normal(n)))
    f = _eval("null_f0_theta", 0, [1] * n, deltas=list(0.01 * rng.standard_normal(n)))
    b = _eval("frozen_theta", 0, [1] * n, uses_f0=False)
    evals = [c, f, b]
    comps = study.comparisons(evals)
    v = study.verdicts(evals, comps, study.intervention_table(evals))
    assert v["mean_f0_theta"].startswith("uses pitch")
    assert v["null_f0_theta"].startswith("no evidence")
    assert v["frozen_theta"].startswith("does not use pitch")
    # the same intervention numbers, but (c) no better than (f): no claim for (c)
    f_equal = _eval("null_f0_theta", 0, [0] * n, deltas=[0.0] * n)
    evals = [c, f_equal, b]
    v = study.verdicts(evals, study.comparisons(evals), study.intervention_table(evals))
    assert v["mean_f0_theta"].startswith("no evidence")
