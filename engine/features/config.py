"""Front-end options in one place (Kaldi keeps one options struct per component; so do we).

The configuration is part of every model bundle and of every feature-cache key: a model is only
valid for features computed with exactly these values, so they are frozen and serialisable.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

# Bounds a bundle's front end must stay within: generous for any speech front end, tight enough that
# an untrusted config.json cannot make a buffer (FFT tables, pitch lags, mel banks) absurdly large.
MAX_SAMPLE_RATE = 192000
MAX_FRAME_LENGTH = 16384  # samples
MAX_FFT_SIZE = 32768
MAX_MEL_BINS = 512
MAX_CANDIDATES = 64
MAX_LAG_FRAMES = 100
# Changes with the code's output for a given config, so feature caches made before are never served: 2, the
# pitch tracker continues a stream's first and last samples past its ends (zeros made a DC offset a step); 3, the
# delta of log F0 is taken within each voiced stretch (the held value's step at an onset made a spike)
FEATURES_REVISION = 3


def _object(data: Any, what: str) -> dict:
    if not isinstance(data, dict):
        raise ValueError(f"{what} must be a JSON object, got {type(data).__name__}")
    return data


def _build(kind, data: Any, **extra):
    data = _object(data, kind.__name__)
    known = {f.name for f in fields(kind)} - set(extra)
    unknown, missing = set(data) - known, known - set(data)
    if unknown or missing:
        raise ValueError(f"{kind.__name__}: unknown field(s) {sorted(unknown)}, missing field(s) {sorted(missing)}")
    return kind(**data, **extra)


def _check(cfg: Any, ints: dict[str, tuple[int, int]], floats: dict[str, tuple[float, float]] | None = None) -> None:
    """Type and range of each field: ints must be JSON integers, floats any finite number, both within bounds."""
    name = type(cfg).__name__
    for field, (low, high) in ints.items():
        value = getattr(cfg, field)
        if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
            raise ValueError(f"{name}.{field} must be an integer in [{low}, {high}], got {value!r}")
    for field, (low, high) in (floats or {}).items():
        value = getattr(cfg, field)
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                and low <= value <= high):
            raise ValueError(f"{name}.{field} must be a finite number in [{low:g}, {high:g}], got {value!r}")


@dataclass(frozen=True)
class FbankConfig:
    """Kaldi-compatible log mel filterbank (the definition `torchaudio.compliance.kaldi.fbank` uses)."""

    num_mel_bins: int = 40
    low_freq: float = 20.0
    high_freq: float = 0.0  # <= 0 means Nyquist + high_freq, as in Kaldi
    preemphasis: float = 0.97
    window_exponent: float = 0.85  # Kaldi's "povey" window: Hann ** 0.85
    fft_size: int = 512  # frame length rounded up to a power of two

    def __post_init__(self) -> None:
        _check(self, ints={"num_mel_bins": (1, MAX_MEL_BINS), "fft_size": (2, MAX_FFT_SIZE)},
               floats={"low_freq": (0.0, MAX_SAMPLE_RATE), "high_freq": (-MAX_SAMPLE_RATE, MAX_SAMPLE_RATE),
                       "preemphasis": (0.0, 1.0), "window_exponent": (0.0, 10.0)})
        if self.fft_size & (self.fft_size - 1):
            raise ValueError(f"fbank.fft_size must be a power of two, got {self.fft_size}")


@dataclass(frozen=True)
class PitchConfig:
    """NCCF pitch tracker with a fixed-lag Viterbi (Kaldi's online pitch and Praat's path finder are the models).

    Costs follow Praat's conventions (per 10 ms; scaled to the 20 ms hop) so users can reason
    about them with Praat's documentation in hand.
    """

    min_f0: float = 50.0
    max_f0: float = 500.0
    analysis_rate: int = 8000  # NCCF runs on a 2x decimated signal: speech F0 needs no more
    window_ms: float = 25.0
    max_candidates: int = 6
    octave_cost: float = 0.04  # per octave of lag, favours the shortest plausible period
    octave_jump_cost: float = 0.35
    voiced_unvoiced_cost: float = 0.14
    voicing_threshold: float = 0.5
    silence_threshold: float = 0.03  # frame peak relative to the running peak level
    peak_decay_per_s: float = 0.9  # running peak level decays by this factor per second
    initial_noise_floor_dbfs: float = -70.0
    noise_floor_rise_db_per_s: float = 6.0  # minimum-statistics floor: falls at once, rises slowly
    noise_margin_db: float = 20.0  # frames this close to the noise floor lean unvoiced
    viterbi_lag_frames: int = 4  # decisions are final this many frames after they are seen
    delta_window: int = 2  # Kaldi's delta-pitch window: +-2 frames
    initial_f0: float = 150.0  # log-F0 held before the first voiced frame
    pov_slope: float = 10.0

    def __post_init__(self) -> None:
        _check(self, ints={"analysis_rate": (1, MAX_SAMPLE_RATE), "max_candidates": (1, MAX_CANDIDATES),
                           "viterbi_lag_frames": (0, MAX_LAG_FRAMES), "delta_window": (1, MAX_LAG_FRAMES)},
               floats={"min_f0": (1.0, 1e4), "max_f0": (1.0, 1e4), "window_ms": (1.0, 1000.0),
                       "octave_cost": (0.0, 100.0), "octave_jump_cost": (0.0, 100.0),
                       "voiced_unvoiced_cost": (0.0, 100.0), "voicing_threshold": (0.0, 1.0),
                       "silence_threshold": (0.0, 1.0), "peak_decay_per_s": (0.0, 1.0),
                       "initial_noise_floor_dbfs": (-200.0, 0.0), "noise_floor_rise_db_per_s": (0.0, 1000.0),
                       "noise_margin_db": (0.0, 200.0), "initial_f0": (1.0, 1e4), "pov_slope": (0.0, 1000.0)})
        if not self.max_f0 > self.min_f0:
            raise ValueError(f"pitch.max_f0 {self.max_f0} must be above pitch.min_f0 {self.min_f0}")
        if self.max_f0 >= self.analysis_rate / 2:
            raise ValueError(f"pitch.max_f0 {self.max_f0} must be below half the analysis rate {self.analysis_rate}")


@dataclass(frozen=True)
class FrontEndConfig:
    """The 43-dim MFB+F0 front end: 40 log mel energies, log F0, delta log F0, voicing probability."""

    sample_rate: int = 16000
    frame_length: int = 400  # 25 ms
    frame_shift: int = 320  # 20 ms
    fbank: FbankConfig = FbankConfig()
    pitch: PitchConfig = PitchConfig()

    def __post_init__(self) -> None:
        _check(self, ints={"sample_rate": (1000, MAX_SAMPLE_RATE), "frame_length": (16, MAX_FRAME_LENGTH),
                           "frame_shift": (1, MAX_FRAME_LENGTH)})
        if not (isinstance(self.fbank, FbankConfig) and isinstance(self.pitch, PitchConfig)):
            raise ValueError("fbank and pitch must be FbankConfig and PitchConfig")
        if self.fbank.fft_size < self.frame_length:
            raise ValueError(f"fbank.fft_size {self.fbank.fft_size} is shorter than frame_length {self.frame_length}")
        if self.sample_rate != 2 * self.pitch.analysis_rate:  # the pitch tracker decimates by exactly 2
            raise ValueError(f"pitch.analysis_rate must be sample_rate / 2 = {self.sample_rate / 2:g}")
        if self.frame_shift % 2:
            raise ValueError(f"frame_shift {self.frame_shift} must be even (the pitch tracker runs at half rate)")
        nyquist = self.sample_rate / 2
        high = self.fbank.high_freq if self.fbank.high_freq > 0 else nyquist + self.fbank.high_freq
        if not 0 <= self.fbank.low_freq < high <= nyquist:
            raise ValueError(f"fbank mel range {self.fbank.low_freq:g}..{high:g} Hz is not inside 0..{nyquist:g} Hz")

    @property
    def num_features(self) -> int:
        return self.fbank.num_mel_bins + 3

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "FrontEndConfig":
        """Rebuild from `to_dict` output; every field is required and range-checked (bundles are untrusted).

        Any problem is a ValueError naming the field: unknown or missing keys, a wrong type, a value
        out of range, or fields that contradict each other (fft_size below the frame length).
        """
        data = dict(_object(data, "frontend"))
        fb = _build(FbankConfig, data.pop("fbank", None))
        pc = _build(PitchConfig, data.pop("pitch", None))
        return _build(cls, data, fbank=fb, pitch=pc)

    def digest(self) -> str:
        """A short stable hash of the config and FEATURES_REVISION, used to key feature caches."""
        text = json.dumps({**self.to_dict(), "revision": FEATURES_REVISION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
