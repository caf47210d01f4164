"""Prompt/response pairs from JSONL: one document per record (prompt tokens, then response
tokens, then EOS), the prompt length recorded per document in the file's ``prompt_lengths``
section."""
import json

import numpy as np
import pytest

import ngramds
from ngramds.corpus import Corpus
from ngramds.corpus.pairs import read_pairs
from helpers import train_small_tokenizer

RECORDS = [{"prompt": "the cat", "response": " sat on the mat"},
           {"prompt": "", "response": "a dog"},
           {"prompt": "the dog sat on", "response": ""},
           {"prompt": "a cat and", "response": " a dog", "extra": 1}]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    texts = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog"] * 20
    return path, train_small_tokenizer(path, texts)


def write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_documents_and_prompt_lengths(tmp_path, tokenizer):
    tok_path, tok = tokenizer
    src = write(tmp_path / "p.jsonl", RECORDS[:2])
    write(tmp_path / "q.jsonl", RECORDS[2:])
    eos = tok.token_to_id("<eos>")
    corpus = read_pairs([src, tmp_path / "q.jsonl"], tok_path, eos_id=eos)
    docs, lengths = [], []
    for r in RECORDS:
        p = tok.encode(r["prompt"], add_special_tokens=False).ids
        q = tok.encode(r["response"], add_special_tokens=False).ids
        docs.append(p + q + [eos])
        lengths.append(len(p))
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])])
    assert corpus.tokens.tolist() == [t for d in docs for t in d]
    assert corpus.doc_offsets.tolist() == offsets.tolist()
    assert corpus.prompt_lengths.tolist() == lengths
    assert corpus.vocab_size == tok.get_vocab_size()
    out = ngramds.build(corpus, tmp_path / "p.ngds", order=2, progress=False)
    f = ngramds.open(out, verify=True)
    assert f.prompt_lengths.tolist() == lengths
    assert f.prompt_lengths.dtype == np.uint8  # the smallest that holds the longest prompt
    # the n-gram statistics count prompt tokens too: the same tables as the plain documents
    plain = ngramds.open(ngramds.build(docs, tmp_path / "d.ngds", order=2, progress=False,
                                       vocab_size=tok.get_vocab_size()))
    assert plain.prompt_lengths is None
    np.testing.assert_array_equal(plain.counts, f.counts)


def test_other_field_names(tmp_path, tokenizer):
    tok_path, tok = tokenizer
    src = write(tmp_path / "p.jsonl", [{"q": "the cat", "a": " sat"}])
    corpus = read_pairs([src], tok_path, prompt_field="q", response_field="a")
    prompt, response = (tok.encode(t, add_special_tokens=False).ids for t in ("the cat", " sat"))
    assert corpus.prompt_lengths.tolist() == [len(prompt)]
    assert corpus.tokens.tolist() == prompt + response  # no eos_id: nothing appended


