"""Cost of the per-head scores (#8) against the forward pass they are computed from.

For each shipped checkpoint (else a freshly initialised Echo of similar size, labelled so) and
10 s of looped example speech:

* "forward (no_grad)": one plain forward pass, 20-token prefix (the baseline);
* "forward under capture('full')": the same pass recording every attention map, which the
  Model view makes anyway (scores reuse it, no second forward);
* "head scores (all heads)": ``head_scores.head_score_table`` on that capture: every encoder
  self-, decoder self- and cross-attention head, all eight scores.

Target (issue #8): the scores cost a small fraction of the forward pass; here "small" is
written down as at most 25 % of the plain forward.
"""

from __future__ import annotations

import sys

from benchmarks import _harness as H
from benchmarks import _models as M
from benchmarks import _signals as S

TARGET_RATIO = 0.25  # head scores / plain forward
SECONDS = 10.0


def _scores_call(name: str, seconds: float):
    """Capture once (untimed), return the timed call: all scores from that capture."""
    from echo_core import head_scores as hs

    model, kwargs = M.load(name), M.inputs(name, seconds)
    cache = M.forward(name, seconds, "full")
    f0 = S.speech_f0_frames(seconds, kwargs["spectrogram"].shape[-1])
    given = kwargs["f0"] is not None
    return lambda: hs.head_score_table(cache, model, f0, f0_given=given)


def make_method(name: str, seconds: float, method: str):
    """Factory: warm up, return the timed call of one method."""
    M.app_threads(False)
    M.forward(name, 1.0, None)
    if method == "scores":
        return _scores_call(name, seconds)
    depth = "full" if method == "capture" else None
    M.inputs(name, seconds)
    return lambda: M.forward(name, seconds, depth)


METHODS = {"forward (no_grad)": "forward", "forward under capture('full')": "capture",
           "head scores (all heads)": "scores"}


def main(argv=None) -> dict:
    args = H.parse_args(__doc__.splitlines()[0], argv)
    rep = H.Report("head_scores", "Per-head score cost", args)
    rep.note(M.app_threads(args.quick))
    seconds = 1.0 if args.quick else SECONDS
    for name in M.names(args.quick, every=True):
        group = f"{seconds:g} s, {M.label(name)}"
        runs = {label: make_method(name, seconds, m) for label, m in METHODS.items()}
        timing = H.time_methods(runs, args.repeat, args.budget, args.quick)
        table = runs["head scores (all heads)"]()
        for label, method in METHODS.items():
            extra = {"heads": len(table), "pairs_per_head": int(table["n_pairs"].max())} \
                if method == "scores" else {}
            rep.row(group, label, timing[label], baseline=method == "forward", extra=extra)
    for row in rep.to_dict()["rows"]:
        if row["method"].startswith("head scores") and row["ratio"] is not None:
            rep.target(f"head scores / forward ({row['group']})", f"<= {TARGET_RATIO:.2f}",
                       f"{row['ratio']:.2f}", row["ratio"] <= TARGET_RATIO)
    rep.note("Scores read the query rows on an evenly spaced grid of at most "
             "attention_priors.MAX_ROWS positions and rank at most attention_priors.MAX_PAIRS pairs per "
             "head, so their cost grows far slower than the n^2 forward on long clips.")
    return rep.finish()


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
