"""Partial results are checked before a merge: a damaged, reordered,
hand-edited or forged partial gives exit 2 and one line, never a crash, a traceback or a
silently wrong file."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ngramds
from helpers import run_sizes
from ngramds.cli import main

HERE = {"PYTHONPATH": str(Path(ngramds.__file__).resolve().parents[1])}
OPTS = ["--orders", "1-3", "--eos-id", "0", "-q"]


def main_sized(args) -> int:
    with run_sizes(700, 300):  # several runs per shard and buckets per order
        return main(args)


def merge_cli(*args):
    """`ngramds merge ARGS` in a subprocess: a crash of the merge is a failure, not the end
    of the test run."""
    return subprocess.run([sys.executable, "-m", "ngramds.cli", "merge", *map(str, args)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **HERE})


def one_error_line(err: str, *words) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ngramds: error: "), err
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Two partials p0, p1 of two shards and the file their merge gives."""
    d = tmp_path_factory.mktemp("partials")
    rng = np.random.default_rng(3)
    for i, n in enumerate((2000, 1500)):
        t = (rng.zipf(1.3, n) % 200).astype(np.uint16)
        t[rng.random(n) < 0.03] = 0
        np.save(d / f"s{i}.npy", t)
        assert main_sized(["build", str(d / f"s{i}.npy"), "--partial", "-o",
                           str(d / f"p{i}"), *OPTS]) == 0
    assert main_sized(["merge", str(d / "p0"), str(d / "p1"), "-o", str(d / "m.ngds"),
                       "-q"]) == 0
    return d


@pytest.fixture
def parts(base, tmp_path):
    for name in ("p0", "p1"):
        shutil.copytree(base / name, tmp_path / name)
    return tmp_path


def npy(path: Path, edit):
    """Rewrite the .npy ``path`` after ``edit(array)`` (in place, same header)."""
    arr = np.load(path)
    edit(arr)
    np.save(path, arr)


def manifest(part: Path, edit):
    info = json.loads((part / "manifest.json").read_text())
    edit(info)
    (part / "manifest.json").write_text(json.dumps(info))


def first(part: Path, name: str, order: int = 3) -> Path:
    return sorted(part.glob(f"order{order}/*/{name}"))[0]


def swap_rows(a):
    a[[1, 2]] = a[[2, 1]]


def set_item(index, value):
    def edit(a):
        a[index] = value
    return edit


# ----------------------------------------------------------- tampering (runs on any version)
TAMPER = {
    "flipped byte in local.npy": lambda p: _flip(first(p, "local.npy"), -5),
    "local id past the run": lambda p: npy(first(p, "local.npy"), set_item(7, 4_000_000)),
    "reordered keys.npy": lambda p: npy(first(p, "keys.npy"), swap_rows),
    "count changed": lambda p: npy(first(p, "counts.npy"), set_item(0, 999)),
    "token changed": lambda p: npy(p / "tokens.npy", set_item(5, 7)),
    "truncated ctx.npy": lambda p: first(p, "ctx.npy").write_bytes(
        first(p, "ctx.npy").read_bytes()[:-8]),
    "manifest num_tokens changed": lambda p: manifest(p, lambda m: m.update(
        num_tokens=m["num_tokens"] + 1)),
    "manifest without num_tokens": lambda p: manifest(p, lambda m: m.pop("num_tokens")),
    "manifest orders of the wrong type": lambda p: manifest(p, lambda m: m.update(orders="3")),
    "manifest runs of the wrong type": lambda p: manifest(p, lambda m: m.update(runs=[1])),
    "manifest doc_offsets not rising": lambda p: manifest(p, lambda m: m["doc_offsets"].insert(
        1, m["num_tokens"])),
    "manifest top_k changed": lambda p: [manifest(q, lambda m: m.update(top_k=1))
                                         for q in (p, p.parent / "p0")],
    "manifest not JSON": lambda p: (p / "manifest.json").write_text("{not json"),
}


def _flip(path: Path, at: int):
    data = bytearray(path.read_bytes())
    data[at] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("case", sorted(TAMPER))
def test_a_tampered_partial_is_refused(parts, case):
    TAMPER[case](parts / "p1")
    r = merge_cli(parts / "p0", parts / "p1", "-o", parts / "m.ngds", "-q")
    assert r.returncode == 2, (r.returncode, r.stderr[-1500:])
    one_error_line(r.stderr, "/p1:" if "top_k" not in case else "/p0:")
    assert not (parts / "m.ngds").exists()


# ----------------------------------------------------------- forged partials (checksums redone)
def resign(part: Path) -> None:
    """Recompute every checksum of ``part``, as a forger (or a bug) would."""
    from ngramds.builder.partials import _body_crc, file_record
    info = json.loads((part / "manifest.json").read_text())
    info.pop("checksum", None)
    for name in info["files"]:
        info["files"][name] = vars(file_record(part / name))
    info["checksum"] = _body_crc(info)
    (part / "manifest.json").write_text(json.dumps(info))


def _run_of(part: Path, order: int = 3) -> dict:
    info = json.loads((part / "manifest.json").read_text())
    return info["runs"][str(order)][0]


