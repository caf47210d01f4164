"""A dataset keeps the file it was made with: a rebuilt file is refused by workers instead of
silently mixing two files, and a file truncated in place is refused at the next pass instead of
killing the process with SIGBUS."""
import subprocess
import sys

import numpy as np
import pytest
from torch.utils.data import DataLoader

import ngramds
from ngramds.torch import NgramDataset

SEQ = 8


def build(path, seed):
    tokens = (np.random.default_rng(seed).zipf(1.4, SEQ * 50 + 1) % 30).astype(np.uint16)
    ngramds.build(tokens, path, order=2, progress=False)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_rebuilt_file_is_refused_by_workers(tmp_path, method):
    path = tmp_path / "d.ngds"
    build(path, 0)
    ds = NgramDataset(path, SEQ, batch_size=4)
    build(path, 1)  # an atomic rebuild between epochs
    loader = DataLoader(ds, batch_size=4, num_workers=2, multiprocessing_context=method)
    with pytest.raises(ngramds.FormatError, match="changed since the dataset opened it"):
        list(loader)


SCRIPT = """
import os, sys, numpy as np, ngramds
from ngramds.torch import NgramDataset
path = sys.argv[1]
ds = NgramDataset(path, 8)
list(ds)
os.truncate(path, os.path.getsize(path) // 2)
try:
    list(ds)
except ngramds.FormatError as e:
    print("refused:", e)
"""


def test_a_truncated_file_is_refused_not_a_crash(tmp_path):
    path = tmp_path / "t.ngds"
    build(path, 2)
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(path)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])  # -7 is SIGBUS
    assert "refused:" in r.stdout and "truncated" in r.stdout
