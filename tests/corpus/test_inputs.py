"""Every corpus a trainer already has: parquet and Arrow files, HuggingFace
datasets, compressed text; each gives the same file as the same corpus as .npy
(or as plain text), in memory and under a memory limit, and the input guards warn (or, with
strict, refuse) instead of building a valid-looking file of the wrong corpus."""
import bz2
import gzip
import lzma
import os

import numpy as np
import pytest

import ngramds
from ngramds.cli import main
from ngramds.errors import InputError, InputWarning

from helpers import write_jsonl


def _docs(n: int = 300, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 500, rng.integers(0, 60)) for _ in range(n)]


def _same_tables(a, b) -> None:
    """Two files hold the same corpus and tables, byte for byte (their headers may name
    different sources)."""
    with ngramds.open(a) as fa, ngramds.open(b) as fb:
        assert fa.vocab_size == fb.vocab_size and fa.token_dtype == fb.token_dtype
        assert np.array_equal(fa.tokens, fb.tokens)
        assert np.array_equal(fa.doc_offsets, fb.doc_offsets)
        names = sorted(fa.sections)
        assert names == sorted(fb.sections)
        for name in names:
            assert np.asarray(fa.section(name)).tobytes() == \
                np.asarray(fb.section(name)).tobytes(), name


def _npy_reference(d, docs):
    tokens = np.concatenate(docs).astype(np.int64)
    lengths = np.array([len(x) for x in docs])
    np.save(d / "ref.npy", tokens)
    return ngramds.build([d / "ref.npy"], d / "ref.ngds", doc_lengths=lengths, progress=False)


# -- parquet and Arrow ---------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["parquet", "arrow", "arrow-stream"])
@pytest.mark.parametrize("limit", [None, "4G"])
def test_token_id_column_gives_the_npy_file(tmp_path, kind, limit):
    pa = pytest.importorskip("pyarrow")
    docs = _docs()
    ref = _npy_reference(tmp_path, docs)
    table = pa.table({"id": list(range(len(docs))),
                      "input_ids": pa.array([x.tolist() for x in docs], pa.list_(pa.int64()))})
    path = tmp_path / ("c.parquet" if kind == "parquet" else "c.arrow")
    if kind == "parquet":
        import pyarrow.parquet as pq
        pq.write_table(table, path, row_group_size=70)
    else:
        import pyarrow.ipc as ipc
        writer = ipc.new_file if kind == "arrow" else ipc.new_stream
        with writer(str(path), table.schema) as w:
            for batch in table.to_batches(max_chunksize=70):
                w.write_batch(batch)
    out = ngramds.build([path], tmp_path / "c.ngds", progress=False, memory_limit=limit)
    _same_tables(out, ref)


def test_text_column_gives_the_jsonl_file(text, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    d, _, texts = text
    ref = ngramds.build([d / "a.jsonl"], tmp_path / "ref.ngds", tokenizer=d / "tok.json",
                        eos_id=0, progress=False)
    pq.write_table(pa.table({"text": texts, "n": list(range(len(texts)))}), tmp_path / "a.parquet",
                   row_group_size=64)
    for limit in (None, "4G"):
        out = ngramds.build([tmp_path / "a.parquet"], tmp_path / f"p{limit}.ngds",
                            tokenizer=d / "tok.json", eos_id=0, progress=False,
                            memory_limit=limit)
        _same_tables(out, ref)


def test_a_missing_column_is_refused_listing_the_columns(tmp_path, capsys):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"body": ["a b"], "score": [1.0]}), tmp_path / "a.parquet")
    assert main(["build", str(tmp_path / "a.parquet"), "-o", str(tmp_path / "o.ngds"),
                 "--field", "content", "-q"]) == 2
    err = capsys.readouterr().err
    assert "content" in err and "body" in err and "score" in err and len(err.splitlines()) == 1
    # no field named and no text or token-id column to guess
    assert main(["build", str(tmp_path / "a.parquet"), "-o", str(tmp_path / "o.ngds"),
                 "-q"]) == 2
    assert "body" in capsys.readouterr().err
    assert not (tmp_path / "o.ngds").exists()


