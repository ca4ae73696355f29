"""Dimensional targets for categorical corpora, from the packaged NRC VAD map (see vad_map.md)."""
from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

from emolive.trainer.errors import TrainerError

VAD_MAP = Path(__file__).with_name("vad_map.csv")

LEVEL_OF = {"": "", "strong": "high", "high": "high", "medium": "normal", "normal": "normal", "low": "low"}
"""Each intensity word a manifest may use -> the production level it names (the one list of synonyms:
RAVDESS says strong/normal, CREMA-D high/medium/low, BAVED's levels 0/1/2 are low/normal/high)."""

LEVEL_WEIGHT = {"": 1.0, "high": 1.0, "normal": 0.75, "low": 0.5}
INTENSITY_WEIGHT = {word: LEVEL_WEIGHT[level] for word, level in LEVEL_OF.items()}
"""How far a clip's target moves from neutral towards its category's lexicon point.

An unmarked category (EmoDB, MSP-Podcast) sits at the lexicon point. RAVDESS acts every
emotion at two levels: "strong" takes the lexicon point, "normal" three quarters of the way from
neutral, so the two levels differ (mostly in activation) without pretending to a measured ratio:
these targets are proxies, not ratings. Neutral stays neutral at any intensity. Other corpora's
level words (CREMA-D's low/medium/high) take the same scale.
"""

LEVEL_ACTIVATION = {"low": "boredom", "normal": "neutral", "high": None}
"""Activation of a clip that has a production level but no category (BAVED's levels 0/1/2).

Such a clip's valence is not labelled (BAVED's level 2 is strong emotion of *either* valence),
so it gets an activation target only: "low" (tired, feeling down) the map's boredom activation,
"normal" neutral's, "high" the mean activation of the map's high-activation categories (angry,
fear, disgust, happy, surprise: the ones above 0.7 on the lexicon's arousal scale). A level's
synonyms (LEVEL_OF: "strong", "medium") take the same target.
"""

UNLABELLED = (float("nan"),) * 3
"""A dimension without a label is NaN: losses and metrics mask it (trainer.losses, trainer.metrics)."""

ALIASES = {
    "fearful": "fear", "scared": "fear", "afraid": "fear", "disgusted": "disgust", "surprised": "surprise",
    "bored": "boredom", "joy": "happy", "glad": "happy", "anger": "angry", "mad": "angry",
    # IEMOCAP's three-letter codes for the categories the map has
    "neu": "neutral", "hap": "happy", "sad": "sad", "ang": "angry", "sur": "surprise", "fea": "fear",
    "dis": "disgust", "exc": "happy", "excited": "happy",
    # TESS / SAVEE / CREMA-D spellings
    "ps": "surprise", "pleasant_surprise": "surprise", "pleasant surprise": "surprise", "pleasant_surprised": "surprise",
    "su": "surprise", "sa": "sad", "an": "angry", "fe": "fear", "di": "disgust", "ha": "happy", "ne": "neutral",
    "anx": "fear", "anxious": "fear", "anxiety": "fear", "bor": "boredom", "calmness": "calm",
    # SAVEE's one-letter codes (sa, su above), which MSP-Podcast's EmoClass letters agree with
    "a": "angry", "d": "disgust", "f": "fear", "h": "happy", "n": "neutral", "s": "sad", "u": "surprise",
    "c": "contempt",
    # no category: IEMOCAP's and MSP-Podcast's marks for raters who did not agree, or chose another
    # (classes.NOT_A_CLASS: "xxx" and "oth" became classes the model then output probabilities for)
    "xxx": "no_agreement", "x": "no_agreement", "oth": "other", "o": "other",
}
"""Other corpora's spellings of the map's categories (the lexicon's own nouns are accepted too)."""


def canonical_emotion(name: str) -> str:
    """The map's name for a category label, whatever its case or spelling in a manifest."""
    key = name.strip().lower()
    return ALIASES.get(key) or _lexicon_terms().get(key, key)


@cache
def _lexicon_terms() -> dict[str, str]:
    with VAD_MAP.open(newline="") as f:
        return {row["lexicon_term"]: row["emotion"] for row in csv.DictReader(f)}


@cache
def category_points() -> dict[str, tuple[float, float, float]]:
    """Emotion name -> (activation, valence, dominance) on 1-7: lexicon x in [0, 1] -> 1 + 6x."""
    with VAD_MAP.open(newline="") as f:
        return {
            row["emotion"]: tuple(1 + 6 * float(row[k]) for k in ("arousal", "valence", "dominance"))
            for row in csv.DictReader(f)
        }


def vad_targets(emotion: str, intensity: str = "") -> tuple[float, float, float]:
    """(activation, valence, dominance) for a category at an intensity, by the rules above.

    No category: activation only from a production level (LEVEL_ACTIVATION), else unlabelled.
    """
    points = category_points()
    if intensity not in INTENSITY_WEIGHT:
        known = ", ".join(repr(k) for k in INTENSITY_WEIGHT)
        raise TrainerError(f"intensity {intensity!r} is not one of {known}")
    if not emotion:
        return (level_activation(intensity), UNLABELLED[1], UNLABELLED[2]) if LEVEL_OF[intensity] else UNLABELLED
    if emotion not in points:
        raise TrainerError(f"emotion {emotion!r} has no VAD target; known: {', '.join(sorted(points))}")
    weight = INTENSITY_WEIGHT[intensity]
    neutral = points["neutral"]
    return tuple(n + weight * (c - n) for n, c in zip(neutral, points[emotion]))


def level_activation(level: str) -> float:
    """Activation target of a production level, or of an intensity word naming one (LEVEL_OF), without a
    category (see LEVEL_ACTIVATION)."""
    points = category_points()
    anchor = LEVEL_ACTIVATION[LEVEL_OF[level]]
    if anchor is not None:
        return points[anchor][0]
    high = [p[0] for p in points.values() if (p[0] - 1) / 6 > 0.7]
    return float(sum(high) / len(high))
