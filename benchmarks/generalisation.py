"""Leave-one-corpus-out: how the student does on a corpus (language, room, microphones) it never heard.

For each shared corpus in turn, train on all the others and test on every clip of the one left
out; model selection (early stopping) uses only validation speakers of the training corpora
(15 % of each training corpus's speakers). Scored like `trainer evaluate`: CCC per dimension on
the clips labelled in it (a dimension whose labels are all equal on the left-out corpus, like
BAVED's valence, is "-"), UAR on the left-out corpus's classes that the class head has. Mean ±
std over seeds (3 by default; a run takes ~5 min on one core, so the old and new rows alone keep this
2-core machine busy for an hour), and a bootstrap 95 % interval of the seed-mean over the left-out
corpus's speakers. A row uses every seed saved for all four left-out corpora, and says how many.

Recipes: "old" is the shipped model's recipe before this benchmark (global normalisation, gain
augmentation, every category a class, uniform sampling); "new" adds per-speaker stream
normalisation, corpus-balanced sampling and the shared class set; "new, 40 epochs" lets it train
twice as long (early stopping still decides): `trainer train`'s defaults. The shipped student
(DEFAULT_STUDENT) is that recipe taught cross-fitted estimates of the shipped teacher's recipe.
The ablation rows take one piece out ("new - X", or of the defaults: "new, 40 epochs - X", its
corpus-balanced sampling or its shared class set), change one loss or sampling option of the
defaults, or add one: augmented views of rooms, microphones, speed and noise, drawn per clip or
per speaker session ("new + views per ..."), a corpus-adversarial classifier through gradient
reversal, or distillation from a teacher trained on the fold.

Every run is also scored on its left-out corpus through each channel of trainer.data.channels
(a telephone line, an 8 kHz recorder, pink noise at 10 dB, a 0.6 s room, a 20 dB quieter
microphone): an unheard corpus heard through an unheard line; a teacher's channel copies are
embedded before the runs. `--channels` trains again the runs saved before these scores (the same
seed gives the same model) to add them.

Each run's predictions are saved under --out, so an interrupted benchmark resumes where it
stopped. Run: .venv/bin/python benchmarks/generalisation.py [--seeds 0 1 2] [--ablation-seeds 0] [--jobs 2]
"""
from __future__ import annotations

import argparse
import json
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from _common import REPO, SHARED, cpu_model

from emolive.engine.schema import DIMENSIONS
from emolive.trainer.data import FeatureCache, Utterance
from emolive.trainer.data.augment import AugmentConfig
from emolive.trainer.data.channels import CHANNELS, write_channel_copy
from emolive.trainer.metrics import ccc, speaker_bootstrap, uar
from emolive.trainer.data.cache import MFB
from emolive.trainer.embeddings import EmbeddingFeatures, parse_streams
from emolive.trainer.embeddings.cache import fill_layers
from emolive.trainer.pipeline import DEFAULT_CACHE, DEFAULT_EMBEDDING_CACHE, FeatureSource, by_split, class_names_of, featurise, load_utterances
from emolive.trainer.data.splits import speaker_split
from emolive.trainer.distill import DistillConfig, DistillObjective, TeacherTargets, centred_by_stream
from emolive.trainer.sessions import DEFAULT_PROTOCOL, PROTOCOLS, session_streams
from emolive.trainer.config import TrainConfig
from emolive.trainer.labelled import LabelledSet, predict, session_features
from emolive.trainer.sampling import corpus_ids
from emolive.trainer.train import TrainResult, train

CORPORA = ("emodb", "ravdess", "ased", "baved")
VIEWS = 2
EPOCHS, PATIENCE = 20, 5
EPOCH_CLIPS = 2400  # every recipe's epoch: 2400 clips (balanced: 800 per training corpus), to fit a 2-core budget
CHANNEL_NAMES = tuple(c for c in CHANNELS if c != "clean")
CHANNEL_COPIES = DEFAULT_CACHE.parent / "channels" / "corpora"  # every clip of each corpus through each channel


@dataclass(frozen=True)
class Recipe:
    name: str
    stream_norm: bool = True
    views: bool = True
    balance: bool = True
    classes: str = "shared"
    session_channels: bool = False
    epochs: int = EPOCHS
    epoch_clips: int = EPOCH_CLIPS
    corpus_adversary: float = 0.0
    teacher_hidden: int = 0  # > 0: distil from a teacher this wide, trained on the fold with views
    distil_from: str = ""  # a teacher recipe (pretrained embeddings) trained on the fold, distilled into this one
    distil_lambda: float = 0.0  # > 0: task-led distillation, kappa 1 and this lambda in every epoch (no switch)
    distil_centred: bool = False  # the teacher's embeddings centred per speaker (trainer.distill.centred_by_stream)
    distil_projector: bool = False  # L_dis on a learnt linear map of the student's embedding (DistillConfig.projector)
    distil_avd: float = 0.0  # > 0: learn the teacher's cross-fitted A/V/D (crossfit_targets) with this weight, no L_dis
    distil_avd_dims: tuple[str, ...] = DIMENSIONS  # the dimensions that term teaches (DistillConfig.avd_dims)
    ccc_alpha: float = 1 / 3  # the CCC loss's valence weight (eq. 1)
    ccc_beta: float = 1 / 3  # and its activation weight
    ce_weight: float = 0.2
    ccc_per_corpus: bool = False
    balance_quadrants: bool = False
    dropout: float = 0.0
    session_protocols: tuple[str, ...] = (DEFAULT_PROTOCOL,)  # training sessions (trainer.sessions)
    norm_prior_s: float = 5.0
    norm_stream_level: bool = False  # the prior's log energies at each stream's level (TrainConfig.norm_stream_level)
    features: str = MFB  # or pretrained streams "NAME:LAYER,..." (a teacher; no stream normalisation)
    arch: str = "tcgru"
    whole_epochs: int = 0  # first epochs on whole utterances (TrainConfig.whole_epochs)
    select_from: int = 0  # first epoch that may be selected (TrainConfig.select_from)
    lead_in_s: float = 0.0  # each crop after up to this much of another clip's end (TrainConfig.lead_in_s)

    def config(self, seed: int) -> TrainConfig:
        return TrainConfig(seed=seed, arch=self.arch, epochs=self.epochs, patience=PATIENCE, stream_norm=self.stream_norm,
                           balance_corpora=self.balance, use_views=self.views, epoch_clips=self.epoch_clips,
                           session_channels=self.session_channels, corpus_adversary=self.corpus_adversary,
                           ccc_alpha=self.ccc_alpha, ccc_beta=self.ccc_beta, ce_weight=self.ce_weight,
                           ccc_per_corpus=self.ccc_per_corpus, dropout=self.dropout,
                           balance_quadrants=self.balance_quadrants, session_protocols=self.session_protocols,
                           norm_prior_s=self.norm_prior_s, norm_stream_level=self.norm_stream_level,
                           whole_epochs=self.whole_epochs,
                           select_from=self.select_from, lead_in_s=self.lead_in_s)


