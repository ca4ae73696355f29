"""The named channels of trainer.data.channels: each does what its name says, repeatably, and a
corpus copy through one keeps every row's labels."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import welch

from emolive.trainer.data.channels import CHANNELS, through_channel, write_channel_copy
from emolive.trainer.errors import TrainerError
from tests.conftest import CORPORA

CLIP = "wav/03a01Fa.flac"


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    samples, rate = sf.read(CORPORA / "emodb" / CLIP, dtype="float32")
    assert rate == 16000
    return samples * 0.5  # headroom, so no channel here has to turn the result down


def band_power_db(x: np.ndarray, low: float, high: float) -> float:
    f, p = welch(x, fs=16000, nperseg=1024)
    return 10 * np.log10(p[(f >= low) & (f < high)].sum() + 1e-30)


def test_every_channel_keeps_length_and_range_and_repeats_exactly(speech):
    for name in CHANNELS:
        y = through_channel(speech, name, CLIP)
        assert y.dtype == np.float32 and len(y) == len(speech) and np.abs(y).max() <= 1.0, name
        np.testing.assert_array_equal(y, through_channel(speech, name, CLIP), err_msg=name)
    assert np.array_equal(through_channel(speech, "clean", CLIP), speech)


def test_noise_and_room_differ_per_clip_but_not_per_run(speech):
    for name in ("noise 10 dB", "room 0.6 s"):
        assert not np.array_equal(through_channel(speech, name, CLIP), through_channel(speech, name, "other.flac"))


def test_telephone_and_8khz_remove_what_their_band_lacks(speech):
    # Welch estimates of the same signal: the stop bands are 40+ dB down after the filters and
    # resamplers (butterworth order 4, soxr's anti-aliasing); speech above 4 kHz is ~30 dB below
    # its 300-3400 Hz power in the clean clip, so a 40 dB margin from the clean band fails loudly
    clean_band = band_power_db(speech, 300, 3400)
    for name in ("telephone", "8 kHz"):
        y = through_channel(speech, name, CLIP)
        assert band_power_db(y, 4200, 8000) < clean_band - 60, name
    assert band_power_db(through_channel(speech, "telephone", CLIP), 0, 150) < clean_band - 30
    # the speech band itself stays within 1 dB (mu-law coding noise is ~38 dB down)
    assert abs(band_power_db(through_channel(speech, "telephone", CLIP), 500, 3000)
               - band_power_db(speech, 500, 3000)) < 1.0


def test_noise_sits_10_db_below_the_clip_and_quiet_is_20_db_down(speech):
    noisy = through_channel(speech, "noise 10 dB", CLIP).astype(np.float64)
    noise = noisy - speech
    # float32 rounding of the sum moves the ratio by ~1e-6 dB; 0.01 dB is a margin, not a fit
    assert 10 * np.log10(np.mean(speech.astype(np.float64) ** 2) / np.mean(noise**2)) == pytest.approx(10.0, abs=0.01)
    np.testing.assert_allclose(through_channel(speech, "20 dB quieter", CLIP), speech * 0.1, rtol=1e-6)


def test_a_result_that_would_clip_is_turned_down():
    # a full-scale square wave: noise 10 dB below it passes +-1 wherever it adds to the sign
    loud = np.sign(np.sin(2 * np.pi * 200 * np.arange(16000) / 16000)).astype(np.float32)
    assert np.abs(through_channel(loud, "noise 10 dB", CLIP)).max() == pytest.approx(1.0)


def test_unknown_channel_is_a_user_error(speech):
    with pytest.raises(TrainerError, match="unknown channel 'radio'"):
        through_channel(speech, "radio", CLIP)


def test_a_copy_keeps_rows_and_labels_and_is_read_as_written(tmp_path):
    source = CORPORA / "emodb" / "manifest.csv"
    with open(source, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["speaker"] == "03"]
    manifest = write_channel_copy(source, "telephone", tmp_path, keep=lambda r: r["speaker"] == "03")
    with open(manifest, newline="") as f:
        copied = list(csv.DictReader(f))
    assert [{k: v for k, v in r.items() if k != "path"} for r in copied] == \
           [{k: v for k, v in r.items() if k != "path"} for r in rows]
    first, rate = sf.read(tmp_path / copied[0]["path"], dtype="float32")
    expected = through_channel(sf.read(CORPORA / "emodb" / rows[0]["path"], dtype="float32")[0], "telephone",
                               rows[0]["path"])
    assert rate == 16000
    np.testing.assert_allclose(first, expected, atol=1 / 32768)  # 16-bit FLAC: half a step each way
    # kept, not redone: a second call returns the same manifest without touching the audio
    stamp = (tmp_path / copied[0]["path"]).stat().st_mtime_ns
    assert write_channel_copy(source, "telephone", tmp_path) == manifest
    assert (tmp_path / copied[0]["path"]).stat().st_mtime_ns == stamp


def test_a_copy_never_writes_outside_its_folder_or_over_a_source(tmp_path):
    """A manifest may name clips by absolute path or by ../: their copies go under the copy's own
    folder, and the sources are untouched."""
    source_dir, out = tmp_path / "corpus", tmp_path / "copy"
    (source_dir / "sub").mkdir(parents=True)
    clip = CORPORA / "emodb" / CLIP
    (tmp_path / "outside.flac").write_bytes(clip.read_bytes())
    (source_dir / "sub" / "a.flac").write_bytes(clip.read_bytes())
    manifest = source_dir / "manifest.csv"
    manifest.write_text("path,speaker,emotion\n"
                        f"{tmp_path / 'outside.flac'},s1,angry\n../outside.flac,s1,sad\nsub/a.flac,s2,happy\n")
    before = {p: p.read_bytes() for p in (tmp_path / "outside.flac", source_dir / "sub" / "a.flac")}
    with open(write_channel_copy(manifest, "telephone", out), newline="") as f:
        copied = [r["path"] for r in csv.DictReader(f)]
    assert copied[2] == "sub/a.flac" and all(not p.startswith(("/", "..")) for p in copied)
    assert len(set(copied)) == 3 and all((out / p).resolve().is_relative_to(out.resolve()) for p in copied)
    assert all((out / p).is_file() for p in copied)
    assert all(p.read_bytes() == data for p, data in before.items())
