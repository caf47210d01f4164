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
    with pytest.raises(ngramds.InputError, match="prompt"):
        ngramds.build(Corpus(tokens, offsets, prompt_lengths=np.array([1, 1])),
                      tmp_path / "x.ngds", order=2, progress=False, memory_limit="1G")


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
                 "--response-field", "response", "--memory-limit", "1G",
                 "-o", str(tmp_path / "x.ngds"), "-q"]) == 2
    assert "built in memory" in capsys.readouterr().err  # refused before tokenising
    assert main(["build", str(src), "--tokenizer", str(tok_path), "--prompt-field", "prompt",
                 "--response-field", "response", "--engine", "dask",
                 "-o", str(tmp_path / "x.ngds"), "-q"]) == 2
    assert "built in memory" in capsys.readouterr().err


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
