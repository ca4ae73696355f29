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
`trainer embed --bundle whisper-base:L` fills (make teacher-model fills layer 5).
Run: .venv/bin/python benchmarks/teacher_layers.py
"""
from __future__ import annotations

import argparse
import warnings

from _common import cpu_model, print_table  # first: one thread for every library

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from generalisation import CORPORA, fold

from emolive.trainer.classes import class_names_of
from emolive.trainer.data import FeatureCache, Utterance
from emolive.trainer.embeddings import EmbeddingFeatures, parse_streams
from emolive.trainer.metrics import ccc, uar
from emolive.trainer.pipeline import DEFAULT_CACHE, DEFAULT_EMBEDDING_CACHE

ALPHAS = (10.0, 100.0, 1000.0, 10000.0)
LAYERS = tuple(f"whisper-base:{n}" for n in range(1, 8))
FUSIONS = ("whisper-base:1,whisper-base:5", "whisper-base:4,whisper-base:5", "mfb,whisper-base:5",
           "mfb,whisper-base:1,whisper-base:5")


def pooled(features: list[np.ndarray]) -> np.ndarray:
    """[clips, 2 * dim]: each clip's frame mean and standard deviation."""
    return np.array([np.concatenate([f.mean(0), f.std(0)]) for f in features], dtype=np.float64)


def clip_vectors(spec: str, utts: list[Utterance]) -> np.ndarray:
    """Pooled features of `spec`: pretrained streams "NAME:LAYER,...", optionally led by "mfb,"."""
    names, parts = spec.split(","), []
    if names[0] == "mfb":
        parts.append(pooled(FeatureCache(DEFAULT_CACHE).features_for(utts, progress=False)))
        names = names[1:]
    if names:
        streams = parse_streams(",".join(names))
        parts.append(pooled(EmbeddingFeatures(DEFAULT_EMBEDDING_CACHE, streams).features_for(utts, progress=False)))
    return np.concatenate(parts, axis=1)


def probe(spec: str, held_out: str) -> np.ndarray:
    """Left-out act/val/dom CCC and UAR of the probe on `spec`, trained on the other corpora."""
    train, val, test = fold(held_out)
    x_train, x_val, x_test = (clip_vectors(spec, u) for u in (train, val, test))
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
    args = ap.parse_args()
    rows = []
    for spec in args.features:
        scores = np.array([probe(spec, corpus) for corpus in CORPORA])
        mean = np.nanmean(scores, axis=0)
        rows.append([spec, *(f"{m:.3f}" for m in mean),
                     " ".join(f"{c}:{'-' if np.isnan(v) else f'{v:.2f}'}" for c, v in zip(CORPORA, scores[:, 1]))])
    print(f"Linear probes, leave-one-corpus-out (mean of 4 left-out corpora), {cpu_model()}; "
          "every session protocol alike (no running normaliser)")
    print_table(["features", "act", "val", "dom", "UAR", "valence per left-out corpus"], rows)


if __name__ == "__main__":
    main()
