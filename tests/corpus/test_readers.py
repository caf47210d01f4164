import numpy as np
import pytest

import ngramds
from cli_helpers import cli, one_error_line, run_cli
from helpers import train_small_tokenizer, write_jsonl, write_megatron

DOCS = [[3, 1, 4, 1, 5], [9, 2, 6], [5], [3, 5, 8, 9, 7, 9]]


def sections(path):
    f = ngramds.open(path)
    return {k: np.array(f.section(k)) for k in f.sections}, f


def same_tables(a, b):
    sa, fa = sections(a)
    sb, fb = sections(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        assert np.array_equal(sa[k], sb[k]), k
    return fa


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


def test_npy_and_lengths_file(tmp_path):
    flat = np.concatenate(DOCS).astype(np.int32)
    np.save(tmp_path / "c.npy", flat)
    (tmp_path / "lengths.txt").write_text("\n".join(str(len(d)) for d in DOCS))
    ngramds.build(tmp_path / "c.npy", tmp_path / "a.ngds", order=2,
                  boundaries=tmp_path / "lengths.txt", progress=False)
    ngramds.build([np.array(d) for d in DOCS], tmp_path / "b.ngds", order=2, progress=False)
    same_tables(tmp_path / "a.ngds", tmp_path / "b.ngds")


def test_several_files_form_one_corpus_with_file_boundaries(tmp_path):
    for i, d in enumerate(DOCS):
        np.save(tmp_path / f"part{i}.npy", np.array(d, np.uint16))
    parts = [tmp_path / f"part{i}.npy" for i in range(len(DOCS))]
    ngramds.build(parts, tmp_path / "a.ngds", order=3, progress=False)
    ngramds.build([np.array(d) for d in DOCS], tmp_path / "b.ngds", order=3, progress=False)
    f = same_tables(tmp_path / "a.ngds", tmp_path / "b.ngds")
    assert f.header["build"]["sources"] == [p.name for p in parts]


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


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    texts = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog"] * 20
    return path, train_small_tokenizer(path, texts)


def test_text_inputs(tmp_path, tokenizer):
    tok_path, tok = tokenizer
    texts = ["the cat sat", "the dog sat on the mat", "a cat"]
    (tmp_path / "c.txt").write_text("\n".join(texts) + "\n\n", encoding="utf-8")
    write_jsonl(tmp_path / "c.jsonl", texts, field="body")
    eos = tok.token_to_id("<eos>")
    ngramds.build(tmp_path / "c.txt", tmp_path / "t.ngds", order=3, tokenizer=tok_path,
                  eos_id=eos, progress=False)
    ngramds.build(tmp_path / "c.jsonl", tmp_path / "j.ngds", order=3, tokenizer=tok_path,
                  eos_id=eos, text_field="body", progress=False)
    docs = [np.append(tok.encode(t, add_special_tokens=False).ids, eos) for t in texts]
    ngramds.build(docs, tmp_path / "r.ngds", order=3, vocab_size=tok.get_vocab_size(),
                  progress=False)
    f = same_tables(tmp_path / "t.ngds", tmp_path / "r.ngds")
    same_tables(tmp_path / "j.ngds", tmp_path / "r.ngds")
    assert f.vocab_size == tok.get_vocab_size()
    assert f.num_documents == 3


def test_text_whole_file_unit(tmp_path, tokenizer):
    tok_path, _ = tokenizer
    (tmp_path / "c.txt").write_text("the cat\nsat on\n", encoding="utf-8")
    ngramds.build(tmp_path / "c.txt", tmp_path / "t.ngds", order=2, tokenizer=tok_path,
                  text_unit="file", progress=False)
    assert ngramds.open(tmp_path / "t.ngds").num_documents == 1


def test_text_not_utf8_names_line(tmp_path, tokenizer):
    tok_path, _ = tokenizer
    (tmp_path / "c.txt").write_bytes(b"fine line\nbad \xff line\n")
    with pytest.raises(ngramds.InputError, match=r"c\.txt:2: text is not UTF-8"):
        ngramds.build(tmp_path / "c.txt", tmp_path / "t.ngds", order=2, tokenizer=tok_path,
                      progress=False)


def test_iterable_of_documents_generator(tmp_path):
    ngramds.build((np.array(d) for d in DOCS), tmp_path / "g.ngds", order=2, progress=False)
    assert ngramds.open(tmp_path / "g.ngds").num_tokens == sum(map(len, DOCS))


# ---------------------------------------------------------------- bad inputs through the CLI
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


def test_jsonl_nested_too_deep_or_with_huge_integers_is_refused(token_dir, capsys):
    d = token_dir
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


def test_text_not_utf8_is_refused_naming_its_line_in_the_cli(tmp_path):
    tok = tmp_path / "tok.json"
    train_small_tokenizer(tok, ["hello world"] * 10)
    (tmp_path / "bad.txt").write_bytes(b"good\n\xc3\x28 bad\n")
    r = run_cli("build", tmp_path / "bad.txt", "-o", tmp_path / "o.ngds", "--tokenizer", tok,
                timeout=None)
    assert r.returncode == 2 and "bad.txt:2: text is not UTF-8" in r.stderr
