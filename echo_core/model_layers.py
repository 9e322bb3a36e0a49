"""The Echo model's building blocks, module for module as the reference.

Parameter names are the reference's (``.linear``, ``attna``, ``rope.inv_freq`` ...), so a
reference state dict loads with ``strict=True``. The blocks take plain ints and can be built
alone; only :class:`echo_core.model.Echo` sees :class:`echo_core.model_dims.EchoDims`. The
rotary math lives in :mod:`echo_core.rotary`, shared with the workbench's pictures.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import rotary as R
from .errors import ConfigError
from .model_dims import ACTIVATIONS as ACTIVATION_NAMES

INV_FREQ_BASE = 19000.0  # initial base of the learned inv_freq (used only without f0)
THETA_INIT = 10000.0  # initial rotary theta (the base modulated by F0)
RMS_EPS = 1e-8
ZERO_KEY_SCALE_MAX = 0.001  # clamp of softplus(fzero), the scale of keys whose channel 0 is 0
TEXT_ROTATIONS = 64  # text positions whose rotations incremental decoding computes at once


ACTIVATIONS = dict(zip(ACTIVATION_NAMES, (  # the modules behind the config's names
    nn.GELU, nn.ReLU, nn.Sigmoid, nn.Tanh, nn.SiLU, nn.Tanhshrink, nn.Softplus, nn.Softshrink,
    nn.LeakyReLU, nn.ELU)))


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


class rotary(nn.Module):  # noqa: N801  (the reference's class name)
    """Rotary position embedding with F0-modulated theta (vRoPE); formulas in rotary.py.

    Without f0 the learned ``inv_freq`` sets the frequencies; with f0 they come from
    theta_eff(theta, mean F0) (``inv_freq``, ``min_theta``, ``max_theta`` are then unused, as in
    the reference). ``pitch_scale`` is the pitch bias' temperature.
    """

    def __init__(self, dims: int, variable_radius: bool = False, f0_mean: str = "batch",
                 freeze_theta: float = 0.0):
        super().__init__()
        self.dims = R.check_head_dim(dims)
        self.f0_mean = f0_mean  # "batch" (reference) or "voiced" (per utterance), see EchoDims
        if freeze_theta:  # the no-pitch control: fixed frequencies, a buffer nothing trains
            self.register_buffer("inv_freq", torch.as_tensor(
                R.inv_freq(dims, float(freeze_theta)), dtype=torch.float32))
        else:
            base = torch.as_tensor(R.inv_freq(dims, INV_FREQ_BASE), dtype=torch.float32)
            self.inv_freq = nn.Parameter(base)
        self.theta = nn.Parameter(torch.tensor(THETA_INIT))
        self.min_theta = nn.Parameter(torch.tensor(600.0))
        self.max_theta = nn.Parameter(torch.tensor(2400.0))
        self.pitch_scale = nn.Parameter(torch.tensor(1.0))
        if variable_radius:
            self.radius = nn.Parameter(torch.ones(dims // 2))

    def angles(self, n: int, f0: Tensor | None = None, per_frame: bool = False,
               f0_positions: Tensor | None = None) -> Tensor:
        """Rotation angle of each position and pair: (1, n, d/2), or (rows, n, d/2) per frame.
        ``f0_positions``: F0 already on the n positions (key padding: by each clip's length)."""
        if f0 is not None and per_frame:
            on_positions = f0_positions if f0_positions is not None else \
                R.f0_at_positions(f0.float(), n)
            return R.rotation_angles_per_frame(on_positions.float(), self.dims,
                                               self.theta)  # (rows, n, d/2)
        if f0 is None:
            freqs = self.inv_freq.unsqueeze(0)  # (1, d/2)
        else:  # (rows,) per utterance ("voiced") or one value for the batch (the reference)
            theta = R.theta_eff(self.theta, R.mean_f0(f0, self.f0_mean)).reshape(-1, 1)
            freqs = R.inv_freq(self.dims, theta)  # (rows or 1, d/2)
        t = torch.arange(n, device=freqs.device, dtype=freqs.dtype)
        return t[None, :, None] * freqs[:, None, :]  # (rows, n, d/2)

    def forward(self, n: int, f0: Tensor | None = None, per_frame: bool = False,
                f0_positions: Tensor | None = None) -> Tensor:
        """Unit complex rotations exp(i angle) (times the learned radius if any)."""
        angles = self.angles(n, f0, per_frame, f0_positions)
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
                 f0_mean: str = "batch", freeze_theta: float = 0.0):
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
        self.rope = rotary(self.head_dim, variable_radius=variable_radius, f0_mean=f0_mean,
                           freeze_theta=freeze_theta)
        self.attention_maps = HookPoint()

    def pitch_bias_map(self, f0: Tensor, n: int, f0_positions: Tensor | None = None) -> Tensor:
        """rotary.pitch_bias per batch row, scaled: (rows, 1, n, n), 0 for unvoiced rows/cols."""
        on_positions = f0_positions if f0_positions is not None else \
            R.f0_at_positions(f0.float(), n)
        bias = R.pitch_bias(on_positions.float(), self.rope.pitch_scale)  # (rows, n, n)
        return (self.pitch_bias_scale * bias).unsqueeze(1)  # (rows, 1, n, n)

    def _heads(self, x: Tensor) -> Tensor:
        """(B, n, d) -> (B, H, n, hd)."""
        return x.view(x.shape[0], x.shape[1], self.head, self.head_dim).permute(0, 2, 1, 3)

    def _rotations(self, n: int, f0: Tensor | None, per_frame: bool, start: int,
                   cache: dict | None = None, f0_positions: Tensor | None = None) -> Tensor:
        """Rotations of positions start..start+n-1 (text positions only ever start > 0). With a
        decoding ``cache`` the text rotations are computed once for TEXT_ROTATIONS positions
        (the F0 does not change while a clip is decoded) and sliced at every step."""
        if cache is None:
            return self.rope(start + n, f0, per_frame=per_frame,
                             f0_positions=f0_positions if per_frame else None)[:, start:]
        table = cache.get("rotations")
        if table is None or table.shape[1] < start + n:  # grows by doubling past the first
            size = max(start + n, TEXT_ROTATIONS, 0 if table is None else 2 * table.shape[1])
            table = cache["rotations"] = self.rope(size, f0, per_frame=per_frame)
        return table[:, start:start + n]

    def forward(self, x: Tensor, xa: Tensor | None = None, mask: Tensor | None = None,
                f0: Tensor | None = None, cache: dict | None = None, start: int = 0,
                key_padding: Tensor | None = None, f0_positions: Tensor | None = None) -> Tensor:
        """``cache`` (incremental decoding with a causal mask): a dict in which this module
        keeps its rotated keys and values across calls. x then holds positions start.. of the
        text; self-attention appends their keys to those of positions 0..start-1, and
        cross-attention computes the audio keys once. ``mask`` must then be given as the
        (new queries, all keys) block. ``key_padding`` (B, audio positions) bool, True =
        padding: those audio keys are blocked (EchoDims.key_padding_mask); ``f0_positions``
        (B, audio positions): F0 on the audio positions by each clip's own length, for the
        per-frame rotary and the pitch bias."""
        source = x if xa is None else xa
        q = self._heads(self.q(x))  # (B, H, nq, hd)
        nq = q.shape[2]
        keys_audio = self.audio or xa is not None  # cross-attention keys are audio frames
        rope_f0 = f0 if self.f0_rotary else None
        text_cache = cache if cache is not None and not self.audio else None  # text positions
        q = apply_rotary(q, self._rotations(nq, rope_f0, self.per_frame and self.audio, start,
                                            text_cache, f0_positions if self.audio else None))
        if cache is not None and xa is not None and "k" in cache:
            k, v = cache["k"], cache["v"]  # the audio does not change between steps
        else:
            k, v = self._heads(self.k(source)), self._heads(self.v(source))  # (B, H, n, hd)
            k_start = start if xa is None else 0
            k = apply_rotary(k, self._rotations(k.shape[2], rope_f0, self.per_frame and keys_audio,
                                                k_start, text_cache if xa is None else None,
                                                f0_positions if keys_audio else None))
            if cache is not None:
                if xa is None and "k" in cache:
                    k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
                elif xa is not None:  # kept for every step: contiguous once, not per matmul
                    v = v.contiguous()
                cache["k"], cache["v"] = k, v
        nk = k.shape[2]

        scale = self.head_dim ** -0.25
        if cache is not None and xa is not None and "k_scaled" in cache:
            k_scaled, z = cache["k_scaled"], cache["z"]  # the audio keys' part, once per clip
        else:
            k_scaled = (k * scale).transpose(-1, -2)
            # Zero scale: keys whose first channel is 0 get clamp(softplus(fzero), 0, 1e-3).
            small = torch.clamp(F.softplus(self.fzero), 0.0, ZERO_KEY_SCALE_MAX)
            z = torch.where(k[..., 0] == 0, small, torch.ones_like(small))  # (B, H, nk)
            z = z.unsqueeze(-2)  # (B, H, 1, nk)
            if cache is not None and xa is not None:
                k_scaled = k_scaled.contiguous()
                cache["k_scaled"], cache["z"] = k_scaled, z
        scores = (q * scale) @ k_scaled  # (B, H, nq, nk)
        if mask is not None and mask.dtype != torch.bool:
            scores = scores + mask[:nq, :nq] * z  # reference: additive, broadcast over queries
        scores = scores * z
        if mask is not None and mask.dtype == torch.bool:
            scores = scores.masked_fill(mask[:nq, :nk], float("-inf"))  # True = blocked
        if key_padding is not None and keys_audio:
            scores = scores.masked_fill(key_padding[:, None, None, :nk], float("-inf"))

        bias = None
        self_audio = self.audio and xa is None and f0 is not None
        if self_audio and (self.use_pitch_bias or self.attention_maps.active):
            bias = self.pitch_bias_map(f0, nq, f0_positions)
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
                 cgate: bool = False, dropout: float = 0.0, **attention_options):
        super().__init__()
        # residual dropout (EchoDims.dropout): on the self-attention and MLP branches before
        # they join x; an identity in eval mode and at 0, so decoding never sees it
        self.drop = nn.Dropout(dropout)
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
                f0: Tensor | None = None, cache: dict | None = None, start: int = 0,
                key_padding: Tensor | None = None, f0_positions: Tensor | None = None) -> Tensor:
        """``cache``/``start``: incremental decoding; ``key_padding``/``f0_positions``: padded
        audio positions (see MultiheadA.forward)."""
        caches = (None, None) if cache is None else (cache.setdefault("self", {}),
                                                     cache.setdefault("cross", {}))
        self_padding = key_padding if self.attna.audio else None
        x = x + self.drop(self.attna(self.lna(x), mask=mask, f0=f0, cache=caches[0],
                                     start=start, key_padding=self_padding,
                                     f0_positions=f0_positions))
        if self.attnb is not None and xa is not None:
            c = self.attnb(self.lnb(x), xa, f0=f0, cache=caches[1], start=start,
                           key_padding=key_padding, f0_positions=f0_positions)
            b = torch.sigmoid(self.blend)
            x = b * x + (1 - b) * c
        h = self.lnc(x)
        gate = getattr(self, "mlp_gate", None)
        return x + self.drop(gate(h) * self.mlp(h) if gate is not None else self.mlp(h))


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

    def forward(self, x: Tensor, valid: Tensor | None = None) -> Tensor:
        """``valid`` (B, T_out) bool (key padding): conv outputs past each clip's end are
        zeroed after every conv, as a clip alone sees the convs' zero padding there."""
        if valid is None:
            x = self.encoder(x)
        else:
            keep = valid[:, None, :].to(x.dtype)  # (B, 1, T_out)
            for layer in self.encoder:
                x = layer(x)
                if isinstance(layer, nn.Conv1d):
                    x = x * keep
        x = x.permute(0, 2, 1)  # (B, C, T) -> (B, T, C)
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
