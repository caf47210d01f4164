import os
import subprocess
import sys

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
