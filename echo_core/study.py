"""The model-zoo study (issue #17): word and character error rates per unseen-speaker test set
per config with the seed spread, paired bootstrap intervals between configs, and the
pitch-intervention matrix with a plain verdict per config.

    python -m echo_core.study eval --data CORPUS --run RUNS/mean_f0_theta_s0   # after training
    python -m echo_core.study report --data CORPUS --runs RUNS --out assets/checkpoints/zoo

``eval`` decodes every test clip of the corpus's cached features in padded batches
(``decode.batch_greedy`` with lengths: the zoo models have a key padding mask, so a batch
decodes each clip as it would alone) and runs the pitch interventions on a subset of test
clips from their wav files through the one pipeline (``interventions.compare_conditions``);
it writes ``study_eval.json`` in the run folder. ``report`` gathers those files into
``study.csv`` (one row per config x test set), ``comparisons.csv``, ``interventions.csv`` and
the numbers of ``RESULTS.md``. Models trained on borrowed contours (the null control,
``meta["f0_input"] == "borrowed"``) are decoded with borrowed contours too.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from .corpus import load_features
from .corpus_zoo import TEST_SETS
from .interventions import compare_conditions, paired_bootstrap
from .pitch import f0_for_model

EVAL_FILE = "study_eval.json"
BATCH = 32  # clips per padded decoding batch
CONDITIONS = ("shuffled:0", "constant:100")
PIPELINE_CLIPS = 1  # per test set: the batched interventions checked on the one pipeline
NULL_EVAL_SEED = 17  # which other clip each test clip borrows its contour from (null models)
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


def edit_distance(ref, hyp) -> int:
    """Levenshtein distance of two sequences (substitutions + deletions + insertions)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def word_errors(reference: str, hypothesis: str) -> int:
    return edit_distance(reference.split(), hypothesis.split())


def char_errors(reference: str, hypothesis: str) -> int:
    """Character errors, spaces included (as jiwer's CER counts them)."""
    return edit_distance(list(reference), list(hypothesis))


def test_indices(specs) -> dict[str, np.ndarray]:
    """Test set name -> manifest indices (clips of unseen speakers)."""
    out = {}
    for name in TEST_SETS:
        idx = np.array([i for i, s in enumerate(specs) if s.split == "test" and s.source == name])
        if idx.size:
            out[name] = idx
    return out


def null_contours(indices: np.ndarray, f0s) -> dict[int, np.ndarray]:
    """Borrowed contours for a null-F0 model's evaluation: each clip takes a random other test
    clip's contour of the same set (seeded, the same for every null run)."""
    from .train import borrowed_contours

    rng = np.random.default_rng(NULL_EVAL_SEED)
    return dict(zip(indices.tolist(), borrowed_contours(indices, f0s, indices, rng)))


def decode_set(model, tokenizer, indices, mels, f0s) -> list[str]:
    """Greedy transcripts of ``indices`` in padded batches of similar length."""
    from .decode import batch_greedy

    order = sorted(indices.tolist(), key=lambda i: mels[i].shape[1])
    hyps = {}
    for start in range(0, len(order), BATCH):
        part = order[start:start + BATCH]
        out = batch_greedy(model, [mels[i] for i in part], [f0_for_model(f0s[i]) for i in part],
                           tokenizer)
        hyps.update(zip(part, out))
    return [hyps[i] for i in indices.tolist()]


def batch_nll(model, tokenizer, indices, mels, contours, texts) -> dict[int, float]:
    """Mean NLL per reference token (eos included) of each clip's true transcript,
    teacher-forced in padded batches (the key padding mask makes each row its clip alone)."""
    import torch
    import torch.nn.functional as F

    from .train import collate

    out = {}
    order = sorted(indices, key=lambda i: mels[i].shape[1])
    for start in range(0, len(order), BATCH):
        part = order[start:start + BATCH]
        token_ids = {i: tokenizer.encode(texts[i], bos=True, eos=True) for i in part}
        spec, f0, inp, lab = collate(part, mels, contours, token_ids)
        with torch.no_grad():
            logits = model(inp, spectrogram=spec, f0=f0,
                           lengths=[mels[i].shape[1] for i in part])["logits"]
        nll = F.cross_entropy(logits.transpose(1, 2).float(), lab, ignore_index=0,
                              reduction="none")  # (B, L)
        count = (lab != 0).sum(1)
        for b, i in enumerate(part):
            out[i] = float(nll[b].sum() / count[b])
    return out


