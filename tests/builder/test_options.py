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


@pytest.mark.parametrize("options, words", [
    (dict(workers=0), "workers"), (dict(engine="spark"), "engine"),
    (dict(memory_limit="lots"), "size"), (dict(order=2, orders=[2, 3]), "not both"),
    (dict(tmp_dir="nope", memory_limit="1G"), "does not exist")])
def test_build_options_are_checked_once_before_the_input_is_read(tmp_path, options, words):
    """build() and `ngramds build` share the library's checks; none reads the input first."""
    import ngramds
    with pytest.raises(ngramds.NgramdsError, match=words):
        ngramds.build(tmp_path / "missing.npy", tmp_path / "o.ngds", **options)


def test_an_unused_tmp_dir_is_one_warning(token_dir):
    import ngramds
    d = token_dir
    for extra in (dict(), dict(partial=True)):
        with pytest.warns(UserWarning, match="tmp_dir .* is ignored") as seen:
            ngramds.build([d / "a.npy"], d / ("p" if extra else "o.ngds"), tmp_dir=d,
                          progress=False, **extra)
        assert len(seen) == 1
