"""Sinks deliver the schema's payloads; the ZeroMQ publisher stays fast and bounded with a dead subscriber."""
from __future__ import annotations

import csv
import errno
import io
import json
import logging
import os
import socket
import stat
import subprocess
import threading
import time

import pytest
import zmq

from tests.conftest import default_file_mode
from emolive.engine.schema import estimate_payload, status_payload, validate_estimate
from emolive.engine.sinks import CsvSink, JsonLinesSink, LslSink, SinkError, ZmqPublisher
from emolive.engine.sinks.table import TableSink
from emolive.engine.sinks.zmq_publisher import is_local

LOOPBACK_ANY_PORT = "tcp://127.0.0.1:*"


def estimate(seq: int = 0, stream: str = "test", **overrides) -> dict:
    fields = dict(seq=seq, stream=stream, start=seq * 0.5, end=seq * 0.5 + 3.0, wall_start=time.time() - 3.0,
                  wall_end=time.time(), activation=4.0 + seq % 3 * 0.5, valence=3.5, dominance=4.5,
                  classes={"neutral": 0.7, "happy": 0.1, "sad": 0.1, "angry": 0.1}, speech=True, voiced_ratio=0.55,
                  model="student", latency_ms=6.0)
    return estimate_payload(**{**fields, **overrides})


def subscriber(address: str, prefix: bytes = b"", rcvhwm: int = 1000, ipv6: bool = False) -> zmq.Socket:
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.IPV6, ipv6)
    sub.setsockopt(zmq.RCVHWM, rcvhwm)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, prefix)
    sub.connect(address)
    return sub


def wait_until_connected(publisher: ZmqPublisher, sub: zmq.Socket) -> None:
    """PUB drops everything sent before a subscription arrives (the slow joiner): probe until one gets through."""
    for _ in range(200):
        publisher.status(status_payload(stream="probe", dropped_blocks=0, skipped_windows=0, lag_s=0.0, wall=0.0))
        if sub.poll(10):
            while sub.poll(50):
                sub.recv_multipart()
            return
    raise AssertionError("subscriber never connected")


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def test_zmq_subscriber_receives_every_estimate_and_status_on_its_topic():
    with ZmqPublisher(LOOPBACK_ANY_PORT) as publisher:
        sub = subscriber(publisher.address)
        sub.setsockopt(zmq.SUBSCRIBE, b"status.mic")
        wait_until_connected(publisher, sub)
        sent = [estimate(seq, "mic") for seq in range(50)]
        for payload in sent:
            publisher.emit(payload)
        publisher.status(status_payload(stream="mic", dropped_blocks=1, skipped_windows=2, lag_s=0.25, wall=1.0))
        received = [sub.recv_multipart() for _ in range(51)]
        sub.close()
    assert [topic for topic, _ in received] == [b"avd.mic"] * 50 + [b"status.mic"]
    payloads = [json.loads(body) for _, body in received]
    for payload in payloads[:50]:
        validate_estimate(payload)
    assert payloads[:50] == sent
    assert payloads[50]["skipped_windows"] == 2 and publisher.dropped == 0


def test_zmq_subscriber_filtering_by_stream_topic():
    with ZmqPublisher(LOOPBACK_ANY_PORT) as publisher:
        sub = subscriber(publisher.address, b"avd.b")
        sub.setsockopt(zmq.SUBSCRIBE, b"status.probe")
        wait_until_connected(publisher, sub)
        publisher.emit(estimate(0, "a"))
        publisher.emit(estimate(1, "b"))
        topic, body = sub.recv_multipart()
        assert topic == b"avd.b" and json.loads(body)["seq"] == 1
        assert not sub.poll(100)
        sub.close()


