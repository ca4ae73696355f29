"""How the models hold up when only the channel changes: the same clips and labels through a
telephone line, an 8 kHz recorder, pink noise at 10 dB, a 0.6 s room or a 20 dB quieter
microphone (trainer.data.channels), beside the clean clips.

Data: the default student's held-out test speakers of the four shared corpora (705 clips; the
teacher was trained on the same split), copied once through each channel under --work. Each model
is scored as `trainer evaluate --split test --protocol P` scores it, under the clip protocol (each
file alone, as `emolive score` hears it) and the mixed one (a speaker's clips as one session: the
running normaliser has heard the channel for a while); a model without the normaliser scores the
same under both and is shown once. Every CCC and UAR is printed with its share of the same model's
clean figure, and each model's worst channel and protocol last (the headline).
Run: .venv/bin/python benchmarks/channels.py [--models student teacher PATH LABEL=PATH,PATH ...] [--json FILE]
"""
from __future__ import annotations

from _common import REPO, SHARED, cell, cpu_model, print_table  # first: one thread for every library

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from emolive.engine.plugin import ModelPlugin, load_model
from emolive.trainer.data import Utterance
from emolive.trainer.data.channels import CHANNELS, write_channel_copy
from emolive.trainer.evaluate import metrics, predict_utterances
from emolive.trainer.metrics import DIMENSIONS
from emolive.trainer.pipeline import DEFAULT_CACHE, load_utterances

CORPORA = ("emodb", "ravdess", "ased", "baved")
SPLITS = REPO / "plugins" / "student" / "default" / "splits.csv"
PROTOCOLS = ("clip", "mixed")


def test_speakers() -> set[str]:
    """The namespaced speakers ("emodb/03") of the default split's test part."""
    with open(SPLITS, newline="") as f:
        return {row["speaker"] for row in csv.DictReader(f) if row["split"] == "test"}


def channel_clips(channel: str, work: Path) -> list[Utterance]:
    """The test speakers' clips of every corpus through `channel` (copied on first use)."""
    speakers = test_speakers()
    return load_utterances([str(write_channel_copy(SHARED / "corpora" / c / "manifest.csv", channel, work / channel / c,
                                                   keep=lambda row, c=c: f"{c}/{row['speaker']}" in speakers))
                            for c in CORPORA])


def scores(plugin: ModelPlugin, utts: list[Utterance], protocol: str) -> dict:
    """CCC per dimension and UAR of `plugin` on `utts` under `protocol`."""
    out = predict_utterances(plugin, utts, DEFAULT_CACHE, progress=False, protocol=protocol)
    m = metrics(plugin, utts, out)
    return {**{d: m["ccc"][d] for d in DIMENSIONS}, "uar": m["uar"]}


METRICS = (*DIMENSIONS, "uar")


def model_specs(values: list[str]) -> dict[str, list[str]]:
    """--models: each a name or a bundle path, or LABEL=PATH,PATH,... (seeds of one recipe)."""
    return {v.split("=", 1)[0]: v.split("=", 1)[1].split(",") if "=" in v else [v] for v in values}


def measured(paths: list[str], clips: dict[str, list[Utterance]]) -> dict[str, dict[str, dict[str, list]]]:
    """protocol -> channel -> metric -> one value per bundle in `paths`; a model without the
    running normaliser hears every protocol alike, so it is scored once, as "any"."""
    plugins = [load_model(p) for p in paths]
    protocols = PROTOCOLS if plugins[0].meta.stream_normalisation is not None else ("any",)
    out: dict = {}
    for protocol in protocols:
        out[protocol] = {}
        for channel, data in clips.items():
            runs = [scores(plugin, data, "mixed" if protocol == "any" else protocol) for plugin in plugins]
            out[protocol][channel] = {k: [r[k] for r in runs] for k in METRICS}
    return out


def seed_cell(values: list, clean: list | None = None) -> str:
    """Mean (± std over seeds, where there are several), and its share of the clean mean when
    `clean` is given."""
    if any(v is None for v in values):
        return "-"
    text = cell(values) if len(values) > 1 else f"{values[0]:.3f}"
    return text + (f" ({np.mean(values) / np.mean(clean):.2f})" if clean else "")


def worst_protocol_rows(label: str, by_protocol: dict) -> list[list[str]]:
    """Per channel the lowest seed mean of each metric over the protocols, then the lowest over
    the channels (the model's headline row)."""
    rows, lows = [], []
    for channel in next(iter(by_protocol.values())):
        options = [min(((np.mean(by_protocol[p][channel][k]), by_protocol[p][channel][k]) for p in by_protocol),
                       key=lambda t: t[0]) for k in METRICS]
        lows.append([mean for mean, _ in options])
        rows.append([label, "as recorded" if channel == "clean" else channel] + [seed_cell(v) for _, v in options])
    return rows + [[f"**{label}**", "**worst**"] + [f"**{m:.3f}**" for m in np.min(lows, axis=0)]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["student", "teacher"],
                    help="model names or bundle paths, or LABEL=PATH,PATH,... for seeds of one recipe")
    ap.add_argument("--channels", nargs="+", default=list(CHANNELS), choices=list(CHANNELS))
    ap.add_argument("--work", type=Path, default=DEFAULT_CACHE.parent / "channels" / "test-speakers",
                    help="the channel copies")
    ap.add_argument("--json", type=Path, default=None, help="also write every score here")
    args = ap.parse_args()
    channels = ["clean"] + [c for c in args.channels if c != "clean"]
    clips = {c: channel_clips(c, args.work) for c in channels}
    results = {label: measured(paths, clips) for label, paths in model_specs(args.models).items()}
    rows = [[label, c, protocol] + [seed_cell(by_channel[c][k], by_channel["clean"][k]) for k in METRICS]
            for label, by_protocol in results.items() for protocol, by_channel in by_protocol.items() for c in channels]
    print(f"{len(clips['clean'])} clips of the default split's test speakers, {cpu_model()}; mean (± std over seeds) "
          "(share of the model's clean figure)")
    print_table(["model", "channel", "protocol", "act", "val", "dom", "UAR"], rows)
    print("\nthe worst protocol per channel, and the worst channel (the headline):")
    print_table(["model", "heard through", "act", "val", "dom", "UAR"],
                [row for label, by_protocol in results.items() for row in worst_protocol_rows(label, by_protocol)])
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_model(), "scores": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
