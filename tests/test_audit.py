"""Issue 13, "never destroy a user's file, never crash, never hang": one regression test per
case of the outside audit that lives in the CLI, the builder, the readers of corpora and the
file reader. Each failed (traceback, wrong exit, lost file, hang or crash) before the fix.

The tests use only the CLI and the public API, so that they also run against older versions
(tools/robustness_table.py lists which item each test covers)."""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import msgpack
import numpy as np
import pytest

import ngramds
from helpers import train_small_tokenizer, write_jsonl, write_megatron
from ngramds.cli import main
from ngramds.file import format as fmt


def cli(capsys, *args):
    """(exit code, stdout, stderr) of `ngramds ARGS` run in this process."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# subprocesses import the ngramds this process imported
HERE = {"PYTHONPATH": str(Path(ngramds.__file__).resolve().parents[1])}


def run(*args, env=None, timeout=120, **kw):
    """`python -m ngramds.cli ARGS` in a subprocess (for hangs, crashes and signals)."""
    return subprocess.run([sys.executable, "-m", "ngramds.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **HERE, **(env or {})}, **kw)


def one_error_line(err: str, *words) -> str:
    """The single line of ``err``: "ngramds: error: ..." naming ``words``."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ngramds: error: "), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


@pytest.fixture
def d(tmp_path):
    """A scratch directory with a small token file a.npy (EOS 0) and its bytes."""
    rng = np.random.default_rng(0)
    tokens = (rng.zipf(1.3, 3000) % 300).astype(np.uint16)
    np.save(tmp_path / "a.npy", tokens)
    return tmp_path


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


def boom(*args, **kwargs):
    raise AssertionError("the build started before the options were checked")


# ============================================================ 1. outputs that are inputs
def _inputs(d):
    (np.arange(400, dtype=np.uint16) % 50).tofile(d / "raw.bin")
    write_megatron(d / "mega", [[1, 2, 3, 4], [5, 6, 7]])
    np.save(d / "lengths.npy", np.array([1000, 2000]))
    tok = d / "tok.json"
    train_small_tokenizer(tok, ["hello world, this is some text"] * 20)
    write_jsonl(d / "t.jsonl", ["hello world"] * 5)
    os.symlink(d / "a.npy", d / "link.npy")
    os.link(d / "a.npy", d / "hard.npy")


SAME = {
    "npy": ["a.npy", "-o", "a.npy"],
    "raw .bin": ["raw.bin", "--dtype", "uint16", "-o", "raw.bin"],
    "megatron .bin": ["mega.bin", "-o", "mega.bin"],
    "megatron .idx": ["mega.bin", "-o", "mega.idx"],
    "tokenizer": ["t.jsonl", "--tokenizer", "tok.json", "-o", "tok.json"],
    "doc lengths": ["a.npy", "--doc-lengths", "lengths.npy", "-o", "lengths.npy"],
    "memory limit": ["a.npy", "--memory-limit", "4G", "-o", "a.npy"],
    "partial": ["a.npy", "--partial", "-o", "a.npy"],
    "symlink": ["a.npy", "-o", "link.npy"],
    "hard link": ["a.npy", "-o", "hard.npy"],
    "val output = input": ["a.npy", "--eos-id", "0", "--val-fraction", "0.2",
                           "--val-output", "a.npy", "-o", "o.ngds"],
    "val output = output": ["a.npy", "--eos-id", "0", "--val-fraction", "0.2",
                            "--val-output", "o.ngds", "-o", "o.ngds"],
    "val output = output (bounded)": ["a.npy", "--eos-id", "0", "--val-fraction", "0.2",
                                      "--memory-limit", "4G", "--val-output", "./o.ngds",
                                      "-o", "o.ngds"],
}


@pytest.mark.parametrize("case", sorted(SAME))
def test_i1_output_that_is_an_input_or_another_output_is_refused(d, capsys, monkeypatch, case):
    _inputs(d)
    before = snapshot(d)
    monkeypatch.chdir(d)
    code, _, err = cli(capsys, "build", *SAME[case], "-q")
    assert code == 2
    one_error_line(err)
    assert snapshot(d) == before  # input untouched, nothing written


