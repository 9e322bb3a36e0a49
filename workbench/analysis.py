"""Workbench orchestration without UI: clips, cached per-clip features, display-resolution maps,
and the model analysis behind the Model and Compare views.

Every function returns arrays, DataFrames or small dataclasses (``workbench.figures`` draws
them, ``workbench.ui`` wires them). Per-user state is only a small key: clips and everything
derived from them live in bounded LRU caches keyed by *content hash*, so sessions with the same
clip share work and no session can grow memory without bound. torch and the model code are
imported on first use, so the app starts without them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import tempfile
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from echo_core import audio, pitch, rotary
from echo_core import head_scores as hs
from echo_core.errors import (AudioError, CaptureError, CheckpointError, ConfigError, EchoError,
                              PitchSettingsError, RotaryError, TranscriptError, VoicingError)

REPO = Path(__file__).resolve().parent.parent
CLIPS_DIR = REPO / "assets" / "clips"
CHECKPOINTS_DIR = REPO / "assets" / "checkpoints"
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
SYNTHETIC_NAME = "synthetic glide (known F0)"
MAX_DISPLAY = 512  # largest side of any map sent to the browser
MEL_DISPLAY_FRAMES = 1600  # time columns of the spectrogram image
THETA_RANGE = (1e2, 1e6)  # what the log slider offers


# ============================================================================= caches

class LRU:
    """A small thread-safe least-recently-used cache (the queue runs callbacks in threads)."""

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        return None

    def put(self, key, value):
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
        return value

    def get_or_compute(self, key, compute: Callable[[], Any]):
        value = self.get(key)
        if value is None:
            value = self.put(key, compute())
        return value

    def __len__(self) -> int:
        return len(self._data)


CLIPS = LRU(16)  # clip key -> Clip
FEATURES = LRU(64)  # (clip key, what, settings) -> arrays
MODELS = LRU(4)  # (checkpoint id, fingerprint, overrides) -> Echo
RESULTS = LRU(12)  # result key -> ModelResult (attention maps pooled to <= 320 per side)


def content_key(*parts) -> str:
    """A short hash of arrays / strings / numbers: the identity of a clip or request."""
    h = hashlib.sha1()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(str(part.dtype).encode() + str(part.shape).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(repr(part).encode())
    return h.hexdigest()[:16]


# ============================================================================= clips

@dataclass(frozen=True)
class Clip:
    """A mono 16 kHz clip and its identity; everything else is derived and cached by ``key``."""

    key: str
    name: str
    samples: np.ndarray
    sr: int

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sr

    @property
    def n_frames(self) -> int:
        """Mel frames of the reference pipeline (centred STFT): 1 + len // hop."""
        return 1 + len(self.samples) // audio.HOP_LENGTH


def _register(samples: np.ndarray, sr: int, name: str) -> Clip:
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    key = content_key(samples, int(sr))
    clip = CLIPS.get(key)
    if clip is None or clip.name != name:  # same sound, new name: keep the arrays, show the name
        clip = CLIPS.put(key, Clip(key=key, name=name, samples=clip.samples if clip else samples,
                                   sr=int(sr)))
    return clip


def clip_from_path(path: str | Path, name: str | None = None) -> Clip:
    """Load an audio file (resampled to 16 kHz mono) and register it; AudioError if unusable."""
    a = audio.load_audio(str(path))
    return _register(a.samples, a.sr, name or Path(path).name)


def clip_from_array(sr: int, samples: np.ndarray, name: str = "recording") -> Clip:
    """Register samples from the browser (any rate, int or float, mono or stereo)."""
    a = audio.audio_from_array(np.asarray(samples), int(sr))
    return _register(a.samples, a.sr, name)


def get_clip(key: str | None) -> Clip:
    """The clip behind a session's key; a clear error when none was loaded or it was evicted."""
    if not key:
        raise AudioError("no clip loaded: upload or record audio, or pick an example clip")
    clip = CLIPS.get(key)
    if clip is None:
        raise AudioError(f"the clip is no longer in memory (the server keeps the {CLIPS.maxsize} "
                         "most recent): load it again")
    return clip


def example_clips() -> dict[str, str]:
    """Bundled example clips (assets/clips), name -> path, plus the synthetic known-F0 clip.

    Spoken-digit clips (what the shipped checkpoints were trained on) come first: the first
    entry is the clip the app opens with. The synthetic clip has no file (path "").
    """
    found = {}
    if CLIPS_DIR.is_dir():
        paths = [p for p in CLIPS_DIR.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES]
        for p in sorted(paths, key=lambda p: (not p.stem.startswith("digits"), p.stem)):
            found[p.stem] = str(p)
    found[SYNTHETIC_NAME] = ""
    return found


def synthetic_samples(seconds: float = 3.0, sr: int = audio.SAMPLE_RATE,
                      f0_start: float = 110.0, f0_end: float = 220.0,
                      gap: tuple[float, float] = (0.45, 0.55)) -> tuple[np.ndarray, np.ndarray]:
    """A vowel-like harmonic tone gliding f0_start -> f0_end with a silent (unvoiced) gap.

    Returns (samples, true F0 per sample, NaN in the gap): a clip whose pitch is known, for the
    examples and for tests.
    """
    t = np.arange(int(seconds * sr)) / sr
    f0 = f0_start * (f0_end / f0_start) ** (t / seconds)  # exponential glide
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = np.zeros_like(t)
    for h in range(1, 30):  # harmonics shaped by three formants
        fh = h * f0
        gain = sum(np.exp(-((fh - f) / 150.0) ** 2) for f in (700.0, 1200.0, 2600.0)) + 0.05 / h
        x += np.where(fh < sr / 2 - 500, gain, 0.0) * np.sin(h * phase)
    silent = (t >= gap[0] * seconds) & (t < gap[1] * seconds)
    x[silent] = 0.0
    x = 0.5 * x / np.max(np.abs(x))
    return x.astype(np.float32), np.where(silent, np.nan, f0)


