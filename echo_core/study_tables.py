"""The zoo study's tables (issue #17) from the runs' ``study_eval.json``: WER/CER per config x
unseen-speaker test set with the seed spread, paired bootstrap intervals between configs, the
pitch-intervention matrix, and a plain verdict per config. Pure bookkeeping on the evaluation
records: no model is loaded here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .interventions import paired_bootstrap
from .study_eval import EVAL_FILE

# Configs of the ablation, issue #17's letters, in the order of the table.
CONFIGS = {"static_theta": "a", "frozen_theta": "b", "mean_f0_theta": "c",
           "per_frame_theta": "d", "f0_theta_bias": "e", "null_f0_theta": "f"}
COMPARISONS = (("mean_f0_theta", "frozen_theta"), ("mean_f0_theta", "null_f0_theta"),
               ("f0_theta_bias", "mean_f0_theta"))
REAL_SETS = ("fsdd", "fsdd_spliced")
# The run order (stop when time runs out): every seed 0, then (c), (b), (f) seeds 1-2.
PLANNED = [("mean_f0_theta", 0), ("frozen_theta", 0), ("null_f0_theta", 0),
           ("f0_theta_bias", 0), ("static_theta", 0), ("per_frame_theta", 0)] + [
    (config, seed) for seed in (1, 2) for config in
    ("mean_f0_theta", "frozen_theta", "null_f0_theta")]
NLL_TOLERANCE = 1e-5  # |delta NLL| below this is float32 rounding: an interval inside it is 0


def error_rate(s: dict, kind: str = "word") -> float:
    """Errors over reference units (words or chars) of one test set's record."""
    return sum(s[f"{kind}_errors"]) / max(1, sum(s[f"{kind}s"]))


def load_evals(runs: str | Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(Path(runs).glob(f"*/{EVAL_FILE}"))]


def real_pooled(e: dict) -> dict | None:
    """One evaluation's real-speaker sets (REAL_SETS) merged into one test-set record (None
    when it has none): the "real (fsdd both)" row of every table."""
    real = [e["sets"][n] for n in REAL_SETS if n in e["sets"]]
    if not real:
        return None
    return {k: sum((s[k] for s in real), []) for k in
            ("word_errors", "words", "char_errors", "chars", "clips")}


def paired_wer(first_errors, second_errors, words) -> tuple[float, float, float]:
    """(mean, low, high) of WER(first) - WER(second) by a paired bootstrap over utterances:
    per-utterance word-error differences divided by the mean words per utterance, so their
    mean is the WER difference."""
    diff = np.asarray(first_errors, float) - np.asarray(second_errors, float)
    return paired_bootstrap(diff / np.asarray(words, float).mean())


def paired_wer_text(first: dict, second: dict) -> str:
    """``paired_wer`` of two set records on the same clips (first - second), in WER points as
    the cards and command lines print it: "+1.23 [+0.45, +2.01]"."""
    mean, low, high = paired_wer(first["word_errors"], second["word_errors"], first["words"])
    return f"{100 * mean:+.2f} [{100 * low:+.2f}, {100 * high:+.2f}]"


def error_table(evals: list[dict]) -> list[dict]:
    """One row per config x test set: WER/CER of each seed, their mean and spread."""
    import pandas as pd

    rows = []
    for e in evals:
        for name, s in e["sets"].items():
            rows.append(dict(config=e["preset"], seed=e["seed"], test_set=name,
                             clips=len(s["clips"]), wer=error_rate(s), cer=error_rate(s, "char")))
        merged = real_pooled(e)
        if merged is not None:
            rows.append(dict(config=e["preset"], seed=e["seed"], test_set="real (fsdd both)",
                             clips=len(merged["clips"]), wer=error_rate(merged),
                             cer=error_rate(merged, "char")))
    df = pd.DataFrame(rows)
    out = []
    for (config, test_set), g in df.groupby(["config", "test_set"], sort=False):
        out.append(dict(config=config, letter=CONFIGS.get(config, "?"), test_set=test_set,
                        clips=int(g["clips"].iloc[0]), seeds=" ".join(map(str, sorted(g["seed"]))),
                        n_seeds=len(g), wer_mean=g["wer"].mean(), wer_min=g["wer"].min(),
                        wer_max=g["wer"].max(), wer_sd=g["wer"].std(ddof=1) if len(g) > 1
                        else float("nan"), cer_mean=g["cer"].mean(),
                        wer_seed0=float(g.loc[g["seed"] == 0, "wer"].iloc[0])
                        if (g["seed"] == 0).any() else float("nan")))
    return out


def _per_utterance(evals, config, test_set, seeds) -> np.ndarray:
    """Word errors per utterance, averaged over ``seeds`` (clips in manifest order)."""
    rows = [np.asarray(e["sets"][test_set]["word_errors"], float) for e in evals
            if e["preset"] == config and e["seed"] in seeds and test_set in e["sets"]]
    return np.mean(rows, axis=0)


def comparisons(evals: list[dict]) -> list[dict]:
    """Paired bootstrap of WER(first) - WER(second) per test set (and the real sets pooled):
    per-utterance word-error differences (averaged over the seeds both configs have) divided by
    the mean words per utterance, so their mean is the WER difference."""
    out = []
    seeds_of = {}
    for e in evals:
        seeds_of.setdefault(e["preset"], set()).add(e["seed"])
    for first, second in COMPARISONS:
        if first not in seeds_of or second not in seeds_of:
            continue
        seeds = seeds_of[first] & seeds_of[second]
        if not seeds:
            continue
        example = next(e for e in evals if e["preset"] == first)
        names = list(example["sets"]) + ["real (fsdd both)"]
        for name in names:
            parts = REAL_SETS if name == "real (fsdd both)" else (name,)
            parts = [p for p in parts if p in example["sets"]]
            if not parts:
                continue
            a = np.concatenate([_per_utterance(evals, first, p, seeds) for p in parts])
            b = np.concatenate([_per_utterance(evals, second, p, seeds) for p in parts])
            words = np.concatenate([example["sets"][p]["words"] for p in parts])
            mean, low, high = paired_wer(a, b, words)
            out.append(dict(first=first, second=second, test_set=name,
                            seeds=" ".join(map(str, sorted(seeds))), clips=int(a.size),
                            delta_wer=mean, low=low, high=high,
                            excludes_zero=bool(low > 0 or high < 0)))
    return out


