"""From command-line data arguments to labelled, split, featurised sets (shared by the commands)."""
from __future__ import annotations

import os
from pathlib import Path

from trainer.data import FeatureCache, Utterance, read_manifest, read_msp_podcast, speaker_split
from trainer.train import LabelledSet, labelled_set

DEFAULT_CACHE = Path(os.environ.get("EMOLIVE_CACHE", Path.home() / ".cache" / "emolive")) / "features"


def load_utterances(manifests: list[str], msp_roots: list[str] | None = None) -> list[Utterance]:
    utts: list[Utterance] = []
    for m in manifests:
        utts += read_manifest(m)
    for root in msp_roots or []:
        utts += read_msp_podcast(root)
    if not utts:
        raise ValueError("no utterances: give --data MANIFEST.csv and/or --msp-podcast ROOT")
    return utts


def ensure_splits(utts: list[Utterance], seed: int, val_frac: float, test_frac: float) -> list[Utterance]:
    """Keep the data's own splits (MSP-Podcast, a manifest's split column); else split by speaker."""
    if all(u.split for u in utts):
        return utts
    return speaker_split(utts, val_frac=val_frac, test_frac=test_frac, seed=seed)


def class_names_of(utts: list[Utterance]) -> list[str]:
    """The class head's labels: every emotion in the data, sorted (MSP's 'no agreement' excluded)."""
    return sorted({u.emotion for u in utts if u.emotion not in ("", "no_agreement", "other")})


def featurise(utts: list[Utterance], class_names: list[str], cache: FeatureCache,
              progress: bool = True) -> LabelledSet:
    return labelled_set(utts, cache.features_for(utts, progress=progress), class_names)


def by_split(utts: list[Utterance], *names: str) -> list[Utterance]:
    return [u for u in utts if u.split in names]
