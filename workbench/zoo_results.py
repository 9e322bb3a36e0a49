"""The model-zoo study as the app shows it: the tables ``python -m echo_core.study report``
shipped in ``assets/checkpoints/zoo/`` (study.csv, comparisons.csv, interventions.csv,
verdicts.json) read back and laid out for reading: WER per config x unseen-speaker test set with
the seed spread, the paired intervals, the intervention matrix and the verdicts. Nothing is
recomputed here; the numbers are the study's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from echo_core.errors import EchoError
from echo_core.study_tables import CONFIGS
from workbench.checkpoints import CHECKPOINTS_DIR

ZOO_DIR = CHECKPOINTS_DIR / "zoo"
TEST_SET_NAMES = {"espeak": "espeak (unseen voices)", "flite": "flite rms (unseen)",
                  "festival": "festival ked (unseen)", "fsdd": "real: FSDD jackson, isolated",
                  "fsdd_spliced": "real: jackson, connected", "real (fsdd both)": "real: both"}


@dataclass(frozen=True)
class ZooStudy:
    errors: pd.DataFrame  # study.csv
    comparisons: pd.DataFrame
    interventions: pd.DataFrame
    verdicts: dict
    results_md: str


def load_study(folder: str | Path = ZOO_DIR) -> ZooStudy:
    """The shipped study tables, or EchoError naming what is missing."""
    folder = Path(folder)
    names = ("study.csv", "comparisons.csv", "interventions.csv", "verdicts.json")
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise EchoError(f"the model-zoo study is not shipped ({', '.join(missing)} missing in "
                        "assets/checkpoints/zoo); run `python -m echo_core.study report`")
    results = folder / "RESULTS.md"
    return ZooStudy(errors=pd.read_csv(folder / "study.csv"),
                    comparisons=pd.read_csv(folder / "comparisons.csv"),
                    interventions=pd.read_csv(folder / "interventions.csv"),
                    verdicts=json.loads((folder / "verdicts.json").read_text()),
                    results_md=results.read_text() if results.is_file() else "")


def config_label(config: str) -> str:
    return f"({CONFIGS.get(config, '?')}) {config}"


def _ordered(configs) -> list[str]:
    order = list(CONFIGS)
    return sorted(set(configs), key=lambda c: (order.index(c) if c in order else 99, c))


def wer_table(study: ZooStudy) -> pd.DataFrame:
    """Config rows x test-set columns; a cell is the mean WER % over seeds, with [min, max] and
    the seed count when there is more than one seed."""
    e = study.errors
    sets = [s for s in TEST_SET_NAMES if s in set(e["test_set"])]
    rows = []
    for config in _ordered(e["config"]):
        row = {"config": config_label(config)}
        for s in sets:
            r = e[(e["config"] == config) & (e["test_set"] == s)]
            if r.empty:
                row[TEST_SET_NAMES[s]] = ""
                continue
            r = r.iloc[0]
            cell = f"{100 * r['wer_mean']:.1f}"
            if int(r["n_seeds"]) > 1:
                cell += f" [{100 * r['wer_min']:.1f}, {100 * r['wer_max']:.1f}] ({int(r['n_seeds'])} seeds)"
            row[TEST_SET_NAMES[s]] = cell
        rows.append(row)
    return pd.DataFrame(rows)


def wer_arrays(study: ZooStudy) -> tuple[list[str], list[str], np.ndarray, np.ndarray,
                                         np.ndarray]:
    """(config labels, test-set labels, mean, min, max) WER % arrays (configs x sets; NaN where
    not measured) for the figure."""
    e = study.errors
    sets = [s for s in TEST_SET_NAMES if s in set(e["test_set"])]
    configs = _ordered(e["config"])
    mean, low, high = (np.full((len(configs), len(sets)), np.nan) for _ in range(3))
    for i, config in enumerate(configs):
        for j, s in enumerate(sets):
            r = e[(e["config"] == config) & (e["test_set"] == s)]
            if not r.empty:
                mean[i, j], low[i, j], high[i, j] = 100 * r.iloc[0][["wer_mean", "wer_min",
                                                                      "wer_max"]].to_numpy(float)
    return [config_label(c) for c in configs], [TEST_SET_NAMES[s] for s in sets], mean, low, high


def comparison_table(study: ZooStudy) -> pd.DataFrame:
    c = study.comparisons
    return pd.DataFrame({
        "first − second": [f"{config_label(a)} − {config_label(b)}"
                           for a, b in zip(c["first"], c["second"])],
        "test set": [TEST_SET_NAMES.get(s, s) for s in c["test_set"]],
        "seeds": c["seeds"].astype(str), "clips": c["clips"],
        "Δ WER (pts)": [f"{100 * d:+.2f}" for d in c["delta_wer"]],
        "95% interval": [f"[{100 * lo:+.2f}, {100 * hi:+.2f}]"
                         for lo, hi in zip(c["low"], c["high"])],
        "excludes 0": c["excludes_zero"].map({True: "yes", False: "no"})})


def intervention_matrix(study: ZooStudy, scope: str = "all") -> pd.DataFrame:
    """Config rows x condition columns: Δ NLL per token of the true transcript [95% interval];
    configs that F0 does not reach say so."""
    i = study.interventions[study.interventions["scope"] == scope]
    conditions = list(dict.fromkeys(i["condition"]))
    rows = []
    for config in _ordered(set(study.errors["config"])):
        row = {"config": config_label(config), "true F0": "0 (reference)"}
        for cond in conditions:
            r = i[(i["config"] == config) & (i["condition"] == cond)]
            row[cond] = ("F0 does not reach it" if r.empty else
                         f"{r.iloc[0]['delta_nll']:+.4f} [{r.iloc[0]['low']:+.4f}, "
                         f"{r.iloc[0]['high']:+.4f}]")
        rows.append(row)
    return pd.DataFrame(rows)


def verdict_markdown(study: ZooStudy) -> str:
    return "\n".join(f"- **{config_label(c)}**: {study.verdicts[c]}"
                     for c in _ordered(study.verdicts))
