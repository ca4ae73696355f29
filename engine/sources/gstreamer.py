"""Any GStreamer source, through a `gst-launch-1.0` subprocess that ends in raw 16 kHz mono float32.

A subprocess instead of PyGObject keeps the dependency to one apt package and lets users paste
the same description they would try on the command line (`pulsesrc`, `uridecodebin uri=…`).

A pipeline is read until it ends, however long it is silent, as stdin is: a live source may rightly
wait for minutes (`udpsrc` for its sender, `tcpserversrc` for a client, an RTP stream that pauses),
and the elements that must not wait bound it themselves (souphttpsrc's and rtspsrc's timeouts end
the pipeline with an error). A fixed 10 s stall limit ended such live sources and guarded against
nothing that Ctrl-C, SIGTERM or the GUI's stop do not end: they stop the run, and `close()`
terminates gst-launch. `stall_timeout` sets a limit for a caller that wants one. What stays bounded
is the wait for gst-launch to exit once it has closed its output.

The audio comes on a pipe of its own (fdsink on the descriptor passed down); stdout carries
gst-launch's `-v` lines, read for the caps the pipeline negotiated where its audio enters
emolive's tail (`input_rate`): an 8 kHz RTP call is warned about as an 8 kHz file is
(engine.narrowband), though the tail resamples it to 16 kHz.
"""
from __future__ import annotations

import re
import secrets
import shlex
import shutil
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from typing import IO

import numpy as np

from emolive.engine.sources.base import DEFAULT_BLOCK_SIZE, SAMPLE_RATE, AudioSource, AudioSourceError
from emolive.engine.sources.pcm import read_pcm

GST_LAUNCH = "gst-launch-1.0"
GST_PACKAGES = "gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good"
ENTRY = "emolive_entry_"  # the tail's first element, a random suffix apart from any name of the user's (a
# pipeline's own `emolive_entry` could not be linked): the caps on its sink pad are the pipeline's own audio
EXIT_TIMEOUT_S = 10.0  # after closing its output (the stream's end), gst-launch exits within a second
# How long the first block waits for the -v line naming the rate: gst-launch prints it from its bus,
# after the caps went downstream, so it may come a moment after the first audio (milliseconds)
RATE_WAIT_S = 1.0


class GStreamerSource(AudioSource):
    """Run `gst-launch-1.0 -q <description> ! … ! fdsink fd=1` and stream its stdout."""

    def __init__(self, description: str, *, block_size: int = DEFAULT_BLOCK_SIZE,
                 stall_timeout: float | None = None) -> None:
        """`stall_timeout`: seconds without audio that end the run with an error; None: wait as the pipeline does."""
        super().__init__(f"GStreamer pipeline {description!r}")
        launcher = shutil.which(GST_LAUNCH)
        if launcher is None:
            raise AudioSourceError(f"{GST_LAUNCH} not found; install it with `apt install {GST_PACKAGES}`")
        try:
            words = shlex.split(description)
        except ValueError as exc:  # shlex's only error: an unbalanced quote or a trailing backslash
            raise AudioSourceError(f"{self.description} is malformed: {str(exc).lower()}") from None
        self._entry = f"{ENTRY}{secrets.token_hex(4)}"
        self._entry_caps = re.compile(rf":{self._entry}\.GstPad:sink: caps = .*?\brate=\(int\)(\d+)")
        self._stderr = tempfile.TemporaryFile()  # a file, not a pipe: a chatty pipeline can never fill it and stall
        audio, audio_out = os.pipe()
        try:
            self._process = subprocess.Popen(
                [launcher, "-v", *words, *tail(audio_out, self._entry)], stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=self._stderr, bufsize=0, pass_fds=(audio_out,))
        except BaseException:
            os.close(audio)
            raise
        finally:
            os.close(audio_out)
        self._audio = os.fdopen(audio, "rb", buffering=0)
        self._rate_known = threading.Event()
        assert self._process.stdout is not None
        self._messages = threading.Thread(target=self._read_messages, args=(self._process.stdout,),
                                          name="emolive-gst-messages", daemon=True)
        self._messages.start()
        self.block_size = block_size
        self.stall_timeout = stall_timeout

    def _read_messages(self, stdout: IO[bytes]) -> None:
        """Thread: gst-launch's -v lines, read to their end (a pipe nobody reads would stall it); the first
        caps at the tail's entry give `input_rate`."""
        for line in stdout:
            if not self._rate_known.is_set() and (match := self._entry_caps.search(line.decode(errors="replace"))):
                self.input_rate = float(match.group(1))
                self._rate_known.set()
        self._rate_known.set()

    def _read_blocks(self) -> Iterator[np.ndarray]:
        heard = False
        for block in read_pcm(self._audio.fileno(), "f32le", self.block_size, self.stall_timeout, self.description):
            if not heard:
                self._rate_known.wait(RATE_WAIT_S)
            heard = heard or len(block) > 0
            yield block
        try:
            code = self._process.wait(timeout=EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise AudioSourceError(f"{self.description} closed its output but did not exit") from None
        if code < 0:  # "failed (exit -9): no error message" told nothing
            raise AudioSourceError(f"{self.description} was killed by {signal_name(-code)}")
        if code != 0:
            self._stderr.seek(0)
            reason = gst_error(self._stderr.read().decode(errors="replace"))
            raise AudioSourceError(f"{self.description} failed (exit {code}): {reason}")
        if not heard:  # as empty stdin and an empty file are errors, not a recording of nothing
            raise AudioSourceError(f"{self.description} ended before any audio; check that its source delivers "
                                   f"some (`{GST_LAUNCH} -v` with the same description shows what it does)")

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._audio.close()
        self._messages.join(timeout=EXIT_TIMEOUT_S)  # gst-launch has exited: its stdout ends
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._stderr.close()


def files_read(description: str) -> list[str]:
    """The local files a pipeline description names (`location=` of filesrc and its kin, `uri=file://`),
    for an output's check that it is not one of them: `--csv` onto a pipeline's own file emptied it."""
    from urllib.parse import unquote, urlsplit

    try:
        words = shlex.split(description)
    except ValueError:  # the source itself says what is malformed
        return []
    files = []
    for word in words:
        key, _, value = word.partition("=")
        if key == "location" and value:
            files.append(value)
        elif key == "uri" and value.startswith("file:"):
            files.append(unquote(urlsplit(value).path))
    return files


def tail(fd: int, entry: str) -> list[str]:
    """What follows the user's description: to 16 kHz mono float32 on descriptor `fd` (passed to the child
    under the same number), through an element named `entry` whose sink caps say what the pipeline gave."""
    return ["!", "audioconvert", f"name={entry}", "!", "audioresample", "!",
            f"audio/x-raw,format=F32LE,rate={SAMPLE_RATE},channels=1", "!", "fdsink", f"fd={fd}"]


def gst_error(stderr: str) -> str:
    """The first error gst-launch reported, as one line: element name, message and detail."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.startswith(("ERROR:", "WARNING: erroneous pipeline")):
            message = re.sub(r"from element \S*?([^/:]+):\s", r"\1: ", line.split(":", 1)[1].strip())
            # gst-launch follows an error with "Additional debug info:", a source location ending in
            # ':' when a detail (such as the missing file's name) is on the next line.
            rest = lines[i + 1:i + 4]
            if len(rest) == 3 and rest[0] == "Additional debug info:" and rest[1].endswith(":") \
                    and not rest[2].startswith("ERROR"):
                message += f" ({rest[2]})"
            return message
    return lines[-1] if lines else "no error message"


def signal_name(number: int) -> str:
    """SIGKILL for 9; "signal N" for a number this system does not name."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
