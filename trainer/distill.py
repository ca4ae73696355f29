"""Feature distillation (paper 3.4, eq. 3-5): a student learns a teacher's utterance embedding
(and, with `avd_weight`, the teacher's A/V/D estimates: DistillObjective).

The loss is kappa (L_ccc + L_CE) + lambda L_dis, with L_dis the gamma-weighted cosine distance
between student and teacher embeddings (trainer.losses.DistillationLoss). The paper's schedule:
kappa = 0.001, lambda = 1 for the first 40 epochs, then kappa = 1, lambda = 0.01.

Which input the teacher sees: the teacher runs once per whole utterance and its outputs are
cached, so a teacher as costly as HuBERT runs once, not once per crop and epoch. While
distillation dominates (epochs before the switch) the student also trains on whole utterances,
so both embed exactly the same input. After the switch the student returns to the training crops
(the live window length), and the weak lambda term treats the teacher embedding as it already
treats the labels: an utterance-level target for any crop of the utterance. Model selection and
early stopping consider only epochs from the switch on, when the task loss has its full weight.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save

from emolive.engine.plugin import ModelPlugin, check_model_exists, load_model, registered_models
from emolive.engine.schema import DIMENSIONS
from emolive.trainer import distributed
from emolive.trainer.data import Utterance
from emolive.trainer.data.cache import file_key
from emolive.trainer.data.splits import learned_splits
from emolive.trainer.evaluate import predict_utterances
from emolive.trainer.losses import DistillationLoss, pearson, within_groups
from emolive.trainer.config import TrainConfig
from emolive.trainer.labelled import LabelledSet, clip_names
from emolive.trainer.errors import TrainerError
from emolive.trainer.whole_files import replace_whole
from emolive.trainer.history import bundle_splits
from emolive.trainer.options import same_named
from emolive.trainer.sampling import corpus_ids

log = logging.getLogger(__name__)


DISTILL_EPOCHS = 100  # `trainer distill`'s default: the paper's 40 epochs of distillation, then 60 of the task


@dataclass(frozen=True)
class DistillConfig:
    """Eq. 5's weights before and after `switch_epoch` (the paper's values are the defaults), and
    the teachers: `teacher` (a model plugin name or bundle path) for every corpus without its own in
    `teachers_for` ((corpus, teacher) pairs: cross-fitting, each corpus taught by a teacher that
    never learned its clips)."""

    kappa_early: float = 0.001
    lambda_early: float = 1.0
    switch_epoch: int = 40
    kappa: float = 1.0
    lambda_: float = 0.01
    teacher: str | None = "teacher"
    teachers_for: tuple[tuple[str, str], ...] = ()
    projector: bool = False  # compare a learnt linear map of the student's embedding, not the embedding itself
    # > 0: also the correlation of the student's A/V/D with the teacher's, this weight in every epoch
    avd_weight: float = 0.0
    avd_dims: tuple[str, ...] = DIMENSIONS  # the dimensions that term teaches

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> DistillConfig:
        return same_named(cls, args)

    @property
    def distils_embedding(self) -> bool:
        """Whether L_dis weighs anything in some epoch (else only the A/V/D term reads the teacher)."""
        return self.lambda_early > 0 or self.lambda_ > 0

    def weights(self, epoch: int) -> tuple[float, float]:
        """(kappa, lambda) in this epoch."""
        if epoch < self.switch_epoch:
            return self.kappa_early, self.lambda_early
        return self.kappa, self.lambda_


@dataclass(frozen=True)
class TeacherTargets:
    """The teacher's whole-utterance outputs, row i for training utterance i."""

    embedding: np.ndarray  # float32[N, E]
    avd: np.ndarray  # float32[N, 3]


