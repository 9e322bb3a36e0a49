"""The synthetic digit corpus: deterministic, split by voice, audio as the pipeline expects."""

import shutil

import numpy as np
import pytest
import soundfile as sf

from echo_core import corpus
from echo_core.corpus import (DIGIT_WORDS, CorpusError, plan_corpus, read_manifest,
                              split_variants, trim_silence)

VARIANTS = [f"v{i}" for i in range(30)]
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is not installed (apt-get install espeak-ng)")


def test_plan_is_deterministic_and_seed_dependent():
    a = plan_corpus(200, 3, VARIANTS)
    assert a == plan_corpus(200, 3, VARIANTS)
    assert a != plan_corpus(200, 4, VARIANTS)


def test_no_voice_or_variant_in_two_splits():
    specs = plan_corpus(2000, 0, VARIANTS, n_validation=4, n_test=5)
    splits_of_variant, splits_of_voice = {}, {}
    for s in specs:
        splits_of_variant.setdefault(s.voice.split("+")[1], set()).add(s.split)
        splits_of_voice.setdefault(s.voice, set()).add(s.split)
    assert all(len(v) == 1 for v in splits_of_variant.values())
    assert all(len(v) == 1 for v in splits_of_voice.values())
    counts = {name: sum(len(v) for k, v in splits_of_variant.items() if name in v)
              for name in ("train", "validation", "test")}
    assert counts == {"train": 21, "validation": 4, "test": 5}


def test_plan_rows_are_in_range():
    for s in plan_corpus(500, 1, VARIANTS):
        words = s.text.split(" ")
        assert 1 <= len(words) <= corpus.MAX_WORDS and set(words) <= set(DIGIT_WORDS)
        assert corpus.PITCH_RANGE[0] <= s.pitch <= corpus.PITCH_RANGE[1]
        assert corpus.SPEED_RANGE[0] <= s.speed <= corpus.SPEED_RANGE[1]
        assert s.voice.split("+")[0] in corpus.ACCENTS


def test_split_needs_training_variants():
    with pytest.raises(CorpusError, match="variants"):
        split_variants(VARIANTS[:5], 0, 2, 3)


def test_trim_silence_keeps_margin():
    sr = 16000
    x = np.zeros(sr, np.float32)
    x[8000:8100] = 0.5
    y = trim_silence(x, sr, margin=0.01)
    assert len(y) == 100 + 2 * 160
    assert np.array_equal(trim_silence(np.zeros(10, np.float32), sr), np.zeros(10))


def test_missing_manifest_says_how_to_make_it(tmp_path):
    with pytest.raises(CorpusError, match="echo_core.corpus"):
        read_manifest(tmp_path)


@needs_espeak
def test_write_corpus_is_deterministic_16k(tmp_path):
    a = corpus.write_corpus(tmp_path / "a", 6, seed=5, workers=1, progress=False)
    b = corpus.write_corpus(tmp_path / "b", 6, seed=5, workers=2, progress=False)
    assert a.read_text() == b.read_text()
    rows = read_manifest(tmp_path / "a")
    assert len(rows) == 6
    for row in rows:
        xa, sr = sf.read(tmp_path / "a" / row.path, dtype="float32")
        xb, _ = sf.read(tmp_path / "b" / row.path, dtype="float32")
        assert sr == 16000 and np.array_equal(xa, xb)
        # a digit word lasts more than 0.15 s at the fastest speed; speech reaches the edges' margin
        assert 0.15 * len(row.text.split()) < len(xa) / sr < 1.5 * len(row.text.split()) + 0.5
        assert np.abs(xa).max() > 0.05


@needs_espeak
def test_real_variants_exclude_whisper():
    names = corpus.list_variants()
    assert len(names) > 20 and not (set(names) & corpus.EXCLUDED_VARIANTS)
