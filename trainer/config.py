"""The training config: every option of the training loop (trainer.train), built once from the
arguments of `trainer train`/`distill` (TrainConfig.from_args) and recorded in every bundle.

Its defaults are the shipped recipe, declared here only: `trainer train`'s options read them (trainer.cli),
`make default-model` passes no option that restates one, and benchmarks/generalisation.py's shipped
row ("new, 40 epochs") builds this very config; tests/test_trainer_defaults.py fails when any of
them diverge. A recipe that differs from the shipped one (a benchmark's, a test's) states every
field it changes, so moving a default never changes what an older recipe meant.
Light on imports (no torch): the CLI reads it for its options.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from emolive.engine.features import FrontEndConfig
from emolive.trainer.data.cache import MFB
from emolive.trainer.errors import TrainerError
from emolive.trainer.options import same_named
from emolive.trainer.sessions import DEFAULT_PROTOCOL


@dataclass
class TrainConfig:
    """One training run's options; the defaults are the shipped recipe (module docstring)."""

    arch: str = "tcgru"
    multitask: bool = True
    seed: int = 0
    epochs: int = 40  # at most: early stopping decides
    patience: int = 5  # epochs without a gain in validation mean CCC before stopping
    lr: float = 5e-4
    batch_size: int = 32
    crop_s: float = 3.0  # random crops of this length in training: the live window length
    # each crop after up to this many seconds of another clip's end, run by the GRU, not pooled
    # (trainer.sampling.with_lead_in; 0: none)
    lead_in_s: float = 0.0
    # a clip no longer than a crop starts up to this many seconds late (trainer.sampling.crop_starts; 0: never)
    start_jitter_s: float = 0.0
    ce_weight: float = 0.2
    # eq. 1's weights of valence (alpha) and activation (beta) in the CCC loss; dominance has the rest
    ccc_alpha: float = 1 / 3
    ccc_beta: float = 1 / 3
    # CCC within each training corpus of a batch, averaged (losses.within_groups), not over the batch
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
    # the prior's log mel energies moved to each stream's own level (StreamNormConfig.level_columns):
    # a quieter microphone then changes no feature, where an absolute prior leaked it into short streams
    norm_stream_level: bool = False
    balance_corpora: bool = True
    # and within each corpus, its activation x valence quadrants (corpus_weights)
    balance_quadrants: bool = False
    # train on the augmented views a training set carries (off: measured, they cost valence on unseen corpora)
    use_views: bool = False
    # a view and a gain per speaker session and epoch, not per clip (a live stream keeps its channel)
    session_channels: bool = False
    # clips drawn per epoch (0: one pass over the training set); balanced, 2400 give each of the
    # four shared corpora 600 whatever its size
    epoch_clips: int = 2400
    # corpus-adversarial training (trainer.adversary): the gradient reversal's final strength (0: off)
    corpus_adversary: float = 0.0
    # how an epoch groups clips into running-normaliser sessions (trainer.sessions): one protocol
    # drawn per speaker and epoch from these; ("mixed",): every speaker's clips as one session
    session_protocols: tuple[str, ...] = (DEFAULT_PROTOCOL,)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TrainConfig:
        """The config of `trainer train`/`distill`: same-named options, and the ones said another way. A
        quadrant balance needs the corpus balance it splits (it did nothing beside --no-balance, and the
        bundle recorded it as on)."""
        if args.balance_quadrants and args.no_balance:
            raise TrainerError("--balance-quadrants shares out each corpus's part of an epoch, which --no-balance "
                               "turns off: leave out one of them")
        if args.norm_stream_level and (args.no_stream_norm or args.features != MFB):
            raise TrainerError("--norm-stream-level moves the running normaliser's prior, which "
                               + ("--no-stream-norm turns off" if args.no_stream_norm else
                                  f"only a student on {MFB} features has") + ": leave it out")
        return same_named(cls, args, multitask=not args.no_multitask, balance_corpora=not args.no_balance,
                          use_views=args.views > 0,
                          # the running normaliser reads the MFB+F0 front end's columns: students only
                          stream_norm=args.features == MFB and not args.no_stream_norm)