@pytest.mark.parametrize("line,match", [
    ('{"prompt": "a"}', r"p\.jsonl:2: no field 'response'"),
    ('{"prompt": 3, "response": "b"}', r"p\.jsonl:2: field 'prompt' is not a string"),
    ('{"prompt": "a", ', r"p\.jsonl:2: not valid JSON"),
    ('[1, 2]', r"p\.jsonl:2: not a JSON object"),
])
def test_bad_records_are_one_line_errors(tmp_path, tokenizer, line, match):
    tok_path, _ = tokenizer
    src = tmp_path / "p.jsonl"
    src.write_text('{"prompt": "a", "response": "b"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(ngramds.InputError, match=match):
        read_pairs([src], tok_path)


def test_prompt_lengths_are_checked(tmp_path):
    tokens, offsets = np.arange(6) % 3, np.array([0, 2, 6])
    with pytest.raises(ngramds.InputError, match="prompt length"):
        ngramds.build(Corpus(tokens, offsets, prompt_lengths=np.array([3, 1])),
                      tmp_path / "x.ngds", order=2, progress=False)
    with pytest.raises(ngramds.InputError, match="prompt length"):
        ngramds.build(Corpus(tokens, offsets, prompt_lengths=np.array([1])),
                      tmp_path / "x.ngds", order=2, progress=False)
    with pytest.raises(ngramds.InputError, match="prompt lengths"):
        ngramds.build(Corpus(tokens, offsets, prompt_lengths=np.array([1, 1])),
                      tmp_path / "part", order=2, progress=False, partial=True)
    with pytest.raises(ngramds.InputError, match="prompt length"):
        ngramds.build(Corpus(tokens, offsets, prompt_lengths=np.array([3, 1])),
                      tmp_path / "x.ngds", order=2, progress=False, memory_limit="4G")


def test_bounded_build_keeps_prompt_lengths(tmp_path):
    """A memory-bounded build writes the prompt lengths as the in-memory build does."""
    corpus = Corpus(np.arange(40) % 7, np.array([0, 5, 18, 40]),
                    prompt_lengths=np.array([2, 0, 300 % 22]))
    mem = ngramds.build(corpus, tmp_path / "m.ngds", order=2, progress=False)
    lim = ngramds.build(corpus, tmp_path / "l.ngds", order=2, progress=False,
                        memory_limit="4G")
    assert mem.read_bytes() == lim.read_bytes()
    assert ngramds.open(lim, verify=True).prompt_lengths.tolist() == [2, 0, 14]


def test_split_keeps_prompt_lengths():
    corpus = Corpus(np.arange(20), np.arange(0, 21, 2), prompt_lengths=np.arange(10) % 3)
    train, val = ngramds.split_documents(corpus, 0.3, seed=1)
    lengths = {tuple(corpus.tokens[a:b]): int(p) for a, b, p in
               zip(corpus.doc_offsets[:-1], corpus.doc_offsets[1:], corpus.prompt_lengths)}
    for part in (train, val):
        for a, b, p in zip(part.doc_offsets[:-1], part.doc_offsets[1:], part.prompt_lengths):
            assert lengths[tuple(part.tokens[a:b])] == p


def test_cli_build_of_pairs(tmp_path, tokenizer, capsys):
    from ngramds.cli import main
    tok_path, tok = tokenizer
    src = write(tmp_path / "p.jsonl", RECORDS * 5)
    out, val = tmp_path / "c.ngds", tmp_path / "v.ngds"
    eos = tok.token_to_id("<eos>")
    assert main(["build", str(src), "--tokenizer", str(tok_path), "--prompt-field", "prompt",
                 "--response-field", "response", "--eos-id", str(eos), "-o", str(out),
                 "--val-fraction", "0.2", "--val-output", str(val), "-q"]) == 0
    expected = read_pairs([src], tok_path, eos_id=eos)
    train, held = ngramds.split_documents(expected, 0.2, 0)
    assert ngramds.open(out).prompt_lengths.tolist() == train.prompt_lengths.tolist()
    assert ngramds.open(val).prompt_lengths.tolist() == held.prompt_lengths.tolist()
    assert main(["build", str(src), "--tokenizer", str(tok_path), "--prompt-field", "prompt",
                 "-o", str(tmp_path / "x.ngds"), "-q"]) == 2
    assert "--response-field" in capsys.readouterr().err
    assert main(["build", str(src), "--tokenizer", str(tok_path), "--prompt-field", "prompt",
                 "--response-field", "response", "--partial",
                 "-o", str(tmp_path / "part"), "-q"]) == 2
    assert "no prompt lengths" in capsys.readouterr().err  # refused before tokenising
    assert not (tmp_path / "part").exists()


def test_verify_checks_prompt_lengths(tmp_path):
    from ngramds.file.verify import check_structure
    tokens, offsets = np.arange(6) % 3, np.array([0, 2, 6])
    path = ngramds.build(Corpus(tokens, offsets, prompt_lengths=np.array([2, 4])),
                         tmp_path / "x.ngds", order=2, progress=False)
    f = ngramds.open(path, verify=True)

    class Damaged:  # the file with a prompt longer than its document
        prompt_lengths = np.array([3, 4], np.uint8)

        def __getattr__(self, name):
            return getattr(f, name)

    with pytest.raises(ngramds.FormatError, match="prompt length"):
        check_structure(Damaged(), f.table())


def test_compressed_pair_files_read_as_plain(tmp_path, tokenizer):
    import gzip
    tok_path, _ = tokenizer
    src = write(tmp_path / "p.jsonl", RECORDS)
    (tmp_path / "p.jsonl.gz").write_bytes(gzip.compress(src.read_bytes()))
    plain = read_pairs([src], tok_path)
    packed = read_pairs([tmp_path / "p.jsonl.gz"], tok_path)
    assert np.array_equal(plain.tokens, packed.tokens)
    assert plain.prompt_lengths.tolist() == packed.prompt_lengths.tolist()


@pytest.mark.parametrize("fields", [("prompt", "prompt"), ("q", "q")])
def test_the_same_field_for_prompt_and_response_is_refused(tmp_path, tokenizer, capsys, fields):
    from ngramds.cli import main
    tok_path, _ = tokenizer
    src = write(tmp_path / "p.jsonl", [{"prompt": "a", "q": "b", "response": "c"}])
    with pytest.raises(ngramds.InputError, match="two different fields"):
        read_pairs([src], tok_path, prompt_field=fields[0], response_field=fields[1])
    assert main(["build", str(src), "--tokenizer", str(tok_path), "--prompt-field", fields[0],
                 "--response-field", fields[1], "-o", str(tmp_path / "x.ngds"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "two different fields" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.ngds").exists()


class _SpyTokenizer:
    """The tokenizer, recording the longest text of each batch call."""

    def __init__(self, tok):
        self.tok, self.longest = tok, []

    def encode_batch(self, texts, **kw):
        self.longest.append(max(map(len, texts)))
        return self.tok.encode_batch(texts, **kw)

    def __getattr__(self, name):
        if name == "encode_batch_fast":
            raise AttributeError(name)
        return getattr(self.tok, name)


def _long_text(chars: int, seed: int = 0) -> str:
    import random
    rng = random.Random(seed)
    words = ["the", "cat", "sat", "on", "mat", "dog", "log", "a", "and", "\n", "  "]
    out, size = [], 0
    while size < chars:
        w = rng.choice(words)
        out.append(w)
        size += len(w) + 1
    return " ".join(out)


def test_a_long_prompt_is_encoded_in_pieces_equal_to_whole_encoding(tmp_path, tokenizer,
                                                                      monkeypatch):
    """A 420 K-character prompt (in a .jsonl.gz) reaches the tokenizer in pieces of at most
    TEXT_PIECE_CHARS characters; with the byte-level BPE the ids equal whole encoding."""
    import gzip
    from ngramds.corpus import pairs, tokenize
    tok_path, tok = tokenizer
    long = _long_text(420_000)
    records = [{"prompt": "the cat", "response": " sat"},
               {"prompt": long, "response": " the dog" + long[:100_000]},
               {"prompt": "", "response": "a dog"}]
    raw = "".join(json.dumps(r) + "\n" for r in records).encode()
    (tmp_path / "p.jsonl.gz").write_bytes(gzip.compress(raw))
    spy = _SpyTokenizer(tok)
    monkeypatch.setattr(pairs, "load_tokenizer", lambda path: spy)
    eos = tok.token_to_id("<eos>")
    corpus = read_pairs(tmp_path / "p.jsonl.gz", tok_path, eos_id=eos)
    assert spy.longest and max(spy.longest) <= tokenize.TEXT_PIECE_CHARS < len(long)
    docs, lengths = [], []
    for r in records:
        p = tok.encode(r["prompt"], add_special_tokens=False).ids
        q = tok.encode(r["response"], add_special_tokens=False).ids
        docs.append(p + q + [eos])
        lengths.append(len(p))
    assert corpus.prompt_lengths.tolist() == lengths
    assert corpus.tokens.tolist() == [t for d in docs for t in d]
    assert corpus.doc_offsets.tolist() == np.cumsum([0] + [len(d) for d in docs]).tolist()


def test_pairs_are_read_in_bounded_memory(tmp_path, tokenizer, monkeypatch):
    """A 1.2 MB pairs file tokenised into a token file in batches of 16 K characters: Python's
    peak allocation stays far below the file's size (records are read one at a time, tokens
    written batch by batch; the whole-file read of before held the file twice over)."""
    import tracemalloc
    from ngramds.corpus import tokenize
    from ngramds.corpus.pairs import pair_stream
    monkeypatch.setattr(tokenize, "TEXT_BATCH_CHARS", 1 << 14)
    tok_path, tok = tokenizer
    text = _long_text(1_300_000, seed=3)
    records = [{"prompt": text[i:i + 700], "response": text[i + 700:i + 1500]}
               for i in range(0, len(text) - 1500, 1500)]
    src = write(tmp_path / "p.jsonl", records)
    assert src.stat().st_size > 1_200_000
    read_pairs(write(tmp_path / "warm.jsonl", records[:3]), tok_path)  # imports, caches
    spool = tmp_path / "spool"
    spool.mkdir()
    tracemalloc.start()
    try:
        stream = pair_stream([src], tok_path, spool=spool)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"peak {peak / 2**20:.2f} MiB for {src.stat().st_size / 2**20:.1f} MiB of pairs")
    assert peak < src.stat().st_size / 4
    assert stream.prompt_lengths.size == len(records) == stream.doc_offsets.size - 1
    first = [tok.encode(records[0][k], add_special_tokens=False).ids
             for k in ("prompt", "response")]
    assert stream.prompt_lengths[0] == len(first[0])
    assert stream.read(0, int(stream.doc_offsets[1])).tolist() == first[0] + first[1]


def test_cli_pairs_with_a_memory_limit_build_the_same_file(tmp_path, tokenizer, capsys):
    from ngramds.cli import main
    tok_path, tok = tokenizer
    src = write(tmp_path / "p.jsonl", RECORDS * 30)
    eos = str(tok.token_to_id("<eos>"))
    args = ["build", str(src), "--tokenizer", str(tok_path), "--prompt-field", "prompt",
            "--response-field", "response", "--eos-id", eos, "-q"]
    assert main(args + ["-o", str(tmp_path / "m.ngds")]) == 0
    assert main(args + ["-o", str(tmp_path / "l.ngds"), "--memory-limit", "4G"]) == 0
    assert (tmp_path / "m.ngds").read_bytes() == (tmp_path / "l.ngds").read_bytes()
    f = ngramds.open(tmp_path / "l.ngds", verify=True)
    assert f.prompt_lengths.tolist() == read_pairs([src], tok_path).prompt_lengths.tolist()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.ngds", "m.ngds", "p.jsonl"]


def test_a_record_longer_than_the_read_budget_is_refused_before_it_is_read(tmp_path,
                                                                           tokenizer):
    from ngramds.corpus import pairs
    tok_path, _ = tokenizer
    src = write(tmp_path / "p.jsonl", [{"prompt": "a", "response": "b"},
                                       {"prompt": "x " * 2_000_000, "response": ""}])

    class Counting:  # the bytes read from the file
        def __init__(self, f):
            self.f, self.read = f, 0

        def readline(self, size=-1):
            line = self.f.readline(size)
            self.read += len(line)
            return line

    with open(src, "rb") as f:
        counting = Counting(f)
        with pytest.raises(ngramds.InputError, match=r"p\.jsonl:2: .*memory limit"):
            list(pairs._lines(counting, src, 1 << 20))
    assert counting.read < 3 << 20 < src.stat().st_size
    with pytest.raises(ngramds.InputError, match=r"p\.jsonl:2: .*--memory-limit"):
        pairs.pair_stream([src], tok_path, read_bytes=1 << 20)


def test_pairs_need_jsonl_paths(tmp_path, tokenizer):
    tok_path, _ = tokenizer
    with pytest.raises(ngramds.InputError, match="JSONL files"):
        ngramds.build(np.arange(5), tmp_path / "o.ngds", tokenizer=tok_path,
                      prompt_field="p", response_field="r", progress=False)
    with pytest.raises(ngramds.InputError, match="is a directory"):
        read_pairs([tmp_path], tok_path)
