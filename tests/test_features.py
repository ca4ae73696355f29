"""The MFB+F0 front end: Kaldi agreement, streaming invariance, pitch accuracy, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchaudio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emolive.engine.features import FrontEnd, FrontEndConfig, compute
from tests.conftest import corpus_files, read_audio

N_MEL = 40


def kaldi_fbank(samples: np.ndarray) -> np.ndarray:
    wave = torch.from_numpy(samples)[None]
    return torchaudio.compliance.kaldi.fbank(wave, num_mel_bins=40, frame_length=25,
                                             frame_shift=20, dither=0).numpy()


# Why these bounds hold on any CPU and FFT build: both sides compute a float32 FFT of the same
# frame, whose rounding error is about eps32 * log2(512) ~ 1e-6 of the frame's energy, spread over
# all bins. A bin far below the frame's strongest one carries that error at full size, so its log
# can differ by much more than 1e-3 between two correct FFTs (a fresh AMD machine measured 1.04e-3
# on a bin 40 dB down). So: powers agree to 1e-4 of the frame's strongest mel bin (100x the
# rounding), and logs agree to 1e-3 on bins within 30 dB of it, where rounding moves a log by
# < 1e-6 * 1e3 = 1e-3 at worst and by ~1e-5 in practice.
POWER_TOL = 1e-4
LOG_TOL = 1e-3
LOG_TOL_RANGE_DB = 30.0


def assert_fbank_close(ours: np.ndarray, ref: np.ndarray, what: object) -> None:
    assert ours.shape == ref.shape, what
    ours64, ref64 = ours.astype(np.float64), ref.astype(np.float64)
    peak = ref64.max(axis=1, keepdims=True)  # log power of each frame's strongest bin
    power_error = np.abs(np.exp(ours64 - peak) - np.exp(ref64 - peak))
    assert power_error.max() <= POWER_TOL, what
    strong = ref64 >= peak - LOG_TOL_RANGE_DB * np.log(10) / 10
    assert np.abs(ours64 - ref64)[strong].max() <= LOG_TOL, what


@pytest.mark.parametrize("corpus,every", [("emodb", 27), ("ravdess", 72)])
def test_mfb_matches_torchaudio_kaldi_fbank(corpus, every):
    for path in corpus_files(corpus, every=every):
        samples = read_audio(path)
        assert_fbank_close(compute(samples)[:, :N_MEL], kaldi_fbank(samples), path)


def test_fbank_agreement_ignores_rounding_in_near_silent_bins():
    """The comparison itself: a 1e-2 log error 40 dB below the peak (FFT rounding) passes, the
    same error on the strongest bin (a real bug) fails."""
    ref = np.full((2, N_MEL), 10.0, np.float32)
    ref[:, 1] = 10.0 - 40 * np.log(10) / 10
    quiet = ref.copy()
    quiet[:, 1] += 1e-2
    assert_fbank_close(quiet, ref, "quiet bin")
    loud = ref.copy()
    loud[:, 0] += 1e-2
    with pytest.raises(AssertionError):
        assert_fbank_close(loud, ref, "loud bin")


@pytest.mark.parametrize("n", [0, 1, 399, 400, 719, 720, 16000])
def test_frame_count_is_kaldi_snip_edges(n):
    out = compute(np.zeros(n, np.float32))
    expected = 0 if n < 400 else 1 + (n - 400) // 320
    assert out.shape == (expected, 43) and out.dtype == np.float32


def _stream(samples: np.ndarray, sizes: list[int]) -> np.ndarray:
    fe = FrontEnd()
    out, i, k = [], 0, 0
    while i < len(samples):
        n = sizes[k % len(sizes)]
        out.append(fe.push(samples[i:i + n]))
        i, k = i + n, k + 1
    out.append(fe.flush())
    return np.concatenate(out)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(1, 9000), min_size=1, max_size=12))
def test_any_chunking_gives_the_offline_frames(speech, sizes):
    clip = speech[:40000]
    assert np.abs(_stream(clip, sizes) - compute(clip)).max() <= 1e-5


def test_compute_in_pushes_gives_one_push_of_the_whole(speech):
    """compute pushes 1 s at a time; a clip of several seconds in one push must give the same frames.
    The bound is the chunking test's: only the FFT's batch shape differs, float32 output rounding."""
    clip = speech[:56789]
    fe = FrontEnd()
    whole, pushed = np.concatenate([fe.push(clip), fe.flush()]), compute(clip)
    assert whole.shape == pushed.shape
    assert np.abs(whole - pushed).max() <= 1e-5


def test_one_sample_pushes_and_reuse_after_flush(speech):
    clip = speech[:6000]
    reference = compute(clip)
    fe = FrontEnd()
    for _ in range(2):  # flush readies the object for a second, independent stream
        rows = [fe.push(clip[i:i + 1]) for i in range(len(clip))]
        got = np.concatenate(rows + [fe.flush()])
        assert np.abs(got - reference).max() <= 1e-5


def test_frames_arrive_after_the_documented_lookahead(speech):
    fe = FrontEnd()
    look = int(round(fe.lookahead_ms * 16))
    assert 0 < fe.lookahead_ms <= 200
    k = 30  # frame 30 must appear exactly when its window end + look-ahead has been pushed
    end = 320 * k + 400 + look
    fe.push(speech[:end - 1])
    assert fe.frames_out == k
    fe.push(speech[end - 1:end])
    assert fe.frames_out == k + 1


def test_silence_and_dc_give_finite_unvoiced_frames():
    for signal in (np.zeros(8000, np.float32), np.full(8000, 0.5, np.float32)):
        out = compute(signal)
        assert np.isfinite(out).all()
        assert np.allclose(out[:, :N_MEL], np.log(np.finfo(np.float32).eps))
        assert (out[:, 42] < 0.5).all()


def test_nan_and_inf_name_the_absolute_sample_index():
    fe = FrontEnd()
    fe.push(np.zeros(1000, np.float32))
    block = np.zeros(500, np.float32)
    block[123] = np.nan
    with pytest.raises(ValueError, match="sample index 1123"):
        fe.push(block)
    block[123] = np.inf
    with pytest.raises(ValueError, match="sample index 123"):
        compute(block)


@pytest.mark.parametrize("bad,err,msg", [
    (np.zeros(100, np.int16), TypeError, "int16"),
    (np.zeros((100, 2), np.float32), ValueError, "mono"),
    ([0.0] * 100, TypeError, "numpy array"),
])
def test_wrong_dtype_or_shape_is_a_clear_error(bad, err, msg):
    with pytest.raises(err, match=msg):
        compute(bad)


def test_float64_input_is_accepted_as_float32(speech):
    clip = speech[:8000]
    assert np.array_equal(compute(clip.astype(np.float64)), compute(clip))


def test_config_round_trips_and_rejects_unknown_fields():
    cfg = FrontEndConfig()
    assert FrontEndConfig.from_dict(cfg.to_dict()) == cfg
    assert FrontEndConfig.from_dict(cfg.to_dict()).digest() == cfg.digest()
    bad = cfg.to_dict()
    bad["pitch"]["octave_costs"] = 1
    with pytest.raises(ValueError, match="octave_costs"):
        FrontEndConfig.from_dict(bad)
