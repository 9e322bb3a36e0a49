"""The Echo encoder-decoder (specified in docs/echo_model.md): the audio encoder, the text
decoder and the model, built from :mod:`echo_core.model_layers` by :class:`EchoDims`.

Module names are the reference's, so hooks read like ``encoder.blocks.spectrogram.1``,
``decoder._blocks.0``. Reference quirks are reproduced by default and exposed as switches of
:class:`EchoDims` (``decoder_mask``, ``pitch_bias``, ``theta_mode``); the project's own models
turn them off.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import ConfigError, EchoError
from .model_dims import FEATURE_SLOTS, EchoDims
from . import rotary as R
from .model_layers import FEncoder, Residual, RMSNorm, WEncoder, rotary

@dataclass
class AudioPadding:
    """Where a padded batch's audio ends (EchoDims.key_padding_mask), built by
    :meth:`Echo.padding` from each clip's mel length."""

    frames: Tensor  # (B, T) bool, True = a real mel frame
    positions: Tensor  # (B, n) bool, True = a real encoder position
    f0_positions: Tensor | None  # (B, n) F0 on the positions by each clip's own length

    @property
    def key_padding(self) -> Tensor:
        """(B, n) bool, True = padding: the keys attention must not see."""
        return ~self.positions

    def mask_f0(self, f0: Tensor | None) -> Tensor | None:
        """F0 (B, T) with frames past each clip's end set to 0 (unvoiced), so the mean F0
        behind theta is the clip's own whatever the batch was padded with."""
        if f0 is None or f0.shape[-1] != self.frames.shape[-1]:
            return f0
        return f0 * self.frames.to(f0.dtype)


def cosine_basis(n: int, terms: int) -> Tensor:
    """(n, terms) orthonormal DCT-II basis vectors across n channels: column k is
    c_k cos(pi (i + 1/2) k / n), c_0 = sqrt(1/n), c_k = sqrt(2/n). basis @ basis.T projects a
    spectrum onto its ``terms`` smoothest components (all n: the identity)."""
    i = torch.arange(n, dtype=torch.float64)[:, None] + 0.5
    k = torch.arange(terms, dtype=torch.float64)[None, :]
    scale = torch.where(k == 0, (1.0 / n) ** 0.5, (2.0 / n) ** 0.5)
    return (scale * torch.cos(torch.pi * i * k / n)).float()


