"""Session protocols (trainer.sessions): how clips become live streams when a set is scored or
trained, and that each protocol is what a user does with the engine."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from emolive.engine.batch import ScoreOptions, score_all
from emolive.engine.features import compute
from emolive.engine.features.normalise import StreamNormaliser
from emolive.engine.plugin import load_model
from emolive.trainer.cli import main as trainer_main
from emolive.trainer.data import Utterance, read_manifest
from emolive.trainer.evaluate import predict_utterances
from emolive.trainer.sessions import PROTOCOLS, drawn_streams, session_streams, warn_unstated
from emolive.trainer.config import TrainConfig
from emolive.trainer.labelled import labelled_set
from emolive.trainer.sampling import epoch_features
from tests.conftest import CORPORA, read_audio


def utt(speaker: str, emotion: str, intensity: str = "") -> Utterance:
    return Utterance(Path(f"{speaker}-{emotion}-{intensity}.flac"), speaker, emotion, intensity, 4.0, 4.0, 4.0)


CLIPS = [utt("a", "angry"), utt("a", "sad"), utt("a", "angry", "strong"), utt("b", "angry"),
         utt("b", "", "high"), utt("b", "", "low"), utt("b", "", "high")]


def test_sustained_sessions_of_clips_without_a_state_are_said_to_be_mixed(caplog):
    """A table of ratings alone (no category, no level) makes every clip's state "unlabelled": under
    sustained each speaker's clips are one stream, as under mixed, which evaluate did not say."""
    rated = [utt("a", ""), utt("a", ""), utt("b", "sad")]
    assert groups(session_streams(rated, "sustained")) == groups(session_streams(rated, "mixed"))
    for clips, protocol, warned in ((rated, "sustained", True), (rated, "mixed", False), (CLIPS, "sustained", False)):
        caplog.clear()
        warn_unstated(clips, protocol)
        assert ("2 of 3 clips have no category or intensity level" in caplog.text) == warned, protocol


def groups(streams: list[str]) -> list[list[int]]:
    """The clips of each stream, as sorted index lists."""
    out: dict[str, list[int]] = {}
    for i, s in enumerate(streams):
        out.setdefault(s, []).append(i)
    return sorted(out.values())


def test_each_protocol_groups_clips_as_documented():
    assert groups(session_streams(CLIPS, "clip")) == [[i] for i in range(len(CLIPS))]
    # a speaker's clips of one category (any intensity) in a row; a clip with only a level: that level
    assert groups(session_streams(CLIPS, "sustained")) == [[0, 2], [1], [3], [4, 6], [5]]
    assert groups(session_streams(CLIPS, "mixed")) == [[0, 1, 2], [3, 4, 5, 6]]
    with pytest.raises(ValueError, match="clip, sustained, mixed"):
        session_streams(CLIPS, "weekly")
    # a level under either of its words is one session ("high" and "strong" were two); a word naming no
    # level is no state, as for the targets
    spelled = [utt("c", "", "high"), utt("c", "", "Strong"), utt("c", "", "medium"), utt("c", "", "normal"),
               utt("c", "", "very"), utt("c", "")]
    assert groups(session_streams(spelled, "sustained")) == [[0, 1], [2, 3], [4, 5]]


def test_training_draws_one_protocol_per_speaker_and_one_protocol_is_that_protocol():
    rng = np.random.default_rng(0)
    for protocol in PROTOCOLS:
        assert drawn_streams(CLIPS, [protocol], rng) == session_streams(CLIPS, protocol)
    seen = set()
    for _ in range(40):
        streams = drawn_streams(CLIPS, list(PROTOCOLS), rng)
        for speaker, members in (("a", [0, 1, 2]), ("b", [3, 4, 5, 6])):
            mine = [streams[i] for i in members]
            # every clip of a speaker follows one protocol: some protocol's grouping of that speaker
            assert any(mine == [session_streams(CLIPS, p)[i] for i in members] for p in PROTOCOLS)
            seen.add((speaker, len(set(mine))))
    assert {n for s, n in seen if s == "a"} == {1, 2, 3}  # mixed, sustained and clip were all drawn


@pytest.fixture(scope="module")
def emodb_speaker() -> list[Utterance]:
    """Six clips of one EmoDB speaker: two categories, three clips each."""
    utts = read_manifest(CORPORA / "emodb" / "manifest.csv")
    angry = [u for u in utts if u.speaker.endswith("/03") and u.emotion == "angry"][:3]
    sad = [u for u in utts if u.speaker.endswith("/03") and u.emotion == "sad"][:3]
    return angry + sad