FORGED = {
    "local id past the run": (lambda p: npy(first(p, "local.npy"), set_item(7, 4_000_000)),
                              "past the run"),
    "local ids moved between contexts": (
        lambda p: npy(first(p, "local.npy"), lambda a: a.__setitem__(
            slice(0, 2), [a[0], (a[0] + 1) % (a.max() + 1)])), "disagree with the counts"),
    "reordered keys": (lambda p: npy(first(p, "keys.npy"), swap_rows), "not strictly sorted"),
    "zero count": (lambda p: npy(first(p, "counts.npy"), set_item(0, 0)), "count"),
    "key token past max_id": (
        lambda p: npy(first(p, "keys.npy", order=1), lambda a: a.__setitem__(
            (-1, 0), a[-1, 0] | np.uint64(0xFFFF << 48))), "past the partial's largest"),
    "stray bit in a key": (lambda p: npy(first(p, "keys.npy"), lambda a: a.__setitem__(
        (0, -1), a[0, -1] | np.uint64(1))), "outside its fields"),
    "context numbers": (lambda p: npy(first(p, "ctx.npy"), set_item(-1, 0)), "context numbers"),
    "token past max_id": (lambda p: npy(p / "tokens.npy", set_item(3, 60000)), "holds ids"),
    "token changed": (lambda p: npy(p / "tokens.npy", set_item(3, 1)), "not made from"),
    "keys of another dtype": (lambda p: np.save(first(p, "keys.npy"), np.load(
        first(p, "keys.npy")).astype(np.uint32)), "not uint64"),
    "local.npy short": (lambda p: np.save(first(p, "local.npy"),
                                          np.load(first(p, "local.npy"))[:-1]), "not uint32"),
    "pickled array": (lambda p: np.save(first(p, "ctx.npy"), np.array([{}], dtype=object),
                                        allow_pickle=True), "not a readable"),
    "doc_offsets not rising": (lambda p: manifest(p, lambda m: m["doc_offsets"].insert(
        1, m["num_tokens"])), "doc_offsets"),
    "path outside the partial": (lambda p: manifest(p, lambda m: m["runs"]["3"][0].update(
        path="../../etc")), "inside the partial"),
    "more contexts than keys": (lambda p: manifest(p, lambda m: m["runs"]["3"][0].update(
        num_contexts=10**15)), "impossible"),
    "max_id past the key width": (lambda p: manifest(p, lambda m: m.update(max_id=2**40)),
                                  "max_id"),
    "a file without checksum": (lambda p: manifest(p, lambda m: m["files"].pop("tokens.npy")),
                                "no checksum"),
}


@pytest.mark.parametrize("case", sorted(FORGED))
def test_a_forged_partial_is_refused_by_its_structure(parts, capsys, case):
    edit, words = FORGED[case]
    edit(parts / "p1")
    resign(parts / "p1")
    assert main(["merge", str(parts / "p0"), str(parts / "p1"), "-o", str(parts / "m.ngds"),
                 "-q"]) == 2
    one_error_line(capsys.readouterr().err, "p1", words)
    assert not (parts / "m.ngds").exists()


def test_tokens_swapped_between_partials_are_refused(base, tmp_path, capsys):
    """Same sizes, valid checksums, but the runs were made from other tokens."""
    for name in ("p0", "p1"):
        shutil.copytree(base / name, tmp_path / name)
    t0, t1 = np.load(tmp_path / "p0" / "tokens.npy"), np.load(tmp_path / "p1" / "tokens.npy")
    np.save(tmp_path / "p1" / "tokens.npy", t0[:t1.size])
    resign(tmp_path / "p1")
    assert main(["merge", str(tmp_path / "p0"), str(tmp_path / "p1"), "-o",
                 str(tmp_path / "m.ngds"), "-q"]) == 2
    one_error_line(capsys.readouterr().err, "p1")


def test_an_old_partial_without_checksums_is_refused(parts, capsys):
    manifest(parts / "p0", lambda m: m.update(version=1))
    assert main(["merge", str(parts / "p0"), "-o", str(parts / "m.ngds"), "-q"]) == 2
    one_error_line(capsys.readouterr().err, "version 1", "rebuild")


def test_partials_carry_checksums_of_every_file(base):
    info = json.loads((base / "p0" / "manifest.json").read_text())
    files = {p.relative_to(base / "p0").as_posix() for p in (base / "p0").rglob("*.npy")}
    assert set(info["files"]) == files and isinstance(info["checksum"], int)
    assert not (base / "p0" / "ngramds.lock").exists()


# ----------------------------------------------------------- fuzzing
@given(data=st.data())
@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_a_random_byte_changed_in_a_partial_is_refused_or_harmless(base, tmp_path_factory,
                                                                  capsys, data):
    d = tmp_path_factory.mktemp("fuzz")
    for name in ("p0", "p1"):
        shutil.copytree(base / name, d / name)
    files = sorted(p for p in (d / data.draw(st.sampled_from(["p0", "p1"]))).rglob("*")
                   if p.is_file())
    path = data.draw(st.sampled_from(files), label="file")
    buf = bytearray(path.read_bytes())
    at = data.draw(st.integers(0, len(buf) - 1), label="byte")
    buf[at] ^= data.draw(st.integers(1, 255), label="xor")
    path.write_bytes(bytes(buf))
    code = main(["merge", str(d / "p0"), str(d / "p1"), "-o", str(d / "m.ngds"), "-q"])
    err = capsys.readouterr().err
    if code == 0:  # only a change that means nothing (JSON whitespace) may pass
        assert (d / "m.ngds").read_bytes() == (base / "m.ngds").read_bytes()
    else:
        assert code == 2 and not (d / "m.ngds").exists()
        one_error_line(err)
    shutil.rmtree(d)