def teacher_digest(plugin: ModelPlugin) -> str:
    """Identity of a teacher: the bytes of its bundle's files, else its name and metadata."""
    h = hashlib.sha256()
    path = getattr(plugin, "path", None)
    if path is not None and Path(path).is_dir():
        for f in sorted(p for p in Path(path).iterdir() if p.is_file()):
            h.update(os.fsencode(f.name) + b"\0" + hashlib.sha256(f.read_bytes()).digest())
    else:
        h.update(f"{plugin.name}\0{plugin.meta!r}".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def data_digest(keys: list[str]) -> str:
    """Identity of the data, in order: the audio files' cache keys (trainer.data.cache.audio_key)."""
    h = hashlib.sha256()
    for key in keys:
        h.update(bytes.fromhex(key))
    return h.hexdigest()


# how targets are made, in the cache key: "2" since a teacher reading samples hears only those its frames
# cover (trainer.evaluate), so targets made before, of every sample, are not served again
TARGETS_VERSION = "2"


def teacher_targets(plugin: ModelPlugin, utts: list[Utterance], cache_root: str | Path,
                    ctx: distributed.Context | None = None, digest: str | None = None) -> TeacherTargets:
    """The teacher's outputs on every utterance, computed once (sharded over ranks) and cached.

    Entries are safetensors files keyed by teacher and data digests, so a retrained teacher or a
    changed file list can never serve stale targets (nor, for a teacher with the running normaliser,
    another grouping of the clips into speakers' sessions). Each file is hashed once: its key names its
    cached features too. `digest`: the teacher's, if the caller has it already.
    """
    ctx = ctx or distributed.context()
    keys = [file_key(u.path) for u in utts]
    identity = (digest or teacher_digest(plugin)) + data_digest(keys) + TARGETS_VERSION
    if plugin.meta.stream_normalisation is not None:  # it hears each speaker's clips, in their paths' order,
        # as one session: the same audio grouped into other speakers was served another grouping's targets
        sessions = "\n".join(f"{u.speaker}\t{name}" for u, name in zip(utts, clip_names(utts)))
        identity += hashlib.sha256(sessions.encode("utf-8", "surrogateescape")).hexdigest()
    key = hashlib.sha256(identity.encode()).hexdigest()[:32]
    entry = Path(cache_root) / "teacher" / f"{key}.safetensors"
    if entry.is_file():
        return TeacherTargets(**load_file(str(entry)))
    if plugin.meta.stream_normalisation is not None:
        # a stream-normalised teacher hears each speaker as one session: a shard by clip would cut
        # sessions apart, so every rank computes all (the student teachers this applies to are cheap)
        whole = predict_utterances(plugin, utts, cache_root, progress=ctx.is_main, keys=keys)
        targets = TeacherTargets(**{k: whole[k].astype(np.float32) for k in ("embedding", "avd")})
    else:
        mine = predict_utterances(plugin, distributed.shard(utts, ctx), cache_root, progress=ctx.is_main,
                                  keys=distributed.shard(keys, ctx))
        parts = distributed.gather({k: mine[k] for k in ("embedding", "avd")}, ctx)
        targets = TeacherTargets(**{k: distributed.unshard([p[k] for p in parts]).astype(np.float32)
                                    for k in ("embedding", "avd")})
    if ctx.is_main:
        entry.parent.mkdir(parents=True, exist_ok=True)
        replace_whole(entry, save(asdict(targets)), "the teacher's targets")
    return targets


def centred_by_stream(targets: TeacherTargets, streams: list[str]) -> TeacherTargets:
    """The teacher's embeddings less the mean embedding of their stream (speaker); A/V/D unchanged.

    Why: a student with the running normaliser hears every speaker relative to that speaker's own
    voice, so it cannot reproduce what the teacher's embedding says about the speaker, recording
    or corpus as a whole; asked to, it spends capacity on cues that do not carry to a new corpus.
    Centred per stream, the target keeps what moves within a speaker: the emotion.
    """
    embedding = targets.embedding.copy()
    keys = np.asarray(streams)
    for stream in np.unique(keys):
        rows = keys == stream
        embedding[rows] -= embedding[rows].mean(axis=0)
    return replace(targets, embedding=embedding)


class DistillObjective:
    """Eq. 5 as a `trainer.train.Objective`: kappa (L_ccc + L_CE) + lambda L_dis, per epoch, plus
    `cfg.avd_weight` times how far the student's A/V/D are from correlating with the teacher's.

    With `cfg.projector`, L_dis compares the teacher's embedding with a linear map of the student's
    (`module`, trained beside the student and not exported), as FitNets' regressor does: the map,
    not the student's own embedding that its heads read, has to take the teacher's shape.

    The A/V/D term is output distillation (Hinton et al.'s soft targets, read as regression): the
    teacher's estimates exist for every clip, also where a dimension has no label (BAVED's
    valence). It is 1 - the Pearson correlation within each corpus of the batch (`groups`), mean
    over the dimensions `cfg.avd_dims`: where a teacher's estimates for a corpus are shifted or
    squeezed as a whole, that is its error on the recording set, not emotion, so only the order
    and proportion within a corpus are taught; the labels keep setting location and scale.
    Targets are worth learning only where the teacher had not seen the clip: its estimates on its
    own training clips are close to the labels the task loss already has.
    """

    def __init__(self, targets: TeacherTargets, labels: np.ndarray, cfg: DistillConfig,
                 student_dim: int | None = None, groups: np.ndarray | None = None) -> None:
        self.embedding = torch.from_numpy(targets.embedding)
        self.teacher_avd = torch.from_numpy(targets.avd)
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.float32))
        groups = np.zeros(len(targets.avd)) if groups is None else groups
        self.groups = torch.from_numpy(np.asarray(groups, dtype=np.int64))
        self.cfg, self.distance = cfg, DistillationLoss()
        self.taught = torch.tensor([d in cfg.avd_dims for d in DIMENSIONS])
        self.module: torch.nn.Module | None = None
        if cfg.projector:
            with torch.random.fork_rng():  # the same map for the same run, whatever ran before
                torch.manual_seed(0)
                self.module = torch.nn.Linear(student_dim or targets.embedding.shape[1], targets.embedding.shape[1])
        digest = hashlib.sha256(targets.embedding.tobytes() + targets.avd.tobytes()).hexdigest()
        self.identity = {"distill": asdict(cfg), "teacher_targets": digest}  # what a resumed run must match

    def __call__(self, outputs: dict[str, torch.Tensor], task: dict[str, torch.Tensor], idx: np.ndarray,
                 epoch: int) -> torch.Tensor:
        kappa, lam = self.cfg.weights(epoch)
        rows = torch.from_numpy(np.asarray(idx))
        device = task["loss"].device
        teacher_avd = self.teacher_avd[rows].to(device)
        loss = kappa * task["loss"]
        if lam > 0:
            student = outputs["embedding"] if self.module is None else self.module(outputs["embedding"])
            loss = loss + lam * self.distance(student, self.embedding[rows].to(device), self.labels[rows].to(device),
                                              teacher_avd)
        if self.cfg.avd_weight > 0:
            correlation, usable = within_groups(outputs["avd"], teacher_avd, self.groups[rows].to(device), pearson)
            usable = usable & self.taught.to(device)
            if usable.any():
                loss = loss + self.cfg.avd_weight * (1 - correlation[usable].mean())
        return loss


