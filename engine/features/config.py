"""Front-end options in one place (Kaldi keeps one options struct per component; so do we).

The configuration is part of every model bundle and of every feature-cache key: a model is only
valid for features computed with exactly these values, so they are frozen and serialisable.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class FbankConfig:
    """Kaldi-compatible log mel filterbank (the definition `torchaudio.compliance.kaldi.fbank` uses)."""

    num_mel_bins: int = 40
    low_freq: float = 20.0
    high_freq: float = 0.0  # <= 0 means Nyquist + high_freq, as in Kaldi
    preemphasis: float = 0.97
    window_exponent: float = 0.85  # Kaldi's "povey" window: Hann ** 0.85
    fft_size: int = 512  # frame length rounded up to a power of two


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


@dataclass(frozen=True)
class FrontEndConfig:
    """The 43-dim MFB+F0 front end: 40 log mel energies, log F0, delta log F0, voicing probability."""

    sample_rate: int = 16000
    frame_length: int = 400  # 25 ms
    frame_shift: int = 320  # 20 ms
    fbank: FbankConfig = FbankConfig()
    pitch: PitchConfig = PitchConfig()

    @property
    def num_features(self) -> int:
        return self.fbank.num_mel_bins + 3

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FrontEndConfig":
        """Rebuild from `to_dict` output; unknown keys are an error so stale bundles fail loudly."""
        data = dict(data)
        fb = _build(FbankConfig, data.pop("fbank", {}))
        pc = _build(PitchConfig, data.pop("pitch", {}))
        return _build(cls, data, fbank=fb, pitch=pc)

    def digest(self) -> str:
        """A short stable hash, used to key feature caches."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _build(kind, data: dict, **extra):
    known = {f.name for f in fields(kind)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {kind.__name__} field(s): {', '.join(sorted(unknown))}")
    return kind(**data, **extra)
