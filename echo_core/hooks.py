"""See inside a running Echo: activations, attention maps and gradients, keyed by module path.

One context manager, :func:`capture`, registers the hooks and removes every one of them in
``finally`` (also when the forward or backward raises). What it records feeds pure functions
that return tidy DataFrames, and the reference's printed diagnostic report:

* gate vs MLP activation ratios (:func:`gate_mlp_ratios`), beside the ratio the *initial*
  weights already give, sqrt(5d/(d+1)) for xavier-initialised Linear layers on RMS-normalised
  input (docs/echo_model.md, section 11). Our Linear layers are initialised that way, so
  the formula is used; tests/test_hooks.py checks it against freshly initialised copies, and
  :func:`init_ratio_baseline` measures it for any architecture and input.
* component statistics (:func:`component_statistics`) from gradients (the reference's
  definition) or, labelled as such, from forward activations.

Gradients: run backward inside ``capture(model, gradients=True)``; each backward call adds one
sample ("step") per parameter that received a gradient. :func:`gradient_step_statistics` does
the teacher-forced forward + backward for you.
"""

from __future__ import annotations

import math
import re
from contextlib import contextmanager

import pandas as pd
import torch
from torch import nn

from .errors import CaptureError
from .model_layers import FEncoder, HookPoint, Linear, Residual, RMSNorm, WEncoder

DEPTHS = ("stats", "full")
NEAR_ZERO = 0.01  # |a| below this counts as (near) zero for sparsity
RATIO_WARN = 2.0  # gate/MLP ratio at or above this gets the yellow marker
GREEN, YELLOW = "🟢", "🟡"
DEFAULT_MAX_ATTENTION_BYTES = 256 * 2**20  # attention maps kept per capture (full depth)
COMPONENTS = ("GATE", "MLP", "Q", "K", "V", "O", "LN", "ENCODER", "BLEND")

# Parameter names per component (docs/echo_model.md, section 11).
GRADIENT_GROUPS = {
    "GATE": r"(^|\.)mlp_gate\.0\.linear\.weight$",
    "MLP": r"(^|\.)mlp\.0\.linear\.weight$",
    **{c: rf"(^|\.)attn[ab]\.{c.lower()}\.linear\.weight$" for c in "QKVO"},
    "LN": r"(^|\.)ln[abc]\.weight$",
    "ENCODER": r"^encoder\.blocks\.\w+\.0\.(encoder|downsample)\.\d+\.weight$",  # front-end convs
    "BLEND": r"\.\d+\.blend$",  # Residual.blend (not decoder.blend.<feature>)
}
# The same components as module outputs (BLEND: the sigmoid(blend) a Residual used).
ACTIVATION_GROUPS = {
    "GATE": r"(^|\.)mlp_gate\.0$",
    "MLP": r"(^|\.)mlp\.0$",
    **{c: rf"(^|\.)attn[ab]\.{c.lower()}$" for c in "QKVO"},
    "LN": r"(^|\.)ln[abc]$",
    "ENCODER": r"^encoder\.blocks\.\w+\.0\.(encoder|downsample)\.\d+$",
}


def summarize(t: torch.Tensor) -> dict:
    """Cheap statistics of one activation: mean |x|, min, max, count, near-zero fraction."""
    x = t.detach().float()
    a = x.abs()
    n = x.numel()
    total, near = float(a.sum()), int((a < NEAR_ZERO).sum())
    return dict(mean_abs=total / n, min=float(x.min()), max=float(x.max()), count=n,
                near_zero=near / n, sum_abs=total, n_near_zero=near)


