"""Cross-fitted teacher targets (benchmarks/generalisation.py): a training clip is only ever taught
by a teacher that heard neither its corpus nor the corpus left out for the test."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from emolive.trainer.data import Utterance
from emolive.trainer.labelled import LabelledSet
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import generalisation  # noqa: E402

RECIPE = next(r for r in generalisation.RECIPES.values() if r.distil_avd)


@pytest.mark.parametrize("held_out", generalisation.CORPORA)
def test_each_training_corpus_is_taught_by_a_teacher_of_the_other_training_corpora(held_out):
    pairs = generalisation.crossfit_pairs(held_out)
    training = [c for c in generalisation.CORPORA if c != held_out]
    assert len(pairs) == len(training)
    for taught, trained_on in zip(training, pairs):
        assert set(trained_on) == set(training) - {taught}  # never the clip's corpus, never the test's


def test_targets_are_the_saved_estimates_of_the_teacher_that_never_heard_the_clip(tmp_path):
    """Each teacher's file scores the corpora it did not train on; a clip takes its row from the
    one teacher of its fold that heard neither it nor the left-out corpus (EmoDB here)."""
    corpora = [c for c in generalisation.CORPORA if c != "emodb"]
    utts = [Utterance(path=Path(f"/{c}/{i}.flac"), speaker=f"{c}/{i}", emotion="neutral", intensity="normal",
                      activation=4.0, valence=4.0, dominance=4.0) for c in corpora for i in range(3)]
    for trained_on in {p for held_out in generalisation.CORPORA for p in generalisation.crossfit_pairs(held_out)}:
        unseen = [u for u in utts if u.corpus not in trained_on]
        # the estimate names its teacher: the index of its first corpus, then the clip
        avd = np.array([[generalisation.CORPORA.index(trained_on[0]), i, 0] for i, _ in enumerate(unseen)],
                       np.float32)
        path = generalisation.crossfit_file(tmp_path, RECIPE.distil_from, trained_on, 0)
        path.parent.mkdir(parents=True)
        np.savez(path, avd=avd, paths=np.array([str(u.path) for u in unseen]))
    data = LabelledSet(features=[np.zeros((1, 43), np.float32)] * len(utts), utterances=utts,
                       avd=np.full((len(utts), 3), 4.0, np.float32), classes=np.zeros(len(utts), np.int64))
    targets = generalisation.crossfit_targets(tmp_path, RECIPE, data, 0)
    assert targets.embedding.shape == (len(utts), 0)  # teachers' embeddings are not comparable: none taught
    for u, row in zip(utts, targets.avd):
        teacher = generalisation.CORPORA[int(row[0])]
        assert teacher not in (u.corpus, "emodb")