def test_zmq_subscriber_that_never_reads_costs_no_memory_and_no_time():
    with ZmqPublisher(LOOPBACK_ANY_PORT) as publisher:
        sub = subscriber(publisher.address, rcvhwm=100)
        wait_until_connected(publisher, sub)
        payload, n, peak_rss = estimate(7), 200_000, 0
        rss_before, started = rss_kib(), time.perf_counter()
        for i in range(n):
            publisher.emit(payload)
            if i % 10_000 == 0:
                peak_rss = max(peak_rss, rss_kib())
        elapsed = time.perf_counter() - started
        received = 0
        while sub.poll(300):
            sub.recv_multipart()
            received += 1
        sub.close()
    # ~500-byte messages: an unbounded queue would hold ~100 MB and deliver all of them in the end.
    assert peak_rss - rss_before < 30 * 1024
    assert received < n // 10
    # Never blocking is guaranteed by NOBLOCK sends and shown by the memory and delivery bounds above;
    # time is only a hang detector here, not a speed claim: a send takes ~5 us, a blocked one forever.
    # (A single send may wait for the scheduler on a loaded machine, so no per-send bound.)
    assert elapsed < 60.0 and publisher.dropped == 0


def test_a_recording_at_hand_waits_for_a_slow_subscriber_and_gives_up_on_a_stalled_one(caplog):
    """A file run dropped what a slow subscriber could not take yet: 11,184 of 23,883 estimates and the
    final status, without a word. At hand, the publisher waits for room (XPUB_NODROP) and its close
    lets the queue drain; a subscriber that reads nothing for `keep_up_s` is given up on, said once.
    (Sizes: 20,000 messages of ~800 bytes are 16 MB, beyond what loopback's socket buffers hold, so
    the wait is reached on any kernel; the reader's pace is all it waits for.)"""
    padded = {**estimate(0), "model": "m" * 400}
    with ZmqPublisher(LOOPBACK_ANY_PORT, keep_up_s=10.0) as publisher:
        sub = subscriber(publisher.address, rcvhwm=10)
        wait_until_connected(publisher, sub)
        got: list[int] = []

        def read_slowly() -> None:
            while sub.poll(5000):
                got.append(json.loads(sub.recv_multipart()[1])["seq"])
                if len(got) % 100 == 0:
                    time.sleep(0.01)
        reader = threading.Thread(target=read_slowly)
        reader.start()
        for seq in range(20_000):
            publisher.emit({**padded, "seq": seq})
    reader.join()
    sub.close()
    assert got == list(range(20_000))
    # beside a subscriber that never reads, one that reads again once the estimates are sent still gets the
    # final status: the run pauses once more before it, in which the reader drains its queue (libzmq's wait
    # is the socket's, and it passes over a queue a lossy send found full until half of it is read: the
    # status had gone to no one at once, in 1 run of 5 where the reader read all along, and in every run
    # here); the give-up is said once
    with ZmqPublisher(LOOPBACK_ANY_PORT, keep_up_s=1.0) as publisher:
        stalled, sub = subscriber(publisher.address, rcvhwm=10), subscriber(publisher.address, rcvhwm=10)
        wait_until_connected(publisher, stalled)
        wait_until_connected(publisher, sub)
        statuses: list[dict] = []
        estimates_sent = threading.Event()

        def read_to_the_end() -> None:
            estimates_sent.wait()
            while sub.poll(5000):
                topic, body = sub.recv_multipart()
                if topic.startswith(b"status.s"):
                    statuses.append(json.loads(body))
                    return
        reader = threading.Thread(target=read_to_the_end)
        reader.start()
        with caplog.at_level("WARNING"):
            for seq in range(20_000):
                publisher.emit({**padded, "seq": seq})
            estimates_sent.set()
            publisher.status({**status_payload(stream="s", dropped_blocks=0, skipped_windows=0, lag_s=0.0, wall=1.0),
                              "ended": True})
    reader.join()
    stalled.close()
    sub.close()
    assert [s["ended"] for s in statuses] == [True]
    assert [r.getMessage() for r in caplog.records] == [
        "ZeroMQ: a subscriber read nothing for 1 s; no longer waiting for subscribers (from here on each misses "
        "what it cannot take as it comes; the final status is waited for)"]


