"""Train a tiny GPT-2 with ngramds.hf.NgramTrainer (alone or under torchrun); used by
test_hf.py. python hf_script.py FILE OUT NAME BATCH ACCUMULATION WORKERS [RESUME]
Writes OUT/NAME.rank<r>.json: the sample indices of every micro-batch with its epoch, the
logged losses with their (step, epoch) and the final parameters' sum of squares. Checkpoints every 3 steps into
OUT/NAME; RESUME names a checkpoint directory to resume from, or is "last" (resume from the
last checkpoint in OUT/NAME: resume_from_checkpoint=True).
"""
import json
import os
import sys

import torch
from transformers import GPT2Config, GPT2LMHeadModel, TrainingArguments

from ngramds.hf import NgramTrainer
from ngramds.torch import NgramDataset

SEQ = 8


class Recording(NgramTrainer):
    seen: list = []

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        self.seen.append([float(self.state.epoch or 0), inputs["index"].tolist()])
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


def main(path, out, name, batch, accumulation, workers, resume=None):
    world = int(os.environ.get("WORLD_SIZE", "1"))
    torch.manual_seed(0)
    ds = NgramDataset(path, SEQ, seed=5)
    config = GPT2Config(vocab_size=ds.file.vocab_size, n_positions=SEQ, n_embd=16, n_layer=1,
                        n_head=2, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = GPT2LMHeadModel(config)
    args = TrainingArguments(
        output_dir=f"{out}/{name}", per_device_train_batch_size=int(batch),
        gradient_accumulation_steps=int(accumulation), num_train_epochs=2, learning_rate=0.5,
        optim="sgd", lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        max_grad_norm=0.0, logging_steps=1, save_strategy="steps", save_steps=3,
        save_only_model=False, report_to=[], use_cpu=True,
        seed=0, dataloader_num_workers=int(workers), disable_tqdm=True,
        ddp_backend="gloo" if world > 1 else None, remove_unused_columns=True)
    trainer = Recording(model=model, args=args, train_dataset=ds)
    trainer.train(resume_from_checkpoint=True if resume == "last" else resume)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    epochs = [[h["step"], h["epoch"]] for h in trainer.state.log_history if "loss" in h]
    params = float(sum((p.detach().double() ** 2).sum() for p in model.parameters()))
    rank = int(os.environ.get("RANK", "0"))
    with open(f"{out}/{name}.rank{rank}.json", "w") as f:
        json.dump({"seen": trainer.seen, "losses": losses, "epochs": epochs, "params": params,
                   "steps": trainer.state.global_step}, f)
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:])