# `trainer train`'s defaults (trainer/config.py): the default student's recipe before its distillation
TRAINER_DEFAULTS = Recipe("new, 40 epochs", views=False, epochs=40)
WHISPER_TEACHER = "whisper-base:5 teacher (GRU)"  # the first Whisper teacher (the distillation rows' teacher)
LAYER5_TEACHER = f"{WHISPER_TEACHER}, dropout 0.3"  # the teacher shipped before the fusion of layers 1 and 5
# the teacher shipped until 2026-12-06, the teacher of the distillations measured before then
FUSED_TEACHER = "whisper-base:1,5 teacher (GRU), dropout 0.3"
SHIPPED_TEACHER = f"{FUSED_TEACHER}, views per clip"  # the shipped teacher's recipe (make teacher-model)


def distillation_schedule(epochs: int) -> dict[str, int]:
    """The paper's distillation schedule shortened to this benchmark's budget, for a student of
    `epochs`: half as many epochs again, as many of them first on whole utterances (the
    distillation-led phase), selection only after them (TrainConfig's fields)."""
    switch = epochs // 2
    return {"epochs": epochs + switch, "whole_epochs": switch, "select_from": switch}


def defaults_with(change: str, **fields) -> Recipe:
    """The trainer's default recipe with one thing changed (`fields`), named after it: its ablation
    rows differ from their control in exactly that and nothing else."""
    return replace(TRAINER_DEFAULTS, name=f"{TRAINER_DEFAULTS.name}{change}", **fields)


# the shipped student (make default-model): the defaults, taught the activation and dominance that teachers of the
# shipped teacher's recipe, each trained without the clip's corpus, estimate (trainer distill --teacher-for)
DEFAULT_STUDENT = defaults_with(", taught cross-fitted activation and dominance of the teacher with views",
                                distil_from=SHIPPED_TEACHER, distil_avd=0.5,
                                distil_avd_dims=("activation", "dominance"))


RECIPES = {r.name: r for r in (
    Recipe("old", stream_norm=False, views=False, balance=False, classes="all"),
    Recipe("new", views=False),
    TRAINER_DEFAULTS,
    Recipe("new + corpus adversary", views=False, corpus_adversary=0.3),
    Recipe("new + distilled from a wide teacher with views", views=False, teacher_hidden=256),
    defaults_with(", valence-weighted CCC", ccc_alpha=0.5, ccc_beta=0.25),
    defaults_with(", class weight 1", ce_weight=1.0),
    defaults_with(", CCC per corpus", ccc_per_corpus=True),
    defaults_with(", dropout 0.3", dropout=0.3),
    defaults_with(", quadrant-balanced", balance_quadrants=True),
    Recipe("new + views per clip"),
    Recipe("new + views per session", session_channels=True),
    Recipe("new - stream norm", stream_norm=False, views=False),
    defaults_with(" - corpus balance", balance=False),
    defaults_with(" - stream norm", stream_norm=False),
    defaults_with(", sessions of every protocol", session_protocols=PROTOCOLS),
    defaults_with(", prior 60 s", norm_prior_s=60.0),
    defaults_with(", prior 20 s", norm_prior_s=20.0),
    defaults_with(", prior at the stream's level", norm_stream_level=True),
    defaults_with(", lead-in 2 s", lead_in_s=2.0),
    Recipe(WHISPER_TEACHER, features="whisper-base:5", arch="gru", stream_norm=False, views=False, epochs=30),
    defaults_with(", distilled from the Whisper teacher", distil_from=WHISPER_TEACHER),
    Recipe(LAYER5_TEACHER, features="whisper-base:5", arch="gru", stream_norm=False, views=False, epochs=30,
           dropout=0.3),
    Recipe(f"{WHISPER_TEACHER}, dropout 0.5", features="whisper-base:5", arch="gru", stream_norm=False, views=False,
           epochs=30, dropout=0.5),
    Recipe(FUSED_TEACHER, features="whisper-base:1,whisper-base:5", arch="gru",
           stream_norm=False, views=False, epochs=30, dropout=0.3),
    defaults_with(", distilled from the fused teacher", distil_from=FUSED_TEACHER),
    defaults_with(", distilled from the fused teacher, task-led", distil_from=FUSED_TEACHER, distil_lambda=0.5),
    defaults_with(", distilled from the fused teacher, speaker-centred", distil_from=FUSED_TEACHER,
                 distil_centred=True),
    defaults_with(", distilled from the fused teacher through a projector", distil_from=FUSED_TEACHER,
                 distil_projector=True),
    # the control of the distilled rows with the paper's schedule, without a teacher
    defaults_with(", distillation's schedule without a teacher", **distillation_schedule(TRAINER_DEFAULTS.epochs)),
    defaults_with(", taught cross-fitted estimates of the fused teacher", distil_from=FUSED_TEACHER, distil_avd=0.5),
    defaults_with(", taught cross-fitted valence of the fused teacher", distil_from=FUSED_TEACHER, distil_avd=0.5,
                 distil_avd_dims=("valence",)),
    defaults_with(", taught cross-fitted activation and dominance of the fused teacher", distil_from=FUSED_TEACHER,
                 distil_avd=0.5, distil_avd_dims=("activation", "dominance")),
    defaults_with(", taught cross-fitted activation of the fused teacher", distil_from=FUSED_TEACHER,
                 distil_avd=0.5, distil_avd_dims=("activation",)),
    defaults_with(", taught cross-fitted activation and dominance of the fused teacher at weight 0.25",
                 distil_from=FUSED_TEACHER, distil_avd=0.25, distil_avd_dims=("activation", "dominance")),
    # the control of the next: the same views per session, no teacher
    defaults_with(", views per session", views=True, session_channels=True),
    # the teacher hears each clip clean while the student hears it through a speaker's channel (a view)
    defaults_with(", views per session, distilled from the fused teacher", distil_from=FUSED_TEACHER, views=True,
                 session_channels=True),
    # the fused teacher trained on the students' augmented views too (its weak spot was a reverberant room)
    Recipe(SHIPPED_TEACHER, features="whisper-base:1,whisper-base:5", arch="gru", stream_norm=False, epochs=30,
           dropout=0.3),
    # Table 4 with the best teacher: the paper's schedule, the teacher trained on its views
    defaults_with(", distilled from the teacher with views", distil_from=SHIPPED_TEACHER),
    DEFAULT_STUDENT,
    defaults_with(", taught cross-fitted estimates of the teacher with views", distil_from=SHIPPED_TEACHER,
                 distil_avd=0.5),
    Recipe(f"{LAYER5_TEACHER}, valence-weighted CCC", features="whisper-base:5", arch="gru", stream_norm=False,
           views=False, epochs=30, dropout=0.3, ccc_alpha=0.5, ccc_beta=0.25),
    defaults_with(" - shared classes", classes="all"),
)}
MAIN = ("old", "new", TRAINER_DEFAULTS.name, DEFAULT_STUDENT.name)  # the shipped student's recipe is the last


