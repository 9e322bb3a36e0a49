"""The model card ``train`` writes beside every run it finishes (README.md in the run folder).

Why a module of its own: the card is prose about a run (what it is, what it heard, how it
scored, the exact command that made it), not part of the training loop; the shipped cards of
the model zoo are written by ``study_cards`` from a full evaluation instead. Everything here is
read from the checkpoint meta, so the card says what the run did, not what a preset usually does.
"""

from __future__ import annotations

import json
from pathlib import Path

VROPE_TEXT = {
    "static_theta": "f0_rotary off: rotary frequencies are the learned `inv_freq` parameter "
                    "(initial base 19000); no pitch input.",
    "mean_f0_theta": "f0_rotary on, theta_mode `mean_f0` (the reference vRoPE): theta_eff = "
                     "theta + pf x 9200 with pf = ln(1 + mean F0/700) / ln(1 + 300/700), one "
                     "theta per utterance. f0_mean `voiced`: the mean is over the utterance's "
                     "voiced frames (the reference averages the whole batch tensor, unvoiced "
                     "zeros and padding included).",
    "f0_theta_bias": "f0_rotary on, theta_mode `mean_f0`, plus the pitch-similarity bias "
                     "exp(-|z_i - z_j| x scale) added to the self-attention scores.",
    "per_frame_theta": "f0_rotary on, theta_mode `per_frame`: rotation angles accumulated frame "
                       "by frame from a per-frame theta.",
    "frozen_theta": "f0_rotary off, rotary frequencies frozen (a buffer) at theta_eff of the "
                    "training corpus's mean voiced F0; no pitch input.",
    "null_f0_theta": "as mean_f0_theta, but trained and evaluated with each utterance's F0 "
                     "contour swapped for a random other utterance's, stretched in time.",
}
VROPE_SWITCHES = ("f0_rotary", "theta_mode", "f0_mean", "pitch_bias", "pitch_bias_scale",
                  "variable_radius", "decoder_mask")


def write_model_card(out: Path, model, meta: dict) -> Path:
    """README.md model card: data, budget, size, held-out-voice scores, the vRoPE settings and
    the exact command that trained the run (``out`` must hold its checkpoint already)."""
    from .study_cards import run_folder, train_command

    dims = model.dims.to_dict()
    vrope = {k: dims.get(k) for k in VROPE_SWITCHES}
    init = meta.get("init_from")
    run = {"run": str(out), "preset": meta.get("preset"), "seed": meta.get("seed")}
    lines = [
        f"# Echo digit recogniser: `{meta.get('preset')}`",
        "",
        "A small Echo encoder-decoder trained by `echo_core.train` on a spoken-digit corpus "
        "built by `echo_core.corpus` (its `manifest.csv` names each clip's voice or speaker, "
        "source and split; test voices and speakers are never in training). It knows only the "
        "words zero-nine and oh, and has heard only its training voices.",
        "",
        "| | |", "|---|---|",
        f"| vRoPE | {VROPE_TEXT.get(meta.get('preset'), '')} |",
        f"| vRoPE switches | `{json.dumps(vrope)}` |",
        f"| parameters | {meta.get('params', 0):,} |",
        f"| training steps | {meta.get('steps')} (seed {meta.get('seed')})"
        + (f", fine-tuned from `{init['checkpoint']}`" if init else "") + " |",
        f"| wall time | {meta.get('wall_seconds', 0) / 60:.1f} min on the CPU |",
        f"| data | `{meta.get('data')}` |",
        _test_row(meta.get("test")),
        f"| features | log-mel {json.dumps(meta.get('features'))}; Praat F0 (8 ms, ac) "
        f"when the model uses F0 |",
        f"| dims | `{json.dumps({k: v for k, v in dims.items() if k not in vrope})}` |",
        f"| optimisation | AdamW, warm-up + cosine decay, SpecAugment, length-bucketed batches: "
        f"`{json.dumps(meta.get('train', {}))}` |",
        "",
        f"Reproduce (from the same corpus): `{train_command(run, dims, data=meta.get('data'))}`.",
        "Score it per test set, decoded as the app decodes: `python -m echo_core.study eval "
        f"--data {meta.get('data')} --run {run_folder(run)}`.",
        "",
    ]
    if meta.get("note"):
        lines += [f"Note: {meta['note']}", ""]
    path = Path(out) / "README.md"
    path.write_text("\n".join(lines))
    return path


def _test_row(test: dict | None) -> str:
    """The card's test row: every test clip together, as ``train`` scored them at its end
    (greedy attention decoding, before the CTC head joins the checkpoint), or why there is
    none."""
    if not test:
        return "| test WER | not scored at the end of training (`--no-test-eval`, or the null " \
               "control, whose F0 is borrowed) |"
    return (f"| test WER / CER (held-out voices and speakers, all test sets together, greedy) | "
            f"{100 * test['wer']:.2f}% / {100 * test['cer']:.2f}% on {test['clips']} clips |")
