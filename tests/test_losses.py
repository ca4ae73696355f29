"""Losses against numpy references and hand-computed cases."""
import numpy as np
import pytest
import torch

from emolive.trainer.losses import (CCCLoss, DistillationLoss, MultitaskLoss, ccc, distillation_weights, pearson,
                                    within_groups)


def _ccc_numpy(x: np.ndarray, y: np.ndarray) -> float:
    rho = np.corrcoef(x, y)[0, 1]
    return 2 * rho * x.std() * y.std() / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


def test_ccc_identical_is_one_and_negated_is_minus_one():
    x = torch.randn(50, 3, dtype=torch.float64)
    torch.testing.assert_close(ccc(x, x), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(ccc(x - x.mean(0), -(x - x.mean(0))), -torch.ones(3, dtype=torch.float64))


def test_ccc_hand_case():
    # x = [1, 2, 3], y = [2, 3, 4]: var 2/3 each, cov 2/3, mean gap 1 -> 2(2/3) / (4/3 + 1) = 4/7
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    assert ccc(x, x + 1).item() == pytest.approx(4 / 7)  # float64, exact to ~1e-16


def test_ccc_matches_numpy_per_column():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 3)), rng.normal(size=(40, 3)) * 2 + 1
    got = ccc(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    want = [_ccc_numpy(x[:, k], y[:, k]) for k in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_ccc_loss_weights_valence_by_alpha_activation_by_beta():
    target = torch.randn(30, 3, dtype=torch.float64)
    pred = target.clone()
    pred[:, 1] = -pred[:, 1]  # ruin valence only
    ccc_v = ccc(pred[:, 1], target[:, 1]).item()
    loss = CCCLoss(alpha=0.5, beta=0.25)(pred, target).item()
    assert loss == pytest.approx(1 - (0.5 * ccc_v + 0.25 + 0.25))
    assert CCCLoss()(target, target).item() == pytest.approx(0.0, abs=1e-6)  # 1 - CCC(x, x): rounding only
    with pytest.raises(ValueError):
        CCCLoss(alpha=0.8, beta=0.5)


def test_ccc_within_groups_is_the_mean_of_each_groups_own_ccc():
    rng = np.random.default_rng(3)
    pred, target = (torch.from_numpy(rng.normal(size=(30, 3))) for _ in range(2))
    groups = torch.from_numpy(np.repeat([2, 0, 5], 10))  # any ids, in any order
    per_group = [ccc(pred[groups == g], target[groups == g]) for g in (0, 2, 5)]
    got, labelled = within_groups(pred, target, groups)
    torch.testing.assert_close(got, torch.stack(per_group).mean(0))  # same float64 sums, reordered at most
    assert labelled.all()
    # one group: the batch's CCC
    torch.testing.assert_close(within_groups(pred, target, torch.zeros(30, dtype=torch.long))[0], ccc(pred, target))
    # the corpus-mean gap that a pooled CCC rewards is invisible within groups
    shifted = target + 3.0 * (groups == 5)[:, None]
    torch.testing.assert_close(within_groups(pred + 3.0 * (groups == 5)[:, None], shifted, groups)[0], got)


def test_pearson_matches_numpy_ignores_offset_and_scale_and_leaves_out_unlabelled_rows():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(40, 3)), rng.normal(size=(40, 3))
    got = pearson(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    np.testing.assert_allclose(got, [np.corrcoef(x[:, k], y[:, k])[0, 1] for k in range(3)], rtol=1e-6)
    # a target shifted and stretched: CCC falls, the correlation does not (float64: ~1e-15 apart)
    stretched = torch.from_numpy(3 * y + 2)
    torch.testing.assert_close(pearson(torch.from_numpy(x), stretched), torch.from_numpy(got))
    assert (ccc(torch.from_numpy(x), stretched).abs() < torch.from_numpy(np.abs(got))).all()
    holes = y.copy()
    holes[::4, 1] = np.nan
    known = ~np.isnan(holes[:, 1])
    got = pearson(torch.from_numpy(x), torch.from_numpy(holes))[1].item()
    assert got == pytest.approx(np.corrcoef(x[known, 1], y[known, 1])[0, 1])


@pytest.mark.parametrize("measure", [ccc, pearson])
def test_a_group_of_one_row_or_of_constant_estimates_leaves_the_gradient_finite(measure):
    """A batch can hold one clip of a corpus, or a student can give a corpus's clips one value: that
    group drops out or counts 0, and must not turn every gradient into NaN (it did for pearson:
    a run's first epoch ended with NaN weights)."""
    torch.manual_seed(0)
    pred = torch.randn(9, 3, dtype=torch.float32)
    pred[4:8] = 0.5  # group 1: constant estimates
    pred.requires_grad_(True)
    target = torch.randn(9, 3)
    groups = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2])  # group 2: one row
    value, usable = within_groups(pred, target, groups, measure)
    (1 - value[usable].mean()).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad[:4].abs().sum() > 0


