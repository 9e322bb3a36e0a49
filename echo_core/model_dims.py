"""EchoDims: every dimension and switch of an Echo model, validated in one place.

Field names and defaults are the reference's (see docs/echo_model.md), so a reference
config loads as is; the project's own switches (``spec_stride``, ``f0_mean``, ...) default to
the reference's behaviour. Bad values raise ConfigError naming the field and what is accepted.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .errors import ConfigError

# Activation names a config may give (the torch modules behind them: model_layers.ACTIVATIONS).
# Kept here as plain names so the config, like Whisper's dimensions, needs no torch.
ACTIVATIONS = ("gelu", "relu", "sigmoid", "tanh", "swish", "tanhshrink", "softplus",
               "softshrink", "leaky_relu", "elu")

# Fields that change nothing a model computes in eval mode (decoding, maps, scores): two
# checkpoints that differ only in these hold the same kind of model (``average`` may mix them).
TRAINING_ONLY_FIELDS = ("dropout",)
FEATURE_INPUTS = ("spectrogram", "waveform", "pitch")  # features that have a model input
FEATURE_SLOTS = FEATURE_INPUTS + ("spec_envelope", "spec_phase")  # the encoder's module dict keys
CGATE_FEATURES = ["spectrogram", "waveform", "pitch"]  # exactly this list builds CMGate blocks


@dataclass
class EchoDims:
    """Everything needed to build an Echo; the field names are the reference's config keys.

    The project switches default to the reference's behaviour (docs/echo_model.md, section 7,
    quirks of the reference); the UI should say when a reference default is in force:

    * decoder_mask "additive": lower-triangular ones are *added* to the scores of the decoder's
      ``_blocks`` and the feature blocks get no mask, so every token sees the future.
      "causal": -inf above the diagonal in every decoder self-attention.
    * pitch_bias: pitch_bias_scale * rotary.pitch_bias(f0, rope.pitch_scale) is added to the
      pre-softmax scores of the encoder's self-attention when an F0 contour reaches it.
    * theta_mode "mean_f0": one theta from the mean of the whole f0 tensor (batch and unvoiced
      zeros included). "per_frame": audio positions (encoder queries/keys, cross-attention
      keys) turn frame by frame at theta_eff(f0_t) (static theta where unvoiced), see
      :func:`rotary.rotation_angles_per_frame`; text positions and cross-attention queries keep the mean-F0
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
      shorter positions by time, as it does for any length mismatch (see ``rotary.f0_at_positions``).
    * key_padding_mask: given each clip's mel length (``Echo.forward(lengths=...)``), padded
      frames are zeroed before the front end, its conv outputs are zeroed past the clip's last
      position (as the convs' own zero padding does for a clip alone), the padded encoder keys
      are masked in encoder self-attention and decoder cross-attention, and F0 reaches the
      per-frame rotary and the pitch bias by each clip's own length. A padded batch then gives
      each clip the logits it gets alone. The reference pads and attends to the padding.
      Spectrogram feature only.
    * freeze_theta: the no-pitch control of a fair ablation. Every rotary uses the fixed
      frequencies theta^(-2k/d) of this theta (a buffer, so nothing learns them) and no F0;
      e.g. theta_eff of a training corpus's mean voiced F0. 0: off (learned ``inv_freq`` or
      F0 theta as set by f0_rotary). Not in the reference.
    * ctc_head: the model carries ``ctc`` (encoder width -> vocab, blank = pad), the CTC head
      that ``train --ctc-weight`` trains beside the decoder. Decoding may then let it check the
      attention decoder's hypotheses (``joint_decode``). It does not change any other output.
      Not in the reference.
    * mel_mean_norm: K > 0 removes the smooth part of each clip's mean log-mel spectrum before
      the front end: the first K cosine (DCT-II) terms across the channels of its mean over
      time (over its real frames only, so padding does not move it). A fixed colouring of the
      whole clip (a microphone, a room, a darker or brighter voice: a linear filter, about one
      constant per channel in log-mel) is smooth across channels, so it no longer reaches the
      model; K >= mels removes the whole mean (per-channel mean normalisation), which also
      removes the spectral detail a short clip's mean carries (one word's formants); K = 3
      removes level, tilt and curvature only. 0: off. Spectrogram feature only. Not in the
      reference.
    * dropout: p in [0, 1): while training, each Residual block's self-attention and MLP
      outputs are dropped with probability p (and the rest scaled by 1/(1-p)) before they join
      the residual stream, as in the original Transformer. A regulariser for a small model
      that has seen its few real speakers many times over; eval mode (every decode, every map)
      is unchanged. 0: off. Adds no weight, so a trained model can be fine-tuned with it. Not in
      the reference.
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
    # Project switches (defaults = the reference's behaviour, see docs/echo_model.md, section 6):
    decoder_mask: str = "additive"  # "additive" (reference: NOT causal) or "causal"
    pitch_bias: bool = False  # add rotary.pitch_bias to audio self-attention (reference: never)
    pitch_bias_scale: float = 1.0  # multiplier of that bias before it is added to the scores
    theta_mode: str = "mean_f0"  # "mean_f0" (reference: one theta per batch) or "per_frame"
    f0_mean: str = "batch"  # mean F0 for theta: "batch" (reference) or "voiced" (per utterance)
    variable_radius: bool = False  # learned per-pair radius rope.radius (weights pair k by r_k^2)
    spec_stride: int = 1  # stride of the spectrogram front end's first conv (reference: 1)
    key_padding_mask: bool = False  # padded audio frames masked out (reference: never masked)
    freeze_theta: float = 0.0  # > 0: no F0, rotary frequencies fixed at this theta (control)
    ctc_head: bool = False  # a linear CTC head on the encoder output, ``Echo.ctc`` (not reference)
    mel_mean_norm: int = 0  # cosine terms of each clip's mean log-mel removed (not reference)
    dropout: float = 0.0  # residual dropout in every block while training (not reference)

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
               "aud_dims", "aud_head", "aud_idx", "mel_mean_norm")
