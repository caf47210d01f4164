"""The documents of text files: .txt lines (or whole files) and .jsonl records, decoded as
UTF-8 with the line named on error, huge lines streamed in pieces; files of other suffixes
read as text unless binary."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import FileAccessError, InputError
from . import tokenize
from .compressed import read_errors

__all__ = ["text_documents", "source_text", "whole_line", "TEXT_LINE_BLOCK", "BINARY_INVALID"]

TEXT_LINE_BLOCK = 1 << 20   # bytes of a line read at a time; a longer .txt line is streamed
BINARY_INVALID = 0.01    # a file read as text with more invalid UTF-8 bytes than this is binary


def source_text(raw: bytes) -> tuple[str | None, str]:
    """(the text of a file read whatever its suffix, ""), or (None, why) for a binary file:
    one holding NUL bytes or more than :data:`BINARY_INVALID` of its bytes invalid UTF-8
    (fewer are read as U+FFFD)."""
    if b"\0" in raw:
        return None, "it holds NUL bytes"
    try:
        return raw.decode("utf-8"), ""
    except UnicodeDecodeError:
        pass
    text = raw.decode("utf-8", "replace")
    bad = text.count("\ufffd") - raw.count("\ufffd".encode())
    if bad > BINARY_INVALID * len(raw):
        return None, f"{bad:,} of its {len(raw):,} bytes are not UTF-8"
    return text, ""


def text_documents(path: Path, stream, suffix: str, text_field: str, text_unit: str,
                   read_bytes: int | None = None):
    """Yield the documents of a .txt (per line or whole file) or .jsonl file read from
    ``stream`` (decompressed); a damaged compressed stream is an InputError. A .txt line (or
    file) longer than :data:`TEXT_LINE_BLOCK` bytes comes as an iterator of its pieces
    (:func:`~ngramds.corpus.tokenize.split_text`'s), read as they are encoded; a .jsonl line
    longer than ``read_bytes`` is an InputError naming the memory limit."""
    with _damage_as_input_error(path), stream:
        if suffix == ".txt" and text_unit == "file":
            first = stream.read(TEXT_LINE_BLOCK)
            if len(first) < TEXT_LINE_BLOCK:
                yield _decode(first, path, 1)
            else:
                yield _streamed_text(path, stream, 1, first, whole_file=True)
            return
        lineno = 0
        while True:
            raw = stream.readline(TEXT_LINE_BLOCK)
            if not raw:
                return
            lineno += 1
            if suffix == ".txt":
                if raw.endswith(b"\n") or len(raw) < TEXT_LINE_BLOCK:
                    line = _decode(raw, path, lineno)
                    if line.strip():
                        yield line.rstrip("\r\n")
                    continue
                head = [raw]  # a long line: blank only if all whitespace
                while not any(b.strip() for b in head[-1:]) and not head[-1].endswith(b"\n"):
                    more = stream.readline(TEXT_LINE_BLOCK)
                    if not more:
                        break
                    head.append(more)
                if not any(b.strip() for b in head):
                    _decode(b"".join(head), path, lineno)
                    continue
                yield _streamed_text(path, stream, lineno, b"".join(head))
                continue
            line = _decode(whole_line(stream, raw, f"{path}:{lineno}", read_bytes), path,
                           lineno)
            if line.strip():
                yield _json_text(line, path, lineno, text_field)


def whole_line(stream, first: bytes, where: str, read_bytes: int | None) -> bytes:
    """The line of ``stream`` that starts with ``first`` (its first block), read
    :data:`TEXT_LINE_BLOCK` bytes at a time, so that with ``read_bytes`` a longer line is
    refused once that much of it is read, not after reading it whole.

    Raises:
        InputError: the line is longer than ``read_bytes`` (``where`` names it).
    """
    parts, size = [first], len(first)
    while True:
        if read_bytes is not None and size > read_bytes:
            raise InputError(
                f"{where}: a record of more than {read_bytes / 2**20:.1f} MiB, more than one "
                "read may hold under the memory limit; raise --memory-limit (memory_limit=) "
                "or split the record")
        if parts[-1].endswith(b"\n"):
            break
        more = stream.readline(TEXT_LINE_BLOCK)
        if not more:
            break
        parts.append(more)
        size += len(more)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class _damage_as_input_error:
    """A damaged compressed stream's read errors as one-line InputErrors naming ``path``."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is not None and isinstance(exc, read_errors()) \
                and not isinstance(exc, (FileAccessError, InputError)):
            raise InputError(f"{self.path}: cannot read it to the end ({exc}); is the file "
                             "damaged or truncated?") from None
        return False


def _streamed_text(path: Path, stream, lineno: int, first: bytes, whole_file: bool = False):
    """The pieces of the .txt line (or file) that starts with ``first`` and continues in
    ``stream``, as :func:`~ngramds.corpus.tokenize.split_text` cuts the whole (trailing CR/LF
    of a line dropped), read :data:`TEXT_LINE_BLOCK` bytes at a time."""
    import codecs
    decoder = codecs.getincrementaldecoder("utf-8")()
    limit = tokenize.TEXT_PIECE_CHARS
    done = 0  # bytes of the line decoded before the current block

    def decode(raw: bytes, final: bool = False) -> str:
        nonlocal done
        try:
            text = decoder.decode(raw, final)
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}:{lineno}: text is not UTF-8 ({exc.reason} at byte "
                             f"{done + exc.start} of the line); convert the file to UTF-8") \
                from None
        done += len(raw)
        return text

    with _damage_as_input_error(path):
        buf, raw = decode(first), first
        while not (raw.endswith(b"\n") and not whole_file):
            raw = stream.read(TEXT_LINE_BLOCK) if whole_file else \
                stream.readline(TEXT_LINE_BLOCK)
            if not raw:
                break
            buf += decode(raw)
            # cut as split_text cuts the whole once what remains is surely longer than the
            # limit (a line's trailing CR/LF are dropped at its end)
            while len(buf if whole_file else buf.rstrip("\r\n")) > limit:
                m = tokenize.LAST_SPACE_RUN.search(buf, 0, limit)
                cut = m.start() if m and m.start() > 0 else limit
                yield buf[:cut]
                buf = buf[cut:]
        buf += decode(b"", final=True)
        yield from tokenize.split_text(buf if whole_file else buf.rstrip("\r\n"), limit)


def _json_text(line: str, path: Path, lineno: int, text_field: str) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise InputError(f"{path}:{lineno}: JSON nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise InputError(f"{path}:{lineno}: unreadable JSON ({exc})") from None
    if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
        fields = ", ".join(map(repr, record)) if isinstance(record, dict) else "none"
        raise InputError(f"{path}:{lineno}: no string field {text_field!r} (fields: "
                         f"{fields[:200]}); choose the field with --field")
    return record[text_field]


def _decode(raw: bytes, path: Path, lineno: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if lineno == 1 and b"\n" in raw:
            lineno = raw[:exc.start].count(b"\n") + 1
        raise InputError(f"{path}:{lineno}: text is not UTF-8 ({exc.reason} at byte "
                         f"{exc.start}); convert the file to UTF-8") from None
