"""`trainer report`: predict with each model once, score, map, draw, and write report.md/.html."""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from emolive.engine.console import bar_disabled
from emolive.engine.plugin import ModelPlugin, registered_models
from emolive.engine.table_names import shell_text, table_text
from emolive.trainer.data import read_splits
from emolive.trainer.data.splits import LEARNING, held_out_splits, only_split
from emolive.trainer.evaluate import class_targets, metrics, predict_utterances
from emolive.trainer.metrics import DIMENSIONS
from emolive.trainer.pipeline import by_split, load_utterances
from emolive.trainer.report import analysis, figures
from emolive.trainer.report.document import report_document
from emolive.trainer.report.html import write_html
from emolive.trainer.report.markdown import write_markdown
from emolive.trainer.report.results import POOLED, ModelResult, Report, Source
from emolive.trainer.sessions import DEFAULT_PROTOCOL
from emolive.trainer.errors import TrainerError

log = logging.getLogger(__name__)


def load_sources(manifests: list[str], msp_roots: list[str], splits_csv: str | None,
                 split: str | None, model_splits: Sequence[Path] = ()) -> list[Source]:
    """Each data argument's utterances, split as `trainer evaluate` splits them: by `splits_csv` or the
    data's own splits, and a clip any of the models learned (`model_splits`: each one's splits.csv) is
    not held out, so the models are compared on speakers and clips none of them heard."""
    # pooled first, as `trainer evaluate` pools them: a clip in two sources is refused or counted once (the
    # report had scored it twice, and the bootstrap taken its copies for two speakers)
    unclaimed = {u.path for u in load_utterances(manifests, msp_roots)}
    given = []
    each = [(m, load_utterances([m])) for m in manifests] + [(r, load_utterances([], [r])) for r in msp_roots]
    for spec, utts in each:
        given.append((spec, [u for u in utts if u.path in unclaimed]))  # each clip with the first source that has it
        unclaimed -= {u.path for u in given[-1][1]}
    names = _unique([Path(spec).resolve().parent.name if spec in manifests else Path(spec).name
                     for spec, _ in given], [spec for spec, _ in given])
    sources, listed = [], []
    for name, (spec, utts) in zip(names, given):
        if splits_csv:
            utts = read_splits(splits_csv, utts)
        listed += utts
        # each model's marking of the same clips (said, as `trainer evaluate` says it: the report had scored them
        # in silence); a clip one of them learned takes that split, so no later model's record holds it out again
        marked = [held_out_splits(learned, utts, warn=not split) for learned in model_splits]
        utts = [next((u for u in each if u.split in LEARNING), each[0]) for each in zip(*marked)] if marked else utts
        sources.append(Source(name, spec, utts))
    if split:
        only_split([u for s in sources for u in s.utts], split)  # where no source has one: the splits there are
        sources = [Source(s.name, s.spec, by_split(s.utts, split)) for s in sources]
        scored = sum(len(s.utts) for s in sources)
        alone = [len(by_split(held_out_splits(m, listed, warn=False), split)) for m in model_splits]
        if len(model_splits) > 1 and max(alone) > scored:  # it scored fewer clips than evaluate, in silence
            log.warning("the report scores %d clips of split %r, `trainer evaluate` of each model alone %s: a clip "
                        "one of the models learned is left out for every model, so all are compared on the same "
                        "clips", scored, split, ", ".join(map(str, alone)))
    if not any(s.utts for s in sources):
        raise TrainerError("no utterances in the data")
    return sources


def _unique(short: list[str], full: list[str]) -> list[str]:
    """Short names where they are unique, the full spelling where two would collide."""
    return [s if short.count(s) == 1 and s != POOLED else f for s, f in zip(short, full)]


def command_line(args, models: list[str]) -> str:
    """The `trainer report` command that rewrites this report, every option spelled out in one order."""
    pairs = [("--model", m) for m in models] + [("--data", d) for d in args.data]
    pairs += [("--msp-podcast", r) for r in args.msp_podcast]
    pairs += [(f"--{k}", v) for k, v in (("split", args.split), ("splits", args.splits), ("cache", args.cache),
                                          ("protocol", args.protocol)) if v]
    return shell_text(["trainer", "report", *(x for pair in pairs for x in pair), "--out", args.out, f"--{args.map}"])


def build_report(model_specs: list[str], plugins: list[ModelPlugin], sources: list[Source], out_dir: str | Path,
                 cache_root, method: str = "tsne", split: str | None = None, splits_csv: str | None = None,
                 command: str = "", protocol: str = DEFAULT_PROTOCOL) -> Report:
    """Run every step with one progress bar and write the report into `out_dir`; `plugins` are the
    models `model_specs` name, loaded by the caller; clips form sessions by `protocol` (trainer.sessions)."""
    start = time.perf_counter()
    out = Path(out_dir)
    true = np.array([u.avd for s in sources for u in s.utts])
    # a folder's name as tables write it (engine.table_names): matplotlib refuses a name that is not UTF-8
    labels = _unique([s if s in registered_models() else table_text(Path(s).name) for s in model_specs], model_specs)
    steps = 2 * len(model_specs) + 2
    with tqdm(total=steps, desc="report", unit="step", disable=bar_disabled(True)) as bar, _one_thread():
        models = []
        for spec, label, plugin in zip(model_specs, labels, plugins):
            bar.set_postfix_str(f"predict {label}")
            models.append(_score(spec, label, plugin, sources, cache_root, protocol))
            bar.update()
            bar.set_postfix_str(f"{method} {label}")
            models[-1].coords = analysis.embedding_map(models[-1].predictions["embedding"], method)
            bar.update()
        counts = np.stack([analysis.interval_counts(true[:, d]) for d in range(3)])
        report = Report(command, sources, split, splits_csv, method, models, counts, protocol)
        bar.set_postfix_str("figures")
        out.mkdir(parents=True, exist_ok=True)  # only now: a refused report (too few clips for a map) left it empty
        _draw(report, true, out)
        bar.update()
        bar.set_postfix_str("report.md, report.html")
        report.seconds = time.perf_counter() - start
        blocks = report_document(report)
        write_markdown(blocks, out / "report.md")
        write_html(blocks, out / "report.html", out)
        _remove_stale_figures(out, report)
        bar.update()
    return report


