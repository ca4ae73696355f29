"""Command-line conventions: --version, a description and defaults in every --help, -v/-q through logging,
a --help that loads no numpy or torch, and raw PCM on stdin at the rate and channel count given."""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soxr

import emolive
from emolive.engine.cli import build_parser as emolive_parser
from emolive.engine.console import DefaultsFormatter, terminate_as_interrupt
from emolive.trainer.cli import build_parser as trainer_parser
from tests.conftest import corpus_files, read_audio

BIN = Path(sys.executable).parent


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("program", ["emolive", "trainer"])
def test_version(program):
    out = subprocess.run([str(BIN / program), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"{program} {emolive.__version__}"


@pytest.mark.parametrize("build", [emolive_parser, trainer_parser])
def test_every_subcommand_has_a_description_and_shows_its_defaults(build):
    commands = subcommands(build())
    assert len(commands) >= 4
    for name, parser in commands.items():
        assert parser.description, f"{name} has no description"
        assert parser.formatter_class is DefaultsFormatter, name
        text = parser.format_help()
        for action in parser._actions:
            if action.help and action.default not in (None, False, [], argparse.SUPPRESS) and action.option_strings:
                assert f"{action.default}" in text, f"{name} {action.option_strings[0]} hides its default"
        # each default said once, in one form: none typed into a help text beside argparse's
        unwrapped = " ".join(text.split())
        assert "(default " not in unwrapped and "(default: None)" not in unwrapped, name


def test_score_help_shows_defaults_in_words():
    text = " ".join(subcommands(emolive_parser())["score"].format_help().split())  # unwrapped
    assert "(default: file)" in text and "(default: 1)" in text


def test_help_imports_no_numpy_torch_or_zmq():
    code = ("import sys; from emolive.engine.cli import build_parser; p = build_parser(); p.format_help(); "
            "a = next(a for a in p._actions if hasattr(a, 'choices') and isinstance(a.choices, dict)); "
            "[c.format_help() for c in a.choices.values()]; "
            "heavy = sorted(m for m in ('numpy', 'torch', 'zmq', 'soundfile', 'onnxruntime') if m in sys.modules); "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_trainer_help_lists_every_command_and_imports_nothing_heavy():
    """`trainer --help` fills no command's options, so it loads no numpy, torch or scipy; a command's
    own --help fills only that command."""
    code = ("import sys; from emolive.trainer.cli import COMMANDS, main\n"
            "try: main(['--help'])\nexcept SystemExit: pass\n"
            "print(sorted(m for m in ('numpy', 'torch', 'scipy', 'torchaudio') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert all(name in done.stdout for name in subcommands(trainer_parser()))
    text = subprocess.run([str(BIN / "trainer"), "evaluate", "--help"], capture_output=True, text=True,
                          check=True).stdout
    assert "--protocol" in text and "--ce-weight" not in text


def run_emolive(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "emolive"), *args], input=stdin, capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return read_audio(corpus_files("emodb", every=200, limit=1)[0])[:16000 * 4]


def test_quiet_leaves_only_results_and_verbose_adds_debug(clip, tmp_path):
    import soundfile as sf

    path = tmp_path / "clip.flac"
    sf.write(path, clip, 16000)
    normal = run_emolive("stream", "--source", str(path), "--no-publish", "--json")
    quiet = run_emolive("-q", "stream", "--source", str(path), "--no-publish", "--json")
    assert normal.returncode == quiet.returncode == 0
    assert b"emolive: reading file" in normal.stderr and quiet.stderr == b""
    assert quiet.stdout.count(b"\n") == normal.stdout.count(b"\n") > 0  # results are not logging
    bad = run_emolive("-q", "stream", "--source", str(tmp_path / "missing.wav"), "--no-publish")
    assert bad.returncode == 1 and bad.stderr.decode().startswith("emolive: error: ")  # errors survive -q


def test_raw_pcm_on_stdin_at_44k1_stereo_is_resampled_and_mixed(clip):
    reference = run_emolive("-q", "stream", "--source", "-", "--no-publish", "--json", "--raw-format", "s16le",
                            stdin=(np.round(clip * 32767).astype("<i2")).tobytes())
    hi = soxr.resample(clip, 16000, 44100)
    stereo = np.stack([hi, hi], axis=1)
    pcm = np.clip(np.round(stereo * 32767), -32768, 32767).astype("<i2").tobytes()
    got = run_emolive("-q", "stream", "--source", "-", "--no-publish", "--json", "--raw-format", "s16le",
                      "--rate", "44100", "--channels", "2", stdin=pcm)
    assert reference.returncode == got.returncode == 0, got.stderr
    want = [json.loads(line) for line in reference.stdout.splitlines()]
    have = [json.loads(line) for line in got.stdout.splitlines()]
    assert len(have) == len(want) > 0
    # read as 16 kHz mono, the same bytes would be 2.76x longer and give ~3x the windows; resampled
    # back by soxr (passband ripple ~0.01 dB) the model's outputs move well under 0.1 on the 1-7 scale
    assert max(abs(h[k] - w[k]) for h, w in zip(have, want) for k in ("activation", "valence")) < 0.1
    torn = run_emolive("stream", "--source", "-", "--no-publish", "--raw-format", "s16le", "--channels", "2",
                       stdin=pcm[:-2])
    assert torn.returncode == 1 and b"middle of a frame" in torn.stderr and b"2 channels" in torn.stderr
    empty = run_emolive("-q", "stream", "--source", "-", "--no-publish", "--json", stdin=b"")
    # like an empty file: an error, not a successful recording of nothing
    assert empty.returncode == 1 and empty.stdout == b"" and b"ended before any audio" in empty.stderr


def test_channel_picks_one_side_of_a_file_or_of_stdin_and_source_only_options_are_refused(clip, tmp_path):
    """A call recorded in two channels, speech on the first and silence on the second: --channel 1
    gives the speech's estimates and --channel 2 the silence's (from a file and from raw PCM on
    stdin alike); a channel the input lacks, the microphone's --device beside a file, and raw PCM's
    --rate beside a file are one-line errors, where all of them were ignored."""
    import soundfile as sf

    stereo = np.stack([clip, np.zeros_like(clip)], axis=1)
    path = tmp_path / "call.wav"
    sf.write(path, stereo, 16000, subtype="FLOAT")
    mono = tmp_path / "speaker.wav"
    sf.write(mono, clip, 16000, subtype="FLOAT")

    def estimates(*args: str, stdin: bytes | None = None) -> list[tuple[float, float]]:
        run = run_emolive("-q", "stream", "--no-publish", "--json", *args, stdin=stdin)
        assert run.returncode == 0, run.stderr
        return [(e["activation"], e["speech"]) for e in map(json.loads, run.stdout.splitlines())]

    speaker = estimates("--source", str(mono))
    assert estimates("--source", str(path), "--channel", "1") == speaker and any(s for _, s in speaker)
    assert not any(s for _, s in estimates("--source", str(path), "--channel", "2"))
    pcm = stereo.astype("<f4").tobytes()
    assert estimates("--source", "-", "--channels", "2", "--channel", "1", stdin=pcm) == speaker
    for args, error in ((["--source", str(path), "--channel", "3"], "call.wav has 2 channels: channel 3 is not one"),
                        (["--source", str(path), "--device", "0"],
                         "--device (MicrophoneOptions' device=) is for the microphone, not for the source"),
                        (["--source", str(path), "--rate", "44100"], "--rate describes raw PCM on stdin")):
        run = run_emolive("-q", "stream", "--no-publish", "--json", *args)
        assert run.returncode == 1 and error in run.stderr.decode(), (args, run.stderr)


def test_library_chatter_waits_for_verbose():
    """websockets logs every client's connection at INFO: `emolive stream --websocket` printed those
    lines at the default verbosity, which is for emolive's own."""
    import logging

    from emolive.engine.console import configure

    try:
        configure("emolive", 0)
        assert not logging.getLogger("websockets").isEnabledFor(logging.INFO)
        assert logging.getLogger("emolive.engine.runner").isEnabledFor(logging.INFO)
        configure("emolive", 1)
        assert logging.getLogger("websockets").isEnabledFor(logging.DEBUG)
    finally:
        logging.getLogger().handlers[:] = []
        logging.getLogger().setLevel(logging.WARNING)
        logging.getLogger("websockets").setLevel(logging.NOTSET)


def test_a_native_crash_prints_where_it_happened():
    """A segfault in native code under a configured command prints the Python stack: a score run had died
    with -11 and an empty stderr, nothing to place it by."""
    crash = ("from emolive.engine import console\n"
             "console.configure('emolive', 0)\n"
             "def in_the_decoder():\n"
             "    import ctypes; ctypes.string_at(0)\n"
             "in_the_decoder()\n")
    done = subprocess.run([sys.executable, "-c", crash], capture_output=True, text=True, timeout=60)
    assert done.returncode == -11
    assert "Segmentation fault" in done.stderr and "in_the_decoder" in done.stderr, done.stderr


class SignalledInAFinaliser:
    """An object whose finaliser is running when Ctrl-C comes, as a decoder's SoundFile.__del__ was in score."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10_000):  # the handler runs between these steps; Python drops what it raises here
            pass


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_signal_swallowed_by_a_finaliser_is_raised_again_at_the_next_check():
    """score's Ctrl-C was lost so once (the batch ran on to its end and exit status 0): Signalled keeps it."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # a suite run in the background ignores it
    try:
        with terminate_as_interrupt((signal.SIGINT, signal.SIGTERM)) as signalled:
            SignalledInAFinaliser()  # no exception gets out of its finaliser
            assert signalled.signums == [signal.SIGINT]
            with pytest.raises(KeyboardInterrupt):
                signalled.check()
    finally:
        signal.signal(signal.SIGINT, before)
