"""The results README and docs/results.md show are the benchmark's numbers and the shipped bundle's.

docs/generalisation.json is what `benchmarks/generalisation.py --json` wrote; the tables in the
docs must be its rendering (not hand-copied numbers that drift from the code), and the default
bundle must carry the row of the recipe it was really trained with.
"""
from __future__ import annotations

import json
import platform
import sys

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import generalisation  # noqa: E402
from emolive.engine.bundle import json_text  # noqa: E402
from emolive.trainer.config import TrainConfig  # noqa: E402

SUMMARY = json.loads((REPO / "docs" / "generalisation.json").read_text())
MAIN = list(generalisation.MAIN)  # every one required, whatever the JSON holds
ABLATIONS = generalisation.table_groups(SUMMARY)["ablations"]
DEFAULT = json.loads((REPO / "plugins" / "student" / "default" / "config.json").read_text())
TEACHER = json.loads((REPO / "plugins" / "teacher" / "default" / "config.json").read_text())


def results_section(path: str) -> str:
    text = (REPO / path).read_text()
    return text[text.index("## Results") if "## Results" in text else 0:]


def test_the_leave_one_corpus_out_table_has_every_corpus_and_three_seeds_per_main_row():
    for name in MAIN:
        row = SUMMARY[name]
        assert set(generalisation.CORPORA) <= set(row) and len(row["seeds"]) >= 3, name
    assert ABLATIONS, "the ablation rows are part of the table"


@pytest.mark.parametrize(("path", "recipes"), [("README.md", generalisation.headline_recipes),
                                               ("docs/results.md", generalisation.protocol_recipes)])
def test_docs_lead_results_with_the_worst_session_protocol(path, recipes):
    """Both lead with the protocol table (each recipe under clip, sustained and mixed sessions, and
    the worst of them: the headline); README for the old recipe and the shipped models, docs/results.md
    for every recipe measured under the protocols, then the main per-corpus table."""
    section = results_section(path)
    protocols = generalisation.protocol_markdown(SUMMARY, recipes(SUMMARY))
    assert protocols in section
    assert section.index("| recipe |") == section.index(protocols), "the protocol table comes first"
    if path == "docs/results.md":
        assert generalisation.markdown(SUMMARY, MAIN) in section
    # the old recipe (no running normaliser: every protocol alike) and the shipped ones, measured under each;
    # "new" (20 epochs) was measured before the protocols existed, on another machine, mixed only
    shown = recipes(SUMMARY)
    assert generalisation.DEFAULT_STUDENT.name in shown and generalisation.SHIPPED_TEACHER in shown
    for name in shown if path == "README.md" else (MAIN[0], MAIN[-1]):
        assert f"| **{name}** | **worst** |" in protocols, name


def test_docs_results_show_every_ablation_per_corpus_and_under_each_protocol():
    section = results_section("docs/results.md")
    ablations = generalisation.markdown(SUMMARY, ABLATIONS)
    assert ablations in section
    assert all(f"| **{name}** | mean of 4 |" in ablations for name in ABLATIONS)
    assert generalisation.per_protocol_markdown(SUMMARY, generalisation.protocol_recipes(SUMMARY)) in section


def test_docs_results_show_the_models_through_every_channel_with_the_worst_last():
    """The shipped student's and teacher's left-out corpora heard through each channel (README
    quotes both), rendered from the JSON; a recipe's worst row is its lowest per metric over the
    channels and the clean clips."""
    heard = [r for r in SUMMARY if "channels" in SUMMARY[r]]
    assert MAIN[-1] in heard and generalisation.SHIPPED_TEACHER in heard
    table = generalisation.channel_markdown(SUMMARY, heard)
    assert table in results_section("docs/results.md")
    for name in heard:
        channels = SUMMARY[name]["channels"]
        assert set(channels) == {"as recorded", *generalisation.CHANNEL_NAMES}
        lowest = [min(generalisation.worst(p)[k] for p in channels.values()) for k in range(4)]
        assert f"| **{name}** | **worst** | " + " | ".join(f"**{m:.3f}**" for m in lowest) in table