def synthetic_clip(seconds: float = 3.0) -> Clip:
    samples, _ = synthetic_samples(seconds)
    return _register(samples, audio.SAMPLE_RATE, SYNTHETIC_NAME)


def load_example(name: str) -> Clip:
    """An example clip by its name in :func:`example_clips`."""
    examples = example_clips()
    if name not in examples:
        raise AudioError(f"unknown example {name!r}; available: {', '.join(examples)}")
    if name == SYNTHETIC_NAME:
        return synthetic_clip()
    return clip_from_path(examples[name], name)


def warm_up() -> None:
    """Run the feature pipeline once on a short tone (the first librosa / Praat calls are slow)
    so the first visitor does not wait for it. app.py calls it in a background thread."""
    samples, _ = synthetic_samples(0.5)
    audio.log_mel(samples)
    pitch.extract_f0(samples, audio.SAMPLE_RATE)


# ============================================================================= pitch & features

PRAAT_FIELDS = tuple(f.name for f in dataclasses.fields(pitch.PraatSettings))


def praat_settings(**fields) -> pitch.PraatSettings:
    """Validated Praat settings from UI fields (the time step stays at the 8 ms mel hop)."""
    unknown = sorted(set(fields) - set(PRAAT_FIELDS))
    if unknown:
        raise PitchSettingsError(f"unknown Praat settings {unknown}; accepted: "
                                 f"{', '.join(PRAAT_FIELDS)}")
    return pitch.PraatSettings(**fields).validate()


def _settings_key(settings: pitch.PraatSettings | None) -> tuple:
    return dataclasses.astuple(settings or pitch.PraatSettings())


def f0_track(clip: Clip, settings: pitch.PraatSettings | None = None) -> pitch.F0Track:
    """Praat F0 of a clip (cached per clip and settings)."""
    key = (clip.key, "f0", _settings_key(settings))
    return FEATURES.get_or_compute(key, lambda: pitch.extract_f0(clip.samples, clip.sr, settings))


def frame_f0(clip: Clip, settings: pitch.PraatSettings | None = None) -> np.ndarray:
    """F0 on the mel frame grid (n_frames,), NaN unvoiced, aligned by time."""
    key = (clip.key, "frame_f0", _settings_key(settings))
    return FEATURES.get_or_compute(
        key, lambda: pitch.align_to_frames(f0_track(clip, settings), clip.n_frames))


def mel(clip: Clip, n_mels: int = audio.N_MELS, fmin: float = 0.0,
        fmax: float | None = None) -> np.ndarray:
    """Log-mel features (n_mels, T) of the reference pipeline, cached."""
    key = (clip.key, "mel", n_mels, fmin, fmax)
    return FEATURES.get_or_compute(
        key, lambda: audio.log_mel(clip.samples, clip.sr, n_mels=n_mels, fmin=fmin, fmax=fmax))


def mel_band_hz(n_mels: int = audio.N_MELS, fmin: float = 0.0, fmax: float | None = None,
                sr: int = audio.SAMPLE_RATE) -> np.ndarray:
    """Centre frequency (Hz) of each HTK mel band, for labelling the spectrogram axis."""
    fmax = sr / 2 if fmax is None else fmax
    mel_lo, mel_hi = (2595.0 * np.log10(1 + f / 700.0) for f in (fmin, fmax))
    edges = np.linspace(mel_lo, mel_hi, n_mels + 2)
    return 700.0 * (10 ** (edges[1:-1] / 2595.0) - 1)


def mel_display(clip: Clip, max_frames: int = MEL_DISPLAY_FRAMES
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mel image (n_mels, <= max_frames), frame times (s), band centres (Hz)) for the pitch view.

    Long clips are reduced by max-pooling groups of frames so short bright events survive.
    """
    m = mel(clip)
    times = audio.frame_times(m.shape[1])
    if m.shape[1] > max_frames:
        group = math.ceil(m.shape[1] / max_frames)
        n = m.shape[1] // group * group
        m = m[:, :n].reshape(m.shape[0], -1, group).max(axis=2)
        times = times[:n].reshape(-1, group).mean(axis=1)
    return m.astype(np.float32), times, mel_band_hz(m.shape[0])


def f0_statistics_table(track) -> pd.DataFrame:
    """The F0 statistics as a (statistic, value, unit) table, formatted for reading."""
    units = dict(median="Hz", mean="Hz", min="Hz", max="Hz", std="Hz", n_frames="frames",
                 n_voiced="frames")
    rows = []
    for name, value in pitch.f0_statistics(track).items():
        v = float(value)
        if not np.isfinite(v):
            text = "—"
        elif name.startswith("n_"):
            text = f"{int(v)}"
        else:
            text = f"{v:.3f}" if name == "voiced_fraction" else f"{v:.1f}"
        rows.append({"statistic": name.replace("_", " "), "value": text,
                     "unit": units.get(name, "")})
    return pd.DataFrame(rows)


def f0_table(track) -> pd.DataFrame:
    """The F0 track as a table (time_s, f0_hz with NaN unvoiced), for CSV export."""
    return pd.DataFrame({"time_s": np.asarray(track.times), "f0_hz": np.asarray(track.hz)})


def f0_csv(track) -> str:
    return pitch.f0_to_csv(track)


# ============================================================================= rotary

def theta_from_slider(log10_theta: float) -> float:
    """Theta from the log slider, checked against the range the UI offers."""
    theta = 10.0 ** float(log10_theta)
    if not THETA_RANGE[0] * 0.999 <= theta <= THETA_RANGE[1] * 1.001:
        raise RotaryError(f"theta must be between {THETA_RANGE[0]:g} and {THETA_RANGE[1]:g}, "
                          f"got {theta:g}")
    return theta


def clip_theta(f0_frames: np.ndarray, theta: float) -> float:
    """The clip's pitch-modulated theta (mean F0 of voiced frames, see rotary.theta_from_f0)."""
    return rotary.theta_from_f0(f0_frames, theta)