class Cache:
    """What one :func:`capture` recorded. ``cache[path]`` -> list of per-call stats dicts.

    stats:      {module path: [summarize(output) per forward call]}
    modules:    {module path: {"type", "in_features", "out_features"}}
    blends:     {Residual path: [sigmoid(blend) per call that used cross-attention]}
    attention:  {attention path: [{"call", "scores", "weights", "pitch_bias",
                "pitch_bias_applied", "masked"} per call]} (full depth; scores are pre-softmax;
                "masked": whether a mask reached the scores)
    gradients:  {parameter name: [mean |grad| per backward call]}
    dropped:    attention maps not kept because of max_attention_bytes
    """

    def __init__(self, depth: str, gradients: bool, max_attention_bytes: int):
        self.depth = depth
        self.record_gradients = gradients
        self.max_attention_bytes = max_attention_bytes
        self.stats: dict[str, list[dict]] = {}
        self.modules: dict[str, dict] = {}
        self.blends: dict[str, list[float]] = {}
        self.attention: dict[str, list[dict]] = {}
        self.gradients: dict[str, list[float]] = {}
        self.dropped: list[dict] = []
        self.attention_bytes = 0

    def __getitem__(self, path: str) -> list[dict]:
        return self.stats[path]

    def __contains__(self, path) -> bool:
        return path in self.stats

    def keys(self):
        return self.stats.keys()

    @property
    def steps(self) -> int:
        """Backward calls seen (the most samples any parameter has)."""
        return max((len(v) for v in self.gradients.values()), default=0)

    def __repr__(self) -> str:
        calls = sum(len(v) for v in self.stats.values())
        maps = sum(len(v) for v in self.attention.values())
        return (f"Cache(depth={self.depth!r}, modules={len(self.stats)}, calls={calls}, "
                f"attention_maps={maps} ({self.attention_bytes / 2**20:.1f} MB), "
                f"dropped={len(self.dropped)}, gradient_steps={self.steps} over "
                f"{len(self.gradients)} parameters)")

    # -- recorders (called by the hooks) ---------------------------------------------------
    def _record_stats(self, path: str, output) -> None:
        if torch.is_tensor(output) and output.numel():
            self.stats.setdefault(path, []).append(summarize(output))

    def _record_attention(self, path: str, maps: dict) -> None:
        calls = self.attention.setdefault(path, [])
        tensors = {k: maps[k] for k in ("scores", "weights", "pitch_bias") if maps[k] is not None}
        size = sum(t.numel() * t.element_size() for t in tensors.values())
        call = len(calls) + sum(1 for d in self.dropped if d["path"] == path)
        if self.attention_bytes + size > self.max_attention_bytes:
            self.dropped.append(dict(path=path, call=call, bytes=size,
                                     shape=tuple(maps["scores"].shape)))
            return
        self.attention_bytes += size
        record = {k: (v.detach().cpu() if torch.is_tensor(v) else v) for k, v in maps.items()}
        calls.append({"call": call, **record})


def _module_info(module: nn.Module) -> dict:
    info = {"type": type(module).__name__}
    if isinstance(module, Linear):
        info.update(in_features=module.linear.in_features, out_features=module.linear.out_features)
    return info


def _stat_modules(model: nn.Module):
    """(path, module) whose outputs get statistics: Linear wrappers, norms, front-end convs and
    front ends, Residual blocks."""
    for path, module in model.named_modules():
        if isinstance(module, (Linear, RMSNorm, FEncoder, WEncoder, Residual, nn.Conv1d)):
            yield path, module


@contextmanager
def capture(model: nn.Module, depth: str = "stats", gradients: bool = False,
            max_attention_bytes: int = DEFAULT_MAX_ATTENTION_BYTES):
    """Record while the ``with`` body runs; every hook is removed on exit, error or not.

    depth "stats": per-call statistics of module outputs (cheap). "full": also the pre-softmax
    scores, softmax weights and pitch bias (used, or what would be used) of every attention
    call, (B, H, nq, nk) each, kept until ``max_attention_bytes`` is reached; later maps are
    listed in ``cache.dropped`` instead. gradients=True: mean |grad| of every parameter per
    backward call made inside the block.
    """
    if depth not in DEPTHS:
        raise CaptureError(f"depth must be one of {list(DEPTHS)}, got {depth!r}")
    if not isinstance(max_attention_bytes, int) or max_attention_bytes < 0:
        raise CaptureError(f"max_attention_bytes must be a non-negative integer, got "
                           f"{max_attention_bytes!r}")
    cache = Cache(depth, gradients, max_attention_bytes)
    handles = []
    try:
        for path, module in _stat_modules(model):
            cache.modules[path] = _module_info(module)
            handles.append(module.register_forward_hook(
                lambda m, args, out, path=path: cache._record_stats(path, out)))
            if isinstance(module, Residual):
                handles.append(module.register_forward_hook(_blend_hook(cache, path),
                                                            with_kwargs=True))
        if depth == "full":
            for path, module in model.named_modules():
                if isinstance(module, HookPoint):
                    owner = path.rsplit(".", 1)[0]
                    handles.append(module.register_forward_hook(
                        lambda m, args, out, owner=owner: cache._record_attention(owner, out)))
        if gradients:
            for name, param in model.named_parameters():
                if param.requires_grad:
                    handles.append(param.register_hook(_grad_hook(cache, name)))
        yield cache
    finally:
        for handle in handles:
            handle.remove()


