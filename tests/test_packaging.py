"""The wheel installs one import namespace, `emolive`, with the package data the engine needs."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO


def test_wheel_has_only_the_emolive_top_level_package(tmp_path: Path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("emolive-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"emolive"}
    for needed in ("emolive/__init__.py", "emolive/engine/cli.py", "emolive/gui/window.py",
                   "emolive/trainer/cli.py", "emolive/plugins/student/default/model.safetensors",
                   "emolive/plugins/student/default/config.json", "emolive/engine/data/demo.flac",
                   "emolive/trainer/data/vad_map.csv"):
        assert needed in names, needed
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "emolive = emolive.engine.cli:main" in text and "trainer = emolive.trainer.cli:main" in text
