"""Which Whisper layers carry emotion to an unseen corpus: paper Tables 2 and 3 as linear probes.

For every layer of Whisper base's encoder (1-6, and 7 = layer 6 after the final norm), fusions
of layers, and fusions with MFB+F0, each clip becomes the mean and standard deviation of its
frames; a ridge regression per dimension (and a logistic regression for the classes) is fitted
on three shared corpora and tested on every clip of the fourth, leave-one-corpus-out, beside the
same probe on MFB+F0. The ridge strength is chosen on the training corpora's validation speakers
(benchmarks/generalisation.fold), never on the left-out corpus. A probe has no running
normaliser, so it scores every clip alike under the clip, sustained and mixed protocols.
It ranks layers in seconds; the GRU teachers of the same features (benchmarks/generalisation.py,
recipe "whisper-base:5 teacher (GRU)") take minutes per fold. Embeddings come from the cache
`trainer embed --bundle whisper-base:L` fills (make teacher-model fills layers 1 and 5).

`--padded` also probes each Whisper spec fed as Whisper was trained: every clip padded with zeros
to 30 s, the frames past its end dropped (about ten times the compute; cached apart, filled by
`--jobs` processes). emolive feeds clips as they are; this row is the measurement behind that
choice. `--every N` probes every Nth clip of each split, for a quicker comparison.
Run: .venv/bin/python benchmarks/teacher_layers.py [--features SPEC ...] [--padded] [--every N] [--jobs 2]
"""
from __future__ import annotations

import argparse
import warnings

from _common import cpu_model, print_table  # first: one thread for every library

from concurrent.futures import ProcessPoolExecutor
from functools import cache
from typing import Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from generalisation import CORPORA, fold, manifests

from emolive.plugins.teacher.frames import num_frames
from emolive.plugins.teacher.whisper_input import MAX_SAMPLES, LayerEncoder
from emolive.trainer.classes import class_names_of
from emolive.trainer.data import FeatureCache, Utterance
from emolive.trainer.embeddings import EmbeddingCache, EmbeddingFeatures, parse_streams
from emolive.trainer.embeddings.cache import fill_layers
from emolive.trainer.metrics import ccc, uar
from emolive.trainer.pipeline import CACHE_ROOT, DEFAULT_CACHE, DEFAULT_EMBEDDING_CACHE, load_utterances

PADDED_CACHE = CACHE_ROOT / "embeddings-padded-30s"  # apart from the unpadded entries of the same streams

ALPHAS = (10.0, 100.0, 1000.0, 10000.0)
LAYERS = tuple(f"whisper-base:{n}" for n in range(1, 8))
FUSIONS = ("whisper-base:1,whisper-base:5", "whisper-base:4,whisper-base:5", "mfb,whisper-base:5",
           "mfb,whisper-base:1,whisper-base:5")


def pooled(features: list[np.ndarray]) -> np.ndarray:
    """[clips, 2 * dim]: each clip's frame mean and standard deviation."""
    return np.array([np.concatenate([f.mean(0), f.std(0)]) for f in features], dtype=np.float64)


