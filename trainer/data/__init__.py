"""Datasets for training: adapters to one `Utterance` record, speaker splits, feature cache."""
from emolive.trainer.data.cache import FeatureCache, feature_stats, load_audio
from emolive.trainer.data.manifest import read_manifest
from emolive.trainer.data.msp_podcast import read_msp_podcast
from emolive.trainer.data.splits import assign_splits, read_splits, speaker_split, write_splits
from emolive.trainer.data.utterance import Utterance
from emolive.trainer.data.vad import INTENSITY_WEIGHT, category_points, vad_targets

__all__ = [
    "INTENSITY_WEIGHT", "FeatureCache", "Utterance", "assign_splits", "category_points", "feature_stats",
    "load_audio", "read_manifest", "read_msp_podcast", "read_splits", "speaker_split", "vad_targets",
    "write_splits",
]