def manifests() -> list[str]:
    return [str(SHARED / "corpora" / c / "manifest.csv") for c in CORPORA]


def training_split(utts: list[Utterance], corpora: tuple[str, ...]) -> tuple[list[Utterance], list[Utterance]]:
    """(train, val) of `corpora`: val is 15 % of each one's speakers, the same whatever else is trained on."""
    train_utts, val_utts = [], []
    for corpus in corpora:
        split = speaker_split([u for u in utts if u.corpus == corpus], val_frac=0.15, test_frac=0.0, seed=0)
        train_utts += by_split(split, "train")
        val_utts += by_split(split, "val")
    return train_utts, val_utts


def fold(held_out: str) -> tuple[list[Utterance], list[Utterance], list[Utterance]]:
    """(train, val, test): training_split of the other corpora, test all of `held_out`."""
    utts = load_utterances(manifests())
    train_utts, val_utts = training_split(utts, tuple(c for c in CORPORA if c != held_out))
    return train_utts, val_utts, [u for u in utts if u.corpus == held_out]


def left_out_through(corpus: str, channel: str) -> list[Utterance]:
    """Every clip of `corpus` through `channel`, in the manifest's order (fold's test order), copied
    on first use; the same speakers and labels."""
    manifest = write_channel_copy(SHARED / "corpora" / corpus / "manifest.csv", channel, CHANNEL_COPIES / channel / corpus)
    return load_utterances([str(manifest)])


def channel_key(protocol: str, channel: str) -> str:
    """A protocol's key in a saved run for the left-out corpus heard through `channel`."""
    return f"{protocol}@{channel}"


def has_channel_scores(saved) -> bool:
    """Whether a saved run (an npz file or its dict) holds the left-out corpus through the channels."""
    return f"avd_{channel_key(DEFAULT_PROTOCOL, CHANNEL_NAMES[0])}" in saved


def source_of(recipe: Recipe) -> FeatureSource:
    """The recipe's features: the MFB+F0 cache, or the cached embeddings of its pretrained streams."""
    if recipe.features == MFB:
        return FeatureCache(DEFAULT_CACHE)
    return EmbeddingFeatures(DEFAULT_EMBEDDING_CACHE, parse_streams(recipe.features))


def run_file(out: Path, recipe: str, held_out: str, seed: int) -> Path:
    return out / recipe.replace(" ", "_").replace(",", "") / held_out / f"seed{seed}.npz"


