"""Labelled sets and their scoring: the features and targets of a list of clips, what a model
predicts for them, and the one scorer (CCC per dimension, UAR) of training and evaluation.

A fixed set is scored as live sessions: each speaker's clips through the stream normaliser in an
order that depends only on the seed and that speaker (session_order), so a speaker scores the same
alone or pooled.
"""
from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from emolive.engine.features.normalise import StreamNormConfig, normalise_streams
from emolive.plugins.student import StudentModel
from emolive.plugins.student.plugin import pad_features
from emolive.trainer.data import Utterance
from emolive.trainer.metrics import DIMENSIONS, ccc, uar

IGNORE = -100  # the class of a clip of no known class (MultitaskLoss's ignore_index)
EVAL_ORDER_SEED = 0  # the order of a speaker's clips when a fixed set is scored as sessions
EMOTIONS_SHOWN = 5  # categories `unmeasurable` names


@dataclass
class LabelledSet:
    """Features and targets of a list of utterances (class -100 where the class is unknown, NaN
    where a dimension is unlabelled). `views[v][i]` are augmented features of clip i (optional)."""

    features: list[np.ndarray]
    avd: np.ndarray  # float32[N, 3]
    classes: np.ndarray  # int64[N]
    utterances: list[Utterance]
    views: list[list[np.ndarray]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.features)

    @property
    def streams(self) -> list[str]:
        """The session each clip belongs to: its speaker (what the live engine normalises over)."""
        return [u.speaker for u in self.utterances]

    @property
    def clips(self) -> list[str]:
        """Each clip's path, which orders a session's clips (session_order)."""
        return clip_names(self.utterances)


def clip_names(utts: Sequence[Utterance]) -> list[str]:
    """Each clip's path as text: what orders a session's clips, whatever order a table lists them in."""
    return [str(u.path) for u in utts]


def labelled_set(utts: list[Utterance], features: list[np.ndarray], class_names: list[str],
                 views: list[list[np.ndarray]] | None = None) -> LabelledSet:
    index = {c: i for i, c in enumerate(class_names)}
    avd = np.array([u.avd for u in utts], dtype=np.float32).reshape(-1, 3)
    classes = np.array([index.get(u.emotion, IGNORE) for u in utts], dtype=np.int64)
    return LabelledSet(features, avd, classes, utts, views or [])


def session_features(features: list[np.ndarray], streams: list[str], norm: StreamNormConfig | None,
                     clips: Sequence[str], seed: int = EVAL_ORDER_SEED) -> list[np.ndarray]:
    """What the model sees for clips scored as live sessions: each speaker's clips through the
    stream normaliser in a seeded random order, or as they are.

    A speaker's order depends only on the seed, the speaker's id and their clips (`clips`: each
    clip's path), never on who else is in the data nor on the order a table lists them: a speaker
    scores the same alone or pooled, and a manifest sorted otherwise scores the same.
    """
    if norm is None:
        return features
    return normalise_streams(features, streams, norm, session_order(streams, clips, seed))


def session_order(streams: list[str], clips: Sequence[str], seed: int) -> np.ndarray:
    """Each stream's clip indices, sorted by `clips` (a table listing them in another order moved a 40-clip
    set's valence CCC by 0.12), permuted by a generator of (seed, the stream's id); streams one after another."""
    members: dict[str, list[int]] = {}
    for i in sorted(range(len(streams)), key=lambda i: clips[i]):
        members.setdefault(streams[i], []).append(i)
    # a stream id holds its manifest's folder name, whose bytes need not be UTF-8
    order = [np.random.default_rng([seed, zlib.crc32(s.encode("utf-8", "surrogateescape"))]).permutation(idx)
             for s, idx in members.items()]
    return np.concatenate(order) if order else np.zeros(0, np.int64)


def pad_batch(features: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """The plugin's padding (plugins.student.plugin.pad_features) as tensors for the torch model."""
    batch, lengths = pad_features(features, features[0].shape[1])
    return torch.from_numpy(batch), torch.from_numpy(lengths)


@torch.inference_mode()
def predict(model: StudentModel, data: LabelledSet, batch_size: int = 64) -> dict[str, np.ndarray]:
    """A/V/D, class logits and embeddings for every utterance (whole utterances, no crop)."""
    model.eval()
    device = next(model.parameters()).device
    outs: dict[str, list] = {"avd": [], "logits": [], "embedding": []}
    for i in range(0, len(data), batch_size):
        out = model(*(t.to(device) for t in pad_batch(data.features[i:i + batch_size])))
        for k in outs:
            outs[k].append(out[k].cpu().numpy())
    return {k: np.concatenate(v) for k, v in outs.items()}


def score(model: StudentModel, data: LabelledSet, norm: StreamNormConfig | None = None) -> dict:
    """CCC per dimension (NaN where not measurable) and UAR, the clips scored as sessions under `norm`."""
    if norm is not None:
        data = replace(data, features=session_features(data.features, data.streams, norm, data.clips))
    out = predict(model, data)
    result = {**score_predictions(out["avd"], data.avd, out["logits"], data.classes), "n": len(data)}
    result["ccc"] = result["ccc"].tolist()
    result.pop("n_classified", None)
    return result


def score_predictions(avd: np.ndarray, target: np.ndarray, class_scores: np.ndarray, classes: np.ndarray) -> dict:
    """The one scorer of training and evaluation: CCC per dimension over the labelled clips (NaN:
    not measurable) and, when a class head scored clips of known class (`classes` not IGNORE),
    their UAR and count. A head of one class (BAVED's, trained alone: only its neutral clips have a
    class) names it for every clip, so its recall of 1.0 says nothing: no UAR then."""
    result = {"ccc": ccc(avd, target)}
    known = classes != IGNORE
    if class_scores.shape[1] > 1 and known.any():
        result["uar"] = uar(class_scores[known].argmax(1), classes[known])
        result["n_classified"] = int(known.sum())
    return result


def unmeasurable(utts: list[Utterance]) -> str:
    """Why no dimension of these clips' targets can give a CCC, or "" when one can.

    The scorer's own rule decides (trainer.metrics.ccc: the targets scored against themselves are
    1 where measurable, NaN where a dimension has fewer than two labelled clips or all its labels
    are equal), so a set refused before training is exactly one whose every epoch would score NaN.
    """
    avd = np.array([u.avd for u in utts], dtype=np.float64).reshape(-1, 3)
    if np.isfinite(ccc(np.nan_to_num(avd), avd)).any():
        return ""
    parts = []
    for name, column in zip(DIMENSIONS, avd.T):
        values = np.unique(column[~np.isnan(column)])  # at most one value: the set is not measurable
        parts.append(f"{name} all {values[0]:.2f}" if len(values) else f"{name} unlabelled")
    emotions = sorted({u.emotion or "(none)" for u in utts})
    more = f" and {len(emotions) - EMOTIONS_SHOWN} more" if len(emotions) > EMOTIONS_SHOWN else ""
    return f"{', '.join(parts)} (emotions: {', '.join(emotions[:EMOTIONS_SHOWN])}{more})"
