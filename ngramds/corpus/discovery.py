"""Which files a build reads: input paths and directories walked (hidden names and links
skipped, --include globs), input kinds told by name, unreadable or non-UTF-8 names refused."""
from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from ..errors import FileAccessError, InputError
from .columnar import COLUMNAR, is_columnar, is_hf_dataset
from .compressed import COMPRESSED, inner_suffix

__all__ = ["expand_inputs", "input_files", "needs_spool", "check_readable", "is_megatron",
           "is_path_list", "is_source_text", "known_input", "none_found", "utf8_name", "file_size",
           "TEXT_INPUTS", "TOKEN_INPUTS"]

TEXT_INPUTS = (".txt", ".jsonl")
TOKEN_INPUTS = (".npy", ".bin", ".idx")


def is_path_list(source) -> bool:
    """Whether ``source`` is a list or tuple of paths."""
    return isinstance(source, (list, tuple)) and all(
        isinstance(s, (str, os.PathLike)) for s in source)


def check_readable(path: Path) -> None:
    """FileAccessError unless ``path`` is an existing, readable file."""
    if not path.exists():
        raise FileAccessError(f"input file {path} does not exist")
    if not path.is_file() or not os.access(path, os.R_OK):
        raise FileAccessError(f"input file {path} is not a readable file")


def is_megatron(path: Path) -> bool:
    """A Megatron dataset named by its .idx, its .bin (beside an .idx) or its prefix."""
    return path.suffix == ".idx" or (not path.exists() and path.with_suffix(".idx").exists()) \
        or (path.suffix == ".bin" and path.with_suffix(".idx").exists())


def needs_spool(source, tokenizer=None, **options) -> bool:
    """Whether a memory-bounded build of ``source`` writes tokens to temporary token files
    first: text to tokenise, parquet/Arrow rows, a HuggingFace dataset."""
    if is_hf_dataset(source):
        return True
    if isinstance(source, (str, os.PathLike)):
        source = [source]
    if not is_path_list(source):
        return False
    return any(inner_suffix(p) in TEXT_INPUTS or is_columnar(p)
               or is_source_text(p, in_dir, tokenizer, options.get("dtype"))
               for p, in_dir in expand_inputs(source, options.get("include")))


def expand_inputs(paths, include=None) -> list[tuple[Path, bool]]:
    """(file, found in a directory) for each input: a file as given, a directory's files
    recursively in sorted order. In a directory, hidden names and symbolic links are skipped
    and a file is kept if its path inside the directory matches one of ``include`` (glob
    patterns), by default if it is a known input (text, token, columnar file); a Megatron
    dataset is read once, by its .idx, whatever the patterns. A directory that cannot be
    listed is a FileAccessError, a file name that is not UTF-8 an InputError (the file's
    header records input names)."""
    if isinstance(include, str):
        include = [include]
    out = []
    for p in map(Path, paths):
        if not p.is_dir():  # a directory named, through a link or not, is read
            out.append((utf8_name(p), False))
            continue
        found = []
        for top, dirs, names in os.walk(p, onerror=_unlistable):  # links to directories
            # are listed, not entered
            dirs[:] = [d for d in dirs if not d.startswith(".")
                       and not os.path.islink(os.path.join(top, d))]
            for name in names:
                path = Path(top, name)
                if name.startswith(".") or path.is_symlink():
                    continue
                rel = path.relative_to(p)
                if path.suffix == ".bin" and path.with_suffix(".idx").exists():
                    continue  # a Megatron dataset's data: read with its .idx
                if include:
                    keep = any(fnmatch.fnmatch(rel.as_posix(), pat) for pat in include)
                else:
                    keep = known_input(path)
                if keep:
                    found.append((rel.parts, path))
        out += [(utf8_name(path), True) for _, path in sorted(found)]
    return out


def _unlistable(exc: OSError) -> None:
    """os.walk's error handler: a directory of the tree that cannot be listed stops the
    build (it is never left out without a word)."""
    raise FileAccessError(f"cannot list the directory {exc.filename}: "
                          f"{exc.strerror or exc}; make it readable or move it out of the "
                          "tree") from None


def utf8_name(path: Path) -> Path:
    """``path``, once its name is UTF-8 (an undecodable byte would stop the build as it writes
    the names into the header); InputError naming it otherwise."""
    try:
        path.name.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(path).decode("utf-8", "backslashreplace")
        raise InputError(f"the file name {shown} is not UTF-8 (the output's header records "
                         "input names as UTF-8): rename it or leave it out") from None
    return path


def is_source_text(path: Path, in_dir: bool, tokenizer, dtype) -> bool:
    """Whether ``path`` is read as text whatever its suffix (one document per file, e.g.
    source code): with a tokenizer and no --dtype, a file of no known input kind (one named
    compressed is refused instead: only .txt/.jsonl may be)."""
    return tokenizer is not None and dtype is None and not is_megatron(path) and \
        not known_input(path) and (in_dir or path.suffix not in COMPRESSED)


def none_found(paths: list, include, tokenizer) -> str:
    """The message for input directories with no file to read: what they hold, and the
    option that reads it."""
    if not paths:
        return "no input files given"
    message = f"no input files given (none found in {', '.join(map(str, paths))}" \
        f"{' matching ' + ' '.join(include) if include else ''})"
    if include:
        return message
    counts: dict[str, int] = {}
    for p in map(Path, paths):
        for top, dirs, names in os.walk(p, onerror=_unlistable):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in names:
                if not name.startswith("."):
                    suffix = Path(name).suffix
                    counts[suffix] = counts.get(suffix, 0) + 1
    if not counts:
        return message
    top = sorted(counts.items(), key=lambda x: (-x[1], x[0]))
    held = ", ".join(f"{n:,} {s or 'suffix-less'} file{'s' if n > 1 else ''}"
                     for s, n in top[:3])
    pattern = f"*{top[0][0]}" if top[0][0] else "*"
    return (f"{message}; found there: {held}. Files of other kinds than "
            f"{', '.join(TEXT_INPUTS + TOKEN_INPUTS + COLUMNAR)} are read as text (one "
            "document per file) when --include matches them: give "
            f"{'' if tokenizer else '--tokenizer tokenizer.json '}--include '{pattern}'")


def known_input(path: Path) -> bool:
    """Whether ``path`` is named as a known input kind (text, token or columnar file)."""
    suffix = inner_suffix(path)
    return suffix in TEXT_INPUTS or (path.suffix not in COMPRESSED and (
        suffix in TOKEN_INPUTS or is_columnar(path)))


def file_size(path: Path) -> int:
    """The size of ``path`` in bytes (0 where unknown: progress only)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def input_files(source, *, boundaries=None, tokenizer=None, include=None,
                **_) -> list[tuple[str, Path]]:
    """(what, path) of every file a build of ``source`` reads: input files (those found in
    directories, both files of a Megatron dataset), the tokenizer and the document-lengths
    file."""
    files = []
    if isinstance(source, (str, os.PathLike)):
        source = [source]
    if is_path_list(source):
        for p, _ in expand_inputs(source, include):
            if is_megatron(p):
                files += [("input", p.with_suffix(".bin")), ("input", p.with_suffix(".idx"))]
            else:
                files.append(("input", p))
    if boundaries is not None:
        files.append(("document-lengths file", Path(boundaries)))
    if tokenizer is not None:
        files.append(("tokenizer", utf8_name(Path(tokenizer))))  # its name is recorded too
    return files