def interventions(model, tokenizer, sets: dict, mels, contours, texts) -> list[dict]:
    """Per test clip: delta NLL per reference token (the true transcript) under each condition
    vs the contour the model is normally given (its own F0; a borrowed one for the null
    control), batched. pitch_conditions.transform_contour makes the conditions, exactly as
    interventions.run_condition does."""
    from .pitch_conditions import parse_condition, transform_contour

    rows = []
    for name, idx in sets.items():
        idx = idx.tolist()
        base = batch_nll(model, tokenizer, idx, mels, contours, texts)
        for text in CONDITIONS:
            condition = parse_condition(text)
            changed = {i: transform_contour(condition, contours[i]) for i in idx}
            nll = batch_nll(model, tokenizer, idx, mels, changed, texts)
            rows += [dict(test_set=name, clip=int(i), condition=condition.name,
                          delta_nll=nll[i] - base[i]) for i in idx]
    return rows


def pipeline_check(model, data: Path, specs, sets: dict, rows: list[dict],
                   n_clips: int) -> list[dict]:
    """The first ``n_clips`` clips of each set through the one pipeline
    (interventions.compare_conditions from the wav file): its delta NLL beside the batched one
    (they agree when the batched path is right; not for the null control, whose batched base
    contour is borrowed)."""
    import soundfile as sf

    batched = {(r["clip"], r["condition"]): r["delta_nll"] for r in rows}
    out = []
    for name, idx in sets.items():
        for i in idx[:n_clips].tolist():
            samples, sr = sf.read(str(data / specs[i].path), dtype="float32")
            table, _ = compare_conditions(model, samples, sr, CONDITIONS,
                                          reference_text=specs[i].text)
            for r in table.itertuples():
                if r.condition != "true":
                    out.append(dict(test_set=name, clip=int(i), condition=r.condition,
                                    pipeline=float(r.delta_nll),
                                    batched=batched.get((int(i), r.condition)),
                                    changed=bool(r.changed)))
    return out


def eval_run(data: str | Path, run: str | Path, n_clips: int = PIPELINE_CLIPS,
             threads: int = 1, max_clips: int = 0, out_file: str = EVAL_FILE) -> Path:
    """Decode every test set (its first ``max_clips`` clips when > 0: a smoke run) and run the
    interventions for one trained run folder; writes ``run/out_file``."""
    import torch

    from .checkpoint import load_checkpoint
    from .decode import load_tokenizer, model_uses_f0

    torch.set_num_threads(threads)
    data, run = Path(data), Path(run)
    model = load_checkpoint(run).eval()
    tokenizer = load_tokenizer(model)
    feats = model.meta["features"]
    specs, mels, f0s = load_features(data, int(feats["n_mels"]), float(feats["fmin"]),
                                     feats["fmax"], build=False)
    sets = test_indices(specs)
    if max_clips > 0:
        sets = {name: idx[:max_clips] for name, idx in sets.items()}
    null = model.meta.get("f0_input") == "borrowed"
    t0 = time.time()
    result = {"run": str(run), "preset": model.meta.get("preset"), "seed": model.meta.get("seed"),
              "steps": model.meta.get("steps"), "wall_seconds": model.meta.get("wall_seconds"),
              "params": model.meta.get("params"), "f0_input": "borrowed" if null else "true",
              "uses_f0": model_uses_f0(model), "sets": {}}
    for name, idx in sets.items():
        contours = null_contours(idx, f0s) if null else f0s
        hyps = decode_set(model, tokenizer, idx, mels, contours)
        refs = [specs[i].text for i in idx.tolist()]
        result["sets"][name] = {
            "clips": idx.tolist(), "hyps": hyps,
            "word_errors": [word_errors(r, h) for r, h in zip(refs, hyps)],
            "words": [len(r.split()) for r in refs],
            "char_errors": [char_errors(r, h) for r, h in zip(refs, hyps)],
            "chars": [len(r) for r in refs]}
    result["decode_seconds"] = round(time.time() - t0, 1)
    t0 = time.time()
    if model_uses_f0(model):
        contours = {}
        for name, idx in sets.items():
            contours.update(null_contours(idx, f0s) if null else
                            {i: f0s[i] for i in idx.tolist()})
        texts = [s.text for s in specs]
        result["interventions"] = interventions(model, tokenizer, sets, mels, contours, texts)
        result["pipeline_check"] = pipeline_check(model, data, specs, sets,
                                                  result["interventions"], n_clips)
    else:
        result["interventions"], result["pipeline_check"] = [], []
    result["intervention_seconds"] = round(time.time() - t0, 1)
    out = run / out_file
    out.write_text(json.dumps(result))
    return out


