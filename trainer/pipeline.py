"""One trainer data spec, resolved once from the arguments, and one `fit` that commands and benchmarks call.

`DataSpec.from_args` reads the data options of any `trainer` command (manifests, MSP-Podcast roots,
cache, features, split, classes, views); `TrainConfig.from_args` and `DistillConfig.from_args`
read the rest. `fit(data, config, distill)` is `trainer train` and `trainer distill` minus the
files: it loads and splits the clips, picks the class set, featurises, trains (with the teacher's
targets when distilling) and scores every held-out split the way the live engine would hear it.
`save_model` writes what it returns as a bundle.
"""
from __future__ import annotations

import argparse
import copy
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from emolive.engine.bundle import dequantise_int8, quantise_int8
from emolive.plugins.student import StudentModel, save_bundle
from emolive.plugins.student.bundle import numpy_state
from emolive.plugins.teacher import save_teacher_bundle
from emolive.trainer.classes import CLASS_SETS, class_names_of  # noqa: F401 (re-exported)
from emolive.trainer.data import (FeatureCache, Utterance, assign_splits, read_manifest, read_msp_podcast, read_splits,
                                  speaker_split)
from emolive.trainer.data.augment import AugmentConfig
from emolive.trainer.data.cache import MFB, without_copied_audio
from emolive.trainer.data.msp_podcast import CORPUS as MSP_CORPUS
from emolive.trainer.data.splits import speaker_splits, warn_unknown_split_words
from emolive.trainer.data.utterance import without_duplicates
from emolive.trainer.embeddings import EmbeddingFeatures, parse_streams
from emolive.trainer.errors import TrainerError
from emolive.trainer.options import same_named
from emolive.trainer.config import TrainConfig
from emolive.trainer.labelled import LabelledSet, labelled_set, score
from emolive.trainer.checkpoint import interrupted_after_training
from emolive.trainer.train import Checkpointing, TrainResult, check_targets, train

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # distillation's module loads the teacher plugin, which plain training never needs
    from emolive.trainer.distill import DistillConfig


def default_cache_root() -> Path:
    """$EMOLIVE_CACHE, a leading ~ expanded (a quoted '~/emc' made a folder named ~), else ~/.cache/emolive;
    an empty value is unset, as for any shell variable (it put the caches in the current folder)."""
    value = os.environ.get("EMOLIVE_CACHE")
    return Path(value).expanduser() if value else user_home() / ".cache" / "emolive"


def user_home() -> Path:
    """$HOME, or the account's home where it is unset or empty: an empty HOME put the caches at /.cache."""
    if os.environ.get("HOME"):
        return Path(os.environ["HOME"])
    try:
        import pwd

        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    except (ImportError, KeyError):  # no password database (Windows, a uid without an entry)
        return Path.home()


CACHE_ROOT = default_cache_root()
DEFAULT_CACHE = CACHE_ROOT / "features"
DEFAULT_EMBEDDING_CACHE = CACHE_ROOT / "embeddings"
FIT_SPLITS = {"train": ("train",), "train+val": ("train", "val"), "all": ("train", "val", "test")}

FeatureSource = FeatureCache | EmbeddingFeatures
"""What a model is trained on; both give `features_for(utts, progress) -> [frames, dim] arrays`."""


