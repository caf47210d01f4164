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
READ_SIZE = 1 << 16     # compressed bytes read at a time
ZSTD_FEED = 1 << 12     # ... given to a zstd frame at a time (its output is not bounded)
OUTPUT_SIZE = 1 << 20   # decompressed bytes (bz2, xz) per step, at most


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
    bytes read). A .zst input needs the `zstandard` package. Compressed input is read strictly:
    a stream cut short, damaged, or followed by bytes that are not another stream (or .xz
    padding) raises one of :func:`read_errors` while being read."""
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a file; name the files in it")
    suffix = path.suffix
    if suffix == ".zst":
        try:
            import zstandard
        except ImportError:
            raise InputError(f"{path} is zstd-compressed: pip install zstandard") from None
    counter = CountingReader(open(path, "rb"))
    if suffix == ".gz":  # GzipFile refuses a cut member and trailing garbage itself
        return gzip.GzipFile(fileobj=counter, mode="rb"), counter
    if suffix == ".bz2":
        return io.BufferedReader(_Streams(counter, bz2.BZ2Decompressor), READ_SIZE), counter
    if suffix == ".xz":
        return io.BufferedReader(_Streams(counter, lzma.LZMADecompressor, padding=4),
                                 READ_SIZE), counter
    if suffix == ".zst":
        dctx = zstandard.ZstdDecompressor()
        return io.BufferedReader(_Streams(counter, lambda: _ZstdFrame(dctx)), READ_SIZE), \
            counter
    return io.BufferedReader(counter), counter


class _ZstdFrame:
    """One zstd frame's decompressor with the interface of :class:`bz2.BZ2Decompressor`
    (output bounded by feeding at most :data:`ZSTD_FEED` bytes at a time)."""

    needs_input = True

    def __init__(self, dctx):
        self._obj = dctx.decompressobj()

    @property
    def eof(self) -> bool:
        return self._obj.eof

    @property
    def unused_data(self) -> bytes:
        return self._obj.unused_data

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        return self._obj.decompress(data)


class _Streams(io.RawIOBase):
    """The content of concatenated compressed streams (bz2 streams, xz streams, zstd frames),
    read strictly: every stream must reach its end marker, and only another stream (or, with
    ``padding``, null bytes in multiples of it) may follow one. ``EOFError`` for input that
    ends inside a stream; the decompressor's own error for bytes that are not a stream."""

    def __init__(self, raw, new, padding: int = 0):
        self._raw, self._new, self._padding = raw, new, padding
        self._dec = None          # the current stream's decompressor
        self._data = b""          # compressed bytes read and not yet given to it
        self._out, self._pos = b"", 0
        self._zeros = 0           # padding bytes seen since the last stream ended

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while self._pos >= len(self._out):
            if not self._step():
                return 0
        n = min(len(b), len(self._out) - self._pos)
        b[:n] = self._out[self._pos:self._pos + n]
        self._pos += n
        return n

    def _more(self) -> bool:
        if not self._data:
            self._data = self._raw.read(READ_SIZE)
        return bool(self._data)

    def _step(self) -> bool:
        """Decompress some more into ``_out``; False at the clean end of the input."""
        dec = self._dec
        if dec is not None and dec.eof:
            self._data, self._dec = dec.unused_data + self._data, None
            return True
        if dec is None:
            if self._padding:
                while self._more() and not self._data.lstrip(b"\0"):
                    self._zeros += len(self._data)
                    self._data = b""
                stripped = self._data.lstrip(b"\0")
                self._zeros += len(self._data) - len(stripped)
                self._data = stripped
                if self._zeros % self._padding:
                    raise EOFError(f"{self._zeros} null bytes after a stream, not a multiple "
                                   f"of {self._padding}")
            if not self._more():
                return False  # every stream ended
            self._zeros = 0
            self._dec = dec = self._new()
        if dec.needs_input:
            if not self._more():
                raise EOFError("the compressed data ends inside a stream (cut short)")
            feed, self._data = self._data[:ZSTD_FEED], self._data[ZSTD_FEED:]
        else:
            feed = b""
        self._out, self._pos = dec.decompress(feed, OUTPUT_SIZE), 0
        return True

    def close(self) -> None:
        self._raw.close()
        super().close()


def read_errors() -> tuple[type[BaseException], ...]:
    """Exceptions a damaged compressed stream raises while being read."""
    errors: list = [EOFError, OSError, zlib.error, lzma.LZMAError]
    try:
        import zstandard
        errors.append(zstandard.ZstdError)
    except ImportError:
        pass
    return tuple(errors)
