"""Tokenising text (ngramds/corpus/tokenize.py): a build with a memory limit tokenises
.txt/.jsonl batch by batch into a temporary token file (removed whatever happens), long
documents are encoded in pieces cut where split_text cuts, and the file is the same byte for
byte as the in-memory build's and as whole-document encoding."""
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

from helpers import WORDS, whole_encoding, write_jsonl

pytest.importorskip("tokenizers")


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
    tokens, offsets = whole_encoding(tok, texts)
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
    tokens, offsets = whole_encoding(tok, long)
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
