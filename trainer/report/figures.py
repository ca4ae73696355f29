"""The report's pictures, drawn on matplotlib Figures without pyplot (no display, no global state).

Every function takes plain arrays and returns a Figure; `save_png` writes it small (~100 dpi,
256-colour palette). All axes on the label scale say so: "(1–7 scale)".
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from emolive.engine.schema import DIMENSIONS, SCALE

DPI = 100
SCALE_UNIT = f"{SCALE[0]:g}–{SCALE[1]:g} scale"
MAP_CMAPS = {"activation": "viridis", "valence": "coolwarm", "dominance": "cividis"}
MAP_AXES = {"tsne": "t-SNE", "pca": "PCA"}


def save_png(fig: Figure, path: Path) -> Path:
    """Write `fig` as a palette PNG (a third of the bytes of RGBA, no visible difference on plots)."""
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    with Image.open(buf) as img:
        img.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path


def _map_panels(n: int, width: float = 3.7) -> tuple[Figure, list]:
    fig = Figure(figsize=(max(width * n + 1.6, 6.4), 4.0), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    return fig, list(axes)


def _point_size(n: int) -> float:
    """Dots that stay visible for a few dozen utterances and do not merge for thousands."""
    return float(np.clip(8000 / max(n, 1), 5, 30))


def _map_axes(ax, title: str, method: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(f"{MAP_AXES[method]} 1")
    ax.set_ylabel(f"{MAP_AXES[method]} 2")
    ax.set_xticks([])
    ax.set_yticks([])


def embedding_maps(panels: list[tuple[str, np.ndarray]], values: np.ndarray, dimension: str,
                   method: str) -> Figure:
    """One 2-D map per model, points coloured by the true `dimension` label (paper Fig. 2)."""
    fig, axes = _map_panels(len(panels))
    order = np.argsort(np.abs(values - np.mean(SCALE)))  # extremes drawn last, on top of the neutral mass
    for ax, (title, xy) in zip(axes, panels):
        points = ax.scatter(xy[order, 0], xy[order, 1], c=values[order], cmap=MAP_CMAPS[dimension],
                            vmin=SCALE[0], vmax=SCALE[1], s=_point_size(len(values)), linewidths=0)
        _map_axes(ax, title, method)
    fig.colorbar(points, ax=axes, label=f"true {dimension} ({SCALE_UNIT})", shrink=0.9)
    # an utterance without the label has no colour, so no point: said (a map of 24 of 34 points said nothing)
    unlabelled = int(np.isnan(values).sum())
    missing = f"\n({unlabelled} of {len(values)} utterances without a {dimension} label are not shown)" if unlabelled \
        else ""
    fig.suptitle(f"{MAP_AXES[method]} of utterance embeddings by {dimension}{missing}")
    return fig


def embedding_maps_by_class(panels: list[tuple[str, np.ndarray]], labels: list[str], method: str,
                            what: str = "emotion") -> Figure:
    """The same maps coloured by a category of each utterance: its emotion, or its corpus (a model
    that maps corpora apart has learned recording conditions, not only emotions)."""
    fig, axes = _map_panels(len(panels))
    names = sorted(set(labels))
    colours = _category_colours(len(names))
    labels = np.asarray(labels)
    for ax, (title, xy) in zip(axes, panels):
        for name, colour in zip(names, colours):
            pick = labels == name
            ax.scatter(xy[pick, 0], xy[pick, 1], color=colour, s=_point_size(len(labels)), linewidths=0, label=name)
        _map_axes(ax, title, method)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center", title=what,
               markerscale=max(1.0, 15 / _point_size(len(labels))), frameon=False)
    fig.suptitle(f"{MAP_AXES[method]} of utterance embeddings by {what}")
    return fig


def _category_colours(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def rmse_by_interval(models: list[tuple[str, np.ndarray]], counts: np.ndarray, interval_names: list[str]) -> Figure:
    """Grouped bars: RMSE per true-label interval, one panel per dimension (paper Fig. 3).

    `models` holds (label, rmse [3 dims, intervals]); `counts` [3 dims, intervals] utterances.
    """
    fig = Figure(figsize=(12, 3.8), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, len(DIMENSIONS), sharey=True)
    x = np.arange(len(interval_names))
    width = 0.8 / len(models)
    colours = _category_colours(len(models))
    for d, (ax, dim) in enumerate(zip(axes, DIMENSIONS)):
        for m, ((label, rmse), colour) in enumerate(zip(models, colours)):
            ax.bar(x - 0.4 + width * (m + 0.5), np.nan_to_num(rmse[d]), width, color=colour, label=label)
        ax.set_xticks(x, [f"{name}\nn={n}" for name, n in zip(interval_names, counts[d])], fontsize=8)
        ax.set_xlabel(f"true {dim} interval ({SCALE_UNIT})")
        ax.set_title(dim)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("RMSE (scale points)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center", frameon=False)
    fig.suptitle("Root-mean-square error per true-label interval (n = utterances in the interval)")
    return fig


def prediction_scatter(title: str, pred: np.ndarray, true: np.ndarray, ccc: dict[str, float]) -> Figure:
    """Predicted against true label per dimension, with the identity line and the CCC."""
    fig = Figure(figsize=(11, 4.3), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, len(DIMENSIONS))
    lim = (SCALE[0] - 0.2, SCALE[1] + 0.2)
    for d, (ax, dim) in enumerate(zip(axes, DIMENSIONS)):
        ax.plot(lim, lim, color="0.5", linestyle="--", linewidth=1, label="prediction = truth")
        ax.scatter(true[:, d], pred[:, d], s=7, alpha=0.25, linewidths=0, color="C0")
        ax.set(xlim=lim, ylim=lim, xlabel=f"true {dim} ({SCALE_UNIT})", ylabel=f"predicted {dim} ({SCALE_UNIT})")
        ax.set_box_aspect(1)
        ax.set_title(f"{dim}: CCC {'-' if ccc[dim] is None else format(ccc[dim], '.3f')}", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper left", fontsize=8, frameon=False)
    fig.suptitle(f"{title}: predicted vs true (n={len(true)})")
    return fig


def confusion_matrix(title: str, counts: np.ndarray, true_names: list[str], pred_names: list[str],
                     uar: float) -> Figure:
    """Row-normalised confusion of the class head (each row sums to 100 %), with counts in the cells."""
    share = 100 * counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig = Figure(figsize=(1.9 + 0.62 * len(pred_names), 1.6 + 0.5 * len(true_names)), dpi=DPI,
                 layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=100, aspect="auto")
    for (i, j), value in np.ndenumerate(share):
        if counts[i, j]:
            ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=8,
                    color="white" if value > 60 else "black")
    ax.set_xticks(range(len(pred_names)), pred_names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(len(true_names)), [f"{n} ({c})" for n, c in zip(true_names, counts.sum(1))])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class (utterances)")
    ax.set_title(f"{title}: class head, UAR {uar:.3f}", fontsize=10)
    fig.colorbar(image, ax=ax, label="share of the true class (%)")
    return fig