def run(out: Path, recipe_name: str, held_out: str, seed: int, channels: bool = False) -> str:
    """Train one model and save its predictions on the left-out corpus, clean and through every
    channel; skipped if saved already, unless `channels` asks for channel scores that a run saved
    before them lacks."""
    path = run_file(out, recipe_name, held_out, seed)
    recipe = RECIPES[recipe_name]
    if path.exists() and not (channels and not has_channel_scores(np.load(path))):
        return f"{path} (kept)"
    train_utts, val_utts, test_utts = fold(held_out)
    classes = class_names_of(train_utts, recipe.classes)
    cache = source_of(recipe)
    train_set = training_set(recipe, train_utts, classes, cache)
    val_set, test_set = (featurise(u, classes, cache, progress=False) for u in (val_utts, test_utts))
    cfg, objective = replace(recipe.config(seed), gain_dims=cache.gain_dims), None
    if recipe.teacher_hidden:
        cfg, objective = distillation(train_set, val_set, classes, cfg, recipe.teacher_hidden)
    elif recipe.distil_avd:
        cfg, objective = distilled(cfg, crossfit_targets(out, recipe, train_set, seed), train_set,
                                   avd_weight=recipe.distil_avd, avd_dims=recipe.distil_avd_dims)
    elif recipe.distil_from:
        cfg, objective = pretrained_distillation(recipe, train_utts, val_utts, train_set, classes, cfg, seed)
    result = train(train_set, val_set, classes, cfg, log=lambda _: None, objective=objective)
    predictions = protocol_predictions(result, test_set)
    for channel in CHANNEL_NAMES:
        heard = featurise(left_out_through(held_out, channel), classes, cache, progress=False)
        for key, value in protocol_predictions(result, heard).items():
            kind, protocol = key.split("_", 1)
            predictions[f"{kind}_{channel_key(protocol, channel)}"] = value
    note = ""
    if path.exists():  # trained again for its channel scores: the clean ones stay as they were saved
        saved = dict(np.load(path))
        note = f", clean estimates within {np.abs(saved['avd_mixed'] - predictions['avd_mixed']).max():.1e} of the saved"
        predictions.update({k: v for k, v in saved.items() if k.startswith(("avd_", "logits_")) and "@" not in k})
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **predictions, classes=np.array(classes), best_epoch=result.best_epoch, epochs=len(result.history))
    return f"{path}: best epoch {result.best_epoch} of {len(result.history)}{note}"


def training_set(recipe: Recipe, utts: list[Utterance], classes: list[str], source: FeatureSource) -> LabelledSet:
    """The recipe's training clips with the augmented views it trains on: its own, or those of the
    wide teacher it trains first (a student whose recipe has none never reads them: use_views off).
    One place for a fold's student, a distillation's teacher and a cross-fitted teacher."""
    views = VIEWS if recipe.views or recipe.teacher_hidden else 0
    return featurise(utts, classes, source, progress=False, views=views, session_channels=recipe.session_channels)


def protocol_predictions(result: TrainResult, test_set: LabelledSet) -> dict[str, np.ndarray]:
    """The model's avd and logits on the left-out clips under each session protocol, keyed
    "avd_PROTOCOL"/"logits_PROTOCOL"; a model without stream normalisation scores every clip
    alike under all of them (computed once)."""
    norm, out, alike = result.stream_normalisation, {}, None
    for protocol in PROTOCOLS:
        if alike is None or norm is not None:
            streams = session_streams(test_set.utterances, protocol)
            alike = predict(result.model, replace(test_set, features=session_features(test_set.features, streams, norm,
                                                                                      test_set.clips)))
        out[f"avd_{protocol}"], out[f"logits_{protocol}"] = alike["avd"], alike["logits"]
    return out


def distillation(train_set: LabelledSet, val_set: LabelledSet, classes: list[str], cfg: TrainConfig,
                 hidden: int) -> tuple[TrainConfig, DistillObjective]:
    """Paper 3.4 on one fold with a `hidden`-wide MFB+F0 teacher trained on the training corpora with
    their augmented views (heavy augmentation: rooms, microphones, speed, noise)."""
    teacher = train(train_set, val_set, classes, replace(cfg, hidden=hidden, use_views=True), log=lambda _: None)
    clean = replace(train_set, features=session_features(train_set.features, train_set.streams,
                                                         teacher.stream_normalisation, train_set.clips))
    return distilled(cfg, teacher_targets(teacher, clean), train_set)


def pretrained_distillation(recipe: Recipe, train_utts: list[Utterance], val_utts: list[Utterance],
                            train_set: LabelledSet, classes: list[str], cfg: TrainConfig,
                            seed: int) -> tuple[TrainConfig, DistillObjective]:
    """Paper 3.4 on one fold with the paper's kind of teacher: the recipe `distil_from` (a GRU on
    pretrained embeddings, no stream normalisation) trained on this fold's training corpora only,
    with its own recipe's views (its targets are then read from the clean clips the student hears)."""
    teacher_recipe = RECIPES[recipe.distil_from]
    source = source_of(teacher_recipe)
    teacher_train = training_set(teacher_recipe, train_utts, classes, source)
    teacher_val = featurise(val_utts, classes, source, progress=False)
    teacher = train(teacher_train, teacher_val, classes,
                    replace(teacher_recipe.config(seed), gain_dims=source.gain_dims), log=lambda _: None)
    targets = teacher_targets(teacher, teacher_train)
    if recipe.distil_centred:
        targets = centred_by_stream(targets, train_set.streams)
    return distilled(cfg, targets, train_set, recipe.distil_lambda, recipe.distil_projector)


def crossfit_pairs(held_out: str) -> list[tuple[str, ...]]:
    """The corpus sets whose teachers give the fold's cross-fitted targets: each training corpus's
    targets come from a teacher trained on the fold's other training corpora."""
    training = [c for c in CORPORA if c != held_out]
    return [tuple(c for c in training if c != target) for target in training]


def crossfit_file(out: Path, teacher: str, trained_on: tuple[str, ...], seed: int) -> Path:
    return run_file(out / "_crossfit", teacher, "+".join(trained_on), seed)