# ---------------------------------------------------------------------------------------------
# Report

def _rate(s: dict, kind: str = "word") -> float:
    return sum(s[f"{kind}_errors"]) / max(1, sum(s[f"{kind}s"]))


def load_evals(runs: str | Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(Path(runs).glob(f"*/{EVAL_FILE}"))]


def error_table(evals: list[dict]) -> list[dict]:
    """One row per config x test set: WER/CER of each seed, their mean and spread."""
    import pandas as pd

    rows = []
    for e in evals:
        for name, s in e["sets"].items():
            rows.append(dict(config=e["preset"], seed=e["seed"], test_set=name,
                             clips=len(s["clips"]), wer=_rate(s), cer=_rate(s, "char")))
        real = [e["sets"][n] for n in REAL_SETS if n in e["sets"]]
        if real:
            merged = {k: sum((s[k] for s in real), []) for k in
                      ("word_errors", "words", "char_errors", "chars", "clips")}
            rows.append(dict(config=e["preset"], seed=e["seed"], test_set="real (fsdd both)",
                             clips=len(merged["clips"]), wer=_rate(merged),
                             cer=_rate(merged, "char")))
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
            words = np.concatenate([np.asarray(example["sets"][p]["words"], float)
                                    for p in parts])
            mean, low, high = paired_bootstrap((a - b) / words.mean())
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


def verdicts(evals, comps, inter) -> dict[str, str]:
    """"uses pitch" only if the delta-NLL interval for shuffled F0 excludes 0 and (c) beats (f)
    (WER(c) - WER(f) interval on the real sets pooled, below 0); otherwise says why not."""
    c_vs_f = next((c for c in comps if (c["first"], c["second"]) ==
                   ("mean_f0_theta", "null_f0_theta") and c["test_set"] == "real (fsdd both)"),
                  None)
    c_beats_f = c_vs_f is not None and c_vs_f["high"] < 0
    out = {}
    for config in dict.fromkeys(e["preset"] for e in evals):
        uses_f0 = any(e["uses_f0"] for e in evals if e["preset"] == config)
        shuffled = next((r for r in inter if r["config"] == config and r["scope"] == "all"
                         and r["condition"].startswith("shuffled")), None)
        if not uses_f0:
            out[config] = "does not use pitch: F0 does not reach it (by construction)"
            continue
        if shuffled is None:
            out[config] = "not measured"
            continue
        excludes = shuffled["excludes_zero"]
        ci = f"shuffled dNLL {shuffled['delta_nll']:+.4f} [{shuffled['low']:+.4f}, " \
             f"{shuffled['high']:+.4f}]"
        cf = "(c) vs (f) not measured" if c_vs_f is None else (
            f"(c)-(f) real-speech WER {100 * c_vs_f['delta_wer']:+.2f} pts "
            f"[{100 * c_vs_f['low']:+.2f}, {100 * c_vs_f['high']:+.2f}]")
        if excludes and c_beats_f:
            out[config] = f"uses pitch ({ci}; {cf})"
        else:
            why = [] if excludes else ["the shuffled-F0 interval includes 0"]
            why += [] if c_beats_f else ["(c) does not beat the null (f)"]
            out[config] = f"no evidence it uses pitch: {' and '.join(why)} ({ci}; {cf})"
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


