"""``sampling="documents"``: samples start at document starts and hold whole documents packed
up to seq_len (longer ones cut into pieces sharing one token), padded, with the loss masked;
checked against a plain-Python packer, with the order, partition and resume guarantees."""
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch.utils.data import DataLoader

import ngramds
from ngramds.targets import Targets
from ngramds.torch import NgramDataset, NgramLoader, ngram_loss

IGNORE = -100


def ref_pack(doc_offsets, L):
    """Samples as lists of (stream start, length) pieces: documents in order, cut into pieces
    [j(L-1), j(L-1)+L) when longer than L, packed next-fit (a piece that does not fit in the
    room left starts a new sample); documents of fewer than 2 tokens are skipped."""
    pieces = []
    for d in range(len(doc_offsets) - 1):
        a, b = int(doc_offsets[d]), int(doc_offsets[d + 1])
        j = 0
        while b - a >= 2 and a + j * (L - 1) < b - 1:
            s = a + j * (L - 1)
            pieces.append((s, min(L, b - s)))
            j += 1
    samples, cur, used = [], [], 0
    for p in pieces:
        if used + p[1] > L:
            samples.append(cur)
            cur, used = [], 0
        cur.append(p)
        used += p[1]
    if cur:
        samples.append(cur)
    return samples


def ref_item(tokens, sample, L):
    inp, lab, pos, where = [], [], [], []
    for s, n in sample:
        for i in range(n):
            inp.append(int(tokens[s + i]))
            lab.append(int(tokens[s + i + 1]) if i < n - 1 else IGNORE)
            where.append(s + i + 1 if i < n - 1 else -1)
            pos.append(i)
    pad = L - len(inp)
    return (inp + [0] * pad, lab + [IGNORE] * pad, pos + list(range(pad)),
            where + [-1] * pad)


def build(tmp, lengths, vocab=9, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, vocab, sum(lengths)).astype(np.uint16)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    path = Path(tmp) / "p.ngds"
    ngramds.build(tokens, path, doc_offsets=offsets, orders=[2, 3], progress=False)
    return path


def check_items(path, ds, batches, epoch):
    f = ngramds.open(path)
    samples = ref_pack(f.doc_offsets, ds.seq_len)
    assert ds.num_samples == len(samples)
    targets = Targets(f, ds.config)
    seen = []
    for batch in batches:
        for j, k in enumerate(batch["index"].tolist()):
            seen.append(k)
            inp, lab, pos, where = ref_item(f.tokens, samples[k], ds.seq_len)
            assert batch["input_ids"][j].tolist() == inp
            assert batch["labels"][j].tolist() == lab
            assert batch["position_ids"][j].tolist() == pos
            where = np.array(where)
            live = where >= 0
            probs, ids = batch["target_probs"][j].numpy(), batch["target_ids"][j].numpy()
            assert not probs[~live].any()
            if live.any():
                ref = targets.compute(where[live] - 1, 1, ds.seed, epoch)
                np.testing.assert_array_equal(ids[live], ref.target_ids[:, 0])
                np.testing.assert_array_equal(probs[live], ref.target_probs[:, 0])
    return seen


@settings(max_examples=15)
@given(lengths=st.lists(st.integers(0, 14), min_size=1, max_size=10)
       .filter(lambda x: any(n >= 2 for n in x)),
       seq_len=st.integers(2, 7), workers=st.sampled_from([0, 2]), batched=st.booleans())
def test_packed_items_match_the_reference_and_each_sample_comes_once(lengths, seq_len,
                                                                     workers, batched):
    with tempfile.TemporaryDirectory() as tmp:
        path = build(tmp, lengths)
        ds = NgramDataset(path, seq_len, sampling="documents", doc_info=True, seed=3,
                          batched=batched, targets="coconts", top_r=2)
        loader = NgramLoader(ds, batch_size=2, num_workers=workers)
        for epoch in (0, 1):
            seen = check_items(path, ds, loader, epoch)
            assert sorted(seen) == list(range(ds.num_samples))


