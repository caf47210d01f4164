"""What an installed ngramds offers besides the library: one version, the console scripts;
it imports and works where nothing can be written.
(The wheel itself is built, installed and smoke-tested from outside the checkout by .ci/run.)"""
import importlib
import os
import shutil
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


def test_import_works_with_an_unwritable_package_directory_and_home(tmp_path, built_file):
    """numba cannot cache next to the package nor in $HOME: import and use still work."""
    pkg = tmp_path / "site" / "ngramds"
    shutil.copytree(Path(ngramds.__file__).parent, pkg,
                    ignore=shutil.ignore_patterns("__pycache__"))
    for sub in [pkg, *[p for p in pkg.rglob("*") if p.is_dir()]]:
        (sub / "__pycache__").write_text("not a directory")  # nothing can be written there
    (tmp_path / "home").write_text("not a directory either")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_CACHE", "XDG_"))}
    env.update(HOME=str(tmp_path / "home"), PYTHONPATH=str(tmp_path / "site"),
               XDG_CACHE_HOME=str(tmp_path / "home" / "cache"))
    r = subprocess.run([sys.executable, "-c", "import ngramds, sys; "
                        "f = ngramds.open(sys.argv[1]); print(f.distribution([5])[0].size)",
                        str(built_file)], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert int(r.stdout) > 0