def test_zmq_counts_sends_libzmq_refuses(monkeypatch):
    with ZmqPublisher(LOOPBACK_ANY_PORT) as publisher:
        def refuse(*args, **kwargs):
            assert kwargs["flags"] & zmq.NOBLOCK
            raise zmq.Again()
        monkeypatch.setattr(publisher._socket, "send_multipart", refuse)
        publisher.emit(estimate())
        publisher.emit(estimate(1))
        assert publisher.dropped == 2


def test_zmq_address_in_use_is_a_one_line_error():
    with ZmqPublisher(LOOPBACK_ANY_PORT) as first:
        with pytest.raises(SinkError, match="already in use") as excinfo:
            ZmqPublisher(first.address)
    assert "\n" not in str(excinfo.value)


def test_zmq_refuses_a_remote_address_unless_allowed():
    with pytest.raises(SinkError, match="--allow-remote"):
        ZmqPublisher("tcp://*:0")
    with ZmqPublisher("tcp://0.0.0.0:*", allow_remote=True) as publisher:
        assert publisher.address.startswith("tcp://0.0.0.0:")
    assert [is_local(a) for a in ("tcp://127.0.0.1:5556", "tcp://localhost:1", "tcp://[::1]:1", "ipc:///tmp/x",
                                  "tcp://*:5556", "tcp://0.0.0.0:1", "tcp://eth0:1", "tcp://10.0.0.2:1",
                                  "ws://127.0.0.1:1")] == [True] * 4 + [False] * 5


def test_localhost_is_judged_by_what_it_resolves_to_and_bound_as_that(monkeypatch):
    """With a hosts file mapping localhost elsewhere, no output binds it; resolved to loopback, the
    checked address itself is bound (not the name, resolved again by the library)."""
    import socket

    from emolive.engine.sinks.osc import OscSink
    from emolive.engine.sinks.websocket import WebSocketSink

    with ZmqPublisher("tcp://localhost:*") as publisher:
        assert publisher.address.startswith(("tcp://127.", "tcp://[::1]"))
    real = socket.getaddrinfo

    def hosts_file(host, *args, **kwargs):  # what a hosts file "10.0.0.2 localhost" gives
        if host == "localhost":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.2", 0))]
        return real(host, *args, **kwargs)
    monkeypatch.setattr(socket, "getaddrinfo", hosts_file)
    for make in (lambda: ZmqPublisher("tcp://localhost:0"), lambda: WebSocketSink("localhost:0"),
                 lambda: OscSink("localhost:9000")):
        with pytest.raises(SinkError, match="--allow-remote"):
            make()
    assert not is_local("tcp://localhost:1") and not is_local("tcp://lo:1")


def test_json_lines_writes_one_flushed_object_per_estimate():
    class FlushCounting(io.StringIO):
        flushes = 0

        def flush(self):
            self.flushes += 1

    out = FlushCounting()
    sent = [estimate(seq) for seq in range(3)]
    with JsonLinesSink(out) as sink:
        for payload in sent:
            sink.emit(payload)
        sink.status(status_payload(stream="test", dropped_blocks=0, skipped_windows=0, lag_s=0.0, wall=0.0))
    assert [json.loads(line) for line in out.getvalue().splitlines()] == sent
    assert out.flushes == 3


def test_csv_has_a_header_from_the_first_estimate_and_one_row_each(tmp_path):
    path = tmp_path / "out.csv"
    with CsvSink(path) as sink:
        for seq in range(3):
            sink.emit(estimate(seq))
        with pytest.raises(SinkError, match="columns changed"):
            sink.emit(estimate(3, classes={"other": 1.0}))
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    assert list(rows[0])[:5] == ["schema", "seq", "stream", "start", "end"]
    assert list(rows[0])[-4:] == ["p_neutral", "p_happy", "p_sad", "p_angry"]
    assert [float(r["activation"]) for r in rows] == [4.0, 4.5, 5.0] and rows[1]["speech"] == "True"
    assert float(rows[2]["p_neutral"]) == 0.7