def crossfit_teacher(out: Path, teacher: str, trained_on: tuple[str, ...], seed: int) -> str:
    """Train the teacher recipe on `trained_on` (training_split) and save its A/V/D on every clip of
    the other corpora, keyed by audio path (skipped if saved already)."""
    path = crossfit_file(out, teacher, trained_on, seed)
    if path.exists():
        return f"{path} (kept)"
    recipe, utts = RECIPES[teacher], load_utterances(manifests())
    train_utts, val_utts = training_split(utts, trained_on)
    classes, source = class_names_of(train_utts, recipe.classes), source_of(recipe)
    train_set = training_set(recipe, train_utts, classes, source)
    val_set, unseen = (featurise(u, classes, source, progress=False) for u in
                       (val_utts, [u for u in utts if u.corpus not in trained_on]))
    result = train(train_set, val_set, classes, replace(recipe.config(seed), gain_dims=source.gain_dims),
                   log=lambda _: None)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, avd=predict(result.model, unseen)["avd"].astype(np.float32),
             paths=np.array([str(u.path) for u in unseen.utterances]))
    return f"{path}: best epoch {result.best_epoch} of {len(result.history)}"


def crossfit_targets(out: Path, recipe: Recipe, train_set: LabelledSet, seed: int) -> TeacherTargets:
    """The teacher's A/V/D on every training clip from a teacher that never heard the clip's corpus
    (crossfit_pairs; their teachers are trained first by crossfit_teacher). A teacher's estimates on
    its own training clips are near the labels; across corpora they carry what the teacher knows
    that transfers, which is what a student tested on an unseen corpus could use. The teachers'
    embeddings are not comparable across them, so none is distilled (an empty embedding)."""
    held_out = next(c for c in CORPORA if c not in {u.corpus for u in train_set.utterances})
    avd_of: dict[str, np.ndarray] = {}
    for trained_on in crossfit_pairs(held_out):
        saved = np.load(crossfit_file(out, recipe.distil_from, trained_on, seed))
        avd_of.update(zip(saved["paths"], saved["avd"]))
    avd = np.stack([avd_of[str(u.path)] for u in train_set.utterances]).astype(np.float32)
    return TeacherTargets(embedding=np.zeros((len(avd), 0), np.float32), avd=avd)


def teacher_targets(teacher: TrainResult, data: LabelledSet) -> TeacherTargets:
    """The teacher's whole-utterance embedding and A/V/D for every training clip (its own inputs)."""
    out = predict(teacher.model, data)
    return TeacherTargets(embedding=out["embedding"].astype(np.float32), avd=out["avd"].astype(np.float32))


def distilled(cfg: TrainConfig, targets: TeacherTargets, train_set: LabelledSet, task_led_lambda: float = 0.0,
              projector: bool = False, avd_weight: float = 0.0,
              avd_dims: tuple[str, ...] = DIMENSIONS) -> tuple[TrainConfig, DistillObjective]:
    """The student's config and objective to learn the teacher's embeddings: distillation_schedule,
    distillation-led epochs on whole utterances, then the task from the switch on. With
    `task_led_lambda` the teacher term is an auxiliary loss of that weight beside the full task
    loss from the first epoch, on the usual crops and for the undistilled student's epochs: the
    teacher then shapes the embedding without a phase in which the task is all but switched off.
    `projector`: L_dis on a learnt linear map of the student's embedding (DistillConfig.projector).
    `avd_weight`: the teacher's A/V/D (`avd_dims` of them) as a task-led term of that weight
    (DistillConfig.avd_weight)."""
    if task_led_lambda > 0 or avd_weight > 0:
        student, weights = cfg, DistillConfig(switch_epoch=0, kappa_early=1.0, lambda_early=task_led_lambda,
                                              kappa=1.0, lambda_=task_led_lambda, projector=projector,
                                              avd_weight=avd_weight, avd_dims=avd_dims)
    else:
        student = replace(cfg, **distillation_schedule(cfg.epochs))
        weights = DistillConfig(switch_epoch=student.whole_epochs, projector=projector)
    return student, DistillObjective(targets, train_set.avd, weights, cfg.embedding_dim,
                                     corpus_ids(train_set.utterances))


def fold_scores(preds: list[dict], test: list[Utterance], rows: np.ndarray | None = None) -> np.ndarray:
    """[seeds, 4] act/val/dom CCC and UAR on the clips `rows` (all when None; repeats allowed)."""
    target = np.array([u.avd for u in test], dtype=np.float64)
    rows = np.arange(len(test)) if rows is None else rows
    out = []
    for p in preds:
        names = list(p["classes"])
        known = np.array([u.emotion in names for u in test])[rows]
        truth = np.array([names.index(u.emotion) if u.emotion in names else -1 for u in test])[rows]
        u_ = uar(p["logits"][rows][known].argmax(1), truth[known]) if known.any() and p["logits"].shape[1] else np.nan
        out.append([*ccc(p["avd"][rows], target[rows]), u_])
    return np.array(out, dtype=np.float64)


def bootstrap(preds: list[dict], test: list[Utterance]) -> tuple[np.ndarray, np.ndarray]:
    """95 % interval of the seed-mean metrics over resamples of the left-out corpus's speakers."""
    return speaker_bootstrap(lambda rows: np.nanmean(fold_scores(preds, test, rows), axis=0),
                             [u.speaker for u in test])


def saved_seeds(out: Path, recipe: str) -> list[int]:
    """The seeds of `recipe` whose runs are saved for every left-out corpus."""
    found = [{int(f.stem[len("seed"):]) for f in run_file(out, recipe, c, 0).parent.glob("seed*.npz")}
             for c in CORPORA]
    return sorted(set.intersection(*found))


def protocol_preds(saved: dict, protocol: str, recipe: Recipe) -> dict | None:
    """A saved run's avd/logits/classes under `protocol`; runs saved before the protocols hold the
    mixed protocol only, which is every protocol for a recipe without stream normalisation (None
    where it is not measured)."""
    if f"avd_{protocol}" in saved:
        return {"avd": saved[f"avd_{protocol}"], "logits": saved[f"logits_{protocol}"], "classes": saved["classes"]}
    if "avd" in saved and (protocol == DEFAULT_PROTOCOL or not recipe.stream_norm):
        return saved
    return None


