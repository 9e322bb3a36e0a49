"""workbench.batch: local and Dask runs agree, resume skips, bad clips land in errors, WER.

One small generated folder (3 bundled clips, one in a subfolder, a corrupt file, a noise clip
with no voicing, one sidecar transcript) through one shipped checkpoint, run once in-process
and once on a 2-worker Dask LocalCluster (module-scoped: the expensive part runs once).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from workbench import batch

REPO = Path(__file__).resolve().parents[1]
CHECKPOINT = REPO / "assets" / "checkpoints" / "f0_theta_bias"
CLIPS = ["digits_en_caleb_three-eight.wav", "digits_en-us_m5_four-two-seven.wav",
         "digits_en-gb-x-rp_steph_nine-oh-one.wav"]
WRONG_REFERENCE = "three nine"  # the clip says "three eight": one substitution in two words


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clips")
    (root / "sub").mkdir()
    shutil.copy(REPO / "assets" / "clips" / CLIPS[0], root / CLIPS[0])
    shutil.copy(REPO / "assets" / "clips" / CLIPS[1], root / CLIPS[1])
    shutil.copy(REPO / "assets" / "clips" / CLIPS[2], root / "sub" / CLIPS[2])
    (root / CLIPS[0]).with_suffix(".txt").write_text(WRONG_REFERENCE + "\n")
    (root / "sub" / "corrupt.wav").write_bytes(b"RIFF this is not audio at all")
    noise = np.random.default_rng(0).normal(0, 0.05, 16000).astype(np.float32)
    sf.write(root / "noise.flac", noise, 16000)
    (root / "notes.md").write_text("not audio: ignored")
    return root


@pytest.fixture(scope="module")
def local_run(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    return out, batch.run(folder, [CHECKPOINT], out, workers=1, progress=False)


@pytest.fixture(scope="module")
def dask_run(folder, tmp_path_factory):
    pytest.importorskip("distributed")
    out = tmp_path_factory.mktemp("dask")
    return out, batch.run(folder, [CHECKPOINT], out, local_cluster=2, batch_size=2,
                          progress=False, report=False)


def _comparable(df: pd.DataFrame) -> pd.DataFrame:
    df = df.drop(columns=[c for c in batch.TIMING_COLUMNS if c in df.columns])
    return df.sort_values(list(df.columns[:4])).reset_index(drop=True)


def test_discovery_is_recursive_and_filters_suffixes(folder):
    assert batch.discover_clips(folder) == sorted(
        [CLIPS[0], CLIPS[1], "noise.flac", "sub/corrupt.wav", f"sub/{CLIPS[2]}"])


def test_local_tables(local_run):
    out, summary = local_run
    assert summary["done"] == 5 and summary["skipped"] == 0 and summary["errors"] == 1
    tables = batch.load_results(out)
    results = tables["results"]
    assert set(results["clip"]) == {CLIPS[0], CLIPS[1], "noise.flac", f"sub/{CLIPS[2]}"}
    blocks = results[results["record"] == "block"]
    # one block row per Residual with a gate, per clip: encoder + decoder self + cross blocks
    dims = json.loads((CHECKPOINT / "config.json").read_text())["dims"]
    assert (blocks.groupby("clip").size() == dims["aud_idx"] + 2 * dims["text_idx"]).all()
    np.testing.assert_allclose(blocks["ratio"], blocks["gate_mean"] / blocks["mlp_mean"])
    np.testing.assert_allclose(blocks["sparsity_difference"],
                               blocks["gate_sparsity"] - blocks["mlp_sparsity"])
    # f0_theta_bias (f0_mean="voiced"): theta in force = rotary.theta_from_f0 of the voiced
    # frames' mean F0; the track's mean (f0_mean column) is close to the mel-frame mean
    from echo_core import rotary
    row = blocks[blocks["clip"] == CLIPS[0]].iloc[0]
    assert row["theta_in_force"] == pytest.approx(
        rotary.theta_from_f0(row["f0_mean"], row["theta"]), rel=1e-3)
    for name in batch.TABLES:
        assert (out / f"{name}.parquet").is_file() and (out / f"{name}.csv").is_file()
    summary_table = tables["summary"]
    assert set(summary_table["checkpoint"]) == {"f0_theta_bias"}
    assert (summary_table["clips"] == 4).all()
    html = (out / "report.html").read_text()
    assert 'src="https://cdn' not in html and "Plotly.newPlot" in html  # inline: offline
    # distributions, head scores across clips, ratio vs F0 (one checkpoint: no pair figure)
    assert len(batch.summary_figures(out)) == 3


def test_head_scores_aggregated_over_clips(local_run):
    """head_scores_summary: per checkpoint x kind x layer x head, each score's mean / sd / range
    over the clips that could be scored, recomputed here clip by clip."""
    out, _ = local_run
    tables = batch.load_results(out)
    heads, summary = tables["head_scores"], tables["head_scores_summary"]
    assert len(summary) == len(heads.drop_duplicates(["checkpoint", "kind", "layer", "head"]))
    for row in summary.itertuples():
        per_clip = heads[(heads["checkpoint"] == row.checkpoint) & (heads["kind"] == row.kind)
                         & (heads["layer"] == row.layer) & (heads["head"] == row.head)]
        values = per_clip["pitch_spearman"].dropna().to_numpy(float)
        if values.size:
            assert row.pitch_spearman_mean == pytest.approx(values.sum() / values.size)
            assert row.pitch_spearman_min == pytest.approx(values.min())
            if values.size > 1:
                expected = np.sqrt(((values - values.mean()) ** 2).sum() / (values.size - 1))
                assert row.pitch_spearman_std == pytest.approx(expected)
    from workbench.batch_report import head_score_spread
    fig = head_score_spread(summary)
    assert len(fig.data) == 1 and len(fig.data[0].x) == len(summary.dropna(
        subset=["pitch_spearman_mean"]))


def _edit_distance(a: list[str], b: list[str]) -> int:
    """Plain Levenshtein by dynamic programming (independent of jiwer)."""
    d = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, y in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (x != y))
    return d[-1]


def test_wer_only_where_a_reference_exists(local_run):
    results = batch.load_results(local_run[0])["results"].drop_duplicates("clip")
    with_ref = results[results["clip"] == CLIPS[0]].iloc[0]
    assert with_ref["reference"] == WRONG_REFERENCE
    hyp, ref = with_ref["transcript"].split(), WRONG_REFERENCE.split()
    assert with_ref["wer"] == pytest.approx(_edit_distance(ref, hyp) / len(ref))
    assert with_ref["cer"] == pytest.approx(
        _edit_distance(list(WRONG_REFERENCE), list(with_ref["transcript"])) / len(WRONG_REFERENCE))
    others = results[results["clip"] != CLIPS[0]]
    assert others["wer"].isna().all() and others["reference"].isna().all()


def test_corrupt_clip_is_an_error_row(local_run):
    errors = batch.load_results(local_run[0])["errors"]
    assert list(errors["clip"]) == ["sub/corrupt.wav"]
    assert errors["error_type"].iloc[0] == "AudioError"
    assert "corrupt.wav" in errors["message"].iloc[0]
    assert "could not be decoded" in errors["message"].iloc[0]


def test_unvoiced_clip_skips_head_scores_with_a_note(local_run):
    tables = batch.load_results(local_run[0])
    noise = tables["results"][tables["results"]["clip"] == "noise.flac"].iloc[0]
    assert noise["head_scores_note"].startswith("head scores skipped")
    assert "noise.flac" not in set(tables["head_scores"]["clip"])
    heads = tables["head_scores"]
    assert set(heads["clip"]) == {CLIPS[0], CLIPS[1], f"sub/{CLIPS[2]}"}
    assert heads["pitch_spearman"].between(-1, 1).any()


def test_resume_does_no_work(folder, local_run):
    out, _ = local_run
    parts = sorted((out / batch.PARTS).glob("*"))
    before = {p.name: p.stat().st_mtime_ns for p in parts}
    again = batch.run(folder, [CHECKPOINT], out, workers=1, progress=False, report=False)
    assert again["done"] == 0 and again["skipped"] == 5
    assert {p.name: p.stat().st_mtime_ns for p in (out / batch.PARTS).glob("*")} == before


def test_resume_after_a_lost_part(folder, local_run, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(local_run[0], out)
    victim = out / batch.PARTS / f"{batch.unit_key(CLIPS[1], 'f0_theta_bias')}.parquet"
    victim.unlink()  # as if interrupted before this unit finished
    again = batch.run(folder, [CHECKPOINT], out, workers=1, progress=False, report=False)
    assert again["done"] == 1 and again["skipped"] == 4
    a = _comparable(batch.load_results(local_run[0])["results"])
    b = _comparable(again["tables"]["results"])
    pd.testing.assert_frame_equal(a, b)


def test_dask_local_cluster_gives_the_same_tables(local_run, dask_run):
    local, remote = batch.load_results(local_run[0]), batch.load_results(dask_run[0])
    assert dask_run[1]["done"] == 5
    for name in batch.TABLES:
        pd.testing.assert_frame_equal(_comparable(local[name]), _comparable(remote[name]))


def test_bad_arguments_say_what_is_accepted(tmp_path):
    from echo_core.errors import EchoError

    with pytest.raises(EchoError, match="clips folder not found"):
        batch.run(tmp_path / "nope", [CHECKPOINT], tmp_path / "out", progress=False)
    with pytest.raises(EchoError, match="checkpoint not found"):
        batch.checkpoint_labels([tmp_path / "missing"])
    (tmp_path / "f0_theta_bias").mkdir()
    with pytest.raises(EchoError, match="distinct folder names"):
        batch.checkpoint_labels([CHECKPOINT, tmp_path / "f0_theta_bias"])
    bad_csv = tmp_path / "t.csv"
    bad_csv.write_text("file,words\na.wav,one\n")
    with pytest.raises(EchoError, match="path,text"):
        batch.read_transcripts(tmp_path, [], bad_csv)


# ----------------------------------------------------------------------------- the app's results root

def _fake_results(root: Path, name: str, kind: str = "parts") -> Path:
    folder = root / name
    if kind == "parts":
        (folder / batch.PARTS).mkdir(parents=True)
    else:
        folder.mkdir(parents=True)
        pd.DataFrame({"clip": []}).to_parquet(folder / "results.parquet")
    return folder


def test_results_root_lists_only_its_result_subfolders(tmp_path, monkeypatch):
    root = tmp_path / "results"
    _fake_results(root, "b_run")
    _fake_results(root, "a_run", kind="final")
    (root / "not_results").mkdir()
    (root / "stray.parquet").write_bytes(b"")
    outside = _fake_results(tmp_path, "outside")
    (root / "link_out").symlink_to(outside, target_is_directory=True)
    monkeypatch.setenv(batch.RESULTS_ENV, str(root))
    assert batch.results_root() == root.resolve()
    assert batch.list_results() == ["a_run", "b_run"]
    assert batch.results_folder("b_run") == root.resolve() / "b_run"
    monkeypatch.setenv(batch.RESULTS_ENV, str(tmp_path / "missing"))
    assert batch.list_results() == []


@pytest.mark.parametrize("name", ["../../etc", "/etc", "../outside", "link_out", "not_results",
                                  ".", "", None, "a_run/../b_run"])
def test_results_folder_refuses_anything_not_listed(tmp_path, name):
    from echo_core.errors import EchoError

    root = tmp_path / "results"
    _fake_results(root, "a_run")
    _fake_results(root, "b_run")
    (root / "not_results").mkdir()
    outside = _fake_results(tmp_path, "outside")
    (root / "link_out").symlink_to(outside, target_is_directory=True)
    with pytest.raises(EchoError, match="not a results folder of .*accepted: one of"):
        batch.results_folder(name, root)


def test_conditions_columns_and_bootstrap_summary(folder, tmp_path):
    """--conditions: one row per clip x condition against the true F0, summarised per
    checkpoint with a paired bootstrap interval (checked against echo_core directly)."""
    from echo_core.interventions import paired_bootstrap
    from workbench import batch_conditions as BC

    out = tmp_path / "conditions"
    summary = batch.run(folder, [CHECKPOINT], out, workers=1, progress=False, report=False,
                        conditions="shuffled,true,constant:100")
    rows, table = summary["tables"]["conditions"], summary["tables"]["conditions_summary"]
    assert len(rows) == 4 * 3  # 3 digit clips and the noise clip (corrupt.wav is an error)
    assert set(rows.condition) == {"true", "shuffled:0", "constant:100"}
    true = rows[rows.condition == "true"]
    assert (true.delta_nll == 0).all() and not true.changed.any()
    shuffled = rows[rows.condition == "shuffled:0"].sort_values("clip")
    mean, low, high = paired_bootstrap(shuffled.delta_nll.to_numpy())
    row = table[table.condition == "shuffled:0"].iloc[0]
    assert row.clips == len(shuffled)
    assert (row.delta_nll_mean, row.delta_nll_low, row.delta_nll_high) == pytest.approx(
        (mean, low, high))
    assert row.verdict in ("uses pitch", "no effect measured", "pitch hurts")
    assert (out / "conditions.csv").is_file() and (out / "conditions_summary.csv").is_file()
    with pytest.raises(ValueError, match="unknown pitch condition"):
        BC.parse_conditions("true,sideways")
    assert BC.parse_conditions("shuffled, true ,shuffled:0") == ["true", "shuffled:0"]