def test_i1_library_refuses_output_that_is_an_input(d):
    _inputs(d)
    before = snapshot(d)
    for kwargs in ({}, {"memory_limit": "4G"}):
        with pytest.raises(ngramds.InputError, match="input"):
            ngramds.build([str(d / "a.npy")], d / "hard.npy", progress=False, **kwargs)
        with pytest.raises(ngramds.InputError, match="input"):
            ngramds.build(str(d / "a.npy"), str(d / "a.npy"), progress=False, **kwargs)
    with pytest.raises(ngramds.InputError, match="input"):
        ngramds.build([str(d / "t.jsonl")], d / "tok.json", tokenizer=d / "tok.json",
                      progress=False)
    assert snapshot(d) == before


def test_i1_merge_output_that_is_a_partial_file_is_refused(d, capsys):
    assert cli(capsys, "build", d / "a.npy", "--partial", "-o", d / "p", "--order", "2",
               "--memory-limit", "4G", "-q")[0] == 0
    before = snapshot(d)
    for target in (d / "p" / "tokens.npy", d / "p" / "manifest.json"):
        code, _, err = cli(capsys, "merge", d / "p", "-o", target, "--memory-limit", "4G", "-q")
        assert code == 2
        one_error_line(err)
    assert snapshot(d) == before


# ============================================================ 2-4. temporaries
def _dead_pid() -> int:
    for pid in range(4_000_000, 4_100_000, 997):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
    pytest.skip("no free PID found")


def test_i2_cleanup_touches_only_its_own_exact_names(d, capsys, monkeypatch):
    """`-o 'x*'` is a file name, not a pattern: files and directories that merely match the
    glob (old- or new-style temporary names of other outputs) stay."""
    pid = _dead_pid()
    (d / f"xnotes.tmp-{pid}.txt").write_text("my notes")
    (d / f"xdata.parts-{pid}").mkdir()
    (d / f"xdata.parts-{pid}" / "keep.txt").write_text("my data")
    (d / ".xnotes.abcd1234.ngds-tmp").write_bytes(b"\0" * 64)
    (d / ".xdata.abcd1234.ngds-parts").mkdir()
    (d / ".xdata.abcd1234.ngds-parts" / "ngramds.lock").touch()
    decoys = snapshot(d)
    monkeypatch.chdir(d)
    for extra in ([], ["--memory-limit", "4G"]):
        assert cli(capsys, "build", "a.npy", "-o", "x*", "-q", *extra)[0] == 0
        assert ngramds.open(d / "x*").num_tokens == 3000
        now = snapshot(d)
        assert {k: now[k] for k in decoys} == decoys