def test_a_parquet_text_column_without_a_tokenizer_is_refused(tmp_path, capsys):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"text": ["a b"]}), tmp_path / "a.parquet")
    assert main(["build", str(tmp_path / "a.parquet"), "-o", str(tmp_path / "o.ngds"),
                 "-q"]) == 2
    err = capsys.readouterr().err
    assert "--tokenizer" in err and "headerless" not in err


def test_not_a_parquet_file_is_one_line(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    (tmp_path / "a.parquet").write_bytes(b"PAR1 not really")
    assert main(["build", str(tmp_path / "a.parquet"), "-o", str(tmp_path / "o.ngds"),
                 "-q"]) == 2
    err = capsys.readouterr().err
    assert "a.parquet" in err and len(err.splitlines()) == 1


def test_null_or_negative_ids_are_refused(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"input_ids": [[1, 2], None]}), tmp_path / "n.parquet")
    with pytest.raises(InputError, match="null"):
        ngramds.build([tmp_path / "n.parquet"], tmp_path / "o.ngds", progress=False)
    pq.write_table(pa.table({"input_ids": [[1, None]]}), tmp_path / "m.parquet")
    with pytest.raises(InputError, match="null"):
        ngramds.build([tmp_path / "m.parquet"], tmp_path / "o.ngds", progress=False)
    pq.write_table(pa.table({"input_ids": [[1, -2]]}), tmp_path / "g.parquet")
    with pytest.raises(InputError, match="negative"):
        ngramds.build([tmp_path / "g.parquet"], tmp_path / "o.ngds", progress=False)


# -- HuggingFace datasets ------------------------------------------------------------------
@pytest.mark.parametrize("iterable", [False, True])
def test_hf_dataset_of_ids_gives_the_npy_file(tmp_path, iterable):
    datasets = pytest.importorskip("datasets")
    docs = _docs(seed=3)
    ref = _npy_reference(tmp_path, docs)
    ds = datasets.Dataset.from_dict({"input_ids": [x.tolist() for x in docs]})
    if iterable:
        ds = ds.to_iterable_dataset(num_shards=3)
    for limit in (None, "4G"):
        out = ngramds.build(ds, tmp_path / f"h{limit}.ngds", progress=False, memory_limit=limit)
        _same_tables(out, ref)


def test_hf_dataset_of_text_gives_the_jsonl_file(text, tmp_path):
    datasets = pytest.importorskip("datasets")
    d, _, texts = text
    ref = ngramds.build([d / "a.jsonl"], tmp_path / "ref.ngds", tokenizer=d / "tok.json",
                        eos_id=0, progress=False)
    ds = datasets.Dataset.from_dict({"text": texts, "label": [0] * len(texts)})
    for limit in (None, "4G"):
        out = ngramds.build(ds, tmp_path / f"t{limit}.ngds", tokenizer=d / "tok.json",
                            eos_id=0, progress=False, memory_limit=limit)
        _same_tables(out, ref)


def test_hf_dataset_view_is_read_in_its_own_order(tmp_path):
    datasets = pytest.importorskip("datasets")
    docs = _docs(seed=4)
    order = np.random.default_rng(0).permutation(len(docs))
    ref = _npy_reference(tmp_path, [docs[i] for i in order])
    ds = datasets.Dataset.from_dict({"input_ids": [x.tolist() for x in docs]}).select(order)
    _same_tables(ngramds.build(ds, tmp_path / "v.ngds", progress=False), ref)


def test_hf_dataset_missing_column_lists_the_columns(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"content": ["x"], "meta": [1]})
    with pytest.raises(InputError, match="content.*meta|meta.*content"):
        ngramds.build(ds, tmp_path / "o.ngds", text_field="text", progress=False)


# -- compressed text ---------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz", ".zst"])
def test_compressed_jsonl_and_txt_give_the_plain_file(text, tmp_path, suffix):
    d, _, texts = text
    compress = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}.get(suffix)
    if suffix == ".zst":
        zstandard = pytest.importorskip("zstandard")
        compress = zstandard.ZstdCompressor().compress
    (tmp_path / "a.txt").write_text("\n".join(texts) + "\n")
    for name in ("a.jsonl", "a.txt"):
        plain = d / name if name == "a.jsonl" else tmp_path / name
        (tmp_path / (name + suffix)).write_bytes(compress(plain.read_bytes()))
        ref = ngramds.build([plain], tmp_path / "ref.ngds", tokenizer=d / "tok.json",
                            eos_id=0, progress=False)
        for limit in (None, "4G"):
            out = ngramds.build([tmp_path / (name + suffix)], tmp_path / f"z{limit}.ngds",
                                tokenizer=d / "tok.json", eos_id=0, progress=False,
                                memory_limit=limit)
            _same_tables(out, ref)


