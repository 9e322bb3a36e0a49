"""A checkpoint run on a clip, without UI: its transcript, one captured teacher-forced
forward and backward, and the :class:`ModelResult` (statistics, pooled attention maps, the pitch
bias as used, per-head scores) the Model and Compare views show. torch is imported on first use,
so the app starts without it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from echo_core import attention_priors as priors
from echo_core import audio, pitch, rotary
from echo_core import head_scores as hs
from echo_core.attention_kinds import ATTENTION_KINDS, FIRST_LAYER, attention_kind
from echo_core.errors import AudioError, CaptureError, EchoError, VoicingError
from workbench.analysis import FEATURES, MAX_DISPLAY, Clip, frame_f0, mel, settings_key
from workbench.cache import LRU, content_key
from workbench.checkpoints import check_overrides, load_model, model_key, resolve

ATTENTION_DISPLAY = 320  # attention maps are kept at most this size per side
REFERENCE_MEL_RANGE = {"fmin": 150.0, "fmax": 2000.0}  # docs/echo_model.md, section 1
MAX_MODEL_SECONDS = 30.0  # attention maps grow with T^2: 30 s already means 3750^2 scores
MIN_MODEL_SECONDS = 0.5  # shorter than a spoken digit: a transcript of it means nothing
SILENT_DBFS = -50.0  # RMS below this (re full scale) is silence to the models, not speech
_MODEL_LOCK = threading.Lock()  # hooks attach to a shared model: one capture at a time
MODEL_THREADS = 1  # torch intra-op threads during a model run (see run_model)
RESULTS = LRU(12, 300 * 2**20)  # result key -> ModelResult (attention maps pooled to <= 320)


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
    transcript: str  # decoded (clip_run.ClipRun.decoding says how)
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
    bias_positions: np.ndarray | None  # the sampled encoder positions (index of the full map)
    bias_applied: bool
    learned: pd.DataFrame
    warnings: list
    praat: dict
    head_scores: pd.DataFrame | None = None  # head_scores.head_score_table, None if not scored
    head_scores_error: str = ""  # why there are no scores (e.g. the VoicingError message)
    clip_warnings: list = dataclasses.field(default_factory=list)  # see clip_warnings()
    decoding: str = ""  # how the transcript was decoded (decode.decoding_name)

    @property
    def expected_ratio(self) -> float:
        g = self.gates["init_expected_ratio"]
        return float(g.iloc[0]) if len(g) else float("nan")

    def gates_display(self) -> pd.DataFrame:
        g = self.gates
        band = [f"{lo:.2f}–{hi:.2f}" for lo, hi in zip(g["init_ratio_low"], g["init_ratio_high"])]
        return pd.DataFrame({"status": g["status"], "block": g["block"], "ratio": g["ratio"],
                             "at init (formula)": g["init_expected_ratio"],
                             f"at init ({INIT_COPIES} fresh inits)": band,
                             "gradient": np.where(g["gradient"], "yes", "never: init weights"),
                             "gate mean": g["gate_mean"],
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

    def settings(self) -> dict:
        return {"checkpoint": self.checkpoint, "label": self.label, "overrides": self.overrides,
                "dims": self.dims, "teacher_text": self.teacher_text,
                "teacher_source": self.teacher_source, "praat": self.praat}


def get_result(key: str | None) -> ModelResult:
    result = RESULTS.get(key) if key else None
    if result is None:
        raise EchoError("no model analysis in memory (none was run, or it was evicted)")
    return result


def _pool(a: np.ndarray, size: int) -> np.ndarray:
    """Mean-pool the last two axes to at most ``size`` each: blocks of ``ceil(n / size)``
    positions, the last block the exact mean of what remains (no padding to skew it), so the
    softmax mass of every block survives. A block holding a masked (-inf) score stays -inf
    (drawn blank)."""
    out = np.asarray(a, dtype=np.float32)
    for axis in (out.ndim - 1, out.ndim - 2):  # the contiguous axis first: it shrinks the rest
        n = out.shape[axis]
        if n <= size:
            continue
        group = math.ceil(n / size)
        starts = np.arange(0, n, group)
        sums = np.add.reduceat(out, starts, axis=axis)
        counts = np.diff(np.append(starts, n)).astype(np.float32)
        shape = [1] * out.ndim
        shape[axis] = counts.size
        out = sums / counts.reshape(shape)
    return out


def attention_by_kind(cache, feature: str) -> dict:
    """{kind: [layer maps]} from a full-depth capture (None for a layer too large to keep)."""
    paths = set(cache.attention) | {d["path"] for d in cache.dropped}
    located = sorted((attention_kind(p)[1], p, attention_kind(p)[0]) for p in paths
                     if attention_kind(p) is not None and attention_kind(p)[2] in (feature, ""))
    out = {}
    for kind in ATTENTION_KINDS:
        layers = []
        for path in (p for _, p, k in located if k == kind):
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
    """Learned rotary scalars of every attention module, and the theta in force on this clip
    by the one definition the Interventions view and the batch tables use
    (``interventions.theta_table``: theta_eff by the model's F0 rule, or the base the learned
    or frozen frequencies imply when no F0 reaches the model)."""
    import torch

    from echo_core.checkpoint import implied_theta
    from echo_core.interventions import theta_table
    from echo_core.model_layers import MultiheadA, Residual

    frames = f0_model if f0_model is not None else np.zeros(1)
    in_force = {r.module: (r.theta_in_force, r.source)
                for r in theta_table(model, frames).itertuples()}
    blends = {p: float(torch.sigmoid(m.blend.detach())) for p, m in model.named_modules()
              if isinstance(m, Residual)}
    rows = []
    for path, m in model.named_modules():
        if not isinstance(m, MultiheadA):
            continue
        rope = m.rope
        theta = float(rope.theta.detach())
        force, source = in_force.get(path, (np.nan, ""))
        row = {"module": path, "theta (base parameter)": theta,
               "θ in force (this clip)": float(force), "θ from": source,
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


@contextmanager
def model_session():
    """One model run at a time (hooks attach to a shared, cached model), on MODEL_THREADS."""
    with _MODEL_LOCK, _torch_threads(MODEL_THREADS):
        yield


def check_model_length(clip: Clip) -> None:
    """AudioError for a clip too long to analyse with attention maps."""
    if clip.duration > MAX_MODEL_SECONDS:
        raise AudioError(f"the clip is {clip.duration:.1f} s long; model analysis accepts clips "
                         f"up to {MAX_MODEL_SECONDS:g} s (attention maps grow with the square of "
                         "the length): trim it or pick a shorter one")


def clip_warnings(clip: Clip, f0_frames: np.ndarray) -> list[str]:
    """Why a transcript of this clip means nothing, from facts the analysis has anyway (length,
    RMS level, voicing): the model transcribes silence or a click as confidently as speech."""
    out = []
    rms = float(np.sqrt(np.mean(np.square(clip.samples, dtype=np.float64)))) if len(
        clip.samples) else 0.0
    level = 20 * math.log10(rms) if rms > 0 else -math.inf
    if level < SILENT_DBFS:
        measured = ("every sample is 0" if rms == 0 else
                    f"RMS level {level:.0f} dBFS, below {SILENT_DBFS:g} dBFS")
        out.append(f"the clip is silent ({measured}): the transcript is not meaningful")
    if clip.duration < MIN_MODEL_SECONDS:
        out.append(f"the clip is {clip.duration:.2f} s long, shorter than "
                   f"{MIN_MODEL_SECONDS:g} s: the transcript is not meaningful")
    voiced = np.isfinite(f0_frames) & (f0_frames > 0)
    if level >= SILENT_DBFS and not voiced.any():
        out.append("Praat found no voiced frame in the clip: the model got no pitch and the "
                   "transcript is probably not meaningful")
    return out


def run_model(clip: Clip, settings: pitch.PraatSettings | None, checkpoint_id: str,
              overrides: dict | None = None, transcript: str = "",
              progress: Callable[[float, str], None] | None = None) -> ModelResult:
    """The model's transcript, then one teacher-forced forward + backward under ``hooks.capture``.

    The teacher text is the user's transcript, or the model's own transcript when empty.
    F0 uses the session's Praat settings; pitch.f0_for_model turns NaN into the model's 0 only
    here, at the model's door. Cached per clip, settings, checkpoint version and transcript.
    """
    overrides = check_overrides(overrides or {})
    check_model_length(clip)
    key = content_key(clip.content, settings_key(settings), model_key(checkpoint_id, overrides),
                      transcript.strip())
    cached = RESULTS.get(key)
    if cached is not None:
        return cached
    progress = progress or (lambda fraction, what: None)
    from echo_core import clip_run, hooks

    progress(0.05, "loading the checkpoint")
    model = load_model(checkpoint_id, overrides)
    dims, warnings = model.dims, []
    f0_frames = frame_f0(clip, settings)
    # One intra-op thread: the queue already runs two callbacks on the machine's two cores, and
    # an oversubscribed torch (2 threads beside other busy processes) measured 10x slower.
    with model_session():
        progress(0.2, "decoding, then a teacher-forced forward + backward with hooks")
        run = clip_run.run_clip(model, _features(model, clip, warnings), f0_frames,
                                teacher_text=transcript, capture="backward",
                                samples=clip.samples,
                                max_attention_bytes=hooks.DEFAULT_MAX_ATTENTION_BYTES)
    if run.tokenizer is None:
        warnings.append("No tokenizer.json beside this checkpoint: transcripts are token ids.")
    tokenizer, teacher_ids, cache, uses_f0 = run.tokenizer, run.teacher_ids, run.cache, run.uses_f0
    band = _start_init_band(model, run, clip)
    source = "typed transcript" if transcript.strip() else "model's transcript"

    progress(0.8, "statistics and maps")
    tokens = ["<bos>"] + [tokenizer.decode([i]) if tokenizer else str(i) for i in teacher_ids]
    labels = np.array([f"{i}:{t if t.strip() else '␣'}" for i, t in enumerate(tokens)])
    step_ms = 1000 * position_seconds(dims.spec_stride)
    axes = {"encoder self-attention": (f"key position ({step_ms:g} ms)",
                                       f"query position ({step_ms:g} ms)", None, None),
            "decoder self-attention": ("key token", "query token", labels, labels),
            "decoder cross-attention": (f"audio position ({step_ms:g} ms)", "query token", None,
                                        labels)}
    if cache.dropped:
        warnings.append(f"{len(cache.dropped)} attention map(s) were too large to keep for this "
                        "clip; they are shown as missing.")
    bias, bias_f0, pos, applied = None, None, None, False
    first = next((p for p in cache.attention if p.startswith("encoder.")
                  and p.endswith(".attna")), None)
    if first and cache.attention[first] and cache.attention[first][-1].get("pitch_bias") is not None:
        call = cache.attention[first][-1]
        full = call["pitch_bias"][0, 0].float().numpy()  # (T, T), scaled as the model adds it
        pos = rotary.display_positions(full.shape[0], MAX_DISPLAY)
        bias = full[np.ix_(pos, pos)].astype(np.float32)
        bias_f0 = rotary.f0_at_positions(f0_frames, full.shape[0])[pos]  # as the model maps it
        applied = bool(call.get("pitch_bias_applied"))
    parts = dict(  # while the init band is computed beside them
        activations=hooks.component_statistics(cache, "activations"),
        gradients=hooks.component_statistics(cache, "gradients"),
        report=hooks.format_report(cache), attention=attention_by_kind(cache, dims.features[0]),
        learned=_learned_table(model, pitch.f0_for_model(f0_frames) if uses_f0 else None),
        **_scores_from_cache(cache, model, f0_frames, uses_f0))
    result = ModelResult(
        key=key, label=resolve(checkpoint_id)[2], checkpoint=checkpoint_id,
        clip_name=clip.name, dims=dims.to_dict(),
        meta={k: v for k, v in (model.meta or {}).items() if k not in ("path", "weights")},
        overrides=overrides, transcript=run.transcript, teacher_text=run.teacher_text,
        teacher_source=source, loss=run.loss, gates=_gates_with_baseline(run, band), axes=axes,
        bias=bias, bias_f0=bias_f0, bias_positions=pos, bias_applied=applied,
        warnings=warnings, clip_warnings=clip_warnings(clip, f0_frames), decoding=run.decoding,
        praat=dataclasses.asdict(settings or pitch.PraatSettings()), **parts)
    progress(1.0, "done")
    return RESULTS.put(key, result)


INIT_COPIES = 5  # fresh initialisations behind the at-init band of each block
INIT_SECONDS = 4.0  # of the clip fed to them (the band depends on shapes, not on length)


FRESH_MODELS = LRU(2)  # dims -> INIT_COPIES fresh models (~40 MB for the zoo's dims)
_INIT_BAND_LOCK = threading.Lock()  # the fresh models are shared: one capture on them at a time
_INIT_BAND_POOL = ThreadPoolExecutor(1, thread_name_prefix="init-band")


def _start_init_band(model, run, clip: Clip) -> Future:
    """The at-init band of the Gate/MLP ratios (:func:`_gates_with_baseline`), computed beside
    the rest of the analysis: it needs only the teacher tokens, and it runs INIT_COPIES
    forwards, ~0.2-0.4 s of a 10 s run that the second core can take."""
    from echo_core import clip_run, hooks
    from echo_core.model import Echo

    frames = int(INIT_SECONDS / audio.FRAME_SECONDS)
    dims_key = json.dumps(model.dims.to_dict(), sort_keys=True)
    key = ("init band", dims_key, clip.content, tuple(run.teacher_ids))

    def compute():
        inputs = clip_run.model_inputs(model, run.mel[:, :frames], run.f0_frames[:frames],
                                       run.teacher_ids, clip.samples[:frames * audio.HOP_LENGTH])
        inputs.pop("labels")
        with _INIT_BAND_LOCK, _torch_threads(MODEL_THREADS):
            models = FRESH_MODELS.get_or_compute(dims_key, lambda: hooks.fresh_models(
                lambda: Echo(model.dims), INIT_COPIES))
            return hooks.ratio_band(models, inputs)

    return _INIT_BAND_POOL.submit(FEATURES.get_or_compute, key, compute)


def _gates_with_baseline(run, band: Future) -> pd.DataFrame:
    """Gate/MLP ratios with, per block, the band of INIT_COPIES fresh initialisations of the
    same dims on this clip (init_ratio_mean/low/high) and whether the block got a gradient."""
    from echo_core import hooks

    gates = hooks.gate_mlp_ratios(run.cache)
    gates = gates.merge(band.result().drop(columns=["init_ratio_std"]), on="block", how="left")
    gates["gradient"] = gates["block"].map(hooks.blocks_with_gradient(run.cache, gates["block"]))
    return gates


def _scores_from_cache(cache, model, f0_frames: np.ndarray, uses_f0: bool) -> dict:
    """Per-head scores from the capture the analysis already made (no second forward); a
    barely voiced clip gives no table and the VoicingError message instead of a failure."""
    try:
        table = hs.head_score_table(cache, model, f0_frames, f0_given=uses_f0)
    except VoicingError as e:
        return {"head_scores": None, "head_scores_error": str(e)}
    return {"head_scores": table, "head_scores_error": ""}


def position_seconds(spec_stride: int) -> float:
    """Duration of one encoder position: a mel frame times the spectrogram front end's stride
    (the axes of the encoder maps and of the pitch bias as used)."""
    return audio.FRAME_SECONDS * spec_stride


def attention_shape(result: ModelResult, kind: str) -> tuple[int, int]:
    """(layers, heads) available for an attention kind; the layers are numbered as in the
    module paths and the head-score tables, from attention_kinds.FIRST_LAYER[kind]."""
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
    """(map (q, k), x title, y title, x values, y values) of one layer and head; ``layer`` is
    numbered as in the module paths and head-score tables (encoder attention from 1).

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
    first = FIRST_LAYER[kind]
    if not first <= layer < first + len(layers):
        raise CaptureError(f"{kind} layer must be {first}..{first + len(layers) - 1}, got "
                           f"{layer}")
    index = layer - first
    if layers[index] is None:
        raise CaptureError(f"{kind} layer {layer} was too large to keep for this clip; try a "
                           "shorter clip")
    maps = layers[index][which]
    if not 0 <= head < maps.shape[0]:
        raise CaptureError(f"head must be 0..{maps.shape[0] - 1}, got {head}")
    x_title, y_title, x_labels, y_labels = result.axes[kind]
    m = maps[head]
    nq, nk = layers[index]["shape"]
    return (np.where(np.isfinite(m), m, np.nan).astype(np.float32), x_title, y_title,
            _axis_values(nk, m.shape[1], x_labels), _axis_values(nq, m.shape[0], y_labels))


