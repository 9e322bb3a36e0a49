"""Shared, generic test fixtures: where the example clips are, and a WAV writer for tmp files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
CLIPS_DIR = REPO / "assets" / "clips"


@pytest.fixture(scope="session")
def clips_dir() -> Path:
    """assets/clips: the example recordings (see assets/README.md)."""
    return CLIPS_DIR


@pytest.fixture(scope="session")
def arctic_path() -> Path:
    """Real speech: CMU ARCTIC a0007 (male, 16 kHz mono 16-bit, 4.0 s)."""
    path = CLIPS_DIR / "arctic_a0007.wav"
    if not path.exists():
        pytest.skip(f"{path} missing")
    return path


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
