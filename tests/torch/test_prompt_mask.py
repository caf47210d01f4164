"""Items of a file with prompt lengths: prompt tokens are never labels (-100, soft targets of
probability 0), in windows and document-aligned samples and both label layouts."""
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import ngramds
from ngramds.torch import NgramDataset, NgramLoader, ngram_loss

IGNORE = -100


def build(tmp, lengths, prompts, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, 6, sum(lengths))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    path = Path(tmp) / "m.ngds"
    ngramds.build(ngramds.Corpus(tokens, offsets, prompt_lengths=np.array(prompts)), path,
                  order=2, progress=False)
    return path


def is_prompt(offsets, prompts, p: int) -> bool:
    d = next(i for i in range(len(offsets) - 1) if offsets[i] <= p < offsets[i + 1])
    return p - offsets[d] < prompts[d]


docs = st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), min_size=1, max_size=8) \
    .map(lambda x: [(n, min(p, n)) for n, p in x]).filter(lambda x: sum(n for n, _ in x) >= 8)


@settings(max_examples=15)
@given(docs=docs, seq_len=st.integers(2, 5), sampling=st.sampled_from(["windows", "documents"]),
       layout=st.sampled_from(["shifted", "hf"]))
def test_prompt_tokens_are_never_labels(docs, seq_len, sampling, layout):
    lengths, prompts = [n for n, _ in docs], [p for _, p in docs]
    with tempfile.TemporaryDirectory() as tmp:
        path = build(tmp, lengths, prompts)
        offsets = ngramds.open(path).doc_offsets.tolist()
        kw = dict(sampling=sampling, seed=2, targets="coconts", top_r=2)
        try:
            masked = NgramDataset(path, seq_len, layout=layout, **kw)
        except ngramds.InputError:  # no document of 2 tokens
            return
        plain = NgramDataset(path, seq_len, layout=layout, mask_prompt=False, **kw)
        for k in range(masked.num_samples):
            a, b = masked[k], plain[k]
            # the token each label row predicts, in the stream (None: no label)
            if sampling == "windows":
                where = [k * seq_len + 1 + i for i in range(seq_len)]
            else:  # from the packing rules (documents_rows)
                where = None
            assert torch.equal(a["input_ids"], b["input_ids"])
            if where is not None:
                hidden = [is_prompt(offsets, prompts, p) for p in where]
                if layout == "hf":  # row t holds the label of token k*L + t
                    hidden = [is_prompt(offsets, prompts, k * seq_len)] + hidden[:-1]
            else:
                hidden = [False] * seq_len
                bounds = documents_rows(path, seq_len, k)
                for row, p in bounds.items():
                    hidden[row] = is_prompt(offsets, prompts, p)
                if layout == "hf":
                    hidden = [False] + hidden[:-1]
            for t in range(seq_len):
                if hidden[t]:
                    assert a["labels"][t] == IGNORE
                    assert not a["target_probs"][t].any()
                else:
                    assert a["labels"][t] == b["labels"][t]
                    assert torch.equal(a["target_probs"][t], b["target_probs"][t])
                    assert torch.equal(a["target_ids"][t], b["target_ids"][t])


def documents_rows(path, seq_len, k) -> dict:
    """{row: stream position of the row's label} of packed sample k (shifted layout),
    from the packing rules of spec/TARGETS.md."""
    offsets = ngramds.open(path).doc_offsets.tolist()
    pieces = []
    for d in range(len(offsets) - 1):
        a, b = offsets[d], offsets[d + 1]
        j = 0
        while b - a >= 2 and a + j * (seq_len - 1) < b - 1:
            s = a + j * (seq_len - 1)
            pieces.append((s, min(seq_len, b - s)))
            j += 1
    samples, cur, used = [], [], 0
    for p in pieces:
        if used + p[1] > seq_len:
            samples.append(cur)
            cur, used = [], 0
        cur.append(p)
        used += p[1]
    samples.append(cur)
    rows, o = {}, 0
    for s, n in samples[k]:
        for i in range(n - 1):
            rows[o + i] = s + i + 1
        o += n
    return rows


def test_the_loss_ignores_prompts_and_options_are_checked(tmp_path):
    path = build(tmp_path, [6, 5, 7, 4], [3, 0, 6, 1])
    ds = NgramDataset(path, 5, shuffle=False)
    batch = next(iter(NgramLoader(ds, batch_size=3)))
    logits = torch.randn(3, 5, 6, requires_grad=True)
    ngram_loss(logits, batch).backward()
    hidden = batch["labels"] == IGNORE
    assert hidden.any() and not logits.grad[hidden].any()
    plain = ngramds.build(np.arange(12) % 4, tmp_path / "p.ngds", order=2, progress=False)
    with pytest.raises(ngramds.InputError, match="prompt"):
        NgramDataset(plain, 4, mask_prompt=True)
    assert NgramDataset(plain, 4)[0]["labels"].min() >= 0  # nothing to mask: nothing masked
    with pytest.raises(ngramds.InputError, match="prompt"):
        NgramDataset(path, 4, targets_on="device")
    NgramDataset(path, 4, targets_on="device", mask_prompt=False)


def test_the_pairs_recipe_runs_as_pasted(tmp_path, monkeypatch):
    import json
    import re
    from helpers import train_small_tokenizer
    recipes = (Path(__file__).resolve().parents[2] / "docs" / "RECIPES.md").read_text()
    section = recipes[recipes.index("## Prompt/response pairs"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    texts = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog"] * 20
    tok = train_small_tokenizer(tmp_path / "tokenizer.json", texts)
    assert tok.token_to_id("<eos>") == 0
    records = [{"prompt": t[:7], "response": t[7:]} for t in texts]
    (tmp_path / "sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    scope = {"ngramds": ngramds, "NgramDataset": NgramDataset}
    exec(code, scope)
    ds = scope["ds"]
    item = ds[0]
    f = ngramds.open("sft.ngds")
    assert ds.mask_prompt and f.prompt_lengths is not None
    first = int(f.prompt_lengths[0])  # the first record's prompt: labels of rows 1..first-1
    assert (item["labels"][1:first] == IGNORE).all() and item["labels"][first] != IGNORE