def corpus_scores(preds_of: dict[str, list[dict]], tests: dict[str, list[Utterance]], seeds: list[int]) -> dict:
    """Per left-out corpus the seed mean, std and bootstrap interval of act/val/dom CCC and UAR,
    and the mean over the corpora (± its std over seeds)."""
    row: dict = {}
    per_seed = []
    for corpus in CORPORA:
        preds, test = preds_of[corpus], tests[corpus]
        scores = fold_scores(preds, test)
        low, high = bootstrap(preds, test)
        per_seed.append(scores)
        row[corpus] = {"mean": np.nanmean(scores, 0).tolist(), "std": np.nanstd(scores, 0).tolist(),
                       "ci95": [low.tolist(), high.tolist()], "seeds": seeds}
    over_corpora = np.nanmean(np.array(per_seed), axis=0)  # [seeds, 4]: each seed's mean of the four
    row["mean_over_corpora"] = np.nanmean(over_corpora, 0).tolist()
    row["mean_over_corpora_std"] = np.nanstd(over_corpora, 0).tolist()
    return row


def summarise(out: Path, recipes: list[str]) -> dict[str, dict]:
    """The numbers of the table (what --json writes): per recipe the mixed protocol's scores at the
    top (corpus_scores), the same under every protocol in "protocols" (where measured), the seeds
    and the CPU (the runs' machine: this one)."""
    summary: dict[str, dict] = {}
    tests = {corpus: fold(corpus)[2] for corpus in CORPORA}  # read once, not once per recipe
    for name in recipes:
        seeds = saved_seeds(out, name)
        if not seeds:
            continue
        saved = {c: [dict(np.load(run_file(out, name, c, s))) for s in seeds] for c in CORPORA}
        protocols = {}
        for protocol in PROTOCOLS:
            preds = {c: [protocol_preds(run, protocol, RECIPES[name]) for run in runs] for c, runs in saved.items()}
            if all(p is not None for runs in preds.values() for p in runs):
                protocols[protocol] = corpus_scores(preds, tests, seeds)
        summary[name] = {"seeds": seeds, "cpu": cpu_model(), **protocols[DEFAULT_PROTOCOL], "protocols": protocols}
        heard = [i for i in range(len(seeds)) if all(has_channel_scores(runs[i]) for runs in saved.values())]
        if heard:  # the seeds whose runs were also scored through the channels, clean rows on the same seeds
            keys = {"as recorded": lambda p: p, **{c: lambda p, c=c: channel_key(p, c) for c in CHANNEL_NAMES}}
            summary[name]["channel_seeds"] = [seeds[i] for i in heard]
            summary[name]["channels"] = {
                channel: {p: corpus_scores({c: [protocol_preds(runs[i], key(p), RECIPES[name]) for i in heard]
                                            for c, runs in saved.items()}, tests, summary[name]["channel_seeds"])
                          for p in PROTOCOLS}
                for channel, key in keys.items()}
    return summary


def scores_alike(name: str) -> bool:
    """Whether recipe `name` has no running normaliser, so it scores a clip alike under every protocol."""
    return name in RECIPES and not RECIPES[name].stream_norm


def with_protocols(name: str, row: dict) -> dict:
    """`row`'s scores per protocol: as stored, or for a stored row of a recipe without stream
    normalisation (every protocol alike) its mixed scores under each."""
    if "protocols" in row:
        return row["protocols"]
    if scores_alike(name):
        mixed = {k: v for k, v in row.items() if k in CORPORA or k.startswith("mean_over_corpora")}
        return {p: mixed for p in PROTOCOLS}
    return {DEFAULT_PROTOCOL: row}


def worst(protocols: dict[str, dict]) -> list[float]:
    """Per metric, the lowest mean over the corpora among the protocols."""
    return np.nanmin(np.array([p["mean_over_corpora"] for p in protocols.values()]), axis=0).tolist()


def protocol_markdown(summary: dict[str, dict], recipes: list[str]) -> str:
    """Each recipe's mean over the left-out corpora under each protocol, and the worst of them per
    metric (README's headline); a protocol not measured for a recipe is "not measured", and a
    recipe without the running normaliser, which scores every clip alike, has one row for all."""
    lines = ["| recipe | protocol | act | val | dom | UAR | seeds |", "|---|---|---|---|---|---|---|"]
    for name in (r for r in recipes if r in summary):
        row, protocols = summary[name], with_protocols(name, summary[name])
        alike = scores_alike(name)
        for protocol in (DEFAULT_PROTOCOL,) if alike else PROTOCOLS:
            if protocol in protocols:
                p = protocols[protocol]
                cells = (f"{m:.3f}{spread(s, row)}" for m, s in zip(p["mean_over_corpora"], p["mean_over_corpora_std"]))
                lines.append(f"| {name} | {'every protocol' if alike else protocol} | " + " | ".join(cells)
                             + f" | {len(row['seeds'])} |")
            else:
                lines.append(f"| {name} | {protocol} | not measured | | | | |")
        if len(protocols) == len(PROTOCOLS):
            lines.append(f"| **{name}** | **worst** | " + " | ".join(f"**{m:.3f}**" for m in worst(protocols))
                         + f" | {len(row['seeds'])} |")
    return "\n".join(lines)


def merged(stored: dict[str, dict], measured: dict[str, dict]) -> dict[str, dict]:
    """The rows measured in this run replace the stored rows of the same recipes; the other stored
    rows stay (their runs may be on another machine), in RECIPES order."""
    rows = {**stored, **measured}
    return {name: rows[name] for name in RECIPES if name in rows}


def spread(std: float, row: dict) -> str:
    """' ± std' over the row's seeds; nothing for a single seed, whose std of 0 would claim a spread
    that was never measured."""
    return f" ± {std:.3f}" if len(row["seeds"]) > 1 else ""


