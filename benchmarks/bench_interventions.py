"""Pitch interventions: the cost of a pitch-sensitivity summary against one analysed run.

On a 10 s speech clip and each shipped checkpoint (a tiny fresh model with --quick), side by
side in one run: one analysed run (``clip_run.run_clip`` with a captured teacher-forced
forward: what the Model view pays for its maps; the baseline), one condition beside the true
F0 (``interventions.run_condition``), the sensitivity summary of three contour conditions
(``compare_conditions``: true, shuffled, constant 100 Hz, +4 semitones), and the head-score
null (10 null contours scored on one capture, ``head_score_null``).
"""

from __future__ import annotations

import sys

from benchmarks import _harness as H
from benchmarks import _models as M
from benchmarks import _signals as S

SECONDS = 10.0
CONDITIONS = ("shuffled", "constant:100", "semitones:4")


def make(name: str, seconds: float, what: str):
    from echo_core import clip_run, head_score_null, interventions

    model, samples = M.load(name), S.real_speech(float(seconds))
    mel, f0 = clip_run.clip_features(model, samples, S.SR)
    if what == "run":
        return lambda: clip_run.run_clip(model, mel, f0, capture="forward")
    if what == "one":
        return lambda: interventions.run_condition(model, samples, S.SR, "shuffled")
    if what == "summary":
        return lambda: interventions.compare_conditions(model, samples, S.SR, CONDITIONS)
    run = clip_run.run_clip(model, mel, f0, capture="forward")
    return lambda: head_score_null.head_scores_with_null(run.cache, model, f0, run.uses_f0)


METHODS = {"one analysed run (clip_run, captured forward)": "run",
           "one condition beside the true F0": "one",
           f"sensitivity summary ({len(CONDITIONS)} conditions + true)": "summary",
           "head scores with their null (k = 10)": "null"}


def main(argv=None) -> dict:
    args = H.parse_args(__doc__.splitlines()[0], argv)
    rep = H.Report("interventions", "Pitch-sensitivity summary vs one analysed run", args)
    rep.note(M.app_threads(args.quick))
    seconds = 2.0 if args.quick else SECONDS
    for name in M.names(args.quick, every=True):
        group = f"{seconds:g} s, {M.label(name)}"
        runs = {method: make(name, seconds, what) for method, what in METHODS.items()}
        timing = H.time_methods(runs, min(args.repeat, 3), args.budget, args.quick)
        for method, what in METHODS.items():
            rep.row(group, method, timing[method], baseline=what == "run")
    rep.note("Every path runs through echo_core.clip_run; the summary decodes greedily once per "
             "condition and scores the true-F0 transcript under each.")
    return rep.finish()


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
