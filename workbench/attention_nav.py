"""Navigating a model's attention without UI: where in the audio a key column lies, and the
layers x heads thumbnails of bertviz's model view (as arrays; ``workbench.figures_attention``
draws them).

Thumbnails are block means of the maps the result already keeps (at most
``model_analysis.ATTENTION_DISPLAY`` a side), so a whole grid costs a few milliseconds and no
second model run.
"""

from __future__ import annotations

import math

import numpy as np

from echo_core.attention_kinds import DECODER_CROSS, ENCODER_SELF, FIRST_LAYER
from echo_core.errors import CaptureError

THUMB_SIZE = 48  # thumbnail side (cells); smaller maps keep their own size
AUDIO_KEY_KINDS = (ENCODER_SELF, DECODER_CROSS)  # kinds whose key axis is audio positions


def _edges(n: int, blocks: int) -> np.ndarray:
    """``blocks + 1`` increasing edges splitting range(n) into near-equal blocks (sizes differ
    by at most one)."""
    return (np.arange(blocks + 1) * n) // blocks


def block_means(m: np.ndarray, size: int = THUMB_SIZE) -> np.ndarray:
    """(min(rows, size), min(cols, size)) float32: the mean of each block of a near-equal
    partition of ``m``'s rows and columns, ignoring NaN (a block of only NaN stays NaN).

    Exact block means, not a resampling: a thumbnail's cell is the average attention of the
    queries and keys it stands for. Maps smaller than ``size`` are not enlarged.
    """
    m = np.asarray(m, dtype=np.float64)
    if m.ndim != 2 or 0 in m.shape:
        raise CaptureError(f"block_means needs a non-empty 2-D map, got shape {m.shape}")
    if int(size) < 1:
        raise CaptureError(f"thumbnail size must be >= 1, got {size!r}")
    rows = _edges(m.shape[0], min(m.shape[0], int(size)))[:-1]
    cols = _edges(m.shape[1], min(m.shape[1], int(size)))[:-1]
    finite = np.isfinite(m)
    sums = np.add.reduceat(np.add.reduceat(np.where(finite, m, 0.0), rows, axis=0), cols, axis=1)
    counts = np.add.reduceat(np.add.reduceat(finite.astype(np.float64), rows, axis=0), cols,
                             axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan).astype(np.float32)


def position_spans(n: int, shown: int, seconds: float) -> np.ndarray:
    """(shown, 2) start and end time (s) of each column of an n-position audio axis pooled to
    ``shown`` columns in blocks of ceil(n / shown) positions (as ``model_analysis`` pools it).

    Positions are centred on their time, as the maps draw them and the playhead places time
    (the centred STFT puts mel frame i at i x hop, a stride-2 front end puts position p at
    frame 2p): position p covers [p - 1/2, p + 1/2) x ``seconds``, the first one from 0.
    """
    group = math.ceil(n / shown)
    starts = np.arange(shown) * group
    ends = np.minimum(starts + group, n)
    spans = (np.stack([starts, ends], axis=1).astype(np.float64) - 0.5) * float(seconds)
    return np.maximum(spans, 0.0)


def key_spans(result, kind: str, layer: int, seconds: float) -> np.ndarray | None:
    """(k, 2) audio time span (s) of each key column of one layer's map, or None when the keys
    are not audio (decoder self-attention) or the map was not kept."""
    if kind not in AUDIO_KEY_KINDS:
        return None
    layers = result.attention.get(kind) or []
    index = int(layer) - FIRST_LAYER[kind]
    if not 0 <= index < len(layers) or layers[index] is None:
        return None
    _, nk = layers[index]["shape"]
    return position_spans(nk, layers[index]["scores"].shape[-1], seconds)


def thumbnails(result, kind: str, which: str = "weights", size: int = THUMB_SIZE
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(layer numbers (L,), head numbers (H,), maps (L, H, s, s) float32) of every layer and
    head of one attention kind, block-meaned to at most ``size`` a side; a layer that was not
    kept is all NaN. Layers are numbered as the sliders and head-score tables number them."""
    if which not in ("scores", "weights"):
        raise CaptureError(f"values must be 'scores' or 'weights', got {which!r}")
    layers = result.attention.get(kind)
    if not layers:
        raise CaptureError(f"this model has no {kind}")
    kept = [layer for layer in layers if layer is not None]
    if not kept:
        raise CaptureError(f"no {kind} map was small enough to keep for this clip")
    heads = kept[0][which].shape[0]
    rows, cols = (min(n, size) for n in kept[0][which].shape[1:])
    out = np.full((len(layers), heads, rows, cols), np.nan, dtype=np.float32)
    for i, layer in enumerate(layers):
        if layer is None:
            continue
        for h in range(heads):
            m = layer[which][h]
            out[i, h] = block_means(np.where(np.isfinite(m), m, np.nan), size)
    return np.arange(len(layers)) + FIRST_LAYER[kind], np.arange(heads), out