def test_i3_temporaries_of_a_running_build_are_never_removed(d, capsys, monkeypatch):
    """A build elsewhere (another PID namespace or host: its PID means nothing here) still
    holds its lock: neither its directory nor an old-style one named with a PID that is not
    alive here may be removed."""
    import fcntl
    pid = _dead_pid()
    old_style = d / f"o.ngds.parts-{pid}"
    (old_style / "order4").mkdir(parents=True)
    (old_style / "order4" / "run.npy").write_bytes(b"running")
    new_style = d / ".o.ngds.r4nn1ng0.ngds-parts"
    new_style.mkdir()
    (new_style / "run.npy").write_bytes(b"running")
    lock = open(new_style / "ngramds.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)  # as the running build holds it
    tmp_file = d / ".o.ngds.r4nn1ng1.ngds-tmp"
    tmp_file.write_bytes(b"\0" * 64)
    held = open(tmp_file, "rb")
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        keep = snapshot(d)
        monkeypatch.chdir(d)
        for extra in ([], ["--memory-limit", "4G"]):
            assert cli(capsys, "build", "a.npy", "-o", "o.ngds", "-q", *extra)[0] == 0
            now = snapshot(d)
            assert {k: now[k] for k in keep} == keep
    finally:
        lock.close()
        held.close()


def test_i4_a_planted_symlink_at_a_temporary_name_is_never_followed(d):
    victim = d / "victim.txt"
    victim.write_text("precious")
    outside = d / "outside"
    outside.mkdir()
    pid = os.getpid()
    for name in (f"o.ngds.tmp-{pid}", f".o.ngds.tmp-{pid}", ".o.ngds.s1mlink0.ngds-tmp"):
        os.symlink(victim, d / name)
    os.symlink(outside, d / f"o.ngds.parts-{pid}")
    os.symlink(outside, d / ".o.ngds.s1mlink1.ngds-parts")
    for kwargs in ({}, {"memory_limit": "4G"}):
        ngramds.build([str(d / "a.npy")], d / "o.ngds", progress=False, **kwargs)
        assert victim.read_text() == "precious" and list(outside.iterdir()) == []
        assert not (d / "o.ngds").is_symlink() and (d / "o.ngds").is_file()
        assert ngramds.open(d / "o.ngds", verify=True).num_tokens == 3000


# ============================================================ 10. input changed mid-build
@pytest.mark.parametrize("how", ["rewritten", "replaced", "same size and mtime"])
@pytest.mark.parametrize("stage", ["sorting runs", "merging"])
def test_i10_input_changed_during_a_bounded_build_is_refused(d, monkeypatch, how, stage):
    import ngramds.progress
    src = d / "a.npy"
    original = np.load(src)
    step = ngramds.progress.Progress.step

    def change(self, name):
        if name == stage:
            other = original.copy()
            other[100:200] = (other[100:200] + 1) % 300
            st = os.stat(src)
            if how == "replaced":
                np.save(d / "new.npy", other)
                os.replace(d / "new.npy", src)
            else:
                with open(src, "r+b") as f:  # in place, same size
                    f.seek(st.st_size - other.nbytes)
                    f.write(other.tobytes())
                if how == "same size and mtime":
                    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
        return step(self, name)

    monkeypatch.setattr(ngramds.progress.Progress, "step", change)
    with pytest.raises(ngramds.NgramdsError, match="changed"):
        ngramds.build([str(src)], d / "o.ngds", order=3, memory_limit="4G", progress=True)
    assert not (d / "o.ngds").exists()
    assert sorted(p.name for p in d.iterdir()) == ["a.npy"]


# ============================================================ 11. resource limits
def test_i11_huge_order_ranges_are_refused_at_once(d, capsys):
    for orders in ("1-1000000000000", "1-1e12", "2-17", "3-1", "0-2"):
        t = time.perf_counter()
        code, _, err = cli(capsys, "build", d / "a.npy", "-o", d / "o.ngds", "--orders", orders)
        assert code == 2 and time.perf_counter() - t < 5
        one_error_line(err, "orders")


HEADER_BOMB = """
import resource, struct, sys, zlib
import ngramds
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    ngramds.open(sys.argv[1])
    print("opened")
except ngramds.FormatError as exc:
    print("refused:", exc)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024, "MiB")
"""


def test_i11_a_header_of_millions_of_empty_maps_is_refused_in_little_memory(tmp_path):
    n = 16_000_000
    header = b"\xdd" + n.to_bytes(4, "big") + b"\x80" * n  # array32 of empty maps
    path = tmp_path / "bomb.ngds"
    path.write_bytes(struct.pack("<8sIIQII", b"\x93NGRAMDS", fmt.FORMAT_VERSION, 0, len(header),
                                 zlib.crc32(header), 0) + header)
    script = tmp_path / "bomb.py"
    script.write_text(HEADER_BOMB)
    r = subprocess.run([sys.executable, script, path], capture_output=True, text=True,
                       timeout=120, env={**os.environ, **HERE})
    assert r.returncode == 0, r.stderr
    verdict, grown = r.stdout.splitlines()
    assert verdict.startswith("refused:")
    assert int(grown.split()[0]) < 100, r.stdout  # MiB beyond what the imports took


# ============================================================ tracebacks -> one line, exit 2
@pytest.mark.parametrize("out", ["", ".", "/", "{d}", "{d}/"])
def test_tb_output_that_is_a_directory_or_empty_is_refused_before_the_build(
        d, capsys, monkeypatch, out):
    import ngramds.builder
    monkeypatch.setattr(ngramds.builder, "build", boom)
    code, _, err = cli(capsys, "build", d / "a.npy", "-o", out.format(d=d), "-q")
    assert code == 2
    one_error_line(err)


@pytest.mark.parametrize("limit", ["inf", "nan", "1e400", "-1G", "0"])
def test_tb_memory_limit_not_a_size(d, capsys, limit):
    code, _, err = cli(capsys, "build", d / "a.npy", "-o", d / "o.ngds",
                       f"--memory-limit={limit}", "-q")
    assert code == 2
    one_error_line(err, "size")


@pytest.mark.parametrize("threads", ["-1", "0", "1000"])
def test_tb_threads_out_of_range(d, capsys, threads):
    code, _, err = cli(capsys, "build", d / "a.npy", "-o", d / "o.ngds", f"--threads={threads}",
                       "-q")
    assert code == 2
    one_error_line(err, "--threads")
    assert not (d / "o.ngds").exists()


def test_tb_megatron_without_tokens(d, capsys):
    write_megatron(d / "none", [])                  # zero sequences, empty .bin
    write_megatron(d / "empty", [[], []])           # sequences of no tokens, empty .bin
    write_megatron(d / "short", [[1, 2, 3]])
    (d / "short.bin").write_bytes(b"")              # the index names tokens the .bin lacks
    for name, words in (("none", ["empty"]), ("empty", ["empty"]), ("short", ["shorter"])):
        code, _, err = cli(capsys, "build", d / f"{name}.bin", "-o", d / "o.ngds", "-q")
        assert code == 2, name
        one_error_line(err, *words)


def test_tb_doc_lengths_not_integers(d, capsys):
    np.save(d / "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (d / "garbage.npy").write_bytes(b"\x93NUMPY" + b"garbage" * 20)
    np.save(d / "floats.npy", np.array([1000.0, 2000.0]))
    np.save(d / "matrix.npy", np.array([[1000, 2000]]))
    (d / "huge.txt").write_text("9" * 30 + "\n")
    for name in ("pickled.npy", "garbage.npy", "floats.npy", "matrix.npy", "huge.txt"):
        code, _, err = cli(capsys, "build", d / "a.npy", "--doc-lengths", d / name, "-o",
                           d / "o.ngds", "-q")
        assert code == 2, name
        one_error_line(err, name)


def test_tb_jsonl_deep_nesting_and_huge_integers(d, capsys):
    tok = d / "tok.json"
    train_small_tokenizer(tok, ["hello world"] * 10)
    (d / "deep.jsonl").write_text('{"text": "ok"}\n{"text": ' + "[" * 100_000 +
                                  "]" * 100_000 + "}\n")
    (d / "digits.jsonl").write_text('{"text": "ok", "n": ' + "9" * 5000 + "}\n")
    for name in ("deep.jsonl", "digits.jsonl"):
        code, _, err = cli(capsys, "build", d / name, "--tokenizer", tok, "-o", d / "o.ngds",
                           "-q")
        assert code == 2, name
        one_error_line(err, name)


def test_tb_top_k_and_seed_past_64_bits(d, capsys):
    code, _, err = cli(capsys, "build", d / "a.npy", "-o", d / "o.ngds", "--top-k", 2**70, "-q")
    assert code == 2
    one_error_line(err, "top_k")
    code, _, err = cli(capsys, "build", d / "a.npy", "-o", d / "o.ngds", "--eos-id", "0",
                       "--val-fraction", "0.2", "--val-output", d / "v.ngds", "--seed",
                       2**70, "-q")
    assert code == 2
    one_error_line(err, "seed")
    assert not (d / "o.ngds").exists() and not (d / "v.ngds").exists()


@pytest.fixture
def built(d, capsys):
    assert cli(capsys, "build", d / "a.npy", "-o", d / "o.ngds", "--eos-id", "0", "-q")[0] == 0
    return d / "o.ngds"


@pytest.mark.parametrize("ident", [2**63, 2**64 + 3, -1, -2**70, 300])
def test_tb_query_ids_outside_the_vocabulary(built, capsys, ident):
    code, _, err = cli(capsys, "query", built, "5", "--", ident)
    assert code == 2
    one_error_line(err, str(ident))


def _rewrite_header(path: Path, edit) -> None:
    """Re-encode ``path``'s header after ``edit(header)`` with a valid CRC, the sections moved
    (by a multiple of 64 bytes) to make room."""
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


def test_tb_info_json_of_a_header_holding_bytes(built, capsys):
    _rewrite_header(built, lambda h: h["build"].update(sources=[b"\xff\x00raw"],
                                                     note=msgpack.ExtType(5, b"x")))
    code, out, err = cli(capsys, "info", built, "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["build"]["sources"] == ["ff00726177"]


def test_tb_unknown_zero_length_section_of_a_huge_shape_is_ignored(built, capsys):
    def add(h):
        h["sections"].append({"name": "future/thing", "offset": max(
            s["offset"] for s in h["sections"]), "length": 0, "dtype": "<u8",
            "shape": [0, 2**62], "crc32": 0})
    _rewrite_header(built, add)
    assert cli(capsys, "info", built)[0] == 0
    assert cli(capsys, "verify", built)[0] == 0
    assert ngramds.open(built).distribution([5]) is not None


def test_tb_disk_full_during_a_bounded_build_and_a_merge(tmp_path, tmpfs, capsys):
    small = tmpfs("size=192k")
    rng = np.random.default_rng(1)
    np.save(tmp_path / "c.npy", rng.integers(0, 3000, 120_000).astype(np.uint16))
    code, _, err = cli(capsys, "build", tmp_path / "c.npy", "-o", tmp_path / "o.ngds",
                       "--memory-limit", "2G", "--tmp-dir", small, "-q")
    assert code == 2
    one_error_line(err, "disk full")
    assert list(small.iterdir()) == [] and not (tmp_path / "o.ngds").exists()
    assert cli(capsys, "build", tmp_path / "c.npy", "--partial", "-o", tmp_path / "p",
               "--memory-limit", "4G", "-q")[0] == 0
    for where in (["-o", small / "m.ngds"], ["-o", tmp_path / "m.ngds", "--tmp-dir", small]):
        code, _, err = cli(capsys, "merge", tmp_path / "p", *where, "--memory-limit", "4G",
                           "-q")
        assert code == 2
        one_error_line(err, "disk full")
        assert list(small.iterdir()) == [] and not (tmp_path / "m.ngds").exists()


def test_tb_unwritable_tmp_dir(d, tmpfs, capsys):
    ro = tmpfs("ro,size=64k")
    code, _, err = cli(capsys, "build", d / "a.npy", "-o", d / "o.ngds", "--memory-limit",
                       "4G", "--tmp-dir", ro, "-q")
    assert code == 2
    one_error_line(err, str(ro))
    assert not (d / "o.ngds").exists()


def test_tb_default_corpus_foreign_tokenizer_or_missing_directory(tmp_path, capsys,
                                                                 monkeypatch):
    pytest.importorskip("tokenizers")
    import ngramds.corpus.stdlib as stdlib
    monkeypatch.setattr(stdlib, "train_tokenizer", boom)  # nothing may be trained
    foreign = tmp_path / "c.tokenizer.json"
    foreign.write_text("my notes, not a tokenizer")
    t = time.perf_counter()
    code, _, err = cli(capsys, "build", "--default-corpus", "-o", tmp_path / "c.ngds", "-q")
    assert code == 2 and time.perf_counter() - t < 10
    one_error_line(err, "c.tokenizer.json")
    assert foreign.read_text() == "my notes, not a tokenizer"
    code, _, err = cli(capsys, "build", "--default-corpus", "-o", tmp_path / "no" / "c.ngds",
                       "-q")
    assert code == 2
    one_error_line(err, "does not exist")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.tokenizer.json"]


def test_tb_unreachable_dask_scheduler(d):
    pytest.importorskip("dask.distributed")
    r = run("build", d / "a.npy", "-o", d / "o.ngds", "--engine", "dask", "--scheduler",
            "tcp://127.0.0.1:9", "-q", env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"})
    assert r.returncode == 2
    one_error_line(r.stderr, "scheduler")
    assert sorted(p.name for p in d.iterdir()) == ["a.npy"]


def test_tb_broken_pipe_exits_quietly(built):
    for args in (["info", built, "--json"], ["query", built, "5", "--top", "100000"]):
        proc = subprocess.Popen([sys.executable, "-m", "ngramds.cli", *map(str, args)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, **HERE})
        proc.stdout.close()  # as `| head` does once it has its lines
        err = proc.stderr.read().decode()
        proc.wait(timeout=60)
        assert err == "", err


def test_tb_import_with_unwritable_package_directory_and_home(tmp_path, built):
    """numba cannot cache next to the package nor in $HOME: import and use still work."""
    pkg = tmp_path / "site" / "ngramds"
    shutil.copytree(Path(ngramds.__file__).parent, pkg,
                    ignore=shutil.ignore_patterns("__pycache__"))
    for sub in [pkg, *[p for p in pkg.rglob("*") if p.is_dir()]]:
        (sub / "__pycache__").write_text("not a directory")  # nothing can be written there
    (tmp_path / "home").write_text("not a directory either")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_CACHE", "XDG_"))}
    env.update(HOME=str(tmp_path / "home"), PYTHONPATH=str(tmp_path / "site"),
               XDG_CACHE_HOME=str(tmp_path / "home" / "cache"))
    r = subprocess.run([sys.executable, "-c", "import ngramds, sys; "
                        "f = ngramds.open(sys.argv[1]); print(f.distribution([5])[0].size)",
                        str(built)], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert int(r.stdout) > 0


# ============================================================ misleading or silent
def test_ms_distribution_of_non_integer_ids_is_refused(built):
    f = ngramds.open(built)
    for bad in ([1.7], [5, 2.0], ["5"], [True]):
        with pytest.raises(ngramds.InputError, match="integers"):
            f.distribution(bad)
    assert f.distribution([2**70])[0].size == 0 and f.distribution([-1])[0].size == 0


def test_ms_query_negative_top_is_refused(built, capsys):
    code, _, err = cli(capsys, "query", built, "5", "--top=-3")
    assert code == 2
    one_error_line(err, "--top")


def test_ms_dtype_that_looks_wrong_is_refused_in_one_line(tmp_path, capsys):
    u16 = (np.arange(4000) * 7 % 1000).astype(np.uint16)
    u16.tofile(tmp_path / "u16.bin")
    code, _, err = cli(capsys, "build", tmp_path / "u16.bin", "--dtype", "uint32", "-o",
                       tmp_path / "o.ngds", "-q")
    assert code == 2
    one_error_line(err, "--dtype uint16")
    u16.astype(np.uint32).tofile(tmp_path / "u32.bin")
    code, _, err = cli(capsys, "build", tmp_path / "u32.bin", "--dtype", "uint16", "-o",
                       tmp_path / "o.ngds", "-q")
    assert code == 2
    one_error_line(err, "--dtype uint32")
    code, _, err = cli(capsys, "build", tmp_path / "u32.bin", "--dtype", "uint32", "-o",
                       tmp_path / "o.ngds", "-q")
    assert code == 0 and err == ""


def test_ms_eos_id_never_seen_warns_or_outside_vocabulary_is_refused(d, capsys):
    code, _, err = cli(capsys, "build", d / "a.npy", "-o", d / "o.ngds", "--eos-id", "50256",
                       "-q")
    assert code == 0
    assert err.count("\n") == 1 and err.startswith("ngramds: warning: ") and "50256" in err
    tok = d / "tok.json"
    train_small_tokenizer(tok, ["hello world"] * 10)
    write_jsonl(d / "t.jsonl", ["hello world"] * 5)
    code, _, err = cli(capsys, "build", d / "t.jsonl", "--tokenizer", tok, "--eos-id", "70000",
                       "-o", d / "o2.ngds", "-q")
    assert code == 2
    one_error_line(err, "70000", "vocabulary")
    code, _, err = cli(capsys, "build", d / "a.npy", "-o", d / "o.ngds", "--eos-id=-1", "-q")
    assert code == 2
    one_error_line(err, "-1")


def test_ms_tmp_dir_without_memory_limit_is_said_to_be_ignored(d, capsys):
    code, _, err = cli(capsys, "build", d / "a.npy", "-o", d / "o.ngds", "--tmp-dir", d, "-q")
    assert code == 0
    assert err.count("\n") == 1 and err.startswith("ngramds: warning: ") and "--tmp-dir" in err


def test_ms_merge_tmp_dir_missing_is_refused(d, capsys):
    assert cli(capsys, "build", d / "a.npy", "--partial", "-o", d / "p", "--order", "2",
               "--memory-limit", "4G", "-q")[0] == 0
    code, _, err = cli(capsys, "merge", d / "p", "-o", d / "m.ngds", "--tmp-dir", d / "nope",
                       "--memory-limit", "4G", "-q")
    assert code == 2
    one_error_line(err, "nope")
    assert not (d / "nope").exists() and not (d / "m.ngds").exists()


def test_ms_every_output_is_checked_before_the_first_is_written(d, capsys, monkeypatch):
    (d / "ok").mkdir()
    code, _, err = cli(capsys, "build", d / "a.npy", "--eos-id", "0", "--val-fraction", "0.2",
                       "--val-output", d / "ok" / "v.ngds", "-o", d / "missing" / "o.ngds",
                       "-q")
    assert code == 2
    one_error_line(err, "missing")
    assert list((d / "ok").iterdir()) == []


def test_ms_info_of_a_fifo_does_not_hang(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    try:
        r = run("info", tmp_path / "fifo", timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("`ngramds info FIFO` hangs")
    assert r.returncode == 2
    one_error_line(r.stderr, "fifo")


KILLED_AT_RENAME = """
import os, signal, sys
import numpy as np
import ngramds
os.replace = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)  # killed at the rename
ngramds.build(np.arange(5000) % 97, sys.argv[1], progress=False)
"""


def test_ms_a_build_killed_before_its_rename_leaves_only_a_hidden_temporary(tmp_path):
    script = tmp_path / "k.py"
    script.write_text(KILLED_AT_RENAME)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    r = subprocess.run([sys.executable, script, out_dir / "o.ngds"], capture_output=True,
                       timeout=300, env={**os.environ, **HERE})
    assert r.returncode == -signal.SIGKILL
    left = [p.name for p in out_dir.iterdir()]
    assert left and all(n.startswith(".o.ngds.") for n in left), left  # hidden, never OUT
    assert not (out_dir / "o.ngds").exists()
    with pytest.warns(UserWarning, match="interrupted build"):
        ngramds.build(np.arange(10), out_dir / "o.ngds", progress=False)  # removes it
    assert [p.name for p in out_dir.iterdir()] == ["o.ngds"]


def test_ms_warnings_are_one_line(d, capsys):
    pid = _dead_pid()
    (d / f"o.ngds.tmp-{pid}").write_bytes(b"\0" * 64)      # what a killed build left, in the
    (d / ".o.ngds.k1ll3d00.ngds-tmp").write_bytes(b"\0" * 64)  # old and the new naming
    code, _, err = cli(capsys, "build", d / "a.npy", "-o", d / "o.ngds", "-q")
    assert code == 0
    assert err.count("\n") == 1 and err.startswith("ngramds: warning: "), err