@dataclass(frozen=True)
class DataSpec:
    """The data of a trainer command: where the clips are, how they split, what a model reads.

    Its defaults are the shipped recipe's, like TrainConfig's (trainer.config), and `trainer`'s options read them."""

    data: tuple[str, ...] = ()  # manifest CSVs
    msp_podcast: tuple[str, ...] = ()  # MSP-Podcast roots
    cache: str | None = None  # --cache; None: under $EMOLIVE_CACHE or ~/.cache/emolive (cache_root)
    features: str = MFB  # "mfb" (a student) or SSL streams "NAME[:LAYER],..." (a teacher)
    # the speaker split, where the data has none: 10 % of the speakers for validation, 10 % for test
    split_seed: int = 0
    val_frac: float = 0.1
    test_frac: float = 0.1
    # or each speaker's split from a speaker,split CSV (a bundle's splits.csv): a teacher trained on its
    # student's split learns none of the student's held-out speakers
    splits: str | None = None
    train_on: str = "train"  # a key of FIT_SPLITS
    classes: str = "shared"  # a class set of trainer.classes
    views: int = 0  # augmented views per training clip
    test_data: tuple[str, ...] = ()  # manifests scored as split "test" only (cross-corpus benchmarks)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> DataSpec:
        return same_named(cls, args)

    @property
    def sources(self) -> list[str]:
        """The data arguments as given, for messages and the bundle's training record."""
        return [*self.data, *self.msp_podcast]

    def cache_root(self, kind: str = "features") -> Path:
        """`--cache` if given, else `kind` (features, embeddings) under the default cache root."""
        return Path(self.cache) if self.cache else CACHE_ROOT / kind

    def utterances(self) -> list[Utterance]:
        return load_utterances(list(self.data), list(self.msp_podcast))

    def split_utterances(self) -> list[Utterance]:
        """The clips with their splits: `splits`' where given (every speaker must be in it), else the
        data's own, and by speaker for clips without one (ensure_splits)."""
        if self.splits:  # the command line refuses the drawing options beside it (trainer.cli.SplitOption)
            return read_splits(self.splits, self.utterances())
        return ensure_splits(self.utterances(), self.split_seed, self.val_frac, self.test_frac)

    def with_held_out(self, own: list[Utterance]) -> list[Utterance]:
        """`own` (the data's clips) and after them the `test_data` clips, all in split "test" (never trained
        on, never a source of classes). None of their speakers is one of `own`'s, and a held-out clip whose
        audio is one of `own`'s is left out, with the data's warning: 40 copies of the training corpus
        under another folder had been scored as held out, next to the clips they copied."""
        if not self.test_data:
            return own
        held = [replace(u, split="test") for u in load_utterances(list(self.test_data))]
        # a folder of a --data corpus's name is that corpus: other speakers of it are a held-out subset, one of
        # its speakers is an error that says so (it had blamed "a speaker in several splits")
        shared = sorted({u.speaker for u in held} & {u.speaker for u in own})
        if shared:
            named = ", ".join(shared[:3]) + (", …" if len(shared) > 3 else "")
            raise TrainerError(f"--test-data holds speaker(s) {named} "
                               "of --data too (a corpus is its manifest's folder name): hold out other speakers, or "
                               "give a held-out corpus of its own a folder named for it")
        return without_copied_audio(own + held)

    def source(self, device: str | None = None) -> FeatureSource:
        """`mfb`: the front end's MFB+F0 (a student); else fused SSL embeddings `NAME[:LAYER],...` (a teacher)."""
        if self.features == MFB:
            return FeatureCache(self.cache_root("features"))
        return EmbeddingFeatures(self.cache_root("embeddings"), parse_streams(self.features), device)


@dataclass
class Fitted:
    """What `fit` made: the trained model and everything its bundle and report need."""

    result: TrainResult
    utterances: list[Utterance]  # every clip, with its split
    classes: list[str]
    source: FeatureSource
    config: TrainConfig  # as trained (distillation sets its schedule)
    tests: dict[str, dict]  # held-out split -> trainer.labelled.score
    n_train: int
    n_val: int
    distillation: dict | None = None


