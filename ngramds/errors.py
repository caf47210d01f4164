"""Exception types. Every user-facing failure is an :class:`NgramdsError`."""


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
