"""`emolive` end to end: a corpus file through `emolive stream` to a real SUB socket, and one-line errors."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import sounddevice as sd
import soundfile as sf
import torch
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from emolive.engine.session import DEMO_CLIP
from tests.conftest import REPO, corpus_files, interruptible, read_audio
from emolive.engine.cli import main
from emolive.engine.features import compute
from emolive.engine.features.normalise import as_one_stream
from emolive.engine.plugin import ModelSummary, load_model, summarise
from emolive.engine.schema import estimate_payload, validate_estimate, validate_status, validate_turn
from emolive.engine.sinks import ZmqPublisher
from emolive.engine.sinks.table import HEADER
from emolive.engine.windows import MAX_SECONDS, WindowError, WindowSpec
from emolive.plugins.student import DEFAULT_BUNDLE

EMOLIVE = [str(Path(sys.executable).parent / "emolive")]  # the installed console script, as users run it


@pytest.fixture(scope="module")
def student():
    torch.set_num_threads(1)
    return load_model("student")


@pytest.fixture(scope="module")
def speech_flac(tmp_path_factory, speech) -> Path:
    path = tmp_path_factory.mktemp("audio") / "speech.flac"
    sf.write(path, speech, 16000, subtype="PCM_16")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 1 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("emolive: error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0]


def test_stream_end_to_end_every_window_reaches_a_subscriber_and_equals_the_offline_model(student, speech_flac):
    address = f"tcp://127.0.0.1:{free_port()}"
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(address)  # before the engine binds: zmq keeps retrying, and the engine waits for us
    engine = subprocess.Popen([*EMOLIVE, "stream", "--source", str(speech_flac), "--publish", address, "--json",
                               "--wait-subscriber", "60", "--stream-id", "e2e"],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = engine.communicate(timeout=120)
    messages = []
    while sub.poll(500):
        messages.append(sub.recv_multipart())
    sub.close()
    assert engine.returncode == 0 and "Traceback" not in err, err

    printed = [json.loads(line) for line in out.splitlines()]  # stdout is JSON lines and nothing else
    published = [json.loads(body) for topic, body in messages if topic == b"avd.e2e"]
    statuses = [json.loads(body) for topic, body in messages if topic == b"status.e2e"]
    turns = [json.loads(body) for topic, body in messages if topic == b"turn.e2e"]  # one per speech turn
    assert len(published) + len(statuses) + len(turns) == len(messages) and statuses and turns
    for turn in turns:
        validate_turn(turn)
    samples = read_audio(speech_flac)
    frames = compute(samples)
    assert len(published) == (len(frames) - 150) // 25 + 1 > 10
    assert published == printed
    assert [p["seq"] for p in published] == list(range(len(published)))
    for i, payload in enumerate(published):
        validate_estimate(payload)
        avd = np.array([payload["activation"], payload["valence"], payload["dominance"]])
        assert np.isfinite(avd).all() and ((1 <= avd) & (avd <= 7)).all()
        span = samples[8000 * i:8000 * i + 149 * 320 + 400]
        # the engine batches windows, offline predicts one: same features and weights, only the BLAS
        # summation order for the batch shape differs (~sqrt(K) ulp of order-1 values, K <= 256)
        model_frames = as_one_stream(frames, student.meta.stream_normalisation)
        np.testing.assert_allclose(avd, student.predict(model_frames[25 * i:25 * i + 150], span).avd, atol=1e-5)
    for status in statuses:
        validate_status(status)
    assert statuses[-1]["estimates"] == len(published) and statuses[-1]["skipped_windows"] == 0
    assert [status["ended"] for status in statuses] == [False] * (len(statuses) - 1) + [True]


def test_stream_prints_a_table_with_a_row_per_estimate(capsys):
    clip = corpus_files("ravdess", limit=1)[0]
    code, out, err = run_cli(capsys, "stream", "--source", str(clip), "--no-publish", "--window", "1", "--hop", "0.5")
    lines = out.splitlines()
    assert code == 0 and lines[0] == HEADER and len(lines) == 1 + 3  # 2.39 s: windows at 0, 0.5 and 1.0 s
    assert lines[1].split()[0] == "0.00-1.00" and lines[3].split()[0] == "1.00-2.00"
    assert f"reading file {clip}" in err and "3 estimates" in err


@pytest.fixture
def mismatched_bundle(tmp_path):
    def make(section: str, key: str, value) -> Path:
        bundle = tmp_path / f"{key}_{value}"
        shutil.copytree(DEFAULT_BUNDLE, bundle)
        config = json.loads((bundle / "config.json").read_text())
        target = config["frontend"]["fbank"] if section == "fbank" else config[section]
        target[key] = value
        (bundle / "config.json").write_text(json.dumps(config))
        return bundle
    return make


@pytest.mark.parametrize("section,key,value,needle", [
    ("fbank", "num_mel_bins", 80, "the front end gives 83 features"),
    ("hyperparameters", "input_dim", 80, "input_dim_80"),  # the student's loader words this one (path only)
    # 8 kHz with the 16 kHz pitch settings: the bundle's own front end is inconsistent, refused on loading
    ("frontend", "sample_rate", 8000, "pitch.analysis_rate must be sample_rate / 2"),
])
def test_a_bundle_that_does_not_match_the_front_end_is_refused(capsys, mismatched_bundle, section, key, value,
                                                                needle):
    bundle = mismatched_bundle(section, key, value)
    clip = corpus_files("emodb", limit=1)[0]
    code, _, err = run_cli(capsys, "stream", "--source", str(clip), "--no-publish", "--model", str(bundle))
    assert_one_line_error(code, err, bundle.name, needle)


def test_bad_inputs_are_one_line_errors(capsys, tmp_path):
    corrupt, empty = tmp_path / "corrupt.flac", tmp_path / "empty.wav"
    corrupt.write_bytes(b"fLaC" + np.random.default_rng(0).bytes(5000))
    empty.write_bytes(b"")
    clip = str(corpus_files("emodb", limit=1)[0])
    cases = [
        (["--source", str(corrupt)], str(corrupt)),
        (["--source", str(empty)], str(empty)),
        (["--source", str(tmp_path / "missing.wav")], "not found"),
        (["--source", "filesrc location=/nonexistent.ogg ! decodebin"], "failed"),
        (["--source", clip, "--model", "no-such-model"], "no model named 'no-such-model'"),
        (["--source", clip, "--hop", "0.25"], "multiple of the 20 ms"),
        (["--source", clip, "--csv", str(tmp_path / "no" / "dir.csv")], "cannot write CSV"),
        (["--source", "audiotestsrc wave='sine num-buffers=5"], "malformed: no closing quotation"),
        (["--source", clip, "--window", "100000"], "longer than the 60 s"),
        (["--source", clip, "--window", "20000"], "longer than the 60 s"),
        (["--source", clip, "--hop", "61"], "longer than the 60 s"),
        (["--source", clip, "--window", "nan"], "positive multiple"),
    ]
    for args, needle in cases:
        code, _, err = run_cli(capsys, "stream", "--no-publish", *args)
        assert_one_line_error(code, err, needle)


def test_a_port_already_in_use_is_a_one_line_error(capsys):
    with ZmqPublisher("tcp://127.0.0.1:*") as taken:
        clip = str(corpus_files("emodb", limit=1)[0])
        code, _, err = run_cli(capsys, "stream", "--source", clip, "--publish", taken.address)
    assert_one_line_error(code, err, "address already in use")


def test_a_failing_pipeline_exits_non_zero_without_traceback_in_a_real_process():
    """The error is raised on the reader thread and must still reach `main` as one line."""
    result = subprocess.run([*EMOLIVE, "stream", "--no-publish", "--source", "filesrc location=/nonexistent.ogg "
                             "! decodebin"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr and result.stdout == ""
    assert result.stderr.splitlines()[-1].startswith("emolive: error: GStreamer pipeline")


def test_listen_prints_what_a_stream_publishes(capsys):
    with ZmqPublisher("tcp://127.0.0.1:*") as publisher:
        done: list[int] = []
        listener = threading.Thread(target=lambda: done.append(
            main(["listen", "--connect", publisher.address, "--json", "--count", "3"])))
        listener.start()
        seq, deadline = 0, time.monotonic() + 20
        while listener.is_alive() and time.monotonic() < deadline:  # until the slow joiner has joined
            publisher.emit(estimate_payload(seq=seq, stream="l", start=0.5 * seq, end=0.5 * seq + 3, wall_start=0.0,
                                            wall_end=3.0, activation=4.0, valence=5.0, dominance=3.0,
                                            classes={"happy": 1.0}, speech=True, voiced_ratio=0.5, model="m",
                                            latency_ms=1.0))
            seq += 1
            time.sleep(0.02)
        listener.join(timeout=5)
    lines = capsys.readouterr().out.splitlines()
    assert done == [0] and len(lines) == 3
    received = [json.loads(line) for line in lines]
    assert [r["seq"] for r in received] == list(range(received[0]["seq"], received[0]["seq"] + 3))


def test_models_lists_the_student_and_the_teacher_or_why_it_is_unavailable(capsys):
    code, out, _ = run_cli(capsys, "models")
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert code == 0 and out.startswith("name")
    assert "43-dim MFB+F0" in rows["student"] and "cpu" in rows["student"] and "MB" in rows["student"]
    teacher = rows["teacher"]  # declared; usable only once its bundle has been trained
    assert "unavailable: " in teacher or ("MB" in teacher and ("cpu" in teacher or "cuda" in teacher))


def test_models_lists_without_loading_a_model_or_importing_torch():
    """`emolive models` reads each bundle's config: no encoder weights, no torch."""
    code = ("import sys; from emolive.engine.cli import main; main(['models']); "
            "print(sorted(m for m in ('torch', 'torchaudio', 'safetensors.torch') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert run.stdout.splitlines()[-1] == "[]" and "teacher" in run.stdout


@pytest.mark.parametrize("name", ["student", "teacher"])
def test_a_models_summary_says_what_loading_it_gives(name):
    """The summary read from the config agrees with the loaded model on every field."""
    summary = summarise(name)
    plugin = load_model(name)
    loaded = ModelSummary.of_meta(plugin.meta, getattr(plugin, "head", plugin).size_bytes(), plugin.device,
                                  getattr(plugin, "input_features", None), summary.pretrained)
    assert summary == loaded or (name == "teacher" and summary == ModelSummary(**{**vars(loaded), "device": "cuda|cpu"}))


def test_a_third_party_model_that_fails_to_load_is_one_line_everywhere(tmp_path):
    """`emolive models` said "unavailable: ..." in one line, but `score` and `stream` gave tracebacks
    (ModuleNotFoundError, the loader's RuntimeError, AttributeError 'meta' for an object that is no model)."""
    (tmp_path / "tp_plugins.py").write_text("def broken():\n    raise RuntimeError('licence server down')\n\n"
                                            "def wrong():\n    return object()\n")
    info = tmp_path / "tp_plugins-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tp-plugins\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[emolive.models]\ntp-missing = tp_gone:load\ntp-broken = tp_plugins:broken\n"
                                           "tp-wrong = tp_plugins:wrong\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    clip = str(corpus_files("emodb", limit=1)[0])
    for name, reason in [("tp-missing", "ModuleNotFoundError: No module named 'tp_gone'"),
                         ("tp-broken", "RuntimeError: licence server down"),
                         ("tp-wrong", "plugin gave a object, not a model")]:
        for command in (["score", clip], ["stream", "--source", clip, "--no-publish", "--json"]):
            run = subprocess.run([str(Path(sys.executable).parent / "emolive"), *command, "--model", name], env=env,
                                 capture_output=True, text=True, timeout=120)
            assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
            (line,) = run.stderr.strip().splitlines()
            assert line.startswith(f"emolive: error: model {name}") and reason in line, line


def test_control_characters_in_a_file_name_never_reach_the_terminal(tmp_path):
    """A name holding ESC ] 0 ; ... BEL (which sets a terminal's title) and a carriage return reached
    stderr raw, in `emolive stream`'s error and in `trainer`'s; they are escaped now."""
    name = tmp_path / "take\x1b]0;pwned\x07\x1b[31m.wav"
    name.write_text("not audio")
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,speaker,emotion\n{name.name},s,sad\n")
    bin_dir = Path(sys.executable).parent
    for command in ([str(bin_dir / "emolive"), "stream", "--no-publish", "--source", str(name)],
                    [str(bin_dir / "trainer"), "features", "--data", str(manifest), "--cache", str(tmp_path / "c")]):
        run = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert run.returncode != 0 and "\\x1b]0;pwned\\x07" in run.stderr, run.stderr
        assert not any(c in run.stderr for c in "\x1b\x07\r"), run.stderr
    # a byte that is not UTF-8 reads \xNN, as the outputs write it (it read \udcff on stderr alone)
    odd = tmp_path / os.fsdecode(b"take\xff.wav")
    odd.write_text("not audio")
    run = subprocess.run([str(bin_dir / "emolive"), "stream", "--no-publish", "--source", str(odd)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "take\\xff.wav" in run.stderr and "udc" not in run.stderr, run.stderr


def test_devices_lists_input_devices(capsys, monkeypatch):
    devices = [{"index": 0, "name": "HDMI out", "max_input_channels": 0, "default_samplerate": 48000.0},
               {"index": 3, "name": "USB Headset Mic", "max_input_channels": 1, "default_samplerate": 48000.0},
               {"index": 4, "name": "pulse", "max_input_channels": 32, "default_samplerate": 44100.0}]
    monkeypatch.setattr(sd, "query_devices", lambda *a, **k: sd.DeviceList(devices))
    code, out, _ = run_cli(capsys, "devices")
    assert code == 0 and out.splitlines() == ["  3  USB Headset Mic  (48000 Hz, 1 ch; default channel 1 of 1)",
                                              "  4  pulse  (44100 Hz, 32 ch; default channel 1 of 32)"]
    monkeypatch.setattr(sd, "query_devices", lambda *a, **k: sd.DeviceList([]))
    code, out, err = run_cli(capsys, "devices")
    assert code == 0 and out == "" and "no audio input devices" in err


@pytest.mark.parametrize("address,needle", [("tcp://127.0.0.1:99999", "port 99999"), ("garbage", "malformed address")])
def test_bad_publish_addresses_are_one_line_errors(capsys, address, needle):
    clip = str(corpus_files("emodb", limit=1)[0])
    code, _, err = run_cli(capsys, "stream", "--source", clip, "--publish", address)
    assert_one_line_error(code, err, needle)


@pytest.mark.parametrize("seconds", ["inf", "nan", "-1", "1e12", "soon"])
def test_wait_subscriber_outside_a_day_is_refused_by_the_parser(capsys, seconds):
    with pytest.raises(SystemExit) as exit_info:
        main(["stream", "--no-publish", "--wait-subscriber", seconds])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "give seconds from 0 to 86400" in err and "Traceback" not in err


def test_a_named_device_that_does_not_exist_is_an_error_not_the_demo_clip(capsys, monkeypatch):
    monkeypatch.setattr(sd, "query_devices", lambda *a, **k: sd.DeviceList([]))
    code, out, err = run_cli(capsys, "stream", "--device", "7", "--no-publish")
    assert_one_line_error(code, err, "no audio input device")
    assert out == "" and "demo clip" not in err


def test_quiet_still_says_the_demo_clip_stands_in_for_a_missing_microphone(capsys, monkeypatch):
    """The note was part of an info line that -q hides: a script's `emolive -q stream --json` on a
    machine that lost its microphone printed the demo clip's estimates, and nothing said so."""
    monkeypatch.setattr(sd, "query_devices", lambda *a, **k: sd.DeviceList([]))
    code, out, err = run_cli(capsys, "-q", "stream", "--no-publish", "--json")
    assert code == 0 and out.count("\n") > 3
    assert err.splitlines() == [f"emolive: reading file {DEMO_CLIP} (no microphone found: playing the bundled demo "
                                "clip); model student"]


@pytest.mark.parametrize("output", ["--json", "table", "--csv"])
def test_a_full_disk_is_a_one_line_error_with_exit_1(output):
    """/dev/full fails every write with ENOSPC, as a full disk does."""
    clip = str(corpus_files("emodb", limit=1)[0])
    args = [*EMOLIVE, "stream", "--no-publish", "--source", clip]
    args += {"--json": ["--json"], "table": [], "--csv": ["--csv", "/dev/full"]}[output]
    with open("/dev/full", "w") if output != "--csv" else open("/dev/null", "w") as stdout:
        result = subprocess.run(args, cwd=REPO, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines()[-1].startswith("emolive: error: cannot write ")
    assert result.stderr.splitlines()[-1].endswith(": No space left on device")


def test_ctrl_c_in_a_realtime_stream_still_sends_the_final_status_and_summary(speech_flac):
    address = f"tcp://127.0.0.1:{free_port()}"
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(address)
    engine = interruptible([*EMOLIVE, "stream", "--source", str(speech_flac), "--realtime", "--publish", address,
                               "--json", "--wait-subscriber", "60", "--window", "1", "--hop", "0.5"],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    estimates, statuses = [], []
    while len(estimates) < 3:  # mid-run: the clip lasts 7 s, three estimates come after about 2 s
        assert sub.poll(60_000), "no estimate from the engine"
        topic, body = sub.recv_multipart()
        (estimates if topic.startswith(b"avd.") else statuses).append(json.loads(body))
    engine.send_signal(signal.SIGINT)
    out, err = engine.communicate(timeout=30)
    while sub.poll(1000):
        topic, body = sub.recv_multipart()
        (estimates if topic.startswith(b"avd.") else statuses).append(json.loads(body))
    sub.close()
    assert engine.returncode == 130 and "Traceback" not in err, err
    printed = [json.loads(line) for line in out.splitlines()]
    assert estimates == printed and len(printed) < 12  # stopped early: 7 s would give 12
    assert statuses[-1]["estimates"] == len(estimates)  # the final status counts exactly what was sent
    assert err.splitlines()[-1] == f"emolive: {len(estimates)} estimates from " + err.splitlines()[-1].split(" from ")[1]


def test_a_stop_signal_ends_a_stream_blocked_writing_to_a_reader_that_stopped_reading(tmp_path):
    """A reader of stdout that stalls (its pipe full) left `emolive stream` blocked in write(): SIGTERM
    asked the runner to stop where it never looked again, a second SIGTERM did the same, and only
    SIGKILL ended it. Now the signal is sent again to the blocked thread once the run goes 10 s without
    an estimate (emolive.engine.cli.STOP_GRACE_S), and the run ends as SIGTERM ends it: 143."""
    import time

    clip = corpus_files("emodb", limit=1)[0]
    long = tmp_path / "long.flac"
    sf.write(long, np.tile(read_audio(clip), 300), 16000)  # ~12 minutes: its JSON lines fill any pipe
    engine = subprocess.Popen([*EMOLIVE, "stream", "--source", str(long), "--no-publish", "--json"], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # stdout never read
    try:
        time.sleep(6)  # the model loaded, the pipe full
        assert engine.poll() is None
        engine.send_signal(signal.SIGTERM)
        assert engine.wait(timeout=60) == 143
        assert b"Traceback" not in engine.stderr.read()
    finally:
        engine.kill()


def test_too_few_open_files_is_one_line_up_front_and_a_low_soft_limit_is_raised():
    """Under `ulimit -n 10` libzmq aborted the process (exit 134) from an assertion, and at 12 the VAD's
    graph was said to be missing ("reinstall emolive")."""
    import resource

    def limit(soft: int, hard: int):
        return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    args = [*EMOLIVE, "stream", "--source", str(REPO / "engine" / "data" / "demo.flac"), "--publish",
            f"tcp://127.0.0.1:{free_port()}", "--json"]
    low = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=120, preexec_fn=limit(10, 10))
    assert low.returncode == 1 and low.stderr.splitlines() == [
        "emolive: error: emolive needs at least 32 open files and may open 10 (ulimit -n): raise the limit, e.g. "
        "ulimit -n 1024"]
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    raised = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=120,
                            preexec_fn=limit(10, hard))  # a soft limit the run may raise itself
    assert raised.returncode == 0 and len(raised.stdout.splitlines()) > 3, raised.stderr


WINDOW_SECONDS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 5000).map(lambda k: k * 0.02),
                           st.sampled_from([0.0, -0.0, 1e-300, 1e300, 60.0, 60.02, 100000.0, 20000.0]))


@settings(max_examples=300, deadline=None)
@given(window_s=WINDOW_SECONDS, hop_s=WINDOW_SECONDS)
def test_any_window_and_hop_give_a_bounded_spec_or_one_line_window_error(window_s, hop_s):
    """The property behind --window/--hop: a valid spec that sizes at most MAX_SECONDS of frames, or
    WindowError with one line; never another exception. (Allocation follows from the spec's size.)"""
    cfg = load_model("student").meta.frontend
    try:
        spec = WindowSpec.from_seconds(window_s, hop_s, cfg)
    except WindowError as exc:
        assert "\n" not in str(exc)
        return
    limit = round(MAX_SECONDS * cfg.sample_rate / cfg.frame_shift)
    assert 1 <= spec.window <= limit and 1 <= spec.hop <= limit


def test_verbose_says_more_on_stderr_and_quiet_less(tmp_path):
    """`-v` is "more detail on stderr (debug)", but stderr was the same with it as without."""
    clip = corpus_files("emodb", every=300, limit=1)[0]

    def stderr(*flags: str) -> str:
        result = subprocess.run([*EMOLIVE, *flags, "score", str(clip), "--out", str(tmp_path / "t.csv")],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stderr

    verbose, plain, quiet = stderr("-v"), stderr(), stderr("-q")
    assert "model student loaded in" in verbose and f"{clip}: " in verbose and "status: 1 estimates" in verbose
    assert "loaded in" not in plain and "scored 1 file in" in plain
    assert quiet == ""
    # worker processes log as their parent: their -v lines were lost, their warnings unprefixed
    other = corpus_files("emodb", every=300, limit=2)[1]
    workers = subprocess.run([*EMOLIVE, "-v", "score", str(clip), str(other), "--jobs", "2", "--out",
                              str(tmp_path / "t.csv")], capture_output=True, text=True, timeout=120)
    assert workers.returncode == 0 and f"emolive: {clip}: " in workers.stderr and f"emolive: {other}: " in workers.stderr


def test_onnxruntime_records_no_telemetry_unless_the_user_asks(tmp_path):
    """onnxruntime 1.29 and later queue telemetry (ProcessInfo events with the program's path, 2,223 here)
    in ~/.cache/Microsoft/DeveloperTools/.onnxruntime for upload. An emolive run leaves nothing there;
    a user who sets ORT_DISABLE_TELEMETRY=0 keeps onnxruntime's own behaviour (the control).
    onnxruntime records nothing where it sees a CI service's variable (CI, GITHUB_ACTIONS, TF_BUILD, ...; CI
    failed on the control for that) and writes under XDG_CACHE_HOME where set, so both runs go without them."""

    left_out = {"ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME", "CI", "TF_BUILD", "GITHUB_ACTIONS", "GITLAB_CI",
                "CIRCLECI", "TRAVIS", "JENKINS_URL", "CODEBUILD_BUILD_ID", "BUILDKITE", "TEAMCITY_VERSION",
                "APPVEYOR", "BITBUCKET_BUILD_NUMBER"}
    for choice, home in ((None, tmp_path / "default"), ("0", tmp_path / "asked")):
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in left_out}
        env.update({"HOME": str(home), **({"ORT_DISABLE_TELEMETRY": choice} if choice else {})})
        run = subprocess.run([*EMOLIVE, "stream", "--source", str(DEMO_CLIP), "--no-publish", "--json"], env=env,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        telemetry = home / ".cache" / "Microsoft" / "DeveloperTools" / ".onnxruntime"
        assert telemetry.exists() == (choice == "0"), list(home.rglob("*"))


@pytest.mark.parametrize("stdout", ["/dev/full", "closed"])
@pytest.mark.parametrize("program", ["emolive", "trainer"])
def test_a_command_whose_output_cannot_be_written_says_so_in_one_line(program, stdout, tmp_path):
    """`emolive models >/dev/full` and `trainer evaluate … >/dev/full` were tracebacks, and with stdout
    closed (`>&-`) both exited 0 with their output gone."""
    from tests.conftest import corpus_files

    manifest = tmp_path / "one.csv"
    manifest.write_text(f"path,speaker,emotion\n{corpus_files('emodb', limit=1)[0]},s1,angry\n")
    args = ["models"] if program == "emolive" else ["evaluate", "--data", str(manifest), "--json"]
    target = open(stdout, "w") if stdout != "closed" else None
    try:
        done = subprocess.run([str(Path(sys.executable).parent / program), *args], stdout=target,
                              stderr=subprocess.PIPE, text=True, timeout=120,
                              preexec_fn=None if target else lambda: os.close(1))
    finally:
        if target:
            target.close()
    said = "No space left on device" if stdout == "/dev/full" else "standard output is closed"
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert done.returncode in (1, 2) and "Traceback" not in done.stderr, done.stderr
    assert len(errors) == 1 and said in errors[0], done.stderr
