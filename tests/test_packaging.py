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
                   "emolive/engine/data/silero_vad_16k_encoder.onnx", "emolive/engine/data/silero_vad.LICENSE",
                   "emolive/trainer/data/vad_map.csv"):
        assert needed in names, needed
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "emolive = emolive.engine.cli:main" in text and "trainer = emolive.trainer.cli:main" in text


def wheel_metadata(tmp_path: Path) -> tuple[list[str], str]:
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("emolive-*.whl")
    archive = zipfile.ZipFile(wheel)
    metadata = archive.read(next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    return archive.namelist(), metadata


def test_streaming_alone_installs_no_qt_or_matplotlib_and_extras_add_them(tmp_path: Path):
    from packaging.requirements import Requirement

    names, metadata = wheel_metadata(tmp_path)
    assert "emolive/engine/data/messages.schema.json" in names
    requires = [Requirement(line.split(":", 1)[1].strip()) for line in metadata.splitlines()
                if line.startswith("Requires-Dist:")]
    base = {r.name.lower() for r in requires if r.marker is None}
    assert not base & {"pyside6-essentials", "pyqtgraph", "matplotlib", "torch", "torchaudio", "silero-vad",
                       "python-osc", "websockets"}
    assert {"numpy", "onnxruntime", "pyzmq", "av"} <= base
    extras = {}
    for r in requires:
        if r.marker is not None:
            extra = str(r.marker).split("==")[1].strip(" '\"")
            extras.setdefault(extra, set()).add(r.name.lower())
    assert {"pyside6-essentials", "pyqtgraph"} <= extras["gui"] and {"matplotlib", "torch"} <= extras["train"]
    assert extras["teacher"] == {"onnx"}  # the live teacher runs on onnxruntime; onnx builds its encoder graph
    assert extras["lsl"] == {"pylsl"} and extras["osc"] == {"python-osc"} and extras["websocket"] == {"websockets"}
    for r in requires:  # every range admits the exact pin `make setup` installs
        pinned = _pins().get(r.name.lower())
        if pinned is not None and r.name.lower() != "emolive":
            assert r.specifier.contains(pinned), (r, pinned)


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        spec = line.split("#")[0].strip()
        if "==" in spec and "*" not in spec:
            name, version = spec.split("==")
            pins[name.strip().lower()] = version.strip()
    return pins