CONFIG_TEXT = {
    "static_theta": "(a) learned rotary frequencies (`inv_freq`, initial base 19000), no F0",
    "frozen_theta": "(b) rotary frequencies frozen at theta_eff of the training corpus's mean "
                    "voiced F0 (`freeze_theta`, a buffer), no F0: the no-pitch control",
    "mean_f0_theta": "(c) F0 theta, theta_mode `mean_f0` (the reference vRoPE; one theta per "
                     "utterance from its voiced-frame mean F0)",
    "per_frame_theta": "(d) F0 theta per frame (`theta_mode` per_frame)",
    "f0_theta_bias": "(e) mean-F0 theta plus the pitch-similarity bias in encoder "
                     "self-attention",
    "null_f0_theta": "(f) null control: (c) trained and evaluated with each utterance's F0 "
                     "contour swapped for a random other utterance's, stretched in time "
                     "(`pitch_conditions.borrowed`): same theta distribution, no link to the "
                     "voice",
}
FSDD_CREDIT = ("Free Spoken Digit Dataset (FSDD), Zohar Jackson, César Souza, Jason Flaks, "
               "Yuxin Pan, Hereman Nicolas, Adhish Thite, "
               "github.com/Jakobovski/free-spoken-digit-dataset (commit 26eb9aa), Zenodo DOI "
               "10.5281/zenodo.1342401, licensed CC BY-SA 4.0")
CORPUS_COMMAND = ("python -m echo_core.corpus --out /work/zoo-data/corpus --fsdd "
                  "/work/shared/data/fsdd/recordings --seed 0 --workers 2")


def train_command(e: dict, dims: dict) -> str:
    """The exact training command of an evaluated run (its settings from the checkpoint)."""
    import shlex

    from .checkpoint import load_checkpoint
    from .train import TrainConfig

    meta = load_checkpoint(e["run"]).meta
    defaults = TrainConfig(data="", out="")
    args = ["python", "-m", "echo_core.train", "--data", "/work/zoo-data/corpus", "--config",
            e["preset"], "--out", e["run"], "--seed", str(e["seed"])]
    for key, value in meta["train"].items():  # every setting that is not the default
        if value != getattr(defaults, key):
            flag = "--" + key.replace("_", "-")
            args += [flag if value else "--no-" + key.replace("_", "-")] \
                if isinstance(value, bool) else [flag, str(value)]
    extra = {"key_padding_mask": True} if dims.get("key_padding_mask") else {}
    args += ["--no-test-eval", "--dims", json.dumps(extra)]
    return " ".join(shlex.quote(a) for a in args)