def similarity_display(n_frames: int, head_dim: int, theta: float,
                       f0_frames: np.ndarray | None = None, mode: str = "static",
                       max_size: int = MAX_DISPLAY, radius: np.ndarray | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(positions (R,), similarity (R, R) float32) of one rotary setting at display resolution.

    mode: "static" (theta as given), "mean_f0" (the reference: theta modulated by the clip's
    mean F0), "per_frame" (angle accumulated frame by frame from a per-frame theta).
    ``radius`` (d/2,) weights the channel pairs (the variable-radius variant).
    """
    if mode not in ("static", "mean_f0", "per_frame"):
        raise RotaryError(f"unknown similarity mode {mode!r}; accepted: static, mean_f0, "
                          "per_frame")
    if mode != "static" and f0_frames is None:
        raise RotaryError(f"mode {mode!r} needs the clip's F0")
    positions, sim = rotary.display_similarity(
        n_frames, head_dim, theta, f0=None if mode == "static" else f0_frames,
        max_size=max_size, per_frame=mode == "per_frame", radius=radius)
    return positions, np.asarray(sim, dtype=np.float32)


def pair_radius(head_dim: int, tilt: float) -> np.ndarray:
    """Illustrative per-pair radius r_k = exp(tilt * (k / (d/2) - 1/2)), k = 0 the fastest pair.

    tilt > 0 weights the slow pairs (long range, wide bands), tilt < 0 the fast ones (narrow
    bands), 0 is the plain rotary. A model with ``variable_radius`` learns such a profile.
    """
    half = rotary.check_head_dim(head_dim) // 2
    if not math.isfinite(tilt):
        raise RotaryError(f"radius tilt must be a finite number, got {tilt!r}")
    return np.exp(float(tilt) * (np.arange(half) / half - 0.5))


def f0_position_radius(f0_frames: np.ndarray) -> np.ndarray:
    """A radius per position from pitch: F0 / max voiced F0, 0 where unvoiced (the model's F0 is
    0 there). It cancels out of a cosine similarity, so it is shown on the dot product."""
    f0 = np.asarray(f0_frames, dtype=np.float64)
    voiced = rotary.voiced_mask(f0)
    rho = np.zeros(f0.size)
    if voiced.any():
        rho[voiced] = f0[voiced] / f0[voiced].max()
    return rho


def dot_product_display(n_frames: int, head_dim: int, theta: float, f0_frames: np.ndarray,
                        max_size: int = MAX_DISPLAY) -> tuple[np.ndarray, np.ndarray]:
    """Unnormalised rotary dot product rho_i rho_j s(i - j) with the F0 radius, sampled.

    Equals rotary.position_dot_product(..., radius_per_position=rho) at the sampled positions,
    without the full n x n matrix.
    """
    positions, sim = similarity_display(n_frames, head_dim, theta, f0_frames, "mean_f0",
                                        max_size)
    rho = f0_position_radius(f0_frames)[positions]
    return positions, (sim * rho[:, None] * rho[None, :]).astype(np.float32)


def sweep_maps(thetas: Sequence[float], pitches: Sequence[float | None], n_positions: int = 96,
               head_dim: int = 64) -> np.ndarray:
    """(len(thetas), len(pitches), n, n) similarity maps for a theta x mean-F0 grid (cached).

    A pitch of None is the static rotary (no F0 modulation).
    """
    key = ("sweep", tuple(float(t) for t in thetas), tuple(pitches), n_positions, head_dim)

    def compute():
        out = np.empty((len(thetas), len(pitches), n_positions, n_positions), dtype=np.float32)
        for i, theta in enumerate(thetas):
            for j, hz in enumerate(pitches):
                out[i, j] = rotary.position_similarity(n_positions, head_dim, theta=theta,
                                                       f0=None if hz is None else float(hz))
        return out

    return FEATURES.get_or_compute(key, compute)


def distance_curves(settings: Sequence[tuple[str, float, Any]], max_lag: int, head_dim: int
                    ) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(label, lags, similarity) for each (label, theta, F0 contour / Hz / None) setting."""
    curves = []
    for label, theta, f0 in settings:
        lags, sim = rotary.similarity_vs_distance(max_lag, head_dim, theta=theta, f0=f0)
        curves.append((label, np.asarray(lags), np.asarray(sim, dtype=np.float64)))
    return curves


# ============================================================================= pitch bias

def bias_display(f0_frames: np.ndarray, scale: float, positions: np.ndarray) -> np.ndarray:
    """The reference pitch bias at the sampled ``positions``, z-scored over *all* voiced frames.

    |z_i - z_j| = |f_i - f_j| / (std + eps), so calling rotary.pitch_bias on the sampled contour
    with the scale multiplied by (std_sampled + eps) / (std_all + eps) gives exactly the full
    (n, n) map sampled, without building it.
    """
    if not math.isfinite(scale) or scale < 0:
        raise RotaryError(f"bias scale must be a finite number >= 0, got {scale!r}")
    f0_frames = np.asarray(f0_frames, dtype=np.float64)
    positions = np.asarray(positions)
    if len(positions) == len(f0_frames):
        return np.asarray(rotary.pitch_bias(f0_frames, scale), dtype=np.float32)
    sub = f0_frames[positions]
    voiced_all, voiced_sub = rotary.voiced_mask(f0_frames), rotary.voiced_mask(sub)
    if voiced_all.sum() < 2 or voiced_sub.sum() < 2:
        return np.asarray(rotary.pitch_bias(sub, scale), dtype=np.float32)
    eps = rotary.PITCH_BIAS_EPS
    std_all = float(np.std(f0_frames[voiced_all], ddof=1)) + eps
    std_sub = float(np.std(sub[voiced_sub], ddof=1)) + eps
    return np.asarray(rotary.pitch_bias(sub, scale * std_sub / std_all), dtype=np.float32)


def combined_prior(similarity: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """What a head sees before any learning: rotary similarity plus the additive pitch bias."""
    if similarity.shape != bias.shape:
        raise RotaryError(f"similarity {similarity.shape} and bias {bias.shape} differ in shape")
    return np.asarray(similarity, dtype=np.float32) + np.asarray(bias, dtype=np.float32)


# ============================================================================= checkpoints

ATTENTION_KINDS = ("encoder self-attention", "decoder self-attention",
                   "decoder cross-attention")
ACTIVATION_NAMES = ["gelu", "relu", "sigmoid", "tanh", "swish", "tanhshrink", "softplus",
                    "softshrink", "leaky_relu", "elu"]
OVERRIDE_FIELDS = ("act", "f0_rotary", "decoder_mask")  # what a bare state dict cannot tell
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")
ATTENTION_DISPLAY = 320  # attention maps are kept at most this size per side
REFERENCE_MEL_RANGE = {"fmin": 150.0, "fmax": 2000.0}  # echo_reference.md, feature extraction
MAX_MODEL_SECONDS = 30.0  # attention maps grow with T^2: 30 s already means 3750^2 scores
UPLOAD_ROOT = Path(tempfile.gettempdir()) / "echo-workbench-uploads"
MAX_REGISTERED = 8
_REGISTERED: OrderedDict[str, dict] = OrderedDict()  # id -> {path, label, overrides, public}
_REGISTERED_LOCK = threading.Lock()
_MODEL_LOCK = threading.Lock()  # hooks attach to a shared model: one capture at a time
MODEL_THREADS = 1  # torch intra-op threads during a model run (see run_model)
MASK_WARNING = ("⚠️ **This checkpoint uses the reference's non-causal (additive) decoder "
                "mask**: the mask is *added* to the scores (+1 on and below the diagonal), so "
                "every token can attend to future tokens. Teacher-forced statistics therefore see "
                "the whole transcript, and greedy decoding runs the model differently from how "
                "it was trained.")


def shipped_checkpoints() -> dict[str, Path]:
    """Folders of assets/checkpoints that hold weights, by name."""
    found = {}
    if CHECKPOINTS_DIR.is_dir():
        for p in sorted(CHECKPOINTS_DIR.iterdir()):
            if p.is_dir() and any((p / f).is_file() for f in ("model.safetensors",
                                                               "pytorch_model.bin")):
                found[p.name] = p
    return found


def checkpoint_choices(session_uploads: Sequence[str] = ()) -> list[tuple[str, str]]:
    """(label, id) pairs for the radios: shipped checkpoints, public registrations (tests, an
    operator), then the uploads of *this* session (other users' uploads stay invisible)."""
    choices = [(name, f"shipped/{name}") for name in shipped_checkpoints()]
    with _REGISTERED_LOCK:
        choices += [(info["label"], cid) for cid, info in _REGISTERED.items()
                    if info["public"] or cid in session_uploads]
    return choices


def _resolve(checkpoint_id: str) -> tuple[Path, dict, str]:
    """(path, overrides fixed at registration, label) of a known id; nothing else is loaded."""
    if isinstance(checkpoint_id, str) and checkpoint_id.startswith("shipped/"):
        shipped = shipped_checkpoints()
        name = checkpoint_id.split("/", 1)[1]
        if name in shipped:
            return shipped[name], {}, name
    with _REGISTERED_LOCK:
        info = _REGISTERED.get(checkpoint_id)
    if info is not None:
        return Path(info["path"]), dict(info["overrides"]), info["label"]
    known = [cid for _, cid in checkpoint_choices()]
    raise CheckpointError(f"unknown checkpoint {checkpoint_id!r}; accepted: one of "
                          f"{known or 'none available'} or an upload of this session (uploads "
                          "are forgotten after a while: upload again)")


def _fingerprint(path: Path) -> tuple:
    """Changes when the weights on disk change (a re-trained shipped checkpoint)."""
    files = [path] if path.is_file() else [path / n for n in ("model.safetensors",
                                                              "pytorch_model.bin", "config.json")]
    return tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files if f.exists())


def _check_overrides(overrides: dict) -> dict:
    unknown = sorted(set(overrides) - set(OVERRIDE_FIELDS))
    if unknown:
        raise ConfigError(f"unknown override(s) {unknown}; accepted: "
                          f"{', '.join(OVERRIDE_FIELDS)}")
    return dict(sorted(overrides.items()))


def _model_key(checkpoint_id: str, overrides: dict) -> tuple:
    path, fixed, _ = _resolve(checkpoint_id)
    merged = _check_overrides({**fixed, **overrides})
    return checkpoint_id, _fingerprint(path), tuple(merged.items())


def load_model(checkpoint_id: str, overrides: dict | None = None):
    """The checkpoint as an Echo in eval mode (cached per id, file version and overrides)."""
    from echo_core.checkpoint import load_checkpoint

    key = _model_key(checkpoint_id, overrides or {})
    path = _resolve(checkpoint_id)[0]
    return MODELS.get_or_compute(key, lambda: load_checkpoint(path, **dict(key[2])))


def register_checkpoint(path: str | Path, label: str, overrides: dict | None = None,
                        public: bool = True) -> str:
    """Make a checkpoint folder or file selectable; loads it once to validate. ``public``: listed
    for every session (tests, an operator); uploads are private to the session that sent them."""
    overrides = _check_overrides(overrides or {})
    cid = "upload/" + content_key(str(Path(path).resolve()), tuple(overrides.items()))
    with _REGISTERED_LOCK:
        _REGISTERED[cid] = dict(path=str(path), label=label, overrides=overrides, public=public)
        _REGISTERED.move_to_end(cid)
    try:
        load_model(cid)
    except Exception:
        with _REGISTERED_LOCK:
            _REGISTERED.pop(cid, None)
        raise
    with _REGISTERED_LOCK:
        while len(_REGISTERED) > MAX_REGISTERED:
            _REGISTERED.popitem(last=False)
    return cid


def register_upload(paths: Sequence[str], overrides: dict | None = None) -> str:
    """Copy uploaded files (weights, config.json, tokenizer.json) into a content-addressed folder
    and register it, private to the uploader. A project folder is recognised by config.json or a
    canonical weights name; otherwise the one weights file is read as a bare (reference) state
    dict, whose ``act`` / ``f0_rotary`` / ``decoder_mask`` come from ``overrides``."""
    import shutil

    from echo_core.checkpoint import WEIGHT_FILES

    files = [Path(p) for p in paths if p]
    weights = [p for p in files if p.suffix.lower() in WEIGHT_SUFFIXES]
    if len(weights) != 1:
        raise CheckpointError(f"upload exactly one weights file ({', '.join(WEIGHT_SUFFIXES)}), "
                              f"got {len(weights)}; config.json and tokenizer.json may go with it")
    h = hashlib.sha1()
    for p in sorted(files, key=lambda p: p.name):
        h.update(p.name.encode())
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    folder = UPLOAD_ROOT / h.hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    for p in files:
        if not (folder / p.name).exists():
            shutil.copyfile(p, folder / p.name)
    name = weights[0].name
    is_folder = (folder / "config.json").is_file() or name in WEIGHT_FILES
    return register_checkpoint(folder if is_folder else folder / name,
                               f"uploaded: {name} ({h.hexdigest()[:6]})", overrides, public=False)


# ============================================================================= model analysis

@dataclass
class ModelResult:
    """Everything the Model and Compare views show for one (clip, checkpoint, settings)."""

    key: str
    label: str
    checkpoint: str
    clip_name: str
    dims: dict
    meta: dict
    overrides: dict
    transcript: str  # greedy
    teacher_text: str  # what the gradient step was teacher-forced on
    teacher_source: str
    loss: float
    activations: pd.DataFrame
    gradients: pd.DataFrame
    gates: pd.DataFrame
    report: str
    attention: dict  # kind -> [per layer {"scores", "weights": (H, q, k), "shape"} or None]
    axes: dict  # kind -> (x title, y title, x labels or None, y labels or None)
    bias: np.ndarray | None  # pitch bias of the first encoder layer, sampled
    bias_f0: np.ndarray | None  # F0 at the sampled positions
    bias_applied: bool
    learned: pd.DataFrame
    warnings: list
    praat: dict
    head_scores: pd.DataFrame | None = None  # head_scores.head_score_table, None if not scored
    head_scores_error: str = ""  # why there are no scores (e.g. the VoicingError message)

    @property
    def expected_ratio(self) -> float:
        g = self.gates["init_expected_ratio"]
        return float(g.iloc[0]) if len(g) else float("nan")

    def warning_markdown(self) -> str:
        return MASK_WARNING if self.dims.get("decoder_mask") == "additive" else ""

    def info_markdown(self) -> str:
        d = self.dims
        test = self.meta.get("test") or {}
        score = f" · test WER {test['wer']:.3f}, CER {test['cer']:.3f}" if "wer" in test else ""
        theta = (f"pitch-modulated θ ({d.get('theta_mode', 'mean_f0')}, F0 mean over "
                 f"{'voiced frames' if d.get('f0_mean') == 'voiced' else 'all frames'})"
                 if d.get("f0_rotary") else "learned inv_freq (no F0)")
        bias = "pitch bias **on**" if d.get("pitch_bias") else "pitch bias off"
        return (f"**{self.label}** ({self.meta.get('source', '?')}) on *{self.clip_name}*: "
                f"{d['aud_idx']} encoder + {d['text_idx']} decoder layers, d={d['aud_dims']}, "
                f"{d['aud_head']} heads, {d['mels']} mels · {theta} · {bias} · decoder mask "
                f"`{d.get('decoder_mask')}`{score}  \nGradient step: teacher-forced on the "
                f"{self.teacher_source} “{self.teacher_text}” (loss {self.loss:.3f})."
                + "".join(f"  \n⚠️ {w}" for w in self.warnings))

    def gates_display(self) -> pd.DataFrame:
        g = self.gates
        return pd.DataFrame({"status": g["status"], "block": g["block"], "ratio": g["ratio"],
                             "at init": g["init_expected_ratio"], "gate mean": g["gate_mean"],
                             "MLP mean": g["mlp_mean"],
                             "sparsity diff": g["sparsity_difference"]})

    def tables(self) -> dict[str, pd.DataFrame]:
        out = {"component_statistics_activations": self.activations,
               "component_statistics_gradients": self.gradients,
               "gate_mlp_ratios": self.gates, "learned_rotary_scalars": self.learned}
        if self.head_scores is not None:
            out["head_scores"] = self.head_scores
        return out

    @property
    def pitch_bias_in_scores(self) -> bool:
        """Whether some head's scores had the pitch bias added (its pitch score is partly
        built in, not learned)."""
        return self.head_scores is not None and bool(
            self.head_scores["note"].str.contains(PITCH_BIAS_NOTE, regex=False).any())

    def head_score_markdown(self) -> str:
        """What the head-score plot cannot say by itself: missing scores, built-in alignment."""
        if self.head_scores is None:
            return f"⚠️ No per-head scores for this clip: {self.head_scores_error}"
        if self.pitch_bias_in_scores:
            return ("⚠️ **This model adds the pitch bias to its attention scores** "
                    "(`pitch_bias` on): high pitch alignment of those heads is partly built "
                    "in, not learned. Rows concerned say so in the `note` column.")
        return ""

    def settings(self) -> dict:
        return {"checkpoint": self.checkpoint, "label": self.label, "overrides": self.overrides,
                "dims": self.dims, "teacher_text": self.teacher_text,
                "teacher_source": self.teacher_source, "praat": self.praat}


def get_result(key: str | None) -> ModelResult:
    result = RESULTS.get(key) if key else None
    if result is None:
        raise EchoError("no model analysis in memory: press “Run the model on the clip” first")
    return result


def _pool(a: np.ndarray, size: int) -> np.ndarray:
    """Mean-pool the last two axes to at most ``size`` each (softmax mass survives pooling)."""
    out = np.asarray(a, dtype=np.float32)
    for axis in (out.ndim - 2, out.ndim - 1):
        n = out.shape[axis]
        if n <= size:
            continue
        group = math.ceil(n / size)
        blocks = math.ceil(n / group)
        widths = [(0, 0)] * out.ndim
        widths[axis] = (0, group * blocks - n)
        out = np.pad(out, widths, mode="edge")
        shape = out.shape[:axis] + (blocks, group) + out.shape[axis + 1:]
        out = out.reshape(shape).mean(axis=axis + 1)
    return out


def _attention_by_kind(cache, feature: str) -> dict:
    """{kind: [layer maps]} from a full-depth capture (None for a layer too large to keep)."""
    patterns = {"encoder self-attention": rf"^encoder\.blocks\.{feature}\.(\d+)\.attna$",
                "decoder self-attention": r"^decoder\._blocks\.(\d+)\.attna$",
                "decoder cross-attention": rf"^decoder\.blocks\.{feature}\.(\d+)\.attnb$"}
    paths = set(cache.attention) | {d["path"] for d in cache.dropped}
    out = {}
    for kind, pattern in patterns.items():
        names = sorted((p for p in paths if re.match(pattern, p)),
                       key=lambda p: int(re.match(pattern, p).group(1)))
        layers = []
        for path in names:
            calls = cache.attention.get(path)
            if not calls:
                layers.append(None)
                continue
            call = calls[-1]
            layer = {w: _pool(call[w][0].float().numpy(), ATTENTION_DISPLAY)  # (H, q, k)
                     for w in ("scores", "weights")}
            layer["shape"] = tuple(call["scores"].shape[-2:])  # (queries, keys) before pooling
            layers.append(layer)
        out[kind] = layers
    return out


def _learned_table(model, f0_model: np.ndarray | None) -> pd.DataFrame:
    """Learned rotary scalars of every attention module, and theta_eff on this clip."""
    import torch

    from echo_core.checkpoint import implied_theta
    from echo_core.model import MultiheadA, Residual

    mean_f0 = None
    if f0_model is not None:  # the model's own rule: voiced frames only, or zeros included
        voiced = f0_model[f0_model > 0]
        voiced_mean = float(voiced.mean()) if voiced.size else 0.0
        by_voiced = getattr(model.dims, "f0_mean", "batch") == "voiced"
        mean_f0 = voiced_mean if by_voiced else float(np.mean(f0_model))
    blends = {p: float(torch.sigmoid(m.blend.detach())) for p, m in model.named_modules()
              if isinstance(m, Residual)}
    rows = []
    for path, m in model.named_modules():
        if not isinstance(m, MultiheadA):
            continue
        rope = m.rope
        theta = float(rope.theta.detach())
        row = {"module": path, "theta": theta,
               "theta_eff (this clip)": (float(rotary.theta_eff(theta, mean_f0))
                                         if model.dims.f0_rotary and mean_f0 is not None
                                         else np.nan),
               "inv_freq implied theta": implied_theta(rope.inv_freq.detach()),
               "pitch_scale": float(rope.pitch_scale.detach()),
               "fzero": float(m.fzero.detach()),
               "blend sigmoid": blends.get(path.rsplit(".", 1)[0], np.nan)}
        if getattr(rope, "radius", None) is not None:
            row["radius mean"] = float(rope.radius.detach().mean())
        rows.append(row)
    return pd.DataFrame(rows)


def _features(model, clip: Clip, warnings: list) -> np.ndarray:
    """The log-mel the checkpoint was trained on (meta["features"]), or for a bare reference
    state dict its mel count over the reference run's 150-2000 Hz filterbank."""
    from echo_core import decode

    if "features" in (model.meta or {}):
        feats = decode.feature_settings(model)
    else:
        feats = dict(n_mels=model.dims.mels, **REFERENCE_MEL_RANGE)
        warnings.append(f"No feature settings stored with this checkpoint: using "
                        f"{model.dims.mels} mels from {feats['fmin']:g} to {feats['fmax']:g} Hz "
                        "(the reference training run's filterbank).")
    return mel(clip, int(feats["n_mels"]), float(feats["fmin"]), feats["fmax"])


@contextmanager
def _torch_threads(n: int):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_model(clip: Clip, settings: pitch.PraatSettings | None, checkpoint_id: str,
              overrides: dict | None = None, transcript: str = "",
              progress: Callable[[float, str], None] | None = None) -> ModelResult:
    """Greedy transcript, then one teacher-forced forward + backward under ``hooks.capture``.

    The teacher text is the user's transcript, or the model's own greedy output when empty.
    F0 uses the session's Praat settings; pitch.f0_for_model turns NaN into the model's 0 only
    here, at the model's door. Cached per clip, settings, checkpoint version and transcript.
    """
    overrides = _check_overrides(overrides or {})
    if clip.duration > MAX_MODEL_SECONDS:
        raise AudioError(f"the clip is {clip.duration:.1f} s long; model analysis accepts clips "
                         f"up to {MAX_MODEL_SECONDS:g} s (attention maps grow with the square of "
                         "the length): trim it or pick a shorter one")
    key = content_key(clip.key, _settings_key(settings), _model_key(checkpoint_id, overrides),
                      transcript.strip())
    cached = RESULTS.get(key)
    if cached is not None:
        return cached
    progress = progress or (lambda fraction, what: None)
    import torch

    from echo_core import decode, hooks
    from echo_core.tokenizer import BOS, EOS

    progress(0.05, "loading the checkpoint")
    model = load_model(checkpoint_id, overrides)
    dims, warnings = model.dims, []
    spec = torch.from_numpy(_features(model, clip, warnings))[None]  # (1, n_mels, T)
    f0_frames = frame_f0(clip, settings)
    f0_model = pitch.f0_for_model(f0_frames)
    uses_f0 = decode.model_uses_f0(model)
    f0_t = torch.from_numpy(f0_model)[None] if uses_f0 else None  # (1, T), 0 = unvoiced
    try:
        tokenizer = decode.load_tokenizer(model)
    except EchoError:
        tokenizer = None
        warnings.append("No tokenizer.json beside this checkpoint: transcripts are token ids.")

    # One intra-op thread: the queue already runs two callbacks on the machine's two cores, and
    # an oversubscribed torch (2 threads beside other busy processes) measured 10x slower.
    with _MODEL_LOCK, _torch_threads(MODEL_THREADS):
        progress(0.2, "greedy decoding")
        ids = decode.greedy_ids(model, spec, f0_t)[0]
        greedy = tokenizer.decode(ids) if tokenizer else " ".join(map(str, ids))
        if transcript.strip():
            if tokenizer is None:
                raise TranscriptError("this checkpoint has no tokenizer, so a typed transcript "
                                      "cannot be tokenised; leave the box empty to use the "
                                      "model's own output")
            teacher_ids = tokenizer.encode(transcript)
            teacher_text, source = tokenizer.normalize(transcript), "typed transcript"
        else:
            teacher_ids, teacher_text, source = list(ids), greedy, "model's greedy transcript"
        if len(teacher_ids) > dims.text_ctx - 1:
            raise TranscriptError(f"the transcript has {len(teacher_ids)} tokens; this model "
                                  f"reads at most {dims.text_ctx - 1} (text_ctx minus the start "
                                  "token)")
        inputs = dict(input_ids=torch.tensor([[BOS] + teacher_ids]),
                      labels=torch.tensor([teacher_ids + [EOS]]), f0=f0_t,
                      spectrogram=spec if "spectrogram" in dims.features else None)
        if "waveform" in dims.features:
            inputs["waveform"] = torch.from_numpy(clip.samples)[None]
        if "pitch" in dims.features:
            inputs["pitch"] = torch.from_numpy(f0_model)[None]
        progress(0.5, "teacher-forced forward + backward with hooks")
        model.zero_grad(set_to_none=True)
        try:
            with hooks.capture(model, depth="full", gradients=True) as cache, \
                    torch.enable_grad():
                out = model(**inputs)
                out["loss"].backward()
        finally:
            model.zero_grad(set_to_none=True)

    progress(0.8, "statistics and maps")
    tokens = ["<bos>"] + [tokenizer.decode([i]) if tokenizer else str(i) for i in teacher_ids]
    labels = np.array([f"{i}:{t if t.strip() else '␣'}" for i, t in enumerate(tokens)])
    step_ms = 1000 * audio.FRAME_SECONDS * getattr(dims, "spec_stride", 1)  # one encoder position
    axes = {"encoder self-attention": (f"key position ({step_ms:g} ms)",
                                       f"query position ({step_ms:g} ms)", None, None),
            "decoder self-attention": ("key token", "query token", labels, labels),
            "decoder cross-attention": (f"audio position ({step_ms:g} ms)", "query token", None,
                                        labels)}
    if cache.dropped:
        warnings.append(f"{len(cache.dropped)} attention map(s) were too large to keep for this "
                        "clip; they are shown as missing.")
    bias, bias_f0, applied = None, None, False
    first = next((p for p in cache.attention if p.startswith("encoder.")
                  and p.endswith(".attna")), None)
    if first and cache.attention[first] and cache.attention[first][-1].get("pitch_bias") is not None:
        call = cache.attention[first][-1]
        full = call["pitch_bias"][0, 0].float().numpy()  # (T, T), scaled as the model adds it
        pos = rotary.display_positions(full.shape[0], MAX_DISPLAY)
        bias = full[np.ix_(pos, pos)].astype(np.float32)
        frames = np.minimum(((pos + 0.5) * len(f0_frames) / full.shape[0]).astype(int),
                            len(f0_frames) - 1)  # the model maps F0 frames to positions by time
        bias_f0, applied = f0_frames[frames], bool(call.get("pitch_bias_applied"))
    result = ModelResult(
        key=key, label=_resolve(checkpoint_id)[2], checkpoint=checkpoint_id,
        clip_name=clip.name, dims=dims.to_dict(),
        meta={k: v for k, v in (model.meta or {}).items() if k not in ("path", "weights")},
        overrides=overrides, transcript=greedy, teacher_text=teacher_text,
        teacher_source=source, loss=float(out["loss"].detach()),
        activations=hooks.component_statistics(cache, "activations"),
        gradients=hooks.component_statistics(cache, "gradients"),
        gates=hooks.gate_mlp_ratios(cache), report=hooks.format_report(cache),
        attention=_attention_by_kind(cache, dims.features[0]), axes=axes, bias=bias,
        bias_f0=bias_f0, bias_applied=applied,
        learned=_learned_table(model, f0_model if uses_f0 else None), warnings=warnings,
        praat=dataclasses.asdict(settings or pitch.PraatSettings()),
        **_scores_from_cache(cache, model, f0_frames, uses_f0))
    progress(1.0, "done")
    return RESULTS.put(key, result)


def _scores_from_cache(cache, model, f0_frames: np.ndarray, uses_f0: bool) -> dict:
    """Per-head scores from the capture the analysis already made (no second forward); a
    barely voiced clip gives no table and the VoicingError message instead of a failure."""
    try:
        table = hs.head_score_table(cache, model, f0_frames, f0_given=uses_f0)
    except VoicingError as e:
        return {"head_scores": None, "head_scores_error": str(e)}
    return {"head_scores": table, "head_scores_error": ""}


def attention_shape(result: ModelResult, kind: str) -> tuple[int, int]:
    """(layers, heads) available for an attention kind."""
    layers = result.attention.get(kind) or []
    heads = next((layer["scores"].shape[0] for layer in layers if layer is not None), 1)
    return len(layers), heads


def _axis_values(n: int, shown: int, labels) -> np.ndarray:
    """Coordinates of a (possibly pooled) attention axis: token labels, or block-centre frames."""
    if labels is not None and len(labels) == n == shown:
        return np.asarray(labels)
    group = math.ceil(n / shown)
    return np.arange(shown) * group + (group - 1) / 2.0


def attention_map(result: ModelResult, kind: str, layer: int, head: int, which: str = "scores"):
    """(map (q, k), x title, y title, x values, y values) of one layer and head.

    Long audio axes are mean-pooled to at most ATTENTION_DISPLAY; their coordinates are the
    block-centre frames. Scores blocked by a causal mask (-inf) become NaN (blank cells).
    CaptureError if the map was not kept (too large) or does not exist.
    """
    if kind not in result.attention:
        raise CaptureError(f"unknown attention kind {kind!r}; accepted: "
                           f"{', '.join(ATTENTION_KINDS)}")
    if which not in ("scores", "weights"):
        raise CaptureError(f"values must be 'scores' or 'weights', got {which!r}")
    layers = result.attention[kind]
    if not layers:
        raise CaptureError(f"this model has no {kind}")
    if not 0 <= layer < len(layers):
        raise CaptureError(f"layer must be 0..{len(layers) - 1}, got {layer}")
    if layers[layer] is None:
        raise CaptureError(f"{kind} layer {layer} was too large to keep for this clip; try a "
                           "shorter clip")
    maps = layers[layer][which]
    if not 0 <= head < maps.shape[0]:
        raise CaptureError(f"head must be 0..{maps.shape[0] - 1}, got {head}")
    x_title, y_title, x_labels, y_labels = result.axes[kind]
    m = maps[head]
    nq, nk = layers[layer]["shape"]
    return (np.where(np.isfinite(m), m, np.nan).astype(np.float32), x_title, y_title,
            _axis_values(nk, m.shape[1], x_labels), _axis_values(nq, m.shape[0], y_labels))


def compare_tables(a: ModelResult, b: ModelResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(parameter differences per module and learned inv_freq, learned scalars) of A and B."""
    from echo_core.checkpoint import diff_checkpoints

    key = ("diff", _model_key(a.checkpoint, a.overrides), _model_key(b.checkpoint, b.overrides))

    def compute():
        df = diff_checkpoints(load_model(a.checkpoint, a.overrides),
                              load_model(b.checkpoint, b.overrides))
        df = df.rename(columns={"a": f"A {a.label}", "b": f"B {b.label}"})
        return (df[df["kind"] != "scalar"].reset_index(drop=True),
                df[df["kind"] == "scalar"].reset_index(drop=True))

    return FEATURES.get_or_compute(key, compute)


# ========================================================================= head scores (issue #8)
# Per-head pitch / rotary / distance alignment, attention distance and entropy; definitions in
# echo_core/head_scores.py (the Learn view quotes its docstrings).

HEAD_SCORE_ATTENTION_BYTES = 1024 * 2**20  # keep every map of a clip up to MAX_MODEL_SECONDS
HEAD_SCORE_DEFINITIONS = hs.__doc__  # the one statement of the definitions (Learn view)
PITCH_BIAS_NOTE = "ADDS the pitch bias"  # what head_score_table's note says for biased heads
HEAD_SCORE_KEYS = ["kind", "layer", "head"]


def head_score_difference(a: ModelResult, b: ModelResult, score: str) -> pd.DataFrame:
    """B − A of one score per (kind, layer, head) both models have; heads only one model has,
    and rows where the score is n/a for both, are left out. Empty when either clip analysis
    has no scores."""
    if score not in hs.SCORES:
        raise EchoError(f"unknown head score {score!r}; accepted: {', '.join(hs.SCORES)}")
    cols = HEAD_SCORE_KEYS + ["A", "B", "B − A"]
    if a.head_scores is None or b.head_scores is None:
        return pd.DataFrame(columns=cols)
    merged = a.head_scores[HEAD_SCORE_KEYS + [score]].merge(
        b.head_scores[HEAD_SCORE_KEYS + [score]], on=HEAD_SCORE_KEYS, suffixes=(" A", " B"))
    merged = merged.rename(columns={f"{score} A": "A", f"{score} B": "B"})
    merged["B − A"] = merged["B"] - merged["A"]
    return merged.dropna(subset=["A", "B"], how="all")[cols].reset_index(drop=True)


def head_scores(model, mel: np.ndarray, f0_frames: np.ndarray, token_ids: Sequence[int] | None
                = None, max_pairs: int | None = None) -> pd.DataFrame:
    """One full-depth capture of a teacher-forced forward, then ``head_scores.head_score_table``.

    mel (n_mels, T) as the checkpoint expects; f0_frames (T,) Hz, NaN unvoiced (pitch
    .f0_for_model converts it for the model only here). ``token_ids`` (without bos): the decoder
    input; None uses the model's greedy transcript (one extra, uncaptured decode). A barely
    voiced clip raises head_scores.VoicingError before the model runs. ``df.attrs`` holds
    "forward_seconds" (captured forward) and "scores_seconds".
    """
    import time

    import torch

    from echo_core import decode, hooks
    from echo_core import head_scores as hs
    from echo_core.tokenizer import BOS

    f0_frames = np.asarray(f0_frames, dtype=np.float64)
    mel = np.asarray(mel, dtype=np.float32)
    if mel.ndim != 2 or f0_frames.shape != (mel.shape[1],):
        raise AudioError(f"need mel (n_mels, T) and one F0 value per mel frame (T,), got "
                         f"{mel.shape} and {f0_frames.shape}")
    hs.check_voicing(f0_frames)
    uses_f0 = decode.model_uses_f0(model)
    spec = torch.from_numpy(mel)[None]  # (1, n_mels, T)
    f0_t = torch.from_numpy(pitch.f0_for_model(f0_frames))[None] if uses_f0 else None  # (1, T)
    with _MODEL_LOCK, _torch_threads(MODEL_THREADS), torch.no_grad():
        if token_ids is None:
            token_ids = decode.greedy_ids(model, spec, f0_t)[0]
        ids = torch.tensor([[BOS] + list(token_ids)][:model.dims.text_ctx])
        start = time.perf_counter()
        with hooks.capture(model, depth="full",
                           max_attention_bytes=HEAD_SCORE_ATTENTION_BYTES) as cache:
            model(input_ids=ids, spectrogram=spec, f0=f0_t)
        forward_seconds = time.perf_counter() - start
    start = time.perf_counter()
    table = hs.head_score_table(cache, model, f0_frames, f0_given=uses_f0,
                                max_pairs=max_pairs or hs.MAX_PAIRS)
    table.attrs.update(forward_seconds=forward_seconds,
                       scores_seconds=time.perf_counter() - start)
    return table
