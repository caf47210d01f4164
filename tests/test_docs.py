"""Every code block of README.md and docs/RECIPES.md as a new user pastes it.

Python blocks run as written, in a directory holding tiny files under the names the blocks use
(train.ngds, stdlib.ngds, tokens.npy, ...) and with the few names a training script has
(`model`, `opt`, `epochs`; `batch`, `q`, `k`, `v` for the attention snippet). A block preceded
by `<!-- not run: REASON -->` (several processes, a GPU, the network) is skipped; that set is
small and listed. Every `ngramds` / `ngramds-train` line of a bash block parses; the cheap ones
run on the tiny files. The install advice comes before any install line, and nothing installs
ngramds from a package index (it is not on one).
"""
from __future__ import annotations

import glob
import gzip
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import ngramds
from tests.helpers import train_small_tokenizer, write_jsonl, write_megatron

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "docs" / "RECIPES.md"]
VOCAB = 1024  # every tiny file's ids are below this; the stand-in models' vocabulary
SKIPPED_AT_MOST = 4  # blocks marked `not run`: a few, each with its reason
# bash lines that only parse: long runs (minutes of training) and paths outside the tests' directory
NOT_RUN = ("ngramds-train compare", "ngramds-train run", "--tmp-dir /scratch", "--default-corpus")


@dataclass
class Block:
    doc: str
    heading: str
    lang: str
    code: str
    skip: str | None  # the reason of a `<!-- not run: ... -->` marker

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.heading}"


def doc_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of ``path`` (also those indented in a list item)."""
    out, heading, marker = [], "", None
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^(\s*)```(\w*)\s*$", line)
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif m:
            indent, lang = len(m.group(1)), m.group(2)
            body = []
            i += 1
            while not lines[i].strip().startswith("```"):
                body.append(lines[i][indent:])
                i += 1
            out.append(Block(path.name, heading, lang, "\n".join(body) + "\n", marker))
            marker = None
        elif line.strip():
            n = re.match(r"<!--\s*not run:\s*(.+?)\s*-->", line.strip())
            marker = n.group(1) if n else None
        i += 1
    return out


ALL = [b for d in DOCS for b in doc_blocks(d)]
PYTHON = [b for b in ALL if b.lang == "python"]
BASH = [b for b in ALL if b.lang == "bash"]


def _ids(blocks):
    seen: dict[str, int] = {}
    out = []
    for b in blocks:
        seen[b.id] = seen.get(b.id, 0) + 1
        out.append(f"{b.id}#{seen[b.id]}")
    return out


# ---- the files the blocks name -------------------------------------------------------------

TEXTS = [f"def f{i}(x):\n    for i in range(x):\n        print(i, {i})\n" for i in range(40)]


def _tokens(n: int, seed: int, vocab: int = 64) -> np.ndarray:
    return (np.random.default_rng(seed).zipf(1.3, n) % vocab).astype(np.uint16)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A directory with a tiny file or input under every name the documents use."""
    d = tmp_path_factory.mktemp("docs")
    train_small_tokenizer(d / "tok.json", TEXTS)  # "<eos>" is id 0
    for name in ("tokenizer.json",):
        (d / name).write_bytes((d / "tok.json").read_bytes())
    ngramds.build(_tokens(1024 * 17 + 1, 0), d / "train.ngds", progress=False)
    docs = [_tokens(n, i) for i, n in enumerate([300, 700, 90, 1200, 40, 500] * 3)]
    ngramds.build(docs, d / "finetune.ngds", progress=False)
    # stdlib.ngds: ids up to VOCAB (the README queries ids 199 607) and a tokenizer decoding them
    from tokenizers import Tokenizer, models, pre_tokenizers
    words = {f"w{i}": i for i in range(VOCAB)}
    tok = Tokenizer(models.WordLevel(words, unk_token="w0"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(d / "stdlib.tokenizer.json"))
    stdlib = _tokens(40000, 1, VOCAB)  # show --sample 1000 --seq-len 32
    stdlib[::50], stdlib[1::50] = 199, 607
    ngramds.build(stdlib, d / "stdlib.ngds", progress=False)
    # the input table's files
    (d / "train.bin").write_bytes(np.where(_tokens(5000, 2) == 7, 50256, _tokens(5000, 2))
                                  .astype(np.uint16).tobytes())
    np.save(d / "tokens.npy", _tokens(3000, 3).astype(np.uint32))
    (d / "lengths.txt").write_text("1000\n1500\n500\n")
    np.save(d / "big.npy", _tokens(3000, 4))
    write_megatron(d / "my_megatron_text_document", [_tokens(200, 5), _tokens(300, 6)])
    write_jsonl(d / "a.jsonl", TEXTS)
    write_jsonl(d / "corpus.jsonl", TEXTS)
    (d / "a.txt").write_text("".join(t.replace("\n", " ") + "\n" for t in TEXTS))
    (d / "sft.jsonl").write_text("".join(
        json.dumps({"prompt": f"def f{i}(x):", "response": "    return x"}) + "\n"
        for i in range(20)))
    import zstandard
    (d / "a.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(
        (d / "a.jsonl").read_bytes()))
    (d / "b.txt.gz").write_bytes(gzip.compress((d / "a.txt").read_bytes()))
    import pyarrow as pa
    import pyarrow.parquet as pq
    ids = [t.tolist() for t in docs[:4]]
    pq.write_table(pa.table({"input_ids": ids}), d / "shard.parquet")
    pq.write_table(pa.table({"text": TEXTS}), d / "web.parquet")
    with pa.ipc.new_file(d / "data.arrow", pa.schema([("input_ids", pa.list_(pa.int64()))])) as w:
        w.write_table(pa.table({"input_ids": ids}))
    for sub, names in (("corpus_dir", ["a.txt", "b/c.txt"]), ("src", ["m.c", "inc/m.h", "x.py"])):
        for k, name in enumerate(names):
            (d / sub / name).parent.mkdir(parents=True, exist_ok=True)
            (d / sub / name).write_text(TEXTS[k] * 3)
    import datasets
    datasets.Dataset.from_dict({"input_ids": ids}).save_to_disk(str(d / "my_tokenized_dataset"))
    return d


