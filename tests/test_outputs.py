"""Outputs live tools speak: OSC to a real UDP server, WebSocket to real clients (a slow one never blocks
the engine), and the JSON Schema file checked against everything the engine sends."""
from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import emolive
from emolive.engine.cli import main
from emolive.engine.runner import Runner
from emolive.engine.sinks import SinkError
from emolive.engine.sinks.base import Sink
from emolive.engine.sinks.osc import OscSink
from emolive.engine.sinks.websocket import WebSocketSink
from emolive.engine.sources import FileSource
from tests.conftest import REPO, corpus_files, read_audio
from tests.test_runner import Collect

SCHEMA = json.loads((REPO / "engine" / "data" / "messages.schema.json").read_text())


@pytest.fixture(scope="module")
def student(one_torch_thread):
    return emolive.load_model("student")


@pytest.fixture(scope="module")
def speech_file(tmp_path_factory) -> Path:
    """Two corpus clips with a 1.5 s pause between them: windows, two turns and statuses."""
    clips = [read_audio(p) for p in corpus_files("ravdess", every=300, limit=2)]
    gap = np.zeros(24000, np.float32)
    path = tmp_path_factory.mktemp("outputs") / "speech.flac"
    sf.write(path, np.concatenate([gap, clips[0], gap, clips[1], gap]), 16000)
    return path


def run(student, path: Path, *sinks: Sink, stream_id: str = "out") -> Collect:
    collect = Collect()
    with FileSource(path) as source:
        Runner(source, student, [collect, *sinks], stream_id=stream_id, whole_stream=True).run()
    return collect


def test_osc_messages_reach_a_real_osc_server(student, speech_file):
    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_server import ThreadingOSCUDPServer

    received: list[tuple] = []
    dispatcher = Dispatcher()
    dispatcher.map("/emolive/*", lambda address, *values: received.append((address, *values)))
    server = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with OscSink(f"127.0.0.1:{server.server_address[1]}") as osc:
            sent = run(student, speech_file, osc)
        deadline = time.monotonic() + 5
        expected = 3 * len(sent.estimates) + len(sent.turns) - 1  # the whole-stream turn is not sent over OSC
        while len(received) < expected and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        server.shutdown()
        server.server_close()
    avd = [m[1:] for m in received if m[0] == "/emolive/out/avd"]
    classes = [m[1:] for m in received if m[0] == "/emolive/out/class"]
    speech = [m[1] for m in received if m[0] == "/emolive/out/speech"]
    turns = [m[1:] for m in received if m[0] == "/emolive/out/turn"]
    assert len(avd) == len(classes) == len(speech) == len(sent.estimates) > 5  # loopback UDP: none lost
    for values, top, flag, estimate in zip(avd, classes, speech, sent.estimates):
        # OSC floats are 32-bit: the 1-7 values survive to ~5e-7
        np.testing.assert_allclose(values, [estimate[k] for k in ("activation", "valence", "dominance")], atol=1e-6)
        best = max(estimate["classes"], key=estimate["classes"].get)
        assert top[0] == best and top[1] == pytest.approx(estimate["classes"][best], abs=1e-6)
        assert flag == int(estimate["speech"])
    assert 0 < len(turns) == len([t for t in sent.turns if t["kind"] == "turn"])


