"""`emolive stream` as users run it (the installed console script in a real process): what it refuses
before it starts, and how it ends when an output or its input fails."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import soundfile as sf
import zmq

from tests.conftest import REPO, interruptible
from tests.test_cli import EMOLIVE, free_port


@pytest.fixture(scope="module")
def speech_flac(tmp_path_factory, speech) -> Path:
    path = tmp_path_factory.mktemp("audio") / "speech.flac"
    sf.write(path, speech, 16000, subtype="PCM_16")
    return path


def stream(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """A run to its end; stdout and stderr captured unless `kwargs` say otherwise."""
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    return subprocess.run([*EMOLIVE, "stream", *args], text=True, timeout=120, **{"cwd": REPO, **pipes, **kwargs})


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 1, no traceback, and exactly one error line holding every needle; that line."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("emolive: error:")]
    assert result.returncode == 1 and "Traceback" not in result.stderr and len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0]
    return errors[0]


@pytest.mark.parametrize("option, fix", [("--publish=", "--no-publish"), ("--csv=", "a file name"),
                                         ("--osc=", "HOST:PORT"), ("--websocket=", "HOST:PORT")])
def test_an_empty_output_value_is_refused_not_taken_as_no_output(speech_flac, option, fix):
    """`--csv "$OUT"` with OUT unset ran to exit 0 without the CSV file (and `--publish=` without publishing)."""
    result = stream("--source", str(speech_flac), "--json", option)
    assert_one_line_error(result, f"{option[:-1]} got an empty value", fix)
    assert result.stdout == ""  # refused before any estimate


def test_wait_subscriber_without_a_publisher_is_refused_not_ignored(speech_flac):
    result = stream("--source", str(speech_flac), "--no-publish", "--wait-subscriber", "5")
    assert_one_line_error(result, "--wait-subscriber", "--no-publish", "leave out one of them")


def test_closed_stdin_is_one_line_error():
    """`--source -` with descriptor 0 closed (`<&-`) raised AttributeError: Python's sys.stdin is None then."""
    result = stream("--source", "-", "--no-publish", preexec_fn=lambda: os.close(0))
    assert_one_line_error(result, "stdin is closed", "pipe it in")


def test_realtime_paces_stdin_as_it_paces_a_file(speech):
    """`cat call.raw | emolive stream --source - --realtime` read the pipe as fast as it came and, live,
    skipped 112 of 114 windows of a minute; paced, every window of the 6 s is evaluated."""
    import time

    raw = speech[:6 * 16000].astype("<f4").tobytes()
    started = time.monotonic()
    result = stream("--source", "-", "--realtime", "--no-publish", "--json", input=raw.decode("latin-1"),
                    encoding="latin-1")
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    # pacing never gives a block early (sleep only lengthens): 6 s of audio take 6 s at least, on any machine
    assert took >= 6.0 and len(result.stdout.splitlines()) == 6  # windows of 3.005 s every 0.5 s in 6 s
    assert "; 0 windows skipped" in result.stderr, result.stderr


