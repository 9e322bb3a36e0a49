"""The model-zoo study's command line (issue #17).

    python -m echo_core.study eval --data CORPUS --run RUNS/mean_f0_theta_s0   # after training
    python -m echo_core.study report --data CORPUS --runs RUNS --out assets/checkpoints/zoo \
        --ship assets/checkpoints
    python -m echo_core.study compare RUNS/a RUNS/b   # paired intervals, the same test clips
    python -m echo_core.study noise --data CORPUS --checkpoint CKPT   # a noise floor's cost

``eval`` (``study_eval``) decodes the unseen-speaker test sets and runs the pitch
interventions for one run; ``report`` (``study_tables``, ``study_cards``) writes study.csv,
comparisons.csv, interventions.csv, verdicts.json and RESULTS.md, and with ``--ship`` copies
each config's seed-0 run into the assets with a model card; ``compare`` prints two evaluated
runs' WER per test set and the paired bootstrap interval of their difference; ``noise``
(``study_noise``) scores a checkpoint on the test clips with a white-noise floor added, paired
against the same clips clean.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .study_cards import (GROWN_COMMAND, GROWN_CORPUS, LONG_NOTE, compare_lines, eval_rows,
                          results_markdown, ship)
from .errors import EchoError
from .study_eval import EVAL_FILE, PIPELINE_CLIPS, eval_run
from .study_noise import LEVELS_DB, NOISE_FILE, noise_eval, noise_lines, write_noise_eval
from .study_tables import load_evals, report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("eval", help="decode the test sets and run interventions for one run")
    e.add_argument("--data", required=True)
    e.add_argument("--run", required=True)
    e.add_argument("--clips", type=int, default=PIPELINE_CLIPS,
                   help="clips per test set whose interventions are rerun on the one pipeline")
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--max-clips", type=int, default=0, help="smoke run: clips per test set")
    e.add_argument("--out-file", default=EVAL_FILE)
    c = sub.add_parser("compare", help="paired WER intervals of two evaluated runs")
    c.add_argument("first", help="a run folder with study_eval.json")
    c.add_argument("second", help="another, evaluated on the same corpus")
    r = sub.add_parser("report", help="gather the runs' evaluations into tables")
    r.add_argument("--runs", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--data", required=True, help="the corpus (for its description)")
    r.add_argument("--ship", default=None,
                   help="also copy each config's seed-0 run to SHIP/zoo_<config> with a card")
    r.add_argument("--best", default=None,
                   help="the default model's run folder (evaluated): reported in its own "
                        "section and shipped as SHIP/zoo_<config>_long")
    n = sub.add_parser("noise", help="WER with a white-noise floor, paired against clean")
    n.add_argument("--data", required=True)
    n.add_argument("--checkpoint", required=True, help="a checkpoint folder or run folder")
    n.add_argument("--levels", type=float, nargs="+", default=list(LEVELS_DB),
                   help="noise power in dB below each clip's power")
    n.add_argument("--threads", type=int, default=1)
    n.add_argument("--max-clips", type=int, default=0, help="smoke run: clips per test set")
    n.add_argument("--out", default=None, help=f"where to write the JSON (default: "
                                                 f"CHECKPOINT/{NOISE_FILE})")
    args = parser.parse_args(argv)
    if args.command == "compare":
        missing = [run for run in (args.first, args.second) if not Path(run, EVAL_FILE).is_file()]
        if missing:
            parser.error(f"no {EVAL_FILE} in {', '.join(Path(m).name for m in missing)}: run "
                         "`python -m echo_core.study eval` on it first")
        first, second = (json.loads(Path(run, EVAL_FILE).read_text())
                         for run in (args.first, args.second))
        print("first - second, WER points, paired bootstrap 95% interval:")
        print("\n".join(compare_lines(first, second)))
    elif args.command == "noise":
        try:
            result = noise_eval(args.data, args.checkpoint, args.levels, args.max_clips,
                                args.threads)
        except EchoError as e:
            parser.error(str(e))
        print(write_noise_eval(result, args.out or Path(args.checkpoint, NOISE_FILE)))
        print("noisy - clean, WER points, paired bootstrap 95% interval:")
        print("\n".join(noise_lines(result)))
    elif args.command == "eval":
        print(eval_run(args.data, args.run, args.clips, args.threads, args.max_clips,
                       args.out_file))
    else:
        result = report(args.runs, args.out)
        best = (json.loads(Path(args.best, EVAL_FILE).read_text()) if args.best else None)
        Path(args.out, "RESULTS.md").write_text(results_markdown(result, args.data, args.runs,
                                                                 best))
        if args.ship:
            for e in load_evals(args.runs):
                if e["seed"] == 0:
                    ship(e, Path(args.ship) / f"zoo_{e['preset']}", eval_rows(e))
            if best is not None:
                ship(best, Path(args.ship) / f"zoo_{best['preset']}_long", eval_rows(best),
                     LONG_NOTE, GROWN_CORPUS, GROWN_COMMAND)
        print(result["errors"].to_string())
        print(json.dumps(result["verdicts"], indent=1))


if __name__ == "__main__":
    main()