def centre_mel(mel: Tensor, frames: Tensor | None = None, terms: int | None = None) -> Tensor:
    """(B, n_mels, T) log-mel less the smooth part of each clip's mean spectrum
    (EchoDims.mel_mean_norm): its first ``terms`` cosine terms across channels (None or
    n_mels: the whole mean, per channel). ``frames`` (B, T) bool marks each clip's real frames:
    the mean is over those alone and padded frames come out 0, so a padded clip is centred
    exactly as it is alone."""
    if frames is None:
        mean = mel.mean(dim=-1, keepdim=True)
        weight = None
    else:
        weight = frames[:, None, :].to(mel.dtype)
        mean = (mel * weight).sum(-1, keepdim=True) / weight.sum(-1, keepdim=True).clamp(min=1)
    n = mel.shape[1]
    if terms is not None and terms < n:
        basis = cosine_basis(n, terms).to(mel.dtype)
        mean = basis @ (basis.T @ mean)  # (n, 1) per clip, batched over B
    out = mel - mean
    return out if weight is None else out * weight


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
        self.mel_mean_norm = dims.mel_mean_norm
        self.rope = rotary(d // head, freeze_theta=dims.freeze_theta)  # in the reference's
        # weights, never used (a frozen control freezes it too: nothing of it trains)
        options = dict(audio=True, f0_rotary=dims.f0_rotary, theta_mode=dims.theta_mode,
                       pitch_bias=dims.pitch_bias, pitch_bias_scale=dims.pitch_bias_scale,
                       variable_radius=dims.variable_radius, f0_mean=dims.f0_mean,
                       freeze_theta=dims.freeze_theta, dropout=dims.dropout)
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

    def forward(self, inputs: dict, f0: Tensor | None = None,
                padding: AudioPadding | None = None) -> dict:
        """inputs: {feature: tensor or None}. f0 (falling back to the pitch input, as in the
        reference) reaches every attention, which uses it for theta only when f0_rotary.
        ``padding`` (key padding mask): padded frames zeroed, padded keys masked."""
        if f0 is None and inputs.get("pitch") is not None:
            f0 = inputs["pitch"]
        out = {}
        for name in self.features:
            if inputs.get(name) is None:
                continue
            x = inputs[name]
            x = _as_channels(x) if name != "spectrogram" else x
            if name == "spectrogram" and self.mel_mean_norm:
                x = centre_mel(x, None if padding is None else padding.frames,
                               terms=self.mel_mean_norm)
            front, *residuals = self.blocks[name]
            if padding is None:
                x = front(x)  # (B, T, d)
                extra = {}
            else:
                x = front(x * padding.frames[:, None, :].to(x.dtype), valid=padding.positions)
                extra = dict(key_padding=padding.key_padding, f0_positions=padding.f0_positions)
            for block in residuals:
                x = block(x, f0=f0, **extra)
            out[name] = x
        return out


class TextDecoder(nn.Module):
    """Token + learned positions, self-attention blocks, then per-feature cross-attention blocks
    (only the last block's output of each feature is kept: the reference's quirk)."""

    def __init__(self, dims: EchoDims):
        super().__init__()
        d, head = dims.text_dims, dims.text_head
        options = dict(f0_rotary=dims.f0_rotary, theta_mode=dims.theta_mode,
                       variable_radius=dims.variable_radius, f0_mean=dims.f0_mean,
                       freeze_theta=dims.freeze_theta, dropout=dims.dropout)
        self.features = list(dims.features)
        self.decoder_mask = dims.decoder_mask
        # A skeleton on the meta device (checkpoint.load_checkpoint's shape check) has no values
        # to draw, and torch's normal_ on meta tensors imports its whole compiler stack (~2.4 s
        # on the first call); a real model draws exactly as it always did (the seeds' stream).
        on_meta = torch.empty(0).device.type == "meta"
        self.token = nn.Embedding(dims.vocab, d, _weight=torch.empty(dims.vocab, d)
                                  if on_meta else None)
        self.positional = nn.Parameter(torch.empty(dims.text_ctx, d))
        if not on_meta:
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

    @property
    def incremental(self) -> bool:
        """Whether a decoding cache may be used: only a causal mask keeps earlier positions
        independent of later tokens."""
        return self.decoder_mask == "causal"

    def forward(self, ids: Tensor, enc: dict, f0: Tensor | None = None,
                cache: dict | None = None, padding: AudioPadding | None = None) -> Tensor:
        """Logits (B, L, vocab) of the prefix ``ids`` (B, L).

        ``cache`` (a dict, empty at the first call; causal decoders only): incremental
        decoding. Each call then runs only the tokens added since the last one, reusing every
        attention's keys and values, and returns their logits (B, new, vocab): the same
        numbers as the full forward, at one token's cost per step. ``padding``: the audio's
        key padding (cross-attention does not see padded encoder positions).
        """
        length = ids.shape[-1]
        start = 0 if cache is None else cache.get("length", 0)
        if cache is not None and not self.incremental:
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
            extra = {} if padding is None else dict(key_padding=padding.key_padding,
                                                    f0_positions=padding.f0_positions)
            for i, block in enumerate(self.blocks[name]):  # same x: the last one's output kept
                out = block(x, xa=enc[name], mask=feature_mask, f0=f0,
                            cache=block_cache((name, i)), start=start, **extra)
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
        if dims.ctc_head:  # frame posteriors for joint CTC/attention decoding (joint_decode)
            self.ctc = nn.Linear(dims.aud_dims, dims.vocab)

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

    def padding(self, spectrogram: Tensor | None, f0: Tensor | None = None,
                lengths=None) -> AudioPadding | None:
        """The key padding of a (B, n_mels, T) batch whose clips have ``lengths`` mel frames
        (None: every clip fills T); None when the model has no key padding mask. Encoder
        position i reads mel frame i * spec_stride, so a clip of L frames has
        ceil(L / spec_stride) positions; its F0 is mapped onto them by time over its own
        frames (rotary.frame_index), exactly as for the clip alone."""
        if not self.dims.key_padding_mask or spectrogram is None:
            return None
        batch, _, n_frames = spectrogram.shape
        stride = self.dims.spec_stride
        n_positions = (n_frames - 1) // stride + 1
        lengths = [n_frames] * batch if lengths is None else [int(v) for v in lengths]
        if len(lengths) != batch or not all(1 <= v <= n_frames for v in lengths):
            raise EchoError(f"lengths must give 1..{n_frames} mel frames for each of the "
                            f"{batch} clips, got {lengths}")
        frames = torch.arange(n_frames)[None, :] < torch.tensor(lengths)[:, None]  # (B, T)
        counts = [(v - 1) // stride + 1 for v in lengths]
        positions = torch.arange(n_positions)[None, :] < torch.tensor(counts)[:, None]  # (B, n)
        f0_positions = None
        if f0 is not None:
            rows = f0.float().reshape(-1, f0.shape[-1]).expand(batch, -1)  # (B, T_f0)
            f0_positions = torch.zeros(batch, n_positions, dtype=torch.float32)
            for b, (length, count) in enumerate(zip(lengths, counts)):
                own = min(rows.shape[-1], round(length * rows.shape[-1] / n_frames))
                index = torch.from_numpy(R.frame_index(max(own, 1), count))
                f0_positions[b, :count] = rows[b, index]
        return AudioPadding(frames=frames, positions=positions, f0_positions=f0_positions)

    def encode(self, spectrogram=None, waveform=None, pitch=None, f0=None,
               padding: AudioPadding | None = None) -> dict:
        """Encoder states {feature: (B, T, d)} for the features given and configured."""
        inputs = {"spectrogram": spectrogram, "waveform": waveform, "pitch": pitch}
        return self.encoder(inputs, f0=f0, padding=padding)

    def forward(self, input_ids: Tensor, spectrogram: Tensor | None = None,
                waveform: Tensor | None = None, pitch: Tensor | None = None,
                f0: Tensor | None = None, labels: Tensor | None = None,
                lengths=None) -> dict:
        """logits (B, L, vocab); loss (cross-entropy, index 0 ignored) when labels are given.
        f0: (B, T) or (1, T) Hz with 0 = unvoiced, e.g. from pitch.f0_for_model. ``lengths``:
        mel frames of each clip of a padded batch (used with EchoDims.key_padding_mask)."""
        self._check_inputs(input_ids, f0)
        padding = self.padding(spectrogram, f0, lengths)
        f0 = f0 if padding is None else padding.mask_f0(f0)
        enc = self.encode(spectrogram, waveform, pitch, f0, padding=padding)
        logits = self.decoder(input_ids, enc, f0, padding=padding)  # f0: theta if f0_rotary
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                                          labels.reshape(-1).long(), ignore_index=0)
        return out