def _remove_stale_figures(out: Path, report: Report) -> None:
    """A report written over an earlier one kept that one's figures of models it no longer has: the
    figures of a report's naming that this report did not draw go (no other file of the folder)."""
    drawn = {*report.figures.values(), *(name for m in report.models for name in m.figures.values())}
    for path in out.glob("*.png"):
        if FIGURE_NAME.fullmatch(path.name) and path.name not in drawn:
            path.unlink(missing_ok=True)


@contextmanager
def _one_thread():
    """One compute thread for torch and OpenMP while the report runs.

    With other jobs on a 2-core machine (load average ~4.5), two threads made GRU inference 30x
    slower (493 utterances: 35 s against 1.1 s) and t-SNE 6x slower (28 s against 4 s): each step
    waits for a sibling thread that is not running.
    """
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(threads)


def _score(spec: str, label: str, plugin: ModelPlugin, sources: list[Source], cache_root,
           protocol: str) -> ModelResult:
    """Predict once on every utterance; metrics per source and pooled, exactly as `trainer evaluate`."""
    utts = [u for s in sources for u in s.utts]
    pred = predict_utterances(plugin, utts, cache_root, progress=False, protocol=protocol)
    meta = plugin.meta
    result = ModelResult(spec, label, plugin.name, getattr(plugin, "path", None), meta.architecture,
                         tuple(meta.class_names), plugin.size_bytes(), meta.trained_on,
                         _training_note(meta.training), pred)
    start = 0
    for s in sources:
        if s.utts:
            part = slice(start, start + len(s.utts))
            result.scores[s.name] = metrics(plugin, s.utts, {k: v[part] for k, v in pred.items()})
        start += len(s.utts)
    if len(result.scores) > 1:
        result.scores[POOLED] = metrics(plugin, utts, pred)
    true = np.array([u.avd for u in utts])
    result.rmse = np.stack([analysis.interval_rmse(pred["avd"][:, d], true[:, d])[0] for d in range(3)])
    known, truth = class_targets(plugin, utts)
    if known.any():
        full = analysis.confusion(truth, pred["class_probs"][known].argmax(1), len(meta.class_names))
        present = full.sum(1) > 0
        result.confusion, result.confusion_rows = full[present], [n for n, p in zip(meta.class_names, present) if p]
    return result


def _training_note(training: dict) -> str:
    """The epoch kept, numbered as the training log, config.json and history.csv number it (from 0):
    the report counted from 1, so its "epoch 12" was history.csv's row 11."""
    config = training.get("config")  # a bundle's record is untrusted: anything but these types says nothing
    best, most = training.get("best_epoch"), config.get("epochs") if isinstance(config, dict) else None
    return f"kept epoch {best} of epochs 0-{most - 1}" if isinstance(best, int) and isinstance(most, int) else ""


FIGURE_NAME = re.compile(r"(map_[a-z]+|rmse_by_interval|(scatter|confusion)_\d+-[A-Za-z0-9_.-]+)\.png")  # _draw's


def _draw(report: Report, true: np.ndarray, out: Path) -> None:
    panels = [(f"{m.label} ({m.architecture})", m.coords) for m in report.models]
    for dim in ("valence", "activation"):
        fig = figures.embedding_maps(panels, true[:, DIMENSIONS.index(dim)], dim, report.method)
        report.figures[f"map_{dim}"] = _save(fig, out, f"map_{dim}.png")
    emotions = [u.emotion or "unlabelled" for u in report.utterances]
    report.figures["map_class"] = _save(figures.embedding_maps_by_class(panels, emotions, report.method, "true emotion"),
                                        out, "map_class.png")
    corpora = [u.corpus for u in report.utterances]
    report.figures["map_corpus"] = _save(figures.embedding_maps_by_class(panels, corpora, report.method, "corpus"),
                                         out, "map_corpus.png")
    bars = [(m.label, m.rmse) for m in report.models]
    report.figures["rmse"] = _save(figures.rmse_by_interval(bars, report.interval_counts, analysis.interval_labels()),
                                   out, "rmse_by_interval.png")
    for i, m in enumerate(report.models, start=1):
        slug = f"{i}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', m.label)}"
        pooled = m.scores[POOLED] if POOLED in m.scores else next(iter(m.scores.values()))
        m.figures["scatter"] = _save(figures.prediction_scatter(m.label, m.predictions["avd"], true, pooled["ccc"]),
                                     out, f"scatter_{slug}.png")
        if m.confusion is not None:
            fig = figures.confusion_matrix(m.label, m.confusion, m.confusion_rows, list(m.class_names), pooled["uar"])
            m.figures["confusion"] = _save(fig, out, f"confusion_{slug}.png")


def _save(fig, out: Path, name: str) -> str:
    figures.save_png(fig, out / name)
    return name
