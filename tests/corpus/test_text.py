"""The documents of text files (ngramds/corpus/text.py): .txt lines or whole files and .jsonl
records give the same tables as their encoded documents; huge lines are read and encoded in
pieces; a line longer than the read budget, text that is not UTF-8 and unreadable JSON are
refused naming the file and line."""
import random

import numpy as np
import pytest

import ngramds
from ngramds.corpus import readers, tokenize
from ngramds.errors import InputError

from cli_helpers import cli, one_error_line, run_cli
from helpers import WORDS, same_tables, train_small_tokenizer, whole_encoding, write_jsonl

pytest.importorskip("tokenizers")


def _peak(fn):
    import tracemalloc
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def small_blocks(monkeypatch):
    """Lines read 16 KiB at a time, encoded 4 K characters at a time (so that a line of a
    few hundred KB is a "huge" one: the tokenizer's ids of a batch, as Python ints, take
    ~100 bytes a character)."""
    monkeypatch.setattr("ngramds.corpus.text.TEXT_LINE_BLOCK", 1 << 14)
    monkeypatch.setattr(tokenize, "TEXT_PIECE_CHARS", 1 << 12)
    monkeypatch.setattr(tokenize, "TEXT_BATCH_CHARS", 1 << 12)


@pytest.mark.parametrize("unit", ["line", "file"])
def test_a_huge_line_is_read_in_pieces(corpus, tmp_path, small_blocks, unit):
    """A 640 KB line in a .txt.gz (and, per file, the whole file) is read and encoded in
    pieces: Python's peak allocation stays well below the line's size (before: the line was
    read whole, decoded whole and cut, several times its size), and the ids equal
    whole-line encoding with the byte-level BPE."""
    import gzip
    d, tok, _ = corpus
    rng = random.Random(5)
    huge = " ".join(rng.choice(WORDS) for _ in range(120_000)) + " \t caf\u00e9 " * 3
    lines = ["alpha beta", "", huge, "   ", "gamma  delta\r", huge[:40_000] + " end"]
    raw = "\n".join(lines).encode() + b"\r\n"
    (tmp_path / "h.txt.gz").write_bytes(gzip.compress(raw))
    assert len(huge) > 600_000
    spool = tmp_path / "spool"
    spool.mkdir()
    readers.read_text(tmp_path / "h.txt.gz", d / "tok.json", text_unit=unit, eos_id=0,
                      spool=spool)  # imports and caches first
    (tokens, offsets), peak = _peak(lambda: readers.read_text(
        tmp_path / "h.txt.gz", d / "tok.json", text_unit=unit, eos_id=0, spool=spool))
    print(f"peak {peak / 2**20:.2f} MiB for a line of {len(huge) / 2**20:.2f} MiB")
    assert peak < len(huge) / 2  # before: about 4 times the line
    texts = [t.rstrip("\r\n") for t in raw.decode().split("\n") if t.strip()] \
        if unit == "line" else [raw.decode()]
    want, want_offsets = whole_encoding(tok, texts)
    assert np.array_equal(tokens.read(0, tokens.size), want)
    assert np.array_equal(offsets, want_offsets)


def test_a_jsonl_line_longer_than_the_read_budget_is_refused(corpus, tmp_path):
    d, _, _ = corpus
    write_jsonl(tmp_path / "a.jsonl", ["alpha beta", "x " * 600_000])
    with pytest.raises(InputError, match=r"a\.jsonl:2: .*memory limit"):
        readers.load_stream([tmp_path / "a.jsonl"], tokenizer=d / "tok.json",
                            read_bytes=1 << 20)


def test_a_line_split_in_a_multibyte_character_or_bad_utf8_mid_line(corpus, tmp_path,
                                                                     small_blocks):
    d, tok, _ = corpus
    text = "\u00e9" * 30_000 + " alpha"  # two bytes a character: blocks end mid-character
    (tmp_path / "u.txt").write_text(text + "\n")
    tokens, _ = readers.read_text(tmp_path / "u.txt", d / "tok.json", eos_id=0)
    assert tokens.tolist() == tok.encode(text, add_special_tokens=False).ids + [0]
    (tmp_path / "b.txt").write_bytes(b"ok\n" + b"alpha " * 10_000 + b"\xff beta\n")
    with pytest.raises(InputError, match=r"b\.txt:2: text is not UTF-8"):
        readers.read_text(tmp_path / "b.txt", d / "tok.json", eos_id=0)


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


def test_text_not_utf8_is_refused_naming_its_line_in_the_cli(tmp_path):
    tok = tmp_path / "tok.json"
    train_small_tokenizer(tok, ["hello world"] * 10)
    (tmp_path / "bad.txt").write_bytes(b"good\n\xc3\x28 bad\n")
    r = run_cli("build", tmp_path / "bad.txt", "-o", tmp_path / "o.ngds", "--tokenizer", tok,
                timeout=None)
    assert r.returncode == 2 and "bad.txt:2: text is not UTF-8" in r.stderr