def markdown(summary: dict[str, dict], recipes: list[str], per_corpus: bool = True) -> str:
    """The table of `summary`'s `recipes` (README and docs/results.md show exactly this, tested);
    without `per_corpus`, only each recipe's mean over the left-out corpora (README's ablations)."""
    lines = ["| recipe | left out | act | val | dom | UAR | seeds |", "|---|---|---|---|---|---|---|"]
    for name in (r for r in recipes if r in summary):
        row = summary[name]
        for corpus in CORPORA if per_corpus else ():
            c = row[corpus]
            cells = ("-" if np.isnan(m) else f"{m:.3f}{spread(s, row)} [{lo:.2f}, {hi:.2f}]"
                     for m, s, lo, hi in zip(c["mean"], c["std"], *c["ci95"]))
            lines.append(f"| {name} | {corpus} | " + " | ".join(cells) + f" | {len(row['seeds'])} |")
        cells = (f"**{m:.3f}**{spread(s, row)}" for m, s in zip(row["mean_over_corpora"], row["mean_over_corpora_std"]))
        lines.append(f"| **{name}** | mean of {len(CORPORA)} | " + " | ".join(cells) + f" | {len(row['seeds'])} |")
    return "\n".join(lines)


def table_groups(summary: dict[str, dict]) -> dict[str, list[str]]:
    """The recipes of the main table (MAIN) and of the ablation table, in `summary`'s order; a group
    with no row is left out."""
    groups = {"main": [r for r in summary if r in MAIN], "ablations": [r for r in summary if r not in MAIN]}
    return {key: rows for key, rows in groups.items() if rows}  # a run of ablations alone leaves the main table be


def protocol_recipes(summary: dict[str, dict]) -> list[str]:
    """The recipes of the protocol table: the main ones, and every one measured under all protocols."""
    return [r for r in summary if r in MAIN or len(with_protocols(r, summary[r])) == len(PROTOCOLS)]


def headline_recipes(summary: dict[str, dict]) -> list[str]:
    """README's rows: the shipped student before and after its distillation, and the shipped teacher."""
    return [r for r in (TRAINER_DEFAULTS.name, DEFAULT_STUDENT.name, SHIPPED_TEACHER) if r in summary]


def channel_markdown(summary: dict[str, dict], recipes: list[str]) -> str:
    """Each recipe's mean over the left-out corpora as recorded and through each channel, each the
    worst of the session protocols, and the worst of them all per metric; on the seeds whose runs
    were scored through the channels."""
    lines = ["| recipe | heard through | act | val | dom | UAR | seeds |", "|---|---|---|---|---|---|---|"]
    for name in recipes:
        heard = {channel: worst(protocols) for channel, protocols in summary[name]["channels"].items()}
        seeds = len(summary[name]["channel_seeds"])
        for channel, values in heard.items():
            lines.append(f"| {name} | {channel} | " + " | ".join(f"{m:.3f}" for m in values) + f" | {seeds} |")
        lowest = np.nanmin(np.array(list(heard.values())), axis=0)
        lines.append(f"| **{name}** | **worst** | " + " | ".join(f"**{m:.3f}**" for m in lowest) + f" | {seeds} |")
    return "\n".join(lines)


def per_protocol_markdown(summary: dict[str, dict], recipes: list[str]) -> str:
    """The per-corpus table (markdown) under the clip and sustained protocols, a recipe's row named
    "RECIPE [PROTOCOL]"; recipes not measured under a protocol are left out of it, and so are those
    without the running normaliser (their mixed rows hold for every protocol)."""
    view = {}
    for name in recipes:
        if scores_alike(name):
            continue
        for protocol, scores in with_protocols(name, summary[name]).items():
            if protocol != DEFAULT_PROTOCOL:
                view[f"{name} [{protocol}]"] = {**scores, "seeds": summary[name]["seeds"]}
    return markdown(view, list(view))


def rendered_tables(summary: dict[str, dict]) -> dict[str, str]:
    """Marker key -> table: "protocols" (means under each session protocol and the worst; "headline":
    the same for the shipped student before and after distillation and the shipped teacher), "main",
    "ablations" (per corpus, mixed protocol), "ablation-means" (means only), "protocol-corpora"
    (per corpus under the clip and sustained protocols) and "teacher" (the Whisper teachers, the
    trainer's defaults and the student distilled from the first teacher, per corpus)."""
    groups = table_groups(summary)
    tables = {key: markdown(summary, rows) for key, rows in groups.items()}
    if "ablations" in groups:
        tables["ablation-means"] = markdown(summary, groups["ablations"], per_corpus=False)
    tables["protocols"] = protocol_markdown(summary, protocol_recipes(summary))
    tables["headline"] = protocol_markdown(summary, headline_recipes(summary))  # README
    tables["protocol-corpora"] = per_protocol_markdown(summary, protocol_recipes(summary))
    tables["channels"] = channel_markdown(summary, [r for r in summary if "channels" in summary[r]])
    teachers = [r for r in (SHIPPED_TEACHER, FUSED_TEACHER, LAYER5_TEACHER, WHISPER_TEACHER, TRAINER_DEFAULTS.name,
                            f"{TRAINER_DEFAULTS.name}, distilled from the Whisper teacher") if r in summary]
    tables["teacher"] = markdown(summary, teachers)  # docs/teachers.md: the teacher beside the student
    return tables


def write_tables(paths: list[Path], summary: dict[str, dict]) -> None:
    """Put each table between the `<!-- generalisation:KEY -->` marker of a file that has it (KEY of
    rendered_tables; each closed by `<!-- /generalisation -->`): the docs show what was measured. A
    file with no marker is an error, not a silent no-op."""
    for path in paths:
        text = path.read_text()
        found = False
        for key, table in rendered_tables(summary).items():
            start = f"<!-- generalisation:{key} -->"
            if start not in text:
                continue
            found = True
            begin = text.index(start) + len(start)
            end = text.index("<!-- /generalisation -->", begin)
            text = text[:begin] + "\n" + table + "\n" + text[end:]
        if not found:
            raise SystemExit(f"{path}: no <!-- generalisation:KEY --> marker to write a table into")
        path.write_text(text)


