"""Shared test fixtures (example clips, the reference vectors, a WAV writer) and strict mode.

Strict mode (``ECHO_STRICT=1``, set by ``.ci/run``): every skip is reported as a failure, so a
missing tool (Chromium, espeak-ng, Dask) or missing data can never make CI pass by checking
less. On a laptop without those tools the same tests skip with a note saying what to install.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
CLIPS_DIR = REPO / "assets" / "clips"
REFERENCE_DIR = REPO / "tests" / "data" / "reference"  # vectors made by the reference implementation
STRICT = os.environ.get("ECHO_STRICT", "") not in ("", "0")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In strict mode a skip (skip, skipif, importorskip) becomes a failure that names its reason."""
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"ECHO_STRICT=1: a skip is an error here: {reason}"


@pytest.fixture(scope="session")
def reference_vector():
    """(config dict, state dict, inputs, expected) of the reference test vector in tests/data.

    The vectors ship with the repository, so a missing file is a broken checkout: it fails.
    Tests must not modify the returned tensors (they are shared by the session)."""
    from safetensors.torch import load_file

    name = "ref_a_spectrogram_f0"
    config = json.loads((REFERENCE_DIR / f"{name}.json").read_text())
    tensors = load_file(str(REFERENCE_DIR / f"{name}.safetensors"))

    def part(prefix):
        return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    return config, part("param."), part("input."), part("expected.")


@pytest.fixture(scope="session")
def clips_dir() -> Path:
    """assets/clips: the example recordings (see assets/README.md)."""
    return CLIPS_DIR


@pytest.fixture(scope="session")
def arctic_path() -> Path:
    """Real speech: CMU ARCTIC a0007 (male, 16 kHz mono 16-bit, 4.0 s)."""
    return CLIPS_DIR / "arctic_a0007.wav"


@pytest.fixture(scope="session")
def shipped_models():
    """The static and mean-F0 shipped checkpoints (loaded once per test session; read-only)."""
    from echo_core.checkpoint import load_checkpoint

    return {name: load_checkpoint(REPO / "assets" / "checkpoints" / name)
            for name in ("static_theta", "mean_f0_theta")}


@pytest.fixture(scope="session")
def digit_clip():
    """(samples, sr) of a held-out espeak voice saying "four two seven" (a bundled clip)."""
    import soundfile as sf

    return sf.read(str(CLIPS_DIR / "digits_en-us_m5_four-two-seven.wav"), dtype="float32")


@pytest.fixture
def write_wav(tmp_path):
    """write_wav(samples, sr, name="clip.wav", subtype="PCM_16", format=None) -> Path.

    ``samples`` is (frames,) or (frames, channels) float in [-1, 1]; any soundfile subtype /
    format works (e.g. "PCM_U8", "PCM_24", "FLOAT"; format "FLAC", "OGG", "MP3").
    """
    import soundfile as sf

    def write(samples, sr, name="clip.wav", subtype="PCM_16", format=None):
        path = tmp_path / name
        sf.write(path, np.asarray(samples), int(sr), subtype=subtype, format=format)
        return path

    return write
