"""Store the leave-one-corpus-out results of a model's recipe in its bundle's metrics.

Usage: attach-results.py BUNDLE_DIR GENERALISATION.json (written by benchmarks/generalisation.py --json).
The config is rewritten atomically (temporary file, fsync, rename); weights and graph are untouched.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(bundle: str, results: str) -> None:
    config_path = Path(bundle) / "config.json"
    config = json.loads(config_path.read_text())
    config["metrics"]["leave_one_corpus_out"] = json.loads(Path(results).read_text())
    tmp = config_path.with_suffix(".json.tmp")
    with tmp.open("w") as f:
        f.write(json.dumps(config, indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, config_path)


if __name__ == "__main__":
    main(*sys.argv[1:])