# ---- the names a training script has ---------------------------------------------------------

HF_HEADINGS = ("HuggingFace Trainer", "Fine-tuning on documents", "Packed documents in HF models",
               "accelerate")


def _scope(block: Block, workdir: Path) -> dict:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    if block.heading == "nanoGPT":
        model = NanoGPTLike()
    elif any(block.heading.startswith(h) for h in HF_HEADINGS):
        pytest.importorskip("transformers")
        from transformers import GPT2Config, GPT2LMHeadModel
        model = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=1024, n_embd=16,
                                           n_layer=1, n_head=2))
    else:
        model = torch.nn.Embedding(VOCAB, VOCAB)
    scope = {"__name__": "__main__", "model": model, "epochs": 2,
             "opt": torch.optim.SGD(model.parameters(), lr=0.1)}
    if "q, k, v" in block.code or "(q, k, v" in block.code:
        from ngramds.torch import NgramDataset, NgramLoader
        batch = next(iter(NgramLoader(NgramDataset(workdir / "finetune.ngds", 64,
                                                   doc_info=True), batch_size=2)))
        q, k, v = torch.randn(3, 2, 2, 64, 8)
        scope.update(batch=batch, q=q, k=k, v=v)
    return scope


class NanoGPTLike:
    """nanoGPT's forward contract (model.py): logits of every position and the loss with
    targets, the last position's logits only without."""

    def __new__(cls):
        import torch

        class Model(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lm = torch.nn.Embedding(VOCAB, VOCAB)

            def forward(self, idx, targets=None):
                logits = self.lm(idx)
                if targets is None:
                    return logits[:, [-1], :], None
                return logits, torch.nn.functional.cross_entropy(
                    logits.view(-1, VOCAB), targets.view(-1), ignore_index=-100)
        return Model()


# ---- the tests -------------------------------------------------------------------------------

def test_only_a_few_blocks_are_not_run_each_with_its_reason():
    skipped = [b for b in ALL if b.skip]
    assert len(skipped) <= SKIPPED_AT_MOST, [b.id for b in skipped]
    assert all(b.lang == "python" and len(b.skip) > 8 for b in skipped)
    assert any(b.heading == "DDP with torchrun" for b in skipped)  # runs under torchrun elsewhere


def test_the_documents_have_the_blocks_they_promise():
    readme = [b.heading for b in ALL if b.doc == "README.md"]
    assert "Train with it" in readme and "Build a file" in readme and "Inspect" in readme
    recipes = {b.heading for b in ALL if b.doc == "RECIPES.md"}
    for heading in ("DDP with torchrun", "HuggingFace Trainer", "Lightning", "nanoGPT",
                    "Fine-tuning on documents", "Prompt/response pairs"):
        assert heading in recipes, heading
    assert len(README_LINES()) <= 200


def README_LINES():
    return DOCS[0].read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("block", PYTHON, ids=_ids(PYTHON))
def test_python_block_runs_as_pasted(block, workdir, monkeypatch):
    if block.skip:
        pytest.skip(block.skip)
    monkeypatch.chdir(workdir)
    exec(compile(block.code, block.id, "exec"), _scope(block, workdir))


def _commands(block: Block):
    """Each ngramds / ngramds-train command of a bash block: (raw line, argv)."""
    text = block.code.replace("\\\n", " ")
    for raw in text.splitlines():
        for part in re.split(r"&&|;", raw.split(" #")[0]):
            words = shlex.split(part, comments=True)
            if words and words[0] in ("ngramds", "ngramds-train"):
                yield part.strip(), words


COMMANDS = [(b, raw, argv) for b in BASH for raw, argv in _commands(b)]


def _parser(program: str):
    if program == "ngramds":
        from ngramds.cli import _parser
    else:
        from ngramds.train.cli import _parser
    return _parser()


@pytest.mark.parametrize("block,raw,argv", COMMANDS,
                         ids=[f"{b.doc}:{raw[:60]}" for b, raw, _ in COMMANDS])
def test_shell_command_parses_and_the_cheap_ones_run(block, raw, argv, workdir, monkeypatch,
                                                     capsys):
    monkeypatch.chdir(workdir)
    try:
        _parser(argv[0]).parse_args(argv[1:])  # a misspelt option exits here with 2
    except SystemExit as exc:  # --version, --help
        assert exc.code == 0, raw
    if any(s in raw for s in NOT_RUN):
        return
    if argv[0] == "ngramds-train":  # the plot of logs (the runs' logs are the repository's)
        pytest.importorskip("matplotlib")
        from ngramds.train.cli import main
        logs = sorted(glob.glob(str(ROOT / "docs" / "runs" / "*.jsonl")))[:2]
        argv = [a for a in argv if "*" not in a[:-1] or not a.endswith(".jsonl")]
        argv[2:2] = logs
    else:
        from ngramds.cli import main
    assert main(argv[1:]) == 0, capsys.readouterr().err


def test_install_advice_comes_first_and_nothing_installs_from_an_index():
    text = DOCS[0].read_text(encoding="utf-8")
    first_install = text.index("pip install")
    assert text.index("PyTorch for your hardware first") < first_install
    assert "download.pytorch.org/whl/cpu" in text[:first_install + 200]
    assert "pip install torch==2.13.0 -e \".[torch,text,dev]\"" in text  # the first screen
    for doc in DOCS:
        for line in doc.read_text(encoding="utf-8").splitlines():
            if "pip install" in line:  # extras come from the checkout or a built wheel
                assert not re.search(r"pip install ['\"]?ngramds\[", line), line


# ---- the API reference -----------------------------------------------------------------------

def _api_docs():
    import importlib.util
    spec = importlib.util.spec_from_file_location("api_docs", ROOT / "tools" / "api_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_api_reference_builds_from_the_docstrings(tmp_path):
    pytest.importorskip("pdoc")
    index = _api_docs().build(tmp_path / "api")
    assert index.is_file()
    page = (tmp_path / "api" / "ngramds" / "torch.html").read_text(encoding="utf-8")
    assert "ngram_loss" in page and "num_items_in_batch" in page and "Raises" in page


def test_public_docstrings_say_args_returns_raises():
    assert _api_docs().style_problems() == []


def test_the_readmes_links_reach_files_and_headings():
    def slug(heading):
        return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
    for target in re.findall(r"\]\(([^)#]+)(?:#([^)]+))?\)", DOCS[0].read_text(encoding="utf-8")):
        path, anchor = target
        if path.startswith("http"):
            continue
        assert (ROOT / path).exists(), path
        if anchor:
            headings = re.findall(r"^#+ (.+)$", (ROOT / path).read_text(encoding="utf-8"), re.M)
            assert anchor in {slug(h) for h in headings}, f"{path}#{anchor}"
