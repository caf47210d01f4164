"""Lightning with the recipe of the README (train_dataloader returns an NgramLoader): a new
order every epoch without set_epoch, and mid-epoch resume from a checkpoint that continues
exactly (Lightning saves and restores the loader's state itself)."""
import numpy as np
import pytest
import torch

import ngramds
from ngramds.torch import NgramDataset, NgramLoader, ngram_loss

L = pytest.importorskip("lightning")
SEQ, BS = 8, 4


class Model(L.LightningModule):
    def __init__(self, path):
        super().__init__()
        self.path, self.seen = path, []
        self.emb = torch.nn.Embedding(60, 60)

    def train_dataloader(self):
        return NgramLoader(NgramDataset(self.path, SEQ, seed=1), batch_size=BS, num_workers=2)

    def training_step(self, batch, batch_idx):
        self.seen.append((self.current_epoch, batch["index"].tolist()))
        return ngram_loss(self.emb(batch["input_ids"]), batch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def trainer(**kw):
    return L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                     enable_model_summary=False, max_epochs=2, **kw)


def test_epochs_differ_and_resume_is_exact(tmp_path):
    tokens = (np.random.default_rng(3).zipf(1.3, SEQ * 40 + 1) % 60).astype(np.uint16)
    path = tmp_path / "t.ngds"
    ngramds.build(tokens, path, order=3, progress=False)
    full = Model(path)
    every3 = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path / "ck", every_n_train_steps=3,
                                                 save_top_k=-1)
    trainer(callbacks=[every3]).fit(full)
    epochs = [[i for e, idx in full.seen if e == k for i in idx] for k in (0, 1)]
    assert sorted(epochs[0]) == sorted(epochs[1]) == list(range(40)) and epochs[0] != epochs[1]
    for step, name in ((3, "epoch=0-step=3.ckpt"), (12, "epoch=1-step=12.ckpt")):
        resumed = Model(path)
        trainer(enable_checkpointing=False).fit(resumed, ckpt_path=tmp_path / "ck" / name)
        assert resumed.seen == full.seen[step:], name
