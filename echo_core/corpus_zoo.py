"""The model-zoo corpus: espeak-ng, flite and festival voices plus real FSDD speakers, augmented,
split by speaker. Built by ``echo_core.corpus --fsdd DIR`` (one command, deterministic).

Why: the first corpus had only espeak voices, so its models heard real speech as noise. Here
every synthesiser and the Free Spoken Digit Dataset (FSDD, CC BY-SA 4.0, Jackson et al.,
github.com/Jakobovski/free-spoken-digit-dataset) add voices, and the training clips go through
seeded augmentations (telephone band, noise, gain, room reverb, tempo, pitch;
:mod:`echo_core.augment`). Splits are by speaker, never by clip: one FSDD speaker, one flite and
one festival voice and a tenth of the espeak variants are heard only in test. flite ``kal`` /
``kal16`` and festival ``kal_diphone`` are one speaker (Kal), flite ``slt`` and festival
``cmu_us_slt_arctic_hts`` another (SLT), so a speaker is held out in every synthesiser at once.

FSDD clips are copied (resampled to 16 kHz) into the corpus folder: runs and tests read only the
corpus, never the FSDD folder. Connected digit strings are spliced from one speaker's takes with
short silent gaps (:func:`splice`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from . import augment as A
from .corpus import (ACCENTS, DIGIT_WORDS, MAX_WORDS, PITCH_RANGE, SAMPLE_RATE, SPEED_RANGE,
                     ClipSpec, CorpusError, espeak_binary, list_variants, split_variants,
                     synthesize, trim_silence, write_manifest)

# voice name -> speaker identity (voices of one person share a split)
FLITE_VOICES = {"kal": "kal", "kal16": "kal", "awb": "awb", "rms": "rms", "slt": "slt"}
FESTIVAL_VOICES = {"kal_diphone": "kal", "ked_diphone": "ked", "cmu_us_slt_arctic_hts": "slt"}
FESTIVAL_PACKAGES = "festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"
# Held out for the unseen-speaker test sets (one per synthesiser, one FSDD speaker).
TEST_SPEAKERS = {"flite": "rms", "festival": "ked", "fsdd": "jackson"}
FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")
FSDD_WORDS = DIGIT_WORDS[:10]  # FSDD says each digit by its name ("zero", never "oh")
FLITE_F0_RANGE = (80, 230)  # flite int_f0_target_mean, Hz
STRETCH_RANGE = (80, 125)  # duration stretch in percent (stored in the speed column)
SPLICE_WORDS = (2, 6)  # takes per connected string
GAP_RANGE_S = (0.03, 0.18)  # silence between spliced takes
TEST_SETS = ("espeak", "flite", "festival", "fsdd", "fsdd_spliced")


def flite_binary() -> str:
    path = shutil.which("flite")
    if path is None:
        raise CorpusError("flite was not found on PATH; install it (apt-get install flite)")
    return path


def festival_binary() -> str:
    path = shutil.which("text2wave")
    if path is None:
        raise CorpusError(f"festival's text2wave was not found on PATH; install it (apt-get "
                          f"install {FESTIVAL_PACKAGES})")
    return path


def _read_any(path: str | Path, sr: int = SAMPLE_RATE) -> np.ndarray:
    samples, native = sf.read(str(path), dtype="float32")
    if samples.ndim > 1:
        samples = samples.mean(axis=1)
    return samples if native == sr else soxr.resample(samples, native, sr).astype(np.float32)


def synthesize_flite(text: str, voice: str, f0_mean: int = 0, stretch: int = 100,
                     sr: int = SAMPLE_RATE) -> np.ndarray:
    """flite speech (float32 at ``sr``, silence trimmed); f0_mean 0 keeps the voice's own."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        cmd = [flite_binary(), "-voice", voice, "--setf", f"duration_stretch={stretch / 100:g}"]
        if f0_mean:
            cmd += ["--setf", f"int_f0_target_mean={f0_mean}"]
        result = subprocess.run(cmd + ["-t", text, "-o", str(out)], capture_output=True)
        if result.returncode != 0 or not out.is_file():
            raise CorpusError(f"flite failed for voice {voice!r}: {result.stderr.decode()[:200]}")
        return trim_silence(_read_any(out, sr), sr)


