"""tools/budget.py's report: run names follow the targets (AllNTs "allnts-...", CoCoNTs r = 8
"ngram-..."), and the budget-matched point and gain come from the right logs."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("budget", ROOT / "tools" / "budget.py")
budget = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(budget)


def test_matched_budget_interpolates_between_the_budgets_around_the_target():
    assert budget.matched_budget([(0.7, 5.0), (1.0, 4.0)], 5.2) == "<= 0.70x"
    assert budget.matched_budget([(1.0, 4.0), (0.7, 5.0)], 4.5) == "0.85x"
    assert budget.matched_budget([(0.7, 5.0), (1.0, 4.0)], 3.9) == "> 1.00x"
    assert budget.matched_budget([], 3.9) == "-"


def test_run_names_follow_the_targets(monkeypatch):
    monkeypatch.setattr(budget, "ESCAPE", 10.0)
    monkeypatch.setattr(budget, "TARGETS", "coconts")
    assert budget.ngram_name(0.5, 420) == "ngram-esc10-hold0.5-420"  # the 0.6 runs' names
    monkeypatch.setattr(budget, "TARGETS", "allnts")
    assert budget.ngram_name(0.5, 420) == "allnts-esc10-hold0.5-420"
    assert budget.ngram_name(None, 600) == "allnts-esc10-const-600"


def _log(path: Path, losses: list[float], targets: str) -> None:
    path.write_text("".join(json.dumps({
        "config": {"targets": targets, "batch_size": 8, "seq_len": 128}, "step": 50 * (i + 1),
        "val_loss": v, "tokens_per_s": 1024.0, "wall_s": 10.0 * (i + 1)}) + "\n"
        for i, v in enumerate(losses)))


@pytest.mark.parametrize("targets", ["allnts", "coconts"])
def test_the_report_reads_the_logs_of_the_targets_asked_for(tmp_path, monkeypatch, capsys,
                                                           targets):
    """One-hot ends at 5.0; AllNTs passes it at 0.7 x N, CoCoNTs only at N: each --targets
    reports its own runs."""
    runs = tmp_path / "docs" / "runs" / "budget"
    runs.mkdir(parents=True)
    _log(runs / "kernel.onehot-200.seed0.jsonl", [6.0, 5.5, 5.2, 5.0], "onehot")
    for prefix, at_07, at_1 in (("allnts", 4.9, 4.6), ("ngram", 5.1, 4.8)):
        _log(runs / f"kernel.{prefix}-esc10-hold0.5-140.seed0.jsonl", [5.8, 5.3, at_07], prefix)
        _log(runs / f"kernel.{prefix}-esc10-hold0.5-200.seed0.jsonl", [5.7, 5.2, 5.0, at_1],
             prefix)
    monkeypatch.setattr(budget, "RUNS", runs)
    monkeypatch.setattr(sys, "argv", ["budget.py", "kernel", "--report", "--steps", "200",
                                      "--fractions", "0.7,1.0", "--no-const", "--targets",
                                      targets])
    for name in ("THREADS", "TARGETS", "ESCAPE", "ALPHA_COUNT", "ROOT_DIR"):  # main sets them
        monkeypatch.setattr(budget, name, getattr(budget, name))
    budget.main()
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| kernel | 0 | 5.000"))
    if targets == "allnts":
        assert "0.7: 4.900 / 1: 4.600" in row and "<= 0.70x" in row and "+0.400" in row
    else:
        assert "0.7: 5.100 / 1: 4.800" in row and "0.80x" in row and "+0.200" in row
    assert f"n-gram runs: {targets}," in out
