"""The bodies of the `trainer` subcommands; argument parsing lives in trainer.cli."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from emolive.engine.bundle import check_bundle_target, is_shipped, json_text
from emolive.engine.defaults import DEFAULT_MODEL
from emolive.engine.features import FrontEndConfig
from emolive.engine.plugin import load_model
from emolive.plugins.student import ARCHITECTURES
from emolive.plugins.student.spec import network_shapes
from emolive.plugins.teacher.pretrained import check_takes_checkpoint
from emolive.engine.files import is_within
from emolive.engine.sinks.lines import print_line
from emolive.trainer import distributed
from emolive.trainer.checkpoint import (CHECKPOINT_FILE, hold_checkpoint_folder, interrupted_after_training,
                                        remove_checkpoint)
from emolive.trainer.data import FeatureCache, read_splits, write_splits
from emolive.trainer.data.augment import AugmentConfig
from emolive.trainer.data.cache import MFB
from emolive.trainer.data.splits import LEARNED_CLIPS_FILE, held_out_splits, only_split, write_learned_clips
from emolive.trainer.embeddings import EmbeddingCache, EmbeddingFeatures, parse_streams
from emolive.trainer.embeddings.cache import fill_layers
from emolive.trainer.errors import TrainerError
from emolive.trainer.evaluate import format_table, metrics, predict_utterances, unmeasured, warn_narrowband
from emolive.trainer.history import HISTORY_FILE, SPLITS_FILE, bundle_splits, versions, write_history
from emolive.trainer.losses import CCCLoss
from emolive.trainer.metrics import DIMENSIONS, ccc_text
from emolive.trainer.pipeline import CACHE_ROOT, DataSpec, fit, save_model
from emolive.trainer.sessions import warn_unstated
from emolive.trainer.config import TrainConfig
from emolive.trainer.train import Checkpointing

log = logging.getLogger(__name__)


def writable_folder(folder: Path, what: str) -> None:
    """`folder` is a folder this run can write in, or can be made: an empty folder is made in it, or
    in its nearest existing parent, and removed at once (nothing is left). So a path under a file, a
    file where a folder must be, or a place that refuses new files is one TrainerError line naming
    `what` (the option and its value) before any work, not a traceback when the first file is written."""
    existing = folder
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise TrainerError(f"{what}: {existing} is not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".emolive-write-check-", dir=existing))
    except OSError as err:
        raise TrainerError(f"{what}: cannot write in {existing} ({err.strerror})") from None


def data_spec(args) -> DataSpec:
    """The command's data options (DataSpec.from_args); a cache folder it cannot write, given or the
    default (a read-only or missing home), is one line now, not a traceback at the first file."""
    if args.cache:
        writable_folder(Path(args.cache), f"--cache {args.cache}")
    else:
        writable_folder(CACHE_ROOT, f"the cache folder {CACHE_ROOT} ($EMOLIVE_CACHE, else ~/.cache/emolive; "
                        "or give --cache)")
    return DataSpec.from_args(args)


def check_network(cfg: TrainConfig, data: DataSpec) -> None:
    """The network the options describe fits a bundle (plugins.student.spec: each width's bounds and
    the parameter budget), found before training rather than when its bundle is written after it.
    Its class head is left out, as its width comes with the data (at most 1024 x the embedding)."""
    width = (FrontEndConfig().num_features if data.features == MFB
             else sum(s.spec.dim for s in parse_streams(data.features)))
    with torch.device("meta"):  # the module's own hyperparameters (its layer count), and no memory for weights
        model = ARCHITECTURES[cfg.arch](width, hidden=cfg.hidden, embedding_dim=cfg.embedding_dim)
    network_shapes(cfg.arch, model.hyperparameters(), f"--arch {cfg.arch} --hidden {cfg.hidden} "
                                                      f"--embedding-dim {cfg.embedding_dim}")


def check_ccc_weights(cfg: TrainConfig) -> None:
    """Eq. 1's weights, each in [0, 1] as parsed, must leave dominance a share (CCCLoss's own check,
    made now rather than in the first epoch)."""
    try:
        CCCLoss(cfg.ccc_alpha, cfg.ccc_beta)
    except ValueError as err:
        raise TrainerError(f"--ccc-alpha {cfg.ccc_alpha:g} --ccc-beta {cfg.ccc_beta:g}: {err}") from None
    if cfg.epoch_clips == 1:  # a batch of one has no CCC: every epoch took no step, and an untrained model shipped
        raise TrainerError("--epoch-clips 1 makes no training step (a CCC needs two clips): give 0 (one pass) or 2+")


def features(args) -> int:
    data = data_spec(args)
    utts = data.utterances()
    cache = FeatureCache(data.cache_root())
    feats = cache.features_for(utts)
    frames = sum(len(f) for f in feats)
    print_line(f"features: {len(utts)} clips, {frames} frames ({frames * 0.02 / 3600:.2f} h) cached in {cache.dir}")
    return 0


def train(args) -> int:
    """`trainer train` and `trainer distill`: pipeline.fit, then the bundle with its run's records."""
    data, cfg = data_spec(args), TrainConfig.from_args(args)
    distill = None
    if args.command == "distill":
        from emolive.trainer.distill import DistillConfig, check_not_a_teacher, check_schedule

        distill = DistillConfig.from_args(args)
        check_schedule(distill, cfg.epochs)
    # `--out .`: the bundle's folder by its full name in every message and check below
    out = Path(os.path.abspath(args.out))
    if distill is not None:
        check_not_a_teacher(out, distill)
    # what the arguments already tell is found before hours of training, not after them
    check_bundle_target(out)
    if is_shipped(out) and not args.replace_shipped:
        raise TrainerError(f"--out {out} is inside emolive's installed models (a shipped bundle): write your model "
                           "elsewhere and run it with --model PATH; `make default-model` rebuilds the shipped one "
                           "(--replace-shipped)")
    for source in [*data.sources, *data.test_data]:  # the bundle replaces --out whole, with what it holds
        if is_within(Path(source), out):
            raise TrainerError(f"--out {out} holds the data {source}, which writing the bundle there would delete: "
                               "give --out a folder of its own")
    cache = Path(data.cache) if data.cache else CACHE_ROOT  # found once the features were made and the run trained
    if is_within(cache, out):
        raise TrainerError(f"the cache folder {cache} ({'--cache' if data.cache else '$EMOLIVE_CACHE'}) is inside "
                           f"--out {out}, which the bundle replaces: put the cache beside it")
    writable_folder(out.parent, f"--out {out}")  # write_bundle makes it and writes the bundle in it
    checkpoint = Checkpointing(Path(args.checkpoint_dir or f"{out}.checkpoint"), resume=args.resume)
    if is_within(checkpoint.directory, out):
        raise TrainerError(f"--checkpoint-dir {checkpoint.directory} is inside --out {out}, which the bundle "
                           "replaces: put the checkpoint beside it (the default is OUT.checkpoint)")
    if not args.resume and (checkpoint.directory / CHECKPOINT_FILE).exists():  # the run would write over it
        raise TrainerError(f"{checkpoint.directory / CHECKPOINT_FILE} holds an interrupted run: add --resume to "
                           "continue it, or remove it to start again")
    writable_folder(checkpoint.directory, f"--checkpoint-dir {checkpoint.directory}")
    check_network(cfg, data)
    check_ccc_weights(cfg)
    ctx = distributed.context()
    with hold_checkpoint_folder(checkpoint.directory, out) if ctx.is_main else contextlib.nullcontext():
        return fit_and_save(args, out, data, cfg, distill, checkpoint, ctx)


