"""The Echo encoder-decoder, module for module as the reference (see ../shared/echo_reference.md).

Module and parameter names are the reference's, so a reference state dict loads with
``strict=True`` and hooks read like ``encoder.blocks.spectrogram.1``, ``decoder._blocks.0``.
Small building blocks come first, the model that uses them last. Only :class:`Echo` sees
:class:`EchoDims`; the blocks take plain ints and can be built alone.

Reference quirks are reproduced by default and exposed as switches of :class:`EchoDims`
(``decoder_mask``, ``pitch_bias``, ``theta_mode``); the project's own models turn them off.
The rotary math lives in :mod:`echo_core.rotary`, shared with the workbench's pictures.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import rotary as R
from .errors import ConfigError, EchoError

FEATURE_INPUTS = ("spectrogram", "waveform", "pitch")  # features that have a model input
FEATURE_SLOTS = FEATURE_INPUTS + ("spec_envelope", "spec_phase")  # the encoder's module dict keys
CGATE_FEATURES = ["spectrogram", "waveform", "pitch"]  # exactly this list builds CMGate blocks
INV_FREQ_BASE = 19000.0  # initial base of the learned inv_freq (used only without f0)
THETA_INIT = 10000.0  # initial rotary theta (the base modulated by F0)
RMS_EPS = 1e-8
ZERO_KEY_SCALE_MAX = 0.001  # clamp of softplus(fzero), the scale of keys whose channel 0 is 0
TEXT_ROTATIONS = 64  # text positions whose rotations incremental decoding computes at once
WAVEFORM_STRIDE = 8 * 4 * 5  # the WEncoder's total downsampling (160 samples per output frame)


# ---------------------------------------------------------------------------------------------
# Configuration

@dataclass
class EchoDims:
    """Everything needed to build an Echo; the field names are the reference's config keys.

    The project switches default to the reference's behaviour (echo_reference.md, "Behaviours
    to reproduce"); the UI should say when a reference default is in force:

    * decoder_mask "additive": lower-triangular ones are *added* to the scores of the decoder's
      ``_blocks`` and the feature blocks get no mask, so every token sees the future.
      "causal": -inf above the diagonal in every decoder self-attention.
    * pitch_bias: pitch_bias_scale * rotary.pitch_bias(f0, rope.pitch_scale) is added to the
      pre-softmax scores of the encoder's self-attention when an F0 contour reaches it.
    * theta_mode "mean_f0": one theta from the mean of the whole f0 tensor (batch and unvoiced
      zeros included). "per_frame": audio positions (encoder queries/keys, cross-attention
      keys) turn frame by frame at theta_eff(f0_t) (static theta where unvoiced), see
      :func:`per_frame_angles`; text positions and cross-attention queries keep the mean-F0
      theta.
    * f0_mean "batch": the mean F0 behind theta is taken over the whole f0 tensor, as in the
      reference (other utterances of the batch, padding and unvoiced zeros included, so theta
      depends on what an utterance was batched with). "voiced": one mean per utterance over its
      voiced frames (static theta when none is voiced), exactly rotary.theta_from_f0, which the
      workbench's heatmaps use.
    * variable_radius: each rotary gets a learned ``radius`` (head_dim/2, init 1): pair k is
      rotated by r_k exp(i angle), so its share of every q.k score is weighted by r_k^2 (what
      rotary.position_similarity's ``radius`` shows). Not in the reference.
    * spec_stride: the spectrogram front end's first conv (kernel 3) steps this many mel frames,
      so the encoder runs at 8 ms x spec_stride per position (1-3; 3 still reads every frame).
      The reference's FEncoder takes a stride but uses 1 for the spectrogram; 2 halves the
      audio sequence, which makes training and attention several times cheaper. F0 reaches the
      shorter positions by time, as it does for any length mismatch (see ``_f0_rows``).
    """

    vocab: int  # token vocabulary size (embedding rows = logit columns)
    text_ctx: int  # longest token sequence (rows of the learned positional table)
    text_dims: int  # decoder width
    text_head: int  # decoder attention heads
    text_idx: int  # decoder layers
    mels: int  # log-mel channels of the spectrogram input
    aud_ctx: int  # longest audio sequence; informational (no learned audio positions)
    aud_dims: int  # encoder width (must equal text_dims: cross-attention projects it with d x d)
    aud_head: int  # encoder attention heads
    aud_idx: int  # encoder layers per feature
    act: str = "gelu"  # activation of the encoder Residuals and the pitch front end
    debug: list = field(default_factory=list)  # reference debug flags; no effect here
    cross_attn: bool = True  # decoder._blocks carry attnb/lnb (unused: they get no audio)
    features: list = field(default_factory=lambda: ["spectrogram"])  # audio streams, in order
    f0_rotary: bool = False  # rotary theta follows F0 (else the learned inv_freq is used)
    # Project switches (defaults = the reference's behaviour, see echo_reference.md):
    decoder_mask: str = "additive"  # "additive" (reference: NOT causal) or "causal"
    pitch_bias: bool = False  # add rotary.pitch_bias to audio self-attention (reference: never)
    pitch_bias_scale: float = 1.0  # multiplier of that bias before it is added to the scores
    theta_mode: str = "mean_f0"  # "mean_f0" (reference: one theta per batch) or "per_frame"
    f0_mean: str = "batch"  # mean F0 for theta: "batch" (reference) or "voiced" (per utterance)
    variable_radius: bool = False  # learned per-pair radius rope.radius (weights pair k by r_k^2)
    spec_stride: int = 1  # stride of the spectrogram front end's first conv (reference: 1)

    def __post_init__(self):
        _validate(self)

    @classmethod
    def from_dict(cls, d: dict) -> "EchoDims":
        """Build from a plain dict; unknown keys or bad values raise ConfigError naming them."""
        if not isinstance(d, dict):
            raise ConfigError(f"dims must be a dict of fields, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown config field(s) {unknown}; accepted: {sorted(known)}")
        required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        missing = [name for name in required if name not in d]
        if missing:
            raise ConfigError(f"missing config field(s) {missing}")
        values = dict(d)
        for name in ("debug", "features"):
            if isinstance(values.get(name), tuple):
                values[name] = list(values[name])
        return cls(**values)

    def to_dict(self) -> dict:
        """Plain JSON-ready dict; ``EchoDims.from_dict(dims.to_dict()) == dims``."""
        return dataclasses.asdict(self)

    @property
    def cgate(self) -> bool:
        """The reference builds CMGate (instead of mlp_gate) only for this exact feature list."""
        return list(self.features) == CGATE_FEATURES


_INT_FIELDS = ("vocab", "text_ctx", "text_dims", "text_head", "text_idx", "mels", "aud_ctx",
               "aud_dims", "aud_head", "aud_idx")
_BOOL_FIELDS = ("cross_attn", "f0_rotary", "pitch_bias", "variable_radius")
SPEC_STRIDES = (1, 2, 3)  # the first conv has kernel 3: a larger stride would skip mel frames
_CHOICES = {"decoder_mask": ("additive", "causal"), "theta_mode": ("mean_f0", "per_frame"),
            "f0_mean": ("batch", "voiced"), "spec_stride": SPEC_STRIDES}


def _validate(d: EchoDims) -> None:
    for name in _INT_FIELDS:
        value = getattr(d, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
        if value == 0 and name not in ("text_idx", "aud_idx"):
            raise ConfigError(f"{name} must be a positive integer, got 0")
    for name in _BOOL_FIELDS:
        if not isinstance(getattr(d, name), bool):
            raise ConfigError(f"{name} must be true or false, got {getattr(d, name)!r}")
    for name, choices in _CHOICES.items():
        value = getattr(d, name)
        if isinstance(value, bool) or value not in choices:
            raise ConfigError(f"{name} must be one of {list(choices)}, got {getattr(d, name)!r}")
    if not isinstance(d.act, str) or d.act not in ACTIVATIONS:
        raise ConfigError(f"act must be one of {sorted(ACTIVATIONS)}, got {d.act!r} (the "
                          "reference silently uses GELU for any other value: write 'gelu')")
    if not isinstance(d.debug, list):
        raise ConfigError(f"debug must be a list, got {d.debug!r}")
    scale = d.pitch_bias_scale
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
        raise ConfigError(f"pitch_bias_scale must be a finite number, got {scale!r}")
    feats = d.features
    if not isinstance(feats, list) or not feats or any(f not in FEATURE_INPUTS for f in feats) \
            or len(set(feats)) != len(feats):
        raise ConfigError(f"features must be a non-empty list of distinct names from "
                          f"{list(FEATURE_INPUTS)}, got {feats!r}")
    for prefix in ("text", "aud"):
        dims, head = getattr(d, f"{prefix}_dims"), getattr(d, f"{prefix}_head")
        if dims % head or (dims // head) % 2:
            raise ConfigError(f"{prefix}_dims ({dims}) must be a multiple of {prefix}_head "
                              f"({head}) with an even head dimension (rotary pairs channels)")
    if d.aud_dims != d.text_dims:
        raise ConfigError(f"aud_dims ({d.aud_dims}) must equal text_dims ({d.text_dims}): the "
                          "decoder's cross-attention projects audio states with d x d weights")
    if "waveform" in feats and d.aud_dims % 8:
        raise ConfigError(f"aud_dims must be a multiple of 8 with the waveform feature "
                          f"(its front end has d/8 and d/4 channels), got {d.aud_dims}")


# ---------------------------------------------------------------------------------------------
# Building blocks

ACTIVATIONS = {
    "gelu": nn.GELU, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "swish": nn.SiLU,
    "tanhshrink": nn.Tanhshrink, "softplus": nn.Softplus, "softshrink": nn.Softshrink,
    "leaky_relu": nn.LeakyReLU, "elu": nn.ELU,
}


def get_activation(act) -> nn.Module:
    """Activation by name; anything else (even a module object) falls back to GELU, as in the
    reference: that is why the spectrogram and waveform front ends always use GELU."""
    if isinstance(act, str) and act in ACTIVATIONS:
        return ACTIVATIONS[act]()
    return nn.GELU()


class Linear(nn.Module):
    """nn.Linear kept under ``.linear`` (the reference's key layout); xavier weights, zero bias
    (the init the spec's at-initialisation gate/MLP ratio sqrt(5d/(d+1)) assumes)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        nn.init.xavier_uniform_(self.linear.weight)
        if bias:
            nn.init.zeros_(self.linear.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x)


class RMSNorm(nn.Module):
    """RMS normalisation with a learned gain (eps 1e-8 as in the reference)."""

    def __init__(self, dims: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dims))

    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x, self.weight.shape, self.weight, eps=RMS_EPS)


class HookPoint(nn.Module):
    """Identity with a module path, so hooks can see tensors that are not a module's output
    (attention maps). Callers check ``active`` to build costly extras only when captured."""

    def forward(self, x):
        return x

    @property
    def active(self) -> bool:
        return bool(self._forward_hooks)


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> Tensor:
    """Whisper's fixed positional table (length, channels): [sin | cos] halves."""
    if channels % 2:
        raise ConfigError(f"sinusoids need an even channel count, got {channels}")
    increment = math.log(max_timescale) / (channels // 2 - 1)
    inv_timescales = torch.exp(-increment * torch.arange(channels // 2, dtype=torch.float32))
    scaled_time = torch.arange(length, dtype=torch.float32)[:, None] * inv_timescales[None, :]
    return torch.cat([torch.sin(scaled_time), torch.cos(scaled_time)], dim=1)  # (length, C)


def _f0_rows(f0: Tensor, n: int) -> Tensor:
    """F0 as (rows, n): batch rows kept, the frame axis mapped onto n positions by nearest frame
    in time (position i covers the fraction (i + 0.5) / n of the utterance)."""
    f0 = f0.reshape(-1, f0.shape[-1]) if f0.ndim > 1 else f0.reshape(1, -1)  # (rows, T)
    frames = f0.shape[-1]
    if frames == n:
        return f0
    index = ((torch.arange(n, device=f0.device) + 0.5) * frames / n).long().clamp(max=frames - 1)
    return f0[:, index]  # (rows, n)


def per_frame_angles(theta: Tensor, f0_rows: Tensor, head_dim: int) -> Tensor:
    """Rotation angles (rows, n, head_dim/2) accumulated frame by frame: position t has turned by
    sum_{s<t} freq_k(theta_eff(f0_s)). Unvoiced frames (0 Hz) advance at the static theta
    (pitch_factor(0) = 0), so a flat contour reduces to the ordinary t * freq_k."""
    thetas = R.theta_eff(theta, f0_rows.to(theta.dtype))  # (rows, n)
    freqs = R.inv_freq(head_dim, thetas.unsqueeze(-1))  # (rows, n, d/2)
    steps = torch.cumsum(freqs, dim=1)
    return torch.cat([torch.zeros_like(steps[:, :1]), steps[:, :-1]], dim=1)  # (rows, n, d/2)


class rotary(nn.Module):  # noqa: N801  (the reference's class name)
    """Rotary position embedding with F0-modulated theta (vRoPE); formulas in rotary.py.

    Without f0 the learned ``inv_freq`` sets the frequencies; with f0 they come from
    theta_eff(theta, mean F0) (``inv_freq``, ``min_theta``, ``max_theta`` are then unused, as in
    the reference). ``pitch_scale`` is the pitch bias' temperature.
    """

    def __init__(self, dims: int, variable_radius: bool = False, f0_mean: str = "batch"):
        super().__init__()
        self.dims = R.check_head_dim(dims)
        self.f0_mean = f0_mean  # "batch" (reference) or "voiced" (per utterance), see EchoDims
        base = torch.as_tensor(R.inv_freq(dims, INV_FREQ_BASE), dtype=torch.float32)
        self.inv_freq = nn.Parameter(base)
        self.theta = nn.Parameter(torch.tensor(THETA_INIT))
        self.min_theta = nn.Parameter(torch.tensor(600.0))
        self.max_theta = nn.Parameter(torch.tensor(2400.0))
        self.pitch_scale = nn.Parameter(torch.tensor(1.0))
        if variable_radius:
            self.radius = nn.Parameter(torch.ones(dims // 2))

    def angles(self, n: int, f0: Tensor | None = None, per_frame: bool = False) -> Tensor:
        """Rotation angle of each position and pair: (1, n, d/2), or (rows, n, d/2) per frame."""
        if f0 is not None and per_frame:
            return per_frame_angles(self.theta, _f0_rows(f0.float(), n), self.dims)
        if f0 is None:
            freqs = self.inv_freq.unsqueeze(0)  # (1, d/2)
        elif self.f0_mean == "voiced":
            rows = f0.float().reshape(-1, f0.shape[-1])  # (rows, T)
            voiced = rows > 0
            mean = (rows * voiced).sum(-1) / voiced.sum(-1).clamp(min=1)  # 0 when none voiced
            freqs = R.inv_freq(self.dims, R.theta_eff(self.theta, mean).unsqueeze(-1))  # (rows, d/2)
        else:
            theta = R.theta_eff(self.theta, f0.float().mean())  # whole tensor, zeros included
            freqs = R.inv_freq(self.dims, theta).unsqueeze(0)  # (1, d/2)
        t = torch.arange(n, device=freqs.device, dtype=freqs.dtype)
        return t[None, :, None] * freqs[:, None, :]  # (rows, n, d/2)

    def forward(self, n: int, f0: Tensor | None = None, per_frame: bool = False) -> Tensor:
        """Unit complex rotations exp(i angle) (times the learned radius if any)."""
        angles = self.angles(n, f0, per_frame)
        radius = getattr(self, "radius", None)
        magnitude = torch.ones_like(angles) if radius is None else radius.expand_as(angles)
        return torch.polar(magnitude, angles)


def apply_rotary(x: Tensor, freqs: Tensor) -> Tensor:
    """Rotate adjacent channel pairs (x[2k], x[2k+1]) read as complex numbers by ``freqs``.

    x (B, H, n, hd); freqs (rows, n, hd/2) complex with rows 1 or B.
    """
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))  # (B, H, n, hd/2)
    rotated = pairs * freqs.unsqueeze(1)  # (rows, 1, n, hd/2) broadcast over heads
    return torch.view_as_real(rotated).flatten(-2).type_as(x)  # (B, H, n, hd)


class MultiheadA(nn.Module):
    """Attention with vRoPE, the reference's zero-key scale and an optional pitch bias.

    Explicit (unfused) path so the pre-softmax scores exist; ``attention_maps`` (a HookPoint)
    receives {"scores", "weights", "pitch_bias"} only when a hook listens.
    """

    def __init__(self, dims: int, head: int, *, audio: bool = False, f0_rotary: bool = True,
                 theta_mode: str = "mean_f0", pitch_bias: bool = False,
                 pitch_bias_scale: float = 1.0, variable_radius: bool = False,
                 f0_mean: str = "batch"):
        super().__init__()
        self.head = head
        self.head_dim = dims // head
        self.audio = audio  # queries are audio frames (encoder) rather than text tokens
        self.f0_rotary = f0_rotary  # False: f0 is only looked at for the pitch bias (and hooks)
        self.per_frame = theta_mode == "per_frame"
        self.use_pitch_bias = pitch_bias
        self.pitch_bias_scale = pitch_bias_scale
        self.q = Linear(dims, dims)
        self.k = Linear(dims, dims, bias=False)
        self.v = Linear(dims, dims)
        self.o = Linear(dims, dims)
        self.fzero = nn.Parameter(torch.tensor(1e-4))
        self.rope = rotary(self.head_dim, variable_radius=variable_radius, f0_mean=f0_mean)
        self.attention_maps = HookPoint()

    def pitch_bias_map(self, f0: Tensor, n: int) -> Tensor:
        """rotary.pitch_bias per batch row, scaled: (rows, 1, n, n), 0 for unvoiced rows/cols."""
        bias = R.pitch_bias(_f0_rows(f0.float(), n), self.rope.pitch_scale)  # (rows, n, n)
        return (self.pitch_bias_scale * bias).unsqueeze(1)  # (rows, 1, n, n)

    def _heads(self, x: Tensor) -> Tensor:
        """(B, n, d) -> (B, H, n, hd)."""
        return x.view(x.shape[0], x.shape[1], self.head, self.head_dim).permute(0, 2, 1, 3)

    def _rotations(self, n: int, f0: Tensor | None, per_frame: bool, start: int,
                   cache: dict | None = None) -> Tensor:
        """Rotations of positions start..start+n-1 (text positions only ever start > 0). With a
        decoding ``cache`` the text rotations are computed once for TEXT_ROTATIONS positions
        (the F0 does not change while a clip is decoded) and sliced at every step."""
        if cache is None:
            rotations = self.rope(start + n, f0, per_frame=per_frame)
            return rotations[:, start:] if start else rotations
        table = cache.get("rotations")
        if table is None or table.shape[1] < start + n:  # grows by doubling past the first
            size = max(start + n, TEXT_ROTATIONS, 0 if table is None else 2 * table.shape[1])
            table = cache["rotations"] = self.rope(size, f0, per_frame=per_frame)
        return table[:, start:start + n]

    def forward(self, x: Tensor, xa: Tensor | None = None, mask: Tensor | None = None,
                f0: Tensor | None = None, cache: dict | None = None, start: int = 0) -> Tensor:
        """``cache`` (incremental decoding with a causal mask): a dict in which this module
        keeps its rotated keys and values across calls. x then holds positions start.. of the
        text; self-attention appends their keys to those of positions 0..start-1, and
        cross-attention computes the audio keys once. ``mask`` must then be given as the
        (new queries, all keys) block."""
        source = x if xa is None else xa
        q = self._heads(self.q(x))  # (B, H, nq, hd)
        nq = q.shape[2]
        keys_audio = self.audio or xa is not None  # cross-attention keys are audio frames
        rope_f0 = f0 if self.f0_rotary else None
        text_cache = cache if cache is not None and not self.audio else None  # text positions
        q = apply_rotary(q, self._rotations(nq, rope_f0, self.per_frame and self.audio, start,
                                            text_cache))
        if cache is not None and xa is not None and "k" in cache:
            k, v = cache["k"], cache["v"]  # the audio does not change between steps
        else:
            k, v = self._heads(self.k(source)), self._heads(self.v(source))  # (B, H, n, hd)
            k_start = start if xa is None else 0
            k = apply_rotary(k, self._rotations(k.shape[2], rope_f0, self.per_frame and keys_audio,
                                                k_start, text_cache if xa is None else None))
            if cache is not None:
                if xa is None and "k" in cache:
                    k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
                cache["k"], cache["v"] = k, v
        nk = k.shape[2]

        scale = self.head_dim ** -0.25
        scores = (q * scale) @ (k * scale).transpose(-1, -2)  # (B, H, nq, nk)
        # Zero scale: keys whose first channel is exactly 0 get clamp(softplus(fzero), 0, 1e-3).
        small = torch.clamp(F.softplus(self.fzero), 0.0, ZERO_KEY_SCALE_MAX)
        z = torch.where(k[..., 0] == 0, small, torch.ones_like(small))  # (B, H, nk)
        z = z.unsqueeze(-2)  # (B, H, 1, nk)
        if mask is not None and mask.dtype != torch.bool:
            scores = scores + mask[:nq, :nq] * z  # reference: additive, broadcast over queries
        scores = scores * z
        if mask is not None and mask.dtype == torch.bool:
            scores = scores.masked_fill(mask[:nq, :nk], float("-inf"))  # True = blocked

        bias = None
        self_audio = self.audio and xa is None and f0 is not None
        if self_audio and (self.use_pitch_bias or self.attention_maps.active):
            bias = self.pitch_bias_map(f0, nq)
        if self.use_pitch_bias and bias is not None:
            scores = scores + bias  # (rows, 1, nq, nq) broadcast over heads
        weights = F.softmax(scores.float(), dim=-1).type_as(scores)
        if self.attention_maps.active:
            applied = bool(self.use_pitch_bias and bias is not None)
            self.attention_maps({"scores": scores, "weights": weights, "pitch_bias": bias,
                                 "pitch_bias_applied": applied, "masked": mask is not None})
        out = (weights @ v).permute(0, 2, 1, 3).flatten(start_dim=2)  # (B, nq, d)
        return self.o(out)


class CMGate(nn.Module):
    """The reference's cross-modal gate: three scalar gates and a 3d -> d integration. It is
    built (so its weights load) but the reference never calls it, so it has no forward here."""

    def __init__(self, dims: int):
        super().__init__()
        self.sgate = nn.Sequential(Linear(dims, 1), nn.Sigmoid())
        self.wgate = nn.Sequential(Linear(dims, 1), nn.Sigmoid())
        self.pgate = nn.Sequential(Linear(dims, 1), nn.Sigmoid())
        self.integration = Linear(dims * 3, dims)


class Residual(nn.Module):
    """Pre-norm block: self-attention, optional gated cross-attention, gated MLP."""

    def __init__(self, dims: int, head: int, act="gelu", cross_attn: bool = True,
                 cgate: bool = False, **attention_options):
        super().__init__()
        self.blend = nn.Parameter(torch.tensor(0.5))  # sigmoid(blend) weighs x against cross-attn
        self.attna = MultiheadA(dims, head, **attention_options)
        self.attnb = MultiheadA(dims, head, **attention_options) if cross_attn else None
        self.mlp = nn.Sequential(Linear(dims, dims * 4), get_activation(act),
                                 Linear(dims * 4, dims))
        self.lna = RMSNorm(dims)
        self.lnb = RMSNorm(dims) if cross_attn else None
        self.lnc = RMSNorm(dims)
        if cgate:
            self.cgate = CMGate(dims)
        else:
            self.mlp_gate = nn.Sequential(Linear(dims, 1), nn.Sigmoid())

    def forward(self, x: Tensor, xa: Tensor | None = None, mask: Tensor | None = None,
                f0: Tensor | None = None, cache: dict | None = None, start: int = 0) -> Tensor:
        """``cache``/``start``: incremental decoding (see MultiheadA.forward)."""
        caches = (None, None) if cache is None else (cache.setdefault("self", {}),
                                                     cache.setdefault("cross", {}))
        x = x + self.attna(self.lna(x), mask=mask, f0=f0, cache=caches[0], start=start)
        if self.attnb is not None and xa is not None:
            c = self.attnb(self.lnb(x), xa, f0=f0, cache=caches[1], start=start)
            b = torch.sigmoid(self.blend)
            x = b * x + (1 - b) * c
        h = self.lnc(x)
        gate = getattr(self, "mlp_gate", None)
        return x + (gate(h) * self.mlp(h) if gate is not None else self.mlp(h))


class FEncoder(nn.Module):
    """Conv front end for spectrogram (kernel 3) and pitch (kernel 9, stride 2) inputs."""

    def __init__(self, input_dims: int, dims: int, kernel_size: int, act, stride: int = 1):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv1d(input_dims, dims, kernel_size, stride=stride, padding=kernel_size // 2),
            get_activation(act),
            nn.Conv1d(dims, dims, 5, padding=2), get_activation(act),
            nn.Conv1d(dims, dims, 3, padding=1, groups=dims), get_activation(act))
        self._norm = RMSNorm(dims)
        self.norm = RMSNorm(dims)  # present in the reference's weights, never used

    def forward(self, x: Tensor) -> Tensor:
        x = self.encoder(x).permute(0, 2, 1)  # (B, C, T) -> (B, T, C)
        x = x + sinusoids(x.shape[1], x.shape[2]).to(x)
        return self._norm(x)


class WEncoder(nn.Module):
    """Raw-waveform front end: strided convs downsample 160x, then a grouped conv."""

    def __init__(self, input_dims: int, dims: int, act=None):
        super().__init__()
        self.downsample = nn.Sequential(
            nn.Conv1d(input_dims, dims // 8, 15, stride=8, padding=7), get_activation(act),
            nn.Conv1d(dims // 8, dims // 4, 7, stride=4, padding=3), get_activation(act),
            nn.Conv1d(dims // 4, dims, 9, stride=5, padding=4), get_activation(act))
        self.encoder = nn.Sequential(
            nn.Conv1d(dims, dims, 3, padding=1, groups=dims // 8), get_activation(act),
            nn.Conv1d(dims, dims, 1), get_activation(act))
        self.norm = RMSNorm(dims)

    def forward(self, x: Tensor) -> Tensor:
        x = self.encoder(self.downsample(x)).permute(0, 2, 1)  # (B, C, T) -> (B, T, C)
        x = x + sinusoids(x.shape[1], x.shape[2]).to(x)
        return self.norm(x)


# ---------------------------------------------------------------------------------------------
# Encoder, decoder, model

def _as_channels(x: Tensor) -> Tensor:
    """(B, T) -> (B, 1, T) for the one-channel inputs (waveform, pitch)."""
    return x.unsqueeze(1) if x.ndim == 2 else x


class AudioEncoder(nn.Module):
    """One stack per feature: a front end then aud_idx Residuals (built with cross-attention
    though no audio is ever given to them). Returns {feature: (B, T, d)}."""

    def __init__(self, dims: EchoDims):
        super().__init__()
        d, head = dims.aud_dims, dims.aud_head
        self.features = list(dims.features)
        self.f0_rotary = dims.f0_rotary
        self.rope = rotary(d // head)  # present in the reference's weights, never used
        options = dict(audio=True, f0_rotary=dims.f0_rotary, theta_mode=dims.theta_mode,
                       pitch_bias=dims.pitch_bias, pitch_bias_scale=dims.pitch_bias_scale,
                       variable_radius=dims.variable_radius, f0_mean=dims.f0_mean)
        front = {"spectrogram": lambda: FEncoder(dims.mels, d, 3, act=nn.GELU(),
                                                  stride=dims.spec_stride),
                 "waveform": lambda: WEncoder(1, d, act=nn.GELU()),
                 "pitch": lambda: FEncoder(1, d, 9, act=dims.act, stride=2)}
        self.blocks = nn.ModuleDict()
        for name in FEATURE_SLOTS:
            layers = []
            if name in self.features:
                layers = [front[name]()] + [
                    Residual(d, head, dims.act, cross_attn=True, cgate=dims.cgate, **options)
                    for _ in range(dims.aud_idx)]
            self.blocks[name] = nn.ModuleList(layers)

    def forward(self, inputs: dict, f0: Tensor | None = None) -> dict:
        """inputs: {feature: tensor or None}. f0 (falling back to the pitch input, as in the
        reference) reaches every attention, which uses it for theta only when f0_rotary."""
        if f0 is None and inputs.get("pitch") is not None:
            f0 = inputs["pitch"]
        out = {}
        for name in self.features:
            if inputs.get(name) is None:
                continue
            x = inputs[name]
            x = _as_channels(x) if name != "spectrogram" else x
            front, *residuals = self.blocks[name]
            x = front(x)  # (B, T, d)
            for block in residuals:
                x = block(x, f0=f0)
            out[name] = x
        return out


class TextDecoder(nn.Module):
    """Token + learned positions, self-attention blocks, then per-feature cross-attention blocks
    (only the last block's output of each feature is kept: the reference's quirk)."""

    def __init__(self, dims: EchoDims):
        super().__init__()
        d, head = dims.text_dims, dims.text_head
        options = dict(f0_rotary=dims.f0_rotary, theta_mode=dims.theta_mode,
                       variable_radius=dims.variable_radius, f0_mean=dims.f0_mean)
        self.features = list(dims.features)
        self.decoder_mask = dims.decoder_mask
        self.token = nn.Embedding(dims.vocab, d)
        self.positional = nn.Parameter(torch.empty(dims.text_ctx, d))
        nn.init.normal_(self.token.weight, std=0.02)
        nn.init.normal_(self.positional, std=0.02)
        self._blocks = nn.ModuleList([Residual(d, head, "gelu", cross_attn=dims.cross_attn,
                                               **options) for _ in range(dims.text_idx)])
        self.blocks = nn.ModuleDict({
            name: nn.ModuleList([Residual(d, head, "gelu", cross_attn=True, **options)
                                 for _ in range(dims.text_idx)]) for name in self.features})
        self.blend = nn.ParameterDict({name: nn.Parameter(torch.tensor(0.5))
                                       for name in self.features})
        self.ln_dec = RMSNorm(d)

    def mask(self, n: int, device=None) -> Tensor:
        """"additive": float lower-triangular ones added to the scores of the _blocks (the
        reference; the future is NOT blocked). "causal": bool, True above the diagonal (blocked),
        used by every decoder self-attention."""
        ones = torch.ones(n, n, device=device)
        if self.decoder_mask == "causal":
            return torch.triu(ones, diagonal=1).bool()
        return torch.tril(ones)

    def forward(self, ids: Tensor, enc: dict, f0: Tensor | None = None,
                cache: dict | None = None) -> Tensor:
        """Logits (B, L, vocab) of the prefix ``ids`` (B, L).

        ``cache`` (a dict, empty at the first call; causal decoders only): incremental
        decoding. Each call then runs only the tokens added since the last one, reusing every
        attention's keys and values, and returns their logits (B, new, vocab): the same
        numbers as the full forward, at one token's cost per step.
        """
        length = ids.shape[-1]
        start = 0 if cache is None else cache.get("length", 0)
        if cache is not None and self.decoder_mask != "causal":
            raise EchoError("incremental decoding needs decoder_mask='causal': with the "
                            "reference's additive mask later tokens change earlier positions")
        if not 0 <= start < length:
            raise EchoError(f"the cache holds {start} positions; the prefix must be longer "
                            f"({length} tokens given)")
        x = self.token(ids[:, start:]) + self.positional[start:length]  # (B, new, d)
        mask = self.mask(length, device=x.device)[start:]  # rows of the new positions
        block_cache = (lambda key: None) if cache is None else \
            (lambda key: cache.setdefault(key, {}))
        for i, block in enumerate(self._blocks):
            x = block(x, mask=mask, f0=f0, cache=block_cache(("_blocks", i)), start=start)
        # The reference gives the feature blocks no mask at all; a causal decoder must mask them.
        feature_mask = mask if self.decoder_mask == "causal" else None
        for name in self.features:
            if name not in enc:
                continue
            out = x
            for i, block in enumerate(self.blocks[name]):  # same x: the last one's output kept
                out = block(x, xa=enc[name], mask=feature_mask, f0=f0,
                            cache=block_cache((name, i)), start=start)
            a = torch.sigmoid(self.blend[name])
            x = a * out + (1 - a) * x
        x = self.ln_dec(x)
        if cache is not None:
            cache["length"] = length
        return x @ self.token.weight.to(x.dtype).T  # (B, new, vocab)


class Echo(nn.Module):
    """The reference Echo speech recogniser; ``model.meta`` carries checkpoint information."""

    def __init__(self, dims: EchoDims | dict):
        super().__init__()
        if isinstance(dims, dict):
            dims = EchoDims.from_dict(dims)
        if not isinstance(dims, EchoDims):
            raise ConfigError(f"Echo needs EchoDims or a dict of fields, got {type(dims).__name__}")
        self.dims = dims
        self.meta: dict = {}
        self.encoder = AudioEncoder(dims)
        self.decoder = TextDecoder(dims)

    def _check_inputs(self, input_ids: Tensor, f0: Tensor | None) -> None:
        if input_ids.ndim != 2:
            raise EchoError(f"input_ids must be (batch, tokens), got shape "
                            f"{tuple(input_ids.shape)}")
        if input_ids.shape[1] > self.dims.text_ctx:
            raise EchoError(f"{input_ids.shape[1]} tokens exceed text_ctx={self.dims.text_ctx}")
        if f0 is not None and not torch.isfinite(f0).all():
            raise EchoError("f0 contains NaN or inf; the model wants 0 Hz for unvoiced frames "
                            "(convert a track with pitch.f0_for_model)")
        if f0 is not None and f0.ndim == 2 and f0.shape[0] not in (1, input_ids.shape[0]):
            raise EchoError(f"f0 has {f0.shape[0]} rows for a batch of {input_ids.shape[0]}; "
                            "give one row per utterance (or one row for all)")

    def encode(self, spectrogram=None, waveform=None, pitch=None, f0=None) -> dict:
        """Encoder states {feature: (B, T, d)} for the features given and configured."""
        inputs = {"spectrogram": spectrogram, "waveform": waveform, "pitch": pitch}
        return self.encoder(inputs, f0=f0)

    def forward(self, input_ids: Tensor, spectrogram: Tensor | None = None,
                waveform: Tensor | None = None, pitch: Tensor | None = None,
                f0: Tensor | None = None, labels: Tensor | None = None) -> dict:
        """logits (B, L, vocab); loss (cross-entropy, index 0 ignored) when labels are given.
        f0: (B, T) or (1, T) Hz with 0 = unvoiced, e.g. from pitch.f0_for_model."""
        self._check_inputs(input_ids, f0)
        enc = self.encode(spectrogram, waveform, pitch, f0)
        logits = self.decoder(input_ids, enc, f0)  # used for theta only when f0_rotary
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                                          labels.reshape(-1).long(), ignore_index=0)
        return out
