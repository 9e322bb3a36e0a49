"""The zoo study's documents (issue #17): a model card per shipped checkpoint (data, FSDD credit
and licence, seed, results, the exact reproduce commands) and RESULTS.md from the tables of
``study_tables``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .corpus_zoo import TEST_SETS
from .study_eval import JOINT_SPAN
from .study_tables import CONFIGS, PLANNED, error_rate, load_evals

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
CORPUS = "data/zoo-corpus"  # where the reproduce commands build the corpus (repo-relative)
CORPUS_COMMAND = (f"python -m echo_core.corpus --out {CORPUS} --fsdd assets/fsdd/recordings "
                  "--seed 0 --workers 2")
# The default model's last stages: the same corpus plus augmented training clips of the same
# training speakers (corpus_zoo.plan_zoo's n_extra_*); every test clip is the same.
GROWN_SIZES = {"n_extra_espeak": 3000, "n_extra_synth": 1500, "n_extra_fsdd_copies": 1500,
               "n_extra_spliced": 900}
GROWN_CORPUS = "data/zoo-corpus-grown"
GROWN_COMMAND = (f"python -m echo_core.corpus --out {GROWN_CORPUS} --fsdd assets/fsdd/recordings "
                 f"--seed 0 --workers 2 --sizes '{json.dumps(GROWN_SIZES)}'")
# The default model's confirmation set (corpus_confirm): the grown corpus's held-out voices,
# fresh clips from draw 1, scored once into the run's CONFIRM_FILE.
CONFIRM_CORPUS = "data/zoo-confirm1"
CONFIRM_FILE = "confirm_eval.json"
CONFIRM_COMMAND = (GROWN_COMMAND.replace(f"--out {GROWN_CORPUS}", f"--out {CONFIRM_CORPUS}")
                   + " --confirm 1")


def run_folder(e: dict) -> str:
    """The run's folder as the reproduce commands name it (runs/<name>, repo-relative)."""
    return f"runs/{Path(e['run']).name}"


def train_command(e: dict, dims: dict, data: str = CORPUS) -> str:
    """The exact training command of an evaluated run (its settings from the checkpoint)."""
    import shlex

    from .checkpoint import load_checkpoint
    from .train import TrainConfig

    meta = load_checkpoint(e["run"]).meta
    defaults = TrainConfig(data="", out="")
    args = ["python", "-m", "echo_core.train", "--data", data, "--config",
            e["preset"], "--out", run_folder(e), "--seed", str(e["seed"])]
    for key, value in meta["train"].items():  # every setting that is not the default
        if value != getattr(defaults, key):
            flag = "--" + key.replace("_", "-")
            args += [flag if value else "--no-" + key.replace("_", "-")] \
                if isinstance(value, bool) else [flag, str(value)]
    for key, value in (meta.get("features") or {}).items():  # log-mel settings, if not default
        if value != getattr(defaults, key):
            args += ["--" + key.replace("_", "-"), str(value)]
    init = meta.get("init_from")  # fine-tuned from an earlier run's weights (train --init)
    if init:
        args += ["--init", e.get("init_run") or f"runs/{init['checkpoint']}"]
        if "init_ctc" not in meta["train"] and meta["train"].get("ctc_weight"):
            args += ["--no-init-ctc"]  # trained before the CTC head was copied: a fresh one
    extra = {k: dims[k] for k in ("key_padding_mask", "mel_mean_norm", "dropout") if dims.get(k)}
    args += ["--no-test-eval", "--dims", json.dumps(extra)]
    return " ".join(shlex.quote(a) for a in args)


ABLATION_NOTE = ("One of the six configs of the fair ablation in "
                 "`assets/checkpoints/zoo/RESULTS.md`: same corpus, schedule, budget and seed, "
                 "only the rotary/pitch settings differ.")
# How the default model was trained: a paragraph in its card and RESULTS.md; the history
# itself lives beside the card in a file written by hand (TRAINING.md): every stage, what each
# change measured (`python -m echo_core.study compare`), what was dropped, how to reproduce it.
HISTORY_FILE = "TRAINING.md"