def test_csv_gets_the_permissions_of_any_new_file(tmp_path):
    CsvSink(tmp_path / "out.csv").close()
    assert stat.S_IMODE((tmp_path / "out.csv").stat().st_mode) == default_file_mode()


def test_csv_unwritable_path_is_an_error(tmp_path):
    with pytest.raises(SinkError, match="cannot write CSV"):
        CsvSink(tmp_path / "no" / "such" / "dir.csv")


def test_lsl_outlet_streams_labelled_avd_speech_and_classes_stamped_with_capture_time():
    pylsl = pytest.importorskip("pylsl")
    with LslSink("emolive-test", source_id="emolive-test-sink", class_names=("happy", "sad")) as sink:
        streams = pylsl.resolve_byprop("source_id", "emolive-test-sink", timeout=5)
        assert len(streams) == 1 and streams[0].type() == "Emotion" and streams[0].nominal_srate() == 0
        inlet = pylsl.StreamInlet(streams[0])
        channel = inlet.info(timeout=5).desc().child("channels").child("channel")
        labels = []
        while not channel.empty():
            labels.append(channel.child_value("label"))
            channel = channel.next_sibling()
        assert labels == ["activation", "valence", "dominance", "speech", "p_happy", "p_sad"]
        inlet.open_stream(timeout=5)
        payload = estimate(1, wall_end=time.time() - 2.0)  # captured two seconds ago
        sink.emit(payload)
        sample, stamp = inlet.pull_sample(timeout=5)
        lag = pylsl.local_clock() - stamp
        inlet.close_stream()
    assert sample == pytest.approx([4.5, 3.5, 4.5, 1.0, 0.1, 0.1])  # float32 channels: 0.1 to ~1e-8
    # the stamp says "2 s ago" (lower bound: exact clock arithmetic); the rest is emit -> pull time,
    # milliseconds, with room for a loaded machine
    assert 1.9 < lag < 4.0


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 kB tmpfs: a real file system that fills up (mounting needs root, as in CI and here)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root?); the /dev/full tests still cover the error path")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_csv_on_a_full_disk_is_one_error_and_the_file_holds_whole_rows_only(tiny_disk):
    path = tiny_disk / "out.csv"
    sink = CsvSink(path)
    written = 0
    with pytest.raises(SinkError, match="No space left on device") as excinfo:
        for seq in range(10_000):  # ~250 bytes a row: 64 kB is full after a few hundred
            sink.emit(estimate(seq, classes={"neutral": 0.5, "a" * 100: 0.5}))
            written += 1
    sink.close()
    assert "\n" not in str(excinfo.value) and written > 10
    text = path.read_text()
    assert text.endswith("\n")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(row["seq"]) for row in rows] == list(range(written))  # every row that was accepted, whole


@pytest.mark.parametrize("make_sink", [JsonLinesSink, TableSink], ids=["json", "table"])
def test_terminal_sinks_on_dev_full_raise_one_line_sink_errors(make_sink):
    with open("/dev/full", "w") as full:
        sink = make_sink(full)
        with pytest.raises(SinkError, match="cannot write the .*: No space left on device") as excinfo:
            sink.emit(estimate())
    assert "\n" not in str(excinfo.value)


def test_csv_on_dev_full_raises_a_sink_error():
    with CsvSink("/dev/full") as sink, pytest.raises(SinkError, match="CSV to /dev/full: No space left"):
        sink.emit(estimate())


