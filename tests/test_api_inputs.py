"""Every input `emolive.analyze` may be handed: one EmoliveError line each, or the right result."""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import emolive
from emolive.engine.sources.base import MAX_RATE, MIN_RATE
from tests.conftest import corpus_files, read_audio


@pytest.fixture(scope="module")
def model():
    return emolive.load_model("student")


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return read_audio(corpus_files("ravdess", every=300, limit=1)[0])


@pytest.mark.parametrize("rate", [math.nan, math.inf, -16000, 0, 1, MIN_RATE - 1, MAX_RATE + 1, "16000", None,
                                  True, [16000]])
def test_a_bad_sample_rate_is_one_line(model, speech, rate):
    with pytest.raises(emolive.EmoliveError, match="sample rate|needs its sample rate|not a number of Hz") as err:
        emolive.analyze(speech, sample_rate=rate, model=model)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("rate", ["16000", np.array([16000]), torch.tensor(16000)])
def test_a_sample_rate_of_another_type_is_said_to_be_one_not_out_of_range(model, speech, rate):
    """"sample rate '16000' Hz is outside the 1000 to 768000 Hz emolive reads" said a range the value is in."""
    with pytest.raises(emolive.EmoliveError, match=f"is a {type(rate).__name__}, not a number of Hz") as err:
        emolive.analyze(speech, sample_rate=rate, model=model)
    assert "outside" not in str(err.value)