def synthesize_festival(text: str, voice: str, stretch: int = 100,
                        sr: int = SAMPLE_RATE) -> np.ndarray:
    """festival (text2wave) speech with voice ``voice`` (e.g. kal_diphone), trimmed, at ``sr``."""
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.txt", Path(tmp) / "out.wav"
        src.write_text(text + "\n")
        cmd = [festival_binary(), "-eval", f"(voice_{voice})", "-eval",
               f"(Parameter.set 'Duration_Stretch {stretch / 100:g})", str(src), "-o", str(out)]
        result = subprocess.run(cmd, capture_output=True)
        if result.returncode != 0 or not out.is_file() or out.stat().st_size < 100:
            raise CorpusError(f"festival failed for voice {voice!r} (install {FESTIVAL_PACKAGES}): "
                              f"{(result.stderr + result.stdout).decode()[:200]}")
        return trim_silence(_read_any(out, sr), sr)


# ---------------------------------------------------------------------------------------------
# FSDD

def fsdd_files(folder: str | Path) -> dict[str, list[tuple[int, str]]]:
    """speaker -> sorted [(digit, file name)] of an FSDD recordings folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CorpusError(f"FSDD folder {folder} does not exist (it holds "
                          "{digit}_{speaker}_{index}.wav files)")
    out: dict[str, list[tuple[int, str]]] = {}
    for path in sorted(folder.iterdir()):
        m = FSDD_NAME.match(path.name)
        if m:
            out.setdefault(m.group(2), []).append((int(m.group(1)), path.name))
    if not out:
        raise CorpusError(f"no {{digit}}_{{speaker}}_{{index}}.wav files in {folder}")
    return out


def splice(takes: list[np.ndarray], gaps: list[float], sr: int = SAMPLE_RATE) -> np.ndarray:
    """Takes joined in order with ``gaps`` seconds of silence between neighbours."""
    if len(gaps) != len(takes) - 1:
        raise CorpusError(f"{len(takes)} takes need {len(takes) - 1} gaps, got {len(gaps)}")
    parts = [takes[0]]
    for gap, take in zip(gaps, takes[1:]):
        parts += [np.zeros(int(round(gap * sr)), np.float32), take]
    return np.concatenate(parts).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Plan

def digit_text(rng: np.random.Generator) -> str:
    n_words = int(rng.integers(1, MAX_WORDS + 1))
    return " ".join(DIGIT_WORDS[int(k)] for k in rng.integers(0, len(DIGIT_WORDS), n_words))


# One clip's drawn fields, shared by the base plan, the extra clips and the confirmation set
# (corpus_confirm). The order of the draws is part of the corpus: changing it changes every
# clip after it.

def espeak_fields(rng: np.random.Generator, text: str, variant: str) -> dict:
    """An espeak clip of ``variant``: accent, pitch and speed drawn in that order."""
    accent = ACCENTS[int(rng.integers(len(ACCENTS)))]
    return dict(text=text, voice=f"{accent}+{variant}", source="espeak", speaker=variant,
                pitch=int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1)),
                speed=int(rng.integers(SPEED_RANGE[0], SPEED_RANGE[1] + 1)))


def synth_fields(rng: np.random.Generator, source: str, voice: str, speaker: str) -> dict:
    """A flite or festival clip: flite's F0 target (70% of clips), text and stretch drawn in
    that order."""
    f0 = int(rng.integers(FLITE_F0_RANGE[0], FLITE_F0_RANGE[1] + 1)) \
        if source == "flite" and rng.random() < 0.7 else 0
    return dict(text=digit_text(rng), voice=voice, source=source, speaker=speaker, pitch=f0,
                speed=int(rng.integers(STRETCH_RANGE[0], STRETCH_RANGE[1] + 1)))


def spliced_fields(rng: np.random.Generator, fsdd: dict, speaker: str) -> dict:
    """A connected string of ``speaker``'s takes: how many, then which."""
    takes = [fsdd[speaker][int(i)] for i in rng.integers(
        0, len(fsdd[speaker]), int(rng.integers(SPLICE_WORDS[0], SPLICE_WORDS[1] + 1)))]
    return dict(text=" ".join(FSDD_WORDS[d] for d, _ in takes), voice=f"fsdd:{speaker}",
                source="fsdd_spliced", speaker=speaker, origin=";".join(n for _, n in takes),
                pitch=0, speed=0)


