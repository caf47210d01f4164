"""TargetConfig as the one carrier of the target options: its fields make the command-line
flags (help from the field metadata) and the parsed flags make a TargetConfig."""
import argparse
from dataclasses import fields

import pytest

from ngramds.targets.config import TargetConfig, add_target_flags, config_from_args


def parser(defaults=None, skip=()):
    p = argparse.ArgumentParser(prog="t", exit_on_error=False)
    add_target_flags(p, defaults, skip=skip)
    return p


def test_every_field_is_one_flag_with_help_and_default():
    actions = {a.dest: a for a in parser()._actions if a.dest != "help"}
    assert sorted(actions) == sorted(f.name for f in fields(TargetConfig))
    for f in fields(TargetConfig):
        action = actions[f.name]
        assert action.option_strings == ["--" + f.name.replace("_", "-")]
        assert f.metadata["help"] in action.help and "(default: " in action.help
    assert actions["mixing"].choices == ("auto", "none", "backoff", "witten-bell", "fixed",
                                         "kneser-ney")


def test_flags_make_the_config_and_unset_ones_keep_the_defaults():
    argv = ["--targets", "allnts", "--top-r", "4", "--residual", "renorm", "--max-k", "5",
            "--mixing", "fixed", "--orders", "2,3", "--min-count", "3", "--lambdas", "1,2.5",
            "--escape", "2"]
    assert config_from_args(parser().parse_args(argv)) == TargetConfig(
        "allnts", top_r=4, residual="renorm", max_k=5, mixing="fixed", orders=(2, 3),
        min_count=3, lambdas=[1.0, 2.5], escape=2.0)
    assert config_from_args(parser().parse_args([])) == TargetConfig()
    base = TargetConfig(max_k=None)
    assert config_from_args(parser(base).parse_args(["--top-r", "2"]), base) == \
        TargetConfig(max_k=None, top_r=2)
    assert config_from_args(parser().parse_args(["--max-k", "all"])).max_k is None
    with pytest.raises(argparse.ArgumentError, match="an integer or 'all'"):
        parser().parse_args(["--max-k", "every"])


def test_a_default_other_than_the_librarys_is_said_in_the_help():
    help_of = {a.dest: a.help for a in parser(TargetConfig(max_k=None))._actions}
    assert help_of["max_k"].endswith("(default: all; the library's: 64)")
    assert help_of["top_r"].endswith("(default: 8)")
    assert parser()._option_string_actions["--max-k"].help.endswith("(default: 64)")


def test_skipped_fields_get_no_flag_and_bad_lists_are_usage_errors():
    assert "--targets" not in parser(skip=("targets",))._option_string_actions
    with pytest.raises(argparse.ArgumentError, match="expected orders like 2,3,4"):
        parser().parse_args(["--orders", "2,x"])
    with pytest.raises(argparse.ArgumentError, match="invalid choice"):
        parser().parse_args(["--mixing", "katz"])
