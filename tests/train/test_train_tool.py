"""The training tool shipped in the package (`ngramds-train`): tiny runs on tiny files."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import ngramds
from ngramds.train.cli import main

TINY = ["--steps", "3", "--eval-every", "2", "--eval-batches", "1", "--batch-size", "2",
        "--seq-len", "16", "--d-model", "16", "--layers", "1", "--heads", "2", "--warmup", "1",
        "--threads", "1"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Train and held-out files of a repetitive 40-token corpus (orders 2-4)."""
    d = tmp_path_factory.mktemp("train")
    rng = np.random.default_rng(0)
    docs = [(np.cumsum(rng.integers(1, 4, size=120)) % 40).tolist() for _ in range(12)]
    ngramds.build(docs[:10], d / "t.ngds", vocab_size=40, progress=False)
    ngramds.build(docs[10:], d / "v.ngds", vocab_size=40, progress=False)
    return d / "t.ngds", d / "v.ngds"


def read_log(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.mark.parametrize("targets", ["onehot", "coconts", "allnts"])
def test_run_trains_and_logs(files, tmp_path, capsys, targets):
    train, val = files
    log = tmp_path / "runs" / "r.jsonl"
    assert main(["run", "--train", str(train), "--val", str(val), "--targets", targets,
                 "--out", str(log), *TINY, "--escape", "2.5"]) == 0
    records = read_log(log)
    assert [r["step"] for r in records] == [2, 3]
    assert all(math.isfinite(r["val_loss"]) and r["val_ppl"] > 1 for r in records)
    cfg = records[0]["config"]
    assert cfg["targets"] == targets and cfg["seq_len"] == 16 and cfg["params"] > 0
    assert cfg["alpha"] == (0.0 if targets == "onehot" else 1.0) and cfg["escape"] == 2.5
    out = capsys.readouterr().out
    assert out.count("val ") == 2
    if targets == "onehot":
        assert cfg["target_entropy"] is None
    else:  # the soft term's floor, logged and printed
        assert cfg["target_entropy"] > 0 and "mean entropy" in out


def test_run_config_embeds_the_target_config_and_logs_it_flat():
    """RunConfig carries a TargetConfig (the library's defaults); the log's ``config`` record
    keeps the flat keys of older logs (docs/runs)."""
    from ngramds.targets import TargetConfig
    from ngramds.train import RunConfig
    cfg = RunConfig("t.ngds", "v.ngds", "r.jsonl")
    assert cfg.target == TargetConfig() == TargetConfig("allnts", max_k=64)
    record = RunConfig("t.ngds", "v.ngds", "r.jsonl",
                       target=TargetConfig("allnts", orders=[2, 3], lambdas=[1, 2])).record()
    assert list(record) == [
        "train", "val", "out", "targets", "top_r", "residual", "max_k", "mixing", "orders",
        "min_count", "lambdas", "escape", "alpha_count", "alpha", "alpha_hold", "steps", "batch_size",
        "seq_len", "d_model", "layers", "heads", "lr", "warmup", "eval_every", "eval_batches",
        "seed", "workers", "threads", "device"]
    assert json.loads(json.dumps(record))["orders"] == [2, 3]
    assert (record["targets"], record["max_k"], record["lambdas"]) == ("allnts", 64, [1, 2])


def test_alpha_count_weighs_the_soft_term(files, tmp_path, monkeypatch):
    """--alpha-count K: the loss gets batches with each position's soft-term weight and the
    log records K."""
    import ngramds.train.loop as loop
    seen = []
    real = loop.ngram_loss

    def spy(logits, batch, **kw):
        seen.append(batch.get("soft_weight"))
        return real(logits, batch, **kw)
    monkeypatch.setattr(loop, "ngram_loss", spy)
    train, val = files
    log = tmp_path / "w.jsonl"
    assert main(["run", "--train", str(train), "--val", str(val), "--out", str(log), *TINY,
                 "--alpha-count", "5"]) == 0
    assert read_log(log)[0]["config"]["alpha_count"] == 5.0
    assert len(seen) == 3 and all(w is not None and 0 < float(w.max()) < 1 for w in seen)
    assert main(["run", "--train", str(train), "--val", str(val), "--out", str(log), *TINY,
                 "--alpha-count", "-1", "--overwrite"]) == 2


def test_target_flags_are_the_target_config_fields(capsys):
    """run and compare take one flag per TargetConfig field (compare's --targets is a list of
    kinds) with the library's defaults."""
    from dataclasses import fields

    from ngramds.targets import TargetConfig
    for command in ("run", "compare"):
        assert main([command, "--help"]) == 0
        out = " ".join(capsys.readouterr().out.split())
        for f in fields(TargetConfig):
            assert "--" + f.name.replace("_", "-") in out
    assert "(default: 64)" in out and "the library's" not in out
    from ngramds.train.cli import COMPARE_DEFAULT
    assert COMPARE_DEFAULT == ("onehot", TargetConfig().targets)


def test_alpha_hold_decays_the_soft_term(files, tmp_path):
    """--alpha-hold 0.5: alpha 1 for the first half of the steps, then linearly towards 0 (the
    log records the alpha of each evaluation's step)."""
    train, val = files
    log = tmp_path / "r.jsonl"
    assert main(["run", "--train", str(train), "--val", str(val), "--out", str(log), *TINY,
                 "--steps", "4", "--eval-every", "1", "--alpha-hold", "0.5"]) == 0
    assert [r["alpha"] for r in read_log(log)] == [1.0, 1.0, 1.0, 0.5]  # steps 0..3 of 4
    assert main(["run", "--train", str(train), "--val", str(val), "--out", str(log), *TINY,
                 "--alpha-hold", "2"]) == 2


def test_default_hold_shrinks_with_epochs(files, tmp_path):
    """Without --alpha-hold, alpha is held for half the run up to one epoch, else for the first
    half epoch (ngramds.torch.hold_for_epochs); the log records the hold and the epochs."""
    train, val = files
    from ngramds.torch import NgramDataset
    samples = len(NgramDataset(train, 16))  # windows of 16 tokens per epoch
    for steps in (3, samples):  # batches of 2: 6 windows, then 2 epochs
        log = tmp_path / f"r{steps}.jsonl"
        assert main(["run", "--train", str(train), "--val", str(val), "--out", str(log),
                     *TINY, "--steps", str(steps), "--eval-every", str(steps)]) == 0
        cfg = read_log(log)[0]["config"]
        assert cfg["epochs"] == pytest.approx(steps * 2 / samples)
        assert cfg["alpha_hold"] == pytest.approx(0.5 if steps == 3 else 0.25)


def test_compare_runs_each_kind_then_tables(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # the plot is optional
    train, val = files
    assert main(["compare", "--train", str(train), "--val", str(val), "--out-dir",
                 str(tmp_path), *TINY]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["allnts.jsonl", "onehot.jsonl"]
    out, err = capsys.readouterr()
    assert "steps to onehot's final loss" in out and "\nallnts " in out
    assert err.strip() == ("ngramds-train: note: plotting needs matplotlib: pip install "
                           f"matplotlib; then `ngramds-train plot {tmp_path}/*.jsonl`")
    # a second compare keeps the logs, or replaces them (not appends) with --overwrite
    kept = (tmp_path / "onehot.jsonl").read_bytes()
    assert main(["compare", "--train", str(train), "--val", str(val), "--out-dir",
                 str(tmp_path), "--targets", "onehot", *TINY]) == 2
    one_error_line(capsys, "onehot.jsonl", "exists", "--overwrite")
    assert (tmp_path / "onehot.jsonl").read_bytes() == kept
    assert main(["compare", "--train", str(train), "--val", str(val), "--out-dir",
                 str(tmp_path), "--targets", "onehot", "--overwrite", *TINY]) == 0
    assert len(read_log(tmp_path / "onehot.jsonl")) == 2


def test_plot_writes_a_png(files, tmp_path):
    pytest.importorskip("matplotlib")
    train, val = files
    logs = []
    for kind in ("onehot", "coconts"):
        logs.append(str(tmp_path / f"{kind}.jsonl"))
        assert main(["run", "--train", str(train), "--val", str(val), "--targets", kind,
                     "--out", logs[-1], *TINY]) == 0
    assert main(["plot", *logs, "-o", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def one_error_line(capsys, *words):
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("ngramds-train: error:"), err
    for w in words:
        assert w in err, err


def test_plot_without_matplotlib_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    log = tmp_path / "r.jsonl"
    log.write_text(json.dumps({"step": 1, "val_loss": 2.0, "wall_s": 1.0}) + "\n")
    assert main(["plot", str(log)]) == 2
    one_error_line(capsys, "pip install matplotlib")
    assert main(["compare", "--train", "t", "--val", "v", "--out-dir", str(tmp_path),
                 "--plot", "p.png"]) == 2
    one_error_line(capsys, "matplotlib")


def test_training_without_torch_is_one_line(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    train, val = files
    assert main(["run", "--train", str(train), "--val", str(val), "--out",
                 str(tmp_path / "r.jsonl")]) == 2
    one_error_line(capsys, "pip install torch")


@pytest.mark.parametrize("args,words", [
    (["--heads", "3"], ["d-model (16) must be a multiple of heads (3)"]),
    (["--steps", "0"], ["steps must be at least 1"]),
    (["--lr", "nan"], ["lr must be a positive number"]),
    (["--top-r", "0"], ["top_r"]),
    (["--device", "nosuchdevice"], ["device 'nosuchdevice' is not usable"]),
    (["--orders", "5"], ["order"]),
    (["--escape", "0"], ["escape must be a number"]),
])
def test_bad_options_are_one_line(files, tmp_path, capsys, args, words):
    train, val = files
    assert main(["run", "--train", str(train), "--val", str(val), "--out",
                 str(tmp_path / "r.jsonl"), *TINY, *args]) == 2
    one_error_line(capsys, *words)
    assert not (tmp_path / "r.jsonl").exists()


def test_bad_files_are_one_line(files, tmp_path, capsys):
    train, val = files
    args = ["--out", str(tmp_path / "r.jsonl"), *TINY]
    assert main(["run", "--train", str(tmp_path / "missing.ngds"), "--val", str(val),
                 *args]) == 2
    one_error_line(capsys, "missing.ngds")
    ngramds.build([list(range(50))] * 3, tmp_path / "big.ngds", progress=False)  # vocab 50
    assert main(["run", "--train", str(train), "--val", str(tmp_path / "big.ngds"),
                 *args]) == 2
    one_error_line(capsys, "larger vocabulary")
    (tmp_path / "bad.jsonl").write_text("not json\n")
    assert main(["plot", str(tmp_path / "bad.jsonl"), "-o", str(tmp_path / "p.png")]) == 2
    one_error_line(capsys, "bad.jsonl:1 is not a record")
    assert main(["plot", str(tmp_path / "none.jsonl")]) == 2
    one_error_line(capsys, "cannot read the log", "none.jsonl")
    assert main(["compare", "--train", str(train), "--val", str(val), "--out-dir",
                 str(tmp_path), "--targets", "onehot,bogus"]) == 2
    one_error_line(capsys, "target kinds")


def test_module_entry_and_version():
    r = subprocess.run([sys.executable, "-m", "ngramds.train", "--version"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == f"ngramds-train {ngramds.__version__}"
    r = subprocess.run([sys.executable, "-m", "ngramds.train"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("ngramds-train: error:")


def test_held_out_loss_ignores_masked_labels():
    """evaluate() averages over the labels that count: -100 (prompt, padding) are neither
    summed nor counted."""
    import torch
    import torch.nn.functional as F
    from ngramds.train.loop import evaluate

    class Fixed(torch.nn.Module):
        def __init__(self, logits):
            super().__init__()
            self.logits = logits

        def forward(self, x):
            return self.logits

    logits = torch.randn(2, 5, 7)
    labels = torch.randint(0, 7, (2, 5))
    labels[0, :3] = -100
    batch = {"input_ids": torch.zeros(2, 5, dtype=torch.long), "labels": labels}
    want = F.cross_entropy(logits.flatten(0, 1), labels.flatten()).item()  # mean over 7
    assert evaluate(Fixed(logits), [batch], "cpu") == pytest.approx(want, rel=1e-6)


def test_a_log_naming_an_input_file_is_refused_and_the_file_kept(files, tmp_path, capsys):
    train, val = files
    link = tmp_path / "link.jsonl"
    link.symlink_to(train)
    for out in (train, val, link):
        before = train.read_bytes(), val.read_bytes()
        assert main(["run", "--train", str(train), "--val", str(val), "--out", str(out),
                     "--overwrite", *TINY]) == 2
        one_error_line(capsys, str(out), "input")
        assert (train.read_bytes(), val.read_bytes()) == before
    ngramds.open(train, verify=True)
    assert main(["compare", "--train", str(train), "--val", str(val), "--out-dir",
                 str(train.parent), "--targets", "onehot", "--plot", str(val), *TINY]) == 2
    one_error_line(capsys, str(val))


def test_an_existing_log_is_kept_unless_overwrite_is_given(files, tmp_path, capsys):
    train, val = files
    log = tmp_path / "mine.jsonl"
    log.write_text("my notes\n")
    assert main(["run", "--train", str(train), "--val", str(val), "--out", str(log),
                 *TINY]) == 2
    one_error_line(capsys, "mine.jsonl", "exists", "--overwrite")
    assert log.read_text() == "my notes\n"
    assert main(["run", "--train", str(train), "--val", str(val), "--out", str(log),
                 "--overwrite", *TINY]) == 0
    assert [r["step"] for r in read_log(log)] == [2, 3]  # replaced, not appended to


def test_compare_keeps_a_users_log_in_the_out_dir(files, tmp_path, capsys):
    train, val = files
    (tmp_path / "onehot.jsonl").write_text("mine\n")
    assert main(["compare", "--train", str(train), "--val", str(val), "--out-dir",
                 str(tmp_path), *TINY]) == 2
    one_error_line(capsys, "onehot.jsonl", "--overwrite")
    assert (tmp_path / "onehot.jsonl").read_text() == "mine\n"
    assert not (tmp_path / "coconts.jsonl").exists()


def test_plot_of_a_fifo_is_refused_at_once(tmp_path):
    fifo = tmp_path / "log.jsonl"
    os.mkfifo(fifo)
    r = subprocess.run([sys.executable, "-m", "ngramds.train", "plot", str(fifo), "-o",
                        str(tmp_path / "p.png")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert "not a regular file" in r.stderr and str(fifo) in r.stderr


def test_plot_of_a_log_that_is_not_utf8_is_one_line(tmp_path, capsys):
    log = tmp_path / "r.jsonl"
    log.write_bytes(b'{"step": 1, "val_loss": 2.0, "wall_s": 1.0}\n\xff\xfe\n')
    assert main(["plot", str(log), "-o", str(tmp_path / "p.png")]) == 2
    one_error_line(capsys, "r.jsonl", "UTF-8")


@pytest.mark.parametrize("output", ["keep.jsonl", "x.ngds", "noformat"])
def test_plot_output_that_is_a_log_or_no_image_is_refused(files, tmp_path, capsys, output):
    pytest.importorskip("matplotlib")
    log = tmp_path / "keep.jsonl"
    text = json.dumps({"step": 1, "val_loss": 2.0, "wall_s": 1.0}) + "\n"
    log.write_text(text)
    (tmp_path / "x.ngds").write_bytes(b"data")
    assert main(["plot", str(log), "-o", str(tmp_path / output)]) == 2
    one_error_line(capsys, output)
    assert log.read_text() == text and (tmp_path / "x.ngds").read_bytes() == b"data"
    if output == "x.ngds":  # compare refuses it before any training
        train, val = files
        assert main(["compare", "--train", str(train), "--val", str(val), "--out-dir",
                     str(tmp_path / "runs"), "--plot", str(tmp_path / output), *TINY]) == 2
        one_error_line(capsys, output)
        assert not (tmp_path / "runs").exists()
