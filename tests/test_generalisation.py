"""What makes the student hold on unseen voices: stream normalisation, partial labels, class set,
balanced sampling, augmented views — and that training assumes exactly what the live engine does."""
from __future__ import annotations

import json
import logging
import math
from dataclasses import replace

import warnings

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from emolive.engine.bundle import BundleError
from emolive.engine.features import compute
from emolive.engine.features.normalise import StreamNormaliser, StreamNormConfig, normalise_streams
from emolive.engine.plugin import load_model
from emolive.engine.runner import Runner
from emolive.engine.sources import FileSource
from emolive.plugins.student import TCGRUModel, load_bundle, save_bundle
from emolive.engine.features import FrontEndConfig
from emolive.trainer.classes import class_names_of
from emolive.trainer.data import FeatureCache, Utterance, read_manifest
from emolive.trainer.data.augment import AugmentConfig, NoiseBank, augment, view_rng
from emolive.trainer.data.vad import category_points, level_activation
from emolive.trainer.losses import CCCLoss, ccc as ccc_tensor
from emolive.trainer.metrics import ccc, speaker_bootstrap
from emolive.trainer.config import TrainConfig
from emolive.trainer.labelled import labelled_set, score_predictions, session_features
from emolive.trainer.sampling import corpus_weights, epoch_features, epoch_order
from tests.conftest import CORPORA, corpus_files, read_audio
from tests.test_runner import Collect


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    return [read_audio(p) for p in corpus_files("ased", every=250)]


@pytest.fixture(scope="module")
def norm_cfg(clips) -> StreamNormConfig:
    return StreamNormConfig.from_features([compute(c) for c in clips])


# --- the running normaliser -----------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(cuts=st.lists(st.integers(0, 300), min_size=0, max_size=6))
def test_any_chunking_of_the_frames_gives_the_same_normalised_stream(cuts):
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(300, 43)).astype(np.float32)
    frames[:, 42] = rng.random(300)
    cfg = StreamNormConfig(prior_mean=(0.0,) * 41, prior_var=(1.0,) * 41)
    whole = StreamNormaliser(cfg).push(frames)
    chunked = StreamNormaliser(cfg)
    edges = [0, *sorted(cuts), 300]
    parts = np.concatenate([chunked.push(frames[a:b]) for a, b in zip(edges, edges[1:])])
    np.testing.assert_array_equal(parts, whole)  # the same float64 recursion in the same order


def reference_normalise(frames: np.ndarray, cfg: StreamNormConfig) -> np.ndarray:
    """The module docstring's definition written out in float64 numpy, frame by frame: the prior's
    weight and the voiced frames' decayed sums, the prior's first level_columns means moved by the
    voiced frames' mean level less the prior's."""
    decay = math.exp(-1 / (cfg.time_constant_s * cfg.frame_rate))
    prior_w, n, levels = cfg.prior_s * cfg.frame_rate, 0.0, cfg.level_columns
    mean, var = np.array(cfg.prior_mean), np.array(cfg.prior_var)
    s1, s2 = np.zeros(cfg.columns), np.zeros(cfg.columns)
    out = frames.astype(np.float64).copy()
    for t, x in enumerate(frames.astype(np.float64)):
        if x[cfg.voicing_column] > cfg.voicing_threshold:
            n, prior_w = decay * n + 1, decay * prior_w
            s1, s2 = decay * s1 + x[:cfg.columns], decay * s2 + x[:cfg.columns] ** 2
        shifted = mean.copy()
        if n and levels:
            shifted[:levels] += s1[:levels].mean() / n - mean[:levels].mean()
        m = (prior_w * shifted + s1) / (prior_w + n)
        second = (prior_w * (var + shifted**2) + s2) / (prior_w + n)
        out[t, :cfg.columns] = (x[:cfg.columns] - m) / np.sqrt(np.maximum(second - m**2, 1e-4))
    return out


