"""Output paths checked before any work: usable, and never one of the inputs or another output
(by real path, so through symbolic links, or by (device, inode), so hard links too)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import FileAccessError, InputError

__all__ = ["check_output_path", "check_distinct", "same_file", "open_regular"]


def check_output_path(path, *, directory: bool = False, what: str = "output") -> Path:
    """``path`` as a Path once it can name a new output: not empty, not an existing directory
    (a ``directory`` output, a partial result, must not exist at all), and its parent exists."""
    text = os.fspath(path)
    if not str(text).strip():
        raise InputError(f"the {what} path is empty; give a file name such as corpus.ngds")
    p = Path(text)
    if directory:
        if os.path.lexists(p) or p.name in ("", ".", ".."):
            raise InputError(f"{what} {text} exists; a partial result goes to a new directory")
    elif p.name in ("", ".", "..") or str(text).endswith(os.sep) or os.path.isdir(p):
        raise InputError(f"{what} {text} is a directory; give a file path such as "
                         f"{p / 'corpus.ngds'}")
    if not p.parent.is_dir():
        raise FileAccessError(f"{what} directory {p.parent} does not exist; create it first "
                              "(checked before any work)")
    return p


def same_file(a, b) -> bool:
    """True when ``a`` and ``b`` name one file: the same real path (also when neither exists
    yet), or existing entries with the same device and inode (hard links)."""
    try:
        if os.path.realpath(a) == os.path.realpath(b):
            return True
        sa, sb = os.stat(a), os.stat(b)
    except (OSError, ValueError):
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def check_distinct(outputs: list, inputs: list) -> None:
    """InputError when an output is one of the ``inputs`` or two ``outputs`` are one file.

    Both are lists of (what, path): e.g. ("output", "c.ngds"), ("input", "a.npy")."""
    for i, (what, out) in enumerate(outputs):
        for in_what, inp in inputs:
            if same_file(out, inp):
                raise InputError(f"{what} {out} is the {in_what} {inp}: writing it would "
                                 "destroy the input; choose another output path")
        for other_what, other in outputs[i + 1:]:
            if same_file(out, other):
                raise InputError(f"{what} {out} and {other_what} {other} are the same file; "
                                 "give each output its own path")


def open_regular(path, what: str = "input"):
    """``path`` opened for reading in binary mode, once it is a regular file: a FIFO, device,
    socket or directory is refused at once (opened without blocking, so a FIFO with no writer
    never hangs the caller).

    Args:
        path: the file to read.
        what: how the file is named in errors (e.g. "the log", "tokenizer").

    Returns:
        A binary file object (the caller closes it).

    Raises:
        FileAccessError: missing, not readable, or not a regular file.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise FileAccessError(f"{what} {path} does not exist") from None
    except PermissionError:
        raise FileAccessError(f"{what} {path} is not readable (permission denied)") from None
    except (OSError, ValueError) as exc:
        raise FileAccessError(f"cannot read {what} {path}: "
                              f"{getattr(exc, 'strerror', None) or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise FileAccessError(f"{what} {path} is a directory, not a file")
        if not stat.S_ISREG(mode):
            raise FileAccessError(f"{what} {path} is not a regular file (a pipe, device or "
                                  "socket); give a file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