def compare_tables(a: ModelResult, b: ModelResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(parameter differences per module and learned inv_freq, learned scalars) of A and B."""
    from echo_core.checkpoint import diff_checkpoints

    key = ("diff", model_key(a.checkpoint, a.overrides), model_key(b.checkpoint, b.overrides))

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

HEAD_SCORE_DEFINITIONS = (  # the one statement of the definitions (Learn view), and its limits
    f"{hs.__doc__.rstrip()}\n\nIn this build: MAX_ROWS = {priors.MAX_ROWS}, MAX_PAIRS = "
    f"{priors.MAX_PAIRS}; pitch scores need at least {priors.MIN_VOICED_FRAMES} voiced frames "
    f"and {priors.MIN_VOICED_FRACTION:.0%} voicing.\n")
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

    mel (n_mels, T) as the checkpoint expects; f0_frames (T,) Hz, NaN unvoiced (the pipeline,
    ``clip_run.run_clip``, converts it at the model's door). ``token_ids`` (without bos): the
    decoder input; None uses the model's transcript (one extra, uncaptured decode). A
    barely voiced clip raises errors.VoicingError before the model runs. ``df.attrs`` holds
    "forward_seconds" (decoding if any, and the captured forward) and "scores_seconds".
    """
    import time

    from echo_core import clip_run

    f0_frames = np.asarray(f0_frames, dtype=np.float64)
    mel = np.asarray(mel, dtype=np.float32)
    if mel.ndim != 2 or f0_frames.shape != (mel.shape[1],):
        raise AudioError(f"need mel (n_mels, T) and one F0 value per mel frame (T,), got "
                         f"{mel.shape} and {f0_frames.shape}")
    priors.check_voicing(f0_frames)
    with _MODEL_LOCK, _torch_threads(MODEL_THREADS):
        start = time.perf_counter()
        run = clip_run.run_clip(model, mel, f0_frames, teacher_ids=token_ids, capture="forward",
                                decode=token_ids is None,
                                max_attention_bytes=clip_run.MAX_ATTENTION_BYTES)
        forward_seconds = time.perf_counter() - start
    start = time.perf_counter()
    table = hs.head_score_table(run.cache, model, f0_frames, f0_given=run.uses_f0,
                                max_pairs=max_pairs or priors.MAX_PAIRS)
    table.attrs.update(forward_seconds=forward_seconds,
                       scores_seconds=time.perf_counter() - start)
    return table
