"""tools/gpu_check.py --dry-run: every step of the GPU check runs on the CPU at toy sizes, so the
script the GPU machine will run does not rot between the (rare) GPU sessions."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STEPS = ["device tests", "loss", "no host sync", "pinned loader", "corpus", "speed", "gain",
         "teacher"]


def test_the_dry_run_runs_every_step_and_reports_them(tmp_path):
    """Kept under a minute (the script's own budget is 60 s; the subprocess is stopped at 150
    s on a loaded machine)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))  # as on the GPU machine: no install
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "tools/gpu_check.py", "--out", str(tmp_path / "out"),
                           "--dry-run"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=150)
    seconds = time.monotonic() - t0
    result = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    failed = {k: v.get("error") or v.get("result") for k, v in result["steps"].items()
              if not v["ok"]}
    assert proc.returncode == 0 and not failed, (failed, proc.stderr[-2000:])
    assert list(result["steps"]) == STEPS
    assert result["dry_run"] and result["machine"]["torch"]
    gain = result["steps"]["gain"]["result"]
    assert gain["onehot"]["curve"] and gain["ngram"]["curve"] and "final_gain" in gain
    assert result["steps"]["loss"]["result"]["compile_graph_breaks"] == 0
    assert 0 < result["steps"]["teacher"]["result"]["orders 2-4"] < 10
    other = result["steps"]["speed"]["result"]["other_targets"]
    assert all(r["positions_per_s_on_device"] > 0 for r in other["device_targets"].values())
    assert list(other["device_targets"]) == ["r=8", "r=16"]
    assert list(other["loader_positions_per_s"]) == ["allnts", "r=8", "r=16"]
    table = (tmp_path / "out" / "gpu_check.md").read_text()
    assert all(f"| {step} | ok |" in table for step in STEPS) and table in proc.stdout
    assert seconds < 120, f"the dry run took {seconds:.0f} s"


def test_without_cuda_the_full_check_refuses_in_one_line(tmp_path):
    import torch
    if torch.cuda.is_available():
        return
    proc = subprocess.run([sys.executable, "tools/gpu_check.py", "--out", str(tmp_path)],
                          cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--dry-run" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_schedule_follow_up_compares_with_the_recorded_one_hot_run(tmp_path):
    """--steps/--holds/--baseline: n-gram runs at the given holds against the one-hot run of an
    earlier check (same corpus and steps), the gain before the speed step."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    skip = "device tests,loss,no host sync,pinned loader,speed,0.7x"

    def check(out, *extra):
        proc = subprocess.run([sys.executable, "tools/gpu_check.py", "--out", str(out),
                               "--dry-run", "--steps", "20", "--skip", skip, *extra],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=150)
        return proc, json.loads((out / "gpu_check.json").read_text())

    _, first = check(tmp_path / "a")
    proc, second = check(tmp_path / "b", "--holds", "0.25,0.1,0.5:0.5,0.25:1:coconts",
                         "--baseline", str(tmp_path / "a" / "gpu_check.json"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    gain, earlier = second["steps"]["gain"]["result"], first["steps"]["gain"]["result"]
    assert gain["onehot"] == earlier["onehot"] and gain["onehot_from"]["train_tokens_then"]
    assert gain["ngram"]["hold"] == 0.25 and gain["ngram_hold0.1"]["hold"] == 0.1
    assert gain["ngram_hold0.5_alpha0.5"]["alpha"] == 0.5 == gain["ngram_hold0.5_alpha0.5"]["hold"]
    assert gain["ngram"]["alpha"] == 1.0 and "alpha 0.5" in proc.stdout
    assert gain["ngram_hold0.25_coconts"]["targets"] == "coconts"
    assert gain["ngram"]["targets"] == "allnts" and "coconts" in proc.stdout
    for key in ("", "_hold0.1", "_hold0.5_alpha0.5", "_hold0.25_coconts"):
        assert gain["final_gain" + key] == round(
            earlier["onehot"]["final"] - gain["ngram" + (key or "")]["final"], 4)
        assert "nats" in gain["worst_deficit" + key]
    proc, _ = check(tmp_path / "c", "--steps", "21", "--baseline",
                    str(tmp_path / "a" / "gpu_check.json"))
    assert proc.returncode == 1 and "not 21" in proc.stdout


@pytest.mark.parametrize("holds", ["0.5:", "x", "0.5:1.5", "1.2", "0.5:0.5:1", "0.1,0.1",
                                   "0.1:1:coconts,0.1:1:coconts", "0.1:1:allnts:x",
                                   "0.1:1:onehot"])
def test_a_bad_hold_is_refused_before_any_work(tmp_path, holds):
    proc = subprocess.run([sys.executable, "tools/gpu_check.py", "--out", str(tmp_path),
                           "--dry-run", "--holds", holds],
                          cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--holds takes distinct H, H:A or H:A:T" in proc.stderr
    assert not (tmp_path / "gpu_check.json").exists()