def fit_and_save(args, out: Path, data: DataSpec, cfg: TrainConfig, distill, checkpoint: Checkpointing,
                 ctx: distributed.Context) -> int:
    """The training run `train` checked, then its bundle and records (on the main rank)."""
    log = (lambda line: print(line, file=sys.stderr)) if ctx.is_main else (lambda line: None)
    code = versions()  # the code the run starts from: edits made while it trains did not train it
    fitted = fit(data, cfg, distill, checkpoint=checkpoint, log=log, progress=ctx.is_main, int8=args.int8)
    if not ctx.is_main:
        return 0  # the main rank holds the same model and writes the outputs
    result, cfg = fitted.result, fitted.config
    summary = {
        "config": vars(cfg), "best_epoch": result.best_epoch,
        "val_ccc": dict(zip(DIMENSIONS, result.val_ccc)),
        "test": {s: {"ccc": dict(zip(DIMENSIONS, m["ccc"])), "uar": m.get("uar"), "n": m["n"]}
                 for s, m in fitted.tests.items()},
        "utterances_per_s": result.utterances_per_s, "epoch_seconds": result.epoch_seconds,
        "n_train": fitted.n_train, "n_val": fitted.n_val, "world_size": ctx.world_size,
    }
    if fitted.distillation:
        summary["distillation"] = fitted.distillation
    training = {"data": data.sources, **({"test_data": list(data.test_data)} if data.test_data else {}),
                "features": data.features,
                "fit_on": data.train_on,  # the split: its file, or how it was drawn (for clips the data gave none)
                **({"splits": data.splits} if data.splits else
                   {"split_seed": data.split_seed, "val_frac": data.val_frac, "test_frac": data.test_frac}),
                "classes": data.classes,
                "views": data.views, "versions": code,
                **{k: summary[k] for k in ("config", "best_epoch", "distillation") if k in summary}}

    def records(directory: Path) -> None:  # inside the bundle's atomic write
        write_splits(directory / SPLITS_FILE, fitted.utterances)
        write_learned_clips(directory / LEARNED_CLIPS_FILE, fitted.utterances)
        write_history(directory / HISTORY_FILE, result.history)
        (directory / "results.json").write_text(json_text(summary, default=str))

    try:
        save_model(fitted, out, int8=args.int8, finish=records, training=training,
                   metrics={"val_ccc": summary["val_ccc"], "test": summary["test"]})
    except OSError as err:
        raise TrainerError(f"cannot write the bundle {out} ({err.strerror}); the checkpoint "
                           f"{checkpoint.directory} is kept: fix the path and rerun with --resume") from None
    except KeyboardInterrupt:
        raise interrupted_after_training(checkpoint.directory) from None
    remove_checkpoint(checkpoint.directory)
    size = (out / "model.safetensors").stat().st_size
    parts = [f"val CCC {ccc_text(result.val_ccc)}"] + [f"{s} CCC {ccc_text(m['ccc'])}" for s, m in fitted.tests.items()]
    print_line(f"trained {cfg.arch}{'+mtl' if cfg.multitask else ''} seed {cfg.seed}: best epoch {result.best_epoch}, "
               f"{', '.join(parts)}; {result.utterances_per_s:.0f} utt/s, {result.epoch_seconds:.1f} s/epoch; "
               f"bundle {out} ({size / 1e6:.3f} MB)")
    return 0


