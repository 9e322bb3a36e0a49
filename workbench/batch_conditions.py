"""Pitch conditions in batch runs (``python -m workbench.batch ... --conditions true,shuffled``):
per unit, every condition's transcript and per-token NLL against the true F0; over the clips,
a paired bootstrap 95% interval per checkpoint and condition.

The per-clip numbers come from ``echo_core.interventions.compare_conditions`` (the one
pipeline); this module only shapes them into tidy rows and summarises them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from echo_core.errors import EchoError
from echo_core.pitch_conditions import parse_condition

COLUMNS = ("clip", "checkpoint", "condition", "transcript", "changed", "cer_vs_true", "nll",
           "delta_nll", "theta_in_force", "reference")
SUMMARY_COLUMNS = ("checkpoint", "condition", "clips", "delta_nll_mean", "delta_nll_low",
                   "delta_nll_high", "changed_rate", "changed_low", "changed_high", "verdict")


def parse_conditions(text: str | Sequence[str] | None) -> list[str]:
    """``"true,shuffled,constant:100"`` -> canonical names (true first, once); [] for none.
    EchoError (ConditionError) naming the accepted forms for a bad one. ``other:`` is not
    offered in batch (which clip to borrow from is a per-clip choice)."""
    if not text:
        return []
    items = text.split(",") if isinstance(text, str) else list(text)
    names = []
    for item in items:
        condition = parse_condition(item)
        if condition.kind == "other":
            raise EchoError("batch conditions cannot borrow another clip's contour (other:...); "
                            "use the app's Interventions view for that")
        if condition.name not in names:
            names.append(condition.name)
    return ["true"] + [n for n in names if n != "true"]


def condition_rows(model, samples: np.ndarray, sr: int, conditions: Sequence[str], clip: str,
                   checkpoint: str) -> pd.DataFrame:
    """One row per condition for one clip x checkpoint (see :data:`COLUMNS`)."""
    from echo_core.interventions import compare_conditions

    table, runs = compare_conditions(model, samples, sr, conditions)
    table.insert(0, "checkpoint", checkpoint)
    table.insert(0, "clip", clip)
    table["reference"] = runs["true"].reference
    return table[list(COLUMNS)]


def summarise_conditions(rows: pd.DataFrame) -> pd.DataFrame:
    """Per checkpoint and condition: clips, mean delta NLL with its paired bootstrap 95%
    interval, the share of clips whose transcript changed (with its bootstrap interval), and a
    verdict: "uses pitch" when the delta-NLL interval lies above 0, "no effect measured" when
    it contains 0, "pitch hurts" when below."""
    from echo_core.interventions import paired_bootstrap

    if not len(rows):
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    out = []
    for (checkpoint, condition), g in rows.groupby(["checkpoint", "condition"], sort=True):
        if condition == "true":
            continue
        mean, low, high = paired_bootstrap(g["delta_nll"])
        rate, r_low, r_high = paired_bootstrap(g["changed"].astype(float))
        verdict = ("uses pitch" if low > 0 else "pitch hurts" if high < 0
                   else "no effect measured")
        out.append(dict(checkpoint=checkpoint, condition=condition, clips=len(g),
                        delta_nll_mean=mean, delta_nll_low=low, delta_nll_high=high,
                        changed_rate=rate, changed_low=r_low, changed_high=r_high,
                        verdict=verdict))
    return pd.DataFrame(out, columns=list(SUMMARY_COLUMNS))