def test_a_file_that_fails_mid_line_is_truncated_back_to_its_last_whole_line(tmp_path, monkeypatch):
    """A disk that accepts part of a line and then fails, as a full disk does mid-write (write(2) is
    allowed to be short): the partial line is cut off again."""
    path = tmp_path / "out.jsonl"
    with open(path, "w") as out:
        sink = JsonLinesSink(out)
        sink.emit(estimate(0))
        real_write, calls = os.write, []

        def short_then_full(fd, data):
            calls.append(len(data))
            if len(calls) == 1:
                return real_write(fd, bytes(data[:10]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "write", short_then_full)
        with pytest.raises(SinkError, match="No space left"):
            sink.emit(estimate(1))
        monkeypatch.undo()
        sink.emit(estimate(2))  # a sink that failed once leaves the file where a next writer can go on
    assert len(calls) == 2
    assert [json.loads(line)["seq"] for line in path.read_text().splitlines()] == [0, 2]


def test_table_escapes_control_characters_in_class_names():
    out = io.StringIO()
    TableSink(out).emit(estimate(classes={"\x1b[2J\x1b[Hevil\rname": 0.9, "calm": 0.1}))
    row = out.getvalue().splitlines()[1]
    assert "\x1b" not in row and "\r" not in row and "\\x1b[2J" in row


def test_publish_address_and_port_are_validated():
    with pytest.raises(SinkError, match="port 99999 .* out of range"):
        ZmqPublisher("tcp://127.0.0.1:99999")
    for garbage in ("garbage", "tcp://127.0.0.1", "tcp://127.0.0.1:port", "udp://127.0.0.1:5556"):
        with pytest.raises(SinkError, match="malformed address"):
            ZmqPublisher(garbage)


def test_ipv6_loopback_publishes():
    with ZmqPublisher("tcp://[::1]:*") as publisher:
        assert publisher.address.startswith("tcp://[::1]:")
        sub = subscriber(publisher.address, ipv6=True)
        wait_until_connected(publisher, sub)
        publisher.emit(estimate(5))
        topic, body = sub.recv_multipart()
        sub.close()
    assert topic == b"avd.test" and json.loads(body)["seq"] == 5


def test_outputs_of_windows_only_take_no_turns_so_the_runner_makes_none(tmp_path):
    """A run whose sinks all ignore turns (engine.runner) spends no model call on them: the window-only
    outputs say so, ZeroMQ, which publishes turns, does not."""
    with CsvSink(tmp_path / "out.csv") as csv_sink, JsonLinesSink(io.StringIO()) as jsonl, \
            TableSink(io.StringIO()) as table, ZmqPublisher(LOOPBACK_ANY_PORT) as publisher:
        assert not any(sink.takes_turns() for sink in (csv_sink, jsonl, table))
        assert publisher.takes_turns()


def websocket_threads() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread.name == "emolive-websocket"}


def test_websocket_close_with_a_reader_is_prompt_delivers_what_was_queued_and_ends_its_thread():
    """Each client's handler waited on its queue forever, so the server never finished closing and
    close() gave up after its 5 s join with the thread still alive: every `emolive stream --websocket`
    with a client took 5 s longer to exit, Ctrl-C and SIGTERM included."""
    from websockets.exceptions import ConnectionClosedOK
    from websockets.sync.client import connect

    from emolive.engine.sinks.websocket import CLIENT_QUEUE, WebSocketSink

    before = websocket_threads()
    sink = WebSocketSink("127.0.0.1:0")
    with connect(f"ws://{sink.address}", max_queue=None) as reader:  # buffers all it gets: a reader that keeps up
        deadline = time.monotonic() + 10
        while sink.clients < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        for seq in range(CLIENT_QUEUE - 1):  # with the status, as many as a client's queue holds, all queued
            sink.emit(estimate(seq))  # just before close: none is dropped however slowly the sender runs
        sink.status(status_payload(stream="test", dropped_blocks=0, skipped_windows=0, lag_s=0.0, wall=0.0))
        started = time.monotonic()
        sink.close()
        took = time.monotonic() - started
        received = []
        with pytest.raises(ConnectionClosedOK) as closed:
            while True:
                received.append(json.loads(reader.recv(timeout=10)))
    # the linger (0.25 s) plus the closing handshake (0.25 s at most) on loopback: 2.5 s is far above that
    # on a loaded machine and still half the 5 s join timeout every close took before
    assert took < 2.5 and websocket_threads() == before
    assert closed.value.rcvd.code == 1001  # going away: the server closed it
    assert [m["message"]["seq"] for m in received[:-1]] == list(range(CLIENT_QUEUE - 1))
    assert received[-1]["topic"] == "status.test" and sink.dropped == 0


