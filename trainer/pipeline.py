"""From command-line data arguments to labelled, split, featurised sets (shared by the commands)."""
from __future__ import annotations

import os
from pathlib import Path

from emolive.plugins.student import StudentModel, save_bundle
from emolive.plugins.teacher import save_teacher_bundle
from emolive.trainer.data import FeatureCache, Utterance, read_manifest, read_msp_podcast, speaker_split
from emolive.trainer.data.utterance import without_duplicates
from emolive.trainer.classes import CLASS_SETS, class_names_of  # noqa: F401 (re-exported)
from emolive.trainer.data.augment import AugmentConfig
from emolive.trainer.embeddings import EmbeddingFeatures, parse_streams
from emolive.trainer.train import LabelledSet, labelled_set
from emolive.trainer.errors import TrainerError

DEFAULT_CACHE = Path(os.environ.get("EMOLIVE_CACHE", Path.home() / ".cache" / "emolive")) / "features"
DEFAULT_EMBEDDING_CACHE = DEFAULT_CACHE.parent / "embeddings"
MFB = "mfb"

FeatureSource = FeatureCache | EmbeddingFeatures
"""What a model is trained on; both give `features_for(utts, progress) -> [frames, dim] arrays`."""


def load_utterances(manifests: list[str], msp_roots: list[str] | None = None) -> list[Utterance]:
    """Every source's clips, pooled; a clip in two sources counts once (utterance.without_duplicates)."""
    sources = [(m, read_manifest(m)) for m in manifests] + [(r, read_msp_podcast(r)) for r in msp_roots or []]
    utts = without_duplicates((str(where), u) for where, us in sources for u in us)
    if not utts:
        raise TrainerError("no utterances: give --data MANIFEST.csv and/or --msp-podcast ROOT")
    return utts


def ensure_splits(utts: list[Utterance], seed: int, val_frac: float, test_frac: float) -> list[Utterance]:
    """Keep the data's own splits (MSP-Podcast, a manifest's split column); else split by speaker."""
    if all(u.split for u in utts):
        return utts
    return speaker_split(utts, val_frac=val_frac, test_frac=test_frac, seed=seed)


def feature_source(spec: str, cache_root: str | None = None, device: str | None = None) -> FeatureSource:
    """`mfb`: the front end's MFB+F0 (a student); else fused SSL embeddings `NAME[:LAYER],...` (a teacher)."""
    if spec == MFB:
        return FeatureCache(cache_root or DEFAULT_CACHE)
    return EmbeddingFeatures(cache_root or DEFAULT_EMBEDDING_CACHE, parse_streams(spec), device)


def save_model(source: FeatureSource, path: str | Path, model: StudentModel, class_names: list[str],
               stream_normalisation=None, **kwargs) -> Path:
    """A student bundle for MFB+F0, a teacher bundle recording its streams for embeddings."""
    if isinstance(source, EmbeddingFeatures):
        if stream_normalisation is not None:
            raise TrainerError("stream normalisation is for MFB+F0 students; train teachers with --no-stream-norm")
        return save_teacher_bundle(path, model, source.streams, class_names, **kwargs)
    return save_bundle(path, model, source.cfg, class_names, stream_normalisation=stream_normalisation, **kwargs)


def featurise(utts: list[Utterance], class_names: list[str], cache: FeatureSource,
              progress: bool = True, views: int = 0) -> LabelledSet:
    """Labelled features; `views` augmented views per clip (trainer.data.augment) for MFB+F0 training sets."""
    augmented = []
    if views and isinstance(cache, FeatureCache):
        augmented = cache.views_for(utts, views, AugmentConfig(), progress=progress)
    return labelled_set(utts, cache.features_for(utts, progress=progress), class_names, augmented)


def by_split(utts: list[Utterance], *names: str) -> list[Utterance]:
    return [u for u in utts if u.split in names]