def embed(args) -> int:
    streams = parse_streams(",".join(args.bundle))
    if args.checkpoint:
        if len(streams) != 1:
            raise TrainerError("--checkpoint replaces the weights of one model: give exactly one --bundle")
        check_takes_checkpoint(streams[0].spec, args.checkpoint)  # before a cache folder is made for it
        streams = [replace(streams[0], checkpoint=args.checkpoint)]
    data = data_spec(args)
    utts = data.utterances()
    ctx = distributed.context()
    mine = distributed.shard(utts, ctx)  # under torchrun each rank embeds its share into the one cache
    device = str(ctx.device) if ctx.device.type == "cuda" else args.device
    caches = [EmbeddingCache(data.cache_root("embeddings"), s, device, args.batch_seconds) for s in streams]
    fill_layers(caches, [u.path for u in mine], progress=ctx.is_main)  # layers of one model in one pass
    if args.views:  # EmbeddingFeatures reads the caches just filled: only the views are computed
        EmbeddingFeatures(data.cache_root("embeddings"), streams, device, args.batch_seconds).views_for(
            mine, args.views, AugmentConfig(), progress=ctx.is_main)
    for stream, cache in zip(streams, caches):
        frames = sum(distributed.gather(sum(len(e) for e in cache.embeddings([u.path for u in mine])), ctx))
        if ctx.is_main:
            print_line(f"embed {stream.label()}: {len(utts)} clips ({frames} frames x {stream.spec.dim})"
                       + (f" and {args.views} views of each" if args.views else "") + f" cached in {cache.store.dir}"
                       + (f" by {ctx.world_size} ranks" if ctx.distributed else ""))
    return 0


def distill(args) -> int:
    """`train` with a teacher's embedding as an extra target (trainer.distill)."""
    return train(args)