def _blend_hook(cache: Cache, path: str):
    def hook(module, args, kwargs, output):
        xa = kwargs.get("xa", args[1] if len(args) > 1 else None)
        if module.attnb is not None and xa is not None:
            cache.blends.setdefault(path, []).append(float(torch.sigmoid(module.blend.detach())))
    return hook


def _grad_hook(cache: Cache, name: str):
    def hook(grad):
        cache.gradients.setdefault(name, []).append(float(grad.detach().abs().mean()))
    return hook


# ---------------------------------------------------------------------------------------------
# Statistics

def init_expected_ratio(d: int) -> float:
    """E|gate logit| / E|mlp.0 output| at xavier init on RMS-normalised input: sqrt(5d/(d+1)).
    (Gate: variance d * 2/(d+1); mlp.0: d * 2/(5d); the ratio of the two mean |.| values.)"""
    return math.sqrt(5 * d / (d + 1))


def _pooled(calls: list[dict]) -> tuple[float, float]:
    count = sum(c["count"] for c in calls)
    return sum(c["sum_abs"] for c in calls) / count, sum(c["n_near_zero"] for c in calls) / count


def gate_mlp_ratios(cache: Cache) -> pd.DataFrame:
    """One row per Residual with mlp_gate: mean |gate logit| (mlp_gate.0) vs mean |mlp.0 output|,
    pooled over all elements of all calls; sparsity = fraction |a| < 0.01."""
    rows = []
    for path, calls in cache.stats.items():
        if not re.search(r"(^|\.)mlp_gate\.0$", path):
            continue
        block = path[: -len("mlp_gate.0")]
        mlp_calls = cache.stats.get(block + "mlp.0")
        if not mlp_calls:
            continue
        gate_mean, gate_sparsity = _pooled(calls)
        mlp_mean, mlp_sparsity = _pooled(mlp_calls)
        ratio = gate_mean / mlp_mean if mlp_mean > 0 else math.inf
        rows.append(dict(block=block, gate_mean=gate_mean, mlp_mean=mlp_mean, ratio=ratio,
                         gate_sparsity=gate_sparsity, mlp_sparsity=mlp_sparsity,
                         sparsity_difference=gate_sparsity - mlp_sparsity,
                         status=GREEN if ratio < RATIO_WARN else YELLOW,
                         init_expected_ratio=init_expected_ratio(
                             cache.modules[path]["in_features"])))
    if not rows:
        raise CaptureError("no mlp_gate / mlp.0 activations in the cache: run a forward pass "
                           "inside capture() on a model whose blocks have mlp_gate")
    return pd.DataFrame(rows)


def _summary_rows(samples: dict, source: str) -> pd.DataFrame:
    rows = []
    for component in COMPONENTS:
        values = samples.get(component, [])
        rows.append(dict(component=component,
                         avg=sum(values) / len(values) if values else math.nan,
                         min=min(values, default=math.nan), max=max(values, default=math.nan),
                         samples=len(values), source=source))
    df = pd.DataFrame(rows)
    df.attrs["source"] = source
    return df


def component_statistics(cache: Cache, source: str = "gradients") -> pd.DataFrame:
    """avg / min / max / samples per component (GATE, MLP, Q, K, V, O, LN, ENCODER, BLEND).

    "gradients": one sample = mean |grad| of one parameter at one backward call; parameters
    that received no gradient (unused lnb, discarded decoder feature blocks) do not count.
    "activations": one sample = mean |output| of one module at one forward call (BLEND: the
    sigmoid(blend) a Residual used). The ``source`` column / ``df.attrs`` say which.
    """
    samples: dict[str, list[float]] = {}
    if source == "gradients":
        if not cache.gradients:
            raise CaptureError("the cache holds no gradients: use capture(model, gradients=True)"
                               " and call loss.backward() inside it (or gradient_step_statistics)")
        for name, values in cache.gradients.items():
            for component, pattern in GRADIENT_GROUPS.items():
                if re.search(pattern, name):
                    samples.setdefault(component, []).extend(values)
    elif source == "activations":
        if not cache.stats:
            raise CaptureError("the cache holds no activations: run a forward pass inside "
                               "capture()")
        for path, calls in cache.stats.items():
            for component, pattern in ACTIVATION_GROUPS.items():
                if re.search(pattern, path):
                    samples.setdefault(component, []).extend(c["mean_abs"] for c in calls)
        samples["BLEND"] = [v for values in cache.blends.values() for v in values]
    else:
        raise CaptureError(f"source must be 'gradients' or 'activations', got {source!r}")
    return _summary_rows(samples, source)


