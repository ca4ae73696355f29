"""Training loop for the student models: CCC + 0.2 CE, Adam, early stopping on validation CCC.

What generalises to unseen voices (benchmarks/generalisation.py measures each piece):
- per-stream normalisation (engine.features.normalise): each speaker's clips go through the live
  engine's running normaliser, in a new random order every epoch, as one session;
- balanced sampling: every training corpus contributes the same share of each epoch.
Augmented views (off by default: measured, they cost valence): each clip may have feature "views"
of the same audio through another room, microphone or speed (trainer.data.augment); an epoch
picks one per clip at random, or one per speaker session (`session_channels`).
Labels may be partial (NaN): losses and metrics mask them (trainer.losses).
The loop's parts: trainer.config (its options), trainer.labelled (the sets and their scoring),
trainer.sampling (what each epoch draws).
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from emolive.engine.features.normalise import StreamNormConfig
from emolive.plugins.student import ARCHITECTURES, StudentModel
from emolive.trainer import distributed
from emolive.trainer.adversary import CorpusAdversary
from emolive.trainer.checkpoint import CHECKPOINT_FILE, Progress, TrainingInterrupted, load_checkpoint, save_checkpoint
from emolive.trainer.config import TrainConfig
from emolive.trainer.data import Utterance, feature_stats
from emolive.trainer.errors import TrainerError
from emolive.trainer.labelled import LabelledSet, pad_batch, score, session_features, unmeasurable
from emolive.trainer.losses import CCCLoss, MultitaskLoss
from emolive.trainer.metrics import ccc_text
from emolive.trainer.sampling import (corpus_ids, corpus_weights, crop_starts, epoch_features, epoch_order, lead_ins,
                                      with_lead_in)


Objective = Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor], np.ndarray, int], torch.Tensor]
"""(the batch's outputs, MultitaskLoss terms, its utterance indices, epoch) -> the loss to minimise.

How `train` takes an extra term (distillation) without a second copy of the loop."""

# the option that adds each kind of weights training beside the student (train's `extra`)
EXTRA_WEIGHTS_OPTION = {"adversary": "--corpus-adversary", "objective": "--projector"}
VALIDATION_FIX = ("give some speakers the split 'val' in the data or the --splits file (dev, development and "
                  "validation read as val) or, for clips without a split, a --val-frac above 0")


@dataclass
class TrainResult:
    model: StudentModel
    best_epoch: int
    val_ccc: list[float]
    history: list[dict] = field(default_factory=list)
    utterances_per_s: float = 0.0
    epoch_seconds: float = 0.0
    stream_normalisation: StreamNormConfig | None = None


@dataclass(frozen=True)
class Checkpointing:
    """Where `train` writes its end-of-epoch checkpoint, and whether to continue from it (trainer.checkpoint)."""

    directory: Path
    resume: bool = False


def train(train_set: LabelledSet, val_set: LabelledSet, class_names: list[str], cfg: TrainConfig,
          frame_rate: float = 50.0, log=print, objective: Objective | None = None,
          ctx: distributed.Context | None = None, checkpoint: Checkpointing | None = None) -> TrainResult:
    """Train one model; the returned model holds the weights of the best validation epoch.

    `objective` replaces the multi-task loss (it receives its terms). Under torchrun (`ctx`, by
    default the current process group) each rank runs a slice of every batch and the result equals
    one process's: see trainer.distributed. With `checkpoint`, the main rank saves the loop's state
    after every epoch, and `resume` continues from it to the same result as an uninterrupted run;
    Ctrl-C then raises TrainingInterrupted naming the checkpoint.
    """
    check_targets(train_set.utterances, val_set.utterances)
    ctx = ctx or distributed.context()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    n_classes = len(class_names) if cfg.multitask else 0
    norm = StreamNormConfig.from_features(train_set.features, prior_s=cfg.norm_prior_s,
                                          time_constant_s=cfg.norm_time_constant_s,
                                          level_columns=cfg.gain_dims if cfg.norm_stream_level else 0
                                          ) if cfg.stream_norm else None
    # the running normaliser removes a microphone's gain itself; remove_gain would do it twice
    gain_dims = 0 if norm else cfg.gain_dims
    model = ARCHITECTURES[cfg.arch](train_set.features[0].shape[1], n_classes=n_classes, hidden=cfg.hidden,
                                    embedding_dim=cfg.embedding_dim, gain_dims=gain_dims, dropout=cfg.dropout)
    mean, std = feature_stats(session_features(train_set.features, train_set.streams, norm, train_set.clips))
    model.set_normalisation(torch.from_numpy(mean), torch.from_numpy(std))
    adversary = corpus_adversary(train_set, cfg)
    # what the optimiser and the checkpoint hold: the student, and the weights that train beside it
    # (the corpus adversary, a distillation projector), which DDP does not average across ranks
    extra = {name: m for name, m in (("adversary", adversary), ("objective", getattr(objective, "module", None)))
             if m is not None}
    if extra and ctx.world_size > 1:
        raise TrainerError(f"{' and '.join(EXTRA_WEIGHTS_OPTION[name] for name in extra)} train weights beside the "
                           "student, which torchrun does not average: train in one process, without torchrun")
    trained = torch.nn.ModuleDict({"student": model, **extra}) if extra else model
    trained.to(ctx.device)
    opt = torch.optim.Adam(trained.parameters(), lr=cfg.lr)
    identity = run_identity(train_set, val_set, class_names, cfg, objective)
    progress = Progress()
    if checkpoint and checkpoint.resume:
        progress = load_checkpoint(checkpoint.directory, trained, opt, rng, identity)
        if progress.next_epoch > cfg.epochs:  # its history and best epoch would lie beyond what was asked
            raise TrainerError(f"{checkpoint.directory / CHECKPOINT_FILE} holds {progress.next_epoch} epochs, more than "
                               f"--epochs {cfg.epochs}: resume with --epochs {progress.next_epoch} or more")
        log(f"resumed from {checkpoint.directory / CHECKPOINT_FILE} after epoch {progress.next_epoch - 1}")
    net = distributed.wrap(model, ctx)
    saved = progress.next_epoch - 1  # the last epoch on disk
    try:
        while progress.next_epoch < cfg.epochs and not progress.stopped:
            run_epoch(net, model, opt, train_set, val_set, cfg, norm, rng, progress, frame_rate, log, objective, ctx,
                      adversary)
            if checkpoint and ctx.is_main:
                save_checkpoint(checkpoint.directory, trained, opt, progress, rng, identity)
                saved = progress.next_epoch - 1
    except KeyboardInterrupt:
        if checkpoint is None:
            raise
        where = checkpoint.directory / CHECKPOINT_FILE
        raise TrainingInterrupted(f"the checkpoint after epoch {saved} is {where}; add --resume to continue"
                                  if saved >= 0 else "in the first epoch, before any checkpoint") from None
    if progress.best_state is None:
        raise TrainerError(unselected(progress.history, cfg))
    model.load_state_dict(progress.best_state)
    model.eval()
    history = progress.history
    return TrainResult(model, progress.best_epoch, history[progress.best_epoch]["val_ccc"], history,
                       utterances_per_s=progress.seen / progress.busy, epoch_seconds=progress.busy / len(history),
                       stream_normalisation=norm)


def check_targets(train_utts: list[Utterance], val_utts: list[Utterance]) -> None:
    """Refuse, before any epoch, clips that cannot train a model or select one: no training or no
    validation clips, or a set with no dimension a CCC can measure (trainer.labelled.unmeasurable).
    Such training clips teach no estimate, and such validation clips score NaN in every epoch: the run
    ended, after all its training, with nothing to select. `fit` calls this before featurising."""
    if not train_utts:
        raise TrainerError("no training clips: give some speakers the split 'train' in the data or the --splits file")
    if not val_utts:
        raise TrainerError(f"no validation clips (split 'val'), which early stopping needs: {VALIDATION_FIX}")
    for role, utts in (("training", train_utts), ("validation", val_utts)):
        reason = unmeasurable(utts)
        if reason:
            raise TrainerError(f"the {len(utts)} {role} clips have no target a CCC can measure: {reason}; a CCC "
                               "needs labels that differ: add clips of other emotions, or ratings (activation, "
                               "valence, dominance) for emotions the VAD map does not know")


def unselected(history: list[dict], cfg: TrainConfig) -> str:
    """Why no epoch was selected: none ran from `cfg.select_from` on, or every one scored NaN. The
    targets were measurable (check_targets), so a NaN score means the estimates were not finite."""
    if len(history) <= cfg.select_from:
        return f"no epoch to select: --epochs {cfg.epochs} must exceed the first selectable epoch {cfg.select_from}"
    return (f"the validation CCC could not be measured in any epoch from {cfg.select_from} to {len(history) - 1}: "
            "the model's estimates were not finite (training diverged: try a lower --lr)")


def selection_score(val_ccc: list[float]) -> float:
    """The mean validation CCC over the dimensions it measured (a dimension the validation speakers
    lack does not count); NaN, without numpy's empty-mean warning, when it measured none."""
    measured = [c for c in val_ccc if math.isfinite(c)]
    return float(np.mean(measured)) if measured else math.nan


def corpus_adversary(train_set: LabelledSet, cfg: TrainConfig) -> CorpusAdversary | None:
    """The corpus classifier of `cfg.corpus_adversary` (None when off)."""
    if not cfg.corpus_adversary:
        return None
    return CorpusAdversary(cfg.embedding_dim, train_set.utterances, cfg.corpus_adversary)


def run_epoch(net: torch.nn.Module, model: StudentModel, opt: torch.optim.Optimizer, train_set: LabelledSet,
              val_set: LabelledSet, cfg: TrainConfig, norm: StreamNormConfig | None, rng: np.random.Generator,
              progress: Progress, frame_rate: float, log, objective: Objective | None, ctx: distributed.Context,
              adversary: CorpusAdversary | None) -> None:
    """One epoch of training and its validation; updates `progress` (best model, early stopping)."""
    epoch = progress.next_epoch
    loss_fn = MultitaskLoss(CCCLoss(cfg.ccc_alpha, cfg.ccc_beta), ce_weight=cfg.ce_weight)
    crop = int(round(cfg.crop_s * frame_rate))
    weights = corpus_weights(train_set.utterances, cfg.balance_quadrants) if cfg.balance_corpora else None
    corpus = torch.from_numpy(corpus_ids(train_set.utterances)) if cfg.ccc_per_corpus else None
    # drop a last batch smaller than this: CCC needs two values, and every rank needs one
    smallest = max(2, ctx.world_size)
    model.train()
    t0 = time.perf_counter()
    loss_sum, steps = 0.0, 0
    order = epoch_order(rng, len(train_set), cfg.epoch_clips, weights)
    whole = epoch < cfg.whole_epochs
    features = epoch_features(train_set, cfg, norm, epoch)
    starts = crop_starts(np.array([len(f) for f in features]), crop, cfg.seed, epoch,  # views differ in length
                         int(round(cfg.start_jitter_s * frame_rate)))
    lead_frames, lead_from = lead_ins(len(features), int(round(cfg.lead_in_s * frame_rate)), cfg.seed, epoch)
    for i in range(0, len(order) - smallest + 1, cfg.batch_size):
        idx = order[i:i + cfg.batch_size]
        slices = distributed.batch_slices(len(idx), ctx)
        mine = idx[slices[ctx.rank]]
        crops = [features[j] if whole else features[j][starts[j]:starts[j] + crop] for j in mine]
        led = [with_lead_in(c, features[lead_from[j]], lead_frames[j]) for c, j in zip(crops, mine)]
        x, lengths = pad_batch([frames for frames, _ in led])
        lead = torch.tensor([skip for _, skip in led], dtype=torch.long)
        local = net(x.to(ctx.device), lengths.to(ctx.device), lead.to(ctx.device) if cfg.lead_in_s else None)
        sizes = [s.stop - s.start for s in slices]
        out = {k: distributed.gather_rows(v, sizes, ctx) for k, v in local.items()}
        losses = loss_fn(out, torch.from_numpy(train_set.avd[idx]).to(ctx.device),
                         torch.from_numpy(train_set.classes[idx]).to(ctx.device),
                         None if corpus is None else corpus[idx].to(ctx.device))
        loss = objective(out, losses, idx, epoch) if objective else losses["loss"]
        if adversary is not None:
            loss = loss + adversary(out["embedding"], idx, epoch, cfg.epochs)
        opt.zero_grad()
        (loss * ctx.world_size).backward()  # DDP averages over ranks; see trainer.distributed
        opt.step()
        progress.seen += len(idx)
        loss_sum, steps = loss_sum + float(loss.detach()), steps + 1
    progress.busy += time.perf_counter() - t0
    if not all(torch.isfinite(p).all() for p in model.parameters()):  # else every later epoch trains on NaN
        raise TrainerError(f"training diverged in epoch {epoch}: a NaN or infinite gradient reached the weights")
    # one rank scores, so every rank takes the same early-stopping decision
    val = distributed.broadcast(score(model, val_set, norm) if ctx.is_main else None, ctx)
    mean_ccc = selection_score(val["ccc"])
    progress.history.append({"epoch": epoch, "train_loss": loss_sum / max(steps, 1), "val_ccc": val["ccc"],
                             "val_mean_ccc": mean_ccc})
    if epoch < cfg.select_from:
        pass  # e.g. distillation epochs: the task loss is barely weighted yet
    elif mean_ccc > progress.best:
        progress.best, progress.best_epoch, progress.stale = mean_ccc, epoch, 0
        progress.best_state = copy.deepcopy(model.state_dict())
    else:
        progress.stale += 1
    progress.next_epoch = epoch + 1
    progress.stopped = progress.stale >= cfg.patience
    log(f"epoch {epoch:3d}  val CCC a/v/d {ccc_text(val['ccc'])}"
        f"  mean {mean_ccc:.3f}{'  *' if progress.best_epoch == epoch else ''}")


def run_identity(train_set: LabelledSet, val_set: LabelledSet, class_names: list[str], cfg: TrainConfig,
                 objective: Objective | None) -> dict:
    """What a checkpoint must have been made from to be resumed: settings (the epoch count may grow),
    classes, the clips with their labels and features, and the objective's own identity (distillation).
    The features, not only their frame counts: two clips of one length swapped under their names had
    resumed a run whose best epoch was scored on the old audio."""
    def clips(data: LabelledSet) -> str:
        h = hashlib.sha256()
        for u, frames in zip(data.utterances, data.features):
            h.update(f"{u.path}\0{u.speaker}\0{u.emotion}\0{u.avd}\0{len(frames)}\n".encode("utf-8", "surrogateescape"))
            h.update(np.ascontiguousarray(frames).tobytes())
        h.update(str(len(data.views)).encode())
        return h.hexdigest()

    settings = {k: v for k, v in asdict(cfg).items() if k != "epochs"}
    return json.loads(json.dumps({"config": settings, "classes": list(class_names), "train": clips(train_set),
                                  "val": clips(val_set), "objective": getattr(objective, "identity", None)}))