def fit(data: DataSpec, config: TrainConfig, distill: DistillConfig | None = None,
        checkpoint: Checkpointing | None = None, log: Callable[[str], None] = lambda line: None,
        progress: bool = False, int8: bool = False) -> Fitted:
    """Train on `data.train_on`, early-stop on "val", score every other split (with the stream
    normalisation the bundle will record, as the live engine hears it, and with the weights it will
    hold: `int8` ones where it stores those, so its recorded scores are what `trainer evaluate` of the
    bundle prints; scored in float32, the shipped student's UAR read 0.537 there, 0.536 evaluated).
    What the data already tells
    (a speaker in two splits, no validation clips, targets no CCC can measure, a corpus without a
    teacher to distil from) is refused before any feature is computed."""
    listed = data.split_utterances()
    fitted = FIT_SPLITS[data.train_on]
    if data.train_on == "all":  # every split the data names: MSP-Podcast's test1 and test2 stayed held out
        fitted = ("train", "val", *sorted({u.split for u in listed} - {"train", "val"}))
    # a split fitted beside train and val (--train-on all: test) is trained on, so it is recorded as train:
    # splits.csv, the learned clips and the scores had gone on calling the clips it learned held out
    trained_on_too = set(fitted) - {"train", "val"}
    own = [replace(u, split="train") if u.split in trained_on_too else u for u in listed]
    utts = data.with_held_out(own)
    speaker_splits(utts)  # --test-data clips are all "test": one of their speakers may be in train or val
    fit_clips = by_split(own, *fitted)  # never --test-data's clips, whatever --train-on says
    check_targets(fit_clips, by_split(utts, "val"))
    if distill is not None:
        from emolive.trainer.distill import check_teachers, setup_distillation

        check_teachers(distill, fit_clips)
    # from the clips it learns from and validates on: a test clip's category had made a class (EmoDB's
    # one disgust clip in the split), so the held-out labels shaped the head
    classes = class_names_of(by_split(own, *fitted, "val"), data.classes)
    source = data.source()
    config = replace(config, gain_dims=source.gain_dims)
    train_set = featurise(fit_clips, classes, source, progress=progress,
                          views=data.views, session_channels=config.session_channels)
    val_set = featurise(by_split(utts, "val"), classes, source, progress=False)
    tests = {s: featurise(by_split(utts, s), classes, source, progress=False)
             for s in sorted({u.split for u in utts} - {"train", "val"})}
    objective, distillation = None, None
    if distill is not None:
        held_out = [u for u in utts if u.split not in fitted]  # validation and test: what teachers should not know
        config, objective, distillation = setup_distillation(distill, train_set, config, data.cache_root(), held_out)
    result = train(train_set, val_set, classes, config, log=log, objective=objective, checkpoint=checkpoint)
    norm = result.stream_normalisation
    try:
        stored = as_stored(result.model, int8)
        scores = {s: score(stored, held, norm) for s, held in tests.items() if len(held)}
    except KeyboardInterrupt:
        if checkpoint is None:
            raise
        raise interrupted_after_training(checkpoint.directory) from None
    return Fitted(result, utts, classes, source, config, scores, len(train_set), len(val_set), distillation)


def as_stored(model: StudentModel, int8: bool) -> StudentModel:
    """`model` with the weights its bundle will hold: int8 ones made and read back as the bundle
    writer and reader do (engine.bundle), or `model` itself."""
    if not int8:
        return model
    state = dequantise_int8(quantise_int8(numpy_state(model)), "the weights as stored")
    stored = copy.deepcopy(model)
    stored.load_state_dict({name: torch.from_numpy(np.array(value)) for name, value in state.items()})
    return stored


def load_utterances(manifests: list[str], msp_roots: list[str] | None = None) -> list[Utterance]:
    """Every source's clips, pooled; a clip in two sources counts once, by its path
    (utterance.without_duplicates) or by its audio (cache.without_copied_audio). Manifests in two
    folders of one name are refused: a corpus is its manifest's folder name, so their speakers (EmoDB's
    03 and RAVDESS's 03 under data/emodb/v1 and data/ravdess/v1) had merged into one, and a split."""
    check_corpus_names(manifests, msp_roots or [])
    sources = [(m, read_manifest(m)) for m in manifests] + [(r, read_msp_podcast(r)) for r in msp_roots or []]
    utts = without_copied_audio(without_duplicates((str(where), u) for where, us in sources for u in us))
    if not utts:
        empty = [str(where) for where, found in sources if not found]  # a header and no rows: named, not "give --data"
        raise TrainerError(f"no utterances: {', '.join(empty)} list(s) no clip" if empty else
                           "no utterances: give --data MANIFEST.csv and/or --msp-podcast ROOT")
    return utts


def check_corpus_names(manifests: list[str], msp_roots: list[str]) -> None:
    """Raise TrainerError where two sources in different folders would name one corpus (load_utterances):
    manifests of one folder name, or two MSP-Podcast-layout roots (every one is corpus `msp-podcast`: a
    BIIC-Podcast beside MSP-Podcast had merged speaker 103 of each into one), or either beside the other."""
    folders: dict[str, set[Path]] = {}
    for manifest in manifests:
        folder = Path(manifest).resolve().parent
        folders.setdefault(folder.name, set()).add(folder)
    for root in msp_roots:
        folders.setdefault(MSP_CORPUS, set()).add(Path(root).resolve())
    for name, found in folders.items():
        if len(found) > 1:
            where = " and ".join(str(folder) for folder in sorted(found)[:2])
            raise TrainerError(f"the sources in {where} would both be corpus {name!r} (a manifest's corpus is its "
                               f"folder name, an --msp-podcast root's is {MSP_CORPUS}) and their speakers one: train "
                               "on one of them, or give the other as a manifest in a folder named for its corpus")


