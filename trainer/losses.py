"""Training objectives of Mitra et al. 2022: CCC (eq. 1-2), multi-task CE, distillation (eq. 3-4).

Dimension order everywhere is the model's `avd` column order: activation, valence, dominance.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

LABEL_RANGE = 6.0  # M in eq. 4: the dynamic range of the 1-7 label scale


def centred(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Per column over axis 0, leaving out rows whose target is NaN (an unlabelled dimension):
    (pred deviations, target deviations, labelled count, pred mean, target mean); left-out rows
    have deviation 0."""
    known = ~torch.isnan(target)
    weight = known.to(pred.dtype)
    count = weight.sum(0).clamp_min(1.0)
    target = torch.where(known, target, torch.zeros_like(target))
    pred_mean = (pred * weight).sum(0) / count
    target_mean = (target * weight).sum(0) / count
    return (pred - pred_mean) * weight, (target - target_mean) * weight, count, pred_mean, target_mean


def ccc(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Concordance correlation coefficient per column (eq. 2), over the batch axis 0.

    Uses population (biased) moments, so 2 rho sigma_x sigma_y is simply twice the covariance;
    `eps` only keeps the gradient finite when both inputs are constant. Rows whose target is NaN
    (an unlabelled dimension) are left out of that column's moments.
    """
    pred_dev, target_dev, count, pred_mean, target_mean = centred(pred, target)
    covariance = (pred_dev * target_dev).sum(0) / count
    denominator = (pred_dev**2).sum(0) / count + (target_dev**2).sum(0) / count + (pred_mean - target_mean) ** 2
    return 2 * covariance / (denominator + eps)


def pearson(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pearson correlation per column over axis 0, NaN targets left out as in `ccc`: agreement in
    order and proportion, blind to the target's offset and scale (unlike CCC).

    `eps` is inside the square root: the root of 0 (a column of one row, or constant) has an
    infinite derivative, which made every gradient NaN even where the column's weight was 0."""
    pred_dev, target_dev, _, _, _ = centred(pred, target)
    norms = torch.sqrt((pred_dev**2).sum(0) * (target_dev**2).sum(0) + eps**2)
    return (pred_dev * target_dev).sum(0) / norms


def labelled_columns(target: torch.Tensor, minimum: int = 2) -> torch.Tensor:
    """Which columns have at least `minimum` labelled rows: CCC needs two values to mean anything."""
    return (~torch.isnan(target)).sum(0) >= minimum


def within_groups(pred: torch.Tensor, target: torch.Tensor, groups: torch.Tensor,
                  measure: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = ccc) -> tuple[torch.Tensor, torch.Tensor]:
    """Per column, the mean `measure` (CCC, or pearson) over the groups (e.g. corpora) in which that
    column has two or more labelled rows that are not all equal; and which columns have such a group.

    A group with one target value (BAVED's valence: its neutral clips only) has no spread to
    agree with, so it drops out of that column instead of pulling the mean towards 0.
    """
    total, count = pred.new_zeros(pred.shape[1]), pred.new_zeros(pred.shape[1])
    for g in torch.unique(groups):
        rows = groups == g
        part = target[rows]
        known = ~torch.isnan(part)
        high = torch.where(known, part, torch.full_like(part, -torch.inf)).amax(0)
        low = torch.where(known, part, torch.full_like(part, torch.inf)).amin(0)
        usable = (high > low).to(pred.dtype)  # two or more labelled rows, not all equal
        total = total + measure(pred[rows], part) * usable
        count = count + usable
    return total / count.clamp_min(1.0), count > 0


class CCCLoss(nn.Module):
    """Eq. 1: 1 - (alpha CCC_v + beta CCC_a + (1 - alpha - beta) CCC_d).

    As in the paper, `alpha` weighs valence and `beta` activation; inputs are [B, 3] in avd order.
    Partial labels: a dimension with fewer than two labelled rows in the batch drops out and the
    others' weights are renormalised, so a batch of activation-only clips still trains activation
    at the loss's usual scale. With `groups` (one id per row, e.g. its corpus) each CCC is the mean
    of the groups' own CCCs (within_groups): what a test on one corpus at a time measures, and
    no reward for predicting the differences between the training corpora's label means.
    """

    def __init__(self, alpha: float = 1 / 3, beta: float = 1 / 3) -> None:
        super().__init__()
        if not (alpha >= 0 and beta >= 0 and alpha + beta <= 1):
            raise ValueError(f"need alpha, beta >= 0 and alpha + beta <= 1, got {alpha}, {beta}")
        self.register_buffer("weights", torch.tensor([beta, alpha, 1 - alpha - beta]))

    def forward(self, pred: torch.Tensor, target: torch.Tensor, groups: torch.Tensor | None = None) -> torch.Tensor:
        if groups is None:
            per_column, labelled = ccc(pred, target), labelled_columns(target)
        else:
            per_column, labelled = within_groups(pred, target, groups)
        weights = self.weights * labelled
        total = weights.sum()
        if total == 0:
            return pred.sum() * 0.0  # nothing labelled: no CCC term, but a graph for backward
        return 1 - (weights * per_column).sum() / total


class MultitaskLoss(nn.Module):
    """L_ccc + ce_weight * cross-entropy on the class head (the paper's weight is 0.2).

    Utterances whose class is `ignore_index` (e.g. MSP-Podcast's "no agreement") still count for
    CCC; a model without a class head gets CCC only.
    """

    def __init__(self, ccc_loss: CCCLoss | None = None, ce_weight: float = 0.2, ignore_index: int = -100) -> None:
        super().__init__()
        self.ccc_loss = ccc_loss or CCCLoss()
        self.ce_weight, self.ignore_index = ce_weight, ignore_index

    def forward(self, outputs: dict[str, torch.Tensor], avd: torch.Tensor, classes: torch.Tensor,
                groups: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Return the total in "loss" plus its "ccc" and "ce" terms for logging (`groups`: CCCLoss's)."""
        ccc_term = self.ccc_loss(outputs["avd"], avd, groups)
        logits = outputs["logits"]
        labelled = classes != self.ignore_index
        if logits.shape[1] == 0 or not labelled.any():
            ce_term = ccc_term.new_zeros(())  # cross_entropy of an all-ignored batch is NaN
        else:
            ce_term = F.cross_entropy(logits, classes, ignore_index=self.ignore_index)
        return {"loss": ccc_term + self.ce_weight * ce_term, "ccc": ccc_term, "ce": ce_term}


def distillation_weights(labels: torch.Tensor, teacher_avd: torch.Tensor, label_range: float = LABEL_RANGE) -> torch.Tensor:
    """Eq. 4: gamma_i = 1 - mean_k |l_k,i - l~_k,i| / M, near 1 where the teacher was right (mean over
    the labelled dimensions)."""
    error = (labels - teacher_avd).abs()
    known = ~torch.isnan(error)
    mean_error = torch.where(known, error, torch.zeros_like(error)).sum(1) / known.sum(1).clamp_min(1)
    return 1 - mean_error / label_range


class DistillationLoss(nn.Module):
    """Eq. 3 read per utterance: mean over the batch of gamma_i * (1 - cos(E_T,i, E_S,i)).

    The paper's cosine distance is weighted by the utterance's own gamma_i, so the weight is
    applied inside the batch mean. Teacher quantities are constants here (no gradient).
    """

    def __init__(self, label_range: float = LABEL_RANGE, eps: float = 1e-8) -> None:
        super().__init__()
        self.label_range, self.eps = label_range, eps

    def forward(
        self,
        student_embedding: torch.Tensor,
        teacher_embedding: torch.Tensor,
        labels: torch.Tensor,
        teacher_avd: torch.Tensor,
    ) -> torch.Tensor:
        gamma = distillation_weights(labels, teacher_avd.detach(), self.label_range)
        cosine = F.cosine_similarity(teacher_embedding.detach(), student_embedding, dim=1, eps=self.eps)
        return (gamma * (1 - cosine)).mean()
