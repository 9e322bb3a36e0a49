"""The benchmark suite runs and writes well-formed JSON (benchmarks/, issue #6).

Every comparison module runs once in its tiny ``--quick`` mode; the five run concurrently in
one fixture to keep the wall time short. Nothing here asserts on a timing: only that each
module finishes, reports "ok" (a broken library is an error, never a skip), and that its rows, ratios and targets are
shaped as run_all and RESULTS.md expect. The harness's memory counter and the F0 error metric
are checked against known quantities (an allocation of known size, a known contour).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
MODULES = ("f0", "similarity", "hooks", "head_scores", "model", "app", "interventions")
ROW_KEYS = {"comparison", "group", "method", "seconds", "runs", "ratio", "baseline", "peak_mb",
            "mem_method", "extra", "note"}
TIMEOUT = 1800  # s: a hang guard only; under load the quick modules take minutes


@pytest.fixture(scope="module")
def quick_reports(tmp_path_factory) -> dict:
    """{module: (returncode, report dict or None, stderr)} of every module in --quick mode, and
    of run_all (--quick --only f0; its stderr + stdout)."""
    folder = tmp_path_factory.mktemp("bench")
    procs = {}
    for name in MODULES:
        out = folder / f"{name}.json"
        cmd = [sys.executable, "-m", f"benchmarks.bench_{name}", "--quick", "--out", str(out)]
        procs[name] = (subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True), out)
    out = folder / "run_all.json"  # run_all itself, concurrently with the modules
    cmd = [sys.executable, "-m", "benchmarks.run_all", "--quick", "--only", "f0", "--out", str(out)]
    procs["run_all"] = (subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True), out)
    results = {}
    for name, (proc, out) in procs.items():
        try:
            stdout, err = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, err = proc.communicate()
        report = json.loads(out.read_text()) if out.is_file() else None
        results[name] = (proc.returncode, report, err if name != "run_all" else err + stdout)
    return results


def _finite_positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


@pytest.mark.parametrize("name", MODULES)
def test_module_runs_and_writes_well_formed_json(quick_reports, name):
    code, report, err = quick_reports[name]
    assert code == 0, err[-2000:]
    assert report is not None, "no JSON written"
    assert report["module"] == name and report["quick"] is True
    assert report["status"] == "ok", report.get("reason")
    assert set(report["machine"]) >= {"nproc", "cpu", "ram_gb", "versions", "date"}
    assert report["rows"], "an ok report has rows"
    groups = {}
    for row in report["rows"]:
        assert ROW_KEYS <= set(row), ROW_KEYS - set(row)
        assert row["comparison"] == name
        groups.setdefault(row["group"], []).append(row)
        if row["seconds"] is not None:
            assert _finite_positive(row["seconds"]) and row["runs"] >= 1
        else:
            assert row["note"], "a row without a time says why"
        if row["peak_mb"] is not None:
            assert math.isfinite(row["peak_mb"]) and row["peak_mb"] >= 0
    for group, rows in groups.items():
        baselines = [r for r in rows if r["baseline"]]
        assert len(baselines) <= 1, f"{group}: more than one baseline"
        if baselines and baselines[0]["seconds"] is not None:
            assert baselines[0]["ratio"] == pytest.approx(1.0)
            for r in rows:
                if r["seconds"] is not None:
                    assert r["ratio"] == pytest.approx(r["seconds"] / baselines[0]["seconds"])
    for target in report["targets"]:
        assert target["met"] is None, "quick sizes must not claim a target"
        assert target["goal"] and target["value"]
    json.dumps(report, allow_nan=True)  # round-trips


def test_f0_report_measures_accuracy(quick_reports):
    _, report, _ = quick_reports["f0"]
    rows = {r["method"]: r for r in report["rows"]}
    ours = next(r for m, r in rows.items() if "ours" in m)
    assert ours["extra"]["frames"] > 0 and ours["extra"]["cents"] >= 0


def test_run_all_combines_reports(quick_reports):
    code, doc, output = quick_reports["run_all"]
    assert code == 0, output[-2000:]
    assert [m["module"] for m in doc["modules"]] == ["f0"]
    assert "torch" in doc["machine"]["versions"]
    assert "parselmouth to_pitch_ac (baseline)" in output  # the printed table


def test_peak_memory_sees_a_known_allocation():
    from benchmarks import _harness as H

    size = 64 * 2**20
    _, peak, how = H.peak_during(lambda: np.ones(size // 8))  # pages touched: resident
    assert how.startswith("rss")
    assert 0.9 * size <= peak <= 1.5 * size
    assert 0.99 * size <= H.traced_peak(lambda: np.ones(size // 8)) <= 1.01 * size + 2**16


def test_f0_errors_against_known_contours():
    from benchmarks import _signals as S

    sr = S.SR
    truth = np.full(2 * sr, 200.0)
    truth[sr - sr // 4: sr + sr // 4] = np.nan  # a 0.5 s gap in the middle
    times = np.arange(0, 2.0, 0.008)
    exact = S.f0_errors(times, np.where(np.isnan(truth[(times * sr).astype(int)]), np.nan, 200.0),
                        truth)
    assert exact["cents_median_abs"] == 0 and exact["gross_error_rate"] == 0
    assert exact["voicing_recall"] == 1 and exact["false_voicing"] == 0
    octave = S.f0_errors(times, np.full(times.size, 400.0), truth)  # voiced everywhere, 2x
    assert octave["cents_median_abs"] == pytest.approx(1200.0)
    assert octave["gross_error_rate"] == 1 and octave["false_voicing"] == 1


def test_synthetic_voice_has_the_contour_it_claims():
    """Praat on the benchmark's synthetic voice agrees with the known F0 (so the cents are
    errors of the trackers, not of the signal)."""
    from benchmarks import _signals as S
    from echo_core.pitch import extract_f0

    x, f0 = S.synthetic_voice(4.0)
    track = extract_f0(x, S.SR)
    errors = S.f0_errors(track.times, track.hz, f0)
    assert errors["frames_compared"] > 200
    assert errors["cents_median_abs"] < 10 and errors["gross_error_rate"] < 0.02
