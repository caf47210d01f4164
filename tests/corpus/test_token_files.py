"""Token files (ngramds/corpus/token_files.py): headerless uint16/uint32 files give the tables
of their documents, and a dtype that looks wrong is refused naming the right one."""
import numpy as np

import ngramds

from cli_helpers import cli, one_error_line
from helpers import DOCS, same_tables


def test_raw_files_with_eos(tmp_path):
    eos = 0
    flat = np.concatenate([np.append(d, eos) for d in DOCS])
    for dtype in ("uint16", "uint32"):
        raw = tmp_path / f"c.{dtype}.bin"
        flat.astype(dtype).tofile(raw)
        ngramds.build(raw, tmp_path / f"{dtype}.ngds", order=3, dtype=dtype, eos_id=eos,
                      progress=False)
    ngramds.build([np.append(d, eos) for d in DOCS], tmp_path / "ref.ngds", order=3,
                  progress=False)
    f = same_tables(tmp_path / "uint16.ngds", tmp_path / "ref.ngds")
    same_tables(tmp_path / "uint32.ngds", tmp_path / "ref.ngds")
    assert f.num_documents == len(DOCS)


def test_a_dtype_that_looks_wrong_is_refused_in_one_line(tmp_path, capsys):
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
