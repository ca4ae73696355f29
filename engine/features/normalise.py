"""Per-stream feature normalisation: the current speaker's running statistics, live and in training.

A model trained on a few corpora learns their speakers' pitch ranges, their rooms and their
microphones as much as their emotions; on a new voice its valence is noise. Normalising each
feature by the *current stream's* own statistics removes what is constant for a speaker and a
channel (mean log F0, the microphone's spectral tilt and gain) and keeps what changes with
emotion. Live, only the past is known, so the statistics are a running estimate:

- exponentially weighted mean and variance, updated on voiced frames only (silence and noise
  would otherwise pull the statistics towards the room), with a time constant of
  `time_constant_s` of voiced speech: a speaker's emotions over minutes average out, a
  two-second outburst does not become their new neutral;
- started from a prior (the training set's statistics) worth `prior_s` seconds of voiced
  speech, so the first seconds of a stream are normalised sensibly and the estimate moves to the
  speaker as they talk;
- applied to the first `columns` features (40 log mel energies and log F0); the delta-F0 and
  voicing columns are already relative and pass unchanged;
- optionally at the stream's own level (`level_columns`: the first N columns, log energies): the
  prior keeps its spectral shape but moves to the mean level of the stream's voiced frames so far.
  A microphone 20 dB quieter adds one constant to every log energy; an absolute prior leaked that
  constant into a short stream's features for its first minute (valence +0.5 on the 1-7 scale for
  a RAVDESS clip heard 10 dB quieter), where a level-relative one removes it from the first voiced
  frame on: a constant gain moves the stream's level, the prior and every frame by the same amount.

Training streams each speaker's clips through this same object (`normalise_streams`), in a
random order per epoch, so what training assumed is exactly what the live path computes; the
state resets with the stream. The config travels in the model bundle.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from .kernels import kernel

VAR_FLOOR = 1e-4  # keeps a constant feature (digital silence in one band) finite
# the normalised columns are natural-log energies (about -23 to 20) and log F0 (about 4 to 6.5): a prior
# mean beyond this is no feature's, and 1e308 overflowed the running sums to one estimate for every window
MAX_PRIOR_MEAN = 1e4


@dataclass(frozen=True)
class StreamNormConfig:
    """Options of the running normaliser; `prior_mean`/`prior_var` have one value per normalised column."""

    prior_mean: tuple[float, ...]
    prior_var: tuple[float, ...]
    columns: int = 41  # the first N features: 40 log mel energies + log F0
    level_columns: int = 0  # the first N of them are log energies whose prior moves to the stream's level (0: none)
    voicing_column: int = 42
    voicing_threshold: float = 0.5
    time_constant_s: float = 300.0
    prior_s: float = 5.0
    frame_rate: float = 50.0

    def __post_init__(self) -> None:
        problems = []
        if not (_integer(self.columns) and 1 <= self.columns <= 4096):
            problems.append(f"columns must be an integer in [1, 4096], got {self.columns!r}")
        elif not (len(self.prior_mean) == len(self.prior_var) == self.columns):
            problems.append(f"prior_mean and prior_var need {self.columns} values each")
        elif not (_integer(self.level_columns) and 0 <= self.level_columns <= self.columns):
            problems.append(f"level_columns must be an integer in [0, columns], got {self.level_columns!r}")
        if not all(_finite(v) and abs(v) <= MAX_PRIOR_MEAN for v in self.prior_mean):
            problems.append(f"prior_mean must be numbers within ±{MAX_PRIOR_MEAN:g}")
        if not all(_finite(v) and 0 < v <= MAX_PRIOR_MEAN**2 for v in self.prior_var):
            problems.append(f"prior_var must be positive numbers up to {MAX_PRIOR_MEAN**2:g}")
        if not (_integer(self.voicing_column) and self.voicing_column >= 0):
            problems.append(f"voicing_column must be a non-negative integer, got {self.voicing_column!r}")
        if not (_finite(self.voicing_threshold) and 0 <= self.voicing_threshold <= 1):
            problems.append(f"voicing_threshold must be a voicing probability in [0, 1], "
                            f"got {self.voicing_threshold!r}")
        for name in ("time_constant_s", "prior_s", "frame_rate"):
            value = getattr(self, name)
            if not _finite(value) or not 0 < value <= 1e6:
                problems.append(f"{name} must be a finite positive number, got {value!r}")
        if problems:
            raise ValueError("; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """The bundle's JSON; an absolute prior's without `level_columns`, as bundles wrote it before it existed."""
        out = asdict(self)
        out["prior_mean"], out["prior_var"] = list(self.prior_mean), list(self.prior_var)
        if not self.level_columns:
            del out["level_columns"]
        return out

    @classmethod
    def from_dict(cls, data: Any) -> StreamNormConfig:
        """Rebuild from a bundle's JSON; every field is required and type-checked (bundles are untrusted)."""
        if not isinstance(data, dict):
            raise ValueError("stream_normalisation must be a JSON object")
        names = set(cls.__dataclass_fields__)
        # a bundle from before level_columns has none: its prior is absolute
        if not names - OPTIONAL_FIELDS <= set(data) <= names:
            raise ValueError(f"stream_normalisation needs the fields {sorted(names - OPTIONAL_FIELDS)} "
                             f"(and may have {sorted(OPTIONAL_FIELDS)}), nothing else")
        for key in ("prior_mean", "prior_var"):
            if not isinstance(data[key], list) or len(data[key]) > 4096:
                raise ValueError(f"stream_normalisation.{key} must be a list of at most 4096 numbers")
        values = {k: tuple(map(_number, v)) if k in ("prior_mean", "prior_var") else v for k, v in data.items()}
        for key in ("voicing_threshold", "time_constant_s", "prior_s", "frame_rate"):
            values[key] = _number(values[key])
        return cls(**values)

    @classmethod
    def from_features(cls, features: Sequence[np.ndarray], columns: int = 41, voicing_column: int = 42,
                      voicing_threshold: float = 0.5, **options: Any) -> StreamNormConfig:
        """The prior from training features: mean and variance of the normalised columns over voiced frames."""
        voiced = [f[f[:, voicing_column] > voicing_threshold, :columns].astype(np.float64) for f in features]
        voiced = [v for v in voiced if len(v)]
        frames = np.concatenate(voiced) if voiced else np.zeros((0, columns))
        if len(frames) < 2:
            raise ValueError("no voiced frames to estimate the normalisation prior from")
        var = np.maximum(frames.var(0), VAR_FLOOR)
        return cls(prior_mean=tuple(map(float, frames.mean(0))), prior_var=tuple(map(float, var)),
                   columns=columns, voicing_column=voicing_column, voicing_threshold=voicing_threshold, **options)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(value: Any) -> float:
    if not _finite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    return float(value)


