"""Greedy decoding with an Echo checkpoint on tensors, the checkpoint's feature settings and
tokenizer, and WER/CER (running a checkpoint on a clip of audio: ``clip_run``).

The audio is encoded once; the decoder then runs step by step on the growing prefix (the
project's models use a causal decoder mask, so a prefix sees what it saw in training, and each
step runs only the new token against cached keys and values). Feature
settings (n_mels, fmin, fmax) and the tokenizer file come from the checkpoint's ``meta``, so a
checkpoint folder is all that is needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from echo_core.errors import CheckpointError
from echo_core.tokenizer import BOS, EOS, TOKENIZER_FILE, CharTokenizer

DEFAULT_FEATURES = {"n_mels": 128, "fmin": 0.0, "fmax": None}  # the audio module's defaults


def model_uses_f0(model) -> bool:
    """True when the model reads an F0 contour (f0 rotary or pitch bias)."""
    dims = model.dims
    return bool(getattr(dims, "f0_rotary", False) or getattr(dims, "pitch_bias", False))


def feature_settings(model) -> dict:
    """The log-mel settings the model was trained with (meta["features"]), n_mels checked."""
    features = {**DEFAULT_FEATURES, **(getattr(model, "meta", None) or {}).get("features", {})}
    if int(features["n_mels"]) != int(model.dims.mels):
        raise CheckpointError(f"meta says n_mels={features['n_mels']} but the model expects "
                              f"mels={model.dims.mels}")
    return features


def load_tokenizer(model) -> CharTokenizer:
    """The tokenizer named in model.meta, looked up beside the checkpoint it was loaded from."""
    meta = getattr(model, "meta", None) or {}
    folder = meta.get("path")
    name = meta.get("tokenizer", TOKENIZER_FILE)
    if folder is None or not (Path(folder) / name).is_file():
        raise CheckpointError(f"cannot find the tokenizer {name!r} for this model (folder "
                              f"{folder!r}); pass tokenizer=CharTokenizer.load(path)")
    return CharTokenizer.load(Path(folder) / name)


# ---------------------------------------------------------------------------------------------
# Encoder once, decoder per step

def encode(model, spectrogram: torch.Tensor, f0: torch.Tensor | None, padding=None):
    """Encoder output for (B, n_mels, T) log-mel (and (B, T) F0 when the model uses it);
    ``padding``: Echo.padding of the batch (models with a key padding mask)."""
    return model.encode(spectrogram=spectrogram, f0=f0 if model_uses_f0(model) else None,
                        padding=padding)


def next_logits(model, ids: torch.Tensor, encoded, f0: torch.Tensor | None,
                cache: dict | None = None, padding=None) -> torch.Tensor:
    """Logits (B, vocab) of the next token after prefix ``ids`` (B, L); with a ``cache`` (see
    TextDecoder.forward) only the tokens added since the last call are run."""
    logits = model.decoder(ids, encoded, f0=f0 if model_uses_f0(model) else None, cache=cache,
                           padding=padding)
    return logits[:, -1]


@torch.no_grad()
def greedy_ids(model, spectrogram: torch.Tensor, f0: torch.Tensor | None,
               max_tokens: int | None = None, lengths=None) -> list[list[int]]:
    """Greedy token ids per batch item (without bos/eos), stopping at eos or the length limit.

    ``lengths``: mel frames of each clip of a padded batch; models with a key padding mask
    (EchoDims.key_padding_mask) then decode each clip as they would alone.

    The limit is text_ctx - 1 generated tokens (the prefix with bos must fit text_ctx).
    Causal decoders reuse their keys and values from step to step (one token's cost per
    step); the reference's additive mask lets later tokens change earlier positions, so such
    decoders re-run the whole prefix.
    """
    limit = model.dims.text_ctx - 1 if max_tokens is None else min(max_tokens,
                                                                    model.dims.text_ctx - 1)
    padding = model.padding(spectrogram, f0 if model_uses_f0(model) else None, lengths)
    f0 = f0 if padding is None else padding.mask_f0(f0)
    encoded = encode(model, spectrogram, f0, padding)
    batch = spectrogram.shape[0]
    ids = torch.full((batch, 1), BOS, dtype=torch.long)
    done = torch.zeros(batch, dtype=torch.bool)
    cache = {} if model.decoder.incremental else None
    for _ in range(limit):
        nxt = next_logits(model, ids, encoded, f0, cache, padding).argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, EOS), nxt)
        ids = torch.cat([ids, nxt[:, None]], dim=1)
        done |= nxt == EOS
        if bool(done.all()):
            break
    out = []
    for row in ids[:, 1:].tolist():
        out.append(row[:row.index(EOS)] if EOS in row else row)
    return out


def decoding_name(model) -> str:
    """How :func:`transcript_ids` decodes this model (shown beside its transcripts)."""
    if model.dims.ctc_head:
        from .joint_decode import JOINT_BEAM, JOINT_CTC_WEIGHT
        return (f"joint CTC/attention beam search (beam {JOINT_BEAM}, CTC weight "
                f"{JOINT_CTC_WEIGHT:g})")
    return "greedy search"


def transcript_ids(model, spectrogram: torch.Tensor, f0: torch.Tensor | None,
                   max_tokens: int | None = None) -> list[int]:
    """The model's transcript of one clip (1, n_mels, T) as token ids: joint CTC/attention
    beam search when the model carries a CTC head (it fixes the attention decoder's dropped
    and repeated words, see ``joint_decode``), greedy otherwise (every reference checkpoint)."""
    if model.dims.ctc_head:
        from .joint_decode import joint_beam_ids
        return joint_beam_ids(model, spectrogram, f0, max_tokens=max_tokens)
    return greedy_ids(model, spectrogram, f0, max_tokens=max_tokens)[0]


def batch_greedy(model, mels: list[np.ndarray], f0s: list[np.ndarray] | None,
                 tokenizer: CharTokenizer) -> list[str]:
    """Greedy transcripts of a batch of (n_mels, T) mels (+ (T,) model F0, 0 = unvoiced).

    Padding as in training: mel with each clip's floor, F0 with 0; each clip's length is
    given to the model, so one with a key padding mask ignores the padding.
    """
    T = max(m.shape[1] for m in mels)
    spec = np.zeros((len(mels), mels[0].shape[0], T), np.float32)
    f0 = np.zeros((len(mels), T), np.float32)
    for b, m in enumerate(mels):
        spec[b] = m.min()
        spec[b, :, :m.shape[1]] = m
        if f0s is not None:
            f0[b, :len(f0s[b])] = f0s[b]
    f0_t = torch.from_numpy(f0) if (f0s is not None and model_uses_f0(model)) else None
    lengths = [m.shape[1] for m in mels]
    return [tokenizer.decode(ids) for ids in greedy_ids(model, torch.from_numpy(spec), f0_t,
                                                         lengths=lengths)]


# ---------------------------------------------------------------------------------------------
# Scores

def wer_cer(references: list[str], hypotheses: list[str]) -> tuple[float, float]:
    """(WER, CER) over a set of transcripts with jiwer (empty hypotheses count as deletions)."""
    import jiwer

    if not references:
        return float("nan"), float("nan")
    return (float(jiwer.wer(references, hypotheses)), float(jiwer.cer(references, hypotheses)))