def plan_zoo(seed: int, variants: list[str], fsdd: dict[str, list[tuple[int, str]]],
             n_espeak: int = 2400, n_flite: int = 900, n_festival: int = 450,
             n_spliced_train: int = 600, n_spliced_test: int = 200, n_fsdd_copies: int = 750,
             augment_fraction: float = 0.5, n_validation: int = 8, n_test: int = 10,
             test_speakers: dict | None = None, n_extra_espeak: int = 0,
             n_extra_synth: int = 0, n_extra_fsdd_copies: int = 0,
             n_extra_spliced: int = 0) -> list[ClipSpec]:
    """The zoo corpus's clip list (deterministic from ``seed``); ``augment`` is "random" where
    a chain will be drawn at synthesis (training clips only; the FSDD copies always).

    ``n_extra_*``: more training clips (training voices and speakers only, all augmented),
    appended after the base plan from their own random stream, so the base clips, their
    renders and every test set stay exactly as without them: a model trained on the larger
    corpus is scored on the same test clips as one trained on the base corpus.
    """
    held = {**TEST_SPEAKERS, **(test_speakers or {})}
    rng = np.random.default_rng([seed, 2])
    split_of = split_variants(variants, seed, n_validation, n_test)
    names = sorted(variants)
    specs: list[ClipSpec] = []

    def add(split: str, **kw):
        aug = "random" if split == "train" and rng.random() < augment_fraction else ""
        specs.append(ClipSpec(path=f"wav/{len(specs):05d}.wav", split=split, augment=aug, **kw))

    for _ in range(n_espeak):
        text, variant = digit_text(rng), names[int(rng.integers(len(names)))]
        add(split_of[variant], **espeak_fields(rng, text, variant))
    for source, voices, n in (("flite", FLITE_VOICES, n_flite),
                              ("festival", FESTIVAL_VOICES, n_festival)):
        order = sorted(voices)
        for _ in range(n):
            voice = order[int(rng.integers(len(order)))]
            speaker = voices[voice]
            add("test" if speaker == held[source] else "train",
                **synth_fields(rng, source, voice, speaker))
    train_files = []
    for speaker in sorted(fsdd):
        split = "test" if speaker == held["fsdd"] else "train"
        for digit, name in fsdd[speaker]:
            add(split, text=FSDD_WORDS[digit], voice=f"fsdd:{speaker}", source="fsdd",
                speaker=speaker, origin=name, pitch=0, speed=0)
            if split == "train":
                train_files.append((speaker, digit, name))
    for k in rng.permutation(len(train_files))[:n_fsdd_copies]:  # augmented second copies
        speaker, digit, name = train_files[int(k)]
        specs.append(ClipSpec(path=f"wav/{len(specs):05d}.wav", text=FSDD_WORDS[digit],
                              voice=f"fsdd:{speaker}", pitch=0, speed=0, split="train",
                              source="fsdd", speaker=speaker, origin=name, augment="random"))
    for split, n in (("train", n_spliced_train), ("test", n_spliced_test)):
        speakers = sorted(s for s in fsdd if (s == held["fsdd"]) == (split == "test"))
        for _ in range(n if speakers else 0):
            speaker = speakers[int(rng.integers(len(speakers)))]
            add(split, **spliced_fields(rng, fsdd, speaker))
    specs += _plan_extra(seed, len(specs), [v for v in names if split_of[v] == "train"], fsdd,
                         held, n_extra_espeak, n_extra_synth, n_extra_fsdd_copies,
                         n_extra_spliced)
    return specs


def _plan_extra(seed: int, start: int, train_variants: list[str], fsdd: dict, held: dict,
                n_espeak: int, n_synth: int, n_fsdd: int, n_spliced: int) -> list[ClipSpec]:
    """Augmented training clips beyond the base plan (see plan_zoo), numbered from ``start``."""
    rng = np.random.default_rng([seed, 3])
    specs: list[ClipSpec] = []

    def add(**kw):
        specs.append(ClipSpec(path=f"wav/{start + len(specs):05d}.wav", split="train",
                              augment="random", **kw))

    for _ in range(n_espeak):
        variant = train_variants[int(rng.integers(len(train_variants)))]
        add(**espeak_fields(rng, digit_text(rng), variant))
    synth = [("flite", v, s) for v, s in sorted(FLITE_VOICES.items()) if s != held["flite"]]
    synth += [("festival", v, s) for v, s in sorted(FESTIVAL_VOICES.items())
              if s != held["festival"]]
    for _ in range(n_synth):
        add(**synth_fields(rng, *synth[int(rng.integers(len(synth)))]))
    speakers = sorted(s for s in fsdd if s != held["fsdd"])
    takes = [(s, d, n) for s in speakers for d, n in fsdd[s]]
    for _ in range(n_fsdd if takes else 0):
        speaker, digit, name = takes[int(rng.integers(len(takes)))]
        add(text=FSDD_WORDS[digit], voice=f"fsdd:{speaker}", source="fsdd", speaker=speaker,
            origin=name, pitch=0, speed=0)
    for _ in range(n_spliced if speakers else 0):
        add(**spliced_fields(rng, fsdd, speakers[int(rng.integers(len(speakers)))]))
    return specs