def evaluate(args) -> int:
    plugin = load_model(args.model)
    data = data_spec(args)
    utts = data.utterances()
    model_splits = bundle_splits(plugin)
    if args.splits:
        utts = read_splits(args.splits, utts)
    if model_splits:  # whatever split the data or --splits gives a clip, one the model learned is not held out
        utts = held_out_splits(model_splits, utts, warn=not args.split)
    if args.split:
        utts = only_split(utts, args.split)
    warn_unstated(utts, args.protocol)
    warn_narrowband(plugin, utts)
    out = predict_utterances(plugin, utts, data.cache_root(), progress=not args.json, protocol=args.protocol)
    result = {**metrics(plugin, utts, out), "protocol": args.protocol}
    for dimension, why in unmeasured(utts, result).items():
        log.warning("%s: no CCC, %s", dimension, why)
    if args.json:
        print_line(json.dumps(result))
    else:
        where = ", ".join(data.sources) + (f" [{args.split}]" if args.split else "") + f" ({args.protocol})"
        print_line(format_table([(args.model, where, result)]))
    return 0


def report(args) -> int:
    from emolive.trainer.report import build_report, command_line, load_sources  # matplotlib, scikit-learn: reports only

    writable_folder(Path(args.out), f"--out {args.out}")  # like a wrong model, before any work
    data = data_spec(args)
    models = args.model or [DEFAULT_MODEL]
    plugins = [load_model(spec) for spec in models]  # a wrong name or path fails before any work
    learned = [splits for plugin in plugins if (splits := bundle_splits(plugin))]
    sources = load_sources(args.data, args.msp_podcast, args.splits, args.split, learned)
    warn_unstated([u for s in sources for u in s.utts], args.protocol)
    try:
        done = build_report(models, plugins, sources, args.out, data.cache_root(), args.map,
                            args.split, args.splits, command=command_line(args, models), protocol=args.protocol)
    except OSError as err:  # a full disk under a figure or the tables: one line, as any output's
        raise TrainerError(f"cannot write the report in {args.out}: {err.strerror or err}") from None
    print_line(f"report: {len(models)} model(s) on {len(done.utterances)} utterances in {done.seconds:.1f} s: "
               f"{Path(args.out) / 'report.md'} and report.html")
    return 0


def export(args) -> int:
    from emolive.engine.bundle import read_config
    from emolive.plugins.student import DEFAULT_BUNDLE, load_bundle, write_graph
    from emolive.plugins.student.graph import export_graph
    from emolive.plugins.teacher.bundle import PREFIX, write_teacher_graph
    from emolive.trainer.export import graph_metadata

    if args.into_bundle and args.model != DEFAULT_MODEL:
        raise TrainerError(f"--model {args.model} is for --out; --into-bundle exports {args.into_bundle}'s own weights")
    if not args.into_bundle and args.model != DEFAULT_MODEL and not os.path.exists(args.model):
        raise TrainerError(f"--model {args.model}: --out exports {DEFAULT_MODEL!r} or a student bundle folder (a "
                           "teacher's head graph: --into-bundle with its bundle)")
    if args.into_bundle:
        teacher = str(read_config(args.into_bundle).get("architecture", "")).startswith(PREFIX)
        path = (write_teacher_graph if teacher else write_graph)(args.into_bundle)  # a teacher's: its head
    else:
        source = DEFAULT_BUNDLE if args.model == DEFAULT_MODEL else Path(args.model)
        if str(read_config(source).get("architecture", "")).startswith(PREFIX):  # it said "unknown architecture"
            raise TrainerError(f"--model {args.model} is a teacher: its head graph goes into its bundle, "
                               f"`trainer export --into-bundle {args.model}`")
        if source.resolve() in (Path(args.out).resolve(), Path(args.out).resolve().parent):  # its files written over
            raise TrainerError(f"--out {args.out} is inside the bundle it exports; write the graph elsewhere, or "
                               f"into the bundle with --into-bundle {args.model}")
        if args.out.endswith(("/", os.sep)):  # Path() dropped the slash: a file of that name was written
            raise TrainerError(f"--out {args.out} names a folder: give the graph's file name, e.g. "
                               f"{args.out}model.onnx")
        model, meta = load_bundle(source)
        # alone, it says what config.json would
        path = export_graph(model, args.out, metadata=graph_metadata(meta))
    print_line(f"exported {path} ({path.stat().st_size / 1e6:.3f} MB): inputs features[batch, time, features] and "
               f"lengths[batch]; outputs avd, class_probs, embedding")
    return 0
