"""Fuzzing load_audio (issue #9): for any file, it returns a valid Audio or raises AudioError.

Valid Audio: float32, 1-D, finite, within [-1, 1], sr 16000, duration <= max_seconds.
Bounds enforced here (documented in the report of issue #9):
  * hangs: a faulthandler watchdog aborts the run with a traceback if one case hangs for
    WATCHDOG_SECONDS (a C decoder loop cannot be interrupted from Python, so the watchdog turns
    a hang into a failure, not a stall); speed itself is a benchmark's business, not a test's;
  * memory: each case may raise peak memory by at most CASE_MB over where it started
    (measured per case, see _fuzz_bounds); the decoded size itself is capped in the library
    (audio.MAX_DECODED_SAMPLES).
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from _fuzz_bounds import bounded_case, case_memory
import soundfile as sf
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from echo_core import audio as audio_mod
from echo_core.audio import SAMPLE_RATE, Audio, load_audio
from echo_core.errors import AudioError

CLIPS = Path(__file__).resolve().parents[1] / "assets" / "clips"
REGRESSIONS = Path(__file__).resolve().parent / "regressions"
WATCHDOG_SECONDS = 300.0
CASE_MB = 200  # fuzzed files are small; a decode that ignores the header's limits is not

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def bounded():
    return bounded_case(CASE_MB, WATCHDOG_SECONDS)


def valid_or_audio_error(path, max_seconds=audio_mod.MAX_SECONDS_DEFAULT):
    """load_audio(path): the Audio (checked valid) or the AudioError; anything else fails."""
    with bounded():
        try:
            result = load_audio(path, max_seconds=max_seconds)
        except AudioError as e:
            assert isinstance(e, ValueError) and str(e)
            return e
    assert isinstance(result, Audio)
    x = result.samples
    assert isinstance(x, np.ndarray) and x.dtype == np.float32 and x.ndim == 1 and x.size > 0
    assert np.isfinite(x).all()
    assert np.abs(x).max() <= 1.0
    assert result.sr == SAMPLE_RATE
    assert result.duration <= max_seconds + 1.0 / SAMPLE_RATE  # resampling rounds up one sample
    return result


# ------------------------------------------------------------------------------ seed files

@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, bytes]:
    """Small real files: the shortest bundled WAV cut to 0.5 s, and FLAC/OGG/MP3/float-WAV
    versions of it written here with soundfile (fuzzing full clips would only be slower)."""
    wavs = sorted(CLIPS.glob("*.wav"), key=lambda p: p.stat().st_size)
    if not wavs:
        pytest.skip("no bundled clips")
    data, sr = sf.read(wavs[0], dtype="float32")
    data = data[: sr // 2]
    out = {"bundled.wav": wavs[0].read_bytes()}  # the shortest bundled clip, unmodified
    for name, fmt, subtype in [("x.flac", "FLAC", "PCM_16"), ("x.ogg", "OGG", "VORBIS"),
                               ("x.mp3", "MP3", "MPEG_LAYER_III"), ("f.wav", "WAV", "FLOAT"),
                               ("s.wav", "WAV", "PCM_24")]:
        buf = io.BytesIO()
        stereo = np.stack([data, -data], axis=1) if name == "s.wav" else data
        sf.write(buf, stereo, sr, format=fmt, subtype=subtype)
        out[name] = buf.getvalue()
    for name, blob in out.items():  # the seeds themselves must load
        path = tmp_path_factory.mktemp("seed") / name
        path.write_bytes(blob)
        assert isinstance(valid_or_audio_error(path), Audio), name
    return out


SUFFIXES = [".wav", ".flac", ".ogg", ".mp3", ".aiff", ""]
MAGIC = [b"", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"fLaC", b"OggS", b"ID3\x03\x00", b"\xff\xfb",
         b"FORM\x00\x00\x00\x00AIFF", b"RIFF\xff\xff\xff\xffWAVE"]


@FUZZ
@given(prefix=st.sampled_from(MAGIC), body=st.binary(max_size=4096),
       suffix=st.sampled_from(SUFFIXES))
def test_random_bytes(tmp_path, prefix, body, suffix):
    path = tmp_path / f"upload{suffix}"
    path.write_bytes(prefix + body)
    assume(path.stat().st_size > 0)
    valid_or_audio_error(path)


@FUZZ
@given(data=st.data())
def test_truncated_and_bit_flipped_real_files(tmp_path, seeds, data):
    name = data.draw(st.sampled_from(sorted(seeds)))
    blob = bytearray(seeds[name])
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(blob) - 1), st.integers(0, 7)),
                               max_size=8))
    for pos, bit in flips:
        blob[pos] ^= 1 << bit
    if data.draw(st.booleans()):  # header bytes are where lies do damage: hit them often
        pos = data.draw(st.integers(0, min(64, len(blob) - 1)))
        blob[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.one_of(st.just(len(blob)), st.integers(1, len(blob))))
    path = tmp_path / name
    path.write_bytes(bytes(blob[:cut]))
    valid_or_audio_error(path, max_seconds=data.draw(st.sampled_from([600.0, 0.25])))


# ------------------------------------------------------------------------------ lying WAV headers

def wav_bytes(fmt_tag=1, channels=1, sr=16000, bits=16, fmt_size=16, data_size=None,
              payload=b"", riff_size=None, block_align=None, byte_rate=None, extra=b""):
    """A RIFF/WAVE file with every header field under the caller's control."""
    block_align = (channels * bits // 8) & 0xFFFF if block_align is None else block_align
    byte_rate = (sr * block_align) & 0xFFFFFFFF if byte_rate is None else byte_rate
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, sr & 0xFFFFFFFF, byte_rate, block_align,
                      bits)
    # the fmt chunk holds at most 64 bytes whatever fmt_size claims (a size that lies)
    fmt = (fmt + extra + bytes(max(0, min(fmt_size, 64) - 16 - len(extra))))[:fmt_size]
    data_size = len(payload) if data_size is None else data_size
    body = (b"WAVE" + b"fmt " + struct.pack("<I", fmt_size) + fmt + b"data"
            + struct.pack("<I", data_size) + payload)
    riff_size = len(body) if riff_size is None else riff_size
    return b"RIFF" + struct.pack("<I", riff_size) + body