OPTIONAL_FIELDS = {"level_columns"}  # fields a bundle's stream_normalisation may leave out (their defaults hold)

# State slots of the running statistics (a float64 array of 2 + 2 * columns values).
OBSERVED, PRIOR = 0, 1  # decayed count of the stream's voiced frames, decayed weight of the prior (in frames);
# then the voiced frames' decayed sums, then their sums of squares


class StreamNormaliser:
    """Normalises one stream's frames as they come; `reset()` starts a new stream from the prior."""

    def __init__(self, cfg: StreamNormConfig) -> None:
        self.cfg = cfg
        self._decay = math.exp(-1.0 / (cfg.time_constant_s * cfg.frame_rate))
        self._prior = np.array([cfg.prior_mean, cfg.prior_var], np.float64)
        self._state = np.zeros(2 + 2 * cfg.columns, np.float64)
        self.reset()

    def reset(self) -> None:
        self._state[:] = 0.0
        self._state[PRIOR] = self.cfg.prior_s * self.cfg.frame_rate

    def push(self, frames: np.ndarray) -> np.ndarray:
        """Normalised copies of `frames` [T, D] (D > voicing column); the state moves on."""
        cfg = self.cfg
        if frames.ndim != 2 or frames.shape[1] <= max(cfg.columns - 1, cfg.voicing_column):
            raise ValueError(f"frames must be [T, D] with D > {max(cfg.columns - 1, cfg.voicing_column)}, "
                             f"got shape {frames.shape}")
        out = np.array(frames, dtype=np.float32, copy=True)
        _normalise(out, cfg.columns, cfg.level_columns, cfg.voicing_column, cfg.voicing_threshold, self._decay,
                   VAR_FLOOR, self._prior, self._state)
        return out


@kernel()
def _normalise(frames, columns, level_columns, voicing_column, threshold, decay, var_floor, prior, state):
    """In place: update the running sums on voiced frames, then normalise every frame's columns by
    the mix of the prior (`prior`: [mean, var] rows; its first `level_columns` means moved to the
    stream's level where it has voiced frames) and the voiced frames' statistics."""
    prior_level = 0.0
    for c in range(level_columns):
        prior_level += prior[0, c] / level_columns
    for t in range(frames.shape[0]):
        if frames[t, voicing_column] > threshold:
            state[0] = decay * state[0] + 1.0
            state[1] *= decay
            for c in range(columns):
                x = frames[t, c]
                state[2 + c] = decay * state[2 + c] + x
                state[2 + columns + c] = decay * state[2 + columns + c] + x * x
        observed, weight = state[0], state[0] + state[1]
        shift = 0.0  # the stream's mean level less the prior's, over the voiced frames so far
        if observed > 0.0:
            for c in range(level_columns):
                shift += state[2 + c] / (observed * level_columns)
            shift -= prior_level
        for c in range(columns):
            prior_mean = prior[0, c] + shift if c < level_columns else prior[0, c]
            mean = (state[1] * prior_mean + state[2 + c]) / weight
            second = (state[1] * (prior[1, c] + prior_mean * prior_mean) + state[2 + columns + c]) / weight
            var = max(second - mean * mean, var_floor)
            frames[t, c] = (frames[t, c] - mean) / math.sqrt(var)


def normalise_streams(features: Sequence[np.ndarray], streams: Sequence[str], cfg: StreamNormConfig,
                      order: np.ndarray | None = None) -> list[np.ndarray]:
    """Each clip normalised as part of its stream (e.g. its speaker), clips of a stream in `order`.

    `order` is a permutation of the clips (default: as given); a stream's clips are pushed in the
    order they appear in it, each stream from a fresh state: what the live engine computes for a
    session in which that speaker says those clips one after another.
    """
    order = np.arange(len(features)) if order is None else order
    normalisers: dict[str, StreamNormaliser] = {}
    out: list[np.ndarray] = [np.zeros(0)] * len(features)
    for i in order:
        stream = streams[i]
        if stream not in normalisers:
            normalisers[stream] = StreamNormaliser(cfg)
        out[i] = normalisers[stream].push(features[i])
    return out


def as_one_stream(frames: np.ndarray, cfg: StreamNormConfig | None) -> np.ndarray:
    """A whole stream's frames as a model with `cfg` sees them (unchanged when it has none):
    what the runner feeds the windows, for offline references."""
    return frames if cfg is None else StreamNormaliser(cfg).push(frames)
