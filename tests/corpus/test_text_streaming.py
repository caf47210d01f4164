"""Text input streams in bounded memory (issue 13, item 11): a build with a memory limit
tokenises .txt/.jsonl batch by batch into a temporary token file (removed whatever happens),
long documents are encoded in pieces, and the file is the same byte for byte as the in-memory
build's and as whole-document encoding."""
import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import ngramds
from ngramds.builder import dispatch
from ngramds.corpus import readers, tokenize
from ngramds.corpus.stream import MappedPiece
from ngramds.errors import InputError
from ngramds.file.temporaries import DIR_SUFFIX

from helpers import train_small_tokenizer, write_jsonl

pytest.importorskip("tokenizers")

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "1234", "!?"]


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 40))) + rng.choice(
        ["", "  ", "\tend", " x\n y"]) for _ in range(n)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("text")
    texts = _texts(1500)
    tok = train_small_tokenizer(d / "tok.json", texts[:300])
    write_jsonl(d / "a.jsonl", texts)
    (d / "a.txt").write_text("\n".join(t.replace("\n", " ") for t in texts if t.strip()) + "\n")
    return d, tok, texts


def _expected(tok, texts, eos=0):
    """Tokens and offsets of today's whole-document encoding, EOS appended."""
    docs = [tok.encode(t, add_special_tokens=False).ids + [eos] for t in texts]
    return (np.array([i for d in docs for i in d]),
            np.concatenate([[0], np.cumsum([len(d) for d in docs])]))


def _snapshot(directory: Path) -> dict:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in directory.iterdir()}


@pytest.mark.parametrize("name", ["a.jsonl", "a.txt"])
def test_text_build_same_bytes_with_and_without_memory_limit(corpus, tmp_path, name):
    d, tok, texts = corpus
    if name == "a.txt":
        texts = [t.replace("\n", " ") for t in texts if t.strip()]
    mem = ngramds.build([d / name], tmp_path / "mem.ngds", tokenizer=d / "tok.json", eos_id=0,
                        progress=False)
    lim = ngramds.build([d / name], tmp_path / "lim.ngds", tokenizer=d / "tok.json", eos_id=0,
                        progress=False, memory_limit="4G")
    assert mem.read_bytes() == lim.read_bytes()
    tokens, offsets = _expected(tok, texts)
    with ngramds.open(mem) as f:
        assert f.token_dtype == np.uint16
        assert np.array_equal(f.tokens, tokens) and np.array_equal(f.doc_offsets, offsets)


def test_bounded_text_build_reads_a_temporary_token_file(corpus, tmp_path, monkeypatch):
    """The stream handed to the bounded builder maps a token file in a locked temporary
    directory under --tmp-dir (uint16 ids), and the directory is gone afterwards."""
    d, _, _ = corpus
    tmp_dir = tmp_path / "scratch"
    tmp_dir.mkdir()
    seen = []
    real = dispatch.build_bounded

    def spy(stream, output, **kw):
        piece = stream.pieces[0]
        assert isinstance(piece, MappedPiece) and piece.dtype == np.dtype("<u2")
        path = Path(piece.path)
        assert path.parent.parent == tmp_dir and path.parent.name.endswith(DIR_SUFFIX)
        assert path.stat().st_size == 2 * stream.size
        seen.append(path)
        return real(stream, output, **kw)

    monkeypatch.setattr(dispatch, "build_bounded", spy)
    ngramds.build([d / "a.jsonl"], tmp_path / "c.ngds", tokenizer=d / "tok.json", eos_id=0,
                  progress=False, memory_limit="4G", tmp_dir=tmp_dir)
    assert seen and not seen[0].exists() and list(tmp_dir.iterdir()) == []


def test_long_documents_encoded_in_pieces_equal_whole_encoding(corpus, tmp_path, monkeypatch):
    """Pieces cut before whitespace: with the byte-level BPE the ids equal whole-document
    encoding, in memory and bounded, however the pieces fall into batches."""
    d, tok, texts = corpus
    monkeypatch.setattr(tokenize, "TEXT_PIECE_CHARS", 50)
    monkeypatch.setattr(tokenize, "TEXT_BATCH_CHARS", 120)
    monkeypatch.setattr(tokenize, "TEXT_BATCH", 3)
    long = [" ".join(texts[i:i + 40]) for i in range(0, 400, 40)] + ["x" * 170, ""]
    write_jsonl(tmp_path / "long.jsonl", long)
    tokens, offsets = _expected(tok, long)
    for kw in ({}, {"memory_limit": "4G"}):
        out = ngramds.build([tmp_path / "long.jsonl"], tmp_path / f"{len(kw)}.ngds",
                            tokenizer=d / "tok.json", eos_id=0, progress=False, **kw)
        with ngramds.open(out) as f:
            assert np.array_equal(f.tokens, tokens) and np.array_equal(f.doc_offsets, offsets)


