"""The Python API: `emolive.analyze` on files and arrays, `emolive.stream`, one error class, a light import."""
from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

import emolive
from tests.conftest import corpus_files, read_audio

ESTIMATE_FIELDS = ("activation", "valence", "dominance")
CLI = str(Path(sys.executable).parent / "emolive")


@pytest.fixture(scope="module")
def student(one_torch_thread):
    return emolive.load_model("student")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """Two corpus clips back to back (about 5 s): several windows, and a whole-file estimate."""
    samples = np.concatenate([read_audio(p) for p in corpus_files("emodb", every=200, limit=2)])
    path = tmp_path_factory.mktemp("api") / "clip.flac"
    sf.write(path, samples, 16000)
    return path, samples


def test_import_is_light_and_public_names_load_on_use():
    code = ("import sys, emolive; heavy = [m for m in ('numpy', 'torch', 'zmq') if m in sys.modules]; "
            "assert not heavy, heavy; emolive.EmoliveError; assert 'torch' not in sys.modules; "
            "print(sorted(emolive.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "analyze" in out and "stream" in out and "Estimate" in out


def test_analyze_a_file_gives_windows_and_a_whole_recording_estimate(student, clip):
    path, samples = clip
    result = emolive.analyze(path, model=student)
    duration = len(samples) / 16000
    frames = 1 + (len(samples) - 400) // 320  # 25 ms frames every 20 ms
    assert len(result.windows) == (frames - 150) // 25 + 1  # 3 s windows (150 frames) every 0.5 s (25 frames)
    assert [w["seq"] for w in result.windows] == list(range(len(result.windows)))
    whole = result.whole
    assert whole is not None and whole["kind"] == "stream" and whole["start"] == 0.0
    assert abs(whole["end"] - duration) < 0.025  # the frames end within one frame of the file's end
    assert all(1.0 <= whole[name] <= 7.0 for name in ESTIMATE_FIELDS)
    emolive.engine.schema.validate_turn(whole)
    for w in result.windows:
        emolive.engine.schema.validate_estimate(w)


def test_whole_recording_estimate_is_the_model_over_all_frames(student, clip):
    from emolive.engine.features import compute
    from emolive.engine.features.normalise import as_one_stream

    path, samples = clip
    whole = emolive.analyze(path, model=student).whole
    direct = student.predict(as_one_stream(compute(samples), student.meta.stream_normalisation), samples)
    # the runner's streamed frames equal the offline front end's (tested in test_features), so the
    # same float32 model on the same input gives the same numbers up to the order of summation
    np.testing.assert_allclose([whole[n] for n in ESTIMATE_FIELDS], np.clip(direct.avd, 1, 7), atol=1e-5)


def test_records_become_a_dataframe_in_one_call(student, clip):
    import pandas

    result = emolive.analyze(clip[0], model=student)
    frame = pandas.DataFrame(result.to_records())
    assert len(frame) == len(result.windows)
    assert {"start", "end", *ESTIMATE_FIELDS, "speech"} <= set(frame.columns)
    assert [c for c in frame.columns if c.startswith("p_")] == [f"p_{n}" for n in student.meta.class_names]
    assert len(result.to_dataframe("file")) == 1


def test_an_array_at_any_rate_and_channel_count_gives_what_the_file_gives(student, clip):
    path, samples = clip
    from_file = emolive.analyze(path, model=student)
    # equal channels downmix to the same samples exactly ((a + a) / 2 == a in float32)
    stereo = emolive.analyze(np.stack([samples, samples], axis=1), sample_rate=16000, model=student)
    assert [w["activation"] for w in stereo.windows] == [w["activation"] for w in from_file.windows]
    # int16 PCM is scaled by 1/32768 as soundfile scales it: exact for these 16-bit corpus samples
    pcm = np.round(samples * 32768).astype(np.int16)
    as_int = emolive.analyze(pcm, sample_rate=16000, model=student)
    assert [w["valence"] for w in as_int.windows] == [w["valence"] for w in from_file.windows]
    # 44.1 kHz stereo: resampled up and back by soxr (passband ripple ~0.01 dB, stop band -100 dB), so
    # the front end sees nearly the same band; the running normaliser carries the small feature differences
    # through the whole stream, so the outputs move by up to ~0.2 on the 1-7 scale (measured 0.03-0.19 on
    # six EmoDB pairs with the default model), while a rate wrong by only 9 % (48 kHz declared) moves
    # them by 0.5-1.5: 0.3 tells the two apart for any model that is not far more input-sensitive
    hi = soxr.resample(samples, 16000, 44100)
    resampled = emolive.analyze(np.stack([hi, 0.5 * hi], axis=1), sample_rate=44100, model=student)
    assert len(resampled.windows) == len(from_file.windows)
    got = np.array([[w[n] for n in ESTIMATE_FIELDS] for w in resampled.windows])
    want = np.array([[w[n] for n in ESTIMATE_FIELDS] for w in from_file.windows])
    assert np.abs(got - want).max() < 0.3


@pytest.mark.parametrize("source, kwargs, match", [
    (np.zeros(16000, np.float32), {}, "sample rate"),
    (np.zeros((2, 3, 4), np.float32), {"sample_rate": 16000}, "shape"),
    (np.zeros(16000, np.complex64), {"sample_rate": 16000}, "dtype"),
    ("/no/such/file.wav", {}, "not found"),
    ("/no/such/file.wav", {"sample_rate": 8000}, "sample_rate is for arrays"),
    # a WAV file's bytes are not samples: not "an audio array of shape ()"
    (corpus_files("emodb", limit=1)[0].read_bytes(), {"sample_rate": 16000}, r"^\d+ bytes were taken as samples: "
     "give a file path, or samples .* decode them first"),
    ((), {}, "^an empty tuple was taken as samples and holds none: give a file path"),
    ([0.5] * 16000, {}, r"^an array of samples needs its sample rate \(list given without one\): pass sample_rate="),
])
def test_user_errors_raise_the_one_documented_class_with_one_line(student, source, kwargs, match):
    with pytest.raises(emolive.EmoliveError, match=match) as info:
        emolive.analyze(source, model=student, **kwargs)
    assert "\n" not in str(info.value)


def test_an_unknown_model_and_a_bad_window_are_emolive_errors(student):
    with pytest.raises(emolive.EmoliveError, match="no model named"):
        emolive.load_model("no-such-model")
    with pytest.raises(emolive.EmoliveError, match="frame shift"):
        emolive.analyze(np.zeros(16000, np.float32), sample_rate=16000, model=student, window=0.013)


def test_stream_yields_the_estimates_analyze_makes(student, clip):
    path, _ = clip
    streamed = list(emolive.stream(str(path), model=student))
    analysed = emolive.analyze(path, model=student).windows
    assert [(e["start"], e["activation"]) for e in streamed] == [(e["start"], e["activation"]) for e in analysed]


def test_stream_takes_an_array_in_any_layout(student, clip):
    path, samples = clip
    from_file = [(e["start"], e["valence"]) for e in emolive.stream(str(path), model=student)]
    stereo_first = np.stack([samples, samples])  # (channels, frames), as torchaudio gives
    from_array = [(e["start"], e["valence"]) for e in emolive.stream(stereo_first, sample_rate=16000, model=student)]
    assert from_array == from_file  # the mean of two equal channels is exact: the same samples
    with pytest.raises(emolive.EmoliveError, match="sample rate"):
        next(emolive.stream(samples, model=student))
    with pytest.raises(emolive.EmoliveError, match="^a list holding paths was taken as one input: give one file path"):
        next(emolive.stream([str(path)], model=student))


def test_leaving_a_stream_early_stops_the_engine_thread(student):
    before = threading.active_count()
    live = emolive.stream(None, model=student)  # the microphone, or the demo clip at real time
    first = next(live)
    live.close()
    assert first["end"] >= 3.0 - 0.025
    assert threading.active_count() == before


def test_a_stream_left_open_at_exit_is_stopped_before_the_interpreter_finalises(tmp_path):
    """A notebook's global iterator: its engine thread ran on into finalisation, inside onnxruntime, and
    the process aborted in 2 runs of 10. A handler registered before emolive's runs after it (atexit is
    last in, first out) and sees no engine thread left; the process ends cleanly."""
    path = tmp_path / "long.wav"
    sf.write(path, np.concatenate([read_audio(p) for p in corpus_files("emodb", every=20)[:12]]), 16000)
    code = ("import atexit, threading\n"
            "atexit.register(lambda: print('left:', sorted(t.name for t in threading.enumerate() "
            "if t.name.startswith('emolive'))))\n"
            f"import emolive\nlive = emolive.stream({str(path)!r})\nprint('first:', next(live)['end'])\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "first: 3.0" in result.stdout and "left: []" in result.stdout, result.stdout


def test_a_stream_without_a_microphone_says_it_plays_the_demo_clip(student, monkeypatch, caplog):
    """`emolive stream` says so as it starts; emolive.stream(None) played the demo clip without a word."""
    from emolive.engine.sources import factory

    monkeypatch.setattr(factory, "list_input_devices", lambda: [])  # a machine without any input device
    live = emolive.stream(None, model=student)
    next(live)
    live.close()
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("no microphone found: playing the bundled demo clip" in m for m in warned), warned


def test_stream_with_turns_interleaves_speech_turns_with_the_windows(student, clip):
    path, _ = clip
    items = list(emolive.stream(str(path), model=student, turns=True))
    turns = [item for item in items if "kind" in item]
    assert turns and all(t["kind"] == "turn" for t in turns)
    assert [t["start"] for t in turns] == [t["start"] for t in emolive.analyze(path, model=student).turns]
    assert len(items) - len(turns) == len(emolive.analyze(path, model=student).windows)


@pytest.mark.parametrize("stream_id, why", [("a.b", "1-64 letters"), ("", "1-64 letters"), ("x" * 65, "at most 64")])
def test_a_stream_id_the_messages_cannot_carry_is_refused_by_the_api_and_the_cli(student, clip, stream_id, why):
    """The schema's topics take 1-64 letters, digits, '_' and '-': the CLI refused others, the API
    sent them (and a 65-character id was refused for its letters, not its length)."""
    path, _ = clip
    with pytest.raises(emolive.EmoliveError, match=why):
        next(emolive.stream(path, model=student, stream_id=stream_id))
    run = subprocess.run([CLI, "stream", "--source", str(path), "--stream-id", stream_id], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 2 and why in run.stderr


def test_listen_takes_a_count_of_one_or_more():
    for count in ("0", "-3"):
        run = subprocess.run([CLI, "listen", "--count", count], capture_output=True, text=True, timeout=60)
        assert run.returncode == 2 and "give a whole number >= 1" in run.stderr


def test_a_model_name_wins_over_a_folder_of_that_name_and_says_so(tmp_path, monkeypatch, caplog):
    """`student` is the installed model even where ./student is a bundle; the user hears which was
    taken and how to name the folder (nothing said it before)."""
    import shutil

    shutil.copytree(Path(__file__).resolve().parent.parent / "plugins" / "student" / "default", tmp_path / "student")
    monkeypatch.chdir(tmp_path)
    with caplog.at_level("WARNING"):
        plugin = emolive.load_model("student")
    assert plugin.name == "student" and "give its path (./student)" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        emolive.load_model("./student")
    assert "give its path" not in caplog.text


def test_ctrl_c_during_the_first_call_leaves_emolive_usable(tmp_path):
    """The first call imports the engine (numpy, onnxruntime); a Ctrl-C in the middle of those imports left
    them half made, and every later call in the process failed ("module 'numpy' has no attribute 'void'",
    "cannot load module more than once per process"): a notebook's kernel was lost. The interrupt now
    comes once the imports are whole, and the next call works. The signal is sent as numpy's import
    reaches its `_core.numeric` (an import hook), where a Ctrl-C broke it every time here."""
    import subprocess
    import sys

    clip = corpus_files("emodb", limit=1)[0]
    code = ("import os, signal, sys\n"
            "signal.signal(signal.SIGINT, signal.default_int_handler)\n"  # a background job starts with it ignored
            "class Interrupt:\n"
            "    def find_spec(self, name, path, target=None):\n"
            "        if name == 'numpy._core.numeric':\n"
            "            sys.meta_path.remove(self)\n"
            "            os.kill(os.getpid(), signal.SIGINT)\n"
            "sys.meta_path.insert(0, Interrupt())\n"
            "import emolive\n"
            f"try:\n    emolive.analyze({str(clip)!r})\nexcept KeyboardInterrupt:\n    print('interrupted')\n"
            f"print(emolive.analyze({str(clip)!r}).whole['activation'])\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    interrupted, activation = run.stdout.split()
    assert interrupted == "interrupted" and 1.0 <= float(activation) <= 7.0


def test_a_live_loop_that_falls_behind_skips_the_oldest_estimates(student, monkeypatch, caplog, tmp_path):
    """Live estimates waited for a loop body slower than the hop without bound (10 s behind after 20 of
    a 1 s body): now at most LIVE_WAITING wait, the oldest going first, said, as other live outputs do."""
    import time

    import emolive.api

    monkeypatch.setattr(emolive.api, "LIVE_WAITING", 2)
    path = tmp_path / "speech.wav"
    sf.write(path, np.concatenate([read_audio(p) for p in corpus_files("emodb", limit=3)]), 16000)
    seqs, lags = [], []
    with caplog.at_level("WARNING"):
        for estimate in emolive.stream(str(path), model=student, realtime=True, window=1.0, hop=0.2):
            seqs.append(estimate["seq"])
            lags.append(time.time() - estimate["wall_end"])
            time.sleep(0.6)
    assert seqs != list(range(len(seqs))) and seqs == sorted(seqs)  # some skipped, the rest in order
    assert max(lags) < 2 * 0.2 + 0.6 + 1.0  # two waiting, the one in hand, and a second of a loaded machine
    assert "the oldest of the 2 waiting estimates are skipped" in caplog.text and "estimate(s) skipped" in caplog.text
