"""A third party's model plugin: docs/engine.md's example works as written, and the engine holds every
plugin to the contract it documents, in one line naming the model (engine.plugin.predict_checked)."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import emolive
from emolive.engine.plugin import ModelError, Prediction
from emolive.plugins.student import DEFAULT_BUNDLE
from tests.conftest import REPO, corpus_files, read_audio

EMOLIVE = str(Path(sys.executable).parent / "emolive")


def docs_example() -> dict:
    """docs/engine.md's plugin example, run as written; its namespace."""
    text = (REPO / "docs" / "engine.md").read_text()
    code = text.split("## Writing a model plugin", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "docs/engine.md", "exec"), namespace)  # noqa: S102 (our own documentation)
    return namespace


@pytest.fixture(scope="module")
def loudness() -> type:
    return docs_example()["Loudness"]


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return np.concatenate([read_audio(p) for p in corpus_files("emodb", every=200)[:2]])


def test_the_documented_plugin_runs_as_written_and_hears_loudness(loudness, speech):
    quiet, loud = (emolive.analyze(speech * gain, sample_rate=16000, model=loudness()).whole for gain in (0.01, 1.0))
    assert loud["model"] == "loudness" and set(loud["classes"]) == {"calm", "excited"}
    assert 1.0 <= quiet["activation"] < loud["activation"] <= 7.0


def misbehaving(base: type, outputs) -> object:
    """The documented plugin with predict_batch replaced by `outputs(features)`."""
    return type("Misbehaving", (base,), {"predict_batch": lambda self, features, samples: outputs(features)})()


GOOD = dict(avd=np.array([4.0, 4.0, 4.0]), class_probs=np.array([0.5, 0.5]), embedding=np.zeros(2))
BROKEN = {  # a plugin's mistake -> the one line that names it
    "raises": (lambda f: 1 / 0, "model loudness failed: ZeroDivisionError: division by zero"),
    "NaN": (lambda f: [Prediction(**{**GOOD, "avd": np.array([4.0, np.nan, 4.0])})] * len(f), "gave NaN or infinite"),
    "two values": (lambda f: [Prediction(**{**GOOD, "avd": np.array([4.0, 4.0])})] * len(f), "avd of shape (2,)"),
    "7 probabilities for 2 classes": (lambda f: [Prediction(**{**GOOD, "class_probs": np.full(7, 1 / 7)})] * len(f),
                                      "class_probs of shape (7,) (want 2"),
    "probabilities of 3 and -1": (lambda f: [Prediction(**{**GOOD, "class_probs": np.array([2.0, -1.0])})] * len(f),
                                  "outside [0, 1] or not summing to 1"),
    "one prediction per batch": (lambda f: [Prediction(**GOOD)], "gave 1 predictions for"),
    "not a Prediction": (lambda f: [(4, 4, 4)] * len(f), "gave no Prediction(avd, class_probs, embedding)"),
    "sys.exit": (lambda f: sys.exit(3), "model loudness failed: SystemExit: 3"),
    "text that numpy reads as numbers": (lambda f: [Prediction(**{**GOOD, "avd": ["4", "4", "4"]})] * len(f),
                                         "not real numbers"),
    "complex probabilities": (lambda f: [Prediction(**{**GOOD, "class_probs": np.array([0.5, 0.5j])})] * len(f),
                              "not real numbers"),
    "beyond float32": (lambda f: [Prediction(**{**GOOD, "avd": np.array([4.0, 1e39, 4.0])})] * len(f),
                       "gave NaN or infinite"),
    "a 0-1 scale": (lambda f: [Prediction(**{**GOOD, "avd": np.array([0.2, 0.5, 0.9])})] * len(f),
                    "gave activation, valence and dominance 0.2, 0.5, 0.9: outside emolive's 1-7 scale"),
}


@pytest.mark.parametrize("mistake", BROKEN)
def test_a_plugin_breaking_the_contract_is_one_error_naming_it(loudness, speech, mistake, recwarn):
    """Each was a traceback, a NaN row with exit 0, a payload emolive's own listen refused, windows
    lost without a word, a SystemExit out of analyze, or a value taken with numpy's warning."""
    outputs, message = BROKEN[mistake]
    with pytest.raises(ModelError, match=None) as caught:
        emolive.analyze(speech, sample_rate=16000, model=misbehaving(loudness, outputs))
    assert not [w for w in recwarn if issubclass(w.category, (RuntimeWarning, np.exceptions.ComplexWarning))]
    assert isinstance(caught.value, emolive.EmoliveError) and str(caught.value).startswith("model loudness ")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_plugin_at_the_scale_s_ends_is_taken(loudness, speech):
    """The control of "a 0-1 scale": 1 and 7 themselves, and float32 rounding past them, are on it."""
    ends = np.array([1.0, 7.0, np.float32(7) + np.float32(5e-7)], np.float32)
    result = emolive.analyze(speech, sample_rate=16000, model=misbehaving(
        loudness, lambda f: [Prediction(**{**GOOD, "avd": ends})] * len(f)))
    assert (result.whole["activation"], result.whole["valence"], result.whole["dominance"]) == (1.0, 7.0, 7.0)