def ship(e: dict, folder: str | Path, rows: list[dict]) -> Path:
    """Copy a run's checkpoint into ``folder`` with a model card (data, FSDD credit and
    licence, seed, results per test set, reproduce commands)."""
    import shutil

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        shutil.copy(Path(e["run"]) / name, folder / name)
    config = json.loads((folder / "config.json").read_text())
    dims, meta = config["dims"], config["meta"]
    table = [f"| {r['test_set']} | {r['clips']} | {100 * r['wer']:.2f}% | {100 * r['cer']:.2f}% |"
             for r in rows]
    f0_given = ("a random other test clip's contour, stretched (the null control)"
                if e["f0_input"] == "borrowed" else
                "the clip's own Praat F0" if e["uses_f0"] else "none")
    lines = [
        f"# Echo model zoo: `{e['preset']}` (seed {e['seed']})",
        "",
        "A small Echo encoder-decoder (spoken digits: zero-nine and oh) trained by "
        "`echo_core.train` on the model-zoo corpus (`echo_core.corpus_zoo`): espeak-ng, flite "
        "and festival voices plus real recordings of three FSDD speakers, augmented "
        "(telephone band, noise, gain, reverb, tempo, pitch), split by speaker. One of the six "
        "configs of the fair ablation in `assets/checkpoints/zoo/RESULTS.md`: same corpus, "
        "schedule, budget and seed, only the rotary/pitch settings differ.",
        "",
        "| | |", "|---|---|",
        f"| config | {CONFIG_TEXT.get(e['preset'], e['preset'])} |",
        f"| switches | `{json.dumps({k: dims[k] for k in ('f0_rotary', 'theta_mode', 'f0_mean', 'pitch_bias', 'freeze_theta', 'key_padding_mask', 'decoder_mask')})}` |",
        f"| F0 given at run time | {f0_given} |",
        f"| parameters | {e['params']:,} |",
        f"| training | {e['steps']} steps, seed {e['seed']}, {e['wall_seconds'] / 60:.1f} min wall "
        f"on 1 thread of a shared 2-core CPU |",
        f"| features | log-mel {json.dumps(meta['features'])}; Praat F0 (8 ms) when the model "
        f"uses F0 |",
        "",
        "## Unseen-speaker test sets (greedy, padded batches with the key padding mask)",
        "",
        "| test set | clips | WER | CER |", "|---|---:|---:|---:|", *table,
        "",
        "Test sets: espeak = 10 espeak-ng voice variants never heard in training; flite = "
        "voice `rms`; festival = voice `ked_diphone`; fsdd = FSDD speaker `jackson`, isolated "
        "digits (all 500 takes); fsdd_spliced = 200 connected strings spliced from jackson's "
        "takes. Decode with `lengths` (the model has `key_padding_mask`): "
        "`decode.batch_greedy` or one clip at a time through `echo_core.clip_run` give the "
        "same transcripts.",
        "",
        "## Data and licence",
        "",
        f"Trained in part on recordings from the {FSDD_CREDIT}. These weights are derived "
        "from that data and are therefore also distributed under CC BY-SA 4.0 "
        "(https://creativecommons.org/licenses/by-sa/4.0/); credit FSDD when you use them. "
        "Synthetic voices: espeak-ng, flite (CMU), festival (kal, ked diphones; CMU ARCTIC "
        "slt HTS).",
        "",
        "## Reproduce",
        "",
        f"`{CORPUS_COMMAND}` then `{train_command(e, dims)}` then "
        f"`python -m echo_core.study eval --data /work/zoo-data/corpus --run {e['run']}`.",
        "",
    ]
    (folder / "README.md").write_text("\n".join(lines))
    return folder


def _pct(x) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.2f}"