_BOOL_FIELDS = ("cross_attn", "f0_rotary", "pitch_bias", "variable_radius", "key_padding_mask",
                "ctc_head")
SPEC_STRIDES = (1, 2, 3)  # the first conv has kernel 3: a larger stride would skip mel frames
_CHOICES = {"decoder_mask": ("additive", "causal"), "theta_mode": ("mean_f0", "per_frame"),
            "f0_mean": ("batch", "voiced"), "spec_stride": SPEC_STRIDES}


def _validate(d: EchoDims) -> None:
    for name in _INT_FIELDS:
        value = getattr(d, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
        if value == 0 and name not in ("text_idx", "aud_idx", "mel_mean_norm"):
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
    p = d.dropout
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
        raise ConfigError(f"dropout must be a probability in [0, 1) (0 = off), got {p!r}")
    frozen = d.freeze_theta
    if isinstance(frozen, bool) or not isinstance(frozen, (int, float)) or not math.isfinite(
            frozen) or frozen < 0:
        raise ConfigError(f"freeze_theta must be a finite number >= 0 (0 = off), got {frozen!r}")
    if frozen and (d.f0_rotary or d.pitch_bias):
        raise ConfigError("freeze_theta fixes the rotary without F0: it excludes f0_rotary and "
                          "pitch_bias")
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
    if d.key_padding_mask and list(feats) != ["spectrogram"]:
        raise ConfigError(f"key_padding_mask supports the spectrogram feature only, got "
                          f"features {feats!r}")
    if d.mel_mean_norm and "spectrogram" not in feats:
        raise ConfigError(f"mel_mean_norm centres the spectrogram feature, which features "
                          f"{feats!r} lacks")
    if d.mel_mean_norm > d.mels:
        raise ConfigError(f"mel_mean_norm removes at most mels ({d.mels}) cosine terms (all: "
                          f"the whole mean), got {d.mel_mean_norm}")
    if "waveform" in feats and d.aud_dims % 8:
        raise ConfigError(f"aud_dims must be a multiple of 8 with the waveform feature "
                          f"(its front end has d/8 and d/4 channels), got {d.aud_dims}")
