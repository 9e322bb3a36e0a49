"""TrainConfig refuses a setting out of range when it is built, and the CLI says so plainly."""

import math

import pytest

from echo_core.errors import ConfigError, EchoError
from echo_core.train import main
from echo_core.train_config import RANGES, TrainConfig, check_range


def test_the_defaults_are_accepted():
    cfg = TrainConfig(data="d", out="o")
    assert cfg.time_warp == 0.0 and cfg.fmax == 8000.0


@pytest.mark.parametrize("name, bad, shown", [
    ("time_warp", 0.2, "--time-warp must lie in [0, 0.2), got 0.2"),
    ("time_stretch", -0.1, "--time-stretch must lie in [0, 1), got -0.1"),
    ("spectral_tilt", 1.0, "--spectral-tilt must lie in [0, 1), got 1"),
    ("lr", -1e-3, "--lr must lie in [0, inf), got -0.001"),
    ("onset_crop", 1.5, "--onset-crop must lie in [0, 1], got 1.5"),
    ("steps", 0, "--steps must lie in [1, inf), got 0"),
    ("grad_clip", math.nan, "--grad-clip must be a finite number, got nan"),
])
def test_a_value_out_of_range_names_the_option_and_the_range(name, bad, shown):
    with pytest.raises(ConfigError) as caught:
        TrainConfig(data="d", out="o", **{name: bad})
    assert str(caught.value) == shown
    assert isinstance(caught.value, EchoError)


def test_each_bound_is_inclusive_or_strict_as_declared():
    for name, (low, high, (low_in, high_in)) in RANGES.items():
        for value, inside in ((low, low_in), (high, high_in)):
            if math.isinf(value):
                continue
            if inside:
                check_range(name, value, low, high, (low_in, high_in))
            else:
                with pytest.raises(ConfigError, match="must lie in"):
                    check_range(name, value, low, high, (low_in, high_in))


def test_fmax_must_lie_above_fmin_and_below_nyquist():
    TrainConfig(data="d", out="o", fmax=None)
    for bad in (9000.0, 0.0):
        with pytest.raises(ConfigError, match="--fmax must lie in"):
            TrainConfig(data="d", out="o", fmax=bad)


def test_cli_refuses_a_bad_option_before_loading_anything(tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--data", str(tmp_path / "absent"), "--out", str(tmp_path / "run"),
              "--time-warp", "0.3"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "--time-warp must lie in [0, 0.2), got 0.3" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_cli_refuses_dims_that_are_not_json(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--data", "d", "--out", str(tmp_path / "run"), "--dims", "{key_padding_mask}"])
    assert "--dims must be a JSON object" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--data", "d", "--out", str(tmp_path / "run"), "--dims", "[1]"])
    assert "--dims must be a JSON object" in capsys.readouterr().err


def test_cli_shows_a_missing_corpus_as_a_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--data", str(tmp_path / "absent"), "--out", str(tmp_path / "run"), "--threads", "1"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # nothing is left behind by a run that never began