def test_websocket_bind_errors_advise_another_port_only_when_the_port_is_taken():
    """"(another emolive stream?); choose another port" followed every bind error, a host that does not
    resolve and an address not on this machine included, where another port fixes nothing."""
    import socket

    from emolive.engine.sinks.websocket import WebSocketSink

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(SinkError) as in_use:
            WebSocketSink(f"127.0.0.1:{taken.getsockname()[1]}")
    assert "address already in use" in str(in_use.value) and str(in_use.value).endswith("choose another port")
    for address, reason in (("nosuchhost.invalid:8000", "not known"), ("192.0.2.1:8000", "cannot assign")):
        with pytest.raises(SinkError) as failed:  # 192.0.2.1: TEST-NET-1, on no machine's interface
            WebSocketSink(address, allow_remote=True)
        message = str(failed.value)
        assert reason in message.lower() and "another port" not in message and "\n" not in message, message


def test_websocket_pages_of_other_sites_are_refused_and_programs_and_local_pages_served():
    """Browsers let any web page open a WebSocket to 127.0.0.1: a page of any site could read the
    estimates of the user's voice. A page's Origin must be this machine's or one given."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    from emolive.engine.sinks.websocket import WebSocketSink

    with WebSocketSink("127.0.0.1:0", origins=("https://Dashboard.Example",)) as sink:  # browsers send lower case
        with connect(f"ws://{sink.address}", origin="https://dashboard.example"):
            pass
    with WebSocketSink("127.0.0.1:0", origins=("https://dashboard.example",)) as sink:
        url = f"ws://{sink.address}"
        for origin in (None, "http://localhost:8000", "http://127.0.0.1", "https://[::1]:8443",
                       "https://dashboard.example"):
            with connect(url, origin=origin):
                pass
        for origin in ("https://evil.example", "http://localhost.evil.example", "null", "https://dashboard.example:1"):
            with pytest.raises(InvalidStatus, match="HTTP 403"):
                connect(url, origin=origin)


def test_a_connection_that_never_completes_its_handshake_does_not_hold_the_close():
    """An idle TCP connection (a port scan, a browser's preconnect) held every exit: the server waited
    for its handshake (10 s) past close()'s own bound, the run ending 5 s late with the server's thread
    still running. Now it is cut once the clients' linger is over."""
    from emolive.engine.sinks.websocket import WebSocketSink

    sink = WebSocketSink("127.0.0.1:0")
    host, port = sink.address.rsplit(":", 1)
    with socket.create_connection((host, int(port))) as idle:
        time.sleep(0.2)  # accepted, its handshake awaited
        sink.close()
        assert not sink._thread.is_alive()
        idle.settimeout(1.0)
        try:
            assert idle.recv(1) == b""  # the server closed it
        except ConnectionResetError:
            pass


def test_a_server_out_of_descriptors_says_so_in_one_line_not_a_traceback_per_refused_accept(caplog):
    """Idle connections filling the process's descriptors made asyncio log a traceback for every refused
    accept, ~1,400 a second (77 MB of stderr in 20 s); while a WebSocket output runs it is one line
    every 10 s. The control: other asyncio records pass as they are."""
    from emolive.engine.sinks.websocket import WebSocketSink

    def refused() -> None:
        try:
            raise OSError(24, "Too many open files")
        except OSError:
            logging.getLogger("asyncio").error("socket.accept() out of system resource\nsocket: <fd=7>",
                                               exc_info=True)

    with caplog.at_level(logging.WARNING), WebSocketSink("127.0.0.1:0"):
        for _ in range(100):
            refused()
        logging.getLogger("asyncio").error("another asyncio error")
    lines = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert lines == ["WebSocket: cannot accept a connection ([Errno 24] Too many open files); new clients wait until "
                     "descriptors are free", "another asyncio error"]
    assert all(r.exc_info is None for r in caplog.records if r.name == "asyncio" and "accept" in r.getMessage())


def test_a_websocket_client_that_talks_is_still_heard():
    """What a client sent was never read: after 16 messages the library stopped reading, the answers
    to its keep-alive pings went unread, and the client was cut off 40 s later. Its own ping shows it
    at once: unanswered while the server reads nothing."""
    from websockets.sync.client import connect

    from emolive.engine.sinks.websocket import WebSocketSink

    with WebSocketSink("127.0.0.1:0") as sink, connect(f"ws://{sink.address}") as client:
        for i in range(50):
            client.send(f"hello {i}")
        assert client.ping().wait(timeout=10)
        deadline = time.monotonic() + 10
        while sink.clients < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        sink.emit(estimate(0))
        assert json.loads(client.recv(timeout=10))["message"]["seq"] == 0


def test_an_ipc_path_is_never_destroyed_nor_taken_from_a_running_stream(tmp_path):
    """libzmq unlinks whatever is at an ipc:// path before it binds: a file there (the audio being
    streamed, once) became a socket, and a second stream on a path in use took it from the first.
    inproc:// reaches only the process itself: a stream published to no one and `listen` waited."""
    precious = tmp_path / "take.flac"
    precious.write_bytes(b"fLaC audio")
    with pytest.raises(SinkError, match="exists and is not a socket"):
        ZmqPublisher(f"ipc://{precious}")
    assert precious.read_bytes() == b"fLaC audio"
    endpoint = f"ipc://{tmp_path / 'live.ipc'}"
    with ZmqPublisher(endpoint):
        with pytest.raises(SinkError, match="address already in use"):
            ZmqPublisher(endpoint)
        assert (tmp_path / "live.ipc").is_socket()
    assert not (tmp_path / "live.ipc").exists()  # closed, its socket file goes: each run left one behind
    first = ZmqPublisher(endpoint)
    (tmp_path / "live.ipc").unlink()  # removed under it (a user's rm), and the path bound by a later stream
    with ZmqPublisher(endpoint):
        first.close()  # the path's socket is no longer the one it bound: the later stream's stays
        assert (tmp_path / "live.ipc").is_socket()
    stale = tmp_path / "stale.ipc"
    with socket.socket(socket.AF_UNIX) as left:  # a killed stream's socket: nothing listens on it
        left.bind(str(stale))
    with ZmqPublisher(f"ipc://{stale}"):
        pass
    for address in ("inproc://emolive", f"inproc://{tmp_path}"):
        with pytest.raises(SinkError, match="malformed address"):
            ZmqPublisher(address)


def test_lsl_stamps_never_go_back_when_windows_share_their_capture_time():
    """A file read fast gives windows the same wall_end; reading two clocks anew for each stamp made
    about a quarter of them step back by microseconds."""
    pylsl = pytest.importorskip("pylsl")
    with LslSink("emolive-test", source_id="emolive-test-order") as sink:
        inlet = pylsl.StreamInlet(pylsl.resolve_byprop("source_id", "emolive-test-order", timeout=5)[0])
        inlet.open_stream(timeout=5)
        wall_end = time.time()
        for seq in range(300):
            sink.emit(estimate(seq, wall_end=wall_end))
        stamps = []
        while len(stamps) < 300:
            _, stamp = inlet.pull_sample(timeout=5)
            stamps.append(stamp)
    assert all(later >= earlier for earlier, later in zip(stamps, stamps[1:]))
