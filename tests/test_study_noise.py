"""The noise-floor study (echo_core.study_noise): the level added is the level asked for,
measured independently; the noise is seeded per clip; the transcripts are the app's
transcripts of the same audio; the CLI refuses bad levels with a usage message."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from echo_core import study, study_noise
from echo_core.errors import EchoError

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ROOT / "assets" / "clips"
DEFAULT = ROOT / "assets" / "checkpoints" / "zoo_mean_f0_theta_long"
TINY = [("digits_fsdd-jackson_zero.wav", "zero", "fsdd"),
        ("digits_fsdd-jackson_four-one.wav", "four one", "fsdd"),
        ("digits_fsdd-jackson_three-one-eight.wav", "three one eight", "fsdd_spliced")]


def test_the_noise_is_the_level_asked_for_and_the_same_noise_at_every_level():
    x = np.sin(2 * np.pi * 150 * np.arange(8000) / 8000).astype(np.float32) * 0.3
    power = np.mean(x.astype(np.float64) ** 2)
    n50 = study_noise.noisy(x, 50, 7).astype(np.float64) - x
    n40 = study_noise.noisy(x, 40, 7).astype(np.float64) - x
    assert 10 * np.log10(power / np.mean(n50 ** 2)) == pytest.approx(50, abs=0.01)
    assert 10 * np.log10(power / np.mean(n40 ** 2)) == pytest.approx(40, abs=0.01)
    assert np.corrcoef(n50, n40)[0, 1] > 0.999  # one noise, scaled
    assert np.array_equal(study_noise.noisy(x, 50, 7), study_noise.noisy(x, 50, 7))
    other = study_noise.noisy(x, 50, 8).astype(np.float64) - x
    assert abs(np.corrcoef(n50, other)[0, 1]) < 0.05  # each clip its own noise
    assert np.abs(np.fft.rfft(n50)[1:]).std() / np.abs(np.fft.rfft(n50)[1:]).mean() < 0.6  # white


@pytest.mark.parametrize("levels", [[], [0], [-5], [float("nan")], [121], [50, 50.0]])
def test_bad_levels_are_refused(levels):
    with pytest.raises(EchoError, match="dB below"):
        study_noise.check_levels(levels)


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory) -> Path:
    """Three bundled clips of the held-out real speaker as a corpus's test split."""
    root = tmp_path_factory.mktemp("tiny_corpus")
    (root / "wav").mkdir()
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "text", "voice", "pitch", "speed", "split", "source", "speaker",
                    "origin", "augment"])
        for name, text, source in TINY:
            shutil.copy(CLIPS / name, root / "wav" / name)
            w.writerow([f"wav/{name}", text, "", 0, 0, "test", source, "jackson", "", ""])
    return root


def test_noise_eval_transcribes_as_the_app_does(tiny_corpus):
    import torch

    from echo_core.checkpoint import load_checkpoint
    from echo_core.clip_run import transcribe

    result = study_noise.noise_eval(tiny_corpus, DEFAULT, levels=[40])
    assert set(result["conditions"]) == {"clean", "40dB"} and result["levels"] == [40.0]
    torch.set_num_threads(1)
    model = load_checkpoint(DEFAULT).eval()
    for c, level in (("clean", None), ("40dB", 40)):
        sets = result["conditions"][c]["sets"]
        assert set(sets) == {"fsdd", "fsdd_spliced"}
        for name, rec in sets.items():
            for i, hyp in zip(rec["clips"], rec["hyps"]):
                samples, sr = sf.read(str(CLIPS / TINY[i][0]), dtype="float32")
                x = samples if level is None else study_noise.noisy(samples, level, i)
                assert hyp == transcribe(model, x, sr)
    lines = study_noise.noise_lines(result)
    assert len(lines) == 2 and all(line.startswith("  40dB") for line in lines)


def test_cli_writes_the_result_and_refuses_bad_levels(tiny_corpus, tmp_path, capsys):
    out = tmp_path / "noise.json"
    study.main(["noise", "--data", str(tiny_corpus), "--checkpoint", str(DEFAULT),
                "--levels", "50", "--max-clips", "1", "--out", str(out)])
    result = json.loads(out.read_text())
    assert [len(s["clips"]) for s in result["conditions"]["50dB"]["sets"].values()] == [1, 1]
    assert "paired bootstrap" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        study.main(["noise", "--data", str(tiny_corpus), "--checkpoint", str(DEFAULT),
                    "--levels", "-3"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "dB below" in err and "Traceback" not in err
