"""CI: check a built wheel's contents against the source tree.

    python .ci/check_wheel.py dist/ngramds-X-py3-none-any.whl ngramds/

Every module and subpackage of the source is in the wheel, with py.typed, the console scripts
and the version of ngramds/version.py; nothing else (no tests, caches or compiled kernels)."""
import ast
import sys
import zipfile
from pathlib import Path

wheel, source = Path(sys.argv[1]), Path(sys.argv[2])
names = set(zipfile.ZipFile(wheel).namelist())
package = {n for n in names if not n.split("/")[0].endswith(".dist-info")}
expected = {f"ngramds/{p.relative_to(source).as_posix()}" for p in source.rglob("*.py")
            if "__pycache__" not in p.parts} | {"ngramds/py.typed"}
problems = [f"missing: {n}" for n in sorted(expected - package)]
problems += [f"unexpected: {n}" for n in sorted(package - expected)]
info = next(n for n in names if n.endswith(".dist-info/METADATA")).rsplit("/", 1)[0]
version = next(node.value.value for node in ast.parse((source / "version.py").read_text()).body
               if isinstance(node, ast.Assign) and node.targets[0].id == "__version__")
metadata = zipfile.ZipFile(wheel).read(f"{info}/METADATA").decode()
if f"\nVersion: {version}\n" not in metadata:
    problems.append(f"METADATA does not give version {version}")
scripts = zipfile.ZipFile(wheel).read(f"{info}/entry_points.txt").decode()
for line in ("ngramds = ngramds.cli:main", "ngramds-train = ngramds.train.cli:main"):
    if line not in scripts:
        problems.append(f"entry point missing: {line}")
if problems:
    sys.exit(f"{wheel.name}: " + "; ".join(problems))
print(f"{wheel.name}: {len(package)} files, version {version}, both console scripts")
