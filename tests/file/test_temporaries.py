"""Temporaries of a build: only its own exact hidden names are ever cleaned up, a running build's
(its lock held) are kept, and a link planted at a temporary name is never followed."""
import fcntl
import os

import ngramds
from cli_helpers import cli, dead_pid, snapshot


def test_cleanup_touches_only_its_own_exact_names(token_dir, capsys, monkeypatch):
    """`-o 'x*'` is a file name, not a pattern: files and directories that merely match the
    glob (old- or new-style temporary names of other outputs) stay."""
    d = token_dir
    pid = dead_pid()
    (d / f"xnotes.tmp-{pid}.txt").write_text("my notes")
    (d / f"xdata.parts-{pid}").mkdir()
    (d / f"xdata.parts-{pid}" / "keep.txt").write_text("my data")
    (d / ".xnotes.abcd1234.ngds-tmp").write_bytes(b"\0" * 64)
    (d / ".xdata.abcd1234.ngds-parts").mkdir()
    (d / ".xdata.abcd1234.ngds-parts" / "ngramds.lock").touch()
    decoys = snapshot(d)
    monkeypatch.chdir(d)
    for extra in ([], ["--memory-limit", "4G"]):
        assert cli(capsys, "build", "a.npy", "-o", "x*", "-q", *extra)[0] == 0
        assert ngramds.open(d / "x*").num_tokens == 3000
        now = snapshot(d)
        assert {k: now[k] for k in decoys} == decoys


def test_temporaries_of_a_running_build_are_never_removed(token_dir, capsys, monkeypatch):
    """A build elsewhere (another PID namespace or host: its PID means nothing here) still
    holds its lock: neither its directory nor an old-style one named with a PID that is not
    alive here may be removed."""
    d = token_dir
    pid = dead_pid()
    old_style = d / f"o.ngds.parts-{pid}"
    (old_style / "order4").mkdir(parents=True)
    (old_style / "order4" / "run.npy").write_bytes(b"running")
    new_style = d / ".o.ngds.r4nn1ng0.ngds-parts"
    new_style.mkdir()
    (new_style / "run.npy").write_bytes(b"running")
    lock = open(new_style / "ngramds.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)  # as the running build holds it
    tmp_file = d / ".o.ngds.r4nn1ng1.ngds-tmp"
    tmp_file.write_bytes(b"\0" * 64)
    held = open(tmp_file, "rb")
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        keep = snapshot(d)
        monkeypatch.chdir(d)
        for extra in ([], ["--memory-limit", "4G"]):
            assert cli(capsys, "build", "a.npy", "-o", "o.ngds", "-q", *extra)[0] == 0
            now = snapshot(d)
            assert {k: now[k] for k in keep} == keep
    finally:
        lock.close()
        held.close()


def test_a_planted_symlink_at_a_temporary_name_is_never_followed(token_dir):
    d = token_dir
    victim = d / "victim.txt"
    victim.write_text("precious")
    outside = d / "outside"
    outside.mkdir()
    pid = os.getpid()
    for name in (f"o.ngds.tmp-{pid}", f".o.ngds.tmp-{pid}", ".o.ngds.s1mlink0.ngds-tmp"):
        os.symlink(victim, d / name)
    os.symlink(outside, d / f"o.ngds.parts-{pid}")
    os.symlink(outside, d / ".o.ngds.s1mlink1.ngds-parts")
    for kwargs in ({}, {"memory_limit": "4G"}):
        ngramds.build([str(d / "a.npy")], d / "o.ngds", progress=False, **kwargs)
        assert victim.read_text() == "precious" and list(outside.iterdir()) == []
        assert not (d / "o.ngds").is_symlink() and (d / "o.ngds").is_file()
        assert ngramds.open(d / "o.ngds", verify=True).num_tokens == 3000
