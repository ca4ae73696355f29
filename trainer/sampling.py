"""What one training epoch draws: which clips (corpus-balanced), their crops, views, gains and sessions.

Every draw is a function of (seed, epoch, clip index) only, never of the batch order or of how
ranks split a batch: so a resumed or data-parallel run equals one uninterrupted process's.
"""
from __future__ import annotations

import numpy as np

from emolive.engine.features.fbank import LOG_FLOOR
from emolive.engine.features.normalise import StreamNormConfig, normalise_streams
from emolive.engine.schema import SCALE
from emolive.trainer.config import TrainConfig
from emolive.trainer.data import Utterance
from emolive.trainer.labelled import LabelledSet
from emolive.trainer.sessions import drawn_streams

LOG_FLOOR_LN = float(np.log(LOG_FLOOR))


def crop_starts(lengths: np.ndarray, frames: int, seed: int, epoch: int, jitter: int = 0) -> np.ndarray:
    """Every utterance's random crop start in one epoch, a function of (seed, epoch, index) only.

    So a batch's crops do not depend on the batch order or on how ranks split it. An utterance no
    longer than a crop starts at its first frame, or with `jitter`, up to that many frames (and at
    most a quarter of it) later: a recording cut a little late must not read as another emotion.
    """
    draws = np.random.default_rng([seed, epoch]).random(len(lengths))
    short = np.minimum(jitter, lengths // 4) + 1
    return (draws * np.where(lengths > frames, lengths - frames + 1, short)).astype(np.int64)


def lead_ins(n: int, most: int, seed: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """Each utterance's lead-in in one epoch: how many frames (0 to `most`) of which other utterance's
    end come before its crop, like crop_starts a function of (seed, epoch, index) only."""
    rng = np.random.default_rng([seed, epoch, 3])
    frames = rng.integers(0, most + 1, n)
    others = (np.arange(n) + 1 + rng.integers(0, max(n - 1, 1), n)) % n  # never the utterance itself (n > 1)
    return frames, others


def with_lead_in(crop: np.ndarray, before: np.ndarray, frames: int) -> tuple[np.ndarray, int]:
    """`crop` after the last `frames` frames of `before` (fewer if it is shorter), and how many came first.

    What a live window starts in: a GRU already moved by whatever the stream said before, or a
    cut through a word; trained on it, a model leans less on a clip's first frames (docs/results.md:
    in corpus; on unheard corpora it lost).
    """
    if not frames:  # no copy of the crop when there is nothing to put before it (and --lead-in-s off)
        return crop, 0
    lead = before[len(before) - min(frames, len(before)):]
    return np.concatenate([lead, crop]), len(lead)


def gain_offsets(n: int, low_db: float, high_db: float, seed: int, epoch: int) -> np.ndarray:
    """Per-utterance log-power offsets of a random gain in [low_db, high_db], like crop_starts a
    function of (seed, epoch, index) only."""
    draws = np.random.default_rng([seed, epoch, 1]).random(n)
    return (low_db + draws * (high_db - low_db)) * np.log(10.0) / 10.0


def with_gain(f: np.ndarray, offset: float, dims: int) -> np.ndarray:
    """The features the front end gives for the same audio at another gain: log mel energies
    shift by the offset and meet the same floor (a quiet microphone loses its quietest bins).
    Pitch and voicing do not depend on the gain."""
    out = f.copy()
    out[:, :dims] = np.maximum(f[:, :dims] + offset, LOG_FLOOR_LN)
    return out


def session_index(streams: list[str]) -> np.ndarray:
    """For each clip, the index of its session's first clip: the draw that every clip of a session shares."""
    first: dict[str, int] = {}
    return np.array([first.setdefault(s, i) for i, s in enumerate(streams)], dtype=np.int64)


def epoch_order(rng: np.random.Generator, n: int, clips: int, weights: np.ndarray | None) -> np.ndarray:
    """The clips of one epoch: `clips` of whole permutations in turn (more clips than the set are more than
    one pass: a single permutation had capped --epoch-clips at the set's size without a word), or
    `clips` weighted draws."""
    clips = clips or n
    if weights is None:
        return np.concatenate([rng.permutation(n) for _ in range(-(-clips // n))])[:clips]
    return rng.choice(n, clips, p=weights)


def corpus_ids(utts: list[Utterance]) -> np.ndarray:
    """Each clip's corpus as an integer (corpora in sorted order)."""
    index = {c: i for i, c in enumerate(sorted({u.corpus for u in utts}))}
    return np.array([index[u.corpus] for u in utts], dtype=np.int64)


def corpus_weights(utts: list[Utterance], quadrants: bool = False) -> np.ndarray:
    """Sampling probabilities giving every corpus the same share of an epoch (uniform within one).

    With `quadrants`, a corpus's share is split equally between the activation x valence
    quadrants its clips fall in (each dimension above or below the scale's middle, or unknown),
    uniform within one: acted corpora hold two or three high-activation negative categories
    (angry, fear, disgust) per positive one, so without it "loud" is learnt as "negative", with
    a sign that moves with each corpus's mix of categories.
    """
    cells = [(u.corpus, *(quadrant(u) if quadrants else ())) for u in utts]
    size = {c: cells.count(c) for c in set(cells)}
    corpora = {c[0] for c in size}
    cells_of = {corpus: sum(c[0] == corpus for c in size) for corpus in corpora}
    w = np.array([1.0 / (size[c] * cells_of[c[0]] * len(corpora)) for c in cells])
    return w / w.sum()


def quadrant(u: Utterance) -> tuple[bool | None, bool | None]:
    """Whether the clip's activation and valence lie above the middle of the scale (None: unlabelled)."""
    middle = (SCALE[0] + SCALE[1]) / 2
    return tuple(None if np.isnan(x) else bool(x > middle) for x in u.avd[:2])


def epoch_features(data: LabelledSet, cfg: TrainConfig, norm: StreamNormConfig | None, epoch: int) -> list[np.ndarray]:
    """One epoch's inputs, each a function of (seed, epoch) only: a random view of each clip, a
    random microphone gain (with `session_channels` one view and one gain per speaker, so a
    session keeps its channel), then the clips through the stream normaliser in a random order,
    grouped into sessions by a protocol drawn per speaker from `cfg.session_protocols` (mixed:
    each speaker's clips one session; a new session each epoch)."""
    rng = np.random.default_rng([cfg.seed, epoch, 2])
    n = len(data)
    # which draw each clip takes: its own, or its session's
    draw = session_index(data.streams) if cfg.session_channels else np.arange(n)
    features = data.features
    if cfg.use_views and data.views:
        pick = rng.integers(0, len(data.views) + 1, n)[draw]  # 0: the clean clip
        features = [features[i] if pick[i] == 0 else data.views[pick[i] - 1][i] for i in range(n)]
    if cfg.gain_dims and cfg.gain_augment_db != (0.0, 0.0):
        gains = gain_offsets(n, *cfg.gain_augment_db, cfg.seed, epoch)[draw]
        features = [with_gain(f, gains[i], cfg.gain_dims) for i, f in enumerate(features)]
    if norm is None:
        return list(features)
    streams = drawn_streams(data.utterances, cfg.session_protocols, rng)
    return normalise_streams(features, streams, norm, rng.permutation(n))