def intervention_table(evals: list[dict]) -> list[dict]:
    """Per config x condition x scope (all test clips; the real-speaker sets): mean delta NLL
    per token (condition - normal contour), each clip's delta averaged over the config's
    seeds, with the paired bootstrap interval over clips."""
    by_key: dict[tuple, dict] = {}
    for e in evals:
        for r in e["interventions"]:
            for scope in ("all", "real (fsdd both)"):
                if scope != "all" and r["test_set"] not in REAL_SETS:
                    continue
                clips = by_key.setdefault((e["preset"], r["condition"], scope), {})
                clips.setdefault(r["clip"], []).append(r["delta_nll"])
    out = []
    for (config, condition, scope), clips in by_key.items():
        deltas = [float(np.mean(v)) for v in clips.values()]
        seeds = sorted({e["seed"] for e in evals if e["preset"] == config and e["interventions"]})
        mean, low, high = paired_bootstrap(deltas)
        out.append(dict(config=config, condition=condition, scope=scope, clips=len(deltas),
                        seeds=" ".join(map(str, seeds)), delta_nll=mean, low=low, high=high,
                        excludes_zero=bool(low > NLL_TOLERANCE or high < -NLL_TOLERANCE)))
    return out


def _interval(r: dict) -> str:
    return f"{r['condition']} {r['delta_nll']:+.4f} [{r['low']:+.4f}, {r['high']:+.4f}]"


def _helps(comps: list[dict], config: str) -> str:
    """What the paired WER intervals say about ``config`` against its controls (real sets)."""
    said = []
    for c in comps:
        if c["first"] != config or c["test_set"] != "real (fsdd both)":
            continue
        word = ("better than" if c["high"] < 0 else "worse than" if c["low"] > 0 else
                "not distinguishable from")
        said.append(f"{word} ({CONFIGS.get(c['second'], '?')}) `{c['second']}` on real speech "
                    f"(WER {100 * c['delta_wer']:+.2f} pts [{100 * c['low']:+.2f}, "
                    f"{100 * c['high']:+.2f}])")
    return "; ".join(said)


def verdicts(evals, comps, inter) -> dict[str, str]:
    """A plain verdict per config. "Uses pitch" means a wrong F0 measurably hurts it: some
    condition's delta-NLL interval (all test clips, bootstrap over clips) lies above
    +NLL_TOLERANCE. Shuffling alone cannot show it for mean-F0 models (it keeps the mean, the
    only thing that reaches them), so every condition counts, constant F0 included. Whether
    pitch *helps recognition* is a separate line: the paired WER intervals of the config against
    its controls ((c) vs (b) and the null (f), (e) vs (c)), where measured."""
    out = {}
    for config in dict.fromkeys(e["preset"] for e in evals):
        uses_f0 = any(e["uses_f0"] for e in evals if e["preset"] == config)
        rows = [r for r in inter if r["config"] == config and r["scope"] == "all"]
        helps = _helps(comps, config)
        tail = f"; {helps}" if helps else ""
        if not uses_f0:
            out[config] = f"does not use pitch: F0 does not reach it (by construction){tail}"
            continue
        if not rows:
            out[config] = f"not measured{tail}"
            continue
        hurt = [r for r in rows if r["low"] > NLL_TOLERANCE]
        helped = [r for r in rows if r["high"] < -NLL_TOLERANCE]
        shown = ", ".join(_interval(r) for r in rows)
        if hurt:
            text = f"uses pitch: a wrong F0 raises its loss ({shown})"
        elif helped:
            text = f"reads F0, but a wrong F0 does not hurt it ({shown})"
        else:
            text = f"no measurable use of pitch: every interval includes 0 ({shown})"
        out[config] = text + tail
    return out


def report(runs: str | Path, out: str | Path) -> dict:
    """Write study.csv, comparisons.csv, interventions.csv and verdicts.json into ``out``."""
    import pandas as pd

    evals = load_evals(runs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    errors = pd.DataFrame(error_table(evals))
    comps = comparisons(evals)
    inter = intervention_table(evals)
    verdict = verdicts(evals, comps, inter)
    errors.to_csv(out / "study.csv", index=False, float_format="%.5f")
    pd.DataFrame(comps).to_csv(out / "comparisons.csv", index=False, float_format="%.5f")
    pd.DataFrame(inter).to_csv(out / "interventions.csv", index=False, float_format="%.5f")
    runs_table = [dict(config=e["preset"], seed=e["seed"], steps=e["steps"],
                       wall_seconds=e["wall_seconds"], params=e["params"],
                       decode_seconds=e["decode_seconds"],
                       intervention_seconds=e["intervention_seconds"]) for e in evals]
    pd.DataFrame(runs_table).to_csv(out / "runs.csv", index=False)
    (out / "verdicts.json").write_text(json.dumps(verdict, indent=1))
    return dict(errors=errors, comparisons=comps, interventions=inter, verdicts=verdict,
                runs=runs_table)
