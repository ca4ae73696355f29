"""`pip install emolive` without extras against the full development install, side by side.

Builds the wheel, installs it without extras into a fresh venv (this Python, nothing else), and
measures in both installs: the venv's size on disk, whether torch is there, the peak RSS of
`emolive stream` on the demo clip (its own VmHWM, after a first run), and the wall time
of `emolive --help`, `emolive models` and `trainer --help` (best of three, idle machine assumed).
Run: .venv/bin/python benchmarks/base_install.py
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, peak_rss_mb, print_table  # first: it sets one thread for every library

from emolive.engine.session import DEMO_CLIP


def best_wall_s(args: list[str], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return min(times)


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


def fresh_install(root: Path) -> Path:
    """The wheel built from this checkout, installed without extras into a new venv under `root`."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(root), str(REPO)], check=True, capture_output=True)
    (wheel,) = root.glob("emolive-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True, capture_output=True)
    return venv


def has_torch(venv: Path) -> bool:
    return subprocess.run([str(venv / "bin" / "python"), "-c", "import torch"], capture_output=True).returncode == 0


def measure(venv: Path) -> list[str]:
    bin_dir = venv / "bin"
    stream = [str(bin_dir / "emolive"), "stream", "--source", str(DEMO_CLIP), "--no-publish", "--json"]
    subprocess.run(stream, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)  # first run: byte code
    return [f"{size_mb(venv):.0f}", "yes" if has_torch(venv) else "no", f"{peak_rss_mb(stream):.0f}",
            f"{best_wall_s([str(bin_dir / 'emolive'), '--help']):.2f}",
            f"{best_wall_s([str(bin_dir / 'emolive'), 'models']):.2f}",
            f"{best_wall_s([str(bin_dir / 'trainer'), '--help']):.2f}" if (bin_dir / "trainer").exists() else "-"]


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # --help, nothing more
    with tempfile.TemporaryDirectory() as tmp:
        base = measure(fresh_install(Path(tmp)))
    full = measure(Path(sys.executable).parent.parent)
    names = ["venv size MB", "torch installed", "stream peak RSS MB (demo clip)", "emolive --help s",
             "emolive models s", "trainer --help s"]
    print_table(["measure", "pip install emolive (no extras)", "make setup (everything, the reference)"],
                [[name, b, f] for name, b, f in zip(names, base, full)])


if __name__ == "__main__":
    main()