def test_split_text_cuts_where_the_last_whitespace_run_begins():
    assert readers.split_text("abc", 3) == ["abc"]
    assert readers.split_text("ab cd ef", 6) == ["ab cd", " ef"]
    assert readers.split_text("abcdefg", 3) == ["abc", "def", "g"]
    assert readers.split_text(" abcdef", 3) == [" ab", "cde", "f"]
    assert readers.split_text("a\nb\tc d", 4) == ["a\nb", "\tc d"]
    assert readers.split_text("ab   cd", 5) == ["ab", "   cd"]  # before the whole run
    assert readers.split_text("   abc", 3) == ["   ", "abc"]
    text = "".join(random.Random(1).choice("ab \n") for _ in range(5000))
    pieces = readers.split_text(text, 64)
    assert "".join(pieces) == text and all(0 < len(p) <= 64 for p in pieces)


PEAK = textwrap.dedent("""
    import resource, subprocess, sys
    r = subprocess.run([sys.executable, "-m", "ngramds.cli", "build", *sys.argv[1:]],
                       capture_output=True, text=True)
    print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    sys.stderr.write(r.stderr)
""")


def test_long_single_line_jsonl_stays_in_bounded_memory(corpus, tmp_path):
    """A 6 MB one-line JSONL under --memory-limit 512M: the old code handed the tokenizer the
    whole line (peak 1113 MiB RSS, ~150 bytes a character, and the build was refused: "this
    process already uses 654 MiB"); in 256 Ki-character pieces it peaks near 350 MiB."""
    d, _, _ = corpus
    rng = random.Random(2)
    text = " ".join(rng.choice(WORDS) for _ in range(1_150_000))
    assert len(text) > 6_000_000
    write_jsonl(tmp_path / "big.jsonl", [text])
    env = dict(os.environ, PYTHONPATH=str(Path(ngramds.__file__).parents[1]))
    r = subprocess.run([sys.executable, "-c", PEAK, str(tmp_path / "big.jsonl"), "-o",
                        str(tmp_path / "big.ngds"), "--tokenizer", str(d / "tok.json"),
                        "--eos-id", "0", "-q", "--memory-limit", "512M"],
                       capture_output=True, text=True, env=env, timeout=300)
    code, peak_kib = map(int, r.stdout.split())
    assert code == 0, r.stderr
    print(f"peak RSS of the build: {peak_kib // 1024} MiB")
    assert peak_kib < 640 * 1024, f"peak RSS {peak_kib // 1024} MiB"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.jsonl", "big.ngds"]


def test_temporary_token_file_removed_after_failed_builds(corpus, tmp_path):
    """A bad --eos-id or invalid UTF-8 in the middle of a file fails the build; the temporary
    directory and its token file are gone and no other file there is touched."""
    d, _, texts = corpus
    work = tmp_path / "work"
    work.mkdir()
    good = "".join(json.dumps({"text": t}) + "\n" for t in texts[:200]).encode()
    (work / "bad.jsonl").write_bytes(good + b'{"text": "caf\xe9"}\n' + good)
    (work / "ok.jsonl").write_bytes(good)
    (work / "notes.txt").write_text("unrelated")
    (work / "tok.json").write_bytes((d / "tok.json").read_bytes())
    before = _snapshot(work)
    cases = [(["bad.jsonl"], 0, "not UTF-8"), (["ok.jsonl"], 10**6, "outside the tokenizer"),
             (["ok.jsonl", "bad.jsonl"], 0, "not UTF-8")]
    for inputs, eos, message in cases:
        with pytest.raises(InputError, match=message):
            ngramds.build([work / p for p in inputs], work / "out.ngds",
                          tokenizer=work / "tok.json", eos_id=eos, progress=False,
                          memory_limit="4G")
        assert _snapshot(work) == before
    out = ngramds.build([work / "ok.jsonl"], work / "out.ngds", tokenizer=work / "tok.json",
                        eos_id=0, progress=False, memory_limit="4G")
    assert _snapshot(work) == {**before, "out.ngds": _snapshot(work)["out.ngds"]}
    assert out.exists()


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
    want, want_offsets = _expected(tok, texts)
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