@pytest.mark.parametrize("signum, times", [("SIGTERM", 1), ("SIGHUP", 1), ("SIGTERM", 2)])
def test_sigterm_mid_run_ends_as_ctrl_c_does_with_sigterm_s_status(speech_flac, tmp_path, signum, times):
    """The run ends cleanly (its summary said, its final status sent, its ipc socket file removed) and
    exits 128 + the signal, as score, listen, the GUI and trainer do for SIGTERM (it said 130, Ctrl-C's, and
    supervisors read 143 as the stop they asked for). SIGHUP (a terminal closed, an ssh session dropped)
    had killed it: no summary, no final status for its readers, the socket file left behind. GNU `timeout`
    sends its SIGTERM twice at once (to the child, then its group): the second had cut the summary."""
    import signal

    socket_file = tmp_path / "e.ipc"
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"status.")
    sub.connect(f"ipc://{socket_file}")
    engine = interruptible([*EMOLIVE, "stream", "--source", str(speech_flac), "--realtime", "--publish",
                            f"ipc://{socket_file}", "--json"], cwd=REPO, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        assert engine.stdout.readline()  # the first estimate: the run is under way
        for _ in range(times):
            engine.send_signal(getattr(signal, signum))
        out, err = engine.communicate(timeout=30)
        assert engine.returncode == 128 + getattr(signal, signum), err
        assert "estimates from" in err and "Traceback" not in err, err
    finally:
        engine.kill()
    statuses = []
    while sub.poll(1000):
        statuses.append(json.loads(sub.recv_multipart()[1]))
    sub.close()
    assert statuses and statuses[-1]["ended"] is True and statuses[-1]["end_reason"] == "stopped"
    assert not socket_file.exists()


def test_a_missing_file_with_a_bang_in_its_name_is_not_found_not_a_pipeline(tmp_path):
    result = stream("--no-publish", "--source", str(tmp_path / "Great take!.wav"))
    assert_one_line_error(result, "audio file not found", "Great take!.wav")


def test_a_pipeline_without_audio_is_an_error_as_empty_stdin_is():
    """A pipeline that ended before any audio exited 0 with "0 estimates"; empty stdin was an error."""
    pipeline = stream("--no-publish", "--source", "audiotestsrc num-buffers=0")
    empty_stdin = stream("--no-publish", "--source", "-", stdin=subprocess.DEVNULL)
    assert_one_line_error(pipeline, "GStreamer pipeline", "ended before any audio")
    assert_one_line_error(empty_stdin, "stdin", "ended before any audio")


def test_when_an_output_fails_the_others_get_the_final_status_and_the_summary_is_printed(speech_flac):
    """`--json | head` closed stdout: the run ended with no final status for the publisher's subscribers
    and no summary line, only the error."""
    address = f"tcp://127.0.0.1:{free_port()}"
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(address)  # before the engine binds: zmq keeps retrying, and the engine waits for us
    read_fd, write_fd = os.pipe()
    os.close(read_fd)  # stdout's reader is gone before the first estimate
    try:
        result = stream("--source", str(speech_flac), "--publish", address, "--wait-subscriber", "60", "--json",
                        stdout=write_fd)
    finally:
        os.close(write_fd)
    messages = []
    while sub.poll(1000):
        messages.append(sub.recv_multipart())
    sub.close()
    assert_one_line_error(result, "the reader of the JSON lines closed its end of the pipe")
    estimates = [topic for topic, _ in messages if topic.startswith(b"avd.")]
    statuses = [json.loads(body) for topic, body in messages if topic.startswith(b"status.")]
    assert estimates and statuses and statuses[-1]["estimates"] == len(estimates)
    assert result.stderr.splitlines()[-2] == (f"emolive: {len(estimates)} estimates from "
                                              + result.stderr.splitlines()[-2].split(" from ")[1])


def test_every_reader_waiting_as_the_publisher_binds_hears_a_short_run_whole(speech_flac):
    """--wait-subscriber began the run at the first reader's subscription: a second one, connected before the
    bind too, came within libzmq's reconnect interval, after a short file run had ended, and heard nothing,
    not even the final status (`listen --until-end` waited for ever; 7 runs in 10)."""
    address = f"tcp://127.0.0.1:{free_port()}"
    readers = []
    for _ in range(3):
        sub = zmq.Context.instance().socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(address)
        readers.append(sub)
    result = stream("--source", str(speech_flac), "--publish", address, "--wait-subscriber", "60", "--json",
                    "--window", "1", "--hop", "0.5")
    assert result.returncode == 0, result.stderr
    sent = result.stdout.count("\n")
    for sub in readers:
        topics = []
        while sub.poll(1000):
            topics.append(sub.recv_multipart()[0])
        sub.close()
        assert sum(t.startswith(b"avd.") for t in topics) == sent and topics[-1].startswith(b"status."), topics


@pytest.mark.parametrize("args, needle", [
    (["--websocket-origin", "https://a.example"], "--websocket-origin is for the WebSocket output: add --websocket"),
    (["--websocket", "127.0.0.1:0", "--websocket-origin", "https://a.example/"], "scheme://host[:port]"),
    (["--websocket", "127.0.0.1:0", "--websocket-origin", "a.example"], "scheme://host[:port]")])
def test_a_websocket_origin_that_would_never_match_is_refused(speech_flac, args, needle):
    """A browser's Origin has no path and no trailing slash: such a value would match no page, silently."""
    assert_one_line_error(stream("--source", str(speech_flac), "--no-publish", *args), needle)


def test_a_websocket_on_the_publisher_s_own_port_is_named_as_such(speech_flac):
    """It failed as "address already in use (another emolive stream?)", where the other was this run."""
    port = free_port()
    result = stream("--source", str(speech_flac), "--publish", f"tcp://127.0.0.1:{port}", "--websocket",
                    f"127.0.0.1:{port}")
    assert result.returncode == 1 and result.stderr.splitlines()[-1] == (
        f"emolive: error: --websocket 127.0.0.1:{port}: port {port} is this run's --publish port; give each output "
        "a port of its own"), result.stderr
    # the port as a number, on the same host: an ipc path has none, another loopback address can share it
    from emolive.engine.sinks.factory import shared_port

    assert shared_port("tcp://127.0.0.1:27404", "127.0.0.1:027404", False) == 27404
    assert shared_port("tcp://127.0.0.1:27402", "127.0.0.2:27402", False) is None
    assert shared_port("ipc:///tmp/s:27403", "127.0.0.1:27403", False) is None
    assert shared_port("tcp://0.0.0.0:27405", "127.0.0.1:27405", True) == 27405


def test_quiet_means_quiet_for_liblsl_too(speech_flac):
    """liblsl printed its INFO lines ("Loaded default config") under -q; a lab's own lsl_api.cfg
    still decides for itself."""
    pytest.importorskip("pylsl")
    result = subprocess.run([*EMOLIVE, "-q", "stream", "--source", str(speech_flac), "--no-publish", "--lsl", "--json"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_sigterm_while_waiting_for_a_subscriber_ends_as_ctrl_c_does(speech_flac):
    """SIGTERM before the run (the model loading, --wait-subscriber's wait) killed the process without a
    word, where Ctrl-C there ended it with 130; it exits 143 (128 + 15), as score, listen and trainer do."""
    import signal
    import time

    engine = subprocess.Popen([*EMOLIVE, "stream", "--source", str(speech_flac), "--publish",
                               f"tcp://127.0.0.1:{free_port()}", "--wait-subscriber", "60"], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert "publishing on" in engine.stderr.readline() + engine.stderr.readline()  # now waiting
        time.sleep(0.5)
        engine.send_signal(signal.SIGTERM)
        assert engine.wait(timeout=30) == 143
        assert "Traceback" not in engine.stderr.read()
    finally:
        engine.kill()


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGHUP"])
def test_a_reader_that_came_during_the_wait_hears_a_run_stopped_there(speech_flac, signum):
    """The wait goes on for a WebSocket client while a ZeroMQ subscriber has come; a signal then ended the
    run with no final status, and the subscriber (`listen --until-end`, `gui --connect`) waited for ever."""
    import signal
    import time

    address = f"tcp://127.0.0.1:{free_port()}"
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(address)
    engine = interruptible([*EMOLIVE, "stream", "--source", str(speech_flac), "--publish", address,
                            "--websocket", f"127.0.0.1:{free_port()}", "--wait-subscriber", "60"], cwd=REPO,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        lines = [engine.stderr.readline() for _ in range(3)]
        assert any("serving WebSocket" in line for line in lines), lines  # every output is up: the wait is on
        time.sleep(1.0)  # the subscriber's subscription reaches the publisher
        engine.send_signal(getattr(signal, signum))
        assert engine.wait(timeout=30) == 128 + getattr(signal, signum)
        assert "Traceback" not in engine.stderr.read()
    finally:
        engine.kill()
    assert sub.poll(5000), "no final status"
    topic, body = sub.recv_multipart()
    sub.close()
    status = json.loads(body)
    assert topic == b"status.default" and status["ended"] is True and status["end_reason"] == "stopped"
    assert status["estimates"] == 0 and status["audio_s"] == 0.0


def test_a_websocket_client_can_connect_while_the_run_waits_for_a_subscriber(speech_flac):
    """The WebSocket server started only after --wait-subscriber's wait: a file run's first estimates
    went out before any WebSocket client could be there. Connected during the wait, it gets them all."""
    import socket
    import time

    from websockets.sync.client import connect

    publish, websocket = free_port(), free_port()
    engine = subprocess.Popen([*EMOLIVE, "stream", "--source", str(speech_flac), "--publish",
                               f"tcp://127.0.0.1:{publish}", "--wait-subscriber", "60", "--websocket",
                               f"127.0.0.1:{websocket}"], cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:  # the server is up while the run still waits for its ZeroMQ subscriber
            try:
                socket.create_connection(("127.0.0.1", websocket), timeout=1).close()
                break
            except OSError:
                assert engine.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        with connect(f"ws://127.0.0.1:{websocket}") as client, zmq.Context().socket(zmq.SUB) as sub:
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            sub.connect(f"tcp://127.0.0.1:{publish}")  # ends the wait
            messages: list[dict] = []
            while not (messages and messages[-1]["topic"] == "status.default" and messages[-1]["message"]["ended"]):
                messages.append(json.loads(client.recv(timeout=60)))
        seqs = [m["message"]["seq"] for m in messages if m["topic"] == "avd.default"]
        assert seqs == list(range(len(seqs))) and len(seqs) > 1 and engine.wait(timeout=60) == 0
    finally:
        engine.kill()


def test_an_lsl_inlet_gets_every_estimate_of_a_file_run_that_waits_for_it(speech_flac):
    """--wait-subscriber waited for ZeroMQ only, and was refused beside --no-publish: a file run read fast
    went out over LSL before an inlet could resolve the stream (320 of 448 estimates of 48 s reached one)."""
    pylsl = pytest.importorskip("pylsl")
    source_id = f"emolive-wait-{os.getpid()}"
    engine = subprocess.Popen([*EMOLIVE, "stream", "--source", str(speech_flac), "--no-publish", "--lsl", "--json",
                               "--hop", "0.1", "--stream-id", source_id, "--wait-subscriber", "60"], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        found = pylsl.resolve_byprop("source_id", source_id, timeout=60)
        assert found, "the outlet never appeared"
        inlet = pylsl.StreamInlet(found[0])
        inlet.open_stream(timeout=30)
        out, err = engine.communicate(timeout=120)
        assert engine.returncode == 0, err
        sent = [json.loads(line)["activation"] for line in out.splitlines()]
        got = []
        while (sample := inlet.pull_sample(timeout=5.0)[0]) is not None:
            got.append(sample[0])
        assert len(sent) > 10 and got == pytest.approx(sent, rel=1e-6)  # float32 channels
    finally:
        engine.kill()


def test_a_csv_file_is_not_emptied_when_another_output_cannot_start(speech_flac, tmp_path):
    """The CSV was opened (emptied) before the WebSocket server found its port taken: a run that never
    started cost the file the user named."""
    import socket

    earlier = tmp_path / "earlier.csv"
    earlier.write_text("precious,data\n1,2\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = stream("--source", str(speech_flac), "--no-publish", "--csv", str(earlier),
                        "--websocket", f"127.0.0.1:{taken.getsockname()[1]}")
    assert_one_line_error(result, "address already in use")
    assert earlier.read_text() == "precious,data\n1,2\n"


def test_a_csv_that_is_what_a_pipeline_or_stdin_reads_is_refused_and_kept(speech_flac, tmp_path):
    """The check compared --csv with --source as a path only: a pipeline's `location=` file and a file
    redirected into stdin were emptied by the run that read them (and the error blamed the audio)."""
    import shutil

    recording = Path(shutil.copy(speech_flac, tmp_path / "my call.flac"))
    raw = tmp_path / "call.f32"
    raw.write_bytes(b"\0" * 64000)
    for source, target, stdin in ((f'filesrc location="{recording}" ! decodebin', recording, None),
                                  (f"gst:uridecodebin uri={recording.as_uri()}", recording, None),
                                  ("-", raw, raw)):
        before = target.read_bytes()
        with open(stdin or os.devnull, "rb") as feed:
            result = stream("--source", source, "--no-publish", "--json", "--csv", str(target), stdin=feed)
        assert_one_line_error(result, f"--csv {target} is also an input")
        assert target.read_bytes() == before


def test_a_csv_to_standard_output_is_refused_not_a_file_named_dash(speech_flac, tmp_path):
    """`--csv -` wrote a file named "-" in the current folder, exit 0, where `score --out -` means stdout."""
    result = stream("--source", str(speech_flac), "--no-publish", "--csv", "-", cwd=tmp_path)
    assert_one_line_error(result, "--csv - : standard output carries the run's table")
    assert list(tmp_path.iterdir()) == []


def test_a_csv_is_kept_by_a_run_that_reads_no_audio_and_locked_while_written(speech_flac, tmp_path):
    """A pipeline's typo or an empty stdin emptied the last run's table; two streams into one CSV
    interleaved their rows mid-word, both exit 0. The control: a run that reads audio replaces it."""
    import time

    earlier = tmp_path / "earlier.csv"
    earlier.write_text("precious,data\n1,2\n")
    for source in ("audiotestsrc num-buffers=10 ! nosuchelement", "-"):
        result = stream("--source", source, "--no-publish", "--json", "--csv", str(earlier), stdin=subprocess.DEVNULL)
        assert result.returncode == 1 and earlier.read_text() == "precious,data\n1,2\n", result.stderr
    first = subprocess.Popen([*EMOLIVE, "stream", "--source", str(speech_flac), "--realtime", "--no-publish",
                              "--csv", str(earlier)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
    try:
        while "reading" not in first.stderr.readline():  # its outputs are open
            assert first.poll() is None
        time.sleep(0.5)
        second = stream("--source", str(speech_flac), "--no-publish", "--json", "--csv", str(earlier))
        assert_one_line_error(second, f"cannot write CSV to {earlier}: another process is writing it")
    finally:
        first.terminate()
        first.wait(timeout=30)
    rows = earlier.read_text().splitlines()
    assert rows[0].startswith("schema,seq,stream,") and len(rows) > 1
    assert {len(row.split(",")) for row in rows} == {len(rows[0].split(","))}


def test_an_output_in_the_model_bundle_it_reads_is_refused(speech_flac, tmp_path):
    """`stream --csv BUNDLE/model.safetensors` wrote its table over the weights it ran, for good; a link
    to them elsewhere did the same, and `score --out BUNDLE/history.csv` would replace the history."""
    import shutil

    from emolive.plugins.student.plugin import DEFAULT_BUNDLE

    bundle = Path(shutil.copytree(DEFAULT_BUNDLE, tmp_path / "my model"))
    weights = (bundle / "model.safetensors").read_bytes()
    os.link(bundle / "model.safetensors", tmp_path / "weights.csv")
    for target, where in ((bundle / "model.safetensors", "is in the model bundle"),
                          (tmp_path / "weights.csv", "is a file of the model bundle")):
        result = stream("--source", str(speech_flac), "--no-publish", "--model", str(bundle), "--csv", str(target))
        assert_one_line_error(result, f"--csv {target} {where} {bundle} this run reads")
    scored = subprocess.run([*EMOLIVE, "score", str(speech_flac), "--model", str(bundle), "--out",
                             str(bundle / "history.csv")], capture_output=True, text=True, timeout=120)
    assert_one_line_error(scored, f"--out {bundle / 'history.csv'} is in the model bundle")
    (bundle / "sub").mkdir()
    os.symlink(bundle / "new.csv", tmp_path / "dangling.csv")  # its target does not exist yet
    for target in (bundle / "sub" / "x.csv", tmp_path / "dangling.csv"):
        result = stream("--source", str(speech_flac), "--no-publish", "--model", str(bundle), "--csv", str(target))
        assert_one_line_error(result, f"--csv {target} is in the model bundle")
    assert not (bundle / "new.csv").exists() and not (bundle / "sub" / "x.csv").exists()
    assert (bundle / "model.safetensors").read_bytes() == weights
    assert (bundle / "history.csv").read_bytes() == (DEFAULT_BUNDLE / "history.csv").read_bytes()
    ok = stream("--source", str(speech_flac), "--no-publish", "--model", str(bundle), "--csv", str(tmp_path / "t.csv"))
    assert ok.returncode == 0 and (tmp_path / "t.csv").read_text().startswith("schema,seq,")


def test_a_stream_started_with_sigint_ignored_keeps_ignoring_it(speech_flac):
    """A shell starts `emolive stream … &` with SIGINT ignored, so that Ctrl-C reaches only the job in
    front; the stream installed its own handler over that, and the Ctrl-C meant for another command
    stopped it. SIGTERM still ends it as ever."""
    import signal
    import time

    from tests.test_gui import wait_until_catching

    engine = subprocess.Popen([*EMOLIVE, "stream", "--source", str(speech_flac), "--realtime", "--no-publish",
                               "--json"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        wait_until_catching(engine.pid, signal.SIGTERM)  # the run's handlers are in place
        time.sleep(1.0)
        engine.send_signal(signal.SIGINT)
        time.sleep(1.0)
        assert engine.poll() is None  # the 7 s clip at real time: still playing
        engine.send_signal(signal.SIGTERM)
        _, err = engine.communicate(timeout=30)
        assert engine.returncode == 143, err
    finally:
        engine.kill()
