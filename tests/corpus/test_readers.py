"""Reading a corpus (ngramds/corpus/readers.py): several files form one corpus with a
document boundary at each file's end, any iterable of documents is read, and an EOS id never
seen warns while one outside the vocabulary is refused."""
import numpy as np

import ngramds

from cli_helpers import cli, one_error_line
from helpers import DOCS, same_tables, train_small_tokenizer, write_jsonl


def test_several_files_form_one_corpus_with_file_boundaries(tmp_path):
    for i, d in enumerate(DOCS):
        np.save(tmp_path / f"part{i}.npy", np.array(d, np.uint16))
    parts = [tmp_path / f"part{i}.npy" for i in range(len(DOCS))]
    ngramds.build(parts, tmp_path / "a.ngds", order=3, progress=False)
    ngramds.build([np.array(d) for d in DOCS], tmp_path / "b.ngds", order=3, progress=False)
    f = same_tables(tmp_path / "a.ngds", tmp_path / "b.ngds")
    assert f.header["build"]["sources"] == [p.name for p in parts]


def test_iterable_of_documents_generator(tmp_path):
    ngramds.build((np.array(d) for d in DOCS), tmp_path / "g.ngds", order=2, progress=False)
    assert ngramds.open(tmp_path / "g.ngds").num_tokens == sum(map(len, DOCS))


# ---------------------------------------------------------------- bad inputs through the CLI
def test_an_eos_id_never_seen_warns_and_one_outside_the_vocabulary_is_refused(token_dir,
                                                                              capsys):
    d = token_dir
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
