"""Two CPU ranks under torchrun (gloo) train the same model as one process, and only rank 0 writes."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.test_trainer import subset_manifest
from emolive.trainer import distributed
from emolive.trainer.cli import main as trainer_main

TORCHRUN = Path(sys.executable).with_name("torchrun")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [str(TORCHRUN), "--nproc_per_node=2", f"--master_port={free_port()}", "-m", "emolive.trainer.cli", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def assert_same_run(single: Path, ddp: Path) -> None:
    a, b = load_file(str(single / "model.safetensors")), load_file(str(ddp / "model.safetensors"))
    assert a.keys() == b.keys()
    # Both runs are on the same machine, so no build difference enters; 1 rank and 2 ranks differ only
    # in how the gradient is summed (one batch vs two half-batch sums added by all_reduce), ~1 ulp per
    # step on weights of order 0.1-1, over a few dozen Adam steps: far below 1e-4. A rank seeing the
    # wrong data or a missing all_reduce moves weights by >= 1e-3 after one step.
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < 1e-4, worst
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (single, ddp))
    assert ra["best_epoch"] == rb["best_epoch"] and (ra["world_size"], rb["world_size"]) == (1, 2)
    for dim, value in ra["test"]["test"]["ccc"].items():
        assert rb["test"]["test"]["ccc"][dim] == pytest.approx(value, abs=1e-4)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """64 RAVDESS clips with features cached by a single-process run."""
    tmp = tmp_path_factory.mktemp("ddp")
    return subset_manifest(tmp, "ravdess", every=22), tmp


def test_two_ranks_train_the_same_model_as_one_process(small):
    manifest, tmp = small
    # batch 20 over 46 training clips: a short last batch split 3 + 3 as well as full ones split 10 + 10
    common = ["train", "--data", str(manifest), "--cache", str(tmp / "cache"), "--epochs", "2", "--seed", "3",
              "--batch-size", "20", "--crop-s", "1.5", "--epoch-clips", "0", "--test-frac", "0.2"]
    assert trainer_main([*common, "--out", str(tmp / "single")]) == 0
    proc = torchrun([*common, "--out", str(tmp / "ddp")])
    assert proc.stdout.count("trained tcgru") == 1  # rank 1 neither prints nor writes
    assert_same_run(tmp / "single", tmp / "ddp")


def test_two_ranks_distill_the_same_model_and_share_the_teacher_work(small):
    manifest, tmp = small
    common = ["distill", "--data", str(manifest), "--epochs", "2", "--switch-epoch", "1", "--seed", "4",
              "--batch-size", "16", "--crop-s", "1.5", "--teacher", "student", "--epoch-clips", "0", "--test-frac", "0.2"]
    # separate caches, so each run computes the teacher targets (sharded over the ranks under torchrun)
    assert trainer_main([*common, "--cache", str(tmp / "c1"), "--out", str(tmp / "d1")]) == 0
    torchrun([*common, "--cache", str(tmp / "c2"), "--out", str(tmp / "d2")])
    (t1,), (t2,) = (list((tmp / c / "teacher").glob("*.safetensors")) for c in ("c1", "c2"))
    assert t1.name == t2.name
    # the teacher's forward pass per utterance, the same shapes on every rank: rounding only (a few ulp)
    assert all(torch.allclose(v, load_file(str(t2))[k], atol=1e-5) for k, v in load_file(str(t1)).items())
    assert_same_run(tmp / "d1", tmp / "d2")


def test_shard_and_unshard_cover_a_corpus_once_in_order():
    items = np.arange(11)[:, None] * np.ones((1, 2))
    parts = [np.array(distributed.shard(items, distributed.Context(r, 3))) for r in range(3)]
    assert sorted(len(p) for p in parts) == [3, 4, 4]
    assert np.array_equal(distributed.unshard(parts), items)
    slices = distributed.batch_slices(7, distributed.Context(0, 2))
    assert [(s.start, s.stop) for s in slices] == [(0, 4), (4, 7)]


def test_two_ranks_embed_a_corpus_like_one_process(tmp_path):
    """`trainer embed` under torchrun shards the clips across ranks into one cache; the cached
    frames equal a one-process run's (random weights of the real wav2vec 2.0 base architecture,
    passed as a local checkpoint since nothing can be downloaded here)."""
    import torchaudio
    from safetensors.torch import save_file

    from emolive.plugins.teacher.pretrained import get_pretrained, parse_stream
    from emolive.trainer.embeddings.cache import EmbeddingCache

    torch.manual_seed(0)
    spec = get_pretrained("wav2vec2-base")
    checkpoint = tmp_path / "w2v.safetensors"
    save_file(torchaudio.models.wav2vec2_model(**spec.pipeline_bundle._params).state_dict(), str(checkpoint))
    manifest = subset_manifest(tmp_path, "emodb", every=107)  # 5 clips: ranks get 3 and 2
    common = ["embed", "--bundle", "wav2vec2-base", "--checkpoint", str(checkpoint), "--data", str(manifest)]
    assert trainer_main([*common, "--cache", str(tmp_path / "one")]) == 0
    proc = torchrun([*common, "--cache", str(tmp_path / "two")])
    assert proc.stdout.count("embed ") == 1 and "by 2 ranks" in proc.stdout  # rank 0 reports once
    assert len(list((tmp_path / "two").rglob("*.npy"))) == 5  # the ranks embedded every clip
    stream = parse_stream(f"wav2vec2-base@{checkpoint}")
    paths = [line.split(",")[0] for line in manifest.read_text().splitlines()[1:]]
    one, two = (EmbeddingCache(tmp_path / d, stream).embeddings(paths, progress=False) for d in ("one", "two"))
    for a, b in zip(one, two):
        # one clip per forward pass in both runs, same machine: identical ops, 1e-4 is pure slack for
        # thread-count-dependent reductions (OMP_NUM_THREADS=1 under torchrun, the default in-process)
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-4
