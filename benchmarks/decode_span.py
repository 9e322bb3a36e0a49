"""Decode span lead: what silence before the speech does to transcripts (RESULTS.md, "decode
span"). Not part of run_all: it needs a built zoo corpus (``python -m echo_core.corpus``).

Held-out test clips are padded as a recording (0.3 s of digital silence before, 1 s after) and
decoded through ``echo_core.clip_run`` with ``audio.speech_span``'s lead at 10, 0 and 2 frames
(tail 10); WER per lead and the paired bootstrap interval against lead 10, per test set.

    python -m benchmarks.decode_span --data data/zoo-corpus \\
        --model assets/checkpoints/zoo_mean_f0_theta_long
"""

from __future__ import annotations

import argparse

import numpy as np

SETS = {"fsdd_spliced": None, "fsdd": 200, "espeak": 120}  # test set -> clips drawn (None: all)
LEADS = (10, 0, 2)


def main(argv=None) -> None:
    import jiwer
    import pandas as pd
    import soundfile as sf
    import torch

    from echo_core import audio as AU
    from echo_core import clip_run as CR
    from echo_core.checkpoint import load_checkpoint
    from echo_core.decode import load_tokenizer
    from echo_core.study_tables import paired_wer

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="a zoo corpus (manifest.csv, wav/)")
    p.add_argument("--model", required=True, help="a checkpoint directory")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    manifest = pd.read_csv(f"{args.data}/manifest.csv")
    test = manifest[manifest.split == "test"]
    model = load_checkpoint(args.model)
    model.eval()
    tokenizer = load_tokenizer(model)
    for name, n in SETS.items():
        rows = test[test.source == name]
        rows = rows if n is None else rows.sample(n, random_state=0)
        errors, words = {lead: [] for lead in LEADS}, []
        for _, row in rows.iterrows():
            x, sr = sf.read(f"{args.data}/{row.path}", dtype="float32")
            x = np.concatenate([np.zeros(int(0.3 * sr), np.float32), x, np.zeros(sr, np.float32)])
            audio = AU.audio_from_array(x, sr)
            mel, f0 = CR.clip_features(model, audio.samples, AU.SAMPLE_RATE)
            words.append(len(row.text.split()))
            for lead in LEADS:
                span = AU.speech_span(mel, lead=lead, tail=10)
                run = CR.run_clip(model, mel, f0, tokenizer=tokenizer, samples=audio.samples,
                                  span=span)
                out = jiwer.process_words(row.text, run.transcript or "")
                errors[lead].append(out.substitutions + out.deletions + out.insertions)
        total = sum(words)
        cells = []
        for lead in LEADS:
            wer = 100 * sum(errors[lead]) / total
            if lead == 10:
                cells.append(f"lead 10: {wer:.2f}%")
                continue
            mean, low, high = (100 * v for v in paired_wer(errors[lead], errors[10], words))
            cells.append(f"lead {lead}: {wer:.2f}% ({mean:+.2f} [{low:+.2f}, {high:+.2f}])")
        print(f"{name} ({len(words)} clips): " + "; ".join(cells), flush=True)


if __name__ == "__main__":
    main()
