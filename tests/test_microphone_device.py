"""`emolive stream` on a real audio device: PortAudio records a PulseAudio null sink that paplay plays into.

Nothing here is injected: the audio goes paplay -> PulseAudio -> ALSA pulse plugin -> PortAudio ->
MicrophoneSource, at real time, and emolive runs as the user runs it (a subprocess). Each test plays
a few seconds, so the module takes under a minute.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import corpus_files, interruptible, read_audio
from tests.virtual_mic import DEVICE, VirtualMicrophone, missing_reason

EMOLIVE = str(Path(sys.executable).parent / "emolive")
WINDOW_S, HOP_S = 1.0, 0.2  # short windows: a few seconds of audio give enough estimates to compare
SILENCE_S = 3.0
START_TIMEOUT_S = 60.0  # model load and warm-up on a busy 2-core machine, then PulseAudio's ~2 s first buffer

pytestmark = pytest.mark.skipif(missing_reason() is not None, reason=missing_reason() or "")


@pytest.fixture(scope="module")
def mic(tmp_path_factory) -> VirtualMicrophone:
    device = VirtualMicrophone(tmp_path_factory.mktemp("pulse"))
    device.start()
    yield device
    device.stop()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, list[tuple[float, float]]]:
    """Speech, SILENCE_S of digital silence, speech (two 2 s EmoDB clips), and the speech spans in s.

    At half their recorded level: they peak at full scale, and resampling's overshoot would clip in
    PulseAudio's 16-bit path, which is then a different input (it cost ~0.3 of activation here)."""
    angry, neutral = (read_audio(corpus_files("emodb", every=40, limit=8)[i]) for i in (0, 3))
    gap = np.zeros(int(SILENCE_S * 16000), np.float32)
    path = tmp_path_factory.mktemp("clip") / "speech-silence-speech.wav"
    sf.write(path, 0.5 * np.concatenate([angry, gap, neutral]), 16000, subtype="PCM_16")
    a, b = len(angry) / 16000, (len(angry) + len(gap)) / 16000
    return path, [(0.0, a), (b, b + len(neutral) / 16000)]


