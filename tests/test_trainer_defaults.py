"""`trainer train`'s defaults are the shipped recipe, declared once (trainer/config.py).

If a default moves, or the Makefile or the benchmark's shipped row changes the recipe on its own,
the default student would no longer be what `trainer train` trains: these tests fail instead.
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from emolive.trainer.cli import build_parser
from emolive.trainer.config import TrainConfig
from emolive.trainer.distill import DISTILL_EPOCHS, DistillConfig
from emolive.trainer.pipeline import DataSpec
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import generalisation  # noqa: E402


def make_commands(target: str) -> list[list[str]]:
    """The commands of a Make target's recipes, as `make -n -B` prints them (nothing runs; `-B`: also
    those of files already made, such as trained teachers; `-o setup`: not the installation's)."""
    out = subprocess.run(["make", "-n", "-B", "--no-print-directory", "-C", str(REPO), "-o", "setup", target,
                          "SHARED=/shared"], capture_output=True, text=True, check=True).stdout
    return [shlex.split(line) for line in out.replace("\\\n", " ").splitlines() if line.strip()]


def trainer_commands(target: str, command: str) -> list[list[str]]:
    """The `trainer COMMAND ...` arguments of a Make target, one list per call."""
    return [c[1:] for c in make_commands(target) if c[0].endswith("bin/trainer") and c[1] == command]


def trainer_train(target: str) -> list[str]:
    """The one `trainer train ...` of a Make target."""
    (command,) = trainer_commands(target, "train")
    return command


def default_student() -> list[str]:
    """The `trainer distill ...` that makes the default student."""
    (command,) = trainer_commands("default-model", "distill")
    return command


def without_data(argv: list[str]) -> list[str]:
    """`argv` less its --data, --splits and --out options (and --replace-shipped: where the bundle goes, not
    the recipe)."""
    return [t for i, t in enumerate(argv) if t not in ("--data", "--splits", "--out", "--replace-shipped")
            and argv[i - 1] not in ("--data", "--splits", "--out")]


def restated_defaults(argv: list[str]) -> list[str]:
    """The options of `argv` that parse to what leaving them out gives: they restate a default."""
    parser = build_parser()
    full = vars(parser.parse_args(argv))
    restated = []
    for i, token in enumerate(argv):
        if not token.startswith("--"):
            continue
        end = next((j for j in range(i + 1, len(argv)) if argv[j].startswith("--")), len(argv))
        try:
            without = vars(parser.parse_args(argv[:i] + argv[end:]))
        except SystemExit:  # a required option
            continue
        if without == full:
            restated.append(token)
    return restated


def test_default_model_trains_exactly_the_defaults():
    args = build_parser().parse_args(default_student())
    assert TrainConfig.from_args(args) == TrainConfig()
    assert DataSpec.from_args(args) == DataSpec(data=tuple(args.data))


@pytest.mark.parametrize("argv", [default_student, lambda: trainer_train("teacher-model"),
                                  lambda: trainer_train("report")], ids=["default-model", "teacher-model", "report"])
def test_make_targets_pass_only_what_differs_from_the_defaults(argv):
    assert restated_defaults(argv()) == []


def test_each_corpus_is_taught_by_the_shipped_teachers_recipe_trained_without_it():
    """The cross-fitted teachers are `make teacher-model`'s run but for one corpus left out, and each
    teaches that corpus (a teacher that learned the clips it teaches is refused: tests/test_distill.py)."""
    shipped = trainer_train("teacher-model")
    args = build_parser().parse_args(default_student())
    corpora = {m.split("/")[-2] for m in args.data}
    assert len(corpora) == 4
    parsed = [build_parser().parse_args(c) for c in trainer_commands("default-model", "train")]
    teachers = {Path(t.out): {m.split("/")[-2] for m in t.data} for t in parsed}
    assert len(teachers) == 4
    for corpus, teacher in args.teachers_for:
        assert teachers[Path(teacher)] == corpora - {corpus}
    for c in trainer_commands("default-model", "train"):
        assert without_data(c) == without_data(shipped)


