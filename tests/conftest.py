"""Shared test fixtures: the real corpora beside the checkout (../shared), never copied in."""
from __future__ import annotations

import csv
import gc
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMOLIVE_SHARED", REPO.parent / "shared"))
CORPORA = SHARED / "corpora"


def corpus_files(corpus: str, every: int = 1, limit: int | None = None) -> list[Path]:
    """Audio paths listed in a shared corpus manifest, every `every`-th, in manifest order."""
    manifest = CORPORA / corpus / "manifest.csv"
    if not manifest.exists():
        pytest.fail(f"{manifest} is missing: the tests need ../shared beside the checkout "
                    "(or EMOLIVE_SHARED pointing at it)")
    with open(manifest, newline="") as f:
        paths = [CORPORA / corpus / row["path"] for row in csv.DictReader(f)]
    return paths[::every][:limit]


def interruptible(cmd: list[str], **kwargs) -> subprocess.Popen:
    """A child that takes Ctrl-C and a closed terminal as from a terminal: SIGINT and SIGHUP at their
    default disposition. A suite run in the background by a non-interactive shell (`make test &`,
    nohup) inherits them ignored, and a Python child then keeps ignoring them: a test sending one
    would see the run go on to its end."""
    def default_signals() -> None:
        for signum in (signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
    return subprocess.Popen(cmd, preexec_fn=default_signals, **kwargs)


def own_mounts_missing() -> str | None:
    """Why a test cannot mount a small tmpfs (a full disk) in a user and mount namespace of its own
    (`unshare -Urm`), or None where it can: util-linux missing, or a machine that forbids the namespaces."""
    if shutil.which("unshare") is None:
        return "util-linux's unshare is not installed"
    tried = subprocess.run(["unshare", "-Urm", "true"], capture_output=True, text=True, timeout=30)
    return None if tried.returncode == 0 else f"no user and mount namespaces here ({tried.stderr.strip()[:80]})"


OWN_MOUNTS_MISSING = own_mounts_missing()


def default_file_mode() -> int:
    """The permission bits open() gives a new file under the current umask: every output should get them."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def read_audio(path: Path) -> np.ndarray:
    samples, rate = sf.read(path, dtype="float32")
    assert rate == 16000 and samples.ndim == 1
    return samples


@pytest.fixture(scope="session")
def speech() -> np.ndarray:
    """About 7 s of real speech: three clips from each corpus, concatenated."""
    files = corpus_files("emodb", every=180) + corpus_files("ravdess", every=480)
    return np.concatenate([read_audio(p) for p in files])


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a module: on a small shared machine, small GRU steps on two
    contended threads run several times slower than on one."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def collect_cycles_on_the_main_thread():
    """Once a window has turned automatic collection off (emolive.gui.gui_thread_gc), the pytest
    session never quits its QApplication, and tests without an event loop never run the collector's
    timer: collect what is due after each test, on this (the GUI) thread, as the timer would."""
    yield
    collector = sys.modules.get("emolive.gui.gui_thread_gc")
    if collector is not None and not gc.isenabled():
        collector.collect_due()
