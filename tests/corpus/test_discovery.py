"""Which files a build reads (ngramds/corpus/discovery.py): directories walked in sorted order,
one document per file, --include patterns, hidden names and planted links skipped, a Megatron
dataset in a directory read once; source trees (files of any suffix picked by --include are
text, binary files skipped and counted); and what stops a directory build before any work (a
subdirectory that cannot be listed, a file name that is not UTF-8)."""
import os

import numpy as np
import pytest

import ngramds
from ngramds.cli import main
from ngramds.errors import FileAccessError

from helpers import train_small_tokenizer

C_FILE = "int main(void) {\n    return add(1, 2); /* sum */\n}\n"
H_FILE = "#ifndef ADD_H\n#define ADD_H\nint add(int a, int b);\n#endif\n"
PY_FILE = "def add(a, b):\n    \"\"\"Sum.\"\"\"\n    return a + b\n"


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "tok.json"
    return path, train_small_tokenizer(path, [C_FILE, H_FILE, PY_FILE] * 20)


def _source_tree(root):
    """A small source tree: C files and headers (one with a stray Latin-1 byte), a Makefile,
    a README, object files and other binaries, a hidden directory. Returns the files a build
    with --include '*.c' --include '*.h' reads, in order, and the binaries it skips."""
    texts = {"main.c": C_FILE, "add.h": H_FILE, "lib/add.c": C_FILE.replace("main", "add"),
             "lib/add.h": H_FILE, "lib/util/str.c": "char *s = \"x\";\n",
             "README.md": "# a project\n", "Makefile": "all:\n\tcc main.c\n",
             ".git/config.c": "[core]\n"}
    for name, text in texts.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    # one Latin-1 byte in a comment: text, the byte read as U+FFFD
    (root / "lib/latin.c").write_bytes(b"/* caf\xe9 */\nint x;\n" + b"int y;\n" * 20)
    (root / "main.o").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4)
    (root / "lib/blob.c").write_bytes(b"int x;\x00\x00\x01binary")           # NUL bytes
    (root / "lib/util/latin1.h").write_bytes("é".encode("latin-1") * 200)   # not UTF-8 at all
    read = ["add.h", "lib/add.c", "lib/add.h", "lib/latin.c", "lib/util/str.c", "main.c"]
    read.sort(key=lambda n: n.split("/"))
    return [root / n for n in read], ["lib/blob.c", "lib/util/latin1.h"]


def _documents(tok, paths, eos):
    return [tok.encode(p.read_bytes().decode("utf-8", "replace"),
                       add_special_tokens=False).ids + [eos] for p in paths]


@pytest.mark.parametrize("limit", [None, "4G"])
def test_source_tree_builds_one_document_per_file_and_counts_skipped_binaries(
        tmp_path, tok, capsys, limit):
    tok_path, tokenizer = tok
    root = tmp_path / "linux"
    root.mkdir()
    files, binaries = _source_tree(root)
    eos = tokenizer.token_to_id("<eos>")
    args = ["build", str(root), "-o", str(tmp_path / "o.ngds"), "--include", "*.c",
            "--include", "*.h", "--tokenizer", str(tok_path), "--eos-id", str(eos)]
    if limit:
        args += ["--memory-limit", limit]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert f"skipped {len(binaries)} binary files" in err, err
    docs = _documents(tokenizer, files, eos)
    with ngramds.open(tmp_path / "o.ngds") as f:
        assert f.num_documents == len(files)
        assert np.array_equal(f.tokens, np.concatenate(docs))