def test_epoch_features_normalise_each_drawn_session_from_the_prior(emodb_speaker):
    """Under the clip protocol every clip of an epoch is normalised alone, from the prior."""
    plugin = load_model("student")
    norm = plugin.meta.stream_normalisation
    feats = [compute(read_audio(u.path)) for u in emodb_speaker]
    data = labelled_set(emodb_speaker, feats, [])
    out = epoch_features(data, TrainConfig(session_protocols=("clip",), gain_augment_db=(0.0, 0.0)), norm, epoch=3)
    for got, f in zip(out, feats):
        np.testing.assert_array_equal(got, StreamNormaliser(norm).push(f))
    mixed = epoch_features(data, TrainConfig(gain_augment_db=(0.0, 0.0)), norm, epoch=3)
    assert any(not np.array_equal(a, b) for a, b in zip(out, mixed))


def test_the_clip_protocol_is_scoring_each_file_alone_with_emolive_score(emodb_speaker, tmp_path):
    plugin = load_model("student")
    out = predict_utterances(plugin, emodb_speaker, tmp_path / "cache", progress=False, protocol="clip")
    rows = [row for rows in score_all([u.path for u in emodb_speaker], plugin, ScoreOptions(per="file"), jobs=1)
            for row in rows]
    scored = [[row[d] for d in ("activation", "valence", "dominance")] for row in rows]
    # the same features (chunking does not change them), the same normaliser from the prior, the same
    # graph and padding: equal up to float32 summation order in the GRU's kernels (~1e-6 of values ~4)
    np.testing.assert_allclose(np.array(scored), out["avd"], atol=1e-5)
    mixed = predict_utterances(plugin, emodb_speaker, tmp_path / "cache", progress=False, protocol="mixed")
    assert np.abs(mixed["avd"] - out["avd"]).max() > 1e-2  # a session moves the normaliser: not the same


def test_a_sustained_session_streams_a_speakers_clips_of_one_category_in_a_row(emodb_speaker, tmp_path):
    """Scoring the three angry clips as one sustained session is the engine's stream of those three
    files said in a row, in the seeded order; the sad clips are another stream."""
    plugin = load_model("student")
    norm = plugin.meta.stream_normalisation
    out = predict_utterances(plugin, emodb_speaker, tmp_path / "cache", progress=False, protocol="sustained")
    feats = [compute(read_audio(u.path)) for u in emodb_speaker]
    for members in ([0, 1, 2], [3, 4, 5]):
        alone = predict_utterances(plugin, [emodb_speaker[i] for i in members], tmp_path / "cache", progress=False,
                                   protocol="sustained")
        np.testing.assert_array_equal(alone["avd"], out["avd"][members])  # the other category's clips do not matter
    # the angry clips' session: the first clip in the seeded order is normalised from the prior
    firsts = [i for i in range(3)
              if np.allclose(plugin.predict_batch([StreamNormaliser(norm).push(feats[i])], [None])[0].avd,
                             out["avd"][i], atol=1e-5)]
    assert len(firsts) >= 1


def test_trainer_evaluate_takes_the_protocol_and_reports_it(emodb_speaker, tmp_path, capsys):
    manifest = tmp_path / "m.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "speaker", "emotion"])
        w.writerows([[str(u.path), "03", u.emotion] for u in emodb_speaker])
    results = {}
    for protocol in PROTOCOLS:
        capsys.readouterr()
        assert trainer_main(["evaluate", "--data", str(manifest), "--protocol", protocol, "--json",
                             "--cache", str(tmp_path / "cache")]) == 0
        results[protocol] = json.loads(capsys.readouterr().out)
        assert results[protocol]["protocol"] == protocol and results[protocol]["n"] == 6
    assert results["clip"]["ccc"] != results["mixed"]["ccc"]


def test_trainer_evaluate_shows_the_data_path_whole_with_the_protocol(emodb_speaker, tmp_path, capsys):
    deep = tmp_path / ("a-long-folder-name-" * 4) / "manifest.csv"
    deep.parent.mkdir()
    with open(deep, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "speaker", "emotion"])
        w.writerows([[str(u.path), "03", u.emotion] for u in emodb_speaker])
    assert trainer_main(["evaluate", "--data", str(deep), "--protocol", "clip", "--cache", str(tmp_path / "c")]) == 0
    assert f"{deep} (clip)" in capsys.readouterr().out
