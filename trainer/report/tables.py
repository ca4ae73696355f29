"""The report's tables as header + rows of strings (CCC/UAR in the paper's layout, data, models, RMSE)."""
from __future__ import annotations

from pathlib import Path

from emolive.trainer.metrics import DIMENSIONS
from emolive.trainer.report import analysis
from emolive.trainer.report.blocks import Table
from emolive.trainer.report.results import POOLED, Report

SHORT = {"activation": "act", "valence": "val", "dominance": "dom"}


def ccc_table(report: Report) -> Table:
    """One row per model; per data group the CCC of act, val, dom and the UAR (paper Table 1)."""
    groups = report.groups()
    header = ["System"] + [f"{g} {col}" for g in groups for col in (*SHORT.values(), "UAR")]
    rows = []
    for m in report.models:
        row = [m.label]
        for g in groups:
            score = m.scores[g]
            row += [_ccc_cell(score, d) for d in DIMENSIONS]
            row.append("-" if score["uar"] is None else f"{score['uar']:.3f}")
        rows.append(row)
    return Table(header, rows)


def _ccc_cell(score: dict, dimension: str) -> str:
    """CCC with its 95 % interval over speakers where there is one: "0.612 [0.55, 0.66]"."""
    value = score["ccc"][dimension]
    if value is None:
        return "-"
    interval = (score.get("ccc_ci95") or {}).get(dimension)
    return f"{value:.3f}" + (f" [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else "")


def data_table(report: Report) -> Table:
    rows = [[s.name, f"`{s.spec}`", str(len(s.utts))] for s in report.sources]
    if POOLED in report.groups():
        rows.append([POOLED, "every source above", str(len(report.utterances))])
    return Table(["data", "path", "utterances"], rows)


def model_table(report: Report) -> Table:
    rows = []
    for m in report.models:
        head = f"{len(m.class_names)} classes" if m.class_names else "none"
        plugin = m.name if m.path is None or m.name != str(m.path) else "-"
        rows.append([m.label, plugin, f"`{_shown(m.path)}`" if m.path else "-", m.architecture, head,
                     f"{m.size_bytes / 1e6:.3f} MB", ", ".join(f"`{d}`" for d in m.trained_on) or "-",
                     m.training or "-"])
    return Table(["model", "plugin", "path", "architecture", "class head", "weights", "trained on", "training"], rows)


def rmse_table(report: Report) -> Table:
    """RMSE per interval for each model and dimension, with the utterance count per interval."""
    names = analysis.interval_labels()
    rows = []
    for d, dim in enumerate(DIMENSIONS):
        rows.append([dim, "n"] + [str(n) for n in report.interval_counts[d]])
        for m in report.models:
            rows.append([dim, m.label] + ["-" if n == 0 else f"{r:.2f}"
                                          for r, n in zip(m.rmse[d], report.interval_counts[d])])
    return Table(["dimension", "model"] + names, rows)


def _shown(path: Path) -> str:
    """A path inside the working directory relative to it (so a committed report reads the same anywhere)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
