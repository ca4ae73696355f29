"""Session protocols: which labelled clips one live stream holds when a set is scored or trained.

A model with a running normaliser (engine.features.normalise) estimates each clip relative to
what its stream said before, so a score depends on how clips are grouped into streams. Every
shared corpus has each speaker act every emotion; streaming a speaker's clips as one session
(`mixed`) lets the normaliser learn that speaker's neutral from a balanced test set, which real
streams do not give. The protocols a recipe is judged on:

- `clip`: every clip its own stream, from the prior: what `emolive score` and `emolive.analyze`
  do with separate files;
- `sustained`: a speaker's clips of one state (a category, or for a clip without one its
  intensity level) in a row as one stream: a caller angry for five minutes;
- `mixed`: a speaker's clips, every state, as one stream (the corpora's protocol).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:  # the CLI imports this module for its choices: keep it light
    from emolive.trainer.data import Utterance

PROTOCOLS = ("clip", "sustained", "mixed")
PROTOCOL_WORDS = {"clip": "each clip a session of its own", "sustained": "a speaker's clips of one emotion a session",
                  "mixed": "all of a speaker's clips one session"}  # for reports: what a protocol's sessions are
DEFAULT_PROTOCOL = "mixed"
UNSTATED = "unlabelled"  # the state of a clip with neither a category nor a level

log = logging.getLogger(__name__)


def state_of(u: Utterance) -> str:
    """The emotional state a sustained session holds: the category, or the intensity level of a
    clip labelled only by level (BAVED's levels 0 and 2), or "unlabelled". The level its word names
    (trainer.data.vad.LEVEL_OF): "high" and "strong" were two sessions of one level, and a word the
    targets do not know (unstated there) a session of its own."""
    from emolive.trainer.data.vad import LEVEL_OF  # here: the CLI imports this module, and the data package is heavy

    if u.emotion:
        return u.emotion
    level = LEVEL_OF.get(u.intensity.lower(), "")
    return f"level:{level}" if level else UNSTATED


def session_streams(utts: Sequence[Utterance], protocol: str) -> list[str]:
    """Each clip's stream id under `protocol` (PROTOCOLS); clips of one stream share it."""
    if protocol == "clip":
        return [f"{u.speaker}#{i}" for i, u in enumerate(utts)]
    if protocol == "sustained":
        return [f"{u.speaker}#{state_of(u)}" for u in utts]
    if protocol == "mixed":
        return [u.speaker for u in utts]
    raise ValueError(f"unknown session protocol {protocol!r}: one of {', '.join(PROTOCOLS)}")


def warn_unstated(utts: Sequence[Utterance], protocol: str) -> None:
    """Under `sustained`, a speaker's clips without a category or level are one stream, as under
    `mixed`: said, since a table of ratings alone makes the two protocols differ only by clip order."""
    unstated = sum(state_of(u) == UNSTATED for u in utts)
    if protocol == "sustained" and unstated:
        log.warning("%d of %d clips have no category or intensity level: under --protocol sustained each speaker's "
                    "such clips form one stream, as under mixed", unstated, len(utts))


def drawn_streams(utts: Sequence[Utterance], protocols: Sequence[str], rng: np.random.Generator) -> list[str]:
    """Training sessions of one epoch: each speaker's clips grouped by a protocol drawn for that
    speaker from `protocols`, so a model learns from clips alone, sustained states and mixed
    sessions and does not trust the running baseline blindly."""
    if len(protocols) == 1:
        return session_streams(utts, protocols[0])
    speakers = sorted({u.speaker for u in utts})
    pick = dict(zip(speakers, rng.integers(0, len(protocols), len(speakers))))
    per_protocol = {p: session_streams(utts, p) for p in set(protocols)}
    return [per_protocol[protocols[pick[u.speaker]]][i] for i, u in enumerate(utts)]
