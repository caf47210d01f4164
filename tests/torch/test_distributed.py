"""Under real torchrun (gloo, CPU, 2 ranks): every worker start method, persistent or not, with
and without workers, gets every sample once per epoch across ranks, a new order each epoch and
len() equal to what arrives; resume works across world sizes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ngramds

SCRIPT = Path(__file__).with_name("ddp_script.py")
SEQ, BS = 8, 4


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    tokens = (np.random.default_rng(11).zipf(1.4, SEQ * 45 + 2) % 30).astype(np.uint16)
    p = tmp_path_factory.mktemp("ddp") / "d.ngds"
    ngramds.build(tokens, p, order=3, progress=False)
    return p


def torchrun(nproc, *args, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        f"--nproc_per_node={nproc}", str(SCRIPT), *map(str, args)],
                       capture_output=True, text=True, timeout=timeout, env=env)
    assert r.returncode == 0, r.stderr[-3000:]


def results(out, mode, world):
    return [json.loads((out / f"{mode}.rank{r}.json").read_text()) for r in range(world)]


def test_every_setting_under_torchrun(path, tmp_path):
    torchrun(2, path, tmp_path, "matrix")
    ranks = results(tmp_path, "matrix", 2)
    num_samples = (ngramds.open(path).num_tokens - 1) // SEQ
    per_rank = num_samples // 2
    reference = None
    for key in ranks[0]:
        if key == "drop_last_false":
            continue
        epochs = []
        for e in range(2):
            parts = [r[key]["epochs"][e] for r in ranks]
            flat = parts[0] + parts[1]
            assert len(flat) == len(set(flat)) == 2 * per_rank, f"{key}: not exactly once"
            assert not set(parts[0]) & set(parts[1]), f"{key}: ranks share samples"
            for r in ranks:
                assert r[key]["len"] == -(-per_rank // BS)  # batches delivered per epoch
            epochs.append(parts)
        assert epochs[0] != epochs[1], f"{key}: the second epoch repeats the first"
        reference = reference or epochs
        assert epochs == reference, f"{key}: the order depends on the loader setting"
    even = [r["drop_last_false"] for r in ranks]
    padded = -(-num_samples // 2)  # samples per rank with drop_last=False
    assert even[0] == even[1] and even[0]["steps"] == even[0]["len"] == -(-padded // BS)


@pytest.mark.parametrize("before,after", [(2, 1), (1, 2)])
def test_resume_across_world_sizes_under_torchrun(path, tmp_path, before, after):
    torchrun(before, path, tmp_path, "stop")
    torchrun(after, path, tmp_path, "resume")
    seen = [i for r in results(tmp_path, "stop", before) for i in r["seen"]]
    rest = [i for r in results(tmp_path, "resume", after) for i in r["seen"]]
    num_samples = (ngramds.open(path).num_tokens - 1) // SEQ
    assert len(seen) == 3 * BS * before
    assert not set(seen) & set(rest) and len(rest) == len(set(rest))
    assert len(seen) + len(rest) == len(seen) + after * ((num_samples - len(seen)) // after)