def test_sample_rate_for_a_batch_is_refused_and_for_stdin_is_its_rate(model, speech, tmp_path):
    """A batch ignored sample_rate= without a word (one file refused it); emolive.stream('-') could not be
    told stdin's rate, and its error said stdin "says its own rate", which raw PCM never does."""
    import subprocess
    import sys

    import soxr

    path = corpus_files("emodb", limit=1)[0]
    with pytest.raises(emolive.EmoliveError, match="sample_rate is for arrays; the files of a batch each say"):
        emolive.analyze([str(path)], sample_rate=8000, model=model)
    with pytest.raises(emolive.EmoliveError, match=r"sample_rate is for arrays and raw PCM on stdin \('-'\)"):
        next(emolive.stream(str(path), sample_rate=8000, model=model))
    with pytest.raises(emolive.EmoliveError, match="sample rate 0 Hz is outside"):  # it had said stdin "says its own"
        next(emolive.stream("-", sample_rate=0, model=model))
    raw = tmp_path / "speech44.f32"
    soxr.resample(speech, 16000, 44100).astype(np.float32).tofile(raw)
    code = ("import emolive, json\n"
            "print(json.dumps([e['activation'] for e in emolive.stream('-', sample_rate=44100)]))\n")
    with open(raw, "rb") as stdin:
        run = subprocess.run([sys.executable, "-c", code], stdin=stdin, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    streamed = np.array(eval(run.stdout))  # noqa: S307 (JSON of floats, printed by the line above)
    windows = [w["activation"] for w in emolive.analyze(soxr.resample(speech, 16000, 44100), sample_rate=44100,
                                                        model=model).windows]
    np.testing.assert_allclose(streamed, windows, atol=1e-5)  # one resampler, one model: the same numbers


def test_a_window_just_off_the_frame_grid_is_shown_to_its_last_digit_under_both_names(model, speech):
    """60.0000001 was refused as "--window 60 s must be a positive multiple" (60 is one), and a Python
    caller read of an option it never passed."""
    with pytest.raises(emolive.EmoliveError, match=r"^window \(--window, window=\) 60.0000001 s must be a positive "
                                                   "multiple of the 20 ms frame shift$"):
        emolive.analyze(speech, sample_rate=16000, model=model, window=60.0000001)


@pytest.mark.parametrize("samples", [np.float32(0.5), np.zeros(0, np.float32), np.zeros((2, 3, 4), np.float32),
                                     np.array(["a", "b"]), np.zeros(100, bool), np.zeros(100, np.complex64),
                                     [[1.0, 2.0], [3.0]], object()])
def test_unusable_arrays_are_one_line(model, samples):
    with pytest.raises(emolive.EmoliveError) as err:
        emolive.analyze(samples, sample_rate=16000, model=model)
    assert "\n" not in str(err.value)


def test_a_file_whose_rate_is_out_of_bounds_is_refused_before_any_work(model, tmp_path):
    path = tmp_path / "one_hertz.wav"
    sf.write(path, np.zeros(20000, np.int16), 1)  # 40 kB that would resample into 320 M samples a second
    with pytest.raises(emolive.EmoliveError, match="sample rate 1 Hz"):
        emolive.analyze(path, model=model)


def test_every_layout_and_array_like_gives_the_same_windows(model, speech):
    """(frames,), (frames, 2), (2, frames), a list, a torch tensor and unsigned 8-bit PCM are one signal."""
    mono = speech[: 16000 * 4]
    want = emolive.analyze(mono, sample_rate=16000, model=model).windows
    assert want
    stereo = np.stack([mono, mono], axis=1)
    for samples in (stereo, stereo.T, mono.tolist(), torch.from_numpy(mono), torch.from_numpy(stereo.T.copy())):
        got = emolive.analyze(samples, sample_rate=16000, model=model).windows
        # the same float32 samples (a mean of two equal channels is exact): the same estimates
        assert [w["activation"] for w in got] == [w["activation"] for w in want]
    as_u8 = np.clip(np.round(mono * 127) + 128, 0, 255).astype(np.uint8)
    u8 = emolive.analyze(as_u8, sample_rate=16000, model=model).windows
    assert len(u8) == len(want)
    # 8-bit quantisation moves the estimates a little, never to a "non-finite" error or silence
    assert any(w["speech"] for w in u8)


def test_an_array_whose_time_axis_is_unclear_is_refused_and_its_transpose_read(model, speech):
    """(40, frames) is neither channels first (at most 32) nor a recording (40 frames of more
    channels): read as the latter it gave no estimate and no error."""
    mono = speech[: 16000 * 4]
    forty = np.tile(mono, (40, 1))
    with pytest.raises(emolive.EmoliveError, match=rf"shape \(40, {len(mono)}\).*samples\.T") as err:
        emolive.analyze(forty, sample_rate=16000, model=model)
    assert "\n" not in str(err.value)
    # 40 equal 16-bit samples sum and divide back exactly in float32: the mono estimates
    want = [w["activation"] for w in emolive.analyze(mono, sample_rate=16000, model=model).windows]
    assert want and [w["activation"] for w in emolive.analyze(forty.T, sample_rate=16000, model=model).windows] == want


def test_a_float64_sample_beyond_float32_is_out_of_range(model, speech):
    samples = speech.astype(np.float64)
    samples[20000] = -1e40
    with pytest.raises(emolive.EmoliveError, match="out of range at 1.250 s") as err:
        emolive.analyze(samples, sample_rate=16000, model=model)
    assert "\n" not in str(err.value) and "non-finite" not in str(err.value)


def test_audio_shorter_than_one_frame_is_an_error_naming_it_everywhere(model, tmp_path):
    """Fewer than 400 samples make no frame and so no estimate: an error naming the input, as an
    empty file is, from analyze (file or array), in a batch's errors, and from `emolive stream`
    (exit 1); not an empty result whose `whole` is None. 400 samples are one frame and one estimate."""
    import subprocess
    import sys
    from pathlib import Path

    short = tmp_path / "short.wav"
    sf.write(short, np.full(399, 0.1, np.float32), 16000)
    with pytest.raises(emolive.EmoliveError, match=r"short\.wav: 24\.9 ms of audio is shorter than one 25 ms frame"):
        emolive.analyze(short, model=model)
    with pytest.raises(emolive.EmoliveError, match="shorter than one 25 ms frame"):
        emolive.analyze(np.zeros(100, np.float32), sample_rate=16000, model=model)
    assert "shorter than one 25 ms frame" in emolive.analyze([short], model=model).errors[str(short)]
    cli = Path(sys.executable).parent / "emolive"
    proc = subprocess.run([str(cli), "stream", "--source", str(short), "--json", "--no-publish"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1].startswith("emolive: error: file ")
    assert emolive.analyze(np.zeros(400, np.float32), sample_rate=16000, model=model).whole is not None


def test_inputs_of_the_wrong_kind_are_one_line_naming_what_is_wrong(model, tmp_path):
    """A start given as text (a raw TypeError traceback before), a batch with one item not a path
    (the message named no item), an open file object (called an array before); and a failed file's
    label is NaN in a DataFrame, as its other missing values are."""
    path = corpus_files("emodb", limit=1)[0]
    for span in ({"start": "5", "end": 8}, {"start": 1, "end": "8"}):
        with pytest.raises(emolive.EmoliveError, match=r"give 0 <= start < end, numbers of seconds"):
            emolive.analyze(path, model=model, **span)
    with pytest.raises(emolive.EmoliveError, match=r"a list of paths is a batch, but item 1 is None: give only paths"):
        emolive.analyze([str(path), None], model=model)
    with pytest.raises(emolive.EmoliveError, match=r"but item 1 is array\(\[\[0\., 0\., .*…: give only") as err:
        emolive.analyze([str(path), np.zeros((2, 16000))], model=model)  # numpy's repr: four lines
    assert "\n" not in str(err.value)
    with open(path, "rb") as opened, pytest.raises(emolive.EmoliveError, match=r"an open file \(BufferedReader\)"):
        emolive.analyze(opened, model=model)
    broken = tmp_path / "broken.wav"
    broken.write_text("not audio")
    frame = emolive.analyze([str(path), str(broken)], model=model).to_dataframe("file")
    assert frame["label"].isna().tolist() == [False, True] and frame["error"].tolist()[0] == ""


@pytest.mark.parametrize("options, message", [({"hop": "0.5"}, r"hop \(--hop, hop=\) '0.5': give a number of seconds"),
                                              ({"model": None}, "model=None: give a name"),
                                              ({"microphone": "x"}, r"give emolive.MicrophoneOptions\(")])
def test_stream_options_of_the_wrong_kind_are_emolive_errors(options, message):
    """They raised TypeError or AttributeError from deep inside; MicrophoneOptions is public for it."""
    path = corpus_files("emodb", limit=1)[0]
    with pytest.raises(emolive.EmoliveError, match=message):
        next(emolive.stream(path, **options))
    assert emolive.MicrophoneOptions(channels=(1,)).channels == (1,)


def test_samples_scaled_for_another_type_are_refused_or_warned_about(model, speech, caplog):
    """A list of Python ints becomes int64, whose range made 16-bit speech silence without a word (activation
    2.65 against 6.36, no speech window): refused. 16-bit values in int32, or as floats, are taken as given
    (a recording may be that quiet or loud) but warned about, as their estimates move; int16 is not."""
    pcm = np.round(speech[:16000 * 3] * 32767).astype(np.int16)
    with pytest.raises(emolive.EmoliveError, match=r"int64 \(a list of Python ints is one\)"):
        emolive.analyze(pcm.tolist(), sample_rate=16000, model=model)
    for samples, warning in ((pcm.astype(np.int32), "if they are 16-bit samples, give them as int16"),
                             (pcm.astype(np.float32), "divide them by 32768"), (pcm, None)):
        caplog.clear()
        emolive.analyze(samples, sample_rate=16000, model=model)
        warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert (warning is None and not warned) or (len(warned) == 1 and warning in warned[0]), warned


def test_a_bfloat16_tensor_is_read_as_its_float32_values(model, speech):
    """numpy has no bfloat16: the tensor's .numpy() raised TypeError from deep inside."""
    tensor = torch.from_numpy(speech[:16000 * 3]).to(torch.bfloat16)
    got = emolive.analyze(tensor, sample_rate=16000, model=model).whole
    assert got == {**emolive.analyze(tensor.float(), sample_rate=16000, model=model).whole,
                   "latency_ms": got["latency_ms"], "wall_start": got["wall_start"], "wall_end": got["wall_end"]}


@pytest.mark.parametrize("source", [None, 5, 2.5, True])
def test_nothing_or_a_number_is_neither_a_path_nor_samples(model, source):
    with pytest.raises(emolive.EmoliveError, match=rf"^{source!r} is neither a file path nor samples: give a file"):
        emolive.analyze(source, sample_rate=16000, model=model)


def test_a_table_whose_rows_lack_every_value_keeps_numeric_columns(model):
    """A silent recording has no speech turn: its one turn row held None in object columns, so
    d.activation.round() raised TypeError; a batch's frame had NaN. Both have NaN in float columns now."""
    frame = emolive.analyze(np.zeros(32000, np.float32), sample_rate=16000, model=model).to_dataframe("turn")
    assert frame["activation"].dtype == np.float64 and frame["activation"].isna().all()
    assert frame["label"].isna().all() and frame["activation"].round(2).isna().all()


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_num_workers_must_be_one_or_more_processes(model, workers):
    """`emolive score --jobs 0` was refused while num_workers=0 was taken as 1."""
    with pytest.raises(emolive.EmoliveError, match=rf"num_workers={workers!r}: give a whole number of processes"):
        emolive.analyze([str(corpus_files("emodb", limit=1)[0])], model=model, num_workers=workers)


def test_a_folder_without_audio_is_an_error_as_in_emolive_score(model, tmp_path):
    """It gave an empty Analyses without a word, where `emolive score` said no audio files were found."""
    (tmp_path / "notes.txt").write_text("no audio here")
    with pytest.raises(emolive.EmoliveError, match=f"no audio files found in {tmp_path}"):
        emolive.analyze(tmp_path, model=model)


@pytest.mark.parametrize("level", [3e38, 5e7])
def test_samples_no_recording_holds_are_an_error_not_an_estimate(model, speech, tmp_path, level):
    """A float WAV of 3e38 came out as a "neutral" estimate, with numpy's overflow warnings on stderr; the
    samples before the first such value are still scored (a recording's overshoot, or 16-bit values as
    floats, stay well below the 1e6 bound)."""
    samples = np.concatenate([speech, np.full(16000, level, np.float32)])
    path = tmp_path / "loud.wav"
    sf.write(path, samples, 16000, subtype="FLOAT")
    refusal = f"a sample of {level:.3g} at {len(speech) / 16000:.3f} s, where audio lies within ±1"
    with pytest.raises(emolive.PartialAnalysis, match=re.escape(refusal)) as caught:
        emolive.analyze(path, model=model)
    assert caught.value.analysis.whole is not None  # the speech before it was scored
    assert emolive.analyze(speech * 32767, sample_rate=16000, model=model).whole is not None


def avd(analysis) -> tuple[float, ...]:
    """The whole recording's estimate (its clock times differ from run to run)."""
    return tuple(analysis.whole[name] for name in ("activation", "valence", "dominance"))


def test_a_file_named_raw_is_decoded_by_its_content_and_a_headerless_one_is_one_line(model, speech, tmp_path):
    """soundfile takes any '.raw' name as headerless PCM and raised TypeError ("samplerate must be
    specified") out of analyze, stream and a whole batch; the choice is made on the content."""
    sf.write(tmp_path / "take.wav", speech, 16000)
    (tmp_path / "take.wav").rename(tmp_path / "take.raw")
    (tmp_path / "headerless.raw").write_bytes(np.zeros(16000, np.int16).tobytes())
    wav = emolive.analyze(tmp_path / "take.raw", model=model)
    assert avd(wav) == avd(emolive.analyze(speech, sample_rate=16000, model=model))
    batch = emolive.analyze(tmp_path, model=model)
    assert [Path(a.file).name for a in batch] == ["headerless.raw", "take.raw"]
    assert batch[0].error.endswith("headerless.raw: no audio stream in the file") and not batch[1].error


def test_a_stretch_keeps_the_recordings_times_exactly_whatever_number_gives_its_start(model, tmp_path):
    """Seconds added to seconds put a stretch's windows at 8.004999999999999 where the recording's end
    at 8.005, so only 6 of 10 rows joined on the (file, start, end) index; a numpy start= made every
    time a float32, and the records no longer went into json.dumps."""
    import json

    long = np.concatenate([read_audio(p) for p in corpus_files("ravdess", limit=4)])
    sf.write(tmp_path / "long.flac", long, 16000)
    full = emolive.analyze(tmp_path / "long.flac", model=model).to_dataframe("window")
    for start in (2, 2.0, np.float32(2.0), np.int64(2)):
        part = emolive.analyze(tmp_path / "long.flac", start=start, model=model)
        json.dumps(part.to_records("window"))
        assert all(type(w["start"]) is float and type(w["end"]) is float for w in part.windows)
        assert len(full.index.intersection(part.to_dataframe("window").index)) == len(part.windows) > 5


def test_api_arguments_of_the_wrong_kind_are_emolive_errors_or_read(model, speech):
    """load_model(None) raised TypeError and load_model("") loaded the current folder; an array with
    microphone options streamed, ignoring them; a memoryview of float32 samples was refused as bytes
    with a quarter of its byte count; one failed file made a batch table's speech an object column,
    which `frame[frame.speech]` refused."""
    for spec in (None, 3, ""):
        with pytest.raises(emolive.EmoliveError, match=rf"^model {spec!r}: give a name"):
            emolive.load_model(spec)
    with pytest.raises(emolive.EmoliveError, match=r"^microphone= is for the microphone and files"):
        next(emolive.stream(speech, sample_rate=16000, model=model,
                            microphone=emolive.MicrophoneOptions(channels=(2,))))
    assert avd(emolive.analyze(memoryview(speech), sample_rate=16000, model=model)) == \
        avd(emolive.analyze(speech, sample_rate=16000, model=model))
    with pytest.raises(emolive.EmoliveError, match=r"^8 bytes were taken as samples"):
        emolive.analyze(memoryview(b"RIFF0000"), sample_rate=16000, model=model)
    clip = str(corpus_files("emodb", limit=1)[0])
    frame = emolive.analyze([clip, clip + ".missing.flac"], model=model).to_dataframe("file")
    assert str(frame.speech.dtype) == "boolean" and len(frame[frame.speech]) == 1


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


def test_a_mix_that_loses_the_voice_is_warned_about_and_channels_pick_what_to_hear(model, speech, caplog):
    """Mixing to mono cancelled a phase-inverted pair to silence (every window "not speech") and turned
    one voiced channel of six down 16 dB (the student hears level), without a word: both warn once,
    naming the channels to take, and `channels=` takes them, as the array's own column does."""
    voice = speech[:16000 * 4]
    quiet = np.zeros_like(voice)
    late = np.concatenate([np.zeros(16000 * 6, np.float32), voice])  # the other side of a call answers at 6 s
    cases = {"inverted": (np.stack([voice, -voice], 1), "cancel each other when mixed to mono throughout (the mix is "
                          "over 120 dB", "channel 1 alone"),
             "one of six": (np.stack([quiet, quiet, voice, quiet, quiet, quiet], 1),
                            "channels 1+2+4+5+6 of 6 are silent throughout, so the mono mix is 16 dB quieter than "
                            "channel 3", "channels=[3]"),
             "a side holding only DC": (np.stack([voice, np.full_like(voice, 0.5)], 1),
                                        "channel 2 of 2 is silent throughout, so the mono mix is 6 dB", "--channel 1"),
             "stereo": (np.stack([voice, 0.5 * voice + 0.01 * np.roll(voice, 800)], 1), None, None),
             "a side answering later": (np.stack([np.concatenate([voice, np.zeros(16000 * 6, np.float32)]), late], 1),
                                        None, None)}
    alone = emolive.analyze(voice, sample_rate=16000, model=model).whole
    for name, (samples, warning, fix) in cases.items():
        caplog.clear()
        emolive.analyze(samples, sample_rate=16000, model=model)
        warned = warnings_of(caplog)
        assert (warning is None and not warned) or (len(warned) == 1 and warning in warned[0]
                                                    and fix in warned[0]), warned
    picked = emolive.analyze(cases["one of six"][0], sample_rate=16000, model=model, channels=[3]).whole
    assert [picked[k] for k in ("activation", "valence", "dominance")] == [alone[k] for k in
                                                                          ("activation", "valence", "dominance")]
    for same in (range(3, 4), np.array([3])):  # any sequence of channel numbers
        again = emolive.analyze(cases["one of six"][0], sample_rate=16000, model=model, channels=same).whole
        assert [again[k] for k in ("activation", "valence", "dominance")] == [alone[k] for k in
                                                                             ("activation", "valence", "dominance")]
    for bad in ([0], [1.5], "2", [True], 3):
        with pytest.raises(emolive.EmoliveError, match="channel numbers counted from 1"):
            emolive.analyze(voice, sample_rate=16000, model=model, channels=bad)
    with pytest.raises(emolive.EmoliveError, match="channel 3 is given twice"):  # it counted double in the mix
        emolive.analyze(cases["one of six"][0], sample_rate=16000, model=model, channels=[3, 1, 3])
    with pytest.raises(emolive.EmoliveError, match="channel 7 is not one of them"):
        emolive.analyze(cases["one of six"][0], sample_rate=16000, model=model, channels=[7])


def test_a_float_file_of_16_bit_values_is_warned_about_as_an_array_is(model, speech, tmp_path, caplog):
    """A float WAV holding 16-bit sample values was scored at 90 dB over full scale without a word."""
    path = tmp_path / "loud.wav"
    sf.write(path, speech[:16000 * 3] * 32767, 16000, subtype="FLOAT")
    emolive.analyze(path, model=model)
    assert len(warned := warnings_of(caplog)) == 1 and "divide them by 32768" in warned[0] and "loud.wav" in warned[0]


def test_an_all_nan_array_is_the_error_alone(model, recwarn):
    """numpy's "All-NaN slice" RuntimeWarning printed before the one-line error."""
    with pytest.raises(emolive.EmoliveError, match="NaN"):
        emolive.analyze(np.full(48000, np.nan, np.float32), sample_rate=16000, model=model)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_stream_takes_channels_as_analyze_does(model, speech, tmp_path):
    """emolive.stream had no channels=: a file's side of a call was only reachable through
    MicrophoneOptions, an array's by slicing it."""
    voice = speech[:16000 * 4]
    call = np.stack([np.zeros_like(voice), voice], 1)
    path = tmp_path / "call.wav"
    sf.write(path, call, 16000, subtype="FLOAT")
    want = [w["valence"] for w in emolive.analyze(call, sample_rate=16000, model=model, channels=[2]).windows]
    for source, rate in ((path, None), (call, 16000)):
        got = [e["valence"] for e in emolive.stream(source, sample_rate=rate, model=model, channels=[2])]
        assert got == want and len(got) > 0
    with pytest.raises(emolive.EmoliveError, match="both pick channels: give one"):
        next(emolive.stream(path, model=model, channels=[2], microphone=emolive.MicrophoneOptions(channels=(1,))))


def test_a_stdin_stream_left_takes_nothing_more_from_stdin(speech):
    """The engine's reader, left waiting on stdin after the loop was left, took the next second of it and
    dropped it: the program's own next read (or a second stream) lost it without a word."""
    import subprocess
    import sys
    import time

    child = ("import emolive, sys\n"
             "for e in emolive.stream('-', sample_rate=16000):\n"
             "    if e['end'] >= 2.5:\n"
             "        break\n"
             "print('left', flush=True)\n"
             "print(len(sys.stdin.buffer.read()), flush=True)\n")
    audio = np.resize(speech, 6 * 16000).astype(np.float32)  # repeated to 6 s
    run = subprocess.Popen([sys.executable, "-c", child], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=False)
    try:
        run.stdin.write(audio[:4 * 16000].tobytes())
        run.stdin.flush()
        assert run.stdout.readline() == b"left\n"
        time.sleep(0.5)  # the stream's reader, had it stayed, waits on stdin now
        run.stdin.write(audio[4 * 16000:].tobytes())
        run.stdin.close()
        assert int(run.stdout.readline()) == 2 * 16000 * 4  # every byte written after the loop was left
        assert run.wait(timeout=60) == 0
    finally:
        run.kill()
