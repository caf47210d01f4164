"""Outputs are checked against the inputs and each other before any work: an output that is an
input (by name, symlink or hard link) or another output is refused and nothing is touched."""
import os

import numpy as np
import pytest

import ngramds
from cli_helpers import cli, one_error_line, snapshot
from helpers import train_small_tokenizer, write_jsonl, write_megatron


def _inputs(d):
    (np.arange(400, dtype=np.uint16) % 50).tofile(d / "raw.bin")
    write_megatron(d / "mega", [[1, 2, 3, 4], [5, 6, 7]])
    np.save(d / "lengths.npy", np.array([1000, 2000]))
    tok = d / "tok.json"
    train_small_tokenizer(tok, ["hello world, this is some text"] * 20)
    write_jsonl(d / "t.jsonl", ["hello world"] * 5)
    os.symlink(d / "a.npy", d / "link.npy")
    os.link(d / "a.npy", d / "hard.npy")


SAME = {
    "npy": ["a.npy", "-o", "a.npy"],
    "raw .bin": ["raw.bin", "--dtype", "uint16", "-o", "raw.bin"],
    "megatron .bin": ["mega.bin", "-o", "mega.bin"],
    "megatron .idx": ["mega.bin", "-o", "mega.idx"],
    "tokenizer": ["t.jsonl", "--tokenizer", "tok.json", "-o", "tok.json"],
    "doc lengths": ["a.npy", "--doc-lengths", "lengths.npy", "-o", "lengths.npy"],
    "memory limit": ["a.npy", "--memory-limit", "4G", "-o", "a.npy"],
    "partial": ["a.npy", "--partial", "-o", "a.npy"],
    "symlink": ["a.npy", "-o", "link.npy"],
    "hard link": ["a.npy", "-o", "hard.npy"],
    "val output = input": ["a.npy", "--eos-id", "0", "--val-fraction", "0.2",
                           "--val-output", "a.npy", "-o", "o.ngds"],
    "val output = output": ["a.npy", "--eos-id", "0", "--val-fraction", "0.2",
                            "--val-output", "o.ngds", "-o", "o.ngds"],
    "val output = output (bounded)": ["a.npy", "--eos-id", "0", "--val-fraction", "0.2",
                                      "--memory-limit", "4G", "--val-output", "./o.ngds",
                                      "-o", "o.ngds"],
}


@pytest.mark.parametrize("case", sorted(SAME))
def test_an_output_that_is_an_input_or_another_output_is_refused(token_dir, capsys,
                                                                 monkeypatch, case):
    d = token_dir
    _inputs(d)
    before = snapshot(d)
    monkeypatch.chdir(d)
    code, _, err = cli(capsys, "build", *SAME[case], "-q")
    assert code == 2
    one_error_line(err)
    assert snapshot(d) == before  # input untouched, nothing written


def test_build_refuses_an_output_that_is_an_input(token_dir):
    d = token_dir
    _inputs(d)
    before = snapshot(d)
    for kwargs in ({}, {"memory_limit": "4G"}):
        with pytest.raises(ngramds.InputError, match="input"):
            ngramds.build([str(d / "a.npy")], d / "hard.npy", progress=False, **kwargs)
        with pytest.raises(ngramds.InputError, match="input"):
            ngramds.build(str(d / "a.npy"), str(d / "a.npy"), progress=False, **kwargs)
    with pytest.raises(ngramds.InputError, match="input"):
        ngramds.build([str(d / "t.jsonl")], d / "tok.json", tokenizer=d / "tok.json",
                      progress=False)
    assert snapshot(d) == before


def test_a_merge_output_that_is_a_file_of_a_partial_is_refused(token_dir, capsys):
    d = token_dir
    assert cli(capsys, "build", d / "a.npy", "--partial", "-o", d / "p", "--order", "2",
               "--memory-limit", "4G", "-q")[0] == 0
    before = snapshot(d)
    for target in (d / "p" / "tokens.npy", d / "p" / "manifest.json"):
        code, _, err = cli(capsys, "merge", d / "p", "-o", target, "--memory-limit", "4G", "-q")
        assert code == 2
        one_error_line(err)
    assert snapshot(d) == before