def check_schedule(dcfg: DistillConfig, epochs: int) -> None:
    """The model is selected from the epochs after the switch: `epochs` must leave one (`trainer
    distill` checks it before any feature is computed, setup_distillation for other callers)."""
    if epochs <= dcfg.switch_epoch:
        raise TrainerError(f"--epochs {epochs} leaves no epoch after --switch-epoch {dcfg.switch_epoch} "
                           "to select the model from")


def corpora_of(utts: list[Utterance]) -> list[str]:
    """The corpora of `utts`, in the order they first appear."""
    return list(dict.fromkeys(u.corpus for u in utts))


def teachers_of_corpora(dcfg: DistillConfig, corpora: list[str]) -> dict[str, str]:
    """The teacher of each training corpus: its own from `teachers_for`, else `teacher`; only A/V/D
    can be taught by more than one."""
    own = dict(dcfg.teachers_for)
    twice = [c for c, n in Counter(c for c, _ in dcfg.teachers_for).items() if n > 1]
    if twice:
        raise TrainerError(f"--teacher-for {twice[0]} is given twice: one teacher per corpus")
    unknown = sorted(set(own) - set(corpora))
    if unknown:
        raise TrainerError(f"--teacher-for {unknown[0]}: the training data has no corpus of that name "
                           f"(it has {', '.join(corpora)})")
    untaught = [c for c in corpora if c not in own and dcfg.teacher is None]
    if dcfg.teacher is not None and corpora and set(corpora) <= set(own):  # refused, not recorded as a teacher
        raise TrainerError(f"--teacher {dcfg.teacher} teaches no corpus: each has its own --teacher-for; leave "
                           "--teacher out (it was recorded as the student's teacher though it taught nothing)")
    if untaught:
        raise TrainerError(f"no teacher for corpus {untaught[0]}: give --teacher MODEL or "
                           f"--teacher-for {untaught[0]}=MODEL")
    teacher_of = {c: own.get(c, dcfg.teacher) for c in corpora}
    if len(set(teacher_of.values())) > 1 and dcfg.distils_embedding:
        raise TrainerError("several teachers' embeddings are not comparable: with --teacher-for give --lambda-early 0 "
                           "--lambda 0 and teach their estimates (--avd-weight)")
    return teacher_of


