"""Document boundaries of token inputs (ngramds/corpus/offsets.py): a file of document lengths
gives the documents, and lengths that are not integers are refused naming the file."""
import numpy as np

import ngramds

from cli_helpers import cli, one_error_line
from helpers import DOCS, same_tables


def test_npy_and_lengths_file(tmp_path):
    flat = np.concatenate(DOCS).astype(np.int32)
    np.save(tmp_path / "c.npy", flat)
    (tmp_path / "lengths.txt").write_text("\n".join(str(len(d)) for d in DOCS))
    ngramds.build(tmp_path / "c.npy", tmp_path / "a.ngds", order=2,
                  boundaries=tmp_path / "lengths.txt", progress=False)
    ngramds.build([np.array(d) for d in DOCS], tmp_path / "b.ngds", order=2, progress=False)
    same_tables(tmp_path / "a.ngds", tmp_path / "b.ngds")


def test_doc_lengths_that_are_not_integers_are_refused(token_dir, capsys):
    d = token_dir
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
