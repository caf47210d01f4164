"""Run by test_accelerate.py under ``accelerate launch --multi_gpu --num_processes 2`` on a CPU
(2 processes, gloo). python accelerate_script.py DIR

DIR holds train.ngds. Runs docs/RECIPES.md's accelerate recipe as pasted (the model records
the windows it is given), then the same loop stopped mid-epoch and resumed in a new loader from
the main process's saved ``loader.state_dict()``, then tries accelerate's ``prepare`` of an
NgramLoader and of a DataLoader over an NgramDataset (accelerate's default dispatching and
``dispatch_batches=False``) and a plain transformers Trainer. Writes DIR/rank<r>.json.
"""
import json
import os
import re
import sys
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.data_loader import prepare_data_loader
from torch.utils.data import DataLoader
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

import ngramds
from ngramds.torch import NgramDataset, NgramLoader, ngram_loss

RECIPES = Path(__file__).resolve().parents[2] / "docs" / "RECIPES.md"
SEQ, BS = 64, 4  # the resumed loop's


class Recorder(torch.nn.Module):
    """The model, recording the input rows it is called with."""

    def __init__(self, model):
        super().__init__()
        self.model, self.rows = model, []

    def forward(self, *args, **kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.rows += ids.tolist()
        return self.model(*args, **kwargs)


def outcome(make):
    """What iterating the loader ``make()`` gives this rank: its samples, or the error."""
    try:
        return {"samples": sum(len(b["index"]) for b in make())}
    except ngramds.InputError as exc:
        return {"refused": str(exc)}
    except Exception as exc:  # noqa: BLE001 - recorded for the test to show
        return {"crash": f"{type(exc).__name__}: {exc}"}


def main(folder):
    os.chdir(folder)
    acc = Accelerator(cpu=True)
    torch.manual_seed(0)
    vocab = ngramds.open("train.ngds").vocab_size
    model = Recorder(GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_positions=1024, n_embd=16,
                                                n_layer=1, n_head=2)))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    text = RECIPES.read_text()
    code = re.search(r"```python\n(.*?)```", text[text.index("## accelerate"):], re.S).group(1)
    exec(code, {"model": model, "opt": opt, "epochs": 2, "__name__": "__main__"})
    result = {"recipe_rows": model.rows}

    # the same loop, stopped in the second epoch and resumed from the saved loader state
    model, opt = acc.prepare(model.model, opt)
    seen = []

    def train(loader, first_epoch, stop=None):
        for epoch in range(first_epoch, 3):
            for step, batch in enumerate(loader):
                batch = {k: v.to(acc.device) for k, v in batch.items()}
                loss = ngram_loss(model(input_ids=batch["input_ids"]).logits, batch)
                acc.backward(loss)
                opt.step()
                opt.zero_grad()
                seen.append([epoch, batch["index"].tolist()])
                if (epoch, step) == stop:
                    return
    loader = NgramLoader(NgramDataset("train.ngds", SEQ, seed=3), batch_size=BS)
    train(loader, 0, stop=(1, 2))
    if acc.is_main_process:
        with open("loader_state.json", "w") as f:
            json.dump(loader.state_dict(), f)
    acc.wait_for_everyone()
    with open("loader_state.json") as f:
        state = json.load(f)
    loader = NgramLoader(NgramDataset("train.ngds", SEQ, seed=3), batch_size=BS, num_workers=1)
    loader.load_state_dict(state)
    train(loader, state["epoch"])
    result["seen"] = seen

    def ngram_loader():
        return NgramLoader(NgramDataset("train.ngds", SEQ, seed=3), batch_size=BS)

    def data_loader():
        return DataLoader(NgramDataset("train.ngds", SEQ, seed=3, batch_size=BS), batch_size=BS)
    result["probes"] = {
        "prepare(NgramLoader)": outcome(lambda: acc.prepare(ngram_loader())),
        "prepare(DataLoader)": outcome(lambda: acc.prepare(data_loader())),
        "NgramLoader, dispatch_batches=False": outcome(
            lambda: prepare_data_loader(ngram_loader(), dispatch_batches=False)),
        "DataLoader, dispatch_batches=False": outcome(
            lambda: prepare_data_loader(data_loader(), dispatch_batches=False)),
    }
    args = TrainingArguments(output_dir="trainer", per_device_train_batch_size=BS, max_steps=4,
                             report_to=[], use_cpu=True, disable_tqdm=True,
                             save_strategy="no", ddp_backend="gloo")
    trainer = Trainer(model=model.module if hasattr(model, "module") else model, args=args,
                      train_dataset=NgramDataset("train.ngds", SEQ, seed=3))
    try:
        trainer.train()
        result["plain_trainer"] = {"steps": trainer.state.global_step}
    except ngramds.InputError as exc:
        result["plain_trainer"] = {"refused": str(exc)}
    with open(f"rank{acc.process_index}.json", "w") as f:
        json.dump(result, f)
    acc.wait_for_everyone()


if __name__ == "__main__":
    main(sys.argv[1])
