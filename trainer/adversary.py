"""Corpus-adversarial training: a corpus classifier on the utterance embedding, through gradient reversal.

Why: on corpora it never heard, the student must not rely on what tells its training corpora
apart (language, room, microphone, the actors' style). A small classifier learns to name the
training corpus from the embedding; its gradient reaches the embedding reversed (Ganin &
Lempitsky's gradient-reversal layer), so the student learns an embedding from which the corpus
cannot be read. The reversal strength ramps up over training as in their paper,
lambda(p) = weight * (2 / (1 + exp(-10 p)) - 1), p = epoch / epochs, so the task is learnt first.
The classifier exists only in training: bundles never hold it. Kept only where
benchmarks/generalisation.py shows it helps on corpora left out.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from emolive.trainer.data import Utterance
from emolive.trainer.errors import TrainerError

HIDDEN = 64


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, strength: float) -> torch.Tensor:
        ctx.strength = strength
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.strength * grad, None


def reverse_gradient(x: torch.Tensor, strength: float) -> torch.Tensor:
    """x unchanged going forward; its gradient times -strength going back."""
    return _ReverseGradient.apply(x, strength)


def reversal_strength(weight: float, epoch: int, epochs: int) -> float:
    """The DANN ramp: 0 at the first epoch, close to `weight` after half the epochs."""
    return weight * (2.0 / (1.0 + math.exp(-10.0 * epoch / max(epochs, 1))) - 1.0)


class CorpusAdversary(nn.Module):
    """Names the training corpus of each clip from its embedding; its loss, added to the task's,
    trains it to succeed and (reversed) the student to make it fail."""

    def __init__(self, embedding_dim: int, utterances: list[Utterance], weight: float) -> None:
        super().__init__()
        self.corpora = sorted({u.corpus for u in utterances})
        if len(self.corpora) < 2:
            raise TrainerError("the corpus adversary needs clips of at least two corpora to tell apart; "
                               "train without --corpus-adversary")
        index = {c: i for i, c in enumerate(self.corpora)}
        self.weight = weight
        self.register_buffer("corpus_of", torch.tensor([index[u.corpus] for u in utterances]), persistent=False)
        self.classifier = nn.Sequential(nn.Linear(embedding_dim, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, len(self.corpora)))

    def forward(self, embedding: torch.Tensor, idx: np.ndarray, epoch: int, epochs: int) -> torch.Tensor:
        """Cross-entropy of naming the corpora of the training clips `idx` from their embeddings."""
        strength = reversal_strength(self.weight, epoch, epochs)
        logits = self.classifier(reverse_gradient(embedding, strength))
        return nn.functional.cross_entropy(logits, self.corpus_of[torch.as_tensor(idx, device=self.corpus_of.device)])
