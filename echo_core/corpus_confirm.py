"""A confirmation set: fresh test clips from the zoo corpus's held-out voices, to score a model
picked on the zoo's test sets once more, on clips nobody has looked at.

Why: the default model was chosen among candidates by their scores on the zoo's test sets (the
rule fixed before: better on one, worse on none), so its numbers there are the best of several
draws, a little optimistic. New digit strings spoken by the same held-out voices (the espeak
variants the corpus seed put in test, flite ``rms``, festival ``ked``) and new connected strings
spliced from the held-out FSDD speaker's takes measure the same thing without that selection,
once, after the choice. The held-out speaker's isolated takes cannot be renewed (the test set
already holds every one of them), so the isolated real-speaker number has no confirmation.

The voices come from the main corpus's split (the same ``seed``), the clips from their own
random stream (``draw``), and a clip that the main corpus already holds (same source, text,
voice, pitch, speed and takes: the same audio) is drawn again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .corpus import ClipSpec, CorpusError, list_variants, write_manifest
from .corpus_zoo import (FESTIVAL_VOICES, FLITE_VOICES, TEST_SPEAKERS, digit_text,
                         espeak_fields, fsdd_files, plan_zoo, render_specs, spliced_fields,
                         synth_fields)

# Clips per test set: about the main corpus's (espeak 247, flite 189, festival 142, spliced 200).
CONFIRM_SIZES = dict(n_espeak=250, n_flite=200, n_festival=150, n_spliced=200)
MAX_TRIES = 50  # draws per clip before giving up on finding one the main corpus lacks


def clip_key(spec: ClipSpec) -> tuple:
    """What makes two clips the same audio (a render is a function of these)."""
    return spec.source, spec.text, spec.voice, spec.pitch, spec.speed, spec.origin


def plan_confirmation(seed: int, variants: list[str], fsdd: dict[str, list[tuple[int, str]]],
                      draw: int = 1, sizes: dict | None = None,
                      main_sizes: dict | None = None) -> list[ClipSpec]:
    """The confirmation clips (all in the test split, none augmented) of the zoo corpus built
    with ``seed`` and ``main_sizes`` (its ``plan_zoo`` keyword arguments), from the stream
    ``draw``; ``sizes`` overrides ``CONFIRM_SIZES``."""
    if isinstance(draw, bool) or not isinstance(draw, int) or draw < 1:
        raise CorpusError(f"the confirmation draw must be an integer >= 1, got {draw!r}")
    main_sizes = dict(main_sizes or {})
    held = {**TEST_SPEAKERS, **(main_sizes.get("test_speakers") or {})}
    n = {**CONFIRM_SIZES, **(sizes or {})}
    if set(n) != set(CONFIRM_SIZES):
        raise CorpusError(f"confirmation sizes are {sorted(CONFIRM_SIZES)}, got {sorted(n)}")
    main = plan_zoo(seed, variants, fsdd, **main_sizes)
    # the espeak variants the main corpus holds out (its test clips speak with them)
    test_variants = sorted({s.speaker for s in main if s.source == "espeak" and s.split == "test"})
    taken = {clip_key(s) for s in main}
    rng = np.random.default_rng([seed, 5, draw])
    specs: list[ClipSpec] = []

    def add_fresh(n: int, fields) -> None:
        for _ in range(n):
            for _ in range(MAX_TRIES):
                spec = ClipSpec(path=f"wav/{len(specs):05d}.wav", split="test", augment="",
                                **fields())
                if clip_key(spec) not in taken:
                    break
            else:
                raise CorpusError(f"no new {spec.source} clip found in {MAX_TRIES} draws")
            taken.add(clip_key(spec))
            specs.append(spec)

    def held_voices(voices: dict, source: str) -> list[tuple[str, str]]:
        return [(v, s) for v, s in sorted(voices.items()) if s == held[source]]

    def synth(source: str, voices: list[tuple[str, str]]):
        def fields():
            voice, speaker = voices[int(rng.integers(len(voices)))]
            return synth_fields(rng, source, voice, speaker)
        return fields

    add_fresh(n["n_espeak"], lambda: espeak_fields(
        rng, digit_text(rng), test_variants[int(rng.integers(len(test_variants)))]))
    add_fresh(n["n_flite"], synth("flite", held_voices(FLITE_VOICES, "flite")))
    add_fresh(n["n_festival"], synth("festival", held_voices(FESTIVAL_VOICES, "festival")))
    if held["fsdd"] in fsdd:
        add_fresh(n["n_spliced"], lambda: spliced_fields(rng, fsdd, held["fsdd"]))
    return specs


def write_confirmation(out: str | Path, fsdd_dir: str | Path, seed: int = 0, draw: int = 1,
                       workers: int = 2, progress: bool = True, sizes: dict | None = None,
                       main_sizes: dict | None = None) -> Path:
    """Plan and render the confirmation set into ``out`` (wav/ + manifest.csv) for the zoo
    corpus built with ``seed`` and ``main_sizes``; returns the manifest."""
    specs = plan_confirmation(seed, list_variants(), fsdd_files(fsdd_dir), draw, sizes,
                              main_sizes)
    # The render stream (splice gaps) is keyed by the draw, so it is not the main corpus's.
    return write_manifest(Path(out), render_specs(out, specs, 1000 + draw, fsdd_dir, workers,
                                                  progress))