@pytest.mark.parametrize("fields, message", [
    (lambda meta: {"name": 12345}, "has name 12345: give a non-empty string"),
    (lambda meta: {"name": ""}, "model (no name)'s plugin has name '': give a non-empty string"),
    (lambda meta: {"meta": replace(meta, label_scale=(0.0, 1.0))}, "label_scale [0.0, 1.0] is not emolive's [1.0, 7.0]"),
    (lambda meta: {"meta": replace(meta, class_names=("calm", "calm"))}, "class_names must be at most 1024 distinct"),
    (lambda meta: {"meta": replace(meta, class_names=("a\nb", "c"))}, "class_names must be at most 1024 distinct"),
    (lambda meta: {"meta": replace(meta, frontend=None)}, "has meta.frontend NoneType, not an emolive.engine.features."),
    (lambda meta: {"meta": replace(meta, frontend=replace(meta.frontend, sample_rate=8000, pitch=replace(
        meta.frontend.pitch, analysis_rate=4000)))}, "trained on a 8000 Hz front end; emolive's sources deliver 16000"),
], ids=["int name", "empty name", "0-1 scale", "one name twice", "a newline in a name", "no front end", "8 kHz"])
def test_a_plugin_is_held_to_a_bundle_s_rules_when_it_loads(loudness, speech, fields, message):
    """Two classes of one name were one CSV column (a probability lost), a name with a newline broke the
    CSV, a 0-1 scale was clipped to 1.0 everywhere with exit 0, an int name and a meta without a front
    end were tracebacks."""
    plugin = type("Changed", (loudness,), fields(loudness.meta))()
    with pytest.raises(emolive.EmoliveError) as caught:
        emolive.analyze(speech, sample_rate=16000, model=plugin)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_plugin_object_handed_to_the_api_is_checked_as_a_loaded_one(loudness, speech):
    """A plugin whose meta is None went past analyze's check and failed with an AttributeError."""
    no_meta = type("NoMeta", (loudness,), {"meta": None})()
    for call in (lambda: emolive.analyze(speech, sample_rate=16000, model=no_meta),
                 lambda: next(emolive.stream(speech, sample_rate=16000, model=no_meta))):
        with pytest.raises(emolive.EmoliveError, match="model loudness's plugin has meta NoneType, not an "):
            call()


def test_third_party_entry_points_fail_in_one_line_and_never_take_emolives_names(tmp_path):
    """A plugin raising at prediction: an error row per file in `score`, which goes on; one line in
    `stream`. A plugin whose meta is None: one line (an AttributeError deep in the engine before). A
    loader calling sys.exit: `emolive models` lists it unavailable beside the others (it ended the
    listing). A package registering `student`: emolive's stays `student`, with a warning."""
    (tmp_path / "tp_contract.py").write_text(
        "import sys\nfrom emolive.engine.plugin import load_model\n\n"
        "class Failing:\n    name, device, meta = 'failing', 'cpu', load_model('student').meta\n"
        "    def predict_batch(self, features, samples):\n        raise RuntimeError('GPU fell off')\n"
        "    def predict(self, features, samples):\n        return self.predict_batch([features], [samples])[0]\n"
        "    def size_bytes(self):\n        return 0\n\n"
        "class NoMeta(Failing):\n    meta = None\n\n"
        "def failing():\n    return Failing()\n\ndef no_meta():\n    return NoMeta()\n\n"
        "def leaves():\n    sys.exit('licence expired')\n\n"
        "def summary():\n    return 'oops'\n\n"
        "def any_bundle(path, name=None):\n    return Failing()\n")
    info = tmp_path / "tp_contract-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tp-contract\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[emolive.models]\ntp-failing = tp_contract:failing\n"
                                           "tp-no-meta = tp_contract:no_meta\ntp-leaves = tp_contract:leaves\n"
                                           "student = tp_contract:failing\n[emolive.model_summaries]\n"
                                           "tp-failing = tp_contract:summary\n[emolive.architectures]\n"
                                           "tcgru = tp_contract:any_bundle\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    clips = [str(p) for p in corpus_files("emodb", every=300, limit=2)]

    def emolive_cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([EMOLIVE, *args], env=env, capture_output=True, text=True, timeout=120)

    scored = emolive_cli("score", *clips, "--model", "tp-failing")
    rows = scored.stdout.strip().splitlines()[1:]
    assert scored.returncode == 1 and "Traceback" not in scored.stderr and len(rows) == 2
    assert all("model failing failed: RuntimeError: GPU fell off" in row for row in rows)
    for name, reason in (("tp-failing", "model failing failed: RuntimeError: GPU fell off"),
                         ("tp-no-meta", "has meta NoneType, not an emolive.engine.bundle.BundleMeta")):
        streamed = emolive_cli("stream", "--source", clips[0], "--no-publish", "--json", "--model", name)
        errors = [line for line in streamed.stderr.splitlines() if "error:" in line]
        assert streamed.returncode == 1 and "Traceback" not in streamed.stderr and reason in errors[0], streamed.stderr
    listing = emolive_cli("models")
    assert listing.returncode == 0 and "SystemExit: licence expired" in listing.stdout
    assert "registered by emolive and by tp-contract: emolive's is used" in listing.stderr
    assert "tcgru, 6 classes" in next(line for line in listing.stdout.splitlines() if line.startswith("student "))
    assert "unavailable: model tp-failing's summary gave a str, not an emolive.engine.plugin.ModelSummary" in \
        next(line for line in listing.stdout.splitlines() if line.startswith("tp-failing "))
    assert emolive_cli("score", clips[0], "--model", "student").returncode == 0
    # a package registering the student's architecture took every student bundle path, without a word
    by_path = emolive_cli("score", clips[0], "--model", str(DEFAULT_BUNDLE))
    assert by_path.returncode == 0, by_path.stdout + by_path.stderr
    assert "architecture 'tcgru' is registered by emolive and by tp-contract: emolive's is used" in by_path.stderr
