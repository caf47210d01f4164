"""Compressed text inputs (.gz, .bz2, .xz, .zst) read as streams, with the count of compressed
bytes consumed (for progress)."""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from pathlib import Path

from ..errors import InputError

__all__ = ["COMPRESSED", "inner_suffix", "open_input", "CountingReader", "read_errors"]

COMPRESSED = (".gz", ".bz2", ".xz", ".zst")


def inner_suffix(path: Path) -> str:
    """The suffix naming the content: ".jsonl" for ``a.jsonl.gz`` as for ``a.jsonl``."""
    if path.suffix in COMPRESSED:
        return Path(path.stem).suffix
    return path.suffix


class CountingReader(io.RawIOBase):
    """A binary file that counts the bytes read from it (the compressed bytes, under a
    decompressor)."""

    def __init__(self, raw):
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = self.raw.readinto(b)
        self.count += n or 0
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


def open_input(path: Path) -> tuple[io.BufferedIOBase, CountingReader]:
    """(a binary stream of ``path``'s content, decompressed by its suffix; the counter of raw
    bytes read). A .zst input needs the `zstandard` package."""
    counter = CountingReader(open(path, "rb"))
    suffix = path.suffix
    if suffix == ".gz":
        return gzip.GzipFile(fileobj=counter, mode="rb"), counter
    if suffix == ".bz2":
        return bz2.BZ2File(counter, "rb"), counter
    if suffix == ".xz":
        return lzma.LZMAFile(counter, "rb"), counter
    if suffix == ".zst":
        try:
            import zstandard
        except ImportError:
            counter.close()
            raise InputError(f"{path} is zstd-compressed: pip install zstandard (or "
                             "'ngramds[formats]')") from None
        reader = zstandard.ZstdDecompressor().stream_reader(counter, read_across_frames=True)
        return io.BufferedReader(reader), counter
    return io.BufferedReader(counter), counter


def read_errors() -> tuple[type[BaseException], ...]:
    """Exceptions a damaged compressed stream raises while being read."""
    errors: list = [EOFError, OSError, zlib.error, lzma.LZMAError]
    try:
        import zstandard
        errors.append(zstandard.ZstdError)
    except ImportError:
        pass
    return tuple(errors)
