"""Running the CLI in tests and checking what it says and what it leaves behind; re-encoding
a file's header as a crafted file would."""
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import msgpack
import pytest

import ngramds
from ngramds.cli import main

# subprocesses import the ngramds this process imported
SUBPROCESS_ENV = {"PYTHONPATH": str(Path(ngramds.__file__).resolve().parents[1])}


def cli(capsys, *args):
    """(exit code, stdout, stderr) of `ngramds ARGS` run in this process."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def run_cli(*args, env=None, timeout=120, **kw):
    """`python -m ngramds.cli ARGS` in a subprocess (for hangs, crashes and signals)."""
    return subprocess.run([sys.executable, "-m", "ngramds.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **SUBPROCESS_ENV, **(env or {})}, **kw)


def one_error_line(err: str, *words) -> str:
    """The single line of ``err``: "ngramds: error: ..." naming ``words``."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ngramds: error: "), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def snapshot(directory: Path) -> dict:
    """name -> bytes (or "<dir>", or "-> target" for links) of everything in ``directory``."""
    out = {}
    for p in sorted(directory.rglob("*")):
        rel = p.relative_to(directory).as_posix()
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_dir():
            out[rel] = "<dir>"
        else:
            out[rel] = p.read_bytes()
    return out


def dead_pid() -> int:
    """A process id that no live process has (skips the test if none is found)."""
    for pid in range(4_000_000, 4_100_000, 997):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
    pytest.skip("no free PID found")


def boom(*args, **kwargs):
    """Stands in for a function that must not be called."""
    raise AssertionError("the build started before the options were checked")


def rewrite_header(path: Path, edit) -> None:
    """Re-encode ``path``'s header after ``edit(header)`` with a valid CRC, the sections moved
    (by a multiple of 64 bytes) to make room."""
    from ngramds.file import format as fmt
    data = path.read_bytes()
    header_len = struct.unpack_from("<Q", data, 16)[0]
    header = msgpack.unpackb(data[32:32 + header_len])
    start = min(s["offset"] for s in header["sections"])
    edit(header)
    shift = 64 * 64
    for s in header["sections"]:
        s["offset"] += shift
    raw = msgpack.packb(header, use_bin_type=True)
    assert 32 + len(raw) <= start + shift
    out = struct.pack("<8sIIQII", b"\x93NGRAMDS", fmt.FORMAT_VERSION, 0, len(raw),
                      zlib.crc32(raw), 0) + raw
    path.write_bytes(out + bytes(start + shift - len(out)) + data[start:])
