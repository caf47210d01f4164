"""HF Trainer through ngramds.hf.NgramTrainer: every sample trained once per epoch, alone and
under 2-rank DDP; gradient accumulation gives the loss and weights of one larger batch; a
checkpoint resumes exactly (one without the loader state is refused); packed documents stay
apart; a plain Trainer on an NgramDataset is refused."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ngramds

pytest.importorskip("transformers")
SCRIPT = Path(__file__).with_name("hf_script.py")
SEQ = 8


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("hf")
    tokens = (np.random.default_rng(3).zipf(1.3, SEQ * 64 + 1) % 60).astype(np.uint16)
    ngramds.build(tokens, out / "t.ngds", order=3, progress=False)
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(k, None)

    def go(name, batch, accumulation, workers, nproc=1, resume=None):
        launch = [sys.executable] if nproc == 1 else [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={nproc}"]
        r = subprocess.run([*launch, str(SCRIPT), str(out / "t.ngds"), str(out), name,
                            str(batch), str(accumulation), str(workers),
                            *([resume if resume == "last" else str(out / resume)]
                              if resume else [])],
                           capture_output=True, text=True, env=env, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        return [json.loads((out / f"{name}.rank{i}.json").read_text()) for i in range(nproc)]
    go.out = out
    return go


def per_epoch(ranks):
    """{epoch: sample indices trained in it, all ranks}."""
    out = {}
    for r in ranks:
        for epoch, idx in r["seen"]:
            out.setdefault(int(epoch), []).extend(idx)
    return out


def test_trainer_alone_and_under_ddp_with_accumulation(run):
    plain = run("plain", 8, 1, 0)
    accumulated = run("accumulated", 2, 4, 2)
    ddp = run("ddp", 2, 2, 0, nproc=2)
    for ranks in (plain, accumulated, ddp):
        epochs = per_epoch(ranks)
        assert sorted(epochs) == [0, 1]
        for idx in epochs.values():  # every sample once per epoch, across ranks
            assert sorted(idx) == list(range(64))
        assert epochs[0] != epochs[1]
    assert plain[0]["steps"] == accumulated[0]["steps"] == ddp[0]["steps"] == 16
    # same samples per optimizer step: the same losses and weights
    for other in (accumulated, ddp):
        np.testing.assert_allclose(other[0]["losses"], plain[0]["losses"], rtol=2e-3)
        np.testing.assert_allclose(other[0]["params"], plain[0]["params"], rtol=1e-4)


def test_resume_from_a_checkpoint_continues_exactly(run):
    """Checkpoints hold the loader state: a resumed run trains exactly the remaining samples
    in the same order, in the first epoch and the second (no replay of trained batches), and
    logs the epochs the uninterrupted run logs."""
    full = run("full", 8, 1, 2)[0]
    out = run.out
    for step in (3, 9, 12):  # 8 steps per epoch
        if step == 9:  # resume_from_checkpoint=True: the last checkpoint of the output dir
            (out / "last9").mkdir()
            shutil.copytree(out / "full" / "checkpoint-9", out / "last9" / "checkpoint-9")
            rest = run("last9", 8, 1, 2, resume="last")[0]
        else:
            rest = run(f"resumed{step}", 8, 1, 2, resume=f"full/checkpoint-{step}")[0]
        assert [idx for _, idx in rest["seen"]] == [idx for _, idx in full["seen"][step:]], step
        assert rest["epochs"] == full["epochs"], step  # the history is resumed too


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
@pytest.mark.parametrize("train", [False, True])
def test_trainer_keeps_packed_documents_apart(tmp_path, kind, train):
    """NgramTrainer's forward of a tiny random HF model on packed documents gives each
    document's logits as if it ran alone (the model must not make a cache, which hides the
    boundaries, whatever its config or the arguments' ``use_cache`` say), in eval and train
    mode (dropout 0)."""
    import torch
    from transformers import TrainingArguments

    from ngramds.hf import NgramTrainer
    from ngramds.torch import NgramDataset, NgramLoader
    from test_packing import per_document_logits, tiny_hf_model, write_finetune_file

    write_finetune_file(tmp_path)
    ds = NgramDataset(tmp_path / "finetune.ngds", 512, sampling="documents", doc_info=True,
                      layout="hf", seed=0)
    model = tiny_hf_model(kind, "sdpa", 30, 512).train(train)
    args = TrainingArguments(output_dir=str(tmp_path / "out"), report_to=[], use_cpu=True,
                             per_device_train_batch_size=4, use_cache=True)
    trainer = NgramTrainer(model=model, args=args, train_dataset=ds)
    batch = next(iter(NgramLoader(ds, batch_size=4)))
    assert ((batch["position_ids"] == 0).sum(-1) > 1).any()
    with torch.no_grad():
        _, out = trainer.compute_loss(model, batch, return_outputs=True)
        alone = per_document_logits(model, batch["input_ids"], batch["position_ids"])
    assert float((out.logits - alone).abs().max()) <= 1e-4


def test_a_plain_trainer_on_an_ngram_dataset_is_refused(tmp_path):
    """A plain Trainer's accelerate loader would shard the data a second time and its loss
    ignores the soft targets: refused before the first step, naming NgramTrainer (under 2
    processes: test_accelerate.py)."""
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

    from ngramds.torch import NgramDataset

    tokens = (np.random.default_rng(3).zipf(1.3, SEQ * 16 + 1) % 60).astype(np.uint16)
    ngramds.build(tokens, tmp_path / "t.ngds", progress=False)
    ds = NgramDataset(tmp_path / "t.ngds", SEQ)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=ds.file.vocab_size, n_positions=SEQ,
                                       n_embd=8, n_layer=1, n_head=1))
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=2, report_to=[],
                             use_cpu=True, per_device_train_batch_size=2, save_strategy="no")
    trainer = Trainer(model=model, args=args, train_dataset=ds)
    with pytest.raises(ngramds.InputError, match="NgramTrainer") as e:
        trainer.train()
    assert "\n" not in str(e.value) and trainer.state.global_step == 0


def test_resuming_from_a_checkpoint_without_the_loader_state_is_refused(tmp_path):
    """A checkpoint without ngramds_loader.json (not written by NgramTrainer, or another
    node's disk) cannot continue the epoch exactly: refused in one line naming it, instead of
    training the resumed epoch in another order."""
    from transformers import GPT2Config, GPT2LMHeadModel, TrainingArguments

    from ngramds.hf import STATE_FILE, NgramTrainer
    from ngramds.torch import NgramDataset

    tokens = (np.random.default_rng(3).zipf(1.3, SEQ * 16 + 1) % 60).astype(np.uint16)
    ngramds.build(tokens, tmp_path / "t.ngds", progress=False)

    def trainer():
        ds = NgramDataset(tmp_path / "t.ngds", SEQ, seed=1)
        model = GPT2LMHeadModel(GPT2Config(vocab_size=ds.file.vocab_size, n_positions=SEQ,
                                           n_embd=8, n_layer=1, n_head=1))
        args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=4, report_to=[],
                                 use_cpu=True, per_device_train_batch_size=2, save_steps=2,
                                 disable_tqdm=True)
        return NgramTrainer(model=model, args=args, train_dataset=ds)
    trainer().train()
    checkpoint = tmp_path / "out" / "checkpoint-2"
    (checkpoint / STATE_FILE).unlink()
    with pytest.raises(ngramds.InputError, match=STATE_FILE) as e:
        trainer().train(resume_from_checkpoint=str(checkpoint))
    assert str(checkpoint) in str(e.value) and "\n" not in str(e.value)
