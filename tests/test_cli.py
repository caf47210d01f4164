import json
import os
import subprocess
import sys
import time

import msgpack
import numpy as np
import pytest

from cli_helpers import SUBPROCESS_ENV, boom, cli, dead_pid, one_error_line, rewrite_header
from ngramds.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "ngramds.cli", *map(str, args)],
                          capture_output=True, text=True)


def test_build_info_verify_query(tmp_path, capsys):
    tokens = np.array([5, 6, 7, 5, 6, 8, 0, 5, 6, 7, 0], np.uint16)
    tokens.tofile(tmp_path / "c.bin")
    out = tmp_path / "c.ngds"
    assert main(["build", str(tmp_path / "c.bin"), "-o", str(out), "--order", "3",
                 "--dtype", "uint16", "--eos-id", "0", "-q"]) == 0
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["num_tokens"] == 11 and info["num_documents"] == 2 and info["orders"] == [3]
    assert "vocab_size" in info
    for key in ("num_contexts", "num_entries", "top_r_mass"):
        assert key in info["tables"][0]
    assert main(["info", str(out)]) == 0
    assert "next-token mass in the top r" in capsys.readouterr().out
    assert main(["verify", str(out)]) == 0
    assert main(["query", str(out), "5", "6"]) == 0
    text = capsys.readouterr().out
    assert "seen 3 times" in text and "0.6667" in text


def test_errors_exit_2_without_traceback(tmp_path):
    r = run("info", tmp_path / "missing.ngds")
    assert r.returncode == 2
    assert r.stderr.startswith("ngramds: error:") and "Traceback" not in r.stderr
    r = run("build", tmp_path / "c.bin", "-o", tmp_path / "x.ngds")
    assert r.returncode == 2 and "does not exist" in r.stderr
    (tmp_path / "c.bin").write_bytes(b"\x01\x00\x02")
    r = run("build", tmp_path / "c.bin", "-o", tmp_path / "x.ngds", "--dtype", "uint16")
    assert r.returncode == 2 and "multiple" in r.stderr
    r = run("--debug", "info", tmp_path / "missing.ngds")
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_verify_reports_damage(tmp_path):
    tokens = np.arange(1000, dtype=np.uint16) % 17
    np.save(tmp_path / "c.npy", tokens)
    out = tmp_path / "c.ngds"
    assert main(["build", str(tmp_path / "c.npy"), "-o", str(out), "-q"]) == 0
    data = bytearray(out.read_bytes())
    data[-3] ^= 0xFF
    out.write_bytes(bytes(data))
    r = run("verify", out)
    assert r.returncode == 2 and "checksum" in r.stderr and len(r.stderr.splitlines()) == 1


