"""Exception types. Every user-facing failure is an :class:`NgramdsError`."""
import errno
import re
from contextlib import contextmanager

# numpy's short-write error (``ndarray.tofile`` / ``np.save`` on a full disk): no errno
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")


class NgramdsError(Exception):
    """Base class of all ngramds errors; its message is one line naming problem and fix."""


class InputError(NgramdsError, ValueError):
    """The corpus or the options given to the builder are not usable."""


class FormatError(NgramdsError, ValueError):
    """A file is not an ngramds file, is of an unsupported version, or is damaged."""


class ChecksumError(FormatError):
    """A section's content does not match the checksum recorded in the header."""


class FileAccessError(NgramdsError, OSError):
    """A file or directory cannot be read or written."""


class InputWarning(UserWarning):
    """The input looks wrong (an EOS id that never occurs, ids that look like the other
    dtype, suspiciously short documents) but may be meant; ``strict`` makes it an error."""


@contextmanager
def strict_inputs(strict: bool):
    """Inside, with ``strict``, an :class:`InputWarning` raises :class:`InputError` (same
    message) instead of being shown."""
    if not strict:
        yield
        return
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        try:
            yield
        except InputWarning as exc:
            raise InputError(f"{exc} (an error under --strict / strict=True)") from None


def is_disk_full(exc: OSError) -> bool:
    """True for ENOSPC/EDQUOT, also when raised without an errno (as ``np.save`` does: "N
    requested and M written", a short write, which only a full disk or quota gives)."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(exc) or \
        (exc.errno is None and _SHORT_WRITE.search(str(exc)) is not None)


@contextmanager
def os_errors_as(disk_full: str, other: str):
    """OSErrors inside become one-line FileAccessErrors: ``disk_full`` for a full disk, else
    ``other: reason``."""
    try:
        yield
    except FileAccessError:
        raise
    except OSError as exc:
        if is_disk_full(exc):
            raise FileAccessError(disk_full) from None
        raise FileAccessError(f"{other}: {exc.strerror or exc}") from None
