"""Under a real ``accelerate launch`` (2 CPU processes, gloo): docs/RECIPES.md's accelerate
recipe trains every sample once per epoch across the ranks, and resumes from the loader's
state; accelerate's ``prepare`` of an NgramLoader or of a DataLoader over an NgramDataset
(which would shard the data a second time and lose the loader's state), and a plain
transformers Trainer on an NgramDataset, are refused in one line naming the recipe."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ngramds

pytest.importorskip("accelerate")
pytest.importorskip("transformers")
SCRIPT = Path(__file__).with_name("accelerate_script.py")
RECIPE_SEQ, SEQ = 1024, 64  # the recipe's seq_len; the resumed loop's


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("accelerate")
    tokens = np.random.default_rng(5).integers(0, 50, RECIPE_SEQ * 32 + 1).astype(np.uint16)
    ngramds.build(tokens, folder / "train.ngds", order=3, progress=False)
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT", "MASTER_ADDR"):
        env.pop(k, None)
    r = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
                        "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
                        "--dynamo_backend", "no", "--main_process_port", str(free_port()),
                        str(SCRIPT), str(folder)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-4000:]
    return tokens, [json.loads((folder / f"rank{i}.json").read_text()) for i in range(2)]


def test_the_recipe_trains_every_sample_once_per_epoch(ranks):
    tokens, results = ranks
    windows = {tuple(tokens[k * RECIPE_SEQ:(k + 1) * RECIPE_SEQ].tolist()): k for k in range(32)}
    per_rank = [[windows[tuple(row)] for row in r["recipe_rows"]] for r in results]
    assert [len(rows) for rows in per_rank] == [32, 32]  # 2 epochs of 16 samples on each rank
    for epoch in range(2):
        both = per_rank[0][epoch * 16:(epoch + 1) * 16] + per_rank[1][epoch * 16:(epoch + 1) * 16]
        assert sorted(both) == list(range(32)), epoch


def test_a_run_resumed_from_the_loader_state_trains_every_sample_once(ranks):
    tokens, results = ranks
    n = (len(tokens) - 1) // SEQ
    for epoch in range(3):
        idx = [i for r in results for e, batch in r["seen"] if e == epoch for i in batch]
        assert sorted(idx) == list(range(n)), epoch


@pytest.mark.parametrize("probe", ["prepare(NgramLoader)", "prepare(DataLoader)",
                                   "NgramLoader, dispatch_batches=False",
                                   "DataLoader, dispatch_batches=False"])
def test_accelerate_prepare_of_our_loader_or_dataset_is_refused(ranks, probe):
    for r in ranks[1]:
        got = r["probes"][probe]
        assert "refused" in got, got
        assert "prepare(model, opt)" in got["refused"] and "RECIPES.md" in got["refused"]
        assert "\n" not in got["refused"]


def test_a_plain_trainer_on_our_dataset_is_refused_naming_ngram_trainer(ranks):
    for r in ranks[1]:
        got = r["plain_trainer"]
        assert "refused" in got, got
        assert "NgramTrainer" in got["refused"] and "\n" not in got["refused"]