# ---------------------------------------------------------------------------------------------
# Synthesis

def render(spec: ClipSpec, index: int, seed: int, fsdd_dir: str | Path | None) -> tuple[np.ndarray, str]:
    """(samples at 16 kHz, augmentation description) of one planned clip."""
    rng = np.random.default_rng([seed, 11, index])
    if spec.source == "espeak":
        x = synthesize(spec.text, spec.voice, spec.pitch, spec.speed)
    elif spec.source == "flite":
        x = synthesize_flite(spec.text, spec.voice, spec.pitch, spec.speed)
    elif spec.source == "festival":
        x = synthesize_festival(spec.text, spec.voice, spec.speed)
    elif spec.source in ("fsdd", "fsdd_spliced"):
        if fsdd_dir is None:
            raise CorpusError("FSDD clips need the FSDD folder (--fsdd DIR)")
        takes = [_read_any(Path(fsdd_dir) / name) for name in spec.origin.split(";")]
        gaps = [float(rng.uniform(*GAP_RANGE_S)) for _ in takes[1:]]
        x = splice(takes, gaps)
    else:
        raise CorpusError(f"unknown clip source {spec.source!r}")
    if spec.augment == "random":
        return A.random_chain(x, SAMPLE_RATE, rng)
    return x, spec.augment


def _render_job(args) -> tuple[int, str]:
    spec, index, seed, root, fsdd_dir = args
    samples, description = render(ClipSpec(**spec), index, seed, fsdd_dir)
    sf.write(Path(root) / spec["path"], samples, SAMPLE_RATE, subtype="PCM_16")
    return index, description


def write_zoo_corpus(out: str | Path, fsdd_dir: str | Path, seed: int = 0, workers: int = 2,
                     progress: bool = True, **sizes) -> Path:
    """Plan and render the zoo corpus into ``out`` (wav/ + manifest.csv); returns the manifest."""
    specs = plan_zoo(seed, list_variants(), fsdd_files(fsdd_dir), **sizes)
    return write_manifest(Path(out), render_specs(out, specs, seed, fsdd_dir, workers, progress))


def render_specs(out: str | Path, specs: list[ClipSpec], seed: int, fsdd_dir: str | Path,
                 workers: int = 2, progress: bool = True) -> list[ClipSpec]:
    """Render every planned clip into ``out``/wav (render streams keyed by ``seed`` and the
    clip's index); the specs with their drawn augmentation descriptions."""
    espeak_binary(), flite_binary(), festival_binary()  # fail before hours of work, not after
    root = Path(out)
    (root / "wav").mkdir(parents=True, exist_ok=True)
    jobs = [(asdict(s), i, seed, str(root), str(fsdd_dir)) for i, s in enumerate(specs)]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = pool.map(_render_job, jobs, chunksize=16)
            descriptions = dict(_collect(results, len(jobs), progress))
    else:
        descriptions = dict(_collect(map(_render_job, jobs), len(jobs), progress))
    return [replace(s, augment=descriptions[i]) for i, s in enumerate(specs)]


def _collect(iterable, total: int, progress: bool):
    if progress:
        from tqdm import tqdm
        iterable = tqdm(iterable, total=total, desc="rendering", mininterval=10)
    return list(iterable)


def test_set_of(spec: ClipSpec) -> str | None:
    """The unseen-speaker test set a clip belongs to (None outside the test split)."""
    return spec.source if spec.split == "test" else None


def describe(specs: list[ClipSpec]) -> list[dict]:
    """Clip and speaker counts per (split, source, speaker): the corpus table of RESULTS.md."""
    counts: dict[tuple, int] = {}
    for s in specs:
        key = (s.split, s.source, s.speaker)
        counts[key] = counts.get(key, 0) + 1
    return [dict(split=k[0], source=k[1], speaker=k[2], clips=v)
            for k, v in sorted(counts.items())]