def check_teachers(dcfg: DistillConfig, utts: list[Utterance]) -> None:
    """What the teachers' names already tell about training on `utts`, found before any feature is
    computed (pipeline.fit): the teachers teach something (with every teaching weight 0 they were
    run and recorded as teachers of a student that learnt nothing of them), every corpus has one
    teacher, and every teacher names a model."""
    if not dcfg.distils_embedding and dcfg.avd_weight == 0:
        raise TrainerError("--lambda-early 0 --lambda 0 without --avd-weight teaches nothing of the teacher: give "
                           "--avd-weight W to teach its A/V/D estimates, or train without one (trainer train)")
    for teacher in set(teachers_of_corpora(dcfg, corpora_of(utts)).values()):
        check_model_exists(teacher)


def check_not_a_teacher(out: Path, dcfg: DistillConfig) -> None:
    """The student's --out must not be a teacher's bundle folder: writing the student there replaced
    the teacher, and the student's record named a teacher digest that no longer existed."""
    for teacher in {dcfg.teacher, *(model for _, model in dcfg.teachers_for)} - {None}:
        if teacher in registered_models():  # a name is the installed model, not a folder of that name here
            continue
        if out.exists() and os.path.exists(teacher) and os.path.samefile(out, teacher):
            raise TrainerError(f"--out {out} is the teacher's bundle ({teacher}): write the student to another folder")


def check_unheard(plugin: ModelPlugin, teacher: str, corpus: str, utts: list[Utterance]) -> None:
    """A corpus's own teacher must not have learned its clips (its bundle's splits and learned
    clips say which it did): its estimates there would be near the labels, not what it knows. A
    bundle without splits.csv cannot say: warned."""
    splits = bundle_splits(plugin)
    if splits is None:  # a copied or older bundle: passed as unheard without a word
        log.warning("--teacher-for %s=%s: that teacher's bundle has no splits.csv, so whether it learned %s's "
                    "clips cannot be checked; a teacher that did teaches their labels", corpus, teacher, corpus)
    learned = [] if splits is None else [u for u, split in zip(utts, learned_splits(splits, utts)) if split]
    if learned:
        raise TrainerError(f"--teacher-for {corpus}={teacher}: that teacher learned {len(learned)} of {corpus}'s "
                           f"{len(utts)} clips (e.g. {learned[0].path}); train it without {corpus}")


def heard_held_out(plugin: ModelPlugin, teacher: str, held_out: list[Utterance],
                   trained: set[str]) -> int | None:
    """How many of the run's held-out clips the teacher learned (its splits.csv and learned clips say);
    None where its bundle cannot say. Said when any: what it learned of them reaches the student through
    its targets, so the student's scores there are not wholly held out. A teacher trained on another
    speaker split (a cross-fitted one, drawn over other corpora) had held the student's test speakers
    without a word. A clip the teacher only validated on (it was fitted on "train" alone) that the student
    validates on too is not counted: trained on the student's split (`--splits`), both pick their epoch on
    the same speakers. A teacher fitted on its validation clips too (`--train-on train+val`) learned them."""
    splits = bundle_splits(plugin)
    if splits is None:  # recorded as unknown (null), which a --teacher had been without a word
        log.warning("teacher %s: its bundle has no splits.csv, so whether it learned any of the %d clips this run "
                    "holds out cannot be checked; a teacher that did passes their labels on", teacher, len(held_out))
        return None
    validated_only = plugin.meta.training.get("fit_on") == "train"
    learned = [(u, split) for u, split in zip(held_out, learned_splits(splits, held_out))
               if split == "train" or (split == "val" and not (validated_only and u.split == "val"))]
    if learned:
        clips = [u for u, _ in learned]
        # a validation clip of both runs: the split was shared, the teacher fitted on its validation clips too
        shared = [split == "val" and u.split == "val" for u, split in learned]
        log.warning("teacher %s learned %d of the %d clips this run holds out (validation and test; %d speakers, "
                    "e.g. %s): what it learned of them reaches the student through its targets, so its scores "
                    "there are not wholly held out; %s", teacher, len(clips), len(held_out),
                    len({u.speaker for u in clips}), clips[0].speaker,
                    leak_cure(clips, trained, other_split=not all(shared), fitted_on_val=any(shared)))
    return len(learned)


