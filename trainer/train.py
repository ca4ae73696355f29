"""Training loop for the student models: CCC + 0.2 CE, Adam, early stopping on validation CCC.

What generalises to unseen voices (benchmarks/generalisation.py measures each piece):
- per-stream normalisation (engine.features.normalise): each speaker's clips go through the live
  engine's running normaliser, in a new random order every epoch, as one session;
- balanced sampling: every training corpus contributes the same share of each epoch.
Augmented views (off by default: measured, they cost valence): each clip may have feature "views"
of the same audio through another room, microphone or speed (trainer.data.augment); an epoch
picks one per clip at random, or one per speaker session (`session_channels`).
Labels may be partial (NaN): losses and metrics mask them (trainer.losses).
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import time
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from emolive.engine.features import FrontEndConfig
from emolive.engine.features.fbank import LOG_FLOOR
from emolive.engine.features.normalise import StreamNormConfig, normalise_streams
from emolive.engine.schema import SCALE

from emolive.plugins.student import ARCHITECTURES, StudentModel
from emolive.plugins.student.plugin import pad_features
from emolive.trainer import distributed
from emolive.trainer.adversary import CorpusAdversary
from emolive.trainer.data import Utterance, feature_stats
from emolive.trainer.data.cache import MFB
from emolive.trainer.losses import CCCLoss, MultitaskLoss
from emolive.trainer.metrics import ccc, uar
from emolive.trainer.checkpoint import CHECKPOINT_FILE, Progress, TrainingInterrupted, load_checkpoint, save_checkpoint
from emolive.trainer.errors import TrainerError
from emolive.trainer.options import same_named
from emolive.trainer.sessions import drawn_streams

IGNORE = -100
LOG_FLOOR_LN = float(np.log(LOG_FLOOR))


EVAL_ORDER_SEED = 0  # the order of a speaker's clips when a fixed set is scored as sessions


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


def labelled_set(utts: list[Utterance], features: list[np.ndarray], class_names: list[str],
                 views: list[list[np.ndarray]] | None = None) -> LabelledSet:
    index = {c: i for i, c in enumerate(class_names)}
    avd = np.array([u.avd for u in utts], dtype=np.float32).reshape(-1, 3)
    classes = np.array([index.get(u.emotion, IGNORE) for u in utts], dtype=np.int64)
    return LabelledSet(features, avd, classes, utts, views or [])


def session_features(features: list[np.ndarray], streams: list[str], norm: StreamNormConfig | None,
                     seed: int = EVAL_ORDER_SEED) -> list[np.ndarray]:
    """What the model sees for clips scored as live sessions: each speaker's clips through the
    stream normaliser in a seeded random order, or as they are.

    A speaker's order depends only on the seed, the speaker's id and their clips in the given
    order, never on who else is in the data: a speaker scores the same alone or pooled.
    """
    if norm is None:
        return features
    return normalise_streams(features, streams, norm, session_order(streams, seed))


def session_order(streams: list[str], seed: int) -> np.ndarray:
    """Each stream's clip indices permuted by a generator of (seed, the stream's id), streams one after another."""
    members: dict[str, list[int]] = {}
    for i, s in enumerate(streams):
        members.setdefault(s, []).append(i)
    order = [np.random.default_rng([seed, zlib.crc32(s.encode())]).permutation(idx) for s, idx in members.items()]
    return np.concatenate(order) if order else np.zeros(0, np.int64)


@dataclass
class TrainConfig:
    arch: str = "tcgru"
    multitask: bool = True
    seed: int = 0
    epochs: int = 60
    patience: int = 10
    lr: float = 5e-4
    batch_size: int = 32
    crop_s: float = 3.0  # random crops of this length in training: the live window length
    ce_weight: float = 0.2
    # eq. 1's weights of valence (alpha) and activation (beta) in the CCC loss; dominance has the rest
    ccc_alpha: float = 1 / 3
    ccc_beta: float = 1 / 3
    # CCC within each training corpus of a batch, averaged (losses.within_groups_ccc), not over the batch
    ccc_per_corpus: bool = False
    # dropout on the utterance embedding before the heads, in training only (0: none)
    dropout: float = 0.0
    hidden: int = 128  # GRU width (a wide model serves as a distillation teacher)
    embedding_dim: int = 128
    whole_epochs: int = 0  # first epochs on whole utterances, not crops (distillation: teacher's input)
    select_from: int = 0  # first epoch that may be picked or count towards early stopping
    # leading log-energy columns made gain-invariant (StudentModel.remove_gain): the MFB+F0 front
    # end's 40 log mel energies; 0 for inputs without a recording gain (SSL embeddings)
    gain_dims: int = FrontEndConfig().fbank.num_mel_bins
    # random microphone gain per utterance and epoch, applied to those columns (0, 0: off)
    gain_augment_db: tuple[float, float] = (-20.0, 10.0)
    # the recipe for unseen speakers and channels (module docstring); off reproduces the old recipe
    stream_norm: bool = True
    # the running normaliser's prior weight and time constant, seconds of voiced speech
    # (engine.features.normalise): a heavier prior bounds how far a stream moves it
    norm_prior_s: float = 5.0
    norm_time_constant_s: float = 300.0
    balance_corpora: bool = True
    # and within each corpus, its activation x valence quadrants (corpus_weights)
    balance_quadrants: bool = False
    use_views: bool = True
    # a view and a gain per speaker session and epoch, not per clip (a live stream keeps its channel)
    session_channels: bool = False
    epoch_clips: int = 0  # clips drawn per epoch (0: one pass over the training set)
    # corpus-adversarial training (trainer.adversary): the gradient reversal's final strength (0: off)
    corpus_adversary: float = 0.0
    # how an epoch groups clips into running-normaliser sessions (trainer.sessions): one protocol
    # drawn per speaker and epoch from these; ("mixed",): every speaker's clips as one session
    session_protocols: tuple[str, ...] = ("mixed",)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TrainConfig:
        """The config of `trainer train`/`distill`: same-named options, and the ones said another way."""
        return same_named(cls, args, multitask=not args.no_multitask, balance_corpora=not args.no_balance,
                          use_views=args.views > 0,
                          # the running normaliser reads the MFB+F0 front end's columns: students only
                          stream_norm=args.features == MFB and not args.no_stream_norm)


Objective = Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor], np.ndarray, int], torch.Tensor]
"""(the batch's outputs, MultitaskLoss terms, its utterance indices, epoch) -> the loss to minimise.

How `train` takes an extra term (distillation) without a second copy of the loop."""


@dataclass
class TrainResult:
    model: StudentModel
    best_epoch: int
    val_ccc: list[float]
    history: list[dict] = field(default_factory=list)
    utterances_per_s: float = 0.0
    epoch_seconds: float = 0.0
    stream_normalisation: StreamNormConfig | None = None


def pad_batch(features: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """The plugin's padding (plugins.student.plugin.pad_features) as tensors for the torch model."""
    batch, lengths = pad_features(features, features[0].shape[1])
    return torch.from_numpy(batch), torch.from_numpy(lengths)


def crop_starts(lengths: np.ndarray, frames: int, seed: int, epoch: int) -> np.ndarray:
    """Every utterance's random crop start in one epoch, a function of (seed, epoch, index) only.

    So a batch's crops do not depend on the batch order or on how ranks split it.
    """
    draws = np.random.default_rng([seed, epoch]).random(len(lengths))
    return (draws * np.maximum(lengths - frames + 1, 1)).astype(np.int64)


def gain_offsets(n: int, low_db: float, high_db: float, seed: int, epoch: int) -> np.ndarray:
    """Per-utterance log-power offsets of a random gain in [low_db, high_db], like crop_starts a
    function of (seed, epoch, index) only."""
    draws = np.random.default_rng([seed, epoch, 1]).random(n)
    return (low_db + draws * (high_db - low_db)) * np.log(10.0) / 10.0


def with_gain(f: np.ndarray, offset: float, dims: int) -> np.ndarray:
    """The features the front end gives for the same audio at another gain: log mel energies
    shift by the offset and meet the same floor (a quiet microphone loses its quietest bins).
    Pitch and voicing do not depend on the gain."""
    out = f.copy()
    out[:, :dims] = np.maximum(f[:, :dims] + offset, LOG_FLOOR_LN)
    return out


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
        data = replace(data, features=session_features(data.features, data.streams, norm))
    out = predict(model, data)
    result = {**score_predictions(out["avd"], data.avd, out["logits"], data.classes), "n": len(data)}
    result["ccc"] = result["ccc"].tolist()
    result.pop("n_classified", None)
    return result


def score_predictions(avd: np.ndarray, target: np.ndarray, class_scores: np.ndarray, classes: np.ndarray) -> dict:
    """The one scorer of training and evaluation: CCC per dimension over the labelled clips (NaN:
    not measurable) and, when a class head scored clips of known class (`classes` not IGNORE),
    their UAR and count."""
    result = {"ccc": ccc(avd, target)}
    known = classes != IGNORE
    if class_scores.shape[1] and known.any():
        result["uar"] = uar(class_scores[known].argmax(1), classes[known])
        result["n_classified"] = int(known.sum())
    return result


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
    ctx = ctx or distributed.context()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    n_classes = len(class_names) if cfg.multitask else 0
    norm = StreamNormConfig.from_features(train_set.features, prior_s=cfg.norm_prior_s,
                                          time_constant_s=cfg.norm_time_constant_s) if cfg.stream_norm else None
    # the running normaliser removes a microphone's gain itself; remove_gain would do it twice
    gain_dims = 0 if norm else cfg.gain_dims
    model = ARCHITECTURES[cfg.arch](train_set.features[0].shape[1], n_classes=n_classes, hidden=cfg.hidden,
                                    embedding_dim=cfg.embedding_dim, gain_dims=gain_dims, dropout=cfg.dropout)
    mean, std = feature_stats(session_features(train_set.features, train_set.streams, norm))
    model.set_normalisation(torch.from_numpy(mean), torch.from_numpy(std))
    adversary = corpus_adversary(train_set, cfg, ctx)
    # what the optimiser and the checkpoint hold: the student, and the adversary while it trains
    trained = model if adversary is None else torch.nn.ModuleDict({"student": model, "adversary": adversary})
    trained.to(ctx.device)
    opt = torch.optim.Adam(trained.parameters(), lr=cfg.lr)
    identity = run_identity(train_set, val_set, class_names, cfg, objective)
    progress = Progress()
    if checkpoint and checkpoint.resume:
        progress = load_checkpoint(checkpoint.directory, trained, opt, rng, identity)
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
        raise TrainerError(f"no epoch to select: --epochs {cfg.epochs} must exceed the first selectable epoch "
                           f"{cfg.select_from}")
    model.load_state_dict(progress.best_state)
    model.eval()
    history = progress.history
    return TrainResult(model, progress.best_epoch, history[progress.best_epoch]["val_ccc"], history,
                       utterances_per_s=progress.seen / progress.busy, epoch_seconds=progress.busy / len(history),
                       stream_normalisation=norm)


def corpus_adversary(train_set: LabelledSet, cfg: TrainConfig, ctx: distributed.Context) -> CorpusAdversary | None:
    """The corpus classifier of `cfg.corpus_adversary` (None when off): one process only, since its
    weights are not wrapped for DDP's gradient averaging."""
    if not cfg.corpus_adversary:
        return None
    if ctx.world_size > 1:
        raise TrainerError("--corpus-adversary runs in one process; train without torchrun")
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
    starts = crop_starts(np.array([len(f) for f in features]), crop, cfg.seed, epoch)  # views differ in length
    for i in range(0, len(order) - smallest + 1, cfg.batch_size):
        idx = order[i:i + cfg.batch_size]
        slices = distributed.batch_slices(len(idx), ctx)
        mine = idx[slices[ctx.rank]]
        feats = [features[j] for j in mine]
        x, lengths = pad_batch(feats if whole else [f[starts[j]:starts[j] + crop] for f, j in zip(feats, mine)])
        local = net(x.to(ctx.device), lengths.to(ctx.device))
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
    # one rank scores, so every rank takes the same early-stopping decision
    val = distributed.broadcast(score(model, val_set, norm) if ctx.is_main else None, ctx)
    mean_ccc = float(np.nanmean(val["ccc"]))  # a dimension the validation speakers lack does not count
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
    log(f"epoch {epoch:3d}  val CCC a/v/d {val['ccc'][0]:.3f} {val['ccc'][1]:.3f} {val['ccc'][2]:.3f}"
        f"  mean {mean_ccc:.3f}{'  *' if progress.best_epoch == epoch else ''}")


def run_identity(train_set: LabelledSet, val_set: LabelledSet, class_names: list[str], cfg: TrainConfig,
                 objective: Objective | None) -> dict:
    """What a checkpoint must have been made from to be resumed: settings (the epoch count may grow),
    classes, the clips with their labels, and the objective's own identity (distillation)."""
    def clips(data: LabelledSet) -> str:
        h = hashlib.sha256()
        for u, n in zip(data.utterances, (len(f) for f in data.features)):
            h.update(f"{u.path}\0{u.speaker}\0{u.emotion}\0{u.avd}\0{n}\n".encode())
        h.update(str(len(data.views)).encode())
        return h.hexdigest()

    settings = {k: v for k, v in asdict(cfg).items() if k != "epochs"}
    return json.loads(json.dumps({"config": settings, "classes": list(class_names), "train": clips(train_set),
                                  "val": clips(val_set), "objective": getattr(objective, "identity", None)}))


def session_index(streams: list[str]) -> np.ndarray:
    """For each clip, the index of its session's first clip: the draw that every clip of a session shares."""
    first: dict[str, int] = {}
    return np.array([first.setdefault(s, i) for i, s in enumerate(streams)], dtype=np.int64)


def epoch_order(rng: np.random.Generator, n: int, clips: int, weights: np.ndarray | None) -> np.ndarray:
    """The clips of one epoch: a permutation (its first `clips`), or `clips` weighted draws."""
    clips = clips or n
    if weights is None:
        return rng.permutation(n)[:clips]
    return rng.choice(n, clips, p=weights)


def corpus_ids(utts: list[Utterance]) -> np.ndarray:
    """Each clip's corpus as an integer (corpora in sorted order)."""
    index = {c: i for i, c in enumerate(sorted({u.corpus for u in utts}))}
    return np.array([index[u.corpus] for u in utts], dtype=np.int64)


def corpus_weights(utts: list[Utterance], quadrants: bool = False) -> np.ndarray:
    """Sampling probabilities giving every corpus the same share of an epoch (uniform within one).

    With `quadrants`, a corpus's share is split equally between the activation x valence
    quadrants its clips fall in (each dimension above or below the scale's middle, or unknown),
    uniform within one: acted corpora hold two or three high-activation negative categories
    (angry, fear, disgust) per positive one, so without it "loud" is learnt as "negative", with
    a sign that moves with each corpus's mix of categories.
    """
    cells = [(u.corpus, *(quadrant(u) if quadrants else ())) for u in utts]
    size = {c: cells.count(c) for c in set(cells)}
    corpora = {c[0] for c in size}
    cells_of = {corpus: sum(c[0] == corpus for c in size) for corpus in corpora}
    w = np.array([1.0 / (size[c] * cells_of[c[0]] * len(corpora)) for c in cells])
    return w / w.sum()


def quadrant(u: Utterance) -> tuple[bool | None, bool | None]:
    """Whether the clip's activation and valence lie above the middle of the scale (None: unlabelled)."""
    middle = (SCALE[0] + SCALE[1]) / 2
    return tuple(None if np.isnan(x) else bool(x > middle) for x in u.avd[:2])


def epoch_features(data: LabelledSet, cfg: TrainConfig, norm: StreamNormConfig | None, epoch: int) -> list[np.ndarray]:
    """One epoch's inputs, each a function of (seed, epoch) only: a random view of each clip, a
    random microphone gain (with `session_channels` one view and one gain per speaker, so a
    session keeps its channel), then the clips through the stream normaliser in a random order,
    grouped into sessions by a protocol drawn per speaker from `cfg.session_protocols` (mixed:
    each speaker's clips one session; a new session each epoch)."""
    rng = np.random.default_rng([cfg.seed, epoch, 2])
    n = len(data)
    # which draw each clip takes: its own, or its session's
    draw = session_index(data.streams) if cfg.session_channels else np.arange(n)
    features = data.features
    if cfg.use_views and data.views:
        pick = rng.integers(0, len(data.views) + 1, n)[draw]  # 0: the clean clip
        features = [features[i] if pick[i] == 0 else data.views[pick[i] - 1][i] for i in range(n)]
    if cfg.gain_dims and cfg.gain_augment_db != (0.0, 0.0):
        gains = gain_offsets(n, *cfg.gain_augment_db, cfg.seed, epoch)[draw]
        features = [with_gain(f, gains[i], cfg.gain_dims) for i, f in enumerate(features)]
    if norm is None:
        return list(features)
    streams = drawn_streams(data.utterances, cfg.session_protocols, rng)
    return normalise_streams(features, streams, norm, rng.permutation(n))
