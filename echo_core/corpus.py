"""A synthetic spoken-digit corpus made with espeak-ng, and its cached training features.

Why synthetic: the shipped checkpoints must be reproducible on a 2-core CPU without downloads.
espeak-ng's accents x voice variants give ~800 distinct voices with pitch (-p) and speed (-s)
controls, which is exactly the variation vRoPE cares about. The corpus is split *by voice
variant* (a variant is the timbre/pitch-range preset after ``+``), so test voices, and even
their variants, are never heard in training.

    python -m echo_core.corpus --out data/digits --n 6000 --seed 0            # wavs + manifest
    python -m echo_core.corpus --out data/digits --features --n-mels 80 --fmax 8000  # cache
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import subprocess
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from echo_core.errors import EchoError

SAMPLE_RATE = 16000  # Hz, what the model pipeline expects (echo_core.audio.SAMPLE_RATE)
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "oh")
# espeak-ng English accents ("languages"); each combines with every variant.
ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd",
           "en-029", "en-us-nyc")
# Whispered variants have no F0 at all: useless for comparing pitch-aware rotary settings.
EXCLUDED_VARIANTS = frozenset({"whisper", "whisperf"})
PITCH_RANGE = (20, 95)  # espeak -p (0-99)
SPEED_RANGE = (120, 220)  # espeak -s, words per minute
MAX_WORDS = 7
MANIFEST = "manifest.csv"
TRIM_MARGIN_SECONDS = 0.08  # silence kept around the speech after trimming espeak's padding


class CorpusError(EchoError):
    """A corpus folder or synthesis request that cannot be used (missing manifest, no espeak-ng)."""


@dataclass(frozen=True)
class ClipSpec:
    """Everything needed to synthesise one clip; a manifest row."""

    path: str  # relative to the corpus folder
    text: str  # lowercase digit words separated by single spaces
    voice: str  # espeak voice "accent+variant"
    pitch: int
    speed: int
    split: str
    # Model-zoo corpus columns (defaults: an espeak clip as in the first corpus):
    source: str = "espeak"  # espeak, flite, festival, fsdd (isolated) or fsdd_spliced
    speaker: str = ""  # the person or voice behind it; splits never share one
    origin: str = ""  # FSDD file(s) a clip was made from, ";"-joined
    augment: str = ""  # augmentation chain applied (augment.random_chain's description)


def espeak_binary() -> str:
    """Path of espeak-ng, or CorpusError saying how to install it."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise CorpusError("espeak-ng was not found on PATH; install it (apt-get install espeak-ng)")
    return path


def list_variants(espeak: str | None = None) -> list[str]:
    """Sorted espeak-ng voice variants (``!v/name`` files), minus the whispered ones."""
    out = subprocess.run([espeak or espeak_binary(), "--voices=variant"], capture_output=True,
                         text=True, check=True).stdout
    names = set()
    for line in out.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 5 and fields[4].startswith("!v/"):
            names.add(fields[4][3:])
    return sorted(names - EXCLUDED_VARIANTS)


def split_variants(variants: list[str], seed: int, n_validation: int, n_test: int) -> dict[str, str]:
    """Assign each variant to one split (deterministic from ``seed``); variant -> split name."""
    if n_validation + n_test >= len(variants):
        raise CorpusError(f"{len(variants)} variants cannot hold {n_validation} validation and "
                          f"{n_test} test variants and still leave some for training")
    order = np.random.default_rng(seed).permutation(len(variants))
    names = [sorted(variants)[i] for i in order]
    split = {v: "test" for v in names[:n_test]}
    split.update({v: "validation" for v in names[n_test:n_test + n_validation]})
    split.update({v: "train" for v in names[n_test + n_validation:]})
    return split


def plan_corpus(n: int, seed: int, variants: list[str], n_validation: int = 8,
                n_test: int = 10) -> list[ClipSpec]:
    """The clip list: random digit strings, accents, variants, pitches and speeds from ``seed``.

    Variants are drawn uniformly, so each split's share of clips is its share of variants.
    """
    split_of = split_variants(variants, seed, n_validation, n_test)
    rng = np.random.default_rng([seed, 1])
    names = sorted(variants)
    specs = []
    for i in range(n):
        n_words = int(rng.integers(1, MAX_WORDS + 1))
        text = " ".join(DIGIT_WORDS[int(k)] for k in rng.integers(0, len(DIGIT_WORDS), n_words))
        variant = names[int(rng.integers(len(names)))]
        accent = ACCENTS[int(rng.integers(len(ACCENTS)))]
        specs.append(ClipSpec(
            path=f"wav/{i:05d}.wav", text=text, voice=f"{accent}+{variant}",
            pitch=int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1)),
            speed=int(rng.integers(SPEED_RANGE[0], SPEED_RANGE[1] + 1)),
            split=split_of[variant]))
    return specs


