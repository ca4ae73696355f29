"""The front end's kernels built ahead of time: current, used without numba, equal to numba's JIT."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emolive.engine.features import kernels
from tests.conftest import OWN_MOUNTS_MISSING, REPO

AHEAD_OF_TIME_HERE = kernels.cpu_runs_build_target()
# features of speech.npy into features.npy, then whether numba was imported and the extension served
FEATURES = """
import sys, numpy as np
from emolive.engine.features import compute, kernels
from emolive.engine.features.warm import warm
warm()  # the front end and the stream normaliser: every kernel Python calls
np.save(sys.argv[2], compute(np.load(sys.argv[1])))
print("numba" in sys.modules, kernels.extension() is not None)
"""


def features_via(mode: str, speech_file: Path, out: Path) -> tuple[np.ndarray, str]:
    """Features computed in a fresh interpreter with EMOLIVE_KERNELS=`mode`, and what it reported."""
    env = {**os.environ, kernels.MODE_ENV: mode}
    run = subprocess.run([sys.executable, "-c", FEATURES, str(speech_file), str(out)], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return np.load(out), run.stdout.strip()


@pytest.fixture(scope="module")
def both(speech, tmp_path_factory) -> tuple[np.ndarray, str, np.ndarray, str]:
    tmp = tmp_path_factory.mktemp("kernels")
    np.save(tmp / "speech.npy", speech)
    return (*features_via("auto", tmp / "speech.npy", tmp / "aot.npy"),
            *features_via("jit", tmp / "speech.npy", tmp / "jit.npy"))


@pytest.mark.skipif(not AHEAD_OF_TIME_HERE, reason="this CPU cannot run the x86-64-v3 build: the JIT serves")
def test_the_install_runs_current_kernels_without_importing_numba(both):
    _, aot_report, _, jit_report = both
    assert aot_report == "False True", "numba imported or the extension stale/missing: run `make setup`"
    assert jit_report == "True False"


def test_kernels_built_ahead_of_time_agree_with_numba_jit(both):
    aot, _, jit, _ = both
    assert aot.shape == jit.shape
    # The mel kernels do the same float64 operations in the same order (no fastmath, no FMA
    # contraction) in both builds: equal up to float32 rounding of the logs.
    np.testing.assert_allclose(aot[:, :40], jit[:, :40], rtol=0, atol=1e-5)
    # The NCCF sums float32 with fastmath, so the vector width of the target (AVX2 here, maybe
    # AVX-512 for the host JIT) reorders them: ~1e-7 relative. The Viterbi then compares path scores,
    # where a near-tie could choose another path on a rare frame, so most frames, not all, must agree.
    close = np.all(np.abs(aot[:, 40:] - jit[:, 40:]) <= 1e-4, axis=1)
    assert close.mean() >= 0.995, f"{(~close).sum()} of {len(close)} frames differ"


@pytest.mark.skipif(not AHEAD_OF_TIME_HERE, reason="this CPU cannot run the x86-64-v3 build: the JIT serves")
def test_a_build_from_other_sources_is_not_used(monkeypatch):
    kernels.extension.cache_clear()
    assert kernels.extension() is not None, "the extension is missing or stale: run `make setup`"
    monkeypatch.setattr(kernels, "source_digest", lambda: "f" * 64)
    kernels.extension.cache_clear()
    try:
        assert kernels.extension() is None
    finally:
        monkeypatch.undo()
        kernels.extension.cache_clear()


@pytest.mark.skipif(kernels.build_target() != "x86-64-v3", reason="only x86-64 builds for a CPU level")
def test_a_cpu_without_avx2_gets_the_jit(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse sse2 avx xsave\n")
    assert not kernels.cpu_runs_build_target(info)
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 bmi1 bmi2 f16c fma abm movbe xsave\n")
    assert kernels.cpu_runs_build_target(info)
    assert not kernels.cpu_runs_build_target(tmp_path / "missing")



def jit_without_a_writable_cache(speech, tmp_path: Path, env: dict[str, str],
                                 wrap: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess, Path]:
    """FEATURES under numba's JIT where numba cannot keep its cache (`env`), run inside `wrap` (a
    namespace); the run and where its features went."""
    np.save(tmp_path / "speech.npy", speech)
    command = [*wrap, sys.executable, "-c", FEATURES, str(tmp_path / "speech.npy"), str(tmp_path / "out.npy")]
    run = subprocess.run(command, env={**os.environ, kernels.MODE_ENV: "jit", **env}, cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    return run, tmp_path / "out.npy"


def test_the_jit_runs_where_numba_finds_no_cache_folder(speech, both, tmp_path):
    """With no folder numba may write (another user's install and a read-only home) every kernel call
    raised "cannot cache function ...: no locator available": a traceback in `stream`, and a `score`
    batch wrote its header only. numba's own setting here picks a locator that serves only in IPython:
    the same state, made real."""
    run, out = jit_without_a_writable_cache(speech, tmp_path, {"NUMBA_CACHE_LOCATOR_CLASSES": "IPythonCacheLocator"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stderr.count("numba cannot keep its compiled kernels") == 1 and "no locator" in run.stderr
    np.testing.assert_array_equal(np.load(out), both[2])  # the same JIT code, compiled at this start


@pytest.mark.skipif(OWN_MOUNTS_MISSING is not None, reason=OWN_MOUNTS_MISSING or "")
def test_the_jit_runs_where_numba_cache_disk_is_full(speech, both, tmp_path):
    """numba's cache on a full disk: saving what it had compiled raised ENOSPC out of the first kernel
    call, and `score` called every file unreadable ("No space left on device"). A 64 kB tmpfs, filled,
    mounted in a namespace of this test's own (no root needed where user namespaces are allowed)."""
    cache = tmp_path / "full"
    cache.mkdir()
    fill = f"mount -t tmpfs -o size=64k tmpfs {cache} && head -c 57344 /dev/zero > {cache}/fill && exec \"$@\""
    run, out = jit_without_a_writable_cache(speech, tmp_path, {"NUMBA_CACHE_DIR": str(cache)},
                                            ("unshare", "-Urm", "sh", "-c", fill, "sh"))
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stderr.count("numba cannot keep its compiled kernels ([Errno 28] No space left on device)") == 1
    np.testing.assert_array_equal(np.load(out), both[2])