def test_corrupt_compressed_input_is_one_line(text, tmp_path, capsys):
    d, _, _ = text
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(b'{"text": "a"}\n')[:-6] + b"xx")
    assert main(["build", str(tmp_path / "a.jsonl.gz"), "-o", str(tmp_path / "o.ngds"),
                 "--tokenizer", str(d / "tok.json"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "a.jsonl.gz" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.ngds").exists()


# -- guards --------------------------------------------------------------------------------
def test_eos_above_every_token_warns_and_strict_refuses(tmp_path, capsys):
    np.save(tmp_path / "a.npy", np.arange(100, dtype=np.uint16) % 50)
    args = ["build", str(tmp_path / "a.npy"), "-o", str(tmp_path / "o.ngds"), "--eos-id",
            "50256", "-q"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "50256" in err and "largest" in err and len(err.splitlines()) == 1
    os.unlink(tmp_path / "o.ngds")
    assert main(args + ["--strict"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ngramds: error:") and "50256" in err
    assert not (tmp_path / "o.ngds").exists()
    with pytest.raises(InputError, match="50256"):
        ngramds.build([tmp_path / "a.npy"], tmp_path / "o.ngds", eos_id=50256, strict=True,
                      progress=False)


def test_eos_outside_given_vocabulary_warns(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(100, dtype=np.uint16) % 50)
    with pytest.warns(InputWarning) as seen:  # and, since 70 never occurs, that too
        ngramds.build([tmp_path / "a.npy"], tmp_path / "o.ngds", eos_id=70, vocab_size=60,
                      progress=False)
    assert any("outside the vocabulary" in str(w.message) for w in seen)
    assert any("never occurs" in str(w.message) for w in seen)


@pytest.mark.parametrize("data,given,right", [(np.uint32, "uint16", "uint32"),
                                               (np.uint16, "uint32", "uint16")])
def test_wrong_dtype_is_refused_naming_the_right_one_unless_forced(tmp_path, capsys, data,
                                                                   given, right):
    ids = np.random.default_rng(0).integers(0, 50257 if data == np.uint16 else 1000, 4000)
    (tmp_path / "train.bin").write_bytes(ids.astype(data).tobytes())
    args = ["build", str(tmp_path / "train.bin"), "-o", str(tmp_path / "o.ngds"), "--dtype",
            given, "-q"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "train.bin" in err and f"--dtype {right}" in err
    assert not (tmp_path / "o.ngds").exists()
    with pytest.raises(InputError, match=f"dtype {right}"):
        ngramds.build([tmp_path / "train.bin"], tmp_path / "o.ngds", dtype=given,
                      progress=False)
    # the right dtype builds without a word; the wrong one only when forced
    assert main(args[:-3] + ["--dtype", right, "-q"]) == 0
    assert capsys.readouterr().err == ""
    os.unlink(tmp_path / "o.ngds")
    assert main(args + ["--force-dtype"]) == 0
    assert capsys.readouterr().err == ""
    with ngramds.open(tmp_path / "o.ngds") as f:
        assert f.num_tokens == ids.size * np.dtype(data).itemsize // np.dtype(given).itemsize
    out = ngramds.build([tmp_path / "train.bin"], tmp_path / "p.ngds", dtype=given,
                        force_dtype=True, progress=False)
    with ngramds.open(out) as f:
        assert f.num_tokens == ids.size * np.dtype(data).itemsize // np.dtype(given).itemsize
    # forcing needs a dtype to force
    assert main(["build", str(tmp_path / "train.bin"), "-o", str(tmp_path / "q.ngds"),
                 "--force-dtype", "-q"]) == 2
    assert "--dtype" in capsys.readouterr().err


def test_many_txt_files_line_per_document_warns(text, tmp_path):
    """The glob case: many .txt files with the default line unit give many tiny documents."""
    d, _, texts = text
    paths = []
    for i in range(20):
        p = tmp_path / f"f{i}.txt"
        p.write_text("\n".join(texts[i * 10:(i + 1) * 10][j].split()[0] for j in range(10)))
        paths.append(p)
    with pytest.warns(InputWarning, match="text-unit file"):
        ngramds.build(paths, tmp_path / "o.ngds", tokenizer=d / "tok.json", progress=False)
    # said explicitly: no warning
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        ngramds.build(paths, tmp_path / "p.ngds", tokenizer=d / "tok.json", text_unit="line",
                      progress=False)


def test_tokenising_shows_progress_and_counts_it(text, tmp_path, capsys):
    d, _, _ = text
    assert main(["build", str(d / "a.jsonl"), "-o", str(tmp_path / "o.ngds"), "--tokenizer",
                 str(d / "tok.json"), "--eos-id", "0"]) == 0
    err = capsys.readouterr().err
    assert "tokenis" in err and "tokens/s" in err and "400 documents" in err


# -- found in review ----------------------------------------------------------------------


def test_without_a_tokenizer_the_token_id_column_is_chosen(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"text": ["a b", "c"], "input_ids": [[1, 2], [3]]}),
                   tmp_path / "a.parquet")
    out = ngramds.build([tmp_path / "a.parquet"], tmp_path / "o.ngds", progress=False)
    with ngramds.open(out) as f:
        assert f.tokens.tolist() == [1, 2, 3]


# -- messages that name the file and the cause ---------------------------------------------
def test_arrow_list_offsets_past_the_values_name_the_file(tmp_path, capsys):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.ipc as ipc
    docs = [list(range(i % 7 + 1)) for i in range(50)]
    table = pa.table({"input_ids": pa.array(docs, pa.list_(pa.int64()))})
    with ipc.new_file(str(tmp_path / "c.arrow"), table.schema) as w:
        w.write_table(table)
    raw = bytearray((tmp_path / "c.arrow").read_bytes())
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])]).astype(np.int32)
    at = raw.find(offsets.tobytes()) + 4 * (len(offsets) - 1)  # the last offset, past the ids
    raw[at:at + 4] = np.int32(offsets[-1] + 40).tobytes()
    (tmp_path / "bad.arrow").write_bytes(bytes(raw))
    assert main(["build", str(tmp_path / "bad.arrow"), "-o", str(tmp_path / "o.ngds"),
                 "-q"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "bad.arrow" in err and "offsets" in err, err
    assert not (tmp_path / "o.ngds").exists()


@pytest.mark.parametrize("kind", ["fifo", "directory", "missing"])
def test_tokenizer_that_is_not_a_regular_file_says_what_it_is(text, tmp_path, capsys, kind):
    d, _, _ = text
    tok = tmp_path / "tok.json"
    if kind == "fifo":
        os.mkfifo(tok)
    elif kind == "directory":
        tok.mkdir()
    assert main(["build", str(d / "a.jsonl"), "-o", str(tmp_path / "o.ngds"), "--tokenizer",
                 str(tok), "-q"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "tok.json" in err, err
    assert {"fifo": "not a regular file", "directory": "is a directory",
            "missing": "does not exist"}[kind] in err, err
    assert not (tmp_path / "o.ngds").exists()


def test_directory_given_for_prompt_response_pairs_says_so(text, tmp_path, capsys):
    d, _, _ = text
    (tmp_path / "pd").mkdir()
    (tmp_path / "pd" / "a.jsonl").write_text('{"prompt": "alpha", "response": "beta"}\n')
    assert main(["build", str(tmp_path / "pd"), "-o", str(tmp_path / "o.ngds"), "--tokenizer",
                 str(d / "tok.json"), "--prompt-field", "prompt", "--response-field",
                 "response", "-q"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "pd is a directory" in err, err
    assert not (tmp_path / "o.ngds").exists()


def test_tokenizer_name_not_utf8_is_refused_before_any_work(text, tmp_path, capsys):
    d, _, _ = text
    bad = os.path.join(os.fsencode(tmp_path), b"tok\xff.json")
    try:
        with open(bad, "wb") as f:
            f.write((d / "tok.json").read_bytes())
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    assert main(["build", str(d / "a.jsonl"), "-o", str(tmp_path / "o.ngds"), "--tokenizer",
                 os.fsdecode(bad), "-q"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "tok\\xff.json" in err and "UTF-8" in err, err
    assert not (tmp_path / "o.ngds").exists()