class LiveStream:
    """`emolive stream --device pulse --json` as a subprocess; estimates and stderr lines collected as they come."""

    def __init__(self, mic: VirtualMicrophone, *args: str) -> None:
        self.process = interruptible(
            [EMOLIVE, "stream", "--device", DEVICE, "--json", "--no-publish", "--window", str(WINDOW_S),
             "--hop", str(HOP_S), *args], env=mic.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.estimates: list[dict] = []
        self.stderr: list[str] = []
        pipes = ((self.process.stdout, self.estimates), (self.process.stderr, self.stderr))
        self._collectors = [threading.Thread(target=self._collect, args=(pipe, into), daemon=True)
                            for pipe, into in pipes]
        for collector in self._collectors:
            collector.start()

    def _collect(self, pipe, into: list) -> None:
        for line in pipe:
            into.append(json.loads(line) if into is self.estimates else line.rstrip("\n"))

    def wait_until(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                pytest.fail(f"{what} did not happen; stderr: {self.stderr}")
            time.sleep(0.05)

    def wait_for_estimates(self, count: int, timeout: float = START_TIMEOUT_S) -> None:
        start = len(self.estimates)
        self.wait_until(lambda: len(self.estimates) >= start + count, timeout, f"{count} more estimates")

    def finish(self, timeout: float = 15.0) -> int:
        """Wait for the process to end by itself; fail (after killing it) if it hangs."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"emolive did not exit within {timeout:g} s; stderr: {self.stderr}")
        for collector in self._collectors:  # to the pipes' end: a fixed pause had missed the summary on a busy CI
            collector.join(timeout)
        return code

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.finish()


def offline(path: Path) -> list[dict]:
    """The file's estimates on a one-frame hop, so every live window has one within 10 ms of it."""
    done = subprocess.run([EMOLIVE, "stream", "--source", str(path), "--json", "--no-publish",
                           "--window", str(WINDOW_S), "--hop", "0.02"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def played_at(estimate: dict, t0: float) -> tuple[float, float]:
    """The window's span in the played file's time, given the stream time t0 at which the file started.

    Stream time counts samples, so it is exact; wall times are block arrival stamps, which jitter
    by up to a PortAudio buffer (~0.1 s here) and serve only for the first guess of t0."""
    return estimate["start"] - t0, estimate["end"] - t0


def test_estimates_from_a_played_file_match_its_duration_speech_and_offline_run(mic, clip):
    path, speech_spans = clip
    duration = sf.info(path).duration
    stream = LiveStream(mic)
    stream.wait_for_estimates(2)  # capture is running: what is played now is heard from its start
    before = len(stream.estimates)
    started, ended = mic.play(path)
    stream.wait_for_estimates(int(2 * WINDOW_S / HOP_S))  # the windows that still hold the file's end
    assert stream.interrupt() == 130  # stopped by Ctrl-C, after its final status and summary
    assert "estimates from" in stream.stderr[-1]  # Ctrl-C: the summary is the last line
    assert stream.stderr[0].startswith(f"emolive: reading microphone '{DEVICE}' (channel 1 of 32, 44100 Hz")
    live = stream.estimates[before:]

    # Where the file starts on the live stream's clock: the shift at which live and offline estimates
    # agree best, near `started` on that clock. paplay starts playing a little after `started`, and a
    # block is stamped when it reaches emolive, after PortAudio's buffering: within a second either way.
    reference = offline(path)
    ref_end = np.array([e["end"] for e in reference])
    ref_act = np.array([e["activation"] for e in reference])

    def paired(t0: float) -> tuple[np.ndarray, np.ndarray]:
        ends = np.array([played_at(e, t0)[1] for e in live])
        inside = (ends >= WINDOW_S) & (ends <= duration)
        nearest = np.abs(ends[inside, None] - ref_end[None, :]).argmin(axis=1)
        return np.array([e["activation"] for e in live])[inside], ref_act[nearest]

    guess = started - float(np.median([e["wall_end"] - e["end"] for e in live]))
    shifts = guess + np.arange(-1.0, 1.0, 0.01)
    t0 = min(shifts, key=lambda s: float(np.mean(np.abs(np.subtract(*paired(s))))))
    assert abs(t0 - guess) < 0.95, "the best alignment is at the edge of the search: the audio was not found"

    # Count: one estimate per hop while the file played, give or take one at each end (the live
    # hop grid starts anywhere relative to the file).
    during = [e for e in live if 0.0 < played_at(e, t0)[1] <= duration]
    assert abs(len(during) - duration / HOP_S) <= 2, (len(during), duration)
    assert ended - started >= duration  # paplay played it at real time

    # Speech flags: windows wholly inside speech are speech, windows wholly inside the played
    # silence are not (digital zeros have no voicing at all).
    def within(span: tuple[float, float], estimate: dict) -> bool:
        start, end = played_at(estimate, t0)
        return span[0] + 0.1 <= start and end <= span[1] - 0.1

    in_speech = [e["speech"] for e in live for span in speech_spans if within(span, e)]
    in_silence = [e["speech"] for e in live if within((speech_spans[0][1], speech_spans[1][0]), e)]
    assert len(in_speech) >= 6 and all(in_speech), in_speech
    assert len(in_silence) >= 6 and not any(in_silence), in_silence

    # Same audio, same model: the live activation follows the offline one. Measured over 11 runs here:
    # r = 0.94-0.998, mean |difference| 0.08-0.27 on the 1-7 scale, the largest in the first clip's
    # windows; later, with both cores busy, 0.13-0.31 over 6 runs, and 0.355 once in a full-suite run
    # (its first clip's windows ~1.0 lower live). What differs is the path, not the arithmetic:
    # PulseAudio's 16-bit samples and its own resampling (16 -> 48 -> 44.1 kHz, then soxr to 16), and
    # playback that paplay may start with a short underrun on a busy machine, shifting a clip by tens
    # of ms. Those do not depend on the CPU or BLAS, so the bounds (about 1.3x the worst run) hold on
    # any build.
    got, want = paired(t0)
    assert np.corrcoef(got, want)[0, 1] > 0.85
    assert np.mean(np.abs(got - want)) < 0.45


def test_only_the_chosen_channel_is_heard(mic, tmp_path):
    speech = 0.5 * read_audio(corpus_files("emodb", every=40, limit=1)[0])
    path = tmp_path / "left-only.wav"  # speech on the left channel, digital silence on the right
    sf.write(path, np.stack([speech, np.zeros_like(speech)], axis=1), 16000, subtype="PCM_16")
    # Channel 1 alone is PulseAudio's mono mix of the sink (it remixes to the channel count asked
    # for), so it hears the speech; channel 2 opens the first two, left and right, and keeps the right.
    first, second = LiveStream(mic, "--channel", "1"), LiveStream(mic, "--channel", "2")
    for stream in (first, second):
        stream.wait_for_estimates(2)
    marks = len(first.estimates), len(second.estimates)
    mic.play(path)
    for stream in (first, second):
        stream.wait_for_estimates(int(WINDOW_S / HOP_S) + 2)
        assert stream.interrupt() == 130
    assert "channel 2 of 32" in second.stderr[0]
    assert sum(e["speech"] for e in first.estimates[marks[0]:]) >= 4
    assert not any(e["speech"] for e in second.estimates[marks[1]:])
    assert max(e["voiced_ratio"] for e in second.estimates[marks[1]:]) == 0.0


def test_a_sound_server_that_dies_ends_the_run_with_its_final_status_and_a_one_line_error(mic):
    stream = LiveStream(mic)
    stream.wait_for_estimates(2)
    mic.kill()  # as an unplugged USB microphone: the stream breaks under PortAudio
    try:
        code = stream.finish(timeout=20)  # nothing hangs: at worst the 5 s stall detector ends it
    finally:
        mic.start()
    assert code == 1
    summary, error = stream.stderr[-2:]  # PortAudio's own complaints may come before these two
    assert summary.startswith("emolive: ") and "estimates from" in summary
    assert error.startswith(f"emolive: error: microphone '{DEVICE}'") and "stopped" in error
    assert "--reconnect" in error


def test_what_is_played_while_the_run_waits_for_a_subscriber_is_not_its_start(mic, clip):
    """The device opens before --wait-subscriber's wait: its ring kept the wait's first 4 s, and the run
    began with them (speech played and gone was "speech", stamped seconds late), the writes the full ring
    refused counted as dropped blocks."""
    from tests.test_cli import free_port

    path, _ = clip
    stream = LiveStream(mic, "--websocket", f"127.0.0.1:{free_port()}", "--wait-subscriber", "12")
    stream.wait_until(lambda: any("reading microphone" in line for line in stream.stderr), START_TIMEOUT_S,
                      "the device's opening")
    mic.play(path)  # speech, silence, speech: over within the wait
    stream.wait_until(lambda: any("no WebSocket subscriber within" in line for line in stream.stderr), 30,
                      "the wait's end")
    stream.wait_for_estimates(6, timeout=20)
    assert stream.interrupt() == 130
    assert not any(e["speech"] for e in stream.estimates) and "0 audio blocks dropped" in stream.stderr[-1], \
        stream.stderr


def test_a_run_stopped_and_continued_is_no_device_lost(mic):
    """Ctrl-Z and fg (SIGSTOP, SIGCONT) froze PortAudio's callback with the reader, which on waking found
    the ring empty 6 s after the last audio: "delivered no audio for 5 s", exit 1 (with --reconnect, an
    outage that never was, and the audio PulseAudio had kept thrown away)."""
    stream = LiveStream(mic, "--reconnect")
    stream.wait_for_estimates(2)
    stream.process.send_signal(signal.SIGSTOP)
    time.sleep(6.5)
    stream.process.send_signal(signal.SIGCONT)
    stream.wait_for_estimates(5, timeout=20)
    assert stream.interrupt() == 130
    assert not any("lost" in line or "no audio" in line for line in stream.stderr), stream.stderr


def test_with_reconnect_the_run_waits_for_the_device_and_goes_on(mic):
    stream = LiveStream(mic, "--reconnect")
    stream.wait_for_estimates(2)
    mic.kill()
    try:
        stream.wait_until(lambda: any("was lost" in line for line in stream.stderr), 20, "the lost-device message")
        time.sleep(1.0)  # the device stays away a while
    finally:
        mic.start()
    stream.wait_until(lambda: any("is back after" in line for line in stream.stderr), 20, "the device-back message")
    stream.wait_for_estimates(3, timeout=20)  # estimates go on from the new stream
    assert stream.interrupt() == 130
    back = next(line for line in stream.stderr if "is back after" in line)
    assert back.startswith(f"emolive: microphone '{DEVICE}'") and "1 gap" in back
    assert 1.0 <= float(back.split("is back after ")[1].split(" s")[0]) < 20
    assert "device lost and back 1 time," in stream.stderr[-1]


def test_a_device_unplugged_from_a_running_sound_server_is_waited_for_without_a_flood(mic):
    """The sound server stays, its microphone goes: ALSA's `pulse` device stays listed and each 0.5 s poll
    failed to open it, ALSA and PortAudio printing their complaints each time (230 lines for a 9 s
    outage). While it is away, nothing but emolive's own lines."""
    stream = LiveStream(mic, "--reconnect")
    stream.wait_for_estimates(2)
    mic.unplug(True)
    try:
        stream.wait_until(lambda: any("was lost" in line for line in stream.stderr), 20, "the lost-device message")
        time.sleep(3.0)  # six polls
    finally:
        mic.unplug(False)
    stream.wait_until(lambda: any("is back after" in line for line in stream.stderr), 20, "the device-back message")
    assert stream.interrupt() == 130
    lost = next(i for i, line in enumerate(stream.stderr) if "was lost" in line)
    came = next(i for i, line in enumerate(stream.stderr) if "is back after" in line)
    assert all(line.startswith("emolive: ") for line in stream.stderr[lost:came + 1]), stream.stderr[lost:came + 1]


def test_ctrl_c_while_waiting_for_a_lost_device_ends_cleanly(mic):
    """The reader thread, still waiting for the device, held the resampler as the interpreter exited:
    soxr's bindings printed "nanobind: leaked 1 instances!" and a list of leaked functions after the
    summary."""
    stream = LiveStream(mic, "--reconnect")
    stream.wait_for_estimates(2)
    mic.kill()
    try:
        stream.wait_until(lambda: any("was lost" in line for line in stream.stderr), 20, "the lost-device message")
        assert stream.interrupt() == 130
    finally:
        mic.start()
    assert "estimates from" in stream.stderr[-1]
    assert not any("leaked" in line or "nanobind" in line for line in stream.stderr), stream.stderr




WINDOW_ON_THE_MIC = """
import sys
from PySide6.QtWidgets import QApplication
from emolive.engine.cli import build_parser
from emolive.gui.app import build_window
from emolive.gui.level import SILENCE_DBFS

app = QApplication([])
window = build_window(build_parser().parse_args(["gui", "--device", sys.argv[1], "--reconnect", "--window",
                                                 sys.argv[2], "--hop", sys.argv[3]]))
window.show()
window.start()

def wait(condition, seconds):
    from PySide6.QtCore import QDeadlineTimer, QEventLoop
    deadline = QDeadlineTimer(int(1000 * seconds))
    while not condition() and not deadline.hasExpired():
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
    return condition()

print("estimates", wait(lambda: window.history.total >= 2, 60), flush=True)
lost = wait(lambda: "was lost" in window.statusBar().currentMessage(), 30)
print("lost", lost, window.feed.level_dbfs == SILENCE_DBFS, window.speech.text(), flush=True)
print("back", wait(lambda: "is back after" in window.statusBar().currentMessage(), 30), flush=True)
window.close()
"""


def test_the_window_says_the_microphone_was_lost_and_shows_no_input_while_it_is_away(mic):
    """With --reconnect the window showed "running", a green speech light and the last block's level
    (-28 dBFS) for the whole of an outage; only after it did "device lost and back" appear. The window
    runs in a process of its own, which reaches the sound server through its environment as paplay does."""
    window = subprocess.Popen([sys.executable, "-c", WINDOW_ON_THE_MIC, DEVICE, str(WINDOW_S), str(HOP_S)],
                              env={**mic.env, "QT_QPA_PLATFORM": "offscreen"}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert window.stdout.readline().split() == ["estimates", "True"]
        mic.kill()
        try:
            assert window.stdout.readline().split() == ["lost", "True", "True", "no", "input"]
        finally:
            mic.start()
        assert window.stdout.readline().split() == ["back", "True"]
        assert window.wait(timeout=30) == 0
    finally:
        window.kill()


def test_a_device_that_opens_but_gives_no_audio_is_not_back_and_its_outage_is_one_gap(mic):
    """A suspended sound server: the device stayed listed and opened at once, so it was said "back",
    stalled 5 s later, and one 25 s outage read as four gaps of 5.6 s. It is back when audio flows."""
    stream = LiveStream(mic, "--reconnect")
    stream.wait_for_estimates(2)
    mic.suspend(True)
    try:
        stream.wait_until(lambda: any("was lost" in line for line in stream.stderr), 20, "the lost-device message")
        time.sleep(8.0)  # past the 5 s stall detector again: the reopened stream delivers nothing either
        assert not any("is back" in line for line in stream.stderr), stream.stderr
    finally:
        mic.suspend(False)
    stream.wait_until(lambda: any("is back after" in line for line in stream.stderr), 30, "the device-back message")
    stream.wait_for_estimates(len(stream.estimates) + 2, timeout=20)
    assert stream.interrupt() == 130
    assert sum("was lost" in line for line in stream.stderr) == 1
    assert "device lost and back 1 time," in stream.stderr[-1]
