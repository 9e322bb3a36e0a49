"""What the Model view adds for navigation (issue #21), as view builders the callbacks in
``model_views`` use: attention maps whose audio axes carry the playhead and whose
cross-attention cells name and play their stretch of audio, bertviz's layers x heads grid,
and the head a click on the page picked.
"""

from __future__ import annotations

import json

from echo_core.attention_kinds import ATTENTION_KINDS, DECODER_CROSS
from echo_core.errors import CaptureError
from workbench import attention_nav as N
from workbench import figures_model as FM
from workbench import figures_attention as FA
from workbench import model_analysis as M

NAV_HEAD = "nav-head"  # hidden textbox: a click on a thumbnail or a head-score cell lands here


def attention_figure(results, kind, layer, head, which):
    """The attention maps of one or more results for the same layer and head. Audio key axes
    carry the playhead; cross-attention cells name (and on click play) their stretch of
    audio."""
    maps, spans = [], []
    for r in results:
        arr, x_title, y_title, x, y = M.attention_map(r, kind, int(layer), int(head), which)
        maps.append((f"{r.label}: layer {int(layer)}, head {int(head)}", arr, x, y))
        seconds = M.position_seconds(r.dims["spec_stride"])
        spans.append(N.key_spans(r, kind, layer, seconds) if kind == DECODER_CROSS else None)
    per_second = (1.0 / M.position_seconds(results[0].dims["spec_stride"])
                  if kind in N.AUDIO_KEY_KINDS else None)
    return FM.attention_maps(maps, x_title=x_title, y_title=y_title,
                            title=f"{kind}: attention {which}", colorbar_title=which,
                            x_per_second=per_second, spans=spans)


def grid_figure(result, kind, which, layer, head):
    """bertviz's model view: every layer and head of one kind as thumbnails, the open head
    outlined; a click opens another."""
    layers, heads, maps = N.thumbnails(result, kind, which)
    return FA.attention_grid(
        maps, layers, heads, kind, pick=NAV_HEAD, selected=(int(layer), int(head)),
        title=f"{kind}: all layers × heads ({which}, each on its own colour range; click one "
              "to open it)")


def parse_pick(payload: str) -> tuple[str, int, int]:
    """(kind, layer, head) of a click sent by playhead.js as JSON; CaptureError if malformed."""
    try:
        pick = json.loads(payload)
        kind, layer, head = pick["kind"], int(pick["layer"]), int(pick["head"])
    except (ValueError, KeyError, TypeError) as e:
        raise CaptureError(f"not a head from the page: {payload!r}") from e
    if kind not in ATTENTION_KINDS:
        raise CaptureError(f"unknown attention kind {kind!r}; accepted: "
                           f"{', '.join(ATTENTION_KINDS)}")
    return kind, layer, head


