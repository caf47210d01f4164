"""The default corpus (Python's standard library): its tokenizer file next to the output is
reused only when it is one, and a missing output directory is refused before any work."""
import time

import pytest

from cli_helpers import boom, cli, one_error_line


def test_default_corpus_refuses_a_foreign_tokenizer_file_or_a_missing_directory(
        tmp_path, capsys, monkeypatch):
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