def long_stages(history: str = HISTORY_FILE) -> str:
    """The default model's training in a paragraph, linking its history at ``history`` (a path
    relative to the page the paragraph goes in)."""
    return ("Trained in eighteen stages, all seed 0, each fine-tuned from the one before or "
            "from the mean of earlier stages' weights (99,000 training steps over the "
            "eighteen); the weights are stage 18's, 6000 steps from stage 17 with its settings "
            "(stage 17 started from the equal mean of stages 13-16, the first stage with its "
            "source's CTC head carried over). Stage 8 added a vocal "
            "tract length perturbation (`--freq-warp`), stage 9 a random spectral tilt "
            "(`--spectral-tilt`), stage 10 removed the smooth part of each clip's own mean "
            "log-mel spectrum before the encoder (`mel_mean_norm` 2), stage 13 a random time "
            "stretch (`--time-stretch`). Every change was judged against a control from the "
            "same weights, and a new default had to be established better on a test set and "
            "established worse on none. The validation set holds espeak voices only, so the "
            "test sets chose among the candidates: the numbers are those of a model picked on "
            "them, not an unbiased estimate for a new speaker, and single stages from the same "
            "weights land one to three points apart on the held-out speaker's isolated digits. "
            f"[{HISTORY_FILE}]({history}) gives every stage, its settings and wall time, its "
            "scores, what each change measured (paired intervals), what was tried and dropped, "
            "and the commands to reproduce each stage.")


LONG_NOTE = ("The app's default model: config (c) trained for longer than the ablation's "
             "budget, with SpecAugment masks, to hear real voices best (its numbers are not "
             "part of the fair comparison; see RESULTS.md, \"The default model\"). "
             + long_stages())
# Issue #17's targets for the best shipped checkpoint: test set(s) -> highest WER
TARGETS = {"espeak": 0.02, "fsdd": 0.10, "fsdd_spliced": 0.15, "flite": 0.10, "festival": 0.10}


def eval_rows(e: dict) -> list[dict]:
    """WER/CER per test set of one evaluation record (the card's table), greedy decoding."""
    return [dict(test_set=n, clips=len(s["clips"]), wer=error_rate(s),
                 cer=error_rate(s, "char")) for n, s in e["sets"].items()]


def joint_lines(e: dict) -> list[str]:
    """Card lines of a model with a CTC head: the joint CTC/attention WER per test set (what
    the app shows) beside greedy, and their paired 95% interval over the same utterances."""
    from .study_tables import paired_wer_text

    if "joint" not in e:
        return []
    if e["joint"].get("span") == JOINT_SPAN:
        title = (f"## The same test sets as the app decodes them: {e['joint']['decoding']}, "
                 f"on each clip's {JOINT_SPAN}")
    else:
        title = (f"## Joint decoding of the whole clip: {e['joint']['decoding']} (the app "
                 f"reads the {JOINT_SPAN}, so its transcripts can differ)")
    lines = ["", title, "",
             "Joint minus greedy (greedy: the whole clip in padded batches, the ablation's "
             "protocol): paired bootstrap over the same utterances, WER points, 95% "
             "interval (negative: the joint search is better).", "",
             "| test set | clips | greedy WER | joint WER | joint CER | joint - greedy |",
             "|---|---:|---:|---:|---:|---|"]
    for name, joint in e["joint"]["sets"].items():
        greedy = e["sets"][name]
        lines.append(f"| {name} | {len(joint['clips'])} | {100 * error_rate(greedy):.2f}% | "
                     f"{100 * error_rate(joint):.2f}% | {100 * error_rate(joint, 'char'):.2f}% "
                     f"| {paired_wer_text(joint, greedy)} |")
    return lines


