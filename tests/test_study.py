"""The zoo study's bookkeeping: error counts against jiwer, paired WER intervals, the
intervention table and the verdict rule, on hand-made evaluation records."""

import numpy as np
import pytest

from echo_core import study_eval
from echo_core import study_tables as study


def test_utterance_errors_written_out():
    refs = ["one two three", "five", "oh nine", "seven eight", "two"]
    hyps = ["one three", "five five oh", "", "seven eight", "three"]
    # words: one deletion; two insertions; two deletions; none; one substitution
    assert study_eval.utterance_errors(refs, hyps) == [1, 2, 2, 0, 1]
    # characters (spaces count): "two " deleted; " five oh" inserted; all 7 deleted; none;
    # t-w-o -> t-h-r-e-e: two substitutions and two insertions
    assert study_eval.utterance_errors(refs, hyps, "char") == [4, 8, 7, 0, 4]


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


def _with_condition(e, condition, deltas):
    e["interventions"] += [dict(test_set="fsdd", clip=i, condition=condition, delta_nll=d)
                           for i, d in enumerate(deltas)]
    return e


def test_verdicts_follow_the_rule():
    n = 100
    rng = np.random.default_rng(0)
    # (c): shuffled changes nothing (a mean-F0 model), constant F0 hurts: it uses pitch
    c = _with_condition(_eval("mean_f0_theta", 0, [0] * n, deltas=[0.0] * n), "constant:100",
                        list(0.05 + 0.01 * rng.standard_normal(n)))
    f = _eval("null_f0_theta", 0, [1] * n, deltas=list(0.01 * rng.standard_normal(n)))
    b = _eval("frozen_theta", 0, [1] * n, uses_f0=False)
    evals = [c, f, b]
    comps = study.comparisons(evals)
    v = study.verdicts(evals, comps, study.intervention_table(evals))
    assert v["mean_f0_theta"].startswith("uses pitch: a wrong F0 raises its loss")
    assert "better than (f) `null_f0_theta`" in v["mean_f0_theta"]
    assert "better than (b) `frozen_theta`" in v["mean_f0_theta"]
    assert v["null_f0_theta"].startswith("no measurable use of pitch")
    assert v["frozen_theta"].startswith("does not use pitch")
    # a wrong F0 that lowers the loss is reported as such, not as use
    e = _eval("per_frame_theta", 0, [0] * n, deltas=list(-0.05 + 0.01 * rng.standard_normal(n)))
    v = study.verdicts([e], [], study.intervention_table([e]))
    assert v["per_frame_theta"].startswith("reads F0, but a wrong F0 does not hurt it")
    # equal error rates: no claim that pitch helps
    f_equal = _eval("null_f0_theta", 0, [0] * n, deltas=[0.0] * n)
    evals = [c, f_equal, b]
    v = study.verdicts(evals, study.comparisons(evals), study.intervention_table(evals))
    assert "not distinguishable from (f) `null_f0_theta`" in v["mean_f0_theta"]


def test_stage_comparison_pairs_the_same_clips_greedy_and_joint():
    """study compare: WER of both runs and the paired interval of first - second, for greedy
    and (when both runs have it) joint decoding; sets whose clips differ are not paired."""
    from echo_core.study_cards import compare_lines, joint_lines

    n = 200
    first, second = _eval("mean_f0_theta", 0, [0] * n), _eval("mean_f0_theta", 1, [1] * n)
    first["joint"] = {"decoding": "joint", "sets": _eval("x", 0, [0] * n)["sets"]}
    half = _eval("x", 0, [1] * (n // 2) + [0] * (n // 2))
    second["joint"] = {"decoding": "joint", "sets": half["sets"]}
    lines = compare_lines(first, second)
    assert len(lines) == 2 and lines[0].startswith("greedy fsdd")
    assert "0.00% vs  50.00%: -50.00 [-50.00, -50.00]" in lines[0]  # every utterance 1 of 2 words
    assert lines[1].startswith("joint  fsdd") and "vs  25.00%: -25.00" in lines[1]
    second["sets"]["fsdd"]["clips"] = list(range(1, n + 1))  # other clips: not paired
    assert [x.split()[0] for x in compare_lines(first, second)] == ["joint"]
    # the card's table of a model with a CTC head: greedy beside joint, and their difference
    table = "\n".join(joint_lines(first))
    assert "| fsdd | 200 | 0.00% | 0.00% | 0.00% | +0.00 [+0.00, +0.00] |" in table
    assert joint_lines(_eval("mean_f0_theta", 0, [0])) == []  # no head: no table


def test_confirmation_lines_put_fresh_clips_beside_the_test_set_and_the_target():
    """The default model's confirmation set: its app-decoded WER per set, the main test set's
    beside it, and the target met or not (joint decoding when the model has a head)."""
    from echo_core.study_cards import CONFIRM_COMMAND, confirmation_lines, default_model_section
    from echo_core.study_eval import JOINT_SPAN

    n = 100
    best = _eval("mean_f0_theta", 0, [0] * n)
    best["joint"] = {"decoding": "joint search", "span": JOINT_SPAN,
                     "sets": _eval("x", 0, [1] * 5 + [0] * 95)["sets"]}
    fresh = _eval("mean_f0_theta", 0, [0] * n)  # greedy 0%, joint 25% (1 of 2 words in half)
    fresh["joint"] = {"decoding": "joint search", "span": JOINT_SPAN,
                      "sets": _eval("x", 0, [1] * (n // 2) + [0] * (n // 2))["sets"]}
    text = "\n".join(confirmation_lines(best, fresh))
    assert (f"by joint search on each clip's speech span (built by `{CONFIRM_COMMAND}`, "
            "scored by") in text
    whole = dict(fresh, joint={k: v for k, v in fresh["joint"].items() if k != "span"})
    assert "by joint search on the whole clip (built by" in "\n".join(confirmation_lines(best,
                                                                                         whole))
    # fsdd: 25% on the fresh clips, 2.5% on the test set (5 of 200 words), target 10%: missed
    assert "| fsdd | 100 | 25.00% | 6.25% | 2.50% | <= 10% | no |" in text  # CER: 1 of 8
    best["confirmation"] = fresh
    assert "### Confirmation set" in "\n".join(default_model_section(best, []))


def test_joint_transcripts_of_the_whole_clip_and_of_the_span_are_never_paired():
    """Evaluations made before the joint search read the speech span (older files have no
    "span") are not paired with newer ones: compare says so instead of an interval, and a
    card names which of the two its joint numbers read."""
    from echo_core.study_cards import compare_lines, joint_lines
    from echo_core.study_eval import JOINT_SPAN

    old, new = _eval("mean_f0_theta", 0, [0, 1] * 10), _eval("mean_f0_theta", 0, [1, 0] * 10)
    old["joint"] = {"decoding": "joint search", "sets": old["sets"]}
    new["joint"] = {"decoding": "joint search", "span": JOINT_SPAN, "sets": new["sets"]}
    lines = compare_lines(new, old)
    assert [line.split()[0] for line in lines] == ["greedy", "joint"]
    assert "not paired" in lines[1] and "[" not in lines[1]
    assert any("[" in line for line in compare_lines(new, dict(new)))
    assert "as the app decodes them" in joint_lines(new)[1] and "speech span" in joint_lines(new)[1]
    assert "of the whole clip" in joint_lines(old)[1]
    from echo_core.study_cards import default_model_section

    assert "Decoded as the app decodes it, by joint search on each clip's speech span" in \
        "\n".join(default_model_section(new, []))
    said = "\n".join(default_model_section(old, []))
    assert "Decoded by joint search on the whole clip" in said and "as the app" not in said
