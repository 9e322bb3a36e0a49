"""Audio augmentations for the model-zoo corpus: pure functions of (samples, sr, rng).

Why: models trained on clean synthetic voices hear real recordings (8 kHz telephone-band
digits, room noise, other loudness and tempo) as a new language. Each transform is small and
testable against an independent measurement (SNR measured, gain exact, no energy above the
band edge); :func:`random_chain` draws a seeded chain of them and names it for the manifest.

Samples are float32 mono at ``sr`` (16 kHz in the corpus); every function returns a new array.
"""

from __future__ import annotations

import numpy as np
import soxr

TELEPHONE_SR = 8000  # Hz: band-limited clips keep nothing above 4 kHz, as FSDD recordings
SNR_RANGE_DB = (5.0, 30.0)  # additive noise level drawn per clip
GAIN_RANGE_DB = (-12.0, 6.0)
RT60_RANGE_S = (0.15, 0.6)  # reverberation time of the synthetic room
TEMPO_RANGE = (0.85, 1.15)  # speed factor (>1 faster), pitch kept
PITCH_RANGE_SEMITONES = (-3.0, 3.0)
PEAK_LIMIT = 0.99  # keep augmented clips inside int16 range when written
# Probability of each transform in a random chain (independent draws).
CHAIN_PROBABILITIES = {"tempo": 0.3, "pitch": 0.3, "reverb": 0.25, "band": 0.35, "noise": 0.4,
                       "gain": 0.5}


def gain(samples: np.ndarray, db: float) -> np.ndarray:
    """Samples times 10^(db/20)."""
    return (np.asarray(samples, np.float32) * np.float32(10.0 ** (db / 20.0))).astype(np.float32)


def add_noise(samples: np.ndarray, snr_db: float, rng: np.random.Generator,
              colour: str = "white") -> np.ndarray:
    """Add Gaussian noise (white or pink) scaled so signal power / noise power = snr_db."""
    x = np.asarray(samples, np.float64)
    noise = rng.standard_normal(x.size)
    if colour == "pink":  # 1/f power: shape the spectrum by 1/sqrt(f)
        spectrum = np.fft.rfft(noise)
        f = np.arange(spectrum.size, dtype=np.float64)
        f[0] = 1.0
        noise = np.fft.irfft(spectrum / np.sqrt(f), n=x.size)
    signal_power = float(np.mean(x ** 2))
    noise_power = float(np.mean(noise ** 2))
    if signal_power == 0.0 or noise_power == 0.0:
        return x.astype(np.float32)
    noise *= np.sqrt(signal_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return (x + noise).astype(np.float32)


def band_limit(samples: np.ndarray, sr: int, band_sr: int = TELEPHONE_SR) -> np.ndarray:
    """Down to ``band_sr`` and back (soxr's anti-alias filter): nothing left above band_sr/2."""
    x = np.asarray(samples, np.float32)
    low = soxr.resample(x, sr, band_sr)
    y = soxr.resample(low, band_sr, sr).astype(np.float32)
    return _same_length(y, x.size)


def room_impulse(sr: int, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """A simple room: a direct path then exponentially decaying noise (-60 dB at rt60 s)."""
    n = max(2, int(rt60 * sr))
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)  # ln(1000) = 6.9078
    tail[: int(0.002 * sr)] = 0.0  # first reflections after 2 ms
    ir = 0.4 * tail / max(np.sqrt(np.sum(tail ** 2)), 1e-12)
    ir[0] = 1.0
    return ir


def reverb(samples: np.ndarray, sr: int, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """Convolve with :func:`room_impulse`, keep the clip length plus the tail, same RMS."""
    from scipy.signal import fftconvolve

    x = np.asarray(samples, np.float64)
    y = fftconvolve(x, room_impulse(sr, rt60, rng))[: x.size + int(0.25 * rt60 * sr)]
    rms_x, rms_y = np.sqrt(np.mean(x ** 2)), np.sqrt(np.mean(y ** 2))
    return (y * (rms_x / rms_y if rms_y > 0 else 1.0)).astype(np.float32)


def tempo(samples: np.ndarray, factor: float) -> np.ndarray:
    """Change speed by ``factor`` (>1 faster) keeping pitch (librosa's phase vocoder)."""
    import librosa

    return librosa.effects.time_stretch(np.asarray(samples, np.float32), rate=factor).astype(
        np.float32)


def pitch_shift(samples: np.ndarray, sr: int, semitones: float) -> np.ndarray:
    """Shift pitch by ``semitones`` keeping duration (librosa)."""
    import librosa

    return librosa.effects.pitch_shift(np.asarray(samples, np.float32), sr=sr,
                                       n_steps=semitones).astype(np.float32)


def limit_peak(samples: np.ndarray, peak: float = PEAK_LIMIT) -> np.ndarray:
    """Scale down (never up) so |x| <= peak."""
    top = float(np.max(np.abs(samples))) if samples.size else 0.0
    return samples if top <= peak else (samples * (peak / top)).astype(np.float32)


def random_chain(samples: np.ndarray, sr: int, rng: np.random.Generator,
                 probabilities: dict | None = None) -> tuple[np.ndarray, str]:
    """Apply a seeded random chain (tempo, pitch, reverb, band, noise, gain, in that order:
    the voice, then the room, then the channel); returns (samples, description such as
    ``"tempo=1.08;noise=12.3"``, empty when nothing was applied)."""
    p = {**CHAIN_PROBABILITIES, **(probabilities or {})}
    draws = {name: rng.random() < p[name] for name in CHAIN_PROBABILITIES}
    x, done = np.asarray(samples, np.float32), []
    if draws["tempo"]:
        f = float(rng.uniform(*TEMPO_RANGE))
        x = tempo(x, f)
        done.append(f"tempo={f:.3f}")
    if draws["pitch"]:
        s = float(rng.uniform(*PITCH_RANGE_SEMITONES))
        x = pitch_shift(x, sr, s)
        done.append(f"pitch={s:.2f}")
    if draws["reverb"]:
        r = float(rng.uniform(*RT60_RANGE_S))
        x = reverb(x, sr, r, rng)
        done.append(f"reverb={r:.2f}")
    if draws["band"]:
        x = band_limit(x, sr)
        done.append("band=8k")
    if draws["noise"]:
        snr = float(rng.uniform(*SNR_RANGE_DB))
        colour = "pink" if rng.random() < 0.5 else "white"
        x = add_noise(x, snr, rng, colour)
        done.append(f"noise={snr:.1f}{colour[0]}")
    if draws["gain"]:
        g = float(rng.uniform(*GAIN_RANGE_DB))
        x = gain(x, g)
        done.append(f"gain={g:.1f}")
    return limit_peak(x), ";".join(done)


def _same_length(y: np.ndarray, n: int) -> np.ndarray:
    return y[:n] if y.size >= n else np.pad(y, (0, n - y.size))
