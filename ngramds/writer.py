"""Atomic file writing: temporary file, magic written last, fsync, rename."""
from __future__ import annotations

import errno
import os
import warnings
import zlib
from pathlib import Path

import numpy as np

from . import format as fmt
from .errors import FileAccessError

TMP_MARK = ".tmp-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temporaries(path: Path) -> list[Path]:
    """Remove temporary files of earlier builds of ``path`` whose process is gone."""
    removed = []
    for tmp in path.parent.glob(f"{path.name}{TMP_MARK}*"):
        pid = tmp.name.rsplit(TMP_MARK, 1)[1].split(".")[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass
    if removed:
        warnings.warn(f"removed {len(removed)} leftover temporary file(s) of an interrupted build "
                      f"of {path}", stacklevel=3)
    return removed


def check_output_dir(path: Path) -> None:
    """Raise unless the directory ``path`` will be written to exists."""
    if not Path(path).parent.is_dir():
        raise FileAccessError(f"output directory {Path(path).parent} does not exist; "
                              "create it first")


class SectionSource:
    """A section to write: dtype, shape and a way to produce its bytes in chunks."""

    def __init__(self, dtype, shape, chunks):
        self.dtype, self.shape, self._chunks = np.dtype(dtype), tuple(shape), chunks
        self.nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    @classmethod
    def of_array(cls, arr: np.ndarray) -> "SectionSource":
        arr = np.ascontiguousarray(arr)
        return cls(arr.dtype, arr.shape, lambda: [arr])

    def chunks(self):
        """Arrays whose values, back to back and converted to ``dtype``, are the section."""
        return self._chunks()


def write_atomic(path: Path, header_fields: dict, arrays: dict) -> int:
    """Write an ngramds file to ``path`` atomically; return its size in bytes.

    ``arrays`` maps section names (in file order) to arrays or :class:`SectionSource`, each
    streamed once: sections first (checksummed as they go), then the header. The data goes to
    ``PATH.tmp-PID`` whose first 8 bytes stay zero until everything else is on disk, so neither
    the temporary nor the output path ever holds a file that opens as valid before the build is
    complete.
    """
    path = Path(path)
    check_output_dir(path)
    clean_stale_temporaries(path)
    sources = {name: a if isinstance(a, SectionSource) else SectionSource.of_array(a)
               for name, a in arrays.items()}
    sections = fmt.layout(header_fields, [(name, s.nbytes, s.dtype, s.shape)
                                          for name, s in sources.items()])
    tmp = path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            for section in sections:
                f.seek(section.offset)
                written, crc = 0, 0
                for arr in sources[section.name].chunks():
                    arr = np.ascontiguousarray(arr, dtype=section.dtype)
                    if arr.nbytes:
                        data = memoryview(arr).cast("B")
                        f.write(data)
                        crc = zlib.crc32(data, crc)
                        written += arr.nbytes
                if written != section.length:
                    raise RuntimeError(f"section {section.name} produced {written} bytes, "
                                       f"expected {section.length}")
                section.crc32 = crc & 0xFFFFFFFF
            end = sections[-1].offset + sections[-1].length if sections else f.tell()
            header = fmt.encode_header(dict(header_fields,
                                            sections=[s.to_header() for s in sections]))
            f.seek(0)
            f.write(fmt.pack_preamble(header, magic=b"\0" * 8))
            f.write(header)
            f.truncate(end)
            f.flush()
            os.fsync(f.fileno())
            f.seek(0)
            f.write(fmt.MAGIC)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        return end
    except BaseException as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        if isinstance(exc, OSError):
            if exc.errno == errno.ENOSPC:
                raise FileAccessError(f"disk full while writing {path}; free space or choose "
                                      "another output path (nothing was written)") from None
            raise FileAccessError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