def ensure_splits(utts: list[Utterance], seed: int, val_frac: float, test_frac: float) -> list[Utterance]:
    """Keep the splits the data gives (MSP-Podcast's official ones, a manifest's split column) and split
    the clips without one: a clip whose speaker has a split takes it; the other speakers are split
    by `speaker_split` (its fractions of those speakers, so a corpus without splits pooled with one
    that has them still gets its own validation and test speakers). Clips without a split among
    clips with one are warned once, with how many took their speaker's split and how many were drawn.

    A speaker given two splits is an error here (splits.speaker_splits), before any training.
    """
    placed = speaker_splits(utts)
    unplaced = [u for u in utts if u.speaker not in placed]
    drawn = _drawn_splits(unplaced, seed, val_frac, test_frac, mixed=bool(placed)) if unplaced else {}
    missing = sum(u.split is None for u in utts)
    if placed and missing:
        log.warning("%d of %d clips have no split in the data: %d took their speaker's, %d (%d speakers) were split "
                    "by speaker (--val-frac %g, --test-frac %g, --split-seed %d)", missing, len(utts),
                    missing - len(unplaced), len(unplaced), len(drawn), val_frac, test_frac, seed)
    warn_unknown_split_words(set(placed.values()))
    return assign_splits(utts, {**placed, **drawn})


def _drawn_splits(utts: list[Utterance], seed: int, val_frac: float, test_frac: float, mixed: bool) -> dict[str, str]:
    """speaker -> split drawn by `speaker_split`; where other clips have the data's splits, its error says
    that only the clips without a split were split, and how to train on them when they are too few to split."""
    try:
        return {u.speaker: u.split for u in speaker_split(utts, val_frac=val_frac, test_frac=test_frac, seed=seed)}
    except TrainerError as err:
        if not mixed:
            raise
        raise TrainerError(f"the {len(utts)} clips without a split in the data: {err}: give them one in the data, "
                           "or --val-frac 0 --test-frac 0 to train on them all") from None


def save_model(fitted: Fitted, path: str | Path, int8: bool = False, finish: Callable[[Path], None] | None = None,
               **kwargs: Any) -> Path:
    """A student bundle for MFB+F0, a teacher bundle recording its streams for embeddings; atomic,
    with whatever `finish(directory)` adds (engine.bundle.write_bundle)."""
    model, source = fitted.result.model, fitted.source
    class_names = fitted.classes if fitted.config.multitask else []
    norm = fitted.result.stream_normalisation
    if isinstance(source, EmbeddingFeatures):
        if norm is not None:
            raise TrainerError("stream normalisation is for MFB+F0 students; train teachers with --no-stream-norm")
        return save_teacher_bundle(path, model, source.streams, class_names, int8=int8, finish=finish, **kwargs)
    return save_bundle(path, model, source.cfg, class_names, stream_normalisation=norm, int8=int8, finish=finish,
                       **kwargs)


def featurise(utts: list[Utterance], class_names: list[str], cache: FeatureSource,
              progress: bool = True, views: int = 0, session_channels: bool = False) -> LabelledSet:
    """Labelled features; `views` augmented views per clip (trainer.data.augment) for training sets,
    front-end features or embeddings alike, their chains drawn per speaker with `session_channels`."""
    augmented = []
    if views:
        augmented = cache.views_for(utts, views, AugmentConfig(), progress=progress, per_session=session_channels)
    return labelled_set(utts, cache.features_for(utts, progress=progress), class_names, augmented)


def by_split(utts: list[Utterance], *names: str) -> list[Utterance]:
    return [u for u in utts if u.split in names]


__all__ = ["CLASS_SETS", "DEFAULT_CACHE", "DEFAULT_EMBEDDING_CACHE", "MFB", "DataSpec", "Fitted", "by_split",
           "class_names_of", "ensure_splits", "featurise", "fit", "load_utterances", "save_model"]
