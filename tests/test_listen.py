"""Readers of the stream treat every message as untrusted: hostile frames are counted and reported,
never a crash, and the reader goes on (`engine.schema.parse_message`, `emolive listen`)."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import REPO, corpus_files, interruptible, read_audio
from emolive.engine.runner import RunStats, run_status
from emolive.engine.schema import (END_FINISHED, Rejections, SchemaError, estimate_payload, parse_message,
                                   printable, status_payload, to_json, validate_estimate, validate_status)

EMOLIVE = str(Path(sys.executable).parent / "emolive")


def good_estimate(seq: int = 0, **overrides) -> dict:
    fields = dict(seq=seq, stream="s", start=0.5 * seq, end=0.5 * seq + 3, wall_start=1.0, wall_end=4.0,
                  activation=4.0, valence=5.0, dominance=3.0, classes={"happy": 0.75, "sad": 0.25}, speech=True,
                  voiced_ratio=0.5, model="m", latency_ms=1.0)
    return estimate_payload(**{**fields, **overrides})


def frames(payload, topic: bytes = b"avd.s") -> list[bytes]:
    return [topic, json.dumps(payload).encode()]


DEEP = b"[" * 100_000 + b"]" * 100_000
HOSTILE = {  # every class of bad message a reader must survive, with the reason it gives
    "one frame": ([b"avd.s"], "1 frames"),
    "three frames": ([b"avd.s", b"{}", b"{}"], "3 frames"),
    "JSON list": ([b"avd.s", b"[1, 2]"], "JSON list"),
    "JSON number": ([b"avd.s", b"42"], "JSON int"),
    "not JSON": ([b"avd.s", b"\xff\xfe garbage"], "not JSON"),
    "missing keys": (frames({k: v for k, v in good_estimate().items() if k != "valence"}), "missing ['valence']"),
    "wrong type": (frames({**good_estimate(), "seq": "7"}), "seq"),
    "bool as schema": (frames({**good_estimate(), "schema": True}), "schema must be 1"),
    "NaN": ([b"avd.s", json.dumps(good_estimate()).replace("4.0", "NaN", 1).encode()], "NaN is not JSON"),
    "Infinity": ([b"avd.s", json.dumps(good_estimate()).replace("4.0", "Infinity", 1).encode()], "not JSON"),
    "overflowing float": ([b"avd.s", json.dumps(good_estimate()).replace("4.0", "1e999", 1).encode()], "finite"),
    "unknown schema": (frames({**good_estimate(), "schema": 2}), "schema must be 1"),
    "unknown topic": (frames(good_estimate(), b"other.s"), "none of avd.*, turn.*, status.*"),
    "topic for another stream": (frames(good_estimate(), b"avd.t"), "does not match"),
    "bad status": (frames({"schema": 1, "stream": "s"}, b"status.s"), "status field"),
    "deep nesting": ([b"avd.s", DEEP], "not JSON"),
    "classes a list": (frames({**good_estimate(), "classes": [[1]]}), "classes must map names"),
    "50 MB frame": ([b"avd.s", b" " * 50_000_000], "over the"),
    "window before the stream": (frames(good_estimate(start=-5.0, end=-1.0)), "must not start before the stream"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_parse_message_refuses_each_class_of_hostile_message_with_a_one_line_reason(name):
    message, reason = HOSTILE[name]
    with pytest.raises(SchemaError) as excinfo:
        parse_message(message)
    line = Rejections().add(excinfo.value)
    assert reason in line and "\n" not in line and len(line) < 300


def test_parse_message_passes_good_messages_and_ignores_unknown_estimate_fields():
    kind, payload = parse_message(frames({**good_estimate(3), "added_in_a_later_version": [1, 2]}))
    assert kind == "avd" and payload == good_estimate(3)
    status = status_payload(stream="s", dropped_blocks=0, skipped_windows=1, lag_s=0.0, wall=1.0, estimates=4)
    assert parse_message([b"status.s", to_json(status).encode()]) == ("status", status)


def test_a_50_mb_frame_is_refused_before_it_is_parsed():
    message = [b"avd.s", b"[" * 50_000_000]
    tracemalloc.start()
    with pytest.raises(SchemaError, match="over the"):
        parse_message(message)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1_000_000  # parsing would allocate far more than the 50 MB frame; the size check allocates ~nothing


def test_printable_escapes_control_characters_and_keeps_other_scripts():
    assert printable("Wut\x1b[31m\r\n\u202e") == "Wut\\x1b[31m\\r\\n\\u202e"
    assert printable("ärgerlich 生气") == "ärgerlich 生气"
    assert printable("x" * 50, 10) == "x" * 9 + "…"


def test_a_long_error_keeps_its_reason_in_the_final_status_and_in_listen_s_line():
    """A truncated file at a 559-character path: cut at its end, the status's error and listen's line were all
    path ("dddd…"), the reason gone."""
    from emolive.engine.schema import END_FAILED, end_fields, end_text

    error = "/" + "d" * 600 + "/cut.wav is damaged or truncated: its audio ends at 1.00 s of the 2.00 s it declares"
    status = status_payload(stream="s", dropped_blocks=0, skipped_windows=0, lag_s=0.0, wall=1.0, ended=True,
                            **end_fields(END_FAILED, error))
    validate_status(status)
    assert status["error"].startswith("/ddd") and status["error"].endswith("ends at 1.00 s of the 2.00 s it declares")
    assert end_text(status).endswith("truncated: its audio ends at 1.00 s of the 2.00 s it declares")


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                           lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8),
                                                                                              children, max_size=4),
                           max_leaves=20)
FIELD_NAMES = st.sampled_from(sorted(good_estimate()) + ["kind", "estimates"])


@st.composite
def mutated_messages(draw) -> list[bytes]:
    """A valid estimate or status with fields replaced, dropped or added, under a drawn topic."""
    base = draw(st.sampled_from([good_estimate(),
                                 status_payload(stream="s", dropped_blocks=0, skipped_windows=0, lag_s=0.0, wall=1.0)]))
    payload = dict(base)
    for name in draw(st.lists(FIELD_NAMES, max_size=3)):
        if draw(st.booleans()):
            payload[name] = draw(JSON_VALUES)
        else:
            payload.pop(name, None)
    topic = draw(st.sampled_from([b"avd.s", b"status.s", b"avd.", b"avd.s\x00", b"turn.s"]))
    body = json.dumps(payload).encode() if draw(st.booleans()) else draw(st.binary(max_size=200))
    return [topic, body]


@settings(max_examples=400, deadline=1000)  # deadline: a hang detector, ~1000x one parse, not a timing claim
@given(st.one_of(mutated_messages(), st.lists(st.binary(max_size=100), max_size=4)))
def test_fuzzed_frames_give_a_valid_payload_or_one_schema_error_never_anything_else(message):
    try:
        kind, payload = parse_message(message)
    except SchemaError as exc:
        assert "\n" not in Rejections().add(exc)
        return
    if kind == "avd":
        validate_estimate(payload)  # what a reader gets back is a whole, strict estimate
    else:
        validate_status(payload)
    assert all(not isinstance(v, float) or math.isfinite(v) for v in payload.values())


def test_listen_counts_and_reports_hostile_messages_and_keeps_printing_good_ones():
    """A real publisher sends every hostile class, then good estimates: `emolive listen` prints the
    good ones, reports the others on stderr with their count, and exits 0 without a traceback."""
    publisher = zmq.Context.instance().socket(zmq.XPUB)
    publisher.setsockopt(zmq.LINGER, 1000)
    publisher.setsockopt(zmq.SNDHWM, 0)
    port = publisher.bind_to_random_port("tcp://127.0.0.1")
    listener = subprocess.Popen([EMOLIVE, "listen", "--connect", f"tcp://127.0.0.1:{port}", "--count", "2"],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(2):  # its two subscriptions (avd., status.): from here on it misses nothing
            assert publisher.poll(60_000), "listener never subscribed"
            publisher.recv()
        hostile = [message for message, _ in HOSTILE.values()]
        sneaky = good_estimate(0, classes={"\x1b[2J\x1b[Hgotcha": 1.0})
        for message in [*hostile, frames(sneaky), frames(good_estimate(1))]:
            publisher.send_multipart(message)
        out, err = listener.communicate(timeout=60)
    finally:
        listener.kill()
        publisher.close()
    assert listener.returncode == 0 and "Traceback" not in err, err
    rows = out.splitlines()[1:]
    assert [row.split()[0] for row in rows] == ["0.00-3.00", "0.50-3.50"]
    assert "\x1b" not in out and "\\x1b[2J" in rows[0]
    reports = [line for line in err.splitlines() if "off the emolive schema" in line]
    subscribed = [message for message in hostile if message[0].startswith((b"avd.", b"status."))]  # others never arrive
    assert reports and f"ignored {len(subscribed)} messages" in reports[-1]


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_ends_listen_as_ctrl_c_does_with_its_last_count_of_ignored_messages(signum, code):
    """SIGTERM killed `emolive listen` (exit -15) before it said how many messages it had ignored since
    its last report; every emolive command exits 143 on SIGTERM, after what Ctrl-C would print. SIGHUP
    (its terminal closed) too, with 129."""
    publisher = zmq.Context.instance().socket(zmq.XPUB)
    publisher.setsockopt(zmq.LINGER, 0)
    port = publisher.bind_to_random_port("tcp://127.0.0.1")
    listener = interruptible([EMOLIVE, "listen", "--connect", f"tcp://127.0.0.1:{port}"], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(2):
            assert publisher.poll(60_000), "listener never subscribed"
            publisher.recv()
        for _ in range(3):  # within its one report a second: the last count is only said on the way out
            publisher.send_multipart([b"avd.default", b"not json"])
        time.sleep(0.5)
        publisher.send_multipart([b"avd.default", b"[1]"])
        time.sleep(0.5)
        listener.send_signal(signum)
        _, err = listener.communicate(timeout=60)
    finally:
        listener.kill()
        publisher.close()
    assert listener.returncode == code and "Traceback" not in err, err
    assert "ignored 4 messages" in err.splitlines()[-1]


def test_stream_id_listens_to_one_stream_of_a_publisher_with_several():
    """Two streams behind one forwarder interleaved their rows in `listen`'s table, with nothing to tell them
    apart; `--stream-id` keeps one, and `--until-end` then waits for its end, not another's."""
    publisher = zmq.Context.instance().socket(zmq.XPUB)
    publisher.setsockopt(zmq.LINGER, 0)
    port = publisher.bind_to_random_port("tcp://127.0.0.1")
    listener = subprocess.Popen([EMOLIVE, "listen", "--connect", f"tcp://127.0.0.1:{port}", "--json", "--until-end",
                                 "--stream-id", "a"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    try:
        for _ in range(2):
            assert publisher.poll(60_000), "listener never subscribed"
            publisher.recv()
        for seq, stream in enumerate(["a", "ab", "b", "a"]):  # "avd.ab" starts with a's topic, "avd.a"
            publisher.send_multipart(frames(good_estimate(seq, stream=stream), f"avd.{stream}".encode()))
        for stream in ("ab", "a"):  # another stream's end goes by; this one's ends the listener
            final = run_status(stream, RunStats(2, 0, 0, 4.0), lag_s=0.0, live=False, ended=END_FINISHED)
            publisher.send_multipart(frames(final, f"status.{stream}".encode()))
        out, err = listener.communicate(timeout=60)
    finally:
        listener.kill()
        publisher.close()
    assert listener.returncode == 0, err
    assert [(e["stream"], e["seq"]) for e in map(json.loads, out.splitlines())] == [("a", 0), ("a", 3)]


def test_a_host_that_does_not_resolve_is_one_line_not_a_silent_wait():
    """libzmq connects lazily and retried `tcp://nosuch.invalid:5556` forever without a word.
    (.invalid never resolves: RFC 6761.)"""
    listener = subprocess.run([EMOLIVE, "listen", "--connect", "tcp://nosuch.invalid:5556"], cwd=REPO,
                              capture_output=True, text=True, timeout=60)
    assert listener.returncode == 1
    (line,) = listener.stderr.strip().splitlines()  # the resolver's reason is the C library's own words
    assert line.startswith("emolive: error: cannot connect to tcp://nosuch.invalid:5556: host 'nosuch.invalid' "
                           "does not resolve (")


def test_a_subscriber_s_address_errors_give_advice_a_subscriber_can_follow():
    """`listen --connect foo` advised "PORT * for any free one", and following it gave libzmq's "Invalid
    argument": * only binds. Both now say what a subscriber can give."""
    from emolive.engine.sinks.base import SinkError
    from emolive.engine.sinks.zmq_publisher import validate_address

    for address, needle in (("foo", "use the publisher's tcp://HOST:PORT"), ("tcp://127.0.0.1:*", "port * picks")):
        listener = subprocess.run([EMOLIVE, "listen", "--connect", address], cwd=REPO, capture_output=True,
                                  text=True, timeout=60)
        assert listener.returncode == 1 and needle in listener.stderr and "for any free one" not in listener.stderr
    assert validate_address("tcp://127.0.0.1:*") is False  # binding there stays allowed
    with pytest.raises(SinkError, match="PORT \\* for any free one"):
        validate_address("foo")


GOOD_STATUS = status_payload(stream="s", dropped_blocks=0, skipped_windows=0, lag_s=0.0, wall=1.0, estimates=4,
                             audio_s=3.0, live=False, device_gaps=0, gap_s=0.0, ended=True, end_reason="failed",
                             error="clip.flac is damaged")
STATUS_VARIANTS = {  # a status as the runner sends it, and one field off the schema file's at a time
    "whole": {},
    "ended as a number": {"ended": 1},
    "live as text": {"live": "no"},
    "negative estimates": {"estimates": -5},
    "audio_s as text": {"audio_s": "x"},
    "negative gap_s": {"gap_s": -1.0},
    "with a seq": {"seq": 3},
    "unknown end reason": {"end_reason": "crashed"},
    "error as a number": {"error": 7},
    "an older publisher's": {"end_reason": None, "error": None, "device_gaps": None},  # None: the field left out
    "whole numbers as floats": {"estimates": 3.0, "dropped_blocks": 2.0, "schema": 1.0},  # JSON Schema's integers
    "a count as 1e2": {"estimates": 1e2},
    "huge but finite numbers": {"audio_s": 10**29, "wall": 11111111111111111111},
    "an error over 500 characters": {"error": "x" * 501},
    "a fractional count": {"estimates": 2.5},
    "a count of 401 digits": {"estimates": 10**400},  # math.isfinite overflowed on it: listen ended in a traceback
}
TAKEN = ("whole", "an older publisher's", "whole numbers as floats", "a count as 1e2", "huge but finite numbers",
         "a count of 401 digits")


@pytest.mark.parametrize("name", STATUS_VARIANTS)
def test_a_status_is_read_where_the_schema_file_takes_it_and_refused_where_it_does_not(name):
    """`listen` and `gui --connect` had taken statuses the shipped JSON Schema forbids (`ended: 1`,
    `estimates: -5`, a `seq`): a client built on the file and emolive's own reader disagreed."""
    import jsonschema

    schema = json.loads((REPO / "engine" / "data" / "messages.schema.json").read_text())
    payload = {k: v for k, v in {**GOOD_STATUS, **STATUS_VARIANTS[name]}.items() if v is not None}
    by_file = jsonschema.Draft202012Validator(schema).is_valid(payload)
    try:
        parse_message(frames(payload, b"status.s"))
        by_reader = True
    except SchemaError:
        by_reader = False
    assert by_reader == by_file == (name in TAKEN)


def test_a_listened_table_says_each_runs_losses_though_the_last_run_lost_as_many():
    """`listen` goes on to a stream's next run, whose counts start again at 0: its losses had been said
    only where they differed from the last run's, so a second run that skipped 5 windows said nothing."""
    import io

    from emolive.engine.sinks.table import TableSink

    out = io.StringIO()
    table = TableSink(out, announce_end=True)
    for _ in range(2):  # two runs of one stream, each skipping 5 windows, then ending
        table.status({**GOOD_STATUS, "ended": False, "skipped_windows": 5})
        table.status({**GOOD_STATUS, "skipped_windows": 5, "end_reason": "finished"})
    lines = out.getvalue().splitlines()
    assert [line.startswith("# lost so far: 5 windows skipped") for line in lines] == [True, False, True, False]
    assert lines[1] == lines[3] == "# stream s ended"


def test_a_model_name_that_is_no_utf_8_goes_out_as_score_writes_it_not_as_a_lone_surrogate():
    """A bundle folder named with a byte that is not UTF-8: estimates had carried `\\udcff`, which a
    strict JSON reader refuses, where `emolive score` wrote `\\xff` (engine.table_names)."""
    from emolive.engine.table_names import table_text

    estimate = good_estimate(model="./bund\udcffle")
    assert estimate["model"] == table_text("./bund\udcffle") == "./bund\\xffle"
    to_json(estimate).encode("utf-8")  # strict: a lone surrogate would raise here


def listened_run(source: Path, *listen_args: str, stream_id: str = "default",
                 until_end: bool = True) -> tuple[subprocess.CompletedProcess, int, str, str]:
    """`emolive stream --json SOURCE` published to an `emolive listen --until-end LISTEN_ARGS` started first
    (the stream waits for it): the stream's result, and the listener's exit status, stdout and stderr.
    Without `until_end`, the listener is stopped (SIGTERM) 2 s after the stream ends."""
    from tests.test_cli import free_port

    address = f"tcp://127.0.0.1:{free_port()}"
    listener = subprocess.Popen([EMOLIVE, "listen", "--connect", address, *(["--until-end"] if until_end else []),
                                 *listen_args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        engine = subprocess.run([EMOLIVE, "stream", "--source", str(source), "--publish", address, "--json",
                                 "--wait-subscriber", "60", "--stream-id", stream_id],
                                cwd=REPO, capture_output=True, text=True, timeout=120)
        if not until_end:
            time.sleep(2.0)  # the final status, sent before the stream exited, reaches the listener within ms
            listener.terminate()
        out, err = listener.communicate(timeout=60)
    finally:
        listener.kill()
    return engine, listener.returncode, out, err


def test_listen_until_end_exits_with_an_error_after_a_run_that_failed():
    """A damaged file ends the stream with its error: the final status had been a finished run's, so
    `listen --until-end` exited 0 and a recorder kept 16 s of a 160 s file as the whole. It now says
    how the run ended (`end_reason`, `error`) and exits 1 on a failed one."""
    whole = np.concatenate([read_audio(path) for path in corpus_files("emodb", limit=6)])
    with tempfile.TemporaryDirectory() as tmp:
        cut = Path(tmp) / "cut.flac"
        sf.write(cut, whole, 16000)
        cut.write_bytes(cut.read_bytes()[:cut.stat().st_size // 3])
        engine, listened, out, err = listened_run(cut, "--json", stream_id="e2e")
        # listening on, its JSON lines carry estimates only: the end is said on stderr, as the table's row says it
        _, following, _, said = listened_run(cut, "--json", stream_id="e2e", until_end=False)
    assert following == 143 and "emolive: stream e2e failed: " in said and "damaged or truncated" in said, said
    assert engine.returncode == 1 and "damaged or truncated" in engine.stderr, engine.stderr
    assert listened == 1 and "Traceback" not in err
    assert "stream e2e failed: " in err and "damaged or truncated" in err, err
    assert len(out.splitlines()) == len(engine.stdout.splitlines()) > 0  # what was read still went out


def test_listen_at_a_port_that_is_no_zeromq_publishers_says_so_once_and_goes_on():
    """Pointed at the WebSocket output's port beside a running stream, `listen` had waited without a
    word for ever (libzmq retries a failed handshake in silence)."""
    from emolive.engine.sinks.websocket import WebSocketSink

    with WebSocketSink("127.0.0.1:0") as websocket:
        listener = subprocess.Popen([EMOLIVE, "listen", "--connect", f"tcp://{websocket.address}"], cwd=REPO,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _, err = listener.communicate(timeout=11)  # the server waits in silence: three handshakes time out
        except subprocess.TimeoutExpired:
            listener.terminate()
            _, err = listener.communicate(timeout=30)
    assert listener.returncode == 143 and "Traceback" not in err, err  # it went on listening until stopped
    assert err.count("accepts connections but gives no ZeroMQ publisher's handshake (within 3 s)") == 1, err


def test_a_zeromq_peer_that_is_no_publisher_is_said_too():
    """A PUSH socket's port: libzmq drops the SUB's connection with no handshake event at all, and
    `listen` had waited there in silence."""
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    sub, watch = watched_reader(push.bind_to_random_port("tcp://127.0.0.1"))
    try:
        notes = poll_notes(watch, 5.0, until=lambda: watch.failing)
    finally:
        watch.close()
        sub.close()
        push.close()
    assert len(notes) == 1 and "gives no ZeroMQ publisher's handshake" in notes[0]


def test_a_publisher_that_answers_late_is_said_to_answer_after_the_warning():
    """A real publisher suspended (Ctrl-Z) or starting late behind a forwarder fails handshakes for a
    while: the warning then reads as false unless its answer is said too (the GUI had kept the warning
    beside the plots of the whole run)."""
    import socket

    from emolive.engine.handshake import FAILURES_SAID, HANDSHAKE_MS

    silent = socket.create_server(("127.0.0.1", 0))  # accepts, says nothing: a suspended process's port
    port = silent.getsockname()[1]
    sub, watch = watched_reader(port)
    try:
        notes = poll_notes(watch, (FAILURES_SAID + 1) * HANDSHAKE_MS / 1000)
        assert len(notes) == 1 and "gives no ZeroMQ publisher's handshake" in notes[0] and watch.failing
        silent.close()
        publisher = zmq.Context.instance().socket(zmq.XPUB)  # the publisher takes the port: it answers
        publisher.setsockopt(zmq.LINGER, 0)
        publisher.bind(f"tcp://127.0.0.1:{port}")
        try:
            notes = poll_notes(watch, 5.0, until=lambda: not watch.failing)
        finally:
            publisher.close()
        assert notes == [f"tcp://127.0.0.1:{port} now answers as a ZeroMQ publisher"]
    finally:
        watch.close()
        sub.close()


def test_a_publisher_closing_as_the_reader_connects_is_not_called_no_publisher():
    """A connection the publisher's port accepted as it closed fails one handshake: `listen`, following
    successive runs on one address, had said it "gives no ZeroMQ publisher's handshake" about 1 run in 20."""
    import socket

    closing = socket.create_server(("127.0.0.1", 0))  # a run's port as it closes: accepts, then drops
    port = closing.getsockname()[1]
    sub, watch = watched_reader(port)
    try:
        accepted, _ = closing.accept()
        accepted.close()
        closing.close()
        notes = poll_notes(watch, 0.3)  # the reader looks meanwhile, as `listen` does between messages
        publisher = zmq.Context.instance().socket(zmq.PUB)  # the next run binds the port
        publisher.setsockopt(zmq.LINGER, 0)
        publisher.bind(f"tcp://127.0.0.1:{port}")
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        try:
            for _ in range(100):  # until the reader hears the next run
                publisher.send(b"status")
                if sub.poll(50):
                    break
            assert sub.poll(0), "the reader never reached the next run"
            notes += poll_notes(watch, 0.5)
        finally:
            publisher.close()
    finally:
        watch.close()
        sub.close()
    assert notes == []


def watched_reader(port: int):
    """A SUB socket connecting to `port` on 127.0.0.1 and the HandshakeWatch on it (made before it connects)."""
    from emolive.engine.handshake import HandshakeWatch

    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    watch = HandshakeWatch(sub, f"tcp://127.0.0.1:{port}")
    sub.connect(f"tcp://127.0.0.1:{port}")
    return sub, watch


def poll_notes(watch, seconds: float, until=lambda: False) -> list[str]:
    """What `watch` says over `seconds`, or until `until()`."""
    notes, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline and not until():
        if note := watch.note():
            notes.append(note)
        time.sleep(0.05)
    return notes


def test_listen_until_end_exits_where_the_stream_ends_and_says_so():
    """A quiet live stream and a finished one sent alike nothing: a listener (or `gui --connect`) could
    not tell them apart. The final status now says `ended`, and `listen --until-end` stops there."""
    clip = max(corpus_files("emodb", limit=10), key=lambda path: path.stat().st_size)
    engine, listened, out, err = listened_run(clip, stream_id="e2e")
    assert engine.returncode == 0 and listened == 0 and "Traceback" not in err, err
    lines = out.splitlines()
    assert lines[-1] == "# stream e2e ended"  # end_reason "finished": the source ran out
    assert len(lines) - 2 == len(engine.stdout.splitlines())  # the header, every estimate, the end
    # --turns prints each speech turn too (they were never shown), as a JSON line with its `kind`
    engine, listened, out, err = listened_run(clip, "--json", "--turns")
    printed = [json.loads(line) for line in out.splitlines()]
    estimates = [p for p in printed if "kind" not in p]
    turns = [p for p in printed if p.get("kind") == "turn"]
    assert listened == 0 and estimates == [json.loads(line) for line in engine.stdout.splitlines()]
    assert turns and all(0 <= t["start"] < t["end"] <= estimates[-1]["end"] + 3 for t in turns), err


def test_a_turn_in_the_table_is_a_marked_row_and_makes_no_table_a_taker_of_turns():
    """`listen --turns` without --json: the turn's estimate as a row marked '# turn'. The table sink does
    not take turns from a run (`takes_turns`), so `emolive stream`'s table costs no model call per turn."""
    import io

    from emolive.engine.sinks.table import TableSink

    out = io.StringIO()
    table = TableSink(out)
    table.note_turn({**good_estimate(start=0.34, end=7.25), "kind": "turn"})
    header, row = out.getvalue().splitlines()  # the header first, though no estimate came before the turn
    assert header.strip().startswith("window (s)") and row.startswith("# turn 0.34-7.25   4.00  5.00  3.00  happy 0.75")
    assert not table.takes_turns()


def test_numbers_written_as_json_integers_are_read_as_the_schemas_numbers():
    """The schema file types these fields `number`, and JavaScript's JSON.stringify writes 0.0 as 0:
    listen refused such an estimate as "wall_start must be a finite float". A huge integer is no number
    a float holds, and is refused as before, without an overflow."""
    estimate = {**good_estimate(), "wall_start": 0, "activation": 4, "classes": {"happy": 1, "sad": 0}}
    kind, payload = parse_message(frames(estimate))
    assert payload["wall_start"] == 0.0 and type(payload["wall_start"]) is float and type(payload["activation"]) is float
    assert payload["classes"] == {"happy": 1.0, "sad": 0.0} and all(type(v) is float for v in payload["classes"].values())
    status = {**status_payload(stream="s", dropped_blocks=0, skipped_windows=0, lag_s=0.0, wall=1.0), "lag_s": 0}
    assert type(parse_message(frames(status, b"status.s"))[1]["lag_s"]) is float
    with pytest.raises(SchemaError, match="wall_start must be a finite float"):
        parse_message(frames({**good_estimate(), "wall_start": 10**400}))


@pytest.mark.parametrize("command", [["listen", "--connect", "tcp://127.0.0.1:1"], ["gui", "--connect"]])
def test_a_second_connect_is_refused_not_silently_followed_instead(command):
    """`listen --connect A --connect B` followed B alone: A's estimates were dropped without a word."""
    result = subprocess.run([EMOLIVE, *command, "--connect", "tcp://127.0.0.1:2"], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith("argument --connect: given twice; one command follows one "
                                                           "publisher, so run one per address")
