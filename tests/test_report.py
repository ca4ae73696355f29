"""`trainer report` end to end: two small bundles trained on a shared-corpus subset, every file
written and readable, and the report's table equal to `trainer evaluate --json`."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import emolive

from tests.test_trainer import subset_manifest
from emolive.trainer.cli import main as trainer_main
from emolive.trainer.data import read_manifest, read_splits
from emolive.trainer.report.analysis import interval_counts, interval_rmse

DIMS = {"act": "activation", "val": "valence", "dom": "dominance"}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Train and evaluate on one torch thread: on a shared 2-core machine two were many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, one_thread):
    """A GRU without class head and a TCGRU+MTL, one epoch each on a tenth of both corpora."""
    tmp = tmp_path_factory.mktemp("report")
    data = [subset_manifest(tmp, corpus, every=10) for corpus in ("emodb", "ravdess")]
    # features are keyed by audio hash and front-end config, so a warm shared cache can only be right
    cache = Path(os.environ["EMOLIVE_CACHE"]) / "features" if "EMOLIVE_CACHE" in os.environ else tmp / "cache"
    common = [*sum((["--data", str(m)] for m in data), []), "--cache", str(cache), "--epochs", "1", "--patience", "1",
              "--epoch-clips", "0", "--test-frac", "0.2"]
    out = {}
    for name, extra in (("gru-nomtl", ["--arch", "gru", "--no-multitask"]), ("tcgru-mtl", ["--arch", "tcgru"])):
        out[name] = tmp / name
        assert trainer_main(["train", *common, *extra, "--out", str(out[name])]) == 0
    return data, cache, out


@pytest.fixture(scope="module")
def report(bundles):
    data, cache, models = bundles
    out = models["gru-nomtl"].parent / "out"
    argv = ["report", *sum((["--model", str(p)] for p in models.values()), []),
            *sum((["--data", str(m)] for m in data), []), "--cache", str(cache),
            "--splits", str(models["gru-nomtl"] / "splits.csv"), "--split", "test", "--out", str(out)]
    assert trainer_main(argv) == 0
    return out


def results_table(markdown: str) -> dict[str, dict[str, str]]:
    """The Results table: model label -> {"<data> <act|val|dom|UAR>": cell}."""
    section = markdown.split("## Results", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    header, rows = cells[0], cells[2:]
    return {row[0]: dict(zip(header[1:], row[1:])) for row in rows}


def evaluate_json(model, data, cache, splits, capsys) -> dict:
    capsys.readouterr()
    rc = trainer_main(["evaluate", "--model", str(model), *sum((["--data", str(m)] for m in data), []),
                       "--cache", str(cache), "--splits", str(splits), "--split", "test", "--json"])
    assert rc == 0
    return json.loads(capsys.readouterr().out)


def test_report_writes_every_file_as_a_readable_small_png(report):
    names = {p.name for p in report.iterdir()}
    expected = {"report.md", "report.html", "map_valence.png", "map_activation.png", "map_class.png", "map_corpus.png",
                "rmse_by_interval.png", "scatter_1-gru-nomtl.png", "scatter_2-tcgru-mtl.png",
                "confusion_2-tcgru-mtl.png"}
    assert names == expected  # the GRU has no class head, so no confusion matrix of its own
    markdown = (report / "report.md").read_text()
    html = (report / "report.html").read_text()
    for png in sorted(report.glob("*.png")):
        with Image.open(png) as img:
            img.verify()
            assert img.format == "PNG"
            width, height = img.size
        assert 400 <= width <= 1600 and 250 <= height <= 1000, (png.name, img.size)
        assert png.stat().st_size < 250_000, png.name
        assert f"]({png.name})" in markdown
    assert html.count("data:image/png;base64,") == len(list(report.glob("*.png")))
    assert "gru-nomtl: no class head" in markdown
    # the kept epoch as config.json and history.csv number it (the report said one more)
    assert "| kept epoch 0 of epochs 0-0 |" in markdown


def test_report_numbers_equal_trainer_evaluate(bundles, report, capsys):
    data, cache, models = bundles
    markdown = (report / "report.md").read_text()
    table = results_table(markdown)
    splits = models["gru-nomtl"] / "splits.csv"
    groups = {"emodb": data[:1], "ravdess": data[1:], "all": data}
    assert {key.split()[0] for key in table["tcgru-mtl"]} == set(groups)
    for label, path in models.items():
        for group, manifests in groups.items():
            expected = evaluate_json(path, manifests, cache, splits, capsys)
            for short, dim in DIMS.items():
                # the table prints 3 decimals (rounding error <= 5e-4, plus float64 noise at the half-way
                # point); the two evaluations run the same models on the same machine, so only that printing
                # differs. The interval is printed with 2 decimals: <= 5e-3.
                value, interval = table[label][f"{group} {short}"].split(" ", 1)
                assert float(value) == pytest.approx(expected["ccc"][dim], abs=5.01e-4)
                low, high = (float(v) for v in interval.strip("[]").split(","))
                assert [low, high] == pytest.approx(expected["ccc_ci95"][dim], abs=5.01e-3)
                assert low <= float(value) + 5.01e-3 and float(value) - 5.01e-3 <= high
            uar = table[label][f"{group} UAR"]
            assert (uar == "-") if expected["uar"] is None else float(uar) == pytest.approx(expected["uar"], abs=5e-4)
    n = sum(int(re.search(rf"\| {g} \| .*? \| (\d+) \|", markdown).group(1)) for g in ("emodb", "ravdess"))
    assert f"on {n} utterances, split `test`" in markdown and "on the clips none of the models learned" in markdown
    assert "`trainer evaluate --protocol mixed --json`" in markdown  # the protocol it scored under, named
    assert "trainer report --model" in markdown and "--split test" in markdown


def test_pca_report_and_help(bundles, tmp_path, capsys):
    """Also: the report scored under the mixed protocol only, and never said so; --protocol chooses, as
    evaluate's does, and the numbers are evaluate's under it."""
    data, cache, models = bundles
    rc = trainer_main(["report", "--model", str(models["tcgru-mtl"]), "--data", str(data[1]), "--cache", str(cache),
                       "--out", str(tmp_path), "--pca", "--protocol", "clip"])
    assert rc == 0
    markdown = (tmp_path / "report.md").read_text()
    capsys.readouterr()
    assert trainer_main(["evaluate", "--model", str(models["tcgru-mtl"]), "--data", str(data[1]), "--cache",
                         str(cache), "--protocol", "clip", "--json"]) == 0
    valence = json.loads(capsys.readouterr().out)["ccc"]["valence"]
    cell = results_table(markdown)["tcgru-mtl"]["ravdess val"].split()[0]
    assert "--protocol clip" in markdown and float(cell) == pytest.approx(valence, abs=5.01e-4)  # printed to 3 places
    assert "PCA of each model" in markdown
    # without --split every clip is scored, learned ones too: it had said "on the clips none of the models learned"
    learned = sum(u.split in ("train", "val") for u in read_splits(models["tcgru-mtl"] / "splits.csv",
                                                                     read_manifest(data[1])))
    assert learned and f"on every clip, {learned} of them in a model's or the data's train or validation " \
        "split: `--split test` leaves those out" in markdown and "none of the models learned" not in markdown
    proc = subprocess.run([sys.executable, "-m", "emolive.trainer.cli", "report", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "--tsne" in proc.stdout and "--pca" in proc.stdout


def test_a_report_over_another_counts_each_clip_once_says_what_it_learned_and_keeps_no_stale_figure(
        bundles, tmp_path, capsys):
    """Written over a two-model report, a one-model one kept the other model's figures; one manifest given
    twice (or in two folders) was scored twice, the bootstrap taking the copies for other speakers; and
    clips the model learned from were scored without the warning `trainer evaluate` gives."""
    data, cache, models = bundles
    out = tmp_path / "report"
    both = ["report", *sum((["--model", str(p)] for p in models.values()), []), "--data", str(data[1]),
            "--cache", str(cache), "--out", str(out), "--pca"]
    assert trainer_main(both) == 0
    (out / "notes.txt").write_text("mine")
    drawn_before = {p.name for p in out.glob("scatter_*.png")}
    capsys.readouterr()
    assert trainer_main(["report", "--model", str(models["tcgru-mtl"]), "--data", str(data[1]), "--data",
                         str(data[1]), "--cache", str(cache), "--out", str(out), "--pca"]) == 0
    scatters = {p.name for p in out.glob("scatter_*.png")}
    assert len(drawn_before) == 2 and len(scatters) == 1 and (out / "notes.txt").read_text() == "mine"
    said = capsys.readouterr()
    assert f"on {len(read_manifest(data[1]))} utterances" in said.out  # once, not twice
    assert "were in this model's training or validation split" in said.err


def test_interval_rmse_per_label_interval():
    true = np.array([1.0, 1.5, 2.0, 6.5, 7.0])
    pred = np.array([2.0, 1.5, 4.0, 6.5, 4.0])
    rmse, counts = interval_rmse(pred, true)
    assert counts.tolist() == [2, 1, 0, 0, 0, 2]  # 2.0 opens [2, 3); 7.0 closes the last interval
    assert rmse[0] == pytest.approx(np.sqrt(0.5)) and rmse[1] == pytest.approx(2.0)
    assert np.isnan(rmse[2]) and rmse[5] == pytest.approx(np.sqrt(4.5))
    assert interval_counts(true).tolist() == counts.tolist()
    # a clip without this rating (NaN, as an emotion the VAD map lacks leaves it) is in no interval:
    # np.digitize alone put it in the top one, whose error became NaN
    unrated = interval_rmse(np.append(pred, 5.0), np.append(true, np.nan))
    assert unrated[1].tolist() == counts.tolist() and unrated[0][5] == pytest.approx(np.sqrt(4.5))
    assert interval_counts(np.append(true, np.nan)).tolist() == counts.tolist()


def test_split_test_without_splits_uses_the_models_own_split_as_evaluate_does(tmp_path, caplog):
    """`trainer report --split test` with no --splits: the model's bundle splits.csv decides,
    speakers it never saw count as test, exactly `trainer evaluate`'s held-out clips; with a second
    model, a speaker either one learned is not held out (the first model's split alone decided, so
    the second was scored on its own validation speaker beside the first)."""
    from emolive.plugins.student import DEFAULT_BUNDLE
    from emolive.trainer.history import bundle_splits
    from emolive.trainer.data.splits import held_out_splits
    from emolive.trainer.pipeline import by_split, load_utterances
    from emolive.trainer.report.build import load_sources
    from tests.test_trainer import subset_manifest

    manifest = str(subset_manifest(tmp_path, "emodb", every=10))
    own = bundle_splits(emolive.load_model("student"))
    assert own == DEFAULT_BUNDLE / "splits.csv"
    sources = load_sources([manifest], [], None, "test", [own])
    expected = by_split(held_out_splits(own, load_utterances([manifest]), warn=False), "test")
    assert [u.path for u in sources[0].utts] == [u.path for u in expected] and expected
    assert len(expected) < len(load_utterances([manifest]))  # the student trained on some of these speakers
    other = tmp_path / "other" / "splits.csv"  # a second model that learned one of those test speakers
    other.parent.mkdir()
    other.write_text(f"speaker,split\n{expected[0].speaker},val\n")
    both = load_sources([manifest], [], None, "test", [own, other])
    assert [u.path for u in both[0].utts] == [u.path for u in expected if u.speaker != expected[0].speaker]
    # said: the report had claimed each model's numbers were evaluate's, on fewer clips without a word
    assert (f"the report scores {len(both[0].utts)} clips of split 'test', `trainer evaluate` of each model alone "
            f"{len(expected)}, ") in caplog.text
    for splits in ([own, other], [other, own]):  # either order
        assert len(load_sources([manifest], [], None, "test", splits)[0].utts) == len(both[0].utts)


@pytest.mark.parametrize(("out", "option"), [("{file}", "--out"), ("{file}/report", "--out"),
                                             ("{tmp}/report", "--cache")])
def test_a_report_or_cache_folder_that_cannot_be_written_is_one_line_before_any_work(tmp_path, out, option, capsys):
    """An existing file as --out, a path under one, or such a --cache was a traceback from a mkdir; now
    one line names the option before a model is loaded or a clip read, and nothing is made."""
    afile = tmp_path / "afile"
    afile.write_text("mine")
    argv = ["report", "--data", str(tmp_path / "not-read.csv"), "--out", out.format(file=afile, tmp=tmp_path)]
    argv += ["--cache", f"{afile}/cache"] if option == "--cache" else []
    assert trainer_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"trainer report: error: {option} " in err and f"{afile} is not a folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"] and afile.read_text() == "mine"


def test_a_map_says_how_many_utterances_it_cannot_colour():
    """Utterances without the dimension's label have no colour and no point: BAVED's map of valence showed
    24 of 34 utterances and said nothing of the other 10."""
    from emolive.trainer.report.figures import embedding_maps

    xy = np.random.default_rng(0).standard_normal((34, 2))
    values = np.full(34, 4.0)
    values[:10] = np.nan
    fig = embedding_maps([("a model", xy)], values, "valence", "pca")
    assert "(10 of 34 utterances without a valence label are not shown)" in fig._suptitle.get_text()
    labelled = embedding_maps([("a model", xy)], np.full(34, 4.0), "valence", "pca")
    assert "not shown" not in labelled._suptitle.get_text()
