"""Evaluate one trained zoo run (issue #17) on every unseen-speaker test set of the corpus's
cached features:

- greedy transcripts in padded batches (``decode.batch_greedy`` with lengths: the zoo models
  have a key padding mask, so a batch decodes each clip as it would alone). This is the
  ablation's protocol, the same for every config;
- for a model with a CTC head, also the joint CTC/attention transcripts the app shows;
- error counts per utterance (jiwer's alignment, kept per utterance for paired bootstraps);
- the pitch interventions on every test clip, batched and checked against the one pipeline
  (``interventions.compare_conditions``) on a clip per set.

Writes ``study_eval.json`` in the run folder; ``study_tables`` gathers those files. Models
trained on borrowed contours (the null control, ``meta["f0_input"] == "borrowed"``) are
decoded with borrowed contours too.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .corpus import load_features
from .corpus_zoo import TEST_SETS
from .interventions import compare_conditions
from .pitch import f0_for_model

EVAL_FILE = "study_eval.json"
BATCH = 32  # clips per padded decoding batch
CONDITIONS = ("shuffled:0", "constant:100")
PIPELINE_CLIPS = 1  # per test set: the batched interventions checked on the one pipeline
JOINT_SPAN = "speech span"  # what the joint transcripts read (older files: the whole clip)
NULL_EVAL_SEED = 17  # which other clip each test clip borrows its contour from (null models)


def utterance_errors(references: list[str], hypotheses: list[str],
                     unit: str = "word") -> list[int]:
    """Substitutions + deletions + insertions of each utterance (``unit`` "word" or "char",
    spaces counted as jiwer's CER counts them), from jiwer's alignment of the whole set: the
    per-utterance counts a paired bootstrap resamples, summing to jiwer's totals."""
    import jiwer

    process = jiwer.process_words if unit == "word" else jiwer.process_characters
    out = process(list(references), list(hypotheses))
    counts = []
    for chunks in out.alignments:
        n = 0
        for c in chunks:
            if c.type in ("substitute", "delete"):
                n += c.ref_end_idx - c.ref_start_idx
            elif c.type == "insert":
                n += c.hyp_end_idx - c.hyp_start_idx
        counts.append(n)
    return counts


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


def joint_decode_set(model, tokenizer, indices, mels, f0s) -> list[str]:
    """Joint CTC/attention transcripts of ``indices``, one clip at a time (the beam search is
    per clip), exactly as the app transcribes a clip: ``clip_run.run_clip`` on the cached
    features, which decodes the clip's speech span (``audio.speech_span``). Until 2026-12-06
    this read the whole clip; ``JOINT_SPAN`` in the result tells the two apart."""
    from .clip_run import run_clip

    return [run_clip(model, mels[i], f0s[i], tokenizer=tokenizer).transcript
            for i in indices.tolist()]


def set_record(idx, hyps: list[str], specs) -> dict:
    """One test set's transcripts and per-utterance word and character errors."""
    refs = [specs[i].text for i in idx.tolist()]
    return {"clips": idx.tolist(), "hyps": hyps,
            "word_errors": utterance_errors(refs, hyps), "words": [len(r.split()) for r in refs],
            "char_errors": utterance_errors(refs, hyps, "char"), "chars": [len(r) for r in refs]}


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
    from .decode import decoding_name, load_tokenizer, model_uses_f0

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
    # each test clip's contour as the model is given it (a borrowed one for the null control):
    # the same for the greedy and joint transcripts and the interventions' base
    contours = {}
    for idx in sets.values():
        contours.update(null_contours(idx, f0s) if null else {i: f0s[i] for i in idx.tolist()})
    for name, idx in sets.items():
        result["sets"][name] = set_record(idx, decode_set(model, tokenizer, idx, mels, contours),
                                          specs)
    result["decode_seconds"] = round(time.time() - t0, 1)
    if model.dims.ctc_head:  # also as the app decodes it: the joint search (same clips)
        t0 = time.time()
        result["joint"] = {"decoding": decoding_name(model), "span": JOINT_SPAN, "sets": {
            name: set_record(idx, joint_decode_set(model, tokenizer, idx, mels, contours), specs)
            for name, idx in sets.items()}}
        result["joint"]["decode_seconds"] = round(time.time() - t0, 1)
    t0 = time.time()
    if model_uses_f0(model):
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