def trim_silence(samples: np.ndarray, sr: int, margin: float = TRIM_MARGIN_SECONDS,
                 threshold: float = 0.01) -> np.ndarray:
    """Cut espeak's leading/trailing silence (keeping ``margin`` s) so training sees fewer frames."""
    loud = np.flatnonzero(np.abs(samples) > threshold)
    if loud.size == 0:
        return samples
    pad = int(margin * sr)
    return samples[max(0, loud[0] - pad): loud[-1] + pad + 1]


def synthesize(text: str, voice: str, pitch: int, speed: int, sr: int = SAMPLE_RATE,
               espeak: str | None = None) -> np.ndarray:
    """Speak ``text`` with espeak-ng and return float32 mono samples at ``sr`` (silence trimmed)."""
    result = subprocess.run([espeak or espeak_binary(), "-v", voice, "-p", str(pitch), "-s",
                             str(speed), "--stdout", text], capture_output=True, check=False)
    if result.returncode != 0 or not result.stdout:
        raise CorpusError(f"espeak-ng failed for voice {voice!r}: {result.stderr.decode()[:200]}")
    samples, native_sr = sf.read(io.BytesIO(result.stdout), dtype="float32")
    if samples.ndim > 1:
        samples = samples.mean(axis=1)
    samples = soxr.resample(samples, native_sr, sr).astype(np.float32)
    return trim_silence(samples, sr)


def _write_clip(args: tuple[dict, str, str]) -> str:
    spec, root, espeak = args
    samples = synthesize(spec["text"], spec["voice"], spec["pitch"], spec["speed"], espeak=espeak)
    sf.write(Path(root) / spec["path"], samples, SAMPLE_RATE, subtype="PCM_16")
    return spec["path"]


def write_corpus(out: str | Path, n: int, seed: int = 0, workers: int = 2,
                 progress: bool = True) -> Path:
    """Synthesise the corpus into ``out`` (wav/ + manifest.csv); returns the manifest path."""
    espeak = espeak_binary()
    root = Path(out)
    (root / "wav").mkdir(parents=True, exist_ok=True)
    specs = plan_corpus(n, seed, list_variants(espeak))
    jobs = [(asdict(s), str(root), espeak) for s in specs]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = pool.map(_write_clip, jobs, chunksize=32)
            _consume(results, len(jobs), progress, "synthesising")
    else:
        _consume(map(_write_clip, jobs), len(jobs), progress, "synthesising")
    return write_manifest(root, specs)