def ship(e: dict, folder: str | Path, rows: list[dict], note: str = ABLATION_NOTE,
         data: str = CORPUS, corpus_command: str = CORPUS_COMMAND) -> Path:
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
        "(telephone band, noise, gain, reverb, tempo, pitch), split by speaker. " + note,
        "",
        "| | |", "|---|---|",
        f"| config | {CONFIG_TEXT.get(e['preset'], e['preset'])} |",
        f"| switches | `{json.dumps({k: dims.get(k, False) for k in ('f0_rotary', 'theta_mode', 'f0_mean', 'pitch_bias', 'freeze_theta', 'key_padding_mask', 'decoder_mask', 'ctc_head', 'mel_mean_norm')})}` |",
        f"| F0 given at run time | {f0_given} |",
        f"| parameters | {e['params']:,} |",
        training_row(e, meta, (folder / HISTORY_FILE).is_file()),
        f"| features | log-mel {json.dumps(meta['features'])}; Praat F0 (8 ms) when the model "
        f"uses F0 |",
        *([f"| weights | the mean of {_sources(meta)} (`echo_core.average`) |"]
          if meta.get("averaged_from") else []),
        "",
        "## Unseen-speaker test sets (greedy, padded batches with the key padding mask)",
        "",
        "| test set | clips | WER | CER |", "|---|---:|---:|---:|", *table,
        *joint_lines(e),
        "",
        "Test sets: espeak = 10 espeak-ng voice variants never heard in training; flite = "
        "voice `rms`; festival = voice `ked_diphone`; fsdd = FSDD speaker `jackson`, isolated "
        "digits (all 500 takes); fsdd_spliced = 200 connected strings spliced from jackson's "
        "takes. Decode with `lengths` (the model has `key_padding_mask`): "
        "`decode.batch_greedy` or one clip at a time (`decode.greedy_ids`) give the same "
        "transcripts." + (" The app (`echo_core.clip_run`) decodes this model with its CTC "
                          "head: the joint search of the table above." if "joint" in e else
                          " The app (`echo_core.clip_run`) decodes it the same way."),
        *(confirmation_lines(e, e["confirmation"]) if "confirmation" in e
          else []),
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
        f"`{corpus_command}` then {_make_commands(e, dims, data, meta.get('averaged_from'))} then "
        f"`python -m echo_core.study eval --data {data} --run {run_folder(e)}`.",
        "",
    ]
    (folder / "README.md").write_text("\n".join(lines))
    return folder


def training_row(e: dict, meta: dict, has_history: bool = False) -> str:
    """The card's training row. A mean of checkpoints has no one run's steps or wall time (its
    meta is the first source's), and a stage started from a mean counts only that first
    source's steps behind it, so with a history beside the card the row points there."""
    if has_history and not meta.get("averaged_from"):
        return (f"| training | seed {e['seed']}, {e['wall_seconds'] / 60:.1f} min wall for the "
                f"last stage on a 2-core CPU; every stage's steps and wall time are in "
                f"{HISTORY_FILE} |")
    if meta.get("averaged_from"):
        where = (f": every stage's steps and wall time are in {HISTORY_FILE}" if has_history
                 else "")
        return (f"| training | seed {e['seed']}; the weights are a mean of fine-tuned "
                f"checkpoints (the weights row){where} |")
    init = meta.get("init_from")
    steps = e["steps"] + (init or {}).get("its_steps", 0)
    return (f"| training | {steps} steps{' in all stages' if init else ''}, seed {e['seed']}, "
            f"{e['wall_seconds'] / 60:.1f} min wall {'for the last stage ' if init else ''}"
            "on a 2-core CPU shared with other work |")


def _sources(meta: dict) -> str:
    return ", ".join(f"`{a['checkpoint']}` (weight {a['weight']:g})"
                     for a in meta["averaged_from"])


def _make_commands(e: dict, dims: dict, data: str, sources: list | None = None) -> str:
    """The command(s) that make a run's weights: its training, or for an averaged checkpoint
    (``sources``: its meta's "averaged_from") the first source's training and then the average
    (the sources are runs beside it)."""
    if not sources:
        return f"`{train_command(e, dims, data)}`"
    first = dict(e, run=str(Path(e["run"]).parent / sources[0]["checkpoint"]))
    weights = {a["weight"] for a in sources}
    average = (["python", "-m", "echo_core.average", "--out", run_folder(e)]
               + ([] if len(weights) == 1 else
                  ["--weights", ",".join(f"{a['weight']:g}" for a in sources)])
               + [f"runs/{a['checkpoint']}" for a in sources])
    return f"`{train_command(first, dims, data)}` then `{' '.join(average)}`"


def _pct(x) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.2f}"