U32 = st.one_of(st.sampled_from([0, 1, 2, 3, 7, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE,
                                 0xFFFFFFFF]), st.integers(0, 0xFFFFFFFF))


@FUZZ
@given(fmt_tag=st.sampled_from([0, 1, 2, 3, 6, 7, 0x55, 0xFFFE, 0xFFFF]),
       channels=st.sampled_from([0, 1, 2, 3, 8, 255, 1024, 1025, 65535]),
       sr=st.one_of(st.sampled_from([0, 1, 2, 100, 8000, 16000, 44100, 384000, 2**31 - 1,
                                     2**32 - 1]), U32),
       bits=st.sampled_from([0, 1, 4, 7, 8, 12, 16, 20, 24, 32, 48, 64, 65535]),
       fmt_size=st.sampled_from([0, 14, 16, 18, 40, 1000, 0xFFFFFFFF]),
       data_size=st.one_of(st.none(), U32),
       riff_size=st.one_of(st.none(), U32),
       block_align=st.one_of(st.none(), st.sampled_from([0, 1, 3, 65535])),
       byte_rate=st.one_of(st.none(), U32),
       payload=st.binary(max_size=2048),
       max_seconds=st.sampled_from([600.0, 1.0]))
def test_wav_headers_that_lie(tmp_path, fmt_tag, channels, sr, bits, fmt_size,
                              data_size, riff_size, block_align, byte_rate, payload,
                              max_seconds):
    path = tmp_path / "lie.wav"
    path.write_bytes(wav_bytes(fmt_tag, channels, sr, bits, fmt_size, data_size, payload,
                               riff_size, block_align, byte_rate))
    valid_or_audio_error(path, max_seconds=max_seconds)


def test_huge_declared_lengths_fail_fast(tmp_path):
    """Headers claiming hours (or 4 GB) of audio in a tiny file: AudioError before decoding."""
    for data_size in (0x7FFFFFFF, 0xFFFFFFFE, 16000 * 2 * 601):
        path = tmp_path / "huge.wav"
        path.write_bytes(wav_bytes(data_size=data_size, payload=bytes(3200)))
        result = valid_or_audio_error(path)
        assert isinstance(result, AudioError)
        assert "limit" in str(result) or "truncated" in str(result)


# ------------------------------------------------------------------------------ NaN / Inf samples

@FUZZ
@given(n=st.integers(1, 4000), bad=st.lists(st.tuples(st.integers(0, 3999),
                                                      st.sampled_from([np.nan, np.inf,
                                                                       -np.inf])),
                                           max_size=5),
       subtype=st.sampled_from(["FLOAT", "DOUBLE"]), channels=st.sampled_from([1, 2]),
       scale=st.sampled_from([1.0, 1e30, 3.4e38]))
def test_non_finite_float_wavs(tmp_path, n, bad, subtype, channels, scale):
    rng = np.random.default_rng(n)
    x = (rng.uniform(-1, 1, (n, channels)) * scale).astype(np.float64)
    for pos, value in bad:
        x[pos % n, pos % channels] = value
    path = tmp_path / "float.wav"
    sf.write(path, x, 16000, subtype=subtype)
    result = valid_or_audio_error(path)
    # independent expectation: a non-finite sample (as decoded to float32) must be rejected,
    # never silently replaced; huge finite ones are clipped to [-1, 1] (checked above)
    if not np.isfinite(x.astype(np.float32)).all():
        assert isinstance(result, AudioError) and "non-finite" in str(result)
    else:
        assert isinstance(result, Audio)


# ------------------------------------------------------------------------------ regressions

def test_regression_corpus_files():
    """Every tests/regressions/*.audio.* file once let something other than AudioError out (or
    decoded without bound); each must now give a valid Audio or an AudioError, quickly."""
    files = sorted(REGRESSIONS.glob("*.audio.*"))
    for path in files:
        valid_or_audio_error(path)


def test_regression_flac_bomb_is_refused_before_decoding(monkeypatch):
    """tests/regressions/flac_bomb_655khz_8ch_1s.audio.flac: 5.5 KB of FLAC silence that decodes
    to 655350 Hz x 8 channels = 5.2 M samples (21 MB). Scaled to 600 s, within max_seconds,
    the same kind of file is ~3.3 MB and load_audio used to read all 12.6 GB of it (computed,
    not run). With the limit lowered below its size it must fail from the header, allocating
    nothing; at the shipped limit the 1 s file still loads."""
    path = REGRESSIONS / "flac_bomb_655khz_8ch_1s.audio.flac"
    assert path.stat().st_size < 10_000
    monkeypatch.setattr(audio_mod, "MAX_DECODED_SAMPLES", 2**20)
    with case_memory(15):  # the 21 MB decode never happened
        result = valid_or_audio_error(path)
    assert isinstance(result, AudioError) and "over the limit" in str(result)
    assert "8 channels at 655350 Hz" in str(result)
    monkeypatch.setattr(audio_mod, "MAX_DECODED_SAMPLES", 2**27)  # the shipped limit: loads
    result = valid_or_audio_error(path)
    assert isinstance(result, Audio) and len(result) == SAMPLE_RATE
