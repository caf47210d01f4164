"""A file is written whole or not at all: a hidden temporary renamed into place, so a killed or
failed build (full disk) never leaves a partial file at the output, and readers of the old file
are not disturbed by a rebuild."""
import errno
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import ngramds
from cli_helpers import SUBPROCESS_ENV, run_cli

KILLED_AT_RENAME = """
import os, signal, sys
import numpy as np
import ngramds
os.replace = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)  # killed at the rename
ngramds.build(np.arange(5000) % 97, sys.argv[1], progress=False)
"""


def test_a_build_killed_before_its_rename_leaves_only_a_hidden_temporary(tmp_path):
    script = tmp_path / "k.py"
    script.write_text(KILLED_AT_RENAME)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    r = subprocess.run([sys.executable, script, out_dir / "o.ngds"], capture_output=True,
                       timeout=300, env={**os.environ, **SUBPROCESS_ENV})
    assert r.returncode == -signal.SIGKILL
    left = [p.name for p in out_dir.iterdir()]
    assert left and all(n.startswith(".o.ngds.") for n in left), left  # hidden, never OUT
    assert not (out_dir / "o.ngds").exists()
    with pytest.warns(UserWarning, match="interrupted build"):
        ngramds.build(np.arange(10), out_dir / "o.ngds", progress=False)  # removes it
    assert [p.name for p in out_dir.iterdir()] == ["o.ngds"]


BUILD_SCRIPT = """
import sys, numpy as np, ngramds
rng = np.random.default_rng(int(sys.argv[2]))
tokens = (rng.zipf(1.3, 1_500_000) % 5000).astype(np.uint16)
ngramds.build(tokens, sys.argv[1], order=4, eos_id=0, progress=False)
"""


def test_sigkill_at_random_moments_never_leaves_a_partial_file(tmp_path):
    out = tmp_path / "k.ngds"
    script = tmp_path / "b.py"
    script.write_text(BUILD_SCRIPT)
    subprocess.run([sys.executable, script, out, "0"], check=True)  # warm JIT cache
    previous = out.read_bytes()
    rng = np.random.default_rng(0)
    for trial in range(8):
        proc = subprocess.Popen([sys.executable, script, out, str(trial + 1)])
        time.sleep(rng.uniform(0.2, 4.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        f = ngramds.open(out, verify=True)  # always a complete file: the old or the new one
        current = out.read_bytes()
        assert current == previous or f.num_tokens == 1_500_000
        previous = current
    with pytest.warns(UserWarning, match="interrupted build"):
        leftovers = list(tmp_path.glob(".k.ngds.*.ngds-tmp"))
        if not leftovers:  # make one, as a killed build would leave it
            (tmp_path / ".k.ngds.k1ll3d00.ngds-tmp").write_bytes(b"\0" * 64)
        ngramds.build(np.arange(10), out, progress=False)
    assert not list(tmp_path.glob(".k.ngds.*"))


def test_full_disk_gives_clear_error_and_no_file(tmp_path, monkeypatch):
    import ngramds.file.writer as writer

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer.os, "fsync", no_space)
    out = tmp_path / "d.ngds"
    with pytest.raises(ngramds.FileAccessError, match="disk full"):
        ngramds.build(np.arange(100) % 7, out, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_full_disk_on_a_real_small_tmpfs(tmp_path, tmpfs):
    mnt = tmpfs("size=64k")
    np.save(tmp_path / "c.npy", (np.arange(200_000) * 7919 % 3001).astype(np.uint16))
    r = run_cli("build", tmp_path / "c.npy", "-o", mnt / "x.ngds", "-q", timeout=None)
    assert r.returncode == 2 and "disk full" in r.stderr
    assert list(mnt.iterdir()) == []


def test_rebuild_does_not_disturb_open_readers(tmp_path):
    out = tmp_path / "r.ngds"
    ngramds.build(np.arange(1000) % 13, out, order=2, progress=False)
    old = ngramds.open(out)
    before = np.array(old.tokens)
    ngramds.build(np.arange(5000) % 17, out, order=3, progress=False)
    assert np.array_equal(old.tokens, before)
    old.verify()
    assert ngramds.open(out).num_tokens == 5000
