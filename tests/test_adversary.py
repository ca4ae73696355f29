"""Corpus-adversarial training: the reversal is exact, ramps as documented, resumes like the rest of
the loop, and never reaches a bundle."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from emolive.trainer.adversary import CorpusAdversary, reversal_strength, reverse_gradient
from emolive.trainer.data import Utterance
from emolive.trainer.errors import TrainerError
from emolive.trainer.config import TrainConfig
from emolive.trainer.labelled import labelled_set
from emolive.trainer.train import Checkpointing, train

CFG = TrainConfig(epochs=3, batch_size=8, hidden=8, embedding_dim=8, stream_norm=False, corpus_adversary=0.5,
                  epoch_clips=0)


def two_corpora(tmp_path, n: int = 32):
    """Clips of two corpora whose features differ by an offset: a corpus the embedding could carry."""
    rng = np.random.default_rng(0)
    utts = [Utterance(tmp_path / f"{i}.wav", f"{'ab'[i % 2]}/{i % 4}", "sad", "", *rng.uniform(1, 7, 3))
            for i in range(n)]
    features = [(rng.normal(size=(60, 43)) + 2.0 * (i % 2)).astype(np.float32) for i in range(n)]
    return labelled_set(utts, features, ["sad"])


def test_the_reversal_passes_values_and_returns_the_gradient_negated_and_scaled():
    x = torch.randn(4, 8, dtype=torch.float64, requires_grad=True)
    y = reverse_gradient(x, 0.25)
    assert torch.equal(y, x)
    (y * torch.arange(8.0, dtype=torch.float64)).sum().backward()
    # -0.25 * g is exact in binary floating point (a power of two times a small integer)
    assert torch.equal(x.grad, -0.25 * torch.arange(8.0, dtype=torch.float64).expand(4, 8))


def test_the_strength_ramps_from_zero_towards_the_weight():
    ramp = [reversal_strength(0.3, e, 20) for e in range(21)]
    assert ramp[0] == 0.0 and all(a < b for a, b in zip(ramp, ramp[1:]))
    assert 0.29 < ramp[10] < ramp[20] < 0.3  # 2/(1+e^-5)-1 = 0.987 at half-way


def test_the_adversary_learns_to_name_a_corpus_that_shows_in_the_embedding(tmp_path):
    """Its classifier gets the ordinary (not reversed) gradient: where the corpus shows, its loss falls
    far below chance (ln 2)."""
    data = two_corpora(tmp_path)
    adversary = CorpusAdversary(8, data.utterances, weight=0.0)  # no reversal: only the classifier learns
    opt = torch.optim.Adam(adversary.parameters(), lr=1e-2)
    embedding = torch.from_numpy(np.stack([f.mean(0)[:8] for f in data.features]))
    idx = np.arange(len(data))
    for _ in range(200):
        loss = adversary(embedding, idx, 0, 1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.1 * np.log(2)


def test_a_resumed_adversarial_run_equals_an_uninterrupted_one_and_the_model_is_a_plain_student(tmp_path):
    data = two_corpora(tmp_path)
    log = lambda _: None  # noqa: E731
    whole = train(data, data, ["sad"], CFG, log=log)
    at = tmp_path / "ckpt"
    train(data, data, ["sad"], TrainConfig(**{**vars(CFG), "epochs": 1}), log=log, checkpoint=Checkpointing(at))
    parts = train(data, data, ["sad"], CFG, log=log, checkpoint=Checkpointing(at, resume=True))
    # same machine, same thread count, every generator and Adam state restored: the same operations
    whole_state, parts_state = whole.model.state_dict(), parts.model.state_dict()
    assert all(torch.equal(whole_state[k], parts_state[k]) for k in whole_state)
    plain = train(data, data, ["sad"], TrainConfig(**{**vars(CFG), "corpus_adversary": 0.0}), log=log)
    assert set(whole_state) == set(plain.model.state_dict())  # the classifier is not the student's: bundles never hold it


def test_one_corpus_is_a_clear_error(tmp_path):
    data = two_corpora(tmp_path)
    one = labelled_set(data.utterances[::2], data.features[::2], ["sad"])
    with pytest.raises(TrainerError, match="at least two corpora"):
        train(one, one, ["sad"], CFG, log=lambda _: None)