@settings(max_examples=25)
@given(lengths=st.lists(st.integers(0, 30), min_size=1, max_size=12), seq_len=st.integers(2, 9))
def test_reference_packing_predicts_every_label_once_and_never_crosses_documents(lengths,
                                                                                  seq_len):
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    labels = []
    for sample in ref_pack(offsets, seq_len):
        assert sum(n for _, n in sample) <= seq_len
        for s, n in sample:
            d = np.searchsorted(offsets, s, side="right") - 1
            assert s + n <= offsets[d + 1]  # within one document
            labels += range(s + 1, s + n)
    expected = [p for d in range(len(lengths)) for p in range(offsets[d] + 1, offsets[d + 1])]
    assert sorted(labels) == expected


def test_partition_and_resume_deliver_every_sample_once(tmp_path):
    path = build(tmp_path, [5, 3, 12, 2, 7, 1, 0, 9, 4, 4, 6, 11, 3, 2, 8], seed=1)
    kw = dict(sampling="documents", seed=7)
    ranks = [[int(i) for b in NgramLoader(NgramDataset(path, 6, rank=r, world_size=2, **kw),
                                          batch_size=2) for i in b["index"]] for r in range(2)]
    n = NgramDataset(path, 6, **kw).num_samples
    flat = ranks[0] + ranks[1]
    assert len(flat) == len(set(flat)) == 2 * (n // 2)
    ds = NgramDataset(path, 6, **kw)
    loader = NgramLoader(ds, batch_size=2)
    it = iter(loader)
    first = [int(i) for _ in range(2) for i in next(it)["index"]]
    state = loader.state_dict()
    assert state["sampling"] == "documents"
    again = NgramDataset(path, 6, **kw)
    resumed = NgramLoader(again, batch_size=3, num_workers=2)
    resumed.load_state_dict(state)
    rest = [int(i) for b in resumed for i in b["index"]]
    assert sorted(first + rest) == list(range(n))
    windows = NgramDataset(path, 6, seed=7)
    with pytest.raises(ngramds.InputError, match="sampling"):
        windows.load_state_dict(dict(state, num_samples=windows.num_samples))


def test_hf_layout_of_packed_samples_gives_the_same_loss(tmp_path):
    path = build(tmp_path, [5, 3, 12, 2, 7, 9, 4], seed=2)
    kw = dict(sampling="documents", seed=1, shuffle=False)
    plain = NgramDataset(path, 8, **kw)[1]
    hf = NgramDataset(path, 8, layout="hf", **kw)[1]
    assert plain["labels"][-1] == IGNORE  # a packed sample's last position never has a label
    assert hf["labels"].tolist() == [IGNORE] + plain["labels"][:-1].tolist()
    logits = torch.randn(1, 8, 9, dtype=torch.float64)
    one = {k: v[None] for k, v in plain.items()}
    two = {k: v[None] for k, v in hf.items()}
    assert float(ngram_loss(logits, two)) == pytest.approx(float(ngram_loss(logits, one)))


def test_documents_options_are_checked(tmp_path):
    path = build(tmp_path, [1, 1, 0], seed=0)
    with pytest.raises(ngramds.InputError, match="2 tokens"):
        NgramDataset(path, 4, sampling="documents")
    path = build(tmp_path, [5, 5], seed=0)
    with pytest.raises(ngramds.InputError, match="seq_len"):
        NgramDataset(path, 1, sampling="documents")
    with pytest.raises(ngramds.InputError, match="sampling"):
        NgramDataset(path, 4, sampling="docs")
    with pytest.raises(ngramds.InputError, match="device"):
        NgramDataset(path, 4, sampling="documents", targets_on="device")


def test_per_sample_items_collate(tmp_path):
    path = build(tmp_path, [4, 9, 4, 4, 2], seed=5)
    ds = NgramDataset(path, 5, sampling="documents", batch_size=2)
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["labels"].shape == (2, 5) and (batch["labels"] == IGNORE).any()


def test_the_fine_tuning_recipe_runs_as_pasted(tmp_path, monkeypatch):
    transformers = pytest.importorskip("transformers")
    import re
    recipes = (Path(__file__).resolve().parents[2] / "docs" / "RECIPES.md").read_text()
    section = recipes[recipes.index("## Fine-tuning on documents"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    rng = np.random.default_rng(0)
    docs = [rng.integers(1, 30, int(n)).tolist() + [0] for n in rng.integers(5, 700, 12)]
    monkeypatch.chdir(tmp_path)
    ngramds.build(docs, "finetune.ngds", progress=False)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=30, n_positions=512, n_embd=8, n_layer=1, n_head=1))
    scope = {"model": model, "opt": torch.optim.SGD(model.parameters(), lr=0.1),
             "NgramDataset": NgramDataset, "NgramLoader": NgramLoader, "ngram_loss": ngram_loss}
    exec(code, scope)
    assert torch.isfinite(scope["loss"]) and scope["loader"].state_dict()["epoch"] == 1



RECIPES = Path(__file__).resolve().parents[2] / "docs" / "RECIPES.md"
RECIPE = "## Packed documents in HF models"


def tiny_hf_model(kind: str, attention: str, vocab: int, seq_len: int):
    """A randomly initialised 2-layer Llama or GPT-2 without dropout."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    if kind == "llama":
        config = transformers.LlamaConfig(
            vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=seq_len,
            attention_dropout=0.0)
        model = transformers.LlamaForCausalLM(config)
    else:
        config = transformers.GPT2Config(vocab_size=vocab, n_positions=seq_len, n_embd=16,
                                         n_layer=2, n_head=2, resid_pdrop=0.0, embd_pdrop=0.0,
                                         attn_pdrop=0.0)
        model = transformers.GPT2LMHeadModel(config)
    model.config._attn_implementation = attention
    return model


def per_document_logits(model, input_ids, position_ids):
    """Logits of each row's segments (documents, pieces, padding: where position_ids restart
    at 0), each run alone, put back in place."""
    out = torch.empty(*input_ids.shape, model.config.vocab_size)
    for b, pos in enumerate(position_ids):
        starts = torch.nonzero(pos == 0).reshape(-1).tolist() + [pos.numel()]
        for a, e in zip(starts[:-1], starts[1:]):
            out[b, a:e] = model(input_ids=input_ids[b:b + 1, a:e]).logits[0]
    return out


class AgainstEachDocumentAlone(torch.nn.Module):
    """Calls the model as it is called, and records how far its logits are from those of each
    document run alone (computed with the same weights, before any step)."""

    def __init__(self, model):
        super().__init__()
        self.model, self.gaps, self.documents = model, [], 0

    def forward(self, *args, **kwargs):
        out = self.model(*args, **kwargs)
        pos = kwargs["position_ids"]
        self.documents = max(self.documents, int((pos == 0).sum(-1).max()))
        with torch.no_grad():
            alone = per_document_logits(self.model, kwargs["input_ids"], pos)
        self.gaps.append(float((out.logits.detach() - alone).abs().max()))
        return out


def write_finetune_file(directory):
    rng = np.random.default_rng(1)
    docs = [rng.integers(1, 30, int(n)).tolist() + [0] for n in [90, 300, 40, 200, 700, 60]]
    ngramds.build(docs, Path(directory) / "finetune.ngds", progress=False)


@pytest.mark.parametrize("kind,attention,train", [
    ("llama", "sdpa", False), ("llama", "sdpa", True), ("gpt2", "sdpa", False),
    ("gpt2", "sdpa", True), ("llama", "eager", True), ("gpt2", "eager", False)])
def test_the_hf_packed_documents_recipe_keeps_documents_apart(tmp_path, monkeypatch, kind,
                                                               attention, train):
    """docs/RECIPES.md's call of a tiny random HF model on packed documents (as pasted) gives
    each document's logits as if it ran alone, in eval and train mode (dropout 0)."""
    import re
    text = RECIPES.read_text()
    code = re.search(r"```python\n(.*?)```", text[text.index(RECIPE):], re.S).group(1)
    write_finetune_file(tmp_path)
    monkeypatch.chdir(tmp_path)
    model = AgainstEachDocumentAlone(tiny_hf_model(kind, attention, 30, 512).train(train))
    exec(code, {"model": model, "opt": torch.optim.SGD(model.parameters(), lr=0.1)})
    assert model.gaps and model.documents >= 2  # rows of several documents each
    assert max(model.gaps) <= 1e-4, model.gaps
