"""How a checkpoint takes a noise floor: every unseen-speaker test clip again with white noise a
fixed number of dB below its own power, transcribed as the app transcribes an upload, and each
level's WER paired against the same clips clean.

Why: a microphone always adds a noise floor, and the test sets are clean files. They cannot
show what a floor costs; this does, with the clean clips as the control and a paired bootstrap
interval. Every model is given each clip's own F0 contour (a null-F0 model, which ``study
eval`` gives borrowed contours, is scored here as the app runs it).

    python -m echo_core.study noise --data CORPUS --checkpoint assets/checkpoints/zoo_mean_f0_theta_long
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .augment import add_noise
from .corpus import read_manifest
from .errors import EchoError
from .study_eval import set_record, test_indices
from .study_tables import error_rate, paired_wer_text

NOISE_FILE = "noise_eval.json"
LEVELS_DB = (50.0, 40.0)  # noise power below the clip's mean power (a quiet room, a laptop)
NOISE_SEED = 23  # the noise of clip i is the same at every level, for every checkpoint


def noisy(samples: np.ndarray, level_db: float, clip_index: int) -> np.ndarray:
    """``samples`` plus white noise ``level_db`` below their mean power (``augment.add_noise``
    with the clip's own seeded stream: the same noise, scaled, at every level)."""
    rng = np.random.default_rng([NOISE_SEED, int(clip_index)])
    return add_noise(samples, float(level_db), rng)


def check_levels(levels) -> tuple[float, ...]:
    """Levels in dB below the signal, each finite, in (0, 120] and named once."""
    out = tuple(float(v) for v in levels)
    if not out or not all(np.isfinite(v) and 0 < v <= 120 for v in out) or \
            len(set(out)) != len(out):
        raise EchoError(f"noise levels must be dB below the clip's power, each in (0, 120] and "
                        f"each once; got {list(levels)}")
    return out


def noise_eval(data: str | Path, checkpoint: str | Path, levels=LEVELS_DB,
               max_clips: int = 0, threads: int = 1) -> dict:
    """Transcripts of every test set clean and at each level (the first ``max_clips`` clips of
    each set when > 0): ``{"checkpoint", "levels", "conditions": {"clean" | "<L>dB":
    {"sets": {name: set_record}}}}``, the records ``study_tables`` pairs."""
    import torch

    from .audio import load_audio
    from .checkpoint import load_checkpoint
    from .clip_run import transcribe
    from .decode import load_tokenizer

    levels = check_levels(levels)
    torch.set_num_threads(threads)
    data = Path(data)
    specs = read_manifest(data)
    sets = test_indices(specs)
    if not sets:
        raise EchoError("the corpus has no unseen-speaker test clips (split 'test')")
    if max_clips > 0:
        sets = {name: idx[:max_clips] for name, idx in sets.items()}
    model = load_checkpoint(checkpoint).eval()
    tokenizer = load_tokenizer(model)
    names = ["clean"] + [f"{v:g}dB" for v in levels]
    hyps = {c: {s: [] for s in sets} for c in names}
    t0 = time.time()
    for name, idx in sets.items():
        for i in idx.tolist():
            audio = load_audio(data / specs[i].path)  # 16 kHz mono, clear errors
            for c, level in zip(names, (None,) + levels):
                x = audio.samples if level is None else noisy(audio.samples, level, i)
                hyps[c][name].append(transcribe(model, x, audio.sr, tokenizer))
    return {"checkpoint": Path(checkpoint).name, "levels": list(levels),
            "seconds": round(time.time() - t0, 1),
            "conditions": {c: {"sets": {name: set_record(idx, hyps[c][name], specs)
                                        for name, idx in sets.items()}} for c in names}}


def noise_lines(result: dict) -> list[str]:
    """One line per test set and level: clean WER, noisy WER and the paired 95% interval of
    their difference (noisy - clean, WER points)."""
    conditions = result["conditions"]
    clean = conditions["clean"]["sets"]
    lines = []
    for c, cond in conditions.items():
        if c == "clean":
            continue
        for name, rec in cond["sets"].items():
            lines.append(f"{c:>6s} {name:13s} {100 * error_rate(clean[name]):6.2f}% clean, "
                         f"{100 * error_rate(rec):6.2f}% noisy: "
                         f"{paired_wer_text(rec, clean[name])}")
    return lines


def write_noise_eval(result: dict, out: str | Path) -> Path:
    out = Path(out)
    out.write_text(json.dumps(result))
    return out
