"""Atomic file writing: temporary file, magic written last, fsync, rename."""
from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

from ..errors import FileAccessError, os_errors_as
from . import format as fmt
from .temporaries import remove_stale, temporary_file


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
    a new temporary beside ``path`` (see :mod:`.temporaries`) whose first 8 bytes stay zero
    until everything else is on disk, so the output path never holds a file that opens as
    valid before the build is complete.
    """
    path = Path(path)
    check_output_dir(path)
    remove_stale(path.parent, path.name)
    sources = {name: a if isinstance(a, SectionSource) else SectionSource.of_array(a)
               for name, a in arrays.items()}
    sections = fmt.layout(header_fields, [(name, s.nbytes, s.dtype, s.shape)
                                          for name, s in sources.items()])
    with os_errors_as(f"disk full while writing {path}; free space or choose another output "
                      "path (nothing was written)", f"cannot write {path}"):
        with temporary_file(path) as (f, tmp):
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
            f.write(fmt.pack_preamble(header, magic=b"\0" * 8,
                                      flags=fmt.header_flags(header_fields)))
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
