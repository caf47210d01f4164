"""Document metadata in items (``doc_info=True``): position_ids restarting at the window start
and at every document start, ``cu_seqlens`` of a batch, and the SDPA recipe of docs/RECIPES.md, each
against a plain reference."""
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch.utils.data import DataLoader

import ngramds
from ngramds.torch import NgramDataset, NgramLoader, NgramTargets, cu_seqlens

RECIPES = Path(__file__).resolve().parents[2] / "docs" / "RECIPES.md"


def ref_position_ids(doc_offsets, start: int, seq_len: int) -> list[int]:
    """0 at the window's first token and at every token that starts a document, +1 else."""
    starts = {int(x) for x in doc_offsets}
    out, pos = [], 0
    for t in range(seq_len):
        if t > 0 and start + t in starts:
            pos = 0
        out.append(pos)
        pos += 1
    return out


def ref_cu_seqlens(position_ids: torch.Tensor) -> list[int]:
    flat = position_ids.reshape(-1).tolist()
    return [i for i, p in enumerate(flat) if p == 0] + [len(flat)]


def build(tmp: str, lengths: list[int], vocab: int = 7, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, vocab, sum(lengths)).astype(np.uint16)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    path = Path(tmp) / "d.ngds"
    ngramds.build(tokens, path, doc_offsets=offsets, order=2, progress=False)
    return path


@settings(max_examples=20)
@given(lengths=st.lists(st.integers(0, 9), min_size=1, max_size=12)
       .filter(lambda x: sum(x) >= 3),
       seq_len=st.integers(1, 6), batched=st.booleans(), workers=st.sampled_from([0, 2]))
def test_position_ids_restart_at_documents(lengths, seq_len, batched, workers):
    with tempfile.TemporaryDirectory() as tmp:
        path = build(tmp, lengths)
        offsets = ngramds.open(path).doc_offsets
        if (sum(lengths) - 1) // seq_len < 1:
            return
        ds = NgramDataset(path, seq_len, doc_info=True, seed=1, batched=batched, batch_size=2)
        loader = NgramLoader(ds, batch_size=2, num_workers=workers)
        seen = 0
        for batch in loader:
            assert batch["position_ids"].dtype == torch.int64
            for idx, pos in zip(batch["index"], batch["position_ids"]):
                assert pos.tolist() == ref_position_ids(offsets, int(idx) * seq_len, seq_len)
                seen += 1
            cu, longest = cu_seqlens(batch["position_ids"])
            assert cu.dtype == torch.int32 and cu.tolist() == ref_cu_seqlens(
                batch["position_ids"])
            assert longest == int(np.diff(cu.numpy()).max())
        assert seen == ds.num_samples


def test_no_doc_info_by_default_and_device_mode_carries_it(tmp_path):
    path = build(tmp_path, [5, 1, 0, 7, 3, 9, 2], seed=2)
    assert "position_ids" not in next(iter(NgramDataset(path, 4)))
    loader_items = next(iter(NgramLoader(NgramDataset(path, 4, doc_info=True), batch_size=3)))
    ds = NgramDataset(path, 4, doc_info=True, targets_on="device")
    batch = NgramTargets(ds)(next(iter(NgramLoader(ds, batch_size=3))))
    assert torch.equal(batch["position_ids"], loader_items["position_ids"])
    assert torch.equal(batch["target_probs"], loader_items["target_probs"])


def test_cu_seqlens_of_one_row_and_bad_input():
    cu, longest = cu_seqlens(torch.tensor([0, 1, 2, 0, 0, 1]))
    assert cu.tolist() == [0, 3, 4, 6] and longest == 3
    with pytest.raises(ValueError, match="position_ids"):
        cu_seqlens(torch.tensor([[1, 2, 0]]))  # a row must start at 0


def recipe_block(heading: str) -> str:
    text = RECIPES.read_text()
    section = text[text.index(heading):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_sdpa_recipe_masks_exactly_within_documents(tmp_path):
    path = build(tmp_path, [3, 6, 1, 2, 9, 4, 5, 2, 8], seed=3)
    batch = next(iter(NgramLoader(NgramDataset(path, 8, doc_info=True, seed=4), batch_size=4)))
    B, H, L, D = 4, 2, 8, 5
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(B, H, L, D, generator=gen) for _ in range(3))
    scope = {"batch": batch, "q": q, "k": k, "v": v}
    exec(recipe_block("## Attention within documents"), scope)
    mask, out = scope["mask"], scope["out"]
    pos = batch["position_ids"]
    for b in range(B):  # plain reference: j visible from i iff same document and j <= i
        doc = [0] * L
        for t in range(1, L):
            doc[t] = doc[t - 1] + (pos[b, t] == 0)
        for i in range(L):
            for j in range(L):
                assert bool(mask[b, i, j]) == (doc[i] == doc[j] and j <= i)
    # the same as attending within each document alone
    for b in range(B):
        bounds = [t for t in range(L) if pos[b, t] == 0] + [L]
        for lo, hi in zip(bounds, bounds[1:]):
            alone = torch.nn.functional.scaled_dot_product_attention(
                q[b:b + 1, :, lo:hi], k[b:b + 1, :, lo:hi], v[b:b + 1, :, lo:hi],
                is_causal=True)
            torch.testing.assert_close(out[b:b + 1, :, lo:hi], alone)


def test_per_sample_items_collate(tmp_path):
    path = build(tmp_path, [4, 4, 4, 4, 4], seed=5)
    ds = NgramDataset(path, 5, doc_info=True, batch_size=2)
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["position_ids"].shape == (2, 5)
