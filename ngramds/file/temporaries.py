"""Temporaries of a build: created exclusively (never through a planted link), held under a
lock while in use, and the one home of stale-temporary cleanup.

A temporary is ours only if its name is exactly one of the names made here for that output and
it carries our lock; it is stale only if nobody holds that lock (a live build holds it until it
ends, whatever host or PID namespace it runs in, as far as the file system honours ``flock``).
Anything else is left alone.
"""
from __future__ import annotations

import fcntl
import glob
import os
import shutil
import stat
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

from .format import MAGIC

FILE_SUFFIX = ".ngds-tmp"   # OUTPUT's temporary file: .OUTPUT.<random>.ngds-tmp
DIR_SUFFIX = ".ngds-parts"  # spill and partial directories: .OUTPUT.<random>.ngds-parts
LOCK_NAME = "ngramds.lock"  # inside a directory temporary; held while the build runs


def _prefix(name: str) -> str:
    return f".{name}."


@contextmanager
def temporary_file(path: Path):
    """Yield (open binary file, temporary path) beside ``path``, created with O_EXCL and held
    under an exclusive lock; the temporary is removed unless the caller renamed it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=_prefix(path.name), suffix=FILE_SUFFIX, dir=path.parent)
    tmp = Path(tmp)
    f = os.fdopen(fd, "w+b")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        os.fchmod(fd, 0o666 & ~_umask())  # the mode a plain open() would give the output
        yield f, tmp
    finally:
        f.close()
        try:
            if tmp.is_symlink() or tmp.exists():
                tmp.unlink()
        except OSError:
            pass


@contextmanager
def temporary_dir(parent: Path, name: str):
    """Yield a new directory under ``parent`` for temporaries of output ``name``, with our lock
    file inside, held for as long as the directory is in use; removed afterwards unless the
    caller moved it away (then the moved directory loses its lock file)."""
    root = Path(tempfile.mkdtemp(prefix=_prefix(name), suffix=DIR_SUFFIX, dir=parent))
    lock = os.open(root / LOCK_NAME, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield root
    finally:
        os.close(lock)
        if root.is_dir() and not root.is_symlink():
            shutil.rmtree(root, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _unlocked(path: Path) -> bool:
    """True when nobody holds the lock of ``path`` (a regular file, opened without following
    links); False when it is held or cannot be checked."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def remove_stale(parent: Path, name: str) -> list[Path]:
    """Remove the temporaries of output ``name`` under ``parent`` that earlier, dead builds
    left behind; return them."""
    parent = Path(parent)
    pattern = glob.escape(str(parent / _prefix(name))) + "*"
    removed = []
    for cand in map(Path, glob.glob(pattern)):
        middle = cand.name[len(_prefix(name)):]
        try:
            st = os.lstat(cand)
        except OSError:
            continue
        if middle.endswith(FILE_SUFFIX) and "." not in middle[:-len(FILE_SUFFIX)] \
                and stat.S_ISREG(st.st_mode) and _unlocked(cand) and _our_file(cand):
            try:
                cand.unlink()
                removed.append(cand)
            except OSError:
                pass
        elif middle.endswith(DIR_SUFFIX) and "." not in middle[:-len(DIR_SUFFIX)] \
                and stat.S_ISDIR(st.st_mode) and _unlocked(cand / LOCK_NAME):
            shutil.rmtree(cand, ignore_errors=True)
            removed.append(cand)
    if removed:
        warnings.warn(f"removed {len(removed)} temporary file(s) left by an interrupted build "
                      f"of {name}", stacklevel=3)
    return removed


def _our_file(path: Path) -> bool:
    """A temporary file of ours starts with 8 zero bytes (magic not yet written), with the
    magic (killed before the rename), or is shorter than that."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return head in (b"\0" * len(head), MAGIC[:len(head)])