def test_the_shipped_student_beats_the_old_recipe_on_valence_under_every_protocol():
    """What README claims of the table, under each protocol: valence above the old recipe's beyond
    both rows' seed spreads; dominance above it; activation not below it by more than the spreads."""
    old = generalisation.with_protocols(MAIN[0], SUMMARY[MAIN[0]])
    shipped = generalisation.with_protocols(MAIN[-1], SUMMARY[MAIN[-1]])
    for protocol in generalisation.PROTOCOLS:
        (o, o_std), (n, n_std) = ((p[protocol]["mean_over_corpora"], p[protocol]["mean_over_corpora_std"])
                                  for p in (old, shipped))
        assert n[1] - n_std[1] > o[1] + o_std[1], protocol
        assert n[2] > o[2], protocol
        assert n[0] >= o[0] - o_std[0] - n_std[0], protocol


def test_the_worst_protocol_is_the_lowest_mean_per_metric():
    protocols = {"clip": {"mean_over_corpora": [0.5, 0.1, 0.4, 0.3]},
                 "sustained": {"mean_over_corpora": [0.3, 0.2, 0.5, 0.2]},
                 "mixed": {"mean_over_corpora": [0.6, 0.3, 0.2, 0.4]}}
    assert generalisation.worst(protocols) == [0.3, 0.1, 0.2, 0.2]


def test_a_stored_row_without_stream_normalisation_holds_under_every_protocol_and_one_with_it_does_not():
    old = generalisation.with_protocols("old", {k: v for k, v in SUMMARY["old"].items() if k != "protocols"})
    assert set(old) == set(generalisation.PROTOCOLS)
    new = generalisation.with_protocols("new", {k: v for k, v in SUMMARY["new"].items() if k != "protocols"})
    assert set(new) == {"mixed"}


def assert_trained_with(config: dict, recipe: generalisation.Recipe) -> None:
    """A bundle's training record is `recipe`'s, from committed code: the tables' row is this model's."""
    training = config["training"]
    trained = training["config"]
    benchmarked = recipe.config(seed=trained["seed"])
    for key in ("arch", "multitask", "epochs", "patience", "stream_norm", "balance_corpora", "use_views",
                "session_channels", "epoch_clips", "dropout"):
        # a record from before a field existed was trained with that field's default
        assert trained.get(key, getattr(TrainConfig(), key)) == getattr(benchmarked, key), key
    assert training["features"] == recipe.features and training["classes"] == recipe.classes
    assert training["views"] == (generalisation.VIEWS if recipe.views else 0)
    assert not training["versions"]["emolive_commit"].endswith("+dirty"), "trained from committed code"


def test_the_default_bundle_carries_the_row_of_the_recipe_it_was_trained_with():
    attached = DEFAULT["metrics"]["leave_one_corpus_out"]
    recipe = generalisation.RECIPES[attached["recipe"]]
    assert attached["results"] == json.loads(json_text(SUMMARY[recipe.name]))  # a NaN as the bundle writes it: null
    assert_trained_with(DEFAULT, recipe)


def test_the_default_bundle_records_the_teachers_of_its_recipe():
    """Each corpus taught by a teacher of the shipped teacher's recipe (its Whisper layers and weights)
    with the weight and dimensions of the row the bundle carries."""
    distillation, recipe = DEFAULT["training"]["distillation"], generalisation.DEFAULT_STUDENT
    assert distillation["avd_weight"] == recipe.distil_avd and tuple(distillation["avd_dims"]) == recipe.distil_avd_dims
    assert sorted(c for t in distillation["teachers"] for c in t["taught"]) == sorted(generalisation.CORPORA)
    for teacher in distillation["teachers"]:
        assert teacher["streams"] == TEACHER["hyperparameters"]["streams"]


@pytest.mark.parametrize("bundle", ["student", "teacher"])
def test_the_shipped_bundles_config_is_strict_json(bundle):
    """training.md: every JSON file a run writes is read by JavaScript's JSON.parse; the default student's
    config.json had 176 bare NaN (BAVED's unmeasurable valence), written by scripts/attach-results.py."""
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    json.loads((REPO / "plugins" / bundle / "default" / "config.json").read_text(), parse_constant=refuse)


def test_the_default_bundles_teachers_learned_none_of_the_clips_it_holds_out():
    """Its in-corpus rows are held out only if no teacher learned those speakers either: the cross-fitted
    teachers had drawn splits of their own and learned 15-22 of its 32 held-out speakers."""
    teachers = DEFAULT["training"]["distillation"]["teachers"]
    assert len(teachers) == len(generalisation.CORPORA) and all(t["learned_held_out"] == 0 for t in teachers)


