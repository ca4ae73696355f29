"""The README's Python API example runs as written (in a folder with a speech.wav, as a user would have)."""
from __future__ import annotations

import re
import subprocess
import sys

import soundfile as sf

from tests.conftest import REPO, corpus_files, read_audio


def test_the_python_api_example_runs(tmp_path):
    text = (REPO / "README.md").read_text()
    section = text[text.index("### Python API"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    sf.write(tmp_path / "speech.wav", read_audio(corpus_files("emodb", limit=3)[2]), 16000)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert float(lines[0].split()[0]) >= 1.0  # the whole-recording activation, then counts
    assert lines[-1].startswith("audio file not found: missing.wav")


def test_the_readme_stays_a_users_page():
    """At most 10 kB: set-up, quick start, the headline and the licence; tables of ablations and
    every other detail live in docs/, which the README links."""
    text = (REPO / "README.md").read_text()
    assert len(text.encode()) <= 10_000
    for linked in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (REPO / linked).exists(), linked