def results_markdown(result: dict, data: str | Path, runs: str | Path) -> str:
    """The RESULTS.md text: corpus, runs, error table with seed spread, intervals, verdicts."""
    from .corpus import read_manifest
    from .corpus_zoo import describe

    specs = read_manifest(data)
    corpus_rows = describe(specs)
    by_split: dict[tuple, int] = {}
    for r in corpus_rows:
        by_split[(r["split"], r["source"])] = by_split.get((r["split"], r["source"]), 0) + r["clips"]
    lines = ["# Model zoo: results", "", "Generated by `python -m echo_core.study report` from "
             "the runs' `study_eval.json`; numbers as measured.", "",
             "## Corpus", "",
             f"`{CORPUS_COMMAND}` ({len(specs)} clips, 16 kHz, words zero-nine and oh). "
             "Split by speaker: no speaker (espeak variant, synthesiser voice person, FSDD "
             "speaker) is in two splits. Training clips: about half get a seeded augmentation "
             "chain (`echo_core.augment`: tempo 0.85-1.15, pitch +-3 semitones, room reverb "
             "RT60 0.15-0.6 s, 8 kHz telephone band, white/pink noise at 5-30 dB SNR, gain "
             "-12..+6 dB); 750 FSDD training takes appear a second time, augmented. Test clips "
             "are clean.", "",
             "| split | source | clips | speakers |", "|---|---|---:|---:|"]
    for (split, source), n in sorted(by_split.items()):
        speakers = sorted({r["speaker"] for r in corpus_rows if r["split"] == split and
                           r["source"] == source})
        shown = ", ".join(speakers) if len(speakers) <= 5 else f"{len(speakers)} variants"
        lines.append(f"| {split} | {source} | {n} | {shown} |")
    lines += ["", f"FSDD: {FSDD_CREDIT}. Models trained on it are shared under the same "
              "licence.", "", "## Runs", "",
              "All runs: same corpus, `BASE_DIMS` (1.97 M parameters), key padding mask on, "
              "same steps (1100), batches of about 3000 mel frames, AdamW lr 2e-3 with 150 "
              "warm-up steps and cosine decay, first epoch short-to-long, no SpecAugment masks "
              "(the audio augmentations are in the corpus), and an auxiliary CTC loss (weight "
              "0.5) from a training-only linear head on the encoder (not in the checkpoints); "
              "one thread each on a 2-core CPU shared with another engineer's tests, one "
              "training at a time. Only the rotary/pitch settings and the seed differ.", "",
              "How this recipe was chosen (pilots, not part of the comparison): (c) seed 0 "
              "with the first corpus's recipe (batches of 4000 frames, SpecAugment, no CTC) was "
              "still at the language-model loss (about 0.55 nats/character, transcripts "
              "independent of the audio) after 600 of 850 steps, and with CTC weight 0.3 plus "
              "SpecAugment it had only begun to recognise isolated FSDD digits at step 600 of "
              "1100. Both pilots were stopped; every run below uses the recipe above.", "",
              "| config | seed | steps | train wall (min) | decode all test sets (s) | "
              "interventions (s) |", "|---|---:|---:|---:|---:|---:|"]
    for r in result["runs"]:
        lines.append(f"| {CONFIGS.get(r['config'], '?')} `{r['config']}` | {r['seed']} | "
                     f"{r['steps']} | {r['wall_seconds'] / 60:.1f} | {r['decode_seconds']} | "
                     f"{r['intervention_seconds']} |")
    lines += ["", "## Word error rate per unseen-speaker test set", "",
              "WER % of seed 0; with more seeds, their mean and [min, max]. Greedy decoding in "
              "padded batches (key padding mask: identical to one clip at a time).", "",
              "| config | " + " | ".join(TEST_SETS) + " | real (fsdd both) |",
              "|---|" + "---:|" * (len(TEST_SETS) + 1)]
    errors = result["errors"]
    for config in dict.fromkeys(errors["config"]):
        cells = []
        for name in list(TEST_SETS) + ["real (fsdd both)"]:
            row = errors[(errors["config"] == config) & (errors["test_set"] == name)]
            if row.empty:
                cells.append("")
                continue
            r = row.iloc[0]
            cell = _pct(r["wer_seed0"])
            if r["n_seeds"] > 1:
                cell += f" (mean {_pct(r['wer_mean'])} [{_pct(r['wer_min'])}, " \
                        f"{_pct(r['wer_max'])}], {r['n_seeds']} seeds)"
            cells.append(cell)
        lines.append(f"| {CONFIGS.get(config, '?')} `{config}` | " + " | ".join(cells) + " |")
    real = errors[errors["test_set"] == "real (fsdd both)"]
    if not real.empty:
        best = real.sort_values("wer_seed0").iloc[0]
        lines += ["", f"Best on the real-speaker sets pooled (FSDD speaker jackson, isolated "
                  f"and spliced), seed 0: {CONFIGS.get(best['config'], '?')} "
                  f"`{best['config']}`, {_pct(best['wer_seed0'])}% WER. All models are "
                  "early in training (1100 steps): these are the configs' standings at a "
                  "fixed small budget, one seed each."]
    lines += ["", "CER and every number above: `study.csv`.", "",
              "## Paired comparisons (95% bootstrap intervals)", "",
              "WER(first) - WER(second) in points: per-utterance word-error differences "
              "(averaged over the seeds both configs have), divided by the set's mean words "
              "per utterance, resampled over utterances (`interventions.paired_bootstrap`, "
              "2000 resamples). Negative = the first is better. The intervals cover the "
              "choice of test utterances for the trained models at hand, not the spread over "
              "training seeds (see the seed columns above for that).", "",
              "| first - second | test set | seeds | clips | delta WER | 95% interval |",
              "|---|---|---|---:|---:|---|"]
    for c in result["comparisons"]:
        lines.append(f"| `{c['first']}` - `{c['second']}` | {c['test_set']} | {c['seeds']} | "
                     f"{c['clips']} | {100 * c['delta_wer']:+.2f} | "
                     f"[{100 * c['low']:+.2f}, {100 * c['high']:+.2f}] |")
    lines += ["", "## Pitch interventions", "",
              "Per test clip: mean NLL per token of the true transcript (teacher-forced) "
              "under the condition minus under the contour the model normally gets (its own "
              "Praat F0; for the null control the borrowed contour), averaged over seeds, "
              "bootstrap over clips. `shuffled:0` permutes the voiced values (level kept, "
              "order lost); `constant:100` sets every voiced frame to 100 Hz. Batched "
              "(`pitch_conditions.transform_contour` + padded teacher forcing), checked against "
              "`interventions.compare_conditions` on one clip per set "
              "(`study_eval.json` `pipeline_check`).", "",
              "| config | condition | clips | seeds | delta NLL/token | 95% interval |",
              "|---|---|---:|---|---:|---|"]
    for r in result["interventions"]:
        if r["scope"] != "all":
            continue
        lines.append(f"| `{r['config']}` | {r['condition']} | {r['clips']} | {r['seeds']} | "
                     f"{r['delta_nll']:+.5f} | [{r['low']:+.5f}, {r['high']:+.5f}] |")
    lines += ["", "Models without F0 input (a, b) receive no contour: every condition leaves "
              "them bit-identical. Mean-F0 theta models (c, f) see only the mean of the voiced "
              "frames, which `shuffled` keeps, so for them shuffled F0 is exactly the true F0 "
              "up to float rounding (an interval within +-1e-5 counts as 0); `constant:100` "
              "moves their theta.", "", "## Verdicts", "",
              "Rule: \"uses pitch\" only if the delta-NLL interval for shuffled F0 excludes 0 "
              "and (c) beats (f) (the interval of WER(c) - WER(f) on the real-speaker sets "
              "pooled lies below 0).", ""]
    for config, text in result["verdicts"].items():
        lines.append(f"- {CONFIGS.get(config, '?')} `{config}`: {text}")
    done = {(e["preset"], e["seed"]) for e in load_evals(runs)}
    missing = [f"{CONFIGS.get(c, '?')} `{c}` seed {s}" for c, s in PLANNED if (c, s) not in done]
    if missing:
        lines += ["", "## Not run", "",
                  "Planned in the issue's order but not trained (the queue was stopped for "
                  "time after the last run above): " + ", ".join(missing) + ". So every "
                  "config has one seed and the seed spread is not measured yet."]
    lines += ["", "## Reproduce", "", f"1. Corpus: `{CORPUS_COMMAND}`",
              "2. Each run (the queue ran them one after another, each followed by its "
              "evaluation):", ""]
    for e in load_evals(runs):
        dims = json.loads((Path(e["run"]) / "config.json").read_text())["dims"]
        lines.append(f"   - `{train_command(e, dims)}` then `python -m echo_core.study eval "
                     f"--data /work/zoo-data/corpus --run {e['run']}`")
    lines += ["", f"3. `python -m echo_core.study report --data /work/zoo-data/corpus --runs "
              f"{runs} --out assets/checkpoints/zoo --ship assets/checkpoints`", ""]
    return "\n".join(lines)


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
    r = sub.add_parser("report", help="gather the runs' evaluations into tables")
    r.add_argument("--runs", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--data", required=True, help="the corpus (for its description)")
    r.add_argument("--ship", default=None,
                   help="also copy each config's seed-0 run to SHIP/zoo_<config> with a card")
    args = parser.parse_args(argv)
    if args.command == "eval":
        print(eval_run(args.data, args.run, args.clips, args.threads, args.max_clips,
                       args.out_file))
    else:
        result = report(args.runs, args.out)
        Path(args.out, "RESULTS.md").write_text(results_markdown(result, args.data, args.runs))
        if args.ship:
            for e in load_evals(args.runs):
                if e["seed"] == 0:
                    rows = [dict(test_set=n, clips=len(s["clips"]), wer=_rate(s),
                                 cer=_rate(s, "char")) for n, s in e["sets"].items()]
                    ship(e, Path(args.ship) / f"zoo_{e['preset']}", rows)
        print(result["errors"].to_string())
        print(json.dumps(result["verdicts"], indent=1))


if __name__ == "__main__":
    main()
