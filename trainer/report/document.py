"""The report's content as blocks, assembled once and rendered as Markdown and as HTML."""
from __future__ import annotations

from datetime import datetime, timezone

from emolive.trainer.data.splits import LEARNING
from emolive.trainer.report import tables
from emolive.trainer.report.blocks import Block, Code, Heading, Image, Text
from emolive.trainer.report.results import Report
from emolive.trainer.sessions import PROTOCOL_WORDS


def report_document(report: Report) -> list[Block]:
    method = {"tsne": "t-SNE", "pca": "PCA"}[report.method]
    split = (f"split `{report.split}`" + (f" (speakers from `{report.splits_csv}`)" if report.splits_csv else "")
             if report.split else "every utterance (no split selected)")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    blocks: list[Block] = [
        Heading("emolive model report", 1),
        Text(f"{len(report.models)} model(s) on {len(report.utterances)} utterances, {split}. "
             f"Written {when} in {report.seconds:.1f} s."),
        Code(report.command),
        Heading("Results"),
        Text("CCC per dimension (activation, valence, dominance) and class-head UAR, in the layout of "
             "the paper's Table 1: one row per system, one column group per data set. Each group's numbers "
             f"are what `trainer evaluate --protocol {report.protocol} --json` prints for that model on that data "
             f"and split ({PROTOCOL_WORDS[report.protocol]}), {scored(report)}; "
             "brackets hold the CCC's 95 % interval over speakers (bootstrap, whole speakers resampled)."),
        tables.ccc_table(report),
        Heading("Data"),
        tables.data_table(report),
        Heading("Models"),
        tables.model_table(report),
        Heading(f"Embeddings ({method})"),
        Text(f"{method} of each model's utterance embedding (the layer before the heads), one panel "
             "per model, as in the paper's Figure 2. A model that has learned a dimension places utterances "
             "with similar labels together."),
    ]
    blocks += [Image(report.figures[k], f"{method} coloured by {what}")
               for k, what in (("map_valence", "true valence"), ("map_activation", "true activation"),
                               ("map_class", "emotion category"), ("map_corpus", "corpus"))]
    blocks += [
        Heading("Error per label interval"),
        Text("Root-mean-square error between estimate and true label within each interval of the true "
             "label, as in the paper's Figure 3; n is the number of utterances per interval (the extremes "
             "are rare, so their bars rest on few utterances)."),
        Image(report.figures["rmse"], "RMSE per true-label interval"),
        tables.rmse_table(report),
        Heading("Predicted vs true"),
    ]
    blocks += [Image(m.figures["scatter"], f"{m.label}: predicted vs true, CCC in the titles") for m in report.models]
    blocks.append(Heading("Class head"))
    for m in report.models:
        if "confusion" in m.figures:
            blocks.append(Image(m.figures["confusion"], f"{m.label}: confusion matrix, rows sum to 100 %"))
        elif not m.class_names:
            blocks.append(Text(f"{m.label}: no class head (trained without multi-task), so no confusion matrix."))
        else:
            blocks.append(Text(f"{m.label}: none of the data's emotions is among its classes "
                               f"({', '.join(m.class_names)}), so no confusion matrix."))
    return blocks


def scored(report: Report) -> str:
    """Which clips the numbers are on. Without --split they are every clip, learned ones included: the
    report had said "the clips none of the models learned" of 40 clips, 30 of which a model learned."""
    if report.split:
        return "on the clips none of the models learned"
    learned = sum(u.split in LEARNING for u in report.utterances)
    if not learned:
        return "on every clip (none is in a train or validation split)"
    return (f"on every clip, {learned} of them in a model's or the data's train or validation split: "
            "`--split test` leaves those out")
