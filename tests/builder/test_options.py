"""Build options are checked before any work: a memory limit that is not a size, a top_k or a
seed past 64 bits give exit 2 and one line."""
import pytest

from cli_helpers import cli, one_error_line


@pytest.mark.parametrize("limit", ["inf", "nan", "1e400", "-1G", "0"])
def test_a_memory_limit_that_is_not_a_size_is_refused(token_dir, capsys, limit):
    d = token_dir
    code, _, err = cli(capsys, "build", d / "a.npy", "-o", d / "o.ngds",
                       f"--memory-limit={limit}", "-q")
    assert code == 2
    one_error_line(err, "size")


def test_top_k_and_seed_past_64_bits_are_refused(token_dir, capsys):
    d = token_dir
    code, _, err = cli(capsys, "build", d / "a.npy", "-o", d / "o.ngds", "--top-k", 2**70, "-q")
    assert code == 2
    one_error_line(err, "top_k")
    code, _, err = cli(capsys, "build", d / "a.npy", "-o", d / "o.ngds", "--eos-id", "0",
                       "--val-fraction", "0.2", "--val-output", d / "v.ngds", "--seed",
                       2**70, "-q")
    assert code == 2
    one_error_line(err, "seed")
    assert not (d / "o.ngds").exists() and not (d / "v.ngds").exists()