class PaddedInput(LayerEncoder):
    """Whisper fed as it was trained: each 30 s piece of a clip padded with zeros to 30 s; the
    frames past the clip's end are dropped, so the frame grid is the unpadded one."""

    def __init__(self, inner: LayerEncoder) -> None:
        self.inner, self.num_layers, self.dim = inner, inner.num_layers, inner.dim

    def embed_layers(self, wave: np.ndarray, layers: Sequence[int]) -> list[np.ndarray]:
        whole = np.zeros(-(-max(len(wave), 1) // MAX_SAMPLES) * MAX_SAMPLES, np.float32)
        whole[:len(wave)] = wave
        return [frames[:num_frames(len(wave))] for frames in self.inner.embed_layers(whole, layers)]


class PaddedCache(EmbeddingCache):
    """An embedding cache whose entries are computed from clips padded to 30 s (PaddedInput)."""

    def encoder(self) -> PaddedInput:
        return PaddedInput(super().encoder())


def fill_padded(spec: str, paths: list[str]) -> None:
    """The padded embeddings of `paths` for the streams of `spec`, one encoder pass per clip."""
    torch.set_num_threads(1)
    fill_layers([PaddedCache(PADDED_CACHE, s) for s in parse_streams(spec)], paths, progress=False)


def clip_vectors(spec: str, utts: list[Utterance], padded: bool = False) -> np.ndarray:
    """Pooled features of `spec`: pretrained streams "NAME:LAYER,...", optionally led by "mfb,"
    (`padded`: the streams' embeddings of clips padded to 30 s, filled before by fill_padded)."""
    names, parts = spec.split(","), []
    if names[0] == "mfb":
        parts.append(pooled(FeatureCache(DEFAULT_CACHE).features_for(utts, progress=False)))
        names = names[1:]
    if names:
        streams = parse_streams(",".join(names))
        root = PADDED_CACHE if padded else DEFAULT_EMBEDDING_CACHE
        parts.append(pooled(EmbeddingFeatures(root, streams).features_for(utts, progress=False)))
    return np.concatenate(parts, axis=1)


@cache
def kept(every: int) -> set[str]:
    """The audio paths of every `every`th clip of each corpus, in manifest order: the same clips in every fold."""
    utts = load_utterances(manifests())
    return {str(u.path) for c in CORPORA for u in [u for u in utts if u.corpus == c][::every]}


def probe(spec: str, held_out: str, padded: bool = False, every: int = 1) -> np.ndarray:
    """Left-out act/val/dom CCC and UAR of the probe on `spec`, trained on the other corpora."""
    paths = kept(every)
    train, val, test = ([u for u in split if str(u.path) in paths] for split in fold(held_out))
    x_train, x_val, x_test = (clip_vectors(spec, u, padded) for u in (train, val, test))
    scaler = StandardScaler().fit(x_train)
    x_train, x_val, x_test = (scaler.transform(x) for x in (x_train, x_val, x_test))
    y_train, y_val, y_test = (np.array([u.avd for u in us]) for us in (train, val, test))
    pred = np.full((len(test), 3), np.nan)
    for k in range(3):
        rows = np.isfinite(y_train[:, k])
        fits = [Ridge(alpha=a).fit(x_train[rows], y_train[rows, k]) for a in ALPHAS]
        val_rows = np.isfinite(y_val[:, k])
        best = max(fits, key=lambda m: ccc(m.predict(x_val[val_rows])[:, None], y_val[val_rows, k:k + 1])[0])
        pred[:, k] = best.predict(x_test)
    classes = class_names_of(train, "shared")
    known = np.array([u.emotion in classes for u in train])
    head = LogisticRegression(C=0.01, max_iter=2000).fit(x_train[known],
                                                          [classes.index(u.emotion) for u in np.array(train)[known]])
    test_known = np.array([u.emotion in classes for u in test])
    u_ = uar(head.predict(x_test[test_known]), np.array([classes.index(u.emotion) for u in np.array(test)[test_known]])) \
        if test_known.any() else np.nan
    return np.array([*ccc(pred, y_test), u_])


def main() -> None:
    warnings.filterwarnings("ignore", "Mean of empty slice|Degrees of freedom|All-NaN slice", RuntimeWarning)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", nargs="+", default=["mfb", *LAYERS, *FUSIONS])
    ap.add_argument("--padded", action="store_true", help="also each Whisper spec fed clips padded to 30 s")
    ap.add_argument("--every", type=int, default=1, help="every Nth clip of each split")
    ap.add_argument("--jobs", type=int, default=2, help="processes embedding the padded clips")
    args = ap.parse_args()
    runs = [(spec, False) for spec in args.features]
    if args.padded:
        runs += [(spec, True) for spec in args.features if spec != "mfb"]
        paths = sorted(kept(args.every))
        # every padded stream of every spec from one pass of the encoder per clip
        streams = ",".join(dict.fromkeys(n for spec, padded in runs if padded for n in spec.split(",") if n != "mfb"))
        with ProcessPoolExecutor(args.jobs) as pool:
            list(pool.map(fill_padded, [streams] * args.jobs, [paths[i::args.jobs] for i in range(args.jobs)]))
    rows = []
    for spec, padded in runs:
        scores = np.array([probe(spec, corpus, padded, args.every) for corpus in CORPORA])
        mean = np.nanmean(scores, axis=0)
        rows.append([spec + (" (padded to 30 s)" if padded else ""), *(f"{m:.3f}" for m in mean),
                     " ".join(f"{c}:{'-' if np.isnan(v) else f'{v:.2f}'}" for c, v in zip(CORPORA, scores[:, 1]))])
    print(f"Linear probes, leave-one-corpus-out (mean of 4 left-out corpora), {cpu_model()}; "
          "every session protocol alike (no running normaliser)"
          + (f"; every {args.every}th clip" if args.every > 1 else ""))
    print_table(["features", "act", "val", "dom", "UAR", "valence per left-out corpus"], rows)


if __name__ == "__main__":
    main()
