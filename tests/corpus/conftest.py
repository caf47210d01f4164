"""The text corpora shared by the tests of tokenising, reading text files, input kinds and
directories."""
import random

import pytest

from helpers import WORDS, train_small_tokenizer, write_jsonl


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 40))) + rng.choice(
        ["", "  ", "\tend", " x\n y"]) for _ in range(n)]


def _input_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40))) for _ in range(n)]


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    """(directory, tokenizer, texts): 400 texts in a.jsonl and a tokenizer trained on some
    (tok.json)."""
    d = tmp_path_factory.mktemp("inputs")
    texts = _input_texts(400)
    tok = train_small_tokenizer(d / "tok.json", texts[:200])
    write_jsonl(d / "a.jsonl", texts)
    return d, tok, texts


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """(directory, tokenizer, texts): 1500 texts, a.jsonl and a.txt of them, and a tokenizer
    trained on some (tok.json)."""
    d = tmp_path_factory.mktemp("text")
    texts = _texts(1500)
    tok = train_small_tokenizer(d / "tok.json", texts[:300])
    write_jsonl(d / "a.jsonl", texts)
    (d / "a.txt").write_text("\n".join(t.replace("\n", " ") for t in texts if t.strip()) + "\n")
    return d, tok, texts