def leak_cure(learned: list[Utterance], trained: set[str], other_split: bool = True,
              fitted_on_val: bool = False) -> str:
    """What keeps a teacher off the held-out clips it `learned`: this run's split (--splits) where it drew
    another one (`other_split`); its training split alone where it shared this run's split and was fitted
    on its validation clips too (`fitted_on_val`: --splits was then the wrong advice); and for a corpus
    the run holds out whole (none of its clips among the `trained` corpora's: --test-data, whose clips
    are all "test" whatever a split file says), a teacher trained without that corpus."""
    cures = [*(["train the teacher on this run's split (--splits)"] if other_split else []),
             *(["fit the teacher on its training split alone (--train-on train)"] if fitted_on_val else [])]
    cure = " and ".join(cures) + " to avoid it"
    whole = sorted({u.corpus for u in learned} - trained)
    if not whole:
        return cure
    return f"{cure}, and without {', '.join(whole)} where this run holds it out whole (--test-data)"


def setup_distillation(dcfg: DistillConfig, train_set: LabelledSet, cfg: TrainConfig, cache_root: str | Path,
                       held_out: list[Utterance] = ()) -> tuple[TrainConfig, DistillObjective, dict]:
    """Teacher targets for the training set, the objective, and the training config for it. A teacher
    that learned clips of `held_out` (the run's validation and test clips) is said, and recorded.

    With one teacher its embeddings and A/V/D are the targets. With several (`teachers_for`) their
    embeddings live in different spaces, so only their A/V/D are taught (L_dis must weigh nothing)."""
    check_schedule(dcfg, cfg.epochs)
    utts = train_set.utterances
    teacher_of = teachers_of_corpora(dcfg, corpora_of(utts))
    teachers = list(dict.fromkeys(teacher_of.values()))
    own = dict(dcfg.teachers_for)
    avd, records = np.zeros((len(utts), len(DIMENSIONS)), np.float32), []
    for teacher in teachers:
        plugin = load_model(teacher)
        taught = [c for c, t in teacher_of.items() if t == teacher]
        rows = [i for i, u in enumerate(utts) if u.corpus in taught]
        for corpus in taught:
            if corpus in own:
                check_unheard(plugin, teacher, corpus, [u for u in utts if u.corpus == corpus])
        digest = teacher_digest(plugin)
        targets = teacher_targets(plugin, [utts[i] for i in rows], cache_root, digest=digest)
        avd[rows] = targets.avd
        # what each teacher read: its pretrained streams (model, layer, weights sha256) where it has them
        learned = heard_held_out(plugin, teacher, list(held_out), set(teacher_of))
        records.append({"name": teacher, "digest": digest, "streams": plugin.meta.hyperparameters.get("streams"),
                        "taught": taught, "learned_held_out": learned})
    embedding = targets.embedding if len(teachers) == 1 else np.zeros((len(utts), 0), np.float32)
    if embedding.shape[1] != cfg.embedding_dim and dcfg.distils_embedding and not dcfg.projector:
        raise TrainerError(f"teacher {teachers[0]} has a {embedding.shape[1]}-dim embedding but the student's "
                           f"is {cfg.embedding_dim}; add --projector, or use a teacher with a {cfg.embedding_dim}-dim "
                           "embedding layer")
    cfg = replace(cfg, whole_epochs=dcfg.switch_epoch, select_from=dcfg.switch_epoch)
    info = {"teachers": records, **asdict(dcfg)}
    return cfg, DistillObjective(TeacherTargets(embedding, avd), train_set.avd, dcfg, cfg.embedding_dim,
                                 corpus_ids(utts)), info