def test_verify_refuses_bytes_appended_to_a_file(tmp_path, capsys):
    np.save(tmp_path / "c.npy", np.arange(300, dtype=np.uint16) % 11)
    out = tmp_path / "c.ngds"
    assert main(["build", str(tmp_path / "c.npy"), "-o", str(out), "-q"]) == 0
    with open(out, "ab") as f:
        f.write(b'{"step": 2, "val_loss": 3.1}\n')  # a log appended by mistake
    assert main(["verify", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "after the last section" in err and str(out) in err


def test_several_orders_in_one_file(tmp_path, capsys):
    src = tmp_path / "c.npy"
    np.save(src, np.array([5, 6, 7, 5, 6, 8, 5, 6, 7, 1, 2], np.uint16))
    out = tmp_path / "c.ngds"
    assert main(["build", str(src), "-o", str(out), "--orders", "1-3", "-q"]) == 0
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["orders"] == [1, 2, 3] and [t["order"] for t in info["tables"]] == [1, 2, 3]
    assert main(["query", str(out), "6", "--order", "2"]) == 0
    assert "order 2, context 6: seen 3 times" in capsys.readouterr().out
    assert main(["query", str(out), "6"]) == 0  # one token: the order-2 table by default
    assert "order 2, context 6: seen 3 times" in capsys.readouterr().out
    assert main(["query", str(out), "6", "--order", "3"]) == 0  # "document start, 6"
    assert "order 3, context 6: seen 0 times" in capsys.readouterr().out
    assert main(["query", str(out), "6", "--order", "4"]) == 2
    assert "order 4 is not stored" in capsys.readouterr().err
    assert main(["build", str(src), "-o", str(out), "--orders", "0-2", "-q"]) == 2


def test_compact_build_and_merge(tmp_path, capsys):
    tokens = (np.arange(3000) * 7 % 23).astype(np.uint16)
    tokens.tofile(tmp_path / "c.bin")
    common = ["--dtype", "uint16", "-q"]
    assert main(["build", str(tmp_path / "c.bin"), "-o", str(tmp_path / "full.ngds"),
                 *common]) == 0
    assert main(["build", str(tmp_path / "c.bin"), "-o", str(tmp_path / "small.ngds"),
                 "--compact", *common]) == 0
    assert main(["build", str(tmp_path / "c.bin"), "-o", str(tmp_path / "part"), "--partial",
                 *common]) == 0
    assert main(["merge", str(tmp_path / "part"), "-o", str(tmp_path / "merged.ngds"),
                 "--compact", "-q"]) == 0
    small = (tmp_path / "small.ngds").read_bytes()
    assert (tmp_path / "merged.ngds").read_bytes() == small
    assert len(small) < (tmp_path / "full.ngds").stat().st_size
    assert main(["verify", str(tmp_path / "small.ngds")]) == 0
    answers = []
    for name in ("full", "small"):
        capsys.readouterr()
        assert main(["query", str(tmp_path / f"{name}.ngds"), "7", "14"]) == 0
        answers.append(capsys.readouterr().out.replace(name, ""))
    assert answers[0] == answers[1]
    r = run("build", tmp_path / "c.bin", "-o", tmp_path / "p2", "--partial", "--compact",
            "--dtype", "uint16")
    assert r.returncode == 2 and "merge --compact" in r.stderr


# ---------------------------------------------------------------- bad options: one line, exit 2
def test_huge_order_ranges_are_refused_at_once(token_dir, capsys):
    d = token_dir
    for orders in ("1-1000000000000", "1-1e12", "2-17", "3-1", "0-2"):
        t = time.perf_counter()
        code, _, err = cli(capsys, "build", d / "a.npy", "-o", d / "o.ngds", "--orders", orders)
        assert code == 2 and time.perf_counter() - t < 5
        one_error_line(err, "orders")


@pytest.mark.parametrize("out", ["", ".", "/", "{d}", "{d}/"])
def test_an_output_that_is_a_directory_or_empty_is_refused_before_the_build(
        token_dir, capsys, monkeypatch, out):
    import ngramds.builder
    d = token_dir
    monkeypatch.setattr(ngramds.builder, "build", boom)
    code, _, err = cli(capsys, "build", d / "a.npy", "-o", out.format(d=d), "-q")
    assert code == 2
    one_error_line(err)


@pytest.mark.parametrize("threads", ["-1", "0", "1000"])
def test_threads_out_of_range_are_refused(token_dir, capsys, threads):
    d = token_dir
    code, _, err = cli(capsys, "build", d / "a.npy", "-o", d / "o.ngds", f"--threads={threads}",
                       "-q")
    assert code == 2
    one_error_line(err, "--threads")
    assert not (d / "o.ngds").exists()


@pytest.mark.parametrize("ident", [2**63, 2**64 + 3, -1, -2**70, 300])
def test_query_ids_outside_the_vocabulary_are_refused(built_file, capsys, ident):
    code, _, err = cli(capsys, "query", built_file, "5", "--", ident)
    assert code == 2
    one_error_line(err, str(ident))


def test_query_negative_top_is_refused(built_file, capsys):
    code, _, err = cli(capsys, "query", built_file, "5", "--top=-3")
    assert code == 2
    one_error_line(err, "--top")


def test_info_json_prints_header_bytes_as_hex(built_file, capsys):
    rewrite_header(built_file, lambda h: h["build"].update(sources=[b"\xff\x00raw"],
                                                         note=msgpack.ExtType(5, b"x")))
    code, out, err = cli(capsys, "info", built_file, "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["build"]["sources"] == ["ff00726177"]


def test_a_broken_pipe_exits_quietly(built_file):
    for args in (["info", built_file, "--json"], ["query", built_file, "5", "--top", "100000"]):
        proc = subprocess.Popen([sys.executable, "-m", "ngramds.cli", *map(str, args)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, **SUBPROCESS_ENV})
        proc.stdout.close()  # as `| head` does once it has its lines
        err = proc.stderr.read().decode()
        proc.wait(timeout=60)
        assert err == "", err


def test_tmp_dir_without_memory_limit_is_said_to_be_ignored(token_dir, capsys):
    d = token_dir
    code, _, err = cli(capsys, "build", d / "a.npy", "-o", d / "o.ngds", "--tmp-dir", d, "-q")
    assert code == 0
    assert err.count("\n") == 1 and err.startswith("ngramds: warning: ") and "--tmp-dir" in err


def test_a_missing_merge_tmp_dir_is_refused(token_dir, capsys):
    d = token_dir
    assert cli(capsys, "build", d / "a.npy", "--partial", "-o", d / "p", "--order", "2",
               "--memory-limit", "4G", "-q")[0] == 0
    code, _, err = cli(capsys, "merge", d / "p", "-o", d / "m.ngds", "--tmp-dir", d / "nope",
                       "--memory-limit", "4G", "-q")
    assert code == 2
    one_error_line(err, "nope")
    assert not (d / "nope").exists() and not (d / "m.ngds").exists()


def test_every_output_is_checked_before_the_first_is_written(token_dir, capsys):
    d = token_dir
    (d / "ok").mkdir()
    code, _, err = cli(capsys, "build", d / "a.npy", "--eos-id", "0", "--val-fraction", "0.2",
                       "--val-output", d / "ok" / "v.ngds", "-o", d / "missing" / "o.ngds",
                       "-q")
    assert code == 2
    one_error_line(err, "missing")
    assert list((d / "ok").iterdir()) == []


def test_warnings_are_one_line(token_dir, capsys):
    d = token_dir
    pid = dead_pid()
    (d / f"o.ngds.tmp-{pid}").write_bytes(b"\0" * 64)      # what a killed build left, in the
    (d / ".o.ngds.k1ll3d00.ngds-tmp").write_bytes(b"\0" * 64)  # old and the new naming
    code, _, err = cli(capsys, "build", d / "a.npy", "-o", d / "o.ngds", "-q")
    assert code == 0
    assert err.count("\n") == 1 and err.startswith("ngramds: warning: "), err


INTERRUPT_AT_IMPORT = """
import sys

class Interrupt:  # Ctrl-C while {module} is being imported (numba's first load takes seconds)
    def find_spec(self, name, path=None, target=None):
        if name == "{module}":
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, Interrupt())
from {entry} import main  # what the console script runs
sys.exit(main({argv!r}))
"""


@pytest.mark.parametrize("entry,argv", [
    ("ngramds.cli", ["build", "c.npy", "-o", "c.ngds"]),
    ("ngramds.cli", ["verify", "c.ngds"]),
    ("ngramds.train.cli", ["plot", "r.jsonl"]),
])
@pytest.mark.parametrize("module", ["numpy", "numba"])
def test_ctrl_c_while_heavy_modules_load_is_one_line(tmp_path, entry, argv, module):
    np.save(tmp_path / "c.npy", np.arange(50, dtype=np.uint16) % 7)
    code = INTERRUPT_AT_IMPORT.format(module=module, entry=entry, argv=argv)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=tmp_path, env={**os.environ, **SUBPROCESS_ENV}, timeout=120)
    prog = "ngramds-train" if "train" in entry else "ngramds"
    assert (r.returncode, r.stderr) == (130, f"{prog}: interrupted\n")
    assert not (tmp_path / "c.ngds").exists()


def test_ctrl_c_before_the_command_starts_is_one_line(monkeypatch, capsys):
    import ngramds.cli

    def interrupted():
        raise KeyboardInterrupt
    monkeypatch.setattr(ngramds.cli, "_parser", interrupted)
    assert main(["info", "x.ngds"]) == 130
    assert capsys.readouterr().err == "ngramds: interrupted\n"
