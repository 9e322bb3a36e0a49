"""The Zoo view's tables: read back from the study's files as written, laid out per config and
test set; a missing study is a clear EchoError; the checkpoint index orders the radios."""

import json

import numpy as np
import pandas as pd
import pytest

from echo_core.errors import EchoError
from workbench import checkpoints as C
from workbench import zoo_results as Z
from workbench.zoo_figure import wer_bars


def _write_study(folder):
    folder.mkdir()
    pd.DataFrame([
        dict(config="mean_f0_theta", letter="c", test_set="fsdd", clips=10, seeds="0 1 2",
             n_seeds=3, wer_mean=0.10, wer_min=0.05, wer_max=0.20, wer_sd=0.08, cer_mean=0.05,
             wer_seed0=0.05),
        dict(config="frozen_theta", letter="b", test_set="fsdd", clips=10, seeds="0",
             n_seeds=1, wer_mean=0.30, wer_min=0.30, wer_max=0.30, wer_sd=np.nan,
             cer_mean=0.2, wer_seed0=0.30)]).to_csv(folder / "study.csv", index=False)
    pd.DataFrame([dict(first="mean_f0_theta", second="frozen_theta", test_set="fsdd",
                       seeds="0", clips=10, delta_wer=-0.2, low=-0.3, high=-0.1,
                       excludes_zero=True)]).to_csv(folder / "comparisons.csv", index=False)
    pd.DataFrame([dict(config="mean_f0_theta", condition="constant:100", scope="all",
                       clips=10, seeds="0", delta_nll=0.01, low=0.005, high=0.02,
                       excludes_zero=True)]).to_csv(folder / "interventions.csv", index=False)
    (folder / "verdicts.json").write_text(json.dumps({"mean_f0_theta": "uses pitch: x",
                                                      "frozen_theta": "does not use pitch"}))


def test_tables_show_the_study_as_written(tmp_path):
    _write_study(tmp_path / "zoo")
    study = Z.load_study(tmp_path / "zoo")
    wer = Z.wer_table(study)
    assert list(wer["config"]) == ["(b) frozen_theta", "(c) mean_f0_theta"]  # ablation order
    column = Z.TEST_SET_NAMES["fsdd"]
    assert list(wer[column]) == ["30.0", "10.0 [5.0, 20.0] (3 seeds)"]
    configs, sets, mean, low, high = Z.wer_arrays(study)
    assert sets == [column] and mean[:, 0].tolist() == pytest.approx([30.0, 10.0])
    assert low[1, 0] == pytest.approx(5.0) and high[1, 0] == pytest.approx(20.0)
    inter = Z.intervention_matrix(study)
    assert list(inter["constant:100"]) == ["F0 does not reach it", "+0.0100 [+0.0050, +0.0200]"]
    comps = Z.comparison_table(study)
    assert comps.iloc[0]["Δ WER (pts)"] == "-20.00" and comps.iloc[0]["excludes 0"] == "yes"
    assert "(c) mean_f0_theta" in Z.verdict_markdown(study)
    fig = wer_bars(configs, sets, mean, low, high)
    assert len(fig.data) == 2 and fig.data[1].error_y.array[0] == pytest.approx(10.0)


def test_missing_study_is_a_clear_error(tmp_path):
    with pytest.raises(EchoError, match="study.csv"):
        Z.load_study(tmp_path)


def test_shipped_study_loads():
    study = Z.load_study()
    assert set(study.verdicts) <= set(study.errors["config"])
    assert not Z.wer_table(study).empty


def test_checkpoint_index_orders_and_labels_the_radios():
    index = C.shipped_index()
    shipped = list(C.shipped_checkpoints())
    listed = [n for n in index["order"] if n in shipped]
    assert shipped[:len(listed)] == listed  # the index's order first, the default leads
    labels = dict((cid, label) for label, cid in C.checkpoint_choices())
    for name in shipped:
        assert labels[f"shipped/{name}"].startswith(name)  # every label names its folder
    assert C.default_checkpoint() == f"shipped/{shipped[0]}"
    first, second = C.compare_pair()
    assert first and second and first != second
    if all(n in shipped for n in index["compare"]):
        assert (first, second) == tuple(f"shipped/{n}" for n in index["compare"])
