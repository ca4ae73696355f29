"""A real audio input device on a machine without a sound card: a PulseAudio null sink.

Whatever `paplay` plays into the sink comes out of its monitor source at real time, and
PortAudio reaches that source through ALSA's pulse plugin as the input device `pulse`. The
daemon is private (its runtime, state and ALSA config live under one temporary folder, handed
to clients through the environment), so it never touches the user's home or a running server.
The device tests and benchmarks/microphone.py both use it.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from pathlib import Path

import soundfile as sf

SINK = "vmic"
DEVICE = "pulse"  # the ALSA pcm through which PortAudio records PulseAudio's default source
PACKAGES = "pulseaudio pulseaudio-utils libasound2-plugins"
READY_TIMEOUT_S = 10.0
ASOUNDRC = "pcm.!default { type pulse }\nctl.!default { type pulse }\n"


def missing_reason() -> str | None:
    """Why no virtual microphone can exist here (None when it can)."""
    tools = [tool for tool in ("pulseaudio", "pactl", "paplay") if shutil.which(tool) is None]
    if not glob.glob("/usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so"):
        tools.append("ALSA's pulse plugin")
    if tools:
        return f"{', '.join(tools)} not installed: `bash scripts/setup-apt.sh` installs {PACKAGES}"
    return None


class VirtualMicrophone:
    """A private PulseAudio daemon with one null sink whose monitor is the default source.

    `env` is the environment a client (emolive, paplay) needs to reach it. `kill()` takes the
    daemon away as an unplugged device would disappear; `start()` brings it back.
    """

    def __init__(self, root: Path, *, rate: int = 48000, channels: int = 2) -> None:
        self.root, self.rate, self.channels = root, rate, channels
        xdg = root / "xdg"
        (xdg / "alsa").mkdir(parents=True, exist_ok=True)
        (xdg / "alsa" / "asoundrc").write_text(ASOUNDRC)
        self.env = {**os.environ, "PULSE_RUNTIME_PATH": str(root / "run"), "PULSE_STATE_PATH": str(root / "state"),
                    "XDG_CONFIG_HOME": str(xdg)}
        self._daemon: subprocess.Popen | None = None

    def start(self) -> None:
        """Start the daemon (as root it warns, and works) and wait until it answers."""
        log = open(self.root / "pulseaudio.log", "ab")
        self._daemon = subprocess.Popen(
            ["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "-n", "-L", "module-native-protocol-unix",
             "-L", f"module-null-sink sink_name={SINK} rate={self.rate} channels={self.channels}"],
            env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while self._pactl("info").returncode != 0:
            if self._daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PulseAudio did not start; see {self.root / 'pulseaudio.log'}")
            time.sleep(0.05)
        self._pactl("set-default-source", f"{SINK}.monitor").check_returncode()

    def kill(self) -> None:
        """SIGKILL the daemon: its clients' streams break at once, as when a device is unplugged."""
        if self._daemon is not None and self._daemon.poll() is None:
            self._daemon.kill()
            self._daemon.wait()

    def unplug(self, unplugged: bool) -> None:
        """Remove the sink from the running daemon (or add it back): a USB microphone unplugged from a
        running sound server. ALSA's `pulse` device stays listed; opening it fails until it is back."""
        if unplugged:
            self._pactl("unload-module", "module-null-sink").check_returncode()
        else:
            self._pactl("load-module", "module-null-sink", f"sink_name={SINK}", f"rate={self.rate}",
                        f"channels={self.channels}").check_returncode()
            self._pactl("set-default-source", f"{SINK}.monitor").check_returncode()

    def suspend(self, suspended: bool) -> None:
        """Suspend the sink (or resume it): the device stays listed and opens, but no audio flows."""
        self._pactl("suspend-sink", SINK, "1" if suspended else "0").check_returncode()

    def stop(self) -> None:
        if self._daemon is not None and self._daemon.poll() is None:
            self._daemon.terminate()
            try:
                self._daemon.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()

    def play(self, path: Path) -> tuple[float, float]:
        """Play a sound file into the sink at real time; the wall times just before and after.

        A 500 ms playback buffer, so that a busy machine does not make paplay underrun: a gap it
        fills with silence would shift the rest of the file on the stream's clock."""
        started = time.time()
        subprocess.run(["paplay", "-d", SINK, "--latency-msec=500", str(path)], env=self.env, check=True,
                       timeout=sf.info(path).duration + 60)
        return started, time.time()

    def _pactl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["pactl", *args], env=self.env, capture_output=True, timeout=10)
