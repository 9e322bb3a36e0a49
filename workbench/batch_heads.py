"""Head scores across a batch: per checkpoint, attention kind, layer and head, how a score
varies over clips (mean, spread, range). One clip's head scores say what a head did on that
clip; a researcher asking "does this head follow pitch?" needs the distribution over clips.
"""

from __future__ import annotations

import pandas as pd

from echo_core.head_scores import SCORES

KEYS = ["checkpoint", "kind", "layer", "head"]


def summarise_head_scores(head_scores: pd.DataFrame) -> pd.DataFrame:
    """One row per checkpoint x kind x layer x head: ``clips`` (clips with a finite value of
    any score) and, per score, ``<score>_mean``, ``_std`` (ddof 1, over clips), ``_min``,
    ``_max``. Scores absent from the table are left out; NaN scores (a head that could not be
    scored on a clip) are skipped, not counted as 0."""
    scores = [s for s in SCORES if s in head_scores.columns]
    columns = KEYS + ["clips"] + [f"{s}_{stat}" for s in scores
                                  for stat in ("mean", "std", "min", "max")]
    if not len(head_scores) or not scores:
        return pd.DataFrame(columns=columns)
    g = head_scores.groupby(KEYS, sort=True)
    out = pd.DataFrame({"clips": g.apply(lambda df: int(df[scores].notna().any(axis=1).sum()),
                                         include_groups=False)})
    for s in scores:
        out[f"{s}_mean"], out[f"{s}_std"] = g[s].mean(), g[s].std(ddof=1)
        out[f"{s}_min"], out[f"{s}_max"] = g[s].min(), g[s].max()
    return out.reset_index()[columns]