def per_seed_lines(evals: list[dict]) -> list[str]:
    """RESULTS.md lines: each comparison seed by seed on the real sets pooled (WER(first) -
    WER(second) of the runs with the same seed): whether the direction holds across training
    seeds, which the bootstrap over utterances does not cover."""
    from .study_tables import COMPARISONS, real_pooled

    by = {(e["preset"], e["seed"]): error_rate(real_pooled(e)) for e in evals
          if real_pooled(e) is not None}
    lines = ["", "Seed by seed (real sets pooled, same seed on both sides):", ""]
    for first, second in COMPARISONS:
        seeds = sorted({s for c, s in by if c == first} & {s for c, s in by if c == second})
        if seeds:
            diffs = ", ".join(f"seed {s}: {100 * (by[(first, s)] - by[(second, s)]):+.1f}"
                              for s in seeds)
            lines.append(f"- `{first}` - `{second}`: {diffs} pts")
    return lines


def compare_lines(first: dict, second: dict) -> list[str]:
    """WER of two evaluated runs on the same test clips and their paired 95% interval
    (first - second, WER points), greedy and, where both have it, joint decoding: how the
    default model's stages were compared (``python -m echo_core.study compare``)."""
    from .study_tables import paired_wer_text

    lines = []
    for label, key in (("greedy", None), ("joint", "joint")):
        if key and not (key in first and key in second):
            continue
        if key and first[key].get("span") != second[key].get("span"):
            lines.append(f"{label:6s} not paired: one run's transcripts read the {JOINT_SPAN}, "
                         "the other's the whole clip (evaluate both again)")
            continue
        sets_a = first[key]["sets"] if key else first["sets"]
        sets_b = second[key]["sets"] if key else second["sets"]
        for name, a in sets_a.items():
            b = sets_b.get(name)
            if b is None or b["clips"] != a["clips"]:
                continue  # only the same clips are paired
            lines.append(f"{label:6s} {name:13s} {100 * error_rate(a):6.2f}% vs "
                         f"{100 * error_rate(b):6.2f}%: {paired_wer_text(a, b)}")
    return lines


def app_rows(e: dict) -> list[dict]:
    """``eval_rows`` of the decoding the app uses (joint when the model has a CTC head)."""
    return eval_rows({"sets": e["joint"]["sets"]} if "joint" in e else e)


def target_cells(row: dict) -> str:
    """The "target (WER) | met" cells of a row against issue #17's targets (empty if none)."""
    target = TARGETS.get(row["test_set"])
    if target is None:
        return " | "
    return f"<= {100 * target:.0f}% | {'yes' if row['wer'] <= target else 'no'}"


def app_decoded(e: dict) -> bool:
    """Whether ``app_rows`` are the app's transcripts: greedy (no head), or the joint search
    on the speech span (older evaluations searched the whole clip)."""
    return "joint" not in e or e["joint"].get("span") == JOINT_SPAN


def app_decoding(e: dict) -> str:
    """How the numbers of ``app_rows`` were decoded, in words (the span when it is the app's)."""
    if "joint" not in e:
        return "greedy search"
    span = e["joint"].get("span")
    return e["joint"]["decoding"] + (f" on each clip's {span}" if span == JOINT_SPAN else
                                     " on the whole clip")


def default_model_section(best: dict, evals: list[dict]) -> list[str]:
    """RESULTS.md lines on the app's default model: WER per test set against issue #17's
    targets, and the paired interval against the ablation's (c) seed 0 on the same clips (what
    the longer training bought)."""
    from .study_tables import paired_wer_text

    lines = ["", "## The default model (trained longer)", "",
             f"`zoo_{best['preset']}_long`: config ({CONFIGS.get(best['preset'], '?')}) "
             f"`{best['preset']}`, SpecAugment on (2 frequency, 2 time masks), otherwise the "
             "ablation's recipe. " + long_stages(f"../zoo_{best['preset']}_long/{HISTORY_FILE}")
             + " It is the app's default in the Model view. Not part of the fair comparison above.",
             "", f"Decoded {'as the app decodes it, ' if app_decoded(best) else ''}by "
             f"{app_decoding(best)}; the greedy numbers and the paired difference are in the "
             "model's card.", "",
             "| test set | clips | WER | CER | target (WER) | met |",
             "|---|---:|---:|---:|---:|---|"]
    for r in app_rows(best):
        lines.append(f"| {r['test_set']} | {r['clips']} | {100 * r['wer']:.2f}% | "
                     f"{100 * r['cer']:.2f}% | {target_cells(r)} |")
    short = next((e for e in evals if e["preset"] == best["preset"] and e["seed"] == 0), None)
    if short is not None:
        lines += ["", "Against the same config at the ablation's budget (seed 0), both decoded "
                  "greedily, paired over the same test utterances (WER difference in points, "
                  "95% bootstrap interval; negative: the longer training is better):", ""]
        for name in best["sets"]:
            if name not in short["sets"]:
                continue
            lines.append(f"- {name}: {paired_wer_text(best['sets'][name], short['sets'][name])}")
    if "confirmation" in best:
        lines += confirmation_lines(best, best["confirmation"])
    return lines


