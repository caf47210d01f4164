"""What the documented training code does when pasted (tests/test_docs.py runs every block;
these check the results), and the nanoGPT recipe against nanoGPT's model API
(forward(idx, targets=None) -> (logits, loss), last-position logits without targets)."""
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import ngramds
from ngramds.torch import NgramDataset, NgramLoader, ngram_loss

ROOT = Path(__file__).resolve().parents[2]
README, RECIPES = ROOT / "README.md", ROOT / "docs" / "RECIPES.md"
VOCAB = 50


@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    tokens = (np.random.default_rng(0).zipf(1.3, 1025 * 40) % VOCAB).astype(np.uint16)
    path = tmp_path_factory.mktemp("readme") / "train.ngds"
    ngramds.build(tokens, path, progress=False)
    return path


def doc_block(heading: str, doc: Path = README) -> str:
    """The first python code block after ``heading`` in ``doc``."""
    text = doc.read_text()
    section = text[text.index(heading):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_training_loop_runs_as_pasted(train_file, monkeypatch):
    monkeypatch.chdir(train_file.parent)
    model = torch.nn.Embedding(VOCAB, VOCAB)
    scope = {"model": model, "opt": torch.optim.SGD(model.parameters(), lr=0.1), "epochs": 2}
    exec(doc_block("## Train with it"), scope)  # picks the CPU where there is no GPU
    assert scope["loader"].state_dict()["epoch"] == 2  # two complete passes
    # orders 2-4, AllNTs: 3 blocks of each order's entries, up to 64
    assert scope["batch"]["target_ids"].shape[-1] == 3 * scope["ds"].max_k <= 3 * 64


def test_the_alpha_schedule_recipe_holds_for_half_an_epoch(train_file, monkeypatch):
    monkeypatch.chdir(train_file.parent)
    model = torch.nn.Embedding(VOCAB, VOCAB)
    scope = {"model": model, "opt": torch.optim.SGD(model.parameters(), lr=0.1)}
    exec(doc_block("## The loss-weight schedule", RECIPES), scope)
    assert scope["hold"] == pytest.approx(0.5 / 3) and torch.isfinite(scope["loss"])
    assert scope["step"] == scope["total_steps"] == 3 * len(scope["loader"])  # every epoch


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


def test_the_ddp_recipe_runs_under_torchrun(tmp_path):
    """docs/RECIPES.md's DDP block, saved as train_ddp.py and started as it says (2 CPU
    processes, gloo): each rank trains its share of two epochs and rank 0 saves the state."""
    import os
    import subprocess
    import sys
    tokens = (np.random.default_rng(1).zipf(1.3, 1024 * 33 + 1) % VOCAB).astype(np.uint16)
    ngramds.build(tokens, tmp_path / "train.ngds", progress=False)  # one batch of 16 per rank
    code = doc_block("## DDP with torchrun", RECIPES)
    assert code.startswith("# train_ddp.py -- torchrun --nproc_per_node=2 train_ddp.py")
    (tmp_path / "train_ddp.py").write_text(code)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc_per_node=2", "train_ddp.py"], cwd=tmp_path, env=dict(
                            env, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES=""),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    state = torch.load(tmp_path / "ckpt.pt")["loader"]
    assert state["epoch"] == 2 and state["world_size"] == 2