def write_manifest(root: Path, specs) -> Path:
    """The corpus's manifest.csv: one row per clip (ClipSpec's fields, in order)."""
    manifest = root / MANIFEST
    with open(manifest, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(ClipSpec.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(asdict(s) for s in specs)
    return manifest


def _consume(iterable, total: int, progress: bool, desc: str) -> None:
    if progress:
        from tqdm import tqdm
        iterable = tqdm(iterable, total=total, desc=desc)
    for _ in iterable:
        pass


def read_manifest(root: str | Path) -> list[ClipSpec]:
    """Rows of ``root/manifest.csv`` as ClipSpecs."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise CorpusError(f"no {MANIFEST} in {root}; create the corpus with "
                          f"`python -m echo_core.corpus --out {root}`")
    with open(path, newline="") as f:
        return [ClipSpec(path=r["path"], text=r["text"], voice=r["voice"], pitch=int(r["pitch"]),
                         speed=int(r["speed"]), split=r["split"],
                         source=r.get("source") or "espeak", speaker=r.get("speaker") or "",
                         origin=r.get("origin") or "", augment=r.get("augment") or "")
                for r in csv.DictReader(f)]


# ---------------------------------------------------------------------------------------------
# Feature cache: log-mel + Praat F0 on the mel frames, computed once per feature setting.

def features_path(root: str | Path, n_mels: int, fmin: float, fmax: float | None) -> Path:
    """Cache file name carrying the feature settings, so a change of settings never reuses it."""
    return Path(root) / f"features_m{n_mels}_f{fmin:g}-{fmax if fmax is None else f'{fmax:g}'}.npz"


def clip_features(samples: np.ndarray, sr: int, n_mels: int, fmin: float,
                  fmax: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(log-mel (n_mels, T) float32, F0 on the mel frames (T,) Hz, NaN unvoiced) for one clip."""
    from echo_core.audio import log_mel
    from echo_core.pitch import align_to_frames, extract_f0

    mel = log_mel(samples, sr, n_mels=n_mels, fmin=fmin, fmax=fmax)
    f0 = align_to_frames(extract_f0(samples, sr), mel.shape[1])
    return mel, np.asarray(f0, dtype=np.float32)


def _clip_features_job(args: tuple[str, int, float, float | None]):
    path, n_mels, fmin, fmax = args
    samples, sr = sf.read(path, dtype="float32")
    return clip_features(samples, sr, n_mels, fmin, fmax)


def build_features(root: str | Path, n_mels: int, fmin: float = 0.0, fmax: float | None = None,
                   workers: int = 2, progress: bool = True) -> Path:
    """Compute and cache features for every manifest row; returns the cache path.

    Layout (one .npz): ``mel`` (n_mels, sum T) float16, ``f0`` (sum T,) float32 Hz with NaN for
    unvoiced, ``offsets`` (n + 1,) frame offsets of each clip, in manifest order.
    """
    root = Path(root)
    specs = read_manifest(root)
    jobs = [(str(root / s.path), n_mels, fmin, fmax) for s in specs]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(_progress(pool.map(_clip_features_job, jobs, chunksize=16),
                                     len(jobs), progress))
    else:
        results = list(_progress(map(_clip_features_job, jobs), len(jobs), progress))
    lengths = np.array([m.shape[1] for m, _ in results])
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    out = features_path(root, n_mels, fmin, fmax)
    np.savez(out, mel=np.concatenate([m for m, _ in results], axis=1).astype(np.float16),
             f0=np.concatenate([f for _, f in results]), offsets=offsets,
             settings=np.array([n_mels, fmin, np.nan if fmax is None else fmax]))
    return out


def _progress(iterable, total: int, progress: bool):
    if not progress:
        return iterable
    from tqdm import tqdm
    return tqdm(iterable, total=total, desc="features")


def load_features(root: str | Path, n_mels: int, fmin: float = 0.0, fmax: float | None = None,
                  build: bool = True, workers: int = 2):
    """(specs, mels list[(n_mels,T) float32], f0s list[(T,) Hz NaN unvoiced]) from the cache."""
    path = features_path(root, n_mels, fmin, fmax)
    if not path.is_file():
        if not build:
            raise CorpusError(f"no feature cache {path}; run `python -m echo_core.corpus --out "
                              f"{root} --features --n-mels {n_mels} ...`")
        build_features(root, n_mels, fmin, fmax, workers=workers)
    specs = read_manifest(root)
    data = np.load(path)
    offsets = data["offsets"]
    if len(offsets) != len(specs) + 1:
        raise CorpusError(f"{path} holds {len(offsets) - 1} clips but the manifest lists "
                          f"{len(specs)}; delete the cache to rebuild it")
    mel_all, f0_all = data["mel"], data["f0"]
    mels = [mel_all[:, a:b].astype(np.float32) for a, b in zip(offsets[:-1], offsets[1:])]
    f0s = [f0_all[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
    return specs, mels, f0s


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="corpus folder (wav/, manifest.csv)")
    parser.add_argument("--n", type=int, default=6000, help="number of clips")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--features", action="store_true",
                        help="(only) build the feature cache of an existing corpus")
    parser.add_argument("--n-mels", type=int, default=80)
    parser.add_argument("--fmin", type=float, default=0.0)
    parser.add_argument("--fmax", type=float, default=8000.0)
    parser.add_argument("--fsdd", default=None,
                        help="FSDD recordings folder: build the model-zoo corpus (espeak, flite, "
                             "festival, FSDD; echo_core.corpus_zoo) instead of espeak only, "
                             "then its feature cache")
    parser.add_argument("--sizes", default="{}",
                        help="JSON of corpus_zoo.plan_zoo sizes, e.g. '{\"n_espeak\": 2400}'")
    parser.add_argument("--confirm", type=int, default=0, metavar="DRAW",
                        help="with --fsdd: build only a confirmation set (echo_core."
                             "corpus_confirm): fresh test clips of the held-out voices of the zoo "
                             "corpus that --seed and --sizes build, from stream DRAW (>= 1)")
    args = parser.parse_args(argv)
    try:
        _run(args)
    except CorpusError as exc:  # a missing tool or folder, a bad size: a message, no traceback
        parser.error(str(exc))


def _run(args) -> None:
    if args.features:
        print(build_features(args.out, args.n_mels, args.fmin, args.fmax, workers=args.workers))
    elif args.fsdd:
        import json

        from echo_core.corpus_confirm import write_confirmation
        from echo_core.corpus_zoo import write_zoo_corpus
        sizes = json.loads(args.sizes)
        if args.confirm:
            print(write_confirmation(args.out, args.fsdd, args.seed, args.confirm, args.workers,
                                     main_sizes=sizes))
        else:
            print(write_zoo_corpus(args.out, args.fsdd, args.seed, workers=args.workers, **sizes))
        print(build_features(args.out, args.n_mels, args.fmin, args.fmax, workers=args.workers))
    else:
        print(write_corpus(args.out, args.n, args.seed, workers=args.workers))


if __name__ == "__main__":
    main()
