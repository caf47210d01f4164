"""The README's training code as pasted, and the nanoGPT recipe against nanoGPT's model API
(forward(idx, targets=None) -> (logits, loss), last-position logits without targets)."""
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import ngramds
from ngramds.torch import NgramDataset, NgramLoader, ngram_loss

README = Path(__file__).resolve().parents[2] / "README.md"
VOCAB = 50


@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    tokens = (np.random.default_rng(0).zipf(1.3, 1025 * 40) % VOCAB).astype(np.uint16)
    path = tmp_path_factory.mktemp("readme") / "train.ngds"
    ngramds.build(tokens, path, progress=False)
    return path


def readme_block(heading: str) -> str:
    """The first python code block after ``heading`` in the README."""
    text = README.read_text()
    section = text[text.index(heading):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_training_loop_runs_as_pasted(train_file, monkeypatch):
    monkeypatch.chdir(train_file.parent)
    model = torch.nn.Embedding(VOCAB, VOCAB)
    scope = {"model": model, "opt": torch.optim.SGD(model.parameters(), lr=0.1), "epochs": 2}
    code = readme_block("## Train with it")
    if not torch.cuda.is_available():
        code = code.replace('device = "cuda"', 'device = "cpu"')
    exec(code, scope)
    assert scope["loader"].state_dict()["epoch"] == 2  # two complete passes
    assert scope["batch"]["target_ids"].shape[-1] == 27  # orders 2-4, r = 8: 3 blocks of 9


def test_the_readme_alpha_schedule_runs_as_pasted(train_file):
    from ngramds.torch import NgramDataset, NgramLoader
    loader = NgramLoader(NgramDataset(train_file, 16, seed=0), batch_size=4)
    batch = next(iter(loader))
    scope = {"loader": loader, "batch": batch, "step": 0, "total_steps": 3 * len(loader),
             "logits": torch.randn(*batch["labels"].shape, VOCAB)}
    exec(readme_block("In your own loop:"), scope)
    assert scope["hold"] == pytest.approx(0.5 / 3) and torch.isfinite(scope["loss"])


class NanoGPTLike(torch.nn.Module):
    """nanoGPT's forward contract (model.py): logits of every position and the loss with
    targets, the last position's logits only without."""

    def __init__(self):
        super().__init__()
        self.lm = torch.nn.Embedding(VOCAB, VOCAB)

    def forward(self, idx, targets=None):
        logits = self.lm(idx)
        if targets is None:
            return logits[:, [-1], :], None
        loss = torch.nn.functional.cross_entropy(logits.view(-1, VOCAB), targets.view(-1))
        return logits, loss


def test_the_nanogpt_recipe(train_file):
    model = NanoGPTLike()
    it = iter(NgramLoader(NgramDataset(train_file, 64, batched=True), batch_size=4,
                          num_workers=2))
    batch = next(it)
    logits, _ = model(batch["input_ids"], batch["labels"])
    ngram_loss(logits, batch).backward()
    with pytest.raises(ValueError, match="nanoGPT"):
        ngram_loss(model(batch["input_ids"])[0], batch)