def test_ccc_within_groups_leaves_out_groups_without_spread_in_a_column():
    """BAVED's valence is known only for its neutral clips, all one value: nothing to agree with."""
    rng = np.random.default_rng(4)
    pred, target = (torch.from_numpy(rng.normal(size=(20, 3))) for _ in range(2))
    groups = torch.from_numpy(np.repeat([0, 1], 10))
    target[10:, 1] = 0.469
    target[10:15, 2], target[:, 0] = float("nan"), float("nan")
    got, labelled = within_groups(pred, target, groups)
    assert labelled.tolist() == [False, True, True]
    torch.testing.assert_close(got[1], ccc(pred[:10, 1], target[:10, 1]))
    torch.testing.assert_close(got[2], (ccc(pred[:10, 2], target[:10, 2]) + ccc(pred[15:, 2], target[15:, 2])) / 2)
    loss = CCCLoss()(pred.requires_grad_(), target, groups)  # activation unlabelled: v and d share the weight
    torch.testing.assert_close(loss, 1 - got[1:].mean())
    loss.backward()
    assert torch.isfinite(pred.grad).all()


def test_multitask_adds_weighted_cross_entropy():
    torch.manual_seed(0)
    avd, logits = torch.randn(8, 3), torch.randn(8, 5)
    classes = torch.tensor([0, 1, 2, 3, 4, 0, -100, 2])
    terms = MultitaskLoss()({"avd": avd, "logits": logits}, avd + 0.1, classes)
    keep = classes != -100
    ce = torch.nn.functional.cross_entropy(logits[keep], classes[keep])
    torch.testing.assert_close(terms["ce"], ce)
    torch.testing.assert_close(terms["loss"], CCCLoss()(avd, avd + 0.1) + 0.2 * ce)


def test_multitask_without_class_head_or_labels_is_ccc_only():
    avd = torch.randn(6, 3)
    loss = MultitaskLoss()
    no_head = loss({"avd": avd, "logits": avd[:, :0]}, avd * 2, torch.zeros(6, dtype=torch.long))
    unlabelled = loss({"avd": avd, "logits": torch.randn(6, 4)}, avd * 2, torch.full((6,), -100))
    for terms in (no_head, unlabelled):
        assert torch.isfinite(terms["loss"])
        torch.testing.assert_close(terms["loss"], CCCLoss()(avd, avd * 2))


def test_distillation_weights_eq4():
    labels = torch.tensor([[4.0, 4.0, 4.0], [1.0, 7.0, 1.0], [2.0, 3.0, 4.0]])
    teacher = torch.tensor([[4.0, 4.0, 4.0], [7.0, 1.0, 7.0], [3.0, 3.0, 1.0]])
    # residual means: 0, 6, 4/3 -> gamma 1, 0, 1 - 4/18
    torch.testing.assert_close(distillation_weights(labels, teacher), torch.tensor([1.0, 0.0, 1 - 4 / 18]))


def test_distillation_loss_matches_numpy():
    rng = np.random.default_rng(2)
    student, teacher = rng.normal(size=(5, 128)), rng.normal(size=(5, 128))
    labels, teacher_avd = rng.uniform(1, 7, size=(5, 3)), rng.uniform(1, 7, size=(5, 3))
    cos = (student * teacher).sum(1) / (np.linalg.norm(student, axis=1) * np.linalg.norm(teacher, axis=1))
    gamma = 1 - np.abs(labels - teacher_avd).mean(1) / 6
    want = np.mean(gamma * (1 - cos))
    got = DistillationLoss()(*(torch.from_numpy(a) for a in (student, teacher, labels, teacher_avd)))
    assert got.item() == pytest.approx(want, rel=1e-9)  # float64 in both: ~1e-15 apart on any IEEE-754 CPU


def test_distillation_gradient_reaches_student_only():
    student = torch.randn(4, 16, requires_grad=True)
    teacher = torch.randn(4, 16, requires_grad=True)
    labels = torch.full((4, 3), 4.0)
    DistillationLoss()(student, teacher, labels, labels).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None
    # a student already aligned with its teacher has zero loss
    assert DistillationLoss()(teacher.detach() * 3, teacher.detach(), labels, labels).item() == pytest.approx(0, abs=1e-6)


def test_a_ccc_that_cannot_be_measured_reads_as_a_dash_not_nan():
    """The training summary printed "test CCC 0.018 nan 0.009" where `trainer evaluate` prints "-"."""
    from emolive.trainer.metrics import ccc, ccc_text

    labels = np.array([[1.0, 4.0, 2.0], [5.0, 4.0, 6.0], [3.0, 4.0, 1.0]])  # valence all equal: not measurable
    assert ccc_text(ccc(labels, labels)) == "1.000 - 1.000" and ccc_text([None, 0.25, -0.0004]) == "- 0.250 -0.000"
