"""Where a training crop starts: a late start for short clips (`--start-jitter-s`), and a lead-in before it
(`--lead-in-s`: another clip's end, read by the GRU and not pooled)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from emolive.plugins.student import TCGRUModel
from emolive.trainer.sampling import crop_starts, lead_ins, with_lead_in


def test_a_short_clip_starts_at_most_the_jitter_or_a_quarter_of_it_late_and_a_long_one_as_without():
    lengths = np.array([400, 100, 12, 150, 151] * 200)
    plain = crop_starts(lengths, 150, seed=4, epoch=2)
    jittered = crop_starts(lengths, 150, seed=4, epoch=2, jitter=5)
    long_ = lengths > 150
    np.testing.assert_array_equal(plain[long_], jittered[long_])  # the same draws, the same crops
    assert not plain[~long_].any()  # without jitter a short clip is read from its first frame
    for length, most in ((100, 5), (12, 3), (150, 5)):
        starts = jittered[lengths == length]
        assert starts.min() == 0 and starts.max() == most  # 200 draws reach both ends


def test_lead_ins_are_a_function_of_seed_epoch_and_index_and_never_the_clip_itself():
    frames, others = lead_ins(500, 100, seed=3, epoch=7)
    again, again_others = lead_ins(500, 100, seed=3, epoch=7)
    np.testing.assert_array_equal(frames, again)
    np.testing.assert_array_equal(others, again_others)
    assert frames.min() == 0 and frames.max() == 100  # both ends drawn among 500
    assert not (others == np.arange(500)).any() and others.min() >= 0 and others.max() < 500
    next_epoch, _ = lead_ins(500, 100, seed=3, epoch=8)
    assert (next_epoch != frames).any()
    assert not lead_ins(10, 0, seed=0, epoch=0)[0].any()  # off: no lead-in at all


def test_with_lead_in_puts_the_end_of_the_other_clip_first():
    crop, before = np.full((5, 2), 1.0), np.arange(8, dtype=float).repeat(2).reshape(8, 2)
    led, skip = with_lead_in(crop, before, 3)
    assert skip == 3
    np.testing.assert_array_equal(led[:3, 0], [5, 6, 7])
    np.testing.assert_array_equal(led[3:], crop)
    led, skip = with_lead_in(crop, before[:2], 3)  # a shorter clip gives what it has
    assert skip == 2 and len(led) == 7
    led, skip = with_lead_in(crop, before, 0)
    assert skip == 0
    np.testing.assert_array_equal(led, crop)


def test_the_pooling_skips_the_lead_in_which_the_gru_still_reads():
    torch.manual_seed(0)
    model = TCGRUModel(43, n_classes=4).eval()
    x = torch.randn(2, 30, 43)
    lengths, lead = torch.tensor([30, 24]), torch.tensor([10, 4])
    with torch.no_grad():
        got = model(x, lengths, lead)["embedding"]
        out, _ = model.gru(model.input_layer(x * (torch.arange(30)[None, :, None] < lengths[:, None, None])))
        want = torch.stack([model.embedding(out[0, 10:30].mean(0)), model.embedding(out[1, 4:24].mean(0))])
        without = model(x, lengths)["embedding"]
    # the same float32 sums over 20 frames, in another order at most: ~1e-6
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert (got - without).abs().max() > 1e-3  # the skipped frames had counted


@pytest.mark.parametrize("lead", [0, 7])
def test_the_lead_in_changes_what_the_gru_starts_from(lead):
    """Frames before a crop move its estimate only through the GRU's state (none skipped: identical)."""
    torch.manual_seed(1)
    model = TCGRUModel(43).eval()
    crop = torch.randn(1, 20, 43)
    led = torch.cat([torch.randn(1, lead, 43), crop], 1)
    with torch.no_grad():
        alone = model(crop)["avd"]
        after = model(led, torch.tensor([lead + 20]), torch.tensor([lead]))["avd"]
    if lead:
        assert (alone - after).abs().max() > 1e-4
    else:
        torch.testing.assert_close(alone, after)