def test_the_shipped_teacher_is_the_teacher_row_of_readme():
    """README and docs/teachers.md give SHIPPED_TEACHER's leave-one-corpus-out row for `--model teacher`."""
    assert generalisation.SHIPPED_TEACHER in generalisation.headline_recipes(SUMMARY)
    assert_trained_with(TEACHER, generalisation.RECIPES[generalisation.SHIPPED_TEACHER])


def in_corpus_row() -> str:
    """README's in-corpus row: the default bundle's scores on its split's held-out test speakers."""
    test = DEFAULT["metrics"]["test"]["test"]
    ccc = test["ccc"]
    return (f"| default student, held-out test speakers of the four corpora | {test['n']} | "
            f"{ccc['activation']:.3f} | {ccc['valence']:.3f} | {ccc['dominance']:.3f} | {test['uar']:.3f} |")


def test_readme_shows_the_default_bundles_own_in_corpus_scores():
    assert in_corpus_row() in results_section("README.md")


def test_a_table_from_no_saved_runs_is_an_error_naming_the_folder(tmp_path, monkeypatch, capsys):
    """`--table-only` over an empty or mistyped --out had printed an empty table and exited 0."""
    monkeypatch.setattr(sys, "argv", ["generalisation.py", "--table-only", "--out", str(tmp_path / "none")])
    with pytest.raises(SystemExit, match=f"no saved runs of the .* under {tmp_path / 'none'}"):
        generalisation.main()
    assert capsys.readouterr().out == ""


def test_a_benchmark_run_replaces_the_rows_it_measured_and_keeps_the_others_in_recipe_order():
    stored = {"new - stream norm": {"seeds": [0]}, "old": {"seeds": [0, 1, 2]}, "new": {"seeds": [0, 1, 2]}}
    measured = {"new": {"seeds": [0]}}
    rows = generalisation.merged(stored, measured)
    assert list(rows) == ["old", "new", "new - stream norm"]  # RECIPES order, not the stored file's
    assert rows["new"] == {"seeds": [0]} and rows["old"] == stored["old"]


def test_a_row_shows_a_spread_over_seeds_only_when_it_has_more_than_one_seed():
    one, three = ({**SUMMARY["new, 40 epochs"], "seeds": seeds} for seeds in ([0], [0, 1, 2]))
    single, several = (generalisation.markdown({"r": row}, ["r"]).splitlines()[2:] for row in (one, three))
    assert all("±" not in line for line in single)  # the std of one value is 0, not a measured spread
    for line in several:
        scores = line.split("|")[3:7]  # act, val, dom, UAR
        assert line.count("±") == sum(cell.strip() != "-" for cell in scores), line


def test_write_tables_fills_the_markers_a_file_has_and_refuses_a_file_with_none(tmp_path):
    doc, bare = tmp_path / "doc.md", tmp_path / "bare.md"
    doc.write_text("intro\n<!-- generalisation:ablation-means -->\nstale\n<!-- /generalisation -->\nend\n")
    bare.write_text("no markers here\n")
    generalisation.write_tables([doc], SUMMARY)
    expected = generalisation.markdown(SUMMARY, ABLATIONS, per_corpus=False)
    assert doc.read_text() == f"intro\n<!-- generalisation:ablation-means -->\n{expected}\n<!-- /generalisation -->\nend\n"
    with pytest.raises(SystemExit, match="no <!-- generalisation:KEY --> marker"):
        generalisation.write_tables([bare], SUMMARY)
    assert bare.read_text() == "no markers here\n"


@pytest.mark.parametrize(("flags", "simd"), [("fpu sse4_2 avx avx2 avx512f", "avx512f"), ("fpu sse4_2 avx avx2", "avx2")])
def test_a_rows_cpu_tells_apart_machines_of_one_name_by_family_model_and_vector_width(tmp_path, flags, simd):
    """Two machines both named "AMD EPYC" trained the same recipe and seed to different valence (0.168
    and 0.203 on EmoDB left out): the stored `cpu` must say which one measured a row."""
    import _common

    cpuinfo = tmp_path / "cpuinfo"
    block = f"processor\t: 0\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\nflags\t\t: {flags}\n"
    cpuinfo.write_text(block + "\n" + block.replace("processor\t: 0", "processor\t: 1"))
    assert _common.cpu_model(cpuinfo) == f"AMD EPYC (family 25, model 17, {simd})"
    assert _common.cpu_model(tmp_path / "absent") == (platform.processor() or platform.machine())