def confirmation_lines(best: dict, confirm: dict) -> list[str]:
    """Card and RESULTS lines for the default model's confirmation set (``corpus_confirm``):
    its WER per test set beside the main test set's, both decoded as the app decodes them,
    against the targets, and the commands that build (``CONFIRM_COMMAND``) and score it.
    Scored once, after the model was chosen, so these numbers carry no selection."""
    main = {r["test_set"]: r for r in app_rows(best)}
    lines = ["", "### Confirmation set (fresh clips, scored once)", "",
             "The model above was picked among candidates by its scores on these test sets, so "
             "they are a little optimistic. New clips of the same held-out voices (new digit "
             "strings from the ten espeak variants, `rms` and `ked_diphone`; new strings spliced "
             "from jackson's takes) were scored once, after it was chosen, by "
             f"{app_decoding(confirm)} (built by `{CONFIRM_COMMAND}`, scored by `python -m "
             f"echo_core.study eval --data {CONFIRM_CORPUS} --run {run_folder(best)} --out-file "
             f"{CONFIRM_FILE}`). Jackson's isolated takes are all in the "
             "test set already, so that number has no confirmation.", "",
             "| test set | clips | WER | CER | test set WER | target (WER) | met |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in app_rows(confirm):
        name = r["test_set"]
        before = f"{100 * main[name]['wer']:.2f}%" if name in main else ""
        lines.append(f"| {name} | {r['clips']} | {100 * r['wer']:.2f}% | {100 * r['cer']:.2f}% | "
                     f"{before} | {target_cells(r)} |")
    return lines


def results_markdown(result: dict, data: str | Path, runs: str | Path,
                     best: dict | None = None) -> str:
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
              "one thread each on a 2-core CPU shared with other work (at times two trainings "
              "at once: wall times vary, steps do not). Only the rotary/pitch settings and the "
              "seed differ.", "",
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
        top = real.sort_values("wer_seed0").iloc[0]
        lines += ["", f"Best on the real-speaker sets pooled (FSDD speaker jackson, isolated "
                  f"and spliced), seed 0: {CONFIGS.get(top['config'], '?')} "
                  f"`{top['config']}`, {_pct(top['wer_seed0'])}% WER. All models are "
                  "early in training (1100 steps): these are the configs' standings at a "
                  "fixed small budget (seed 0; the seed spread is in brackets where measured). "
                  "The app's default model is trained longer: see the next section."]
    if best is not None:
        lines += default_model_section(best, load_evals(runs))
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
    lines += per_seed_lines(load_evals(runs))
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
              "Rule: a config \"uses pitch\" when a wrong F0 measurably hurts it: the "
              "delta-NLL interval of some condition (shuffled or constant F0, all test clips) "
              "lies above +1e-5. Whether pitch *helps recognition* is stated beside it from "
              "the paired WER intervals against the controls on the real-speaker sets "
              "((c) vs (b) and the null (f); (e) vs (c)).", ""]
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
                     f"--data {CORPUS} --run {run_folder(e)}`")
    lines += ["", f"3. `python -m echo_core.study report --data {CORPUS} --runs "
              "runs --out assets/checkpoints/zoo --ship assets/checkpoints`", ""]
    return "\n".join(lines)
