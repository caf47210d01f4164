"""Small writers of third-party input formats, a tiny offline tokenizer and the package's
private test hooks, for tests."""
import json
import struct
from contextlib import contextmanager

import numpy as np


@contextmanager
def run_sizes(positions=None, entries=None):
    """Within the block, bounded builds and merges (in this process) use sorted runs of
    ``positions`` positions and merged buckets of ``entries`` run entries instead of the sizes
    derived from the memory limit: tiny ones cross every boundary."""
    from ngramds.builder import bounded
    saved, bounded._run_sizes = bounded._run_sizes, bounded.RunSizes(positions, entries)
    try:
        yield
    finally:
        bounded._run_sizes = saved


@contextmanager
def widened_sections(min_bytes=8):
    """Within the block, sections sized by ``uint_dtype`` are at least ``min_bytes`` wide:
    64-bit sections (what past-2^32 files get) from a small corpus."""
    from ngramds.file import format as fmt
    saved, fmt._min_uint_bytes = fmt._min_uint_bytes, min_bytes
    try:
        yield
    finally:
        fmt._min_uint_bytes = saved


def write_megatron(prefix, docs, dtype=np.uint16, code=8, magic=b"MMIDIDX\x00\x00", version=1):
    """Write ``docs`` (one sequence per document) as a Megatron indexed dataset."""
    tokens = np.concatenate([np.asarray(d, dtype) for d in docs]) if docs else np.empty(0, dtype)
    (prefix.parent / (prefix.name + ".bin")).write_bytes(tokens.tobytes())
    sizes = np.array([len(d) for d in docs], np.int32)
    pointers = np.concatenate([[0], np.cumsum(sizes[:-1], dtype=np.int64)]) * np.dtype(dtype).itemsize
    doc_idx = np.arange(len(docs) + 1, dtype=np.int64)
    head = struct.pack("<9sQBQQ", magic, version, code, len(docs), len(doc_idx))
    (prefix.parent / (prefix.name + ".idx")).write_bytes(
        head + sizes.tobytes() + pointers.astype(np.int64).tobytes() + doc_idx.tobytes())


def write_jsonl(path, texts, field="text"):
    path.write_text("".join(json.dumps({field: t}) + "\n" for t in texts), encoding="utf-8")


def train_small_tokenizer(path, texts):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<eos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    tok.save(str(path))
    return tok


DOCS = [[3, 1, 4, 1, 5], [9, 2, 6], [5], [3, 5, 8, 9, 7, 9]]  # a tiny corpus of token ids


def sections(path):
    import ngramds
    f = ngramds.open(path)
    return {k: np.array(f.section(k)) for k in f.sections}, f


def same_tables(a, b):
    """The files ``a`` and ``b`` hold the same sections, value for value; returns ``a``
    opened."""
    sa, fa = sections(a)
    sb, fb = sections(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        assert np.array_equal(sa[k], sb[k]), k
    return fa


WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "1234", "!?"]


def whole_encoding(tok, texts, eos=0):
    """Tokens and offsets of today's whole-document encoding, EOS appended."""
    docs = [tok.encode(t, add_special_tokens=False).ids + [eos] for t in texts]
    return (np.array([i for d in docs for i in d]),
            np.concatenate([[0], np.cumsum([len(d) for d in docs])]))


def zipf_shards(tmp_path, sizes=(3000, 1, 2500), vocab=700):
    """Token shards s0.npy, s1.npy, ... (uint16, Zipf-distributed, ~2% end-of-document 0s)
    of the given sizes in tmp_path; their paths."""
    rng = np.random.default_rng(5)
    paths = []
    for i, n in enumerate(sizes):
        t = (rng.zipf(1.3, n) % vocab).astype(np.uint16)
        t[rng.random(n) < 0.02] = 0
        paths.append(tmp_path / f"s{i}.npy")
        np.save(paths[-1], t)
    return paths