def format_report(cache: Cache) -> str:
    """The reference's printed diagnostic: component statistics, then gate vs MLP patterns."""
    source = "gradients" if cache.gradients else "activations"
    lines = ["📊 COMPONENT STATISTICS"
             + (" (mean |gradient| per parameter and step)" if source == "gradients"
                else " (no gradients recorded: mean |activation| per module and call)")]
    try:
        for row in component_statistics(cache, source).itertuples():
            lines.append(f"  {row.component}: avg={row.avg:.6f}, min={row.min:.6f}, "
                         f"max={row.max:.6f}, samples={row.samples}")
    except CaptureError as e:
        lines.append(f"  ({e})")
    lines += ["", "🚨 GATE vs MLP ACTIVATION PATTERNS"]
    try:
        for row in gate_mlp_ratios(cache).itertuples():
            lines.append(f"  {row.status} {row.block}: gate_mean={row.gate_mean:.4f}, "
                         f"mlp_mean={row.mlp_mean:.4f}, ratio={row.ratio:.2f} (at init "
                         f"≈{row.init_expected_ratio:.2f}), "
                         f"gate_sparsity={row.gate_sparsity:.3f}, "
                         f"mlp_sparsity={row.mlp_sparsity:.3f}, "
                         f"diff={row.sparsity_difference:+.3f}")
    except CaptureError as e:
        lines.append(f"  ({e})")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Helpers that run the model

def gradient_step_statistics(model: nn.Module, batches, optimizer=None,
                             depth: str = "stats") -> Cache:
    """Teacher-forced steps with gradient recording: for each batch (a dict of Echo.forward
    arguments including ``labels``) zero the grads, forward, loss.backward(), and step the
    optimizer if one is given. Gradients are cleared afterwards when no optimizer is given."""
    batches = [batches] if isinstance(batches, dict) else list(batches)
    if not batches or any("labels" not in b for b in batches):
        raise CaptureError("every batch needs 'labels' (teacher forcing) to compute a loss")
    with capture(model, depth=depth, gradients=True) as cache:
        for batch in batches:
            model.zero_grad(set_to_none=True)
            with torch.enable_grad():
                model(**batch)["loss"].backward()
            if optimizer is not None:
                optimizer.step()
    if optimizer is None:
        model.zero_grad(set_to_none=True)
    return cache


def init_ratio_baseline(make_model, inputs: dict, copies: int = 4, seed: int = 0) -> pd.DataFrame:
    """Gate/MLP ratios of ``copies`` freshly initialised models (``make_model()``, seeded
    seed, seed+1, ...) on the same ``inputs``: block, init_ratio_mean, init_ratio_std,
    init_ratio_low, init_ratio_high (the band: smallest and largest over the copies). The
    empirical at-initialisation baseline for any architecture or init: single blocks spread
    widely around sqrt(5d/(d+1)), so a measured ratio is read against this band, not that
    one value."""
    return ratio_band(fresh_models(make_model, copies, seed), inputs)


def fresh_models(make_model, copies: int, seed: int = 0) -> list:
    """``copies`` freshly initialised models in eval mode, ``make_model()`` seeded seed,
    seed+1, ...: the copies behind :func:`init_ratio_baseline` (a caller may keep them, since
    building them costs more than running them)."""
    models = []
    for i in range(copies):
        torch.manual_seed(seed + i)
        models.append(make_model().eval())
    return models


def ratio_band(models: list, inputs: dict) -> pd.DataFrame:
    """The at-init band (see :func:`init_ratio_baseline`) of the given fresh ``models``."""
    ratios = []
    for fresh in models:
        with torch.no_grad(), capture(fresh) as cache:
            fresh(**inputs)
        ratios.append(gate_mlp_ratios(cache).set_index("block")["ratio"])
    table = pd.concat(ratios, axis=1)
    return pd.DataFrame({"block": table.index, "init_ratio_mean": table.mean(axis=1).values,
                         "init_ratio_std": table.std(axis=1).values,
                         "init_ratio_low": table.min(axis=1).values,
                         "init_ratio_high": table.max(axis=1).values})


def blocks_with_gradient(cache, blocks) -> dict[str, bool]:
    """For each block path (with its trailing dot), whether any of its parameters received a
    gradient in the backward passes the cache recorded. A block whose output the model throws
    away (the reference's ``decoder.blocks.spectrogram.0``) never does: its statistics describe
    its initial weights only."""
    names = list(cache.gradients)
    return {b: any(n.startswith(b) for n in names) for b in blocks}
