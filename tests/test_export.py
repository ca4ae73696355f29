"""`trainer export --out`: a graph on its own says what its outputs mean and what its input must be, and
it replaces a regular file or nothing, never a folder, link, device or pipe."""
from __future__ import annotations

import json
import os
import shutil
import stat
from dataclasses import asdict

import onnx
import pytest

from emolive.engine.bundle import BundleError, replace_file
from emolive.engine.files import leftover_partials, write_whole
from emolive.engine.schema import DIMENSIONS
from emolive.plugins.student import DEFAULT_BUNDLE, load_bundle
from emolive.trainer.cli import main as trainer_main


def test_a_standalone_graph_carries_its_classes_scale_front_end_and_normaliser(tmp_path):
    _, meta = load_bundle(DEFAULT_BUNDLE)
    out = tmp_path / "student.onnx"
    assert trainer_main(["export", "--out", str(out)]) == 0
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    read = {key.removeprefix("emolive."): json.loads(value) for key, value in props.items()
            if key.startswith("emolive.")}
    assert read == {"class_names": list(meta.class_names), "dimensions": list(DIMENSIONS),
                    "label_scale": list(meta.label_scale),
                    "frontend": json.loads(json.dumps(asdict(meta.frontend))),
                    "stream_normalisation": json.loads(json.dumps(asdict(meta.stream_normalisation)))}
    assert read["class_names"] and read["stream_normalisation"]["columns"] == 41  # the shipped student has both


def _target(tmp_path, kind: str):
    """An --out that must not be replaced or cannot be written, and what must still be true of it after."""
    (tmp_path / "afile").write_text("mine")
    if kind == "fifo":  # a non-regular file in a safe place (a device node was once replaced by a file)
        os.mkfifo(tmp_path / "pipe.onnx")
        return tmp_path / "pipe.onnx", lambda p: stat.S_ISFIFO(os.lstat(p).st_mode)
    if kind == "folder":
        (tmp_path / "dir.onnx").mkdir()
        return tmp_path / "dir.onnx", lambda p: p.is_dir() and not any(p.iterdir())
    if kind == "link":
        (tmp_path / "link.onnx").symlink_to(tmp_path / "afile")
        return tmp_path / "link.onnx", lambda p: p.is_symlink() and p.read_text() == "mine"
    if kind == "under a file":
        return tmp_path / "afile" / "x.onnx", lambda p: (tmp_path / "afile").read_text() == "mine"
    return tmp_path / "no" / "such" / "x.onnx", lambda p: not (tmp_path / "no").exists()


@pytest.mark.parametrize("kind", ["fifo", "folder", "link", "under a file", "missing folder"])
def test_export_out_replaces_only_a_regular_file_and_says_so_in_one_line(tmp_path, kind, capsys):
    out, unchanged = _target(tmp_path, kind)
    assert trainer_main(["export", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"trainer export: error: {out}: "), err
    assert unchanged(out)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no partial file left


def test_an_out_ending_in_a_slash_names_a_folder_and_is_refused(tmp_path, capsys):
    """`--out exports/` wrote a file named exports (Path() drops the slash); `--out a.onnx/` overwrote a.onnx."""
    (tmp_path / "a.onnx").write_text("mine")
    for out in (f"{tmp_path}/exports/", f"{tmp_path}/a.onnx/"):
        assert trainer_main(["export", "--out", out]) == 2
        assert f"--out {out} names a folder: give the graph's file name" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.onnx"] and (tmp_path / "a.onnx").read_text() == "mine"
    # the bundle exported, named as a folder: said to be the bundle (its example, b/model.onnx, was then refused)
    bundle = shutil.copytree(DEFAULT_BUNDLE, tmp_path / "b")
    assert trainer_main(["export", "--model", str(bundle), "--out", f"{bundle}/"]) == 2
    assert "is inside the bundle it exports; write the graph elsewhere, or into the bundle with --into-bundle" \
        in capsys.readouterr().err


def test_a_place_that_cannot_be_written_is_one_bundle_error_and_leaves_nothing(tmp_path):
    """A name the file system refuses (here: too long for the partial file beside it) is one line."""
    with pytest.raises(BundleError, match="cannot write .*File name too long"):
        replace_file(tmp_path / ("x" * 250), b"graph")
    assert list(tmp_path.iterdir()) == []


def test_a_write_interrupted_before_its_rename_leaves_the_old_file_and_no_partial(tmp_path, monkeypatch):
    """The one writer of whole files (graphs, screenshots, the trainer's caches and checkpoints): an
    exception between the write and the rename (here a Ctrl-C) leaves the old bytes and nothing else.
    A SIGKILL runs no cleanup; what it leaves, `leftover_partials` finds for a caller holding a lock."""
    target = tmp_path / "checkpoint.safetensors"
    write_whole(target, b"old")

    def interrupted(src, dst):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_whole(target, b"new", sync=True)
    monkeypatch.undo()
    assert target.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [target]
    killed = tmp_path / ".checkpoint.safetensors.partial-0badf00d"  # what a SIGKILL mid-write leaves
    killed.write_bytes(b"ne")
    (tmp_path / ".other.partial-0badf00d").write_bytes(b"")  # another file's: not this one's to sweep
    assert leftover_partials(target) == [killed]


def test_a_model_export_cannot_take_is_refused_in_one_line(tmp_path, capsys):
    """--model with --into-bundle was ignored; --model teacher with --out was read as a folder path."""
    assert trainer_main(["export", "--into-bundle", str(tmp_path / "b"), "--model", "teacher"]) == 2
    assert "--into-bundle exports" in capsys.readouterr().err
    assert trainer_main(["export", "--out", str(tmp_path / "t.onnx"), "--model", "teacher"]) == 2
    assert "--out exports 'student' or a student bundle folder" in capsys.readouterr().err
    assert not (tmp_path / "t.onnx").exists()
    # a teacher bundle's folder: it said "unknown architecture 'teacher-gru'; known: gru, tcgru"
    from emolive.plugins.teacher.plugin import DEFAULT_BUNDLE as TEACHER_BUNDLE

    assert trainer_main(["export", "--out", str(tmp_path / "t.onnx"), "--model", str(TEACHER_BUNDLE)]) == 2
    assert "is a teacher: its head graph goes into its bundle, `trainer export --into-bundle" in capsys.readouterr().err
