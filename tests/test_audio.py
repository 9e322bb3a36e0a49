"""echo_core.audio: decoding, bad input, resampling, and log-mel vs an independent computation."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import soundfile as sf

from echo_core import audio
from echo_core.audio import Audio, audio_from_array, frame_times, load_audio, log_mel
from echo_core.errors import AudioError

SR = audio.SAMPLE_RATE


def sine(freq, seconds, sr, amp=0.5):
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_hz(x, sr):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spectrum) * sr / len(x)


# ----------------------------------------------------------------------------- formats


def test_constants_line_up():
    assert audio.HOP_LENGTH / audio.SAMPLE_RATE == audio.FRAME_SECONDS == 0.008
    assert audio.MAX_SECONDS_DEFAULT == 600.0


@pytest.mark.parametrize(
    "subtype, tolerance",
    [("PCM_U8", 1 / 128), ("PCM_16", 1 / 2**15), ("PCM_24", 1 / 2**23), ("PCM_32", 1e-7),
     ("FLOAT", 1e-7), ("DOUBLE", 1e-7)],
)
def test_wav_sample_formats(write_wav, subtype, tolerance):
    x = sine(440, 0.25, SR)
    a = load_audio(write_wav(x, SR, subtype=subtype))
    assert isinstance(a, Audio) and a.sr == SR
    assert a.samples.dtype == np.float32 and a.samples.ndim == 1 and len(a) == len(x)
    np.testing.assert_allclose(a.samples, x, atol=tolerance + 1e-7)


def test_stereo_is_mixed_to_mono(write_wav):
    left, right = sine(440, 0.2, SR, 0.6), sine(1000, 0.2, SR, 0.2)
    a = load_audio(write_wav(np.stack([left, right], axis=1), SR, subtype="FLOAT"))
    np.testing.assert_allclose(a.samples, (left + right) / 2, atol=1e-7)


def test_many_channels(write_wav):
    chans = np.stack([sine(200 * (c + 1), 0.1, SR, 0.1) for c in range(6)], axis=1)
    a = load_audio(write_wav(chans, SR, subtype="FLOAT"))
    np.testing.assert_allclose(a.samples, chans.mean(axis=1), atol=1e-7)


def test_resample_48k_keeps_frequency_and_band_limits(write_wav):
    x = sine(1000, 1.0, 48000, 0.4) + sine(10000, 1.0, 48000, 0.4)  # 10 kHz is above 8 kHz Nyquist
    a = load_audio(write_wav(x, 48000, subtype="FLOAT"))
    assert a.sr == SR and len(a) == SR
    assert abs(dominant_hz(a.samples, SR) - 1000) <= 2
    # The 10 kHz tone must be filtered out, not aliased to 6 kHz.
    spectrum = np.abs(np.fft.rfft(a.samples * np.hanning(len(a))))
    hz = np.fft.rfftfreq(len(a), 1 / SR)
    alias = spectrum[(hz > 5900) & (hz < 6100)].max()
    assert alias < 1e-3 * spectrum.max()


def test_sr_argument_resamples(write_wav):
    a = load_audio(write_wav(sine(500, 0.5, SR), SR), sr=8000)
    assert a.sr == 8000 and len(a) == 4000
    assert abs(dominant_hz(a.samples, 8000) - 500) <= 2


@pytest.mark.parametrize(
    "fmt, subtype, name",
    [("FLAC", "PCM_16", "x.flac"), ("OGG", "VORBIS", "x.ogg"), ("OGG", "OPUS", "x.opus"),
     ("MP3", "MPEG_LAYER_III", "x.mp3")],
)
def test_compressed_formats(write_wav, fmt, subtype, name):
    x = sine(440, 1.0, SR, 0.4)
    a = load_audio(write_wav(x, SR, name=name, subtype=subtype, format=fmt))
    assert a.sr == SR and abs(len(a) - len(x)) <= 2304
    assert abs(dominant_hz(a.samples, SR) - 440) <= 3
    assert np.abs(a.samples).max() <= 1.0


def test_float_beyond_full_scale_is_clipped_only_there(write_wav):
    x = sine(300, 0.1, SR, 1.5)
    a = load_audio(write_wav(x, SR, subtype="FLOAT"))
    assert a.samples.max() == 1.0 and a.samples.min() == -1.0
    inside = np.abs(x) < 1.0
    np.testing.assert_array_equal(a.samples[inside], x[inside])


def test_silence_and_very_short_clips_are_valid(write_wav):
    silent = load_audio(write_wav(np.zeros(SR), SR, name="silent.wav"))
    assert not silent.samples.any() and silent.duration == 1.0
    short = load_audio(write_wav(sine(440, 0.01, SR), SR, name="short.wav"))
    assert len(short) == 160 and short.duration == pytest.approx(0.01)
    one = load_audio(write_wav(np.full(1, 0.5), 44100, name="one.wav"), sr=SR)
    assert len(one) >= 1


def test_accepts_str_and_pathlike(write_wav):
    path = write_wav(sine(440, 0.05, SR), SR)
    np.testing.assert_array_equal(load_audio(str(path)).samples, load_audio(path).samples)


# ----------------------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        load_audio(tmp_path / "nope.wav")


def test_directory(tmp_path):
    with pytest.raises(AudioError, match="not a regular file"):
        load_audio(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty.*0 bytes.*accepted"):
        load_audio(tmp_path / "empty.wav")


@pytest.mark.parametrize("name", ["notes.wav", "notes.mp3", "notes.txt"])
def test_text_file(tmp_path, name):
    (tmp_path / name).write_text("this is not audio\n" * 50)
    with pytest.raises(AudioError, match="could not be decoded.*Accepted: WAV") as err:
        load_audio(tmp_path / name)
    assert str(tmp_path) not in str(err.value)  # the server's folder never reaches the user
    assert f"'{name}'" in str(err.value)


@pytest.mark.parametrize("name", ["noise.bin", "noise.mp3", "noise.flac"])
def test_random_bytes(tmp_path, name):
    (tmp_path / name).write_bytes(np.random.default_rng(0).bytes(20000))
    with pytest.raises(AudioError, match="could not be decoded") as err:
        load_audio(tmp_path / name)
    assert str(tmp_path) not in str(err.value)


@pytest.mark.parametrize(
    "fmt, subtype, name",
    [("WAV", "PCM_16", "t.wav"), ("FLAC", "PCM_16", "t.flac"), ("OGG", "VORBIS", "t.ogg"),
     ("MP3", "MPEG_LAYER_III", "t.mp3")],
)
def test_truncated_file(write_wav, fmt, subtype, name):
    path = write_wav(sine(440, 1.0, SR), SR, name=name, subtype=subtype, format=fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="truncated|could not be decoded"):
        load_audio(path)


def test_zero_frames(write_wav):
    with pytest.raises(AudioError, match="no audio frames"):
        load_audio(write_wav(np.zeros(0), SR, subtype="FLOAT"))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(write_wav, bad):
    x = sine(440, 0.05, SR)
    x[100] = bad
    with pytest.raises(AudioError, match="non-finite"):
        load_audio(write_wav(x, SR, subtype="FLOAT"))


def _wav_header(data_bytes, sr=SR, channels=1, bits=16):
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, sr, sr * block, block, bits)
    return (b"RIFF" + struct.pack("<I", (36 + data_bytes) & 0xFFFFFFFF) + b"WAVE"
            + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", data_bytes))


def test_header_claiming_hours_is_refused_from_the_header(tmp_path, monkeypatch):
    # 3 hours declared, 1 kB present: libsndfile alone would shrink this to a valid 31 ms clip.
    path = tmp_path / "liar.wav"
    path.write_bytes(_wav_header(SR * 2 * 3 * 3600) + b"\0" * 1000)
    import soundfile

    def no_decoding(*args, **kwargs):
        raise AssertionError("the samples were decoded: the header alone must decide")

    monkeypatch.setattr(soundfile, "read", no_decoding)
    monkeypatch.setattr(soundfile.SoundFile, "read", no_decoding)
    with pytest.raises(AudioError, match=r"10800\.0 s long, over the limit of 600 s"):
        load_audio(path)


def test_length_limit_is_a_parameter(write_wav):
    path = write_wav(np.zeros(2 * SR), SR)
    assert load_audio(path, max_seconds=2.0).duration == 2.0
    with pytest.raises(AudioError, match="over the limit of 1.5 s"):
        load_audio(path, max_seconds=1.5)
    with pytest.raises(AudioError, match="max_seconds"):
        load_audio(path, max_seconds=0)


def test_long_flac_rejected_before_decoding(write_wav, monkeypatch):
    path = write_wav(np.zeros(3 * SR), SR, name="long.flac", format="FLAC")

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although the header already said too long")

    monkeypatch.setattr(sf.SoundFile, "read", no_decoding)
    with pytest.raises(AudioError, match="over the limit of 2 s"):
        load_audio(path, max_seconds=2)


def test_streaming_wav_header_with_unknown_size_is_read(tmp_path):
    # Writers to pipes leave 0xFFFFFFFF as the data size: not a "huge" file.
    pcm = (sine(440, 0.1, SR) * 32767).astype("<i2").tobytes()
    path = tmp_path / "stream.wav"
    path.write_bytes(_wav_header(0xFFFFFFFF) + pcm)
    assert len(load_audio(path)) == 1600


def test_bad_sample_rate_argument(write_wav):
    with pytest.raises(AudioError, match="sample rate"):
        load_audio(write_wav(np.zeros(10), SR), sr=0)


# ----------------------------------------------------------------------------- arrays


def test_audio_from_array_layouts_and_integers():
    x = sine(440, 0.1, SR)
    pcm = np.round(x * 32767).astype(np.int16)
    np.testing.assert_allclose(audio_from_array(pcm, SR).samples, pcm / 32768.0, atol=1e-7)
    u8 = np.round(x * 127 + 128).astype(np.uint8)
    np.testing.assert_allclose(audio_from_array(u8, SR).samples, (u8 - 128.0) / 128, atol=1e-7)
    stereo = np.stack([x, -0.5 * x], axis=1)  # (frames, channels)
    np.testing.assert_allclose(audio_from_array(stereo, SR).samples, 0.25 * x, atol=1e-7)
    np.testing.assert_allclose(audio_from_array(stereo.T, SR).samples, 0.25 * x, atol=1e-7)
    resampled = audio_from_array(sine(440, 0.5, 44100), 44100)
    assert resampled.sr == SR and len(resampled) == 8000


@pytest.mark.parametrize(
    "samples, match",
    [(np.zeros(0), "no audio frames"), (np.array([0.0, np.nan]), "non-finite"),
     (np.zeros((2, 3, 4)), "1-D"), (np.array(["a", "b"]), "numeric"),
     (np.zeros((100, 100)), "frames from channels")],
)
def test_audio_from_array_errors(samples, match):
    with pytest.raises(AudioError, match=match):
        audio_from_array(samples, SR)


def test_audio_from_array_length_limit():
    with pytest.raises(AudioError, match="over the limit"):
        audio_from_array(np.zeros(3 * SR), SR, max_seconds=2)


# ----------------------------------------------------------------------------- log-mel


def htk_mel_filterbank(sr, n_fft, n_mels, fmin, fmax):
    """Triangles on the HTK mel scale, peak 1, no area normalisation: written from the formula."""
    mel = lambda f: 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)  # noqa: E731
    hz = lambda m: 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)  # noqa: E731
    edges = hz(np.linspace(mel(fmin), mel(fmax), n_mels + 2))
    bins = np.arange(n_fft // 2 + 1) * sr / n_fft
    bank = np.zeros((n_mels, bins.size))
    for m in range(n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        rising = (bins - lo) / (mid - lo)
        falling = (hi - bins) / (hi - mid)
        bank[m] = np.maximum(0.0, np.minimum(rising, falling))
    return bank


def reference_log_mel(x, sr=16000, n_fft=1024, hop=128, n_mels=128, fmin=0.0, fmax=8000.0):
    x = np.asarray(x, dtype=np.float64)
    padded = np.pad(x, n_fft // 2)  # centred frames, zero padding
    n_frames = 1 + len(x) // hop
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    frames = np.stack([padded[t * hop: t * hop + n_fft] for t in range(n_frames)])
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2  # (T, bins)
    mel = htk_mel_filterbank(sr, n_fft, n_mels, fmin, fmax) @ power.T
    logs = np.log10(np.maximum(mel, 1e-10))
    logs = np.maximum(logs, logs.max() - 8.0)
    return (logs + 4.0) / 4.0


@pytest.fixture(scope="module")
def speechy():
    rng = np.random.default_rng(0)
    t = np.arange(8000 + 77) / SR
    chirp = 0.3 * np.sin(2 * np.pi * (150 * t + 900 * t**2))
    return (chirp + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.mark.parametrize("fmin, fmax", [(0.0, None), (150.0, 2000.0)])
def test_log_mel_matches_independent_computation(speechy, fmin, fmax):
    got = log_mel(speechy, SR, n_mels=128, fmin=fmin, fmax=fmax)
    want = reference_log_mel(speechy, fmin=fmin, fmax=fmax or 8000.0)
    assert got.dtype == np.float32 and got.shape == (128, 1 + len(speechy) // 128)
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_log_mel_is_seamless_across_chunks(monkeypatch, speechy):
    """log_mel computes the STFT a chunk of frames at a time (bounded memory on long clips);
    frames on both sides of every chunk boundary must equal the one-shot computation."""
    import echo_core.audio as audio_module

    monkeypatch.setattr(audio_module, "MEL_CHUNK_FRAMES", 7)  # many boundaries, a ragged last one
    got = audio_module.log_mel(speechy, SR)
    np.testing.assert_allclose(got, reference_log_mel(speechy), atol=1e-4)


@pytest.mark.parametrize("n", [1, 160, 1023, 1024, 1025])
def test_log_mel_short_clips(n):
    x = np.sin(np.arange(n) * 0.3).astype(np.float32) * 0.5
    got = log_mel(x, SR)
    assert got.shape == (128, 1 + n // 128)
    np.testing.assert_allclose(got, reference_log_mel(x), atol=1e-4)


def test_log_mel_other_rate_is_resampled_first():
    x = sine(1000, 0.5, 48000)
    got = log_mel(x, 48000, n_mels=40)
    assert got.shape == (40, 1 + 8000 // 128)
    bank = htk_mel_filterbank(SR, 1024, 40, 0.0, 8000.0)
    assert np.argmax(got[:, got.shape[1] // 2]) == np.argmax(bank[:, 64])  # 1000 Hz = bin 64


def test_log_mel_silence_is_flat():
    got = log_mel(np.zeros(4000, np.float32))
    np.testing.assert_allclose(got, (-10 + 4) / 4)


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(samples=np.zeros(0)), "non-empty"), (dict(samples=np.zeros((2, 5))), "1-D"),
     (dict(samples=np.array([0.0, np.inf])), "NaN or Inf"),
     (dict(samples=np.zeros(100), fmin=3000.0, fmax=2000.0), "fmin < fmax"),
     (dict(samples=np.zeros(100), fmax=9000.0), "fmax <= 8000"),
     (dict(samples=np.zeros(100), n_mels=0), "n_mels")],
)
def test_log_mel_errors(kwargs, match):
    with pytest.raises(AudioError, match=match):
        log_mel(**kwargs)


def test_frame_times():
    np.testing.assert_allclose(frame_times(4), [0.0, 0.008, 0.016, 0.024])
    assert frame_times(0).shape == (0,)
    with pytest.raises(AudioError):
        frame_times(-1)
