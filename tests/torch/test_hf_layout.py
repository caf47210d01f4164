"""``layout="hf"``: labels equal input_ids (HF models shift), soft targets aligned with the
labels, ``label_shift`` marks the batch; ngram_loss shifts such a batch itself, checked against
a tiny randomly initialised GPT-2 and a loss computed by hand."""
import numpy as np
import pytest
import torch

import ngramds
from ngramds.torch import NgramDataset, NgramLoader, NgramTargets, ngram_loss

transformers = pytest.importorskip("transformers")

VOCAB, SEQ = 40, 12


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    tokens = (np.random.default_rng(0).zipf(1.3, SEQ * 30 + 1) % VOCAB).astype(np.uint16)
    p = tmp_path_factory.mktemp("hf") / "h.ngds"
    ngramds.build(tokens, p, eos_id=0, progress=False)
    return p


def batches(path, layout, **kw):
    ds = NgramDataset(path, SEQ, layout=layout, seed=2, **kw)
    return next(iter(NgramLoader(ds, batch_size=3)))


def test_hf_items_are_the_shifted_items_moved_by_one(path):
    plain, hf = batches(path, "shifted"), batches(path, "hf")
    assert torch.equal(plain["index"], hf["index"])
    assert torch.equal(hf["labels"], hf["input_ids"]) and torch.equal(hf["input_ids"],
                                                                       plain["input_ids"])
    assert hf["label_shift"].tolist() == [1, 1, 1] and "label_shift" not in plain
    assert torch.equal(hf["target_ids"][:, 1:], plain["target_ids"][:, :-1])
    assert torch.equal(hf["target_probs"][:, 1:], plain["target_probs"][:, :-1])
    assert not hf["target_probs"][:, 0].any()  # nothing predicts the first token
    per_sample = next(iter(torch.utils.data.DataLoader(
        NgramDataset(path, SEQ, layout="hf", seed=2, batch_size=3), batch_size=3)))
    for key in hf:
        assert torch.equal(per_sample[key], hf[key]), key


def test_device_targets_follow_the_layout(path):
    ds = NgramDataset(path, SEQ, layout="hf", seed=2, targets_on="device")
    batch = NgramTargets(ds)(next(iter(NgramLoader(ds, batch_size=3))))
    hf = batches(path, "hf")
    for key in ("input_ids", "labels", "target_ids", "target_probs", "label_shift"):
        assert torch.equal(batch[key], hf[key]), key


def tiny_gpt2():
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=SEQ, n_embd=16, n_layer=1,
                                     n_head=2, bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(config).eval()


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_gpt2_with_our_loss_equals_a_hand_computed_reference(path, alpha):
    model, batch = tiny_gpt2(), batches(path, "hf", targets="coconts", top_r=3)
    out = model(**batch)  # the whole batch goes in; HF shifts the labels for its own loss
    logits = out.logits.detach().double()
    logp = logits.log_softmax(-1)
    B, L = batch["labels"].shape
    terms = []
    for b in range(B):
        for t in range(L - 1):  # logits at t predict the token at t + 1
            y = int(batch["labels"][b, t + 1])
            soft = -sum(float(p) * float(logp[b, t, int(i)]) for i, p in
                        zip(batch["target_ids"][b, t + 1], batch["target_probs"][b, t + 1]))
            terms.append((1 - alpha) * -float(logp[b, t, y]) + alpha * soft)
    ref = sum(terms) / len(terms)
    assert float(ngram_loss(logits, batch, alpha=alpha)) == pytest.approx(ref, rel=1e-9)
    if alpha == 0:
        assert float(out.loss.detach()) == pytest.approx(ref, rel=1e-5)  # HF's own loss agrees
    # the same as the default layout's loss over the positions both predict
    plain = batches(path, "shifted", targets="coconts", top_r=3)
    plain["labels"] = plain["labels"].clone()
    plain["labels"][:, -1] = -100
    assert float(ngram_loss(logits, plain, alpha=alpha)) == pytest.approx(ref, rel=1e-9)


def test_gradients_flow_through_the_shift(path):
    model, batch = tiny_gpt2(), batches(path, "hf")
    ngram_loss(model(**batch).logits, batch).backward()
    assert model.lm_head.weight.grad.abs().sum() > 0


def test_layout_mistakes_are_loud(path):
    hf, plain = batches(path, "hf"), batches(path, "shifted")
    logits = torch.zeros(*hf["labels"].shape, VOCAB)
    with pytest.raises(ValueError, match="shift"):
        ngram_loss(logits[:, :-1], hf)  # shifted by hand: the batch says it is unshifted
    with pytest.raises(ValueError, match="shift"):
        ngram_loss(logits, hf, shift=False)
    with pytest.raises(ValueError, match="shift"):
        ngram_loss(logits, plain, shift=True)  # already shifted: twice would misalign
    assert torch.isfinite(ngram_loss(logits, hf, shift=True))
    assert torch.isfinite(ngram_loss(logits, plain, shift=False))
    with pytest.raises(ngramds.InputError, match="layout"):
        NgramDataset(path, SEQ, layout="unshifted")


def test_trainer_passes_position_ids_and_follows_the_layout(path, tmp_path):
    from ngramds.hf import NgramTrainer
    model = tiny_gpt2()
    ds = NgramDataset(path, SEQ, layout="hf", doc_info=True, seed=2)
    args = transformers.TrainingArguments(output_dir=str(tmp_path), max_steps=1, report_to=[],
                                          per_device_train_batch_size=3, use_cpu=True)
    trainer = NgramTrainer(model=model, args=args, train_dataset=ds)
    batch = next(iter(NgramLoader(ds, batch_size=3)))
    with torch.no_grad():
        loss = trainer.compute_loss(model, batch)
        with_pos = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"])
        without = model(input_ids=batch["input_ids"])
    assert float(loss) == pytest.approx(float(ngram_loss(with_pos.logits, batch)), rel=1e-6)
    assert float(loss) != pytest.approx(float(ngram_loss(without.logits, batch)), rel=1e-6)