def test_python_package_builds_with_include(tmp_path, tok, capsys):
    tok_path, tokenizer = tok
    root = tmp_path / "pydir"
    (root / "pkg").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "mod.py").write_text(PY_FILE)
    (root / "pkg" / "__init__.py").write_text("from .core import add\n")
    (root / "pkg" / "core.py").write_text(PY_FILE * 2)
    (root / "pkg" / "core.cpython-311.pyc").write_bytes(b"\xa7\r\r\n\x00\x00" + bytes(40))
    files = [root / "__init__.py", root / "mod.py", root / "pkg" / "__init__.py",
             root / "pkg" / "core.py"]
    files.sort(key=lambda p: p.relative_to(root).parts)
    for extra in (["--text-unit", "file"], []):
        assert main(["build", str(root), "-o", str(tmp_path / "py.ngds"), "--tokenizer",
                     str(tok_path), "--include", "*.py", "-q", *extra]) == 0, \
            capsys.readouterr().err
        with ngramds.open(tmp_path / "py.ngds") as f:
            assert f.num_documents == len(files)  # the empty __init__.py: an empty one
            assert np.array_equal(f.tokens, np.concatenate(
                [tokenizer.encode(p.read_text(), add_special_tokens=False).ids
                 for p in files]))
        os.unlink(tmp_path / "py.ngds")
    # without --include: the error names what is there and the option that reads it
    assert main(["build", str(root), "-o", str(tmp_path / "py.ngds"), "--tokenizer",
                 str(tok_path), "-q"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "4 .py files" in err and "--include '*.py'" in err
    assert not (tmp_path / "py.ngds").exists()


def test_source_file_named_is_one_text_document(tmp_path, tok, capsys):
    tok_path, tokenizer = tok
    (tmp_path / "main.c").write_text(C_FILE)
    out = ngramds.build([tmp_path / "main.c"], tmp_path / "o.ngds", tokenizer=tok_path,
                        progress=False)
    with ngramds.open(out) as f:
        assert f.num_documents == 1
        assert f.tokens.tolist() == tokenizer.encode(C_FILE, add_special_tokens=False).ids
    # a binary file named with a tokenizer is refused, not skipped
    (tmp_path / "blob.dat").write_bytes(b"\x00\x01" * 100)
    assert main(["build", str(tmp_path / "blob.dat"), "-o", str(tmp_path / "b.ngds"),
                 "--tokenizer", str(tok_path), "-q"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "blob.dat" in err and "--dtype" in err
    assert not (tmp_path / "b.ngds").exists()


def test_tree_of_only_binaries_is_refused_naming_the_count(tmp_path, tok, capsys):
    tok_path, _ = tok
    (tmp_path / "bin").mkdir()
    for i in range(3):
        (tmp_path / "bin" / f"x{i}.o").write_bytes(bytes(range(256)))
    assert main(["build", str(tmp_path / "bin"), "-o", str(tmp_path / "o.ngds"), "--include",
                 "*.o", "--tokenizer", str(tok_path), "-q"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "3" in err and "binary" in err
    assert not (tmp_path / "o.ngds").exists()


# -- refused before any work ---------------------------------------------------------------
def _unlistable(monkeypatch, path):
    """Listing ``path`` fails with EACCES (as a mode-000 directory does for a non-root user;
    the tests run as root, where chmod does not stop reading)."""
    real = os.scandir

    def scandir(p="."):
        if os.fspath(p) == os.fspath(path):
            raise PermissionError(13, "Permission denied", os.fspath(p))
        return real(p)
    monkeypatch.setattr(os, "scandir", scandir)


@pytest.mark.parametrize("which", ["sub", "root"])
def test_unreadable_directory_is_refused(tmp_path, tok, capsys, monkeypatch, which):
    tok_path, _ = tok
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha beta\n")
    (root / "sub" / "b.txt").write_text("gamma delta\n")
    _unlistable(monkeypatch, root / "sub" if which == "sub" else root)
    assert main(["build", str(root), "-o", str(tmp_path / "o.ngds"), "--tokenizer",
                 str(tok_path), "-q"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert str(root / "sub" if which == "sub" else root) in err and "ermission" in err
    assert not (tmp_path / "o.ngds").exists()
    with pytest.raises(FileAccessError, match="cannot list"):
        ngramds.build([root], tmp_path / "o.ngds", tokenizer=tok_path, progress=False)


def test_unreadable_directory_as_another_user_is_refused(tmp_path, tok):
    """The same with a real mode-000 directory, where the tests do not run as root."""
    if os.geteuid() == 0:
        pytest.skip("root reads a mode-000 directory")
    tok_path, _ = tok
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha beta\n")
    (root / "sub" / "b.txt").write_text("gamma delta\n")
    os.chmod(root / "sub", 0)
    try:
        with pytest.raises(FileAccessError, match="sub"):
            ngramds.build([root], tmp_path / "o.ngds", tokenizer=tok_path, progress=False)
    finally:
        os.chmod(root / "sub", 0o755)


@pytest.mark.parametrize("given", [False, True])
def test_file_name_not_utf8_is_refused_before_any_work(tmp_path, tok, capsys, given):
    tok_path, _ = tok
    root = tmp_path / "tree"
    root.mkdir()
    (root / "a.txt").write_text("alpha beta\n")
    bad = os.path.join(os.fsencode(root), b"caf\xe9.txt")
    try:
        with open(bad, "wb") as f:
            f.write(b"gamma delta\n")
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    target = os.fsdecode(bad) if given else str(root)
    assert main(["build", target, "-o", str(tmp_path / "o.ngds"), "--tokenizer",
                 str(tok_path), "-q"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "UTF-8" in err and "caf\\xe9.txt" in err, err
    assert not (tmp_path / "o.ngds").exists()


# -- directories of corpus files -----------------------------------------------------------
def _tree(root, texts):
    """A directory of .txt files (one text each, nested), plus files to leave out."""
    (root / "sub" / "deeper").mkdir(parents=True)
    names = []
    for i, t in enumerate(texts):
        where = ["", "sub/", "sub/deeper/"][i % 3]
        path = root / f"{where}f{i:03d}.txt"
        path.write_text(t.replace(" ", "\n", 2) + "\n")
        names.append(path)
    (root / "notes.md").write_text("not a corpus file\n")
    (root / ".hidden.txt").write_text("hidden\n")
    return sorted(names, key=lambda p: p.relative_to(root).parts)


def test_directory_reads_every_file_sorted_one_document_each(text, tmp_path):
    d, tok, texts = text
    root = tmp_path / "tree"
    root.mkdir()
    files = _tree(root, texts[:30])
    out = ngramds.build([root], tmp_path / "dir.ngds", tokenizer=d / "tok.json", eos_id=0,
                        progress=False)
    docs = [tok.encode(p.read_text(), add_special_tokens=False).ids + [0] for p in files]
    with ngramds.open(out) as f:
        assert f.num_documents == len(files)
        assert np.array_equal(f.tokens, np.concatenate(docs))
    # an include pattern selects files (matched against the path inside the directory)
    out = ngramds.build([root], tmp_path / "sub.ngds", tokenizer=d / "tok.json", eos_id=0,
                        include=["sub/*"], progress=False)
    with ngramds.open(out) as f:
        assert f.num_documents == sum(1 for p in files if p.parent != root)


def test_directory_via_cli_and_empty_directory(text, tmp_path, capsys):
    d, _, texts = text
    root = tmp_path / "tree"
    root.mkdir()
    files = _tree(root, texts[:12])
    assert main(["build", str(root), "-o", str(tmp_path / "o.ngds"), "--tokenizer",
                 str(d / "tok.json"), "--eos-id", "0", "--include", "*.txt", "-q"]) == 0
    with ngramds.open(tmp_path / "o.ngds") as f:
        assert f.num_documents == len(files)
    (tmp_path / "empty").mkdir()
    assert main(["build", str(tmp_path / "empty"), "-o", str(tmp_path / "e.ngds"), "-q"]) == 2
    assert "no input files" in capsys.readouterr().err


def test_directory_never_follows_a_planted_link(text, tmp_path):
    d, _, texts = text
    root = tmp_path / "tree"
    root.mkdir()
    _tree(root, texts[:6])
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("outside the tree\n")
    os.symlink(outside, root / "link")
    os.symlink(outside / "secret.txt", root / "file-link.txt")
    out = ngramds.build([root], tmp_path / "o.ngds", tokenizer=d / "tok.json", eos_id=0,
                        progress=False)
    with ngramds.open(out) as f:
        assert f.num_documents == 6


def test_megatron_dataset_in_a_directory_is_read_once_whatever_the_patterns(tmp_path):
    from helpers import write_megatron
    root = tmp_path / "data"
    root.mkdir()
    write_megatron(root / "corpus_text_document", [[1, 2, 3], [4, 5]])
    for include in (None, ["*"], ["*.bin", "*.idx"]):
        out = ngramds.build([root], tmp_path / "m.ngds", include=include, progress=False)
        with ngramds.open(out) as f:
            assert f.tokens.tolist() == [1, 2, 3, 4, 5] and f.num_documents == 2
        out.unlink()


def test_a_directory_named_through_a_link_is_read(text, tmp_path):
    d, _, texts = text
    root = tmp_path / "tree"
    root.mkdir()
    _tree(root, texts[:6])
    os.symlink(root, tmp_path / "link")
    out = ngramds.build([tmp_path / "link"], tmp_path / "o.ngds", tokenizer=d / "tok.json",
                        eos_id=0, progress=False)
    with ngramds.open(out) as f:
        assert f.num_documents == 6