def test_outputs_refuse_other_machines_unless_allowed(capsys):
    for option in ("--osc", "--websocket"):
        assert main(["-q", "stream", "--source", str(REPO / "engine/data/demo.flac"), "--no-publish", option,
                     "192.0.2.1:9000"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "other machines could reach it" in err and "--allow-remote" in err
    with pytest.raises(SinkError, match="HOST:PORT"):
        OscSink("9000")


@pytest.mark.parametrize("address, message", [
    ("127.0.0.1:\u00b2", "give HOST:PORT with a port from 0 to 65535"),  # '²': isdigit, then int() raised
    ("127.0.0.1:\u0669\u0660\u0660\u0660", "give HOST:PORT with a port"),  # Arabic-Indic 9000, taken as 9000
    ("nosuchhost.invalid:9000", "host 'nosuchhost.invalid' is no address and no name this machine resolves"),
])
def test_a_malformed_or_unknown_osc_or_websocket_address_is_one_line_saying_what(address, message):
    """An unresolvable host was "refusing: other machines could reach it; --allow-remote", advice that
    led to "Name or service not known"."""
    from emolive.engine.sinks.endpoint import parse_endpoint

    for option in ("--osc", "--websocket"):
        with pytest.raises(SinkError) as refused:
            parse_endpoint(address, option)
        assert message in str(refused.value) and "allow-remote" not in str(refused.value)


def test_an_ipv6_osc_target_is_named_as_it_is_written():
    """It was logged as ::1:9102, which reads as another address."""
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close()
    except OSError:
        pytest.skip("this machine has no IPv6 sockets")
    with OscSink("[::1]:9102") as osc:
        assert osc.target == "[::1]:9102"
    with OscSink("127.0.0.1:9102") as osc:
        assert osc.target == "127.0.0.1:9102"


def messages(client, count: int | None = None, timeout: float = 5.0) -> list[dict]:
    out = []
    while count is None or len(out) < count:
        try:
            out.append(json.loads(client.recv(timeout=timeout)))
        except TimeoutError:
            break
    return out


def test_websocket_clients_get_the_zeromq_messages_and_they_follow_the_json_schema(student, speech_file):
    import jsonschema
    from websockets.sync.client import connect

    with WebSocketSink("127.0.0.1:0") as sink:
        with connect(f"ws://{sink.address}") as first, connect(f"ws://{sink.address}") as second:
            deadline = time.monotonic() + 5
            while sink.clients < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            sent = run(student, speech_file, sink)
            total = len(sent.estimates) + len(sent.turns) + len(sent.statuses)
            got = [messages(first, total, timeout=10), messages(second, total, timeout=10)]
    assert got[0] == got[1]
    by_topic = {kind: [m["message"] for m in got[0] if m["topic"] == f"{kind}.out"] for kind in ("avd", "turn", "status")}
    assert by_topic["avd"] == sent.estimates and by_topic["turn"] == sent.turns
    assert by_topic["status"] == sent.statuses and len(got[0]) == total
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for message in got[0]:
        validator.validate(message)  # the WebSocket envelope
        validator.validate(message["message"])  # and the payload alone, as on ZeroMQ
    # every status field is one the schema (and docs/engine.md) describes: device_gaps and gap_s were not
    # (`error` is a failed run's only)
    assert set(sent.statuses[-1]) == set(SCHEMA["$defs"]["status"]["properties"]) - {"error"}
    kinds = [t["kind"] for t in sent.turns]
    assert kinds.count("turn") == 2 and kinds[-1] == "stream"


def test_the_json_schema_refuses_what_the_engine_refuses():
    import jsonschema

    from emolive.engine.schema import SchemaError, estimate_payload, validate_estimate

    good = estimate_payload(seq=0, stream="s", start=0.0, end=3.0, wall_start=1.0, wall_end=4.0, activation=4.0,
                            valence=4.0, dominance=4.0, classes={"a": 1.0}, speech=True, voiced_ratio=0.5,
                            model="m", latency_ms=1.0)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    validator.validate(good)
    bad = [{**good, "activation": 7.5}, {**good, "speech": "yes"}, {**good, "stream": "a b"}, {**good, "schema": 2},
           {**good, "seq": -1}, {k: v for k, v in good.items() if k != "model"}, {**good, "classes": {"a": 1.5}}]
    for payload in bad:
        with pytest.raises(SchemaError):
            validate_estimate(payload)
        assert not validator.is_valid(payload), payload


def test_a_client_that_stops_reading_never_blocks_the_engine_and_its_losses_are_counted():
    from websockets.sync.client import connect

    payload = emolive.engine.schema.status_payload(stream="s", dropped_blocks=0, skipped_windows=0, lag_s=0.0,
                                                   wall=0.0, padding="x" * 2000)
    with WebSocketSink("127.0.0.1:0", queue_size=10) as sink:
        stalled = connect(f"ws://{sink.address}", max_queue=1, legacy=True)  # reads one message, then leaves TCP to fill up
        # legacy=True: plain connections, not context managers, since two are left without a close handshake
        reader = connect(f"ws://{sink.address}", legacy=True)
        gone = connect(f"ws://{sink.address}", legacy=True)
        gone.socket.close()  # a client that died without a close handshake
        deadline = time.monotonic() + 5
        while sink.clients < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        for _ in range(20000):  # ~40 MB: far more than the stalled client's socket buffers hold
            sink.status(payload)
        deadline = time.monotonic() + 10
        while sink.dropped == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sink.dropped > 0
        assert messages(reader, 1)[0]["topic"] == "status.s"  # the reading client still gets messages
        reader.close()
        stalled.socket.close()


def test_readers_parse_turn_messages_and_refuse_a_turn_without_its_kind():
    from emolive.engine.schema import SchemaError, parse_message, to_json, turn_payload

    turn = turn_payload(kind="turn", seq=0, stream="s", start=1.0, end=2.5, wall_start=1.0, wall_end=2.5,
                        activation=4.0, valence=3.0, dominance=5.0, classes={"a": 1.0}, speech=True,
                        voiced_ratio=0.5, model="m", latency_ms=1.0)
    kind, payload = parse_message([b"turn.s", to_json({**turn, "future": 1}).encode()])
    assert kind == "turn" and payload == turn  # unknown fields are dropped, as readers must ignore them
    with pytest.raises(SchemaError, match="turn kind"):
        parse_message([b"turn.s", to_json({k: v for k, v in turn.items() if k != "kind"}).encode()])


def test_osc_reaches_a_broadcast_address(student, speech_file):
    """A broadcast target passed the checks, then the first estimate failed with EACCES and ended the
    run: the socket lacked SO_BROADCAST. 127.255.255.255 is loopback's own broadcast address."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("0.0.0.0", 0))
        receiver.settimeout(5)
        with OscSink(f"127.255.255.255:{receiver.getsockname()[1]}") as osc:
            sent = run(student, speech_file, osc)
        assert sent.estimates and receiver.recv(1024).startswith(b"/emolive/out/")


def test_a_websocket_output_tells_when_its_first_client_has_connected():
    """`--wait-subscriber` waits on it: a file run read fast had gone out before a client could connect."""
    from websockets.sync.client import connect

    with WebSocketSink("127.0.0.1:0") as sink:
        started = time.monotonic()
        assert sink.wait_for_subscriber(0.3) is False and time.monotonic() - started >= 0.3
        with connect(f"ws://{sink.address}"):
            assert sink.wait_for_subscriber(30) is True
    assert sink._loop.is_closed()  # it was left open: "unclosed event loop" at every exit under python -X dev