def test_the_running_statistics_are_the_documented_ew_estimate_and_move_to_the_speaker(norm_cfg):
    """A speaker louder and higher-voiced than the prior, talking for two minutes."""
    rng = np.random.default_rng(1)
    n = 6000
    frames = np.zeros((n, 43), np.float32)
    mean, std = np.array(norm_cfg.prior_mean), np.sqrt(norm_cfg.prior_var)
    frames[:, :41] = mean + 2 * std + 0.5 * std * rng.standard_normal((n, 41))
    frames[:, 42] = np.where(rng.random(n) < 0.7, 0.9, 0.1)
    out = StreamNormaliser(norm_cfg).push(frames)
    # float32 output of a float64 recursion vs float64 throughout: ~1e-6 relative on values of a few units
    np.testing.assert_allclose(out, reference_normalise(frames, norm_cfg), atol=1e-4)
    fifths = np.abs(out[:, :41].reshape(5, n // 5, 41).mean(1)).mean(1)
    assert np.abs(out[:25, :41].mean(0)).mean() > 1.5  # at first the prior says "much louder, higher than usual"
    assert np.all(np.diff(fifths) < 0) and fifths[-1] < 0.3  # then the speaker becomes their own reference


def test_a_prior_at_the_stream_level_is_the_documented_estimate_and_blind_to_a_constant_gain(norm_cfg):
    """level_columns: the same recursion with the prior's log energies at the stream's level; a gain
    (one constant on every log mel energy) then changes no normalised value, where it moved an
    absolute prior's output by nearly its whole size for the first seconds."""
    rng = np.random.default_rng(2)
    n = 3000
    frames = np.zeros((n, 43), np.float32)
    mean, std = np.array(norm_cfg.prior_mean), np.sqrt(norm_cfg.prior_var)
    frames[:, :41] = mean + std * rng.standard_normal((n, 41))
    frames[:, 42] = np.where(rng.random(n) < 0.6, 0.9, 0.1)
    frames[:40, 42] = 0.1  # a stream that starts unvoiced: the prior as it is until the first voiced frame
    level = replace(norm_cfg, level_columns=40)
    out = StreamNormaliser(level).push(frames)
    np.testing.assert_allclose(out, reference_normalise(frames, level), atol=1e-4)  # float32 out, as above
    quieter = frames.copy()
    quieter[:, :40] -= np.float32(np.log(100.0))  # 20 dB less power: natural-log mel energies fall by ln 100
    # sums of ~3000 values of ~20 in float64 differ from the shifted ones by ~1e-12; float32 output ~1e-6
    np.testing.assert_allclose(StreamNormaliser(level).push(quieter)[40:], out[40:], atol=1e-4)
    absolute = StreamNormaliser(norm_cfg)
    moved = np.abs(absolute.push(quieter)[:, :40] - StreamNormaliser(norm_cfg).push(frames)[:, :40])
    assert moved[:250].mean() > 1.0  # the control: an absolute prior hears the gain


def test_a_quieter_microphone_leaves_a_stream_level_prior_nearly_unmoved(clips, norm_cfg):
    """Real speech 20 dB quieter: the front end's voicing and its log floor still differ a little,
    so the voiced frames' mel columns move a tenth of what an absolute prior moves them, or less."""
    audio = np.concatenate(clips[:2])
    loud, quiet = compute(audio), compute(audio * np.float32(0.1))
    voiced = loud[:, 42] > 0.5
    moved = {}
    for cfg in (norm_cfg, replace(norm_cfg, level_columns=40)):
        diff = StreamNormaliser(cfg).push(loud) - StreamNormaliser(cfg).push(quiet)
        moved[cfg.level_columns] = float(np.abs(diff[voiced, :40]).mean())
    assert moved[40] < 0.1 * moved[0], moved


def test_unvoiced_frames_do_not_move_the_statistics(norm_cfg):
    frames = np.full((500, 43), 50.0, np.float32)
    frames[:, 42] = 0.0  # unvoiced: loud noise must not become the speaker's neutral
    n = StreamNormaliser(norm_cfg)
    n.push(frames)
    probe = np.zeros((1, 43), np.float32)
    fresh = StreamNormaliser(norm_cfg).push(probe)
    np.testing.assert_array_equal(n.push(probe), fresh)


def test_delta_and_voicing_columns_pass_unchanged(clips, norm_cfg):
    f = compute(clips[0])
    out = StreamNormaliser(norm_cfg).push(f)
    np.testing.assert_array_equal(out[:, 41:], f[:, 41:])


def test_config_round_trips_and_rejects_bad_values(norm_cfg):
    assert StreamNormConfig.from_dict(json.loads(json.dumps(norm_cfg.to_dict()))) == norm_cfg
    bad = [{"time_constant_s": 0}, {"prior_s": float("nan")}, {"columns": "41"}, {"prior_var": [-1.0] * 41},
           {"prior_mean": [0.0] * 3}, {"voicing_threshold": None}]
    for change in bad:
        with pytest.raises(ValueError):
            StreamNormConfig.from_dict({**norm_cfg.to_dict(), **change})
    with pytest.raises(ValueError):
        StreamNormConfig.from_dict({**norm_cfg.to_dict(), "extra": 1})
    # an absolute prior is written as bundles wrote it before level_columns, and such a bundle still reads
    assert "level_columns" not in norm_cfg.to_dict()
    level = replace(norm_cfg, level_columns=40)
    assert StreamNormConfig.from_dict(json.loads(json.dumps(level.to_dict()))) == level
    for bad in (-1, 42, 1.5, True):
        with pytest.raises(ValueError, match="level_columns"):
            StreamNormConfig.from_dict({**norm_cfg.to_dict(), "level_columns": bad})


def test_training_streams_each_speaker_through_its_own_normaliser(clips, norm_cfg):
    feats = [compute(c) for c in clips[:4]]
    streams = ["a", "b", "a", "b"]
    out = normalise_streams(feats, streams, norm_cfg, order=np.array([3, 0, 1, 2]))
    a = StreamNormaliser(norm_cfg)
    np.testing.assert_array_equal(out[0], a.push(feats[0]))
    np.testing.assert_array_equal(out[2], a.push(feats[2]))
    b = StreamNormaliser(norm_cfg)
    np.testing.assert_array_equal(out[3], b.push(feats[3]))
    np.testing.assert_array_equal(out[1], b.push(feats[1]))


def test_what_training_assumed_is_what_the_live_engine_computes(tmp_path, clips, norm_cfg):
    """A bundle with stream normalisation: every window the runner scores equals the model on the
    trainer's transform (session_features) of the whole file's frames."""
    torch.manual_seed(0)
    model = TCGRUModel(43, n_classes=2).eval()
    bundle = save_bundle(tmp_path / "bundle", model, FrontEndConfig(), ["a", "b"], stream_normalisation=norm_cfg)
    assert load_bundle(bundle)[1].stream_normalisation == norm_cfg
    plugin = load_model(str(bundle))
    audio = np.concatenate(clips[:3])
    path = tmp_path / "speech.wav"
    sf.write(path, audio, 16000, subtype="FLOAT")
    sink = Collect()
    with FileSource(path) as source:
        Runner(source, plugin, [sink]).run()
    frames = session_features([compute(audio)], ["one speaker"], norm_cfg, ["clip"])[0]
    assert len(sink.estimates) > 5
    for seq, estimate in enumerate(sink.estimates):
        window = frames[25 * seq:25 * seq + 150]
        with torch.inference_mode():
            want = model(torch.from_numpy(window)[None])["avd"][0].numpy()
        got = [estimate[k] for k in ("activation", "valence", "dominance")]
        # same float32 features and weights on both sides; 1e-5 covers summation order in GRU kernels
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_a_bundle_with_a_bad_stream_normalisation_is_refused(tmp_path, norm_cfg):
    model = TCGRUModel(43).eval()
    bundle = save_bundle(tmp_path / "b", model, FrontEndConfig(), stream_normalisation=norm_cfg)
    config = json.loads((bundle / "config.json").read_text())
    for bad in ({**config["stream_normalisation"], "voicing_column": 99}, {"columns": 41}, "yes"):
        (bundle / "config.json").write_text(json.dumps({**config, "stream_normalisation": bad}))
        with pytest.raises(BundleError, match="stream_normalisation"):
            load_bundle(bundle)


# --- partial labels -------------------------------------------------------------------------

def test_masked_ccc_equals_ccc_on_the_labelled_rows():
    rng = np.random.default_rng(2)
    pred, target = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    masked = target.copy()
    masked[::3, 1] = np.nan
    got = ccc_tensor(torch.from_numpy(pred), torch.from_numpy(masked), eps=0).numpy()
    keep = ~np.isnan(masked[:, 1])
    want = ccc_tensor(torch.from_numpy(pred[keep]), torch.from_numpy(target[keep]), eps=0).numpy()[1]
    assert got[1] == pytest.approx(want, rel=1e-12)
    assert got[0] == pytest.approx(ccc_tensor(torch.from_numpy(pred), torch.from_numpy(target), eps=0)[0].item())


def test_loss_drops_a_dimension_without_labels_and_keeps_its_scale():
    pred = torch.randn(8, 3, requires_grad=True)
    target = torch.randn(8, 3)
    only_activation = target.clone()
    only_activation[:, 1:] = float("nan")
    loss = CCCLoss()(pred, only_activation)
    assert loss.item() == pytest.approx(1 - ccc_tensor(pred, target)[0].item(), abs=1e-6)
    loss.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad[:, 1:].abs().sum() == 0
    assert CCCLoss()(pred, torch.full((8, 3), float("nan"))).item() == 0.0


def test_metrics_say_not_measurable_instead_of_a_score():
    pred = np.random.default_rng(3).normal(size=(20, 3))
    target = np.full((20, 3), 4.0)
    target[:, 0] = np.linspace(1, 7, 20)
    target[5:, 2] = np.nan
    out = ccc(pred, target)
    assert np.isfinite(out[0]) and np.isnan(out[1]) and np.isnan(out[2])


def test_baved_levels_become_activation_only_targets():
    utts = read_manifest(CORPORA / "baved" / "manifest.csv")
    high = [u for u in utts if u.intensity == "high"]
    low = [u for u in utts if u.intensity == "low"]
    normal = [u for u in utts if u.intensity == "normal"]
    assert high and low and normal
    assert all(u.emotion == "" and math.isnan(u.valence) and math.isnan(u.dominance) for u in high + low)
    assert {u.activation for u in high} == {level_activation("high")}
    assert level_activation("low") < category_points()["neutral"][0] < level_activation("high")
    assert all(u.emotion == "neutral" and u.avd == pytest.approx(category_points()["neutral"]) for u in normal)


def test_a_category_the_map_lacks_is_unlabelled_not_an_error(tmp_path, caplog):
    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "m.csv").write_text("path,speaker,emotion,intensity,valence\n"  # one file per row: a file listed
                                    "a.wav,1,frustrated,,\nb.wav,2,ps,,\nc.wav,3,frustrated,,2.5\n")  # twice is an error
    with caplog.at_level(logging.WARNING):
        utts = read_manifest(tmp_path / "m.csv")
    assert "frustrated" in caplog.text
    assert all(math.isnan(v) for v in utts[0].avd)
    assert utts[1].emotion == "surprise" and not math.isnan(utts[1].valence)
    assert utts[2].valence == 2.5 and math.isnan(utts[2].activation)


# --- class set and sampling -------------------------------------------------------------------

def _utt(corpus: str, emotion: str, i: int = 0) -> Utterance:
    return Utterance(path=f"{corpus}{i}.wav", speaker=f"{corpus}/{i % 3}", emotion=emotion, intensity="",
                     activation=4.0, valence=4.0, dominance=4.0)


def test_quadrant_balance_splits_each_corpus_equally_between_its_activation_valence_quadrants():
    """Three loud negative clips per loud positive one (an acted corpus's mix), and a corpus with
    activation only: every quadrant present gets its corpus's share / its number of quadrants."""
    def clip(corpus: str, i: int, a: float, v: float) -> Utterance:
        return Utterance(path=f"{corpus}{i}.wav", speaker=f"{corpus}/0", emotion="", intensity="",
                         activation=a, valence=v, dominance=4.0)
    acted = [clip("acted", i, 6.0, 2.0) for i in range(30)] + [clip("acted", 30 + i, 6.0, 6.5) for i in range(10)]
    acted += [clip("acted", 40 + i, 2.0, 3.8) for i in range(20)]  # neutral: below the middle
    levels = [clip("levels", i, a, float("nan")) for i, a in enumerate([2.0] * 5 + [6.0] * 45)]
    utts = acted + levels
    w = corpus_weights(utts, quadrants=True)
    np.testing.assert_allclose(w.sum(), 1.0)
    share = {name: w[rows].sum() for name, rows in (("loud negative", slice(0, 30)), ("loud positive", slice(30, 40)),
                                                   ("quiet", slice(40, 60)), ("levels quiet", slice(60, 65)),
                                                   ("levels loud", slice(65, 110)))}
    np.testing.assert_allclose([share[k] for k in ("loud negative", "loud positive", "quiet")], [1 / 6] * 3)
    np.testing.assert_allclose([share["levels quiet"], share["levels loud"]], [1 / 4, 1 / 4])
    assert np.ptp(w[:30]) == 0 and np.ptp(w[65:]) == 0  # uniform within a quadrant
    np.testing.assert_allclose(corpus_weights(utts)[:60].sum(), 0.5)  # off: the corpora only


def test_shared_class_set_leaves_out_categories_of_one_corpus():
    utts = [_utt("a", e) for e in ("happy", "sad", "boredom")] + [_utt("b", e) for e in ("happy", "sad", "calm")]
    utts += [_utt("c", "")]
    assert class_names_of(utts) == ["happy", "sad"]
    assert class_names_of(utts, "all") == ["boredom", "calm", "happy", "sad"]
    assert class_names_of([u for u in utts if u.corpus == "a"]) == ["boredom", "happy", "sad"]


def test_balanced_sampling_gives_every_corpus_the_same_share():
    utts = [_utt("big", "happy", i) for i in range(900)] + [_utt("small", "sad", i) for i in range(100)]
    order = epoch_order(np.random.default_rng(0), len(utts), 20000, corpus_weights(utts))
    share = np.mean(order >= 900)
    # binomial with n = 20000, p = 0.5: std 0.0035, so 0.02 is > 5 sigma
    assert abs(share - 0.5) < 0.02
    assert sorted(epoch_order(np.random.default_rng(0), 10, 0, None)) == list(range(10))


# --- augmented views ----------------------------------------------------------------------------

def test_views_are_reproducible_and_realistic(clips):
    cfg = AugmentConfig()
    bank = NoiseBank(clips)
    x = clips[0]
    a = augment(x, view_rng("key", 1, cfg), cfg, bank)
    b = augment(x, view_rng("key", 1, cfg), cfg, bank)
    c = augment(x, view_rng("key", 2, cfg), cfg, bank)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    for view in range(1, 30):
        y = augment(x, view_rng("key", view, cfg), cfg, bank)
        assert y.dtype == np.float32 and np.isfinite(y).all() and np.abs(y).max() <= 1.0
        # speed perturbation is the only step that changes the length: by at most 1/0.9
        assert 0.85 * len(x) <= len(y) <= 1.15 * len(x)


def test_noise_is_added_at_the_drawn_snr(clips):
    cfg = AugmentConfig(p_speed=0, p_reverb=0, p_band=0, p_noise=1, p_bank_noise=0, snr_db=(10.0, 10.0),
                        gain_db=(0.0, 0.0))
    x = clips[1].astype(np.float64)
    y = augment(clips[1], np.random.default_rng(5), cfg).astype(np.float64)
    snr = 10 * np.log10(np.mean(x**2) / np.mean((y - x) ** 2))
    assert snr == pytest.approx(10.0, abs=0.2)  # float32 rounding of y is ~-140 dB: far below


def test_an_epoch_picks_views_and_normalises_per_speaker(clips, norm_cfg):
    feats = [compute(c) for c in clips[:4]]
    views = [[f + 1.0 for f in feats]]
    utts = [_utt("a", "happy", i) for i in range(4)]
    data = labelled_set(utts, feats, ["happy"], views)
    cfg = TrainConfig(seed=0, gain_augment_db=(0.0, 0.0), use_views=True)
    one, again = epoch_features(data, cfg, norm_cfg, 3), epoch_features(data, cfg, norm_cfg, 3)
    for a, b in zip(one, again):
        np.testing.assert_array_equal(a, b)  # a function of (seed, epoch) only
    plain = epoch_features(replace(data, views=[]), replace(cfg, use_views=False), None, 3)
    for a, f in zip(plain, feats):
        np.testing.assert_array_equal(a, f)


def test_session_channels_give_every_clip_of_a_speaker_the_same_view_and_gain():
    """Per clip, a session switches microphones from one utterance to the next; per session it keeps one."""
    n = 60
    feats = [np.zeros((5, 43), np.float32) for _ in range(n)]
    views = [[f + 10.0 * v for f in feats] for v in (1, 2)]  # view v adds 10 v to every feature
    utts = [_utt("a", "happy", i) for i in range(n)]  # speakers a/0, a/1, a/2 in turn
    data = labelled_set(utts, feats, ["happy"], views)
    for session in (False, True):
        cfg = TrainConfig(seed=0, session_channels=session, gain_augment_db=(-20.0, 10.0), gain_dims=40, use_views=True)
        out = epoch_features(data, cfg, None, epoch=1)
        shift = np.array([f[0, 0] for f in out])  # 10 * view + gain offset (never at the log floor here)
        per_speaker = [np.unique(np.round(shift[i::3], 4)).size for i in range(3)]
        assert per_speaker == [1, 1, 1] if session else min(per_speaker) > 5
        pitch = np.array([f[0, 41] for f in out])  # not a log energy: the gain leaves it, only views move it
        assert set(np.round(pitch).astype(int)) <= {0, 10, 20}


def test_session_views_share_one_chain_per_speaker(tmp_path, clips):
    """Observable through the speed step, the only one that changes a clip's length: with a view per
    session, two clips of a speaker are slowed or sped by the same factor; per clip, by different ones."""
    cfg = AugmentConfig(p_speed=1.0, p_reverb=0.0, p_band=0.0, p_noise=0.0, gain_db=(0.0, 0.0))
    paths = []
    for i, x in enumerate(clips[:4]):
        paths.append(tmp_path / f"{i}.wav")
        sf.write(paths[-1], x, 16000)
    utts = [Utterance(path=p, speaker="x/1", emotion="", intensity="", activation=4.0, valence=4.0,
                      dominance=4.0) for p in paths]
    cache = FeatureCache(tmp_path / "cache")
    clean = cache.features_for(utts, progress=False)
    for per_session in (True, False):
        (view,) = cache.views_for(utts, 1, cfg, progress=False, per_session=per_session)
        ratios = np.array([len(v) / len(c) for v, c in zip(view, clean)])
        # frames are 20 ms over clips of >= 100 frames: one frame of rounding is < 0.01 of the ratio
        spread = ratios.max() - ratios.min()
        assert spread < 0.02 if per_session else spread > 0.02, ratios


def test_a_speakers_session_does_not_depend_on_who_else_is_in_the_data(clips, norm_cfg):
    feats = [compute(c) for c in clips[:5]]
    names = [f"clip{i}.wav" for i in range(5)]
    alone = session_features(feats[:3], ["a"] * 3, norm_cfg, names[:3])
    pooled = session_features(feats, ["a", "a", "a", "b", "b"], norm_cfg, names)
    for x, y in zip(alone, pooled[:3]):
        np.testing.assert_array_equal(x, y)


def test_a_speakers_session_does_not_depend_on_the_order_a_table_lists_the_clips(clips, norm_cfg):
    """A manifest listing the same clips in reverse moved a 40-clip set's valence CCC by 0.12 (mixed)."""
    feats = [compute(c) for c in clips[:5]]
    names = [f"clip{i}.wav" for i in range(5)]
    listed = session_features(feats, ["a"] * 5, norm_cfg, names)
    reversed_ = session_features(feats[::-1], ["a"] * 5, norm_cfg, names[::-1])
    for x, y in zip(listed, reversed_[::-1]):
        np.testing.assert_array_equal(x, y)
    # the control: the order matters to the normaliser, so the sort is what keeps it
    assert any(not np.array_equal(x, y) for x, y in zip(listed, session_features(feats, ["a"] * 5, norm_cfg,
                                                                                 names[::-1])))


def test_the_speaker_bootstrap_leaves_an_unlabelled_dimension_without_interval_or_warning():
    """`trainer evaluate` on clips without labels printed numpy's All-NaN warning: no draw can measure them."""
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(40, 2))
    truth[:, 1] = np.nan  # the second dimension unlabelled
    pred = truth + rng.normal(scale=0.5, size=(40, 2))
    speakers = np.repeat(np.arange(8), 5).astype(str)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        low, high = speaker_bootstrap(lambda rows: ccc(pred[rows], truth[rows]), speakers)
    assert low[0] < ccc(pred, truth)[0] < high[0] and np.isnan(low[1]) and np.isnan(high[1])