def test_the_cross_fitted_teachers_train_on_the_students_split():
    """None of them may learn a speaker the student holds out (trainer distill counts them): each reads
    the split that the recipe copies from the shipped student, and the recipe checks afterwards that the
    student it trained drew that split again."""
    commands = make_commands("default-model")
    (copy,) = [c for c in commands if c[0] == "mkdir"]
    splits = copy[-1]
    assert copy[-2] == "plugins/student/default/splits.csv"
    teachers = [build_parser().parse_args(c) for c in trainer_commands("default-model", "train")]
    assert len(teachers) == 4 and all(t.splits == splits for t in teachers)
    assert build_parser().parse_args(default_student()).splits is None  # the student draws it: the defaults
    assert ["cmp", splits, "plugins/student/default/splits.csv"] in commands


def test_argparse_defaults_are_the_dataclasses():
    parse = build_parser().parse_args
    train = parse(["train", "--data", "a.csv", "--out", "o"])
    assert TrainConfig.from_args(train) == TrainConfig()
    assert DataSpec.from_args(train) == DataSpec(data=("a.csv",))
    distill = parse(["distill", "--data", "a.csv", "--teacher", "t", "--out", "o"])
    assert TrainConfig.from_args(distill) == TrainConfig(epochs=DISTILL_EPOCHS)
    assert DistillConfig.from_args(distill) == DistillConfig(teacher="t")


def test_the_benchmarks_shipped_row_is_the_default_recipe():
    """The row the default bundle carries (the Makefile names it) is measured with the defaults and
    the Makefile's distillation: the shipped teacher's recipe, cross-fitted, teaching the same dimensions
    with the same weight from the first epoch, without L_dis."""
    (attach,) = [c for c in make_commands("default-model") if c[1] == "scripts/attach-results.py"]
    row = generalisation.RECIPES[attach[-1]]
    assert row == generalisation.DEFAULT_STUDENT == generalisation.RECIPES[generalisation.MAIN[-1]]
    assert row.config(seed=TrainConfig.seed) == TrainConfig()
    assert row.classes == DataSpec.classes and not row.views and DataSpec.views == 0
    dcfg = DistillConfig.from_args(build_parser().parse_args(default_student()))
    assert row.distil_from == generalisation.SHIPPED_TEACHER and row.distil_avd == dcfg.avd_weight
    assert row.distil_avd_dims == dcfg.avd_dims and not dcfg.distils_embedding
    assert (dcfg.switch_epoch, dcfg.kappa_early, dcfg.kappa) == (0, 1.0, 1.0)
    teacher = generalisation.RECIPES[generalisation.SHIPPED_TEACHER]
    args = build_parser().parse_args(trainer_train("teacher-model"))
    assert (teacher.features, teacher.arch, teacher.epochs, teacher.dropout) == (args.features, args.arch, args.epochs,
                                                                                  args.dropout)
    assert teacher.views and args.views == generalisation.VIEWS


def test_help_shows_each_default_once(capsys):
    """argparse appends each default, read from the dataclasses; no help text types one again, and
    a flag or a computed default (None) gets no "(default: ...)" that says nothing."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # unwrapped
    for shown in ("(default: 40)", "(default: 5)", "(default: 2400)", "(default: 0.2)"):  # 0.2: --ce-weight
        assert text.count(shown) == 1, shown
    for empty in ("(default: None)", "(default: False)", "(default: [])"):
        assert empty not in text


def test_every_numeric_option_is_bounded_and_its_default_within_its_bounds():
    """A default outside its option's range could be given by no one, and a numeric option without a
    range (a bare int or float) would take -1, 0 or NaN into a run again."""
    from emolive.trainer.cli import Bounded, corpus_and_model, model_name_or_path, split_word, torch_device, user_path

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    actions = [(None, a) for a in parser._actions] + [(n, a) for n, p in commands.items() for a in p._actions]
    numeric = [(name, a) for name, a in actions
               if a.type not in (None, corpus_and_model, model_name_or_path, split_word, torch_device, user_path)
               or isinstance(a.default, (int, float))
               and not isinstance(a.default, bool) and a.nargs != 0]
    assert numeric
    for name, action in numeric:
        assert isinstance(action.type, Bounded), (name, action.dest)
        assert action.type(str(action.default)) == action.default, (name, action.dest)
