import json
import subprocess
import sys

import numpy as np

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