def test_the_speaker_bootstrap_gives_no_interval_where_most_draws_cannot_measure():
    """Two speakers of one emotion each: a draw of one alone has constant labels, so only the draws of both
    (reshuffles of the whole set) were left, and the interval closed on the point estimate, [0.947, 0.947]."""
    rng = np.random.default_rng(0)
    truth = np.repeat([[2.0], [6.0]], 5, axis=0)  # speaker a all 2, speaker b all 6
    pred = truth + rng.normal(scale=0.5, size=(10, 1))
    low, high = speaker_bootstrap(lambda rows: ccc(pred[rows], truth[rows]), np.repeat(["a", "b"], 5))
    assert np.isnan(low[0]) and np.isnan(high[0])
    # the control: speakers of both labels each are measurable in every draw, and the interval stays
    mixed = np.tile([[2.0], [6.0]], (5, 1))
    low, high = speaker_bootstrap(lambda rows: ccc(pred[rows], mixed[rows]), np.repeat(["a", "b"], 5))
    assert np.isfinite(low[0]) and low[0] <= high[0]


def test_a_head_of_one_class_has_no_uar_and_two_classes_have_one():
    """A one-class head names its class for every clip: a UAR of 1.0 from it would say nothing."""
    avd, target = np.full((4, 3), 4.0), np.full((4, 3), np.nan)
    alone = score_predictions(avd, target, np.zeros((4, 1)), np.zeros(4, dtype=np.int64))
    assert "uar" not in alone
    pair = score_predictions(avd, target, np.array([[1.0, 0], [1, 0], [0, 1], [1, 0]]), np.array([0, 0, 1, 1]))
    assert pair["uar"] == 0.75 and pair["n_classified"] == 4
