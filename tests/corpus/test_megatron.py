"""Megatron-LM indexed datasets (ngramds/corpus/megatron.py): prefix, .bin or .idx named give
the tables of their documents; a bad index header or a dataset without tokens is refused."""
import numpy as np
import pytest

import ngramds

from cli_helpers import cli, one_error_line
from helpers import DOCS, same_tables, write_megatron


def test_megatron(tmp_path):
    write_megatron(tmp_path / "ds", DOCS)
    for given in ("ds.bin", "ds.idx", "ds"):
        ngramds.build(tmp_path / given, tmp_path / "m.ngds", order=3, progress=False)
        ngramds.build([np.array(d) for d in DOCS], tmp_path / "b.ngds", order=3, progress=False)
        same_tables(tmp_path / "m.ngds", tmp_path / "b.ngds")


def test_megatron_int32(tmp_path):
    write_megatron(tmp_path / "ds", DOCS, dtype=np.int32, code=4)
    ngramds.build(tmp_path / "ds.bin", tmp_path / "m.ngds", order=2, progress=False)
    assert ngramds.open(tmp_path / "m.ngds").num_documents == len(DOCS)


@pytest.mark.parametrize("magic,version,msg", [(b"NOTANIDX\x00", 1, "magic"),
                                               (b"MMIDIDX\x00\x00", 2, "version")])
def test_megatron_bad_header(tmp_path, magic, version, msg):
    write_megatron(tmp_path / "ds", DOCS, magic=magic, version=version)
    with pytest.raises(ngramds.InputError, match=msg):
        ngramds.build(tmp_path / "ds.bin", tmp_path / "m.ngds", order=2, progress=False)


def test_a_megatron_dataset_without_tokens_is_refused(token_dir, capsys):
    d = token_dir
    write_megatron(d / "none", [])                  # zero sequences, empty .bin
    write_megatron(d / "empty", [[], []])           # sequences of no tokens, empty .bin
    write_megatron(d / "short", [[1, 2, 3]])
    (d / "short.bin").write_bytes(b"")              # the index names tokens the .bin lacks
    for name, words in (("none", ["empty"]), ("empty", ["empty"]), ("short", ["shorter"])):
        code, _, err = cli(capsys, "build", d / f"{name}.bin", "-o", d / "o.ngds", "-q")
        assert code == 2, name
        one_error_line(err, *words)
