import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(__file__))  # helpers shared by the test packages

settings.register_profile("default", deadline=None, max_examples=40,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, max_examples=40, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture
def tmpfs(tmp_path):
    """mount(options) -> the mount point of a new tmpfs mounted with ``options`` (e.g.
    "size=64k" or "ro,size=64k") under tmp_path; skips where mounting is not allowed.
    Unmounted afterwards."""
    mounts = []

    def mount(options: str):
        mnt = tmp_path / f"tmpfs{len(mounts)}"
        mnt.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mnt)],
                          capture_output=True).returncode:
            pytest.skip("cannot mount a tmpfs here")
        mounts.append(mnt)
        return mnt

    yield mount
    for mnt in mounts:
        subprocess.run(["umount", str(mnt)])


@pytest.fixture
def token_dir(tmp_path):
    """A scratch directory holding a small token file a.npy (3000 tokens, EOS 0)."""
    rng = np.random.default_rng(0)
    tokens = (rng.zipf(1.3, 3000) % 300).astype(np.uint16)
    np.save(tmp_path / "a.npy", tokens)
    return tmp_path


@pytest.fixture
def built_file(token_dir, capsys):
    """token_dir's a.npy built by the CLI into o.ngds (EOS 0)."""
    from ngramds.cli import main
    assert main(["build", str(token_dir / "a.npy"), "-o", str(token_dir / "o.ngds"),
                 "--eos-id", "0", "-q"]) == 0
    capsys.readouterr()
    return token_dir / "o.ngds"
