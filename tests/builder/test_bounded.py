"""Memory-bounded, sharded and distributed builds give the in-memory build's file, byte for byte."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ngramds
from cli_helpers import cli, one_error_line, run_cli
from helpers import run_sizes, zipf_shards
from ngramds.cli import main
from strategies import corpora


@given(corpora(max_docs=8, max_len=60),
       st.lists(st.sampled_from([1, 2, 3, 4, 6, 16]), min_size=1, max_size=3, unique=True),
       st.sampled_from([None, 1, 3]), st.integers(1, 40), st.integers(1, 30))
@settings(max_examples=40)
def test_bounded_build_is_byte_identical(tmp_path_factory, corpus, orders, top_k, positions,
                                         entries):
    docs, vocab = corpus
    d = tmp_path_factory.mktemp("x")
    ngramds.build(docs, d / "mem.ngds", orders=orders, top_k=top_k, vocab_size=vocab,
                  progress=False)
    with run_sizes(positions, entries):
        ngramds.build(docs, d / "ext.ngds", orders=orders, top_k=top_k, vocab_size=vocab,
                      memory_limit="2G", tmp_dir=d, progress=False)
    assert (d / "ext.ngds").read_bytes() == (d / "mem.ngds").read_bytes()
    assert sorted(p.name for p in d.iterdir()) == ["ext.ngds", "mem.ngds"]  # no leftovers


def test_partials_merge_to_the_build_of_all_shards(tmp_path):
    shards = zipf_shards(tmp_path)
    common = ["--eos-id", "0", "--orders", "1-3", "-q"]
    assert main(["build", *map(str, shards), "-o", str(tmp_path / "all.ngds"), *common]) == 0
    parts = []
    with run_sizes(700, 500):
        for i, s in enumerate(shards):
            parts.append(str(tmp_path / f"p{i}"))
            assert main(["build", str(s), "-o", parts[-1], "--partial", *common]) == 0
        assert main(["merge", *parts, "-o", str(tmp_path / "m.ngds"), "-q"]) == 0
    assert (tmp_path / "m.ngds").read_bytes() == (tmp_path / "all.ngds").read_bytes()
    # another order of the same shards is another corpus: same as building in that order
    assert main(["build", *map(str, shards[::-1]), "-o", str(tmp_path / "rev.ngds"),
                 *common]) == 0
    assert main(["merge", *parts[::-1], "-o", str(tmp_path / "mr.ngds"), "-q"]) == 0
    assert (tmp_path / "mr.ngds").read_bytes() == (tmp_path / "rev.ngds").read_bytes()


def test_bad_partials_and_budgets_are_refused(tmp_path, capsys):
    shards = zipf_shards(tmp_path, sizes=(500, 400))
    p0, p1 = tmp_path / "p0", tmp_path / "p1"
    assert main(["build", str(shards[0]), "-o", str(p0), "--partial", "--order", "2", "-q"]) == 0
    assert main(["build", str(shards[1]), "-o", str(p1), "--partial", "--order", "3", "-q"]) == 0
    assert main(["merge", str(p0), str(p1), "-o", str(tmp_path / "m.ngds"), "-q"]) == 2
    assert "partials must agree" in capsys.readouterr().err
    (p1 / "manifest.json").unlink()  # as if its build had been killed
    assert main(["merge", str(p0), str(p1), "-o", str(tmp_path / "m.ngds"), "-q"]) == 2
    assert "not a complete partial result" in capsys.readouterr().err
    assert main(["build", str(shards[0]), "-o", str(tmp_path / "x.ngds"), "--memory-limit",
                 "1M", "-q"]) == 2
    assert "too small" in capsys.readouterr().err
    assert main(["build", str(shards[0]), "-o", str(tmp_path / "x.ngds"), "--memory-limit",
                 "lots", "-q"]) == 2
    assert not (tmp_path / "m.ngds").exists() and not (tmp_path / "x.ngds").exists()


def test_a_failed_merge_leaves_no_output_and_no_temporaries(tmp_path, monkeypatch):
    shards = zipf_shards(tmp_path, sizes=(800,))

    def boom(*args):
        raise OSError(28, "No space left on device")

    import ngramds.builder.runs as runs
    monkeypatch.setattr(runs, "reduce_bucket", boom)
    with pytest.raises(OSError):
        ngramds.build([str(shards[0])], tmp_path / "x.ngds", memory_limit="4G", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s0.npy"]


def test_runs_of_a_killed_build_are_removed_by_the_next(tmp_path):
    shards = zipf_shards(tmp_path, sizes=(600,))
    dead = tmp_path / ".x.ngds.k1ll3d00.ngds-parts"  # as a killed build leaves it: unlocked
    (dead / "order4").mkdir(parents=True)
    (dead / "ngramds.lock").touch()
    with pytest.warns(UserWarning, match="interrupted build"):
        ngramds.build([str(shards[0])], tmp_path / "x.ngds", order=4, memory_limit="4G",
                      progress=False)
    assert not dead.exists() and ngramds.open(tmp_path / "x.ngds").num_tokens == 600


def test_dask_engine_gives_the_same_file(tmp_path):
    pytest.importorskip("dask.distributed")
    shards = zipf_shards(tmp_path, sizes=(2000, 1500))
    opts = dict(orders=[2, 3], eos_id=0, progress=False)
    ngramds.build([str(s) for s in shards], tmp_path / "mem.ngds", **opts)
    ngramds.build([str(s) for s in shards], tmp_path / "dask.ngds", engine="dask", workers=2,
                  **opts)
    assert (tmp_path / "dask.ngds").read_bytes() == (tmp_path / "mem.ngds").read_bytes()


def test_runs_straddling_input_files(tmp_path):
    shards = zipf_shards(tmp_path, sizes=(1000, 7, 1300))
    files = [str(s) for s in shards]
    ngramds.build(files, tmp_path / "mem.ngds", orders=[1, 4], eos_id=0, progress=False)
    # runs cross the file (and document) boundaries
    with run_sizes(333, 200):
        ngramds.build(files, tmp_path / "ext.ngds", orders=[1, 4], eos_id=0,
                      memory_limit=2 << 30, progress=False)
    assert (tmp_path / "ext.ngds").read_bytes() == (tmp_path / "mem.ngds").read_bytes()


def test_default_budget_is_beyond_what_the_process_holds(tmp_path, monkeypatch):
    """Given no memory limit, a bounded build (partial, merge) may use 1 GiB beyond what the
    process already holds: a process holding 1.5 GiB (torch, a notebook) still builds; an
    explicit limit below what it holds is refused."""
    import ngramds.builder.runs as runs
    shards = zipf_shards(tmp_path, sizes=(700,))
    monkeypatch.setattr(runs, "resident_bytes", lambda: 3 << 29)
    part = ngramds.build([str(shards[0])], tmp_path / "p", partial=True, progress=False)
    out = ngramds.merge([part], tmp_path / "m.ngds", progress=False)
    assert ngramds.open(out).num_tokens == 700
    with pytest.raises(ngramds.NgramdsError, match="too small"):
        ngramds.build([str(shards[0])], tmp_path / "x.ngds", memory_limit="1G",
                      progress=False)


# ---------------------------------------------------------------- failures: one line, no leftovers
def test_a_full_disk_during_a_bounded_build_or_a_merge_is_one_error_line(tmp_path, tmpfs,
                                                                          capsys):
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


def test_an_unwritable_tmp_dir_is_refused(token_dir, tmpfs, capsys):
    d = token_dir
    ro = tmpfs("ro,size=64k")
    code, _, err = cli(capsys, "build", d / "a.npy", "-o", d / "o.ngds", "--memory-limit",
                       "4G", "--tmp-dir", ro, "-q")
    assert code == 2
    one_error_line(err, str(ro))
    assert not (d / "o.ngds").exists()


def test_an_unreachable_dask_scheduler_is_one_error_line(token_dir):
    d = token_dir
    pytest.importorskip("dask.distributed")
    r = run_cli("build", d / "a.npy", "-o", d / "o.ngds", "--engine", "dask", "--scheduler",
                "tcp://127.0.0.1:9", "-q",
                env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"})
    assert r.returncode == 2
    one_error_line(r.stderr, "scheduler")
    assert sorted(p.name for p in d.iterdir()) == ["a.npy"]