def channel_copies(corpus: str, features: tuple[str, ...], viewed: tuple[tuple[str, bool], ...] = ()) -> str:
    """Every clip of `corpus` through every channel and, for each pretrained-stream spec in
    `features`, the embeddings of the clips as recorded and of their copies (one pass per file for
    a model's layers), and of the augmented views of each (spec, per session) in `viewed`, before
    the runs, which then only read them: two runs embedding the same clips at once would do it twice."""
    sources = {spec: EmbeddingFeatures(DEFAULT_EMBEDDING_CACHE, parse_streams(spec)) for spec in features}
    clips = [u for u in load_utterances(manifests()) if u.corpus == corpus]
    # each spec's encoder loaded once (on first need), not once per channel
    for paths in [[u.path for u in clips]] + [[u.path for u in left_out_through(corpus, c)] for c in CHANNEL_NAMES]:
        for source in sources.values():
            fill_layers(source.caches, paths, progress=False)
    for spec, per_session in viewed:
        sources[spec].views_for(clips, VIEWS, AugmentConfig(), progress=False, per_session=per_session)
    return corpus


def warm_cache(half: int, per_session: bool | None) -> int:
    """Compute (or find cached) the features of half the clips and, unless `per_session` is None,
    their augmented views: two halves in parallel, before the runs, which then only read them."""
    utts = load_utterances(manifests())
    cache = FeatureCache(DEFAULT_CACHE)
    mine = utts[half::2]
    cache.features_for(mine, progress=False)
    if per_session is not None:
        cache.views_for(mine, VIEWS, AugmentConfig(), progress=False, per_session=per_session)
    return len(mine)


def main() -> None:
    # a corpus without valence labels (BAVED) is NaN by design: its empty means are not news
    warnings.filterwarnings("ignore", "Mean of empty slice|Degrees of freedom|All-NaN slice", RuntimeWarning)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    ap.add_argument("--ablation-seeds", type=int, nargs="+", default=[0],
                    help="seeds of the 'new - X' ablation rows (the old and new recipes use --seeds)")
    ap.add_argument("--jobs", type=int, default=2, help="training runs in parallel, one thread each")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "generalisation")
    ap.add_argument("--json", type=Path, default=None,
                    help="also write the table's numbers here; its rows of recipes not measured now are kept")
    ap.add_argument("--table-only", action="store_true", help="print the table from saved runs, train nothing")
    ap.add_argument("--channels", action="store_true",
                    help="train again the runs saved before their channel scores, to add them")
    ap.add_argument("--docs", type=Path, nargs="+", default=[],
                    help="also write the tables into these Markdown files, between their generalisation markers")
    args = ap.parse_args()
    seeds_of = {r: (args.seeds if r in MAIN else args.ablation_seeds) for r in args.recipes}
    if not args.table_only:
        with ProcessPoolExecutor(args.jobs) as pool:
            kinds = sorted({RECIPES[r].session_channels for r in args.recipes if RECIPES[r].features == MFB
                            and (RECIPES[r].views or RECIPES[r].teacher_hidden)}) or [None]
            list(pool.map(warm_cache, [0, 1] * len(kinds), [k for k in kinds for _ in range(2)]))
            # the recipes' own embeddings and those of the teachers they are distilled from
            heard = [RECIPES[r] for r in args.recipes] + [RECIPES[RECIPES[r].distil_from] for r in args.recipes
                                                           if RECIPES[r].distil_from]
            embedded = tuple(sorted({r.features for r in heard} - {MFB}))
            viewed = tuple(sorted({(r.features, r.session_channels) for r in heard if r.features != MFB and r.views}))
            list(pool.map(channel_copies, CORPORA, [embedded] * len(CORPORA), [viewed] * len(CORPORA)))
            # the cross-fitted teachers first: each serves two folds
            pairs = sorted({(RECIPES[r].distil_from, pair, s) for r in args.recipes if RECIPES[r].distil_avd
                            for s in seeds_of[r] for c in CORPORA for pair in crossfit_pairs(c)})
            for line in pool.map(crossfit_teacher, *zip(*[(args.out, *p) for p in pairs])) if pairs else []:
                print(line, flush=True)
            # seed by seed over every recipe asked for: an interrupted benchmark has all rows at the same seeds
            jobs = [(args.out, r, c, s, args.channels) for s in sorted(set().union(*seeds_of.values()))
                    for r in args.recipes if s in seeds_of[r] for c in CORPORA]
            for line in pool.map(run, *zip(*jobs)):
                print(line, flush=True)
    summary = summarise(args.out, args.recipes)
    if args.json and args.json.exists():
        summary = merged(json.loads(args.json.read_text()), summary)
    if not summary:  # --table-only over an empty or mistyped --out had printed an empty table, exit 0
        raise SystemExit(f"generalisation: no saved runs of the {len(args.recipes)} recipe(s) asked for under "
                         f"{args.out}: run without --table-only to train them, or give the --out they were saved under")
    print("Leave-one-corpus-out, CCC (act/val/dom) and UAR, mean ± std over seeds [bootstrap 95 % over "
          "left-out speakers]; each row uses every seed saved under --out for all four left-out corpora")
    print("\n\n".join(markdown(summary, rows) for rows in table_groups(summary).values()))
    heard = [r for r in summary if "channels" in summary[r]]
    if heard:
        print("\nThrough each channel (worst session protocol):\n" + channel_markdown(summary, heard))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    write_tables(args.docs, summary)


if __name__ == "__main__":
    main()
