"""Store the leave-one-corpus-out results of a model's recipe in its bundle's metrics.

Usage: attach-results.py BUNDLE_DIR GENERALISATION.json RECIPE (the JSON written by
benchmarks/generalisation.py --json; RECIPE: the row the bundle was trained with). The bundle keeps
that recipe's rows in full and every recipe's mean over the four left-out corpora, so a user sees
what the shipped recipe reached and what it was compared with. The config is rewritten atomically
(temporary file, fsync, rename) as strict JSON (a score that cannot be measured, BAVED's valence, is
`null`: engine.bundle.json_text); weights and graph are untouched.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from emolive.engine.bundle import json_text


def main(bundle: str, results: str, recipe: str) -> None:
    table = json.loads(Path(results).read_text())
    if recipe not in table:
        sys.exit(f"attach-results: {results} has no recipe {recipe!r}; it has {', '.join(table)}")
    config_path = Path(bundle) / "config.json"
    config = json.loads(config_path.read_text())
    config["metrics"]["leave_one_corpus_out"] = {
        "recipe": recipe, "results": table[recipe],
        "mean_over_corpora": {name: row["mean_over_corpora"] for name, row in table.items()}}
    tmp = config_path.with_suffix(".json.tmp")
    with tmp.open("w") as f:
        f.write(json_text(config))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, config_path)


if __name__ == "__main__":
    main(*sys.argv[1:])
