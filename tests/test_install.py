"""`pip install emolive` without extras, as a new user does it: a fresh venv, no torch, and it streams."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from emolive.engine.features import kernels
from tests.conftest import REPO


@pytest.fixture(scope="module")
def plain_venv(tmp_path_factory) -> Path:
    """A fresh venv (this Python, no system packages) with the built wheel installed without extras."""
    root = tmp_path_factory.mktemp("install")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(root), str(REPO)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = root.glob("emolive-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], capture_output=True,
                               text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr[-2000:]
    return venv


def test_the_base_install_has_no_torch_and_streams_the_demo_clip(plain_venv):
    python = str(plain_venv / "bin" / "python")
    probe = subprocess.run([python, "-c", "import importlib.util as u; print(u.find_spec('torch') is None)"],
                           capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == "True", "torch was installed without an extra"
    if kernels.cpu_runs_build_target():  # the wheel's kernels, compiled ahead of time, serve without numba
        probe = subprocess.run([python, "-c", "import sys; from emolive.engine.features import kernels, warm; "
                                "warm.warm(); print(kernels.extension() is not None, 'numba' in sys.modules)"],
                               capture_output=True, text=True, timeout=120, cwd=plain_venv)  # not the checkout's emolive/
        assert probe.stdout.strip() == "True False", probe.stderr[-2000:]
    demo = REPO / "engine" / "data" / "demo.flac"
    run = subprocess.run([str(plain_venv / "bin" / "emolive"), "stream", "--source", str(demo), "--json",
                          "--no-publish"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    estimates = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(estimates) >= 5 and all(1 <= e["activation"] <= 7 for e in estimates)


def test_a_model_that_needs_an_extra_says_which(plain_venv):
    models = subprocess.run([str(plain_venv / "bin" / "emolive"), "models"], capture_output=True, text=True,
                            timeout=120)
    assert models.returncode == 0, models.stderr
    teacher = next(line for line in models.stdout.splitlines() if line.startswith("teacher "))
    assert "pip install 'emolive[teacher]'" in teacher
    run = subprocess.run([str(plain_venv / "bin" / "emolive"), "stream", "--model", "teacher", "--source",
                          str(REPO / "engine" / "data" / "demo.flac"), "--no-publish"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "pip install 'emolive[teacher]'" in run.stderr
