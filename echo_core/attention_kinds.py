"""The three kinds of attention map in an Echo and how to recognise them by module path.

One statement of the names and patterns, used by the head scores, the app's attention views and
batch. torch-free, so importing it costs nothing. Encoder self-attention and cross-attention
live in one block stack per input feature (``spectrogram``, ``waveform``, ``pitch``); the
decoder's own stack is ``_blocks``. The layer is the index in the module path: encoder blocks
start at 1 (index 0 is the feature's front end).
"""

from __future__ import annotations

import re

ENCODER_SELF, DECODER_SELF, DECODER_CROSS = ("encoder self-attention", "decoder self-attention",
                                             "decoder cross-attention")
ATTENTION_KINDS = (ENCODER_SELF, DECODER_SELF, DECODER_CROSS)
# The layer number of each kind's first attention block in module paths, the numbering every
# view uses (encoder block 0 of a feature is its convolutional front end, so encoder attention
# layers are 1..N; the decoder's are 0..N-1).
FIRST_LAYER = {ENCODER_SELF: 1, DECODER_SELF: 0, DECODER_CROSS: 0}
_KIND_PATTERNS = {ENCODER_SELF: r"^encoder\.blocks\.(\w+)\.(\d+)\.attna$",
                  DECODER_SELF: r"^decoder\._blocks\.()(\d+)\.attna$",
                  DECODER_CROSS: r"^decoder\.blocks\.(\w+)\.(\d+)\.attnb$"}


def attention_kind(path: str) -> tuple[str, int, str] | None:
    """(kind, layer index in the module path, feature ("" for the decoder's own blocks)) of an
    attention module path, or None for any other module."""
    for kind, pattern in _KIND_PATTERNS.items():
        match = re.match(pattern, path)
        if match:
            return kind, int(match.group(2)), match.group(1)
    return None
