"""Audio augmentation for rooms, microphones and voices the corpora do not have.

Each augmented *view* of a clip is the same speech through a random chain, drawn from a seed
that depends only on (its source, the view number, the chain's options), so a view is
reproducible and cacheable like the clean features. The source is the clip's audio (a channel
per clip), or the speaker's session (`session_channels`: every clip of a speaker in view v went
through the same voice change, room and microphone; live, a stream's channel does not change
from one utterance to the next, and the stream normaliser learns it as the speaker's own):

- speed perturbation (Kaldi's 0.9/1.0/1.1 recipe, continuous here): tempo and pitch together,
  which moves a voice's F0 range and formants the way another speaker's would;
- reverberation from a synthetic room impulse response: a direct path plus exponentially
  decaying noise with RT60 drawn from `rt60_s` (the statistical room model image-source
  simulators converge to after the first reflections; no package needed);
- band-limiting: telephone band (300-3400 Hz at 8 kHz) or a random low-pass of a cheap
  microphone or codec, and 8-bit mu-law quantisation on some telephone views;
- additive noise at an SNR drawn from `snr_db`: white, pink or brown synthetic noise, or
  real background taken from the clip's own pauses (`NoiseBank`), looped;
- a random gain, applied last (a quiet or hot microphone).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np
import soxr
from scipy.signal import butter, fftconvolve, sosfilt

SAMPLE_RATE = 16000
MIN_NOISE = SAMPLE_RATE // 10  # 0.1 s of pauses is enough to loop as background; less is treated as none


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of each step of the chain (module docstring)."""

    p_speed: float = 0.4
    speed: tuple[float, float] = (0.9, 1.1)
    p_reverb: float = 0.4
    rt60_s: tuple[float, float] = (0.2, 0.9)
    p_band: float = 0.3
    p_noise: float = 0.6
    snr_db: tuple[float, float] = (5.0, 30.0)
    p_bank_noise: float = 0.5  # of the noisy views, how many take real pauses rather than synthetic noise
    gain_db: tuple[float, float] = (-20.0, 6.0)

    def digest(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


class NoiseBank:
    """Background audio from recordings' own pauses: 25 ms frames at least 35 dB below their
    clip's loudest frame but not digital silence (EmoDB's zero padding), concatenated."""

    FRAME = 400
    BELOW_PEAK_DB = 35.0

    def __init__(self, clips: list[np.ndarray], max_seconds: float = 120.0) -> None:
        parts, total = [], 0
        for clip in clips:
            frames = clip[: len(clip) // self.FRAME * self.FRAME].reshape(-1, self.FRAME)
            if not len(frames):
                continue
            rms = np.sqrt((frames.astype(np.float64) ** 2).mean(1))
            quiet = (rms < rms.max() * 10 ** (-self.BELOW_PEAK_DB / 20)) & (rms > 1e-5)
            if quiet.any():
                parts.append(frames[quiet].ravel())
                total += parts[-1].size
            if total >= max_seconds * SAMPLE_RATE:
                break
        self.audio = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray | None:
        if self.audio.size < MIN_NOISE:
            return None
        start = rng.integers(0, self.audio.size - 1)
        return np.resize(np.roll(self.audio, -start), n)


def coloured_noise(n: int, rng: np.random.Generator, exponent: float | None = None) -> np.ndarray:
    """White (`exponent` 0), pink (1: 1/f) or brown (2: 1/f^2) noise, shaped in the frequency
    domain; None draws one of the three."""
    if exponent is None:
        exponent = rng.choice([0.0, 1.0, 2.0])
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
    return np.fft.irfft(spectrum / f ** (exponent / 2), n)


def room_impulse_response(rt60: float, rng: np.random.Generator) -> np.ndarray:
    """Direct path, then noise decaying 60 dB over `rt60` seconds after a 2-10 ms pre-delay."""
    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * 10 ** (-3 * t / rt60)
    delay = int(rng.uniform(0.002, 0.010) * SAMPLE_RATE)
    h = np.concatenate([[1.0], np.zeros(delay), tail * rng.uniform(0.1, 0.4)])
    return h / np.sqrt((h**2).sum())


def band_limit(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Telephone band at 8 kHz (sometimes mu-law coded), or a random low-pass."""
    if rng.random() < 0.5:
        return telephone(x, coded=rng.random() < 0.5)
    cutoff = rng.uniform(2500, 6000)
    return sosfilt(butter(6, cutoff, fs=SAMPLE_RATE, output="sos"), x)


def telephone(x: np.ndarray, coded: bool) -> np.ndarray:
    """The telephone band (300-3400 Hz at 8 kHz), mu-law coded if `coded`, back at 16 kHz."""
    narrow = soxr.resample(x, SAMPLE_RATE, 8000)
    narrow = sosfilt(butter(4, [300, 3400], btype="band", fs=8000, output="sos"), narrow)
    if coded:
        narrow = mu_law(narrow)
    return soxr.resample(narrow, 8000, SAMPLE_RATE)[: len(x)]


def mu_law(x: np.ndarray, bits: int = 8) -> np.ndarray:
    """Round trip through mu-law companding at `bits` bits (G.711's coding noise)."""
    mu = 2**bits - 1
    peak = max(float(np.abs(x).max()), 1e-9)
    y = np.sign(x) * np.log1p(mu * np.abs(x / peak)) / np.log1p(mu)
    y = np.round((y + 1) / 2 * mu) / mu * 2 - 1
    return np.sign(y) * ((1 + mu) ** np.abs(y) - 1) / mu * peak


def augment(x: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig, bank: NoiseBank | None = None) -> np.ndarray:
    """One random view of a 16 kHz clip; float32, clipped to [-1, 1] like a real converter."""
    y = x.astype(np.float64)
    if rng.random() < cfg.p_speed:
        y = soxr.resample(y, SAMPLE_RATE, SAMPLE_RATE / rng.uniform(*cfg.speed))
    if rng.random() < cfg.p_reverb:
        y = fftconvolve(y, room_impulse_response(rng.uniform(*cfg.rt60_s), rng))[: len(y)]
    if rng.random() < cfg.p_band:
        y = band_limit(y, rng)
    if rng.random() < cfg.p_noise:
        noise = bank.draw(len(y), rng) if bank is not None and rng.random() < cfg.p_bank_noise else None
        noise = coloured_noise(len(y), rng) if noise is None else noise.astype(np.float64)
        y = with_noise(y, noise, rng.uniform(*cfg.snr_db))
    peak = float(np.abs(y).max()) if len(y) else 0.0
    gain = 10 ** (rng.uniform(*cfg.gain_db) / 20)
    if peak * gain > 1.0:
        gain = 1.0 / peak  # no clipping: a real recordist would have turned it down
    return np.clip(y * gain, -1.0, 1.0).astype(np.float32)


def with_noise(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """`x` plus `noise` scaled to `snr_db` below the clip's mean power (pauses included, as an
    SNR of a whole recording is usually stated)."""
    speech_power = max(float(np.mean(x**2)), 1e-12)
    return x + noise * np.sqrt(speech_power / max(float(np.mean(noise**2)), 1e-12) * 10 ** (-snr_db / 10))


def view_rng(source: str, view: int, cfg: AugmentConfig) -> np.random.Generator:
    """The generator of a view's chain: a function of its source (a clip's audio key, or a
    session's id), the view number and the options."""
    seed = int(hashlib.sha1(f"{source}:{view}:{cfg.digest()}".encode("utf-8", "surrogateescape")).hexdigest()[:16], 16)
    return np.random.default_rng(seed)
