"""Fuzzing manifests: any bytes in a manifest give a one-line TrainerError or valid utterances.

A manifest is a file a person writes or exports from a spreadsheet, so `read_manifest` may raise
nothing but `TrainerError` (what `trainer` prints as one line, exit 2): never a KeyError, an
AttributeError or a UnicodeDecodeError. Inputs stay near the real format (the real column names,
cells that are valid, empty, out of range, quoted, with commas, newlines, a byte-order mark or
bytes that are not UTF-8), where the checks are subtle.
"""
from __future__ import annotations

import csv
import io
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emolive.trainer.data import read_manifest
from emolive.trainer.data.manifest import DIMENSIONS
from emolive.trainer.errors import TrainerError

COLUMNS = ["path", "speaker", "emotion", "intensity", *DIMENSIONS, "split", "note"]
cells = st.one_of(
    st.sampled_from(["a.wav", "x/b.flac", "s1", "sad", "Angry", "fearful", "bored", "neutral", "strong", "normal",
                     "whispered", "low", "high", "", " ", "1", "4.5", "7", "0", "8", "-1", "nan", "inf", "1e308",
                     "train", "val", "test", "a,b", 'say "hi"', "two\nlines", "\ufeff", "\x00", "é"]),
    st.text(max_size=6),
)
rows = st.lists(st.lists(cells, min_size=0, max_size=len(COLUMNS) + 2), max_size=6)
header = st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=len(COLUMNS), unique=True)


def encode(head: list[str], body: list[list[str]], quoted: bool) -> str:
    if quoted:
        out = io.StringIO(newline="")
        csv.writer(out).writerows([head, *body])
        return out.getvalue()
    return "".join(",".join(r) + "\n" for r in [head, *body])


@st.composite
def manifests(draw) -> bytes:
    data = encode(draw(header), draw(rows), draw(st.booleans())).encode("utf-8")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    for _ in range(draw(st.integers(0, 2))):  # a few raw bytes anywhere: latin-1 text, a torn file
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=3)) + data[at:]
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=manifests())
def test_any_manifest_is_a_one_line_error_or_valid_utterances(tmp_path, data):
    path = tmp_path / "corpus" / "manifest.csv"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    try:
        utts = read_manifest(path)
    except TrainerError as err:
        message = str(err)
        assert message and "\n" not in message and "\r" not in message
        return
    assert len({u.path for u in utts}) == len(utts)  # duplicates were dropped
    for u in utts:
        assert u.speaker.startswith("corpus/") and len(u.speaker) > len("corpus/")
        assert all(math.isnan(v) or 1.0 <= v <= 7.0 for v in u.avd)
