"""What an installed ngramds offers besides the library: one version, the console scripts.
(The wheel itself is built, installed and smoke-tested from outside the checkout by .ci/run.)"""
import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import ngramds
from ngramds.cli import main

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_version_has_one_source():
    """pyproject takes the version from ngramds/version.py, which the package exports."""
    assert "version" not in PROJECT["project"]
    assert "version" in PROJECT["project"]["dynamic"]
    attr = PROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    module, _, name = attr.rpartition(".")
    assert getattr(importlib.import_module(module), name) == ngramds.__version__
    assert ngramds.__version__.count(".") >= 2


def test_version_option(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"ngramds {ngramds.__version__}"
    r = subprocess.run([sys.executable, "-m", "ngramds.cli", "--version"], capture_output=True,
                       text=True)
    assert r.returncode == 0 and r.stdout.strip() == f"ngramds {ngramds.__version__}"


def test_console_scripts_are_declared_and_resolve():
    scripts = PROJECT["project"]["scripts"]
    assert scripts["ngramds"] == "ngramds.cli:main"
    assert scripts["ngramds-train"] == "ngramds.train.cli:main"
    for target in scripts.values():
        module, _, func = target.partition(":")
        assert callable(getattr(importlib.import_module(module), func))


def test_the_plot_extra_is_declared():
    assert any(r.startswith("matplotlib") for r in PROJECT["project"]["optional-dependencies"]
               ["plot"])
    assert any(r.startswith("build") for r in PROJECT["project"]["optional-dependencies"]["dev"])
