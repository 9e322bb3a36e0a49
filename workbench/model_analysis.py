"""A checkpoint run on a clip, without UI: greedy transcript, one captured teacher-forced
forward and backward, and the :class:`ModelResult` (statistics, pooled attention maps, the pitch
bias as used, per-head scores) the Model and Compare views show. torch is imported on first use,
so the app starts without it.
"""

from __future__ import annotations

import dataclasses
import math
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from echo_core import attention_priors as priors
from echo_core import audio, pitch, rotary
from echo_core import head_scores as hs
from echo_core.errors import (AudioError, CaptureError, EchoError, TranscriptError,
                              VoicingError)
from workbench.analysis import FEATURES, MAX_DISPLAY, Clip, frame_f0, mel, settings_key
from workbench.cache import LRU, content_key
from workbench.checkpoints import check_overrides, load_model, model_key, resolve

ATTENTION_KINDS = ("encoder self-attention", "decoder self-attention",
                   "decoder cross-attention")
ATTENTION_DISPLAY = 320  # attention maps are kept at most this size per side
REFERENCE_MEL_RANGE = {"fmin": 150.0, "fmax": 2000.0}  # docs/echo_model.md, section 1
MAX_MODEL_SECONDS = 30.0  # attention maps grow with T^2: 30 s already means 3750^2 scores
_MODEL_LOCK = threading.Lock()  # hooks attach to a shared model: one capture at a time
MODEL_THREADS = 1  # torch intra-op threads during a model run (see run_model)
RESULTS = LRU(12)  # result key -> ModelResult (attention maps pooled to <= 320 per side)


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
    bias_positions: np.ndarray | None  # the sampled encoder positions (index of the full map)
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
    from echo_core.model_layers import MultiheadA, Residual

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
    overrides = check_overrides(overrides or {})
    if clip.duration > MAX_MODEL_SECONDS:
        raise AudioError(f"the clip is {clip.duration:.1f} s long; model analysis accepts clips "
                         f"up to {MAX_MODEL_SECONDS:g} s (attention maps grow with the square of "
                         "the length): trim it or pick a shorter one")
    key = content_key(clip.content, settings_key(settings), model_key(checkpoint_id, overrides),
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
        frames = np.minimum(((pos + 0.5) * len(f0_frames) / full.shape[0]).astype(int),
                            len(f0_frames) - 1)  # the model maps F0 frames to positions by time
        bias_f0, applied = f0_frames[frames], bool(call.get("pitch_bias_applied"))
    result = ModelResult(
        key=key, label=resolve(checkpoint_id)[2], checkpoint=checkpoint_id,
        clip_name=clip.name, dims=dims.to_dict(),
        meta={k: v for k, v in (model.meta or {}).items() if k not in ("path", "weights")},
        overrides=overrides, transcript=greedy, teacher_text=teacher_text,
        teacher_source=source, loss=float(out["loss"].detach()),
        activations=hooks.component_statistics(cache, "activations"),
        gradients=hooks.component_statistics(cache, "gradients"),
        gates=hooks.gate_mlp_ratios(cache), report=hooks.format_report(cache),
        attention=_attention_by_kind(cache, dims.features[0]), axes=axes, bias=bias,
        bias_f0=bias_f0, bias_positions=pos, bias_applied=applied,
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


def position_seconds(spec_stride: int) -> float:
    """Duration of one encoder position: a mel frame times the spectrogram front end's stride
    (the axes of the encoder maps and of the pitch bias as used)."""
    return audio.FRAME_SECONDS * spec_stride


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

HEAD_SCORE_ATTENTION_BYTES = 1024 * 2**20  # keep every map of a clip up to MAX_MODEL_SECONDS
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

    mel (n_mels, T) as the checkpoint expects; f0_frames (T,) Hz, NaN unvoiced (pitch
    .f0_for_model converts it for the model only here). ``token_ids`` (without bos): the decoder
    input; None uses the model's greedy transcript (one extra, uncaptured decode). A barely
    voiced clip raises errors.VoicingError before the model runs. ``df.attrs`` holds
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
    priors.check_voicing(f0_frames)
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
                                max_pairs=max_pairs or priors.MAX_PAIRS)
    table.attrs.update(forward_seconds=forward_seconds,
                       scores_seconds=time.perf_counter() - start)
    return table
