"""Every user mistake is an ngramds error (InputError / FormatError, ValueErrors;
FileAccessError, an OSError) in the library, and one line `ngramds: error: ...` with exit 2,
without a traceback, in the CLI."""
import os

import numpy as np
import pytest

import ngramds
from cli_helpers import run_cli
from helpers import write_megatron

NGRAMDS_ERRORS = (ngramds.NgramdsError,)


def bad_inputs(tmp):
    """(name, library call, CLI args, message pattern) for every user mistake."""
    (tmp / "u16.bin").write_bytes(np.arange(5, dtype=np.uint16).tobytes() + b"\x01")
    np.save(tmp / "float.npy", np.ones(4))
    np.save(tmp / "neg.npy", np.array([1, -2, 3]))
    np.save(tmp / "big.npy", np.array([1, 70000]))
    np.save(tmp / "empty.npy", np.array([], np.int64))
    np.save(tmp / "ok.npy", np.array([1, 2, 3]))
    (tmp / "bad.txt").write_bytes(b"good\n\xc3\x28 bad\n")
    write_megatron(tmp / "magic", [[1, 2]], magic=b"XXXXXXXX\x00")
    write_megatron(tmp / "version", [[1, 2]], version=3)
    (tmp / "unreadable.npy").write_bytes(b"")
    os.chmod(tmp / "unreadable.npy", 0)
    out = tmp / "o.ngds"
    return [
        ("missing input", lambda: ngramds.build(tmp / "nope.npy", out),
         ["build", tmp / "nope.npy", "-o", out], "does not exist"),
        ("wrong dtype", lambda: ngramds.build(tmp / "u16.bin", out, dtype="uint16"),
         ["build", tmp / "u16.bin", "-o", out, "--dtype", "uint16"], "not a multiple"),
        ("no dtype", lambda: ngramds.build(tmp / "u16.bin", out),
         ["build", tmp / "u16.bin", "-o", out], "--dtype"),
        ("float ids", lambda: ngramds.build(tmp / "float.npy", out),
         ["build", tmp / "float.npy", "-o", out], "integers"),
        ("negative id", lambda: ngramds.build(tmp / "neg.npy", out),
         ["build", tmp / "neg.npy", "-o", out], "negative token id"),
        ("id >= vocab", lambda: ngramds.build(tmp / "big.npy", out, vocab_size=65536),
         ["build", tmp / "big.npy", "-o", out, "--vocab-size", "65536"], ">= vocab_size"),
        ("empty corpus", lambda: ngramds.build(tmp / "empty.npy", out),
         ["build", tmp / "empty.npy", "-o", out], "empty"),
        ("order < 1", lambda: ngramds.build(tmp / "ok.npy", out, order=0),
         ["build", tmp / "ok.npy", "-o", out, "--order", "0"], "order must be"),
        ("order > 16", lambda: ngramds.build(tmp / "ok.npy", out, order=17),
         ["build", tmp / "ok.npy", "-o", out, "--order", "17"], "order must be"),
        ("megatron magic", lambda: ngramds.build(tmp / "magic.bin", out),
         ["build", tmp / "magic.bin", "-o", out], "MMIDIDX"),
        ("megatron version", lambda: ngramds.build(tmp / "version.bin", out),
         ["build", tmp / "version.bin", "-o", out], "version 3"),
        ("text without tokenizer", lambda: ngramds.build(tmp / "bad.txt", out),
         ["build", tmp / "bad.txt", "-o", out], "--tokenizer"),
        ("missing tokenizer", lambda: ngramds.build(tmp / "bad.txt", out,
                                                    tokenizer=tmp / "none.json"),
         ["build", tmp / "bad.txt", "-o", out, "--tokenizer", tmp / "none.json"],
         "tokenizer file"),
        ("no output dir", lambda: ngramds.build(tmp / "ok.npy", tmp / "no" / "x.ngds"),
         ["build", tmp / "ok.npy", "-o", tmp / "no" / "x.ngds"], "output directory"),
        ("open other kind", lambda: ngramds.open(tmp / "ok.npy"),
         ["info", tmp / "ok.npy"], "not an ngramds file"),
        ("open directory", lambda: ngramds.open(tmp),
         ["info", tmp], "directory"),
    ]


def test_bad_inputs_are_one_error_in_the_library_and_one_line_in_the_cli(tmp_path):
    for name, call, args, pattern in bad_inputs(tmp_path):
        with pytest.raises(NGRAMDS_ERRORS, match=pattern):
            call()
        r = run_cli(*args, timeout=None)
        assert r.returncode == 2, name
        errors = [line for line in r.stderr.splitlines() if "error" in line]
        assert errors == r.stderr.splitlines()[-1:], (name, r.stderr)  # one line, the last
        assert errors[0].startswith("ngramds: error:") and pattern.strip("-") in errors[0]
        assert "Traceback" not in r.stderr
        assert not (tmp_path / "o.ngds").exists()


def test_errors_are_value_or_os_errors():
    assert issubclass(ngramds.InputError, ValueError)
    assert issubclass(ngramds.FormatError, ValueError)
    assert issubclass(ngramds.FileAccessError, OSError)
