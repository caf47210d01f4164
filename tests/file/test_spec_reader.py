"""An independent reader written from spec/FORMAT.md and spec/SEMANTICS.md only.

The purpose of this module is to check that the normative spec is precise enough for a reader
that has never seen the ngramds source. Everything below is derived from the spec text; the
only thing used from the package is ``ngramds.build`` (to produce files). Files are compared
against a plain-Python recount of the documents done per SEMANTICS.md.

Checks that test *writer conformance* to statements of the spec that a reader must not rely on
(e.g. "zero when written by ngramds", "the file ends at the end of its last section", the exact
*min* dtype choice) are kept separate from the reader and are marked as such.
"""
from __future__ import annotations

import collections
import math
import struct
import zlib

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ngramds

# ---------------------------------------------------------------------------------------------
# The reader (FORMAT.md)
# ---------------------------------------------------------------------------------------------

MAGIC = b"\x93NGRAMDS"                              # FORMAT.md 2: 93 4E 47 52 41 4D 44 53
PREAMBLE = struct.Struct("<8sIIQII")                 # magic, version, flags, header_len, crc, reserved
assert PREAMBLE.size == 32
ALIGN = 64
UNSIGNED = {"<u1": np.dtype("<u1"), "<u2": np.dtype("<u2"),
            "<u4": np.dtype("<u4"), "<u8": np.dtype("<u8")}
MIN_DTYPES = ("<u1", "<u2", "<u4", "<u8")


class SpecError(ValueError):
    """The file violates FORMAT.md / SEMANTICS.md."""


class IncompleteFile(SpecError):
    """First 8 bytes are zero: an interrupted build (FORMAT.md 2, incomplete marker)."""


def crc32(b) -> int:
    # FORMAT.md 2: ISO-HDLC CRC-32 as used by zlib; CRC of zero bytes is 0.
    return zlib.crc32(b) & 0xFFFFFFFF


def _need(cond, msg):
    if not cond:
        raise SpecError(msg)


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def read_preamble(buf: bytes) -> dict:
    _need(len(buf) >= 32, "file shorter than the 32-byte preamble")
    magic, version, flags, header_len, header_crc, reserved = PREAMBLE.unpack_from(buf, 0)
    if magic == b"\x00" * 8:
        raise IncompleteFile("first 8 bytes are zero: interrupted build")
    _need(magic == MAGIC, f"bad magic {magic!r}")
    # "2 (1: the earlier layout of section 7); a reader rejects any other version".
    _need(version in (1, 2), f"unsupported version {version}")
    # "0, or 1 in a pruned file (only with version 2); a reader rejects any other value"
    _need(flags == 0 or (flags == 1 and version == 2), f"unknown flags {flags}")
    _need(reserved == 0, "reserved is not 0")
    return dict(version=version, flags=flags, header_len=header_len,
                header_crc=header_crc, reserved=reserved)


def read_header(buf: bytes, pre: dict) -> dict:
    hl = pre["header_len"]
    _need(32 + hl <= len(buf), "header runs past the end of the file")
    hbytes = buf[32:32 + hl]
    _need(crc32(hbytes) == pre["header_crc"], "header CRC mismatch")
    try:
        header = msgpack.unpackb(hbytes, raw=False, strict_map_key=True)
    except Exception as e:  # noqa: BLE001
        raise SpecError(f"header is not msgpack: {e}") from e
    _need(isinstance(header, dict), "header is not a map")
    _need(all(isinstance(k, str) for k in header), "header keys must be strings")
    _need(header.get("format") == "ngramds", "format != 'ngramds'")
    for k in ("vocab_size", "num_tokens", "num_documents"):
        _need(_is_int(header.get(k)), f"{k} is not an int")
    V, N, D = header["vocab_size"], header["num_tokens"], header["num_documents"]
    _need(1 <= V <= 2**32 - 1, "vocab_size out of range")
    _need(N >= 1, "num_tokens < 1")
    _need(D >= 1, "num_documents < 1")
    want_tok = "<u2" if V <= 65536 else "<u4"
    _need(header.get("token_dtype") == want_tok, f"token_dtype must be {want_tok}")
    _need(isinstance(header.get("tables"), list) and header["tables"], "tables missing")
    for t in header["tables"]:
        _need(isinstance(t, dict), "tables entry is not a map")
        _need(_is_int(t.get("order")) and 1 <= t["order"] <= 16, "bad order")
        _need("top_k" in t and (t["top_k"] is None or _is_int(t["top_k"])), "bad top_k")
        _need(_is_int(t.get("num_contexts")) and t["num_contexts"] >= 0, "bad num_contexts")
        _need(_is_int(t.get("num_entries")) and t["num_entries"] >= 0, "bad num_entries")
        _need(_is_int(t.get("min_count", 1)) and t.get("min_count", 1) >= 1, "bad min_count")
    _need(isinstance(header.get("build", {}), dict), "build is not a map")
    _need(isinstance(header.get("sections"), list), "sections missing")
    return header


def read_sections(buf: bytes, pre: dict, header: dict) -> dict:
    """Validate the section table and return {name: ndarray} (data CRC-checked)."""
    start_min = 32 + pre["header_len"]
    spans = []
    arrays = {}
    for s in header["sections"]:
        _need(isinstance(s, dict), "sections entry is not a map")
        name, off, length = s.get("name"), s.get("offset"), s.get("length")
        dtype, shape, crc = s.get("dtype"), s.get("shape"), s.get("crc32")
        _need(isinstance(name, str), "section name is not a str")
        _need(name not in arrays, f"duplicate section {name}")
        _need(_is_int(off) and _is_int(length) and _is_int(crc), f"{name}: bad ints")
        _need(dtype in UNSIGNED, f"{name}: dtype {dtype!r} not allowed")
        _need(isinstance(shape, list) and all(_is_int(x) and x >= 0 for x in shape),
              f"{name}: bad shape")
        _need(off % ALIGN == 0, f"{name}: offset {off} not a multiple of 64")
        _need(off >= start_min, f"{name}: offset {off} inside preamble/header")
        _need(length >= 0 and off + length <= len(buf), f"{name}: runs past end of file")
        item = UNSIGNED[dtype].itemsize
        _need(length == math.prod(shape) * item, f"{name}: length != prod(shape)*itemsize")
        raw = buf[off:off + length]
        _need(crc32(raw) == crc, f"{name}: CRC mismatch")
        spans.append((off, off + length, name))
        arrays[name] = np.frombuffer(raw, dtype=UNSIGNED[dtype]).reshape(shape)
    # "Sections never overlap." Intervals are taken as half-open [offset, offset+length), so a
    # zero-length section overlaps nothing (the spec does not say; see report).
    nonempty = sorted(sp for sp in spans if sp[1] > sp[0])
    for (a0, a1, an), (b0, b1, bn) in zip(nonempty, nonempty[1:]):
        _need(a1 <= b0, f"sections {an} and {bn} overlap")
    return arrays


def _check_offsets(a, count, what):
    _need(a.ndim == 1 and a.size >= 1, f"{what}: empty")
    _need(int(a[0]) == 0, f"{what}[0] != 0")
    _need(int(a[-1]) == count, f"{what}[-1] != {count}")
    _need(bool(np.all(np.diff(a.astype(np.int64)) >= 0)), f"{what} not non-decreasing")


def _expect(arrays, sections_by_name, name, shape, dtypes):
    _need(name in arrays, f"missing section {name}")
    a = arrays[name]
    _need(list(a.shape) == list(shape), f"{name}: shape {list(a.shape)} != {list(shape)}")
    _need(sections_by_name[name]["dtype"] in dtypes,
          f"{name}: dtype {sections_by_name[name]['dtype']} not in {dtypes}")
    return a.astype(np.int64)


def read_file(path) -> dict:
    """Parse and fully verify an ngramds file per FORMAT.md. Returns a plain dict."""
    with open(path, "rb") as f:
        buf = f.read()
    pre = read_preamble(buf)
    header = read_header(buf, pre)
    arrays = read_sections(buf, pre, header)
    by_name = {s["name"]: s for s in header["sections"]}
    _need(max(s["offset"] + s["length"] for s in header["sections"]) == len(buf),
          "bytes after the last section (invariant 14)")                  # FORMAT.md 1
    V, N, D = header["vocab_size"], header["num_tokens"], header["num_documents"]
    tok = header["token_dtype"]

    out = dict(buf=buf, preamble=pre, header=header, raw=arrays, V=V, N=N, D=D, tables={})
    out["tokens"] = _expect(arrays, by_name, "tokens", [N], (tok,))
    out["doc_offsets"] = _expect(arrays, by_name, "doc_offsets", [D + 1], MIN_DTYPES)
    _check_offsets(out["doc_offsets"], N, "doc_offsets")                   # inv. 2
    _need(bool(np.all(out["tokens"] < V)), "tokens hold ids >= V")        # inv. 3
    out["prompt_lengths"] = None                                            # optional section
    if "prompt_lengths" in arrays:
        pl = _expect(arrays, by_name, "prompt_lengths", [D], MIN_DTYPES)
        _need(bool(np.all(pl <= np.diff(out["doc_offsets"]))),              # inv. 9
              "a prompt length exceeds its document's length")
        out["prompt_lengths"] = pl

    tables = header["tables"]
    orders = [t["order"] for t in tables]
    _need(orders == sorted(set(orders)), "tables not in ascending order")  # FORMAT.md 3
    # FORMAT.md 4, "Pruned files": thresholds 1 for the lowest order, non-decreasing, the
    # flag set exactly when one is > 1; global ids from the highest table down
    mins = [t.get("min_count", 1) for t in tables]
    _need(mins[0] == 1 and mins == sorted(mins), "min_count not 1 then non-decreasing")
    pruned = pre["flags"] == 1
    _need(pruned == any(x > 1 for x in mins), "flag and min_count disagree")
    base, bases = 0, {}
    for t in tables[::-1]:
        bases[t["order"]] = base
        base += t["num_contexts"]
    out["pruned"], out["bases"] = pruned, bases
    links = {}
    for i, t in enumerate(tables):
        n = t["order"]
        m = n - 1
        C, E, K = t["num_contexts"], t["num_entries"], t["top_k"]
        X = f"order{n}/"
        clo = _expect(arrays, by_name, X + "context_length_offsets", [m + 2], ("<u8",))
        ctx = _expect(arrays, by_name, X + "context_tokens", [C, m], (tok,))
        eo = _expect(arrays, by_name, X + "entry_offsets", [C + 1], MIN_DTYPES)
        nxt = _expect(arrays, by_name, X + "next_ids", [E], (tok,))
        cnt = _expect(arrays, by_name, X + "counts", [E], MIN_DTYPES)
        tot = _expect(arrays, by_name, X + "totals", [C], MIN_DTYPES)
        # FORMAT.md 4: version 2 has position ids in the highest table only, and a link per
        # context in every table but the lowest; version 1 (section 7): ids in every table
        top = i == len(tables) - 1
        compact = pre["version"] == 2 and top and X + "position_contexts" not in by_name
        pc = _expect(arrays, by_name, X + "position_contexts", [N], MIN_DTYPES) \
            if pre["version"] == 1 or (top and not compact) else None
        if pre["version"] == 2 and i > 0:
            low = tables[i - 1]
            links[n] = _expect(arrays, by_name, X + "lower_contexts", [C], MIN_DTYPES)
            _need(bool(np.all(links[n] < low["num_contexts"])),            # inv. 3
                  "lower_contexts hold ids >= C'")
        # Invariant 2: offsets sections
        _check_offsets(clo, C, X + "context_length_offsets")
        _check_offsets(eo, E, X + "entry_offsets")
        # Invariant 3: ids in range
        _need(bool(np.all(nxt < V)), "next_ids hold ids >= V")
        _need(bool(np.all(ctx < V)), "context_tokens hold ids >= V")
        _need(pc is None or bool(np.all(pc < (base if pruned else C))),
              "position_contexts hold ids >= C (pruned: the sum of the C)")
        # context_tokens: rows of length l are l tokens followed by m-l zeros
        for l in range(m + 1):
            rows = ctx[clo[l]:clo[l + 1]]
            _need(bool(np.all(rows[:, l:] == 0)), f"context rows of length {l} not zero-padded")
        # Context order: ascending (length, t_1..t_l), strictly (contexts are distinct)
        keys = [(l, tuple(int(x) for x in ctx[c, :l]))
                for l in range(m + 1) for c in range(clo[l], clo[l + 1])]
        _need(all(a < b for a, b in zip(keys, keys[1:])), "contexts not strictly ascending")
        # Invariant 4 + entry order
        for c in range(C):
            cs, ids = cnt[eo[c]:eo[c + 1]], nxt[eo[c]:eo[c + 1]]
            _need(bool(np.all(cs >= 1)), f"context {c}: count < 1")
            pairs = list(zip((-cs).tolist(), ids.tolist()))
            _need(all(a < b for a, b in zip(pairs, pairs[1:])),
                  f"context {c}: entries not sorted by count desc, id asc (or duplicate id)")
            if K is None:
                _need(int(cs.sum()) == int(tot[c]), f"context {c}: sum(counts) != total")
            else:
                _need(int(cs.sum()) <= int(tot[c]), f"context {c}: sum(counts) > total")
                _need(len(cs) <= K, f"context {c}: more than K entries")
        _need(int(tot.sum()) == N if mins[i] == 1 else int(tot.sum()) <= N,
              "sum of totals != N")
        _need(bool(np.all(tot >= mins[i])), "a stored total below min_count")   # inv. 15
        out["tables"][n] = dict(m=m, C=C, E=E, K=K, min_count=mins[i], clo=clo, ctx=ctx, eo=eo, next_ids=nxt,
                                counts=cnt, totals=tot, position_contexts=pc,
                                lower_contexts=links.get(n))
    # FORMAT.md 4, "Compact files": the highest table's contexts found from the tokens
    top = out["tables"][orders[-1]]
    if pruned:
        _pruned_positions(out, orders)
    elif top["position_contexts"] is None:
        docs = out["doc_offsets"].tolist()
        found = []
        for p in range(N):
            s = max(o for o in docs if o <= p)
            c = lookup(top, out["tokens"][p - min(top["m"], p - s):p].tolist())
            _need(c is not None, f"position {p}: its context is not a row (invariant 11)")
            found.append(c)
        top["position_contexts"] = np.array(found, np.int64)
        # FORMAT.md 4, "Compact files": prefix_offsets when the next lower order is stored
        below = orders[-2] if len(orders) > 1 else None
        name = f"order{orders[-1]}/prefix_offsets"
        if below == orders[-1] - 1 and name in by_name:  # optional (written from 0.2.1)
            low = out["tables"][below]
            po = _expect(arrays, by_name, name, [low["C"] + 1], MIN_DTYPES)
            _need(int(po[0]) == int(top["clo"][1]) and int(po[-1]) == top["C"] and
                  bool(np.all(np.diff(po.astype(np.int64)) >= 0)), "prefix_offsets not sorted")
            for c in range(int(top["clo"][1]), top["C"]):  # invariant 12
                length = next(l for l in range(top["m"] + 1) if top["clo"][l + 1] > c)
                prefix = lookup(low, top["ctx"][c, :length - 1].tolist())
                _need(prefix is not None and po[prefix] <= c < po[prefix + 1],
                      f"context {c} is not among the extensions of its prefix (invariant 12)")
        elif name in by_name:
            _need(below == orders[-1] - 1, "prefix_offsets without the next lower order")
    # FORMAT.md 6: a lower table's position contexts follow the links down from the highest
    for high, low in zip(orders[::-1], orders[-2::-1]):
        h, lo = out["tables"][high], out["tables"][low]
        if lo["position_contexts"] is None and not pruned:
            lo["position_contexts"] = h["lower_contexts"][h["position_contexts"]]
        if h["lower_contexts"] is not None:  # invariant 10 (a reader may check it)
            for c in range(h["C"]):
                length = next(l for l in range(h["m"] + 1) if h["clo"][l + 1] > c)
                tokens = h["ctx"][c, :length].tolist()
                tail = tokens[len(tokens) - min(length, lo["m"]):]
                _need(lookup(lo, tail) == h["lower_contexts"][c],
                      f"order{high}/lower_contexts[{c}] is not its context's lower context")
    return out


def _pruned_positions(out: dict, orders: list) -> None:
    """FORMAT.md 4, "Pruned files": every table's context id of every position (-1 where it is
    pruned), from the global ids (or, in a compact file, the search from the highest table
    down), then down the links from the deepest stored table."""
    top = out["tables"][orders[-1]]
    N, docs = out["N"], out["doc_offsets"].tolist()
    g = top["position_contexts"]
    if g is None:  # compact: search the highest table, then the next lower one, ...
        g = []
        for p in range(N):
            s = max(o for o in docs if o <= p)
            for n in orders[::-1]:
                t = out["tables"][n]
                c = lookup(t, out["tokens"][p - min(t["m"], p - s):p].tolist())
                if c is not None:
                    g.append(out["bases"][n] + c)
                    break
            _need(len(g) == p + 1, f"position {p}: its context is in no table")
    ids = {n: [-1] * N for n in orders}
    for p, gp in enumerate(int(x) for x in g):
        n = next(n for n in orders[::-1] if out["bases"][n] <= gp <
                 out["bases"][n] + out["tables"][n]["C"])
        c = gp - out["bases"][n]
        ids[n][p] = c
        for low in [o for o in orders[::-1] if o < n]:
            c = int(out["tables"][n]["lower_contexts"][c])
            n = low
            ids[n][p] = c
    for n in orders:
        out["tables"][n]["position_contexts"] = np.array(ids[n], np.int64)


def lookup(table: dict, context) -> int | None:
    """FORMAT.md 6: binary search rows [clo[l], clo[l+1]) of context_tokens."""
    m = table["m"]
    l = len(context)
    if l > m:
        return None
    row = tuple(int(x) for x in context) + (0,) * (m - l)
    lo, hi = int(table["clo"][l]), int(table["clo"][l + 1])
    ctx = table["ctx"]
    while lo < hi:
        mid = (lo + hi) // 2
        r = tuple(int(x) for x in ctx[mid])
        if r < row:
            lo = mid + 1
        elif r > row:
            hi = mid
        else:
            return mid
    return None


# ---------------------------------------------------------------------------------------------
# The recount (SEMANTICS.md), pure Python
# ---------------------------------------------------------------------------------------------

def recount(docs, order, top_k):
    m = order - 1
    counts = collections.defaultdict(collections.Counter)
    pos_ctx = []
    for doc in docs:
        doc = [int(x) for x in doc]
        for j, v in enumerate(doc):
            c = tuple(doc[max(0, j - m):j])         # min(j, m) tokens before, oldest first
            counts[c][v] += 1
            pos_ctx.append(c)
    contexts = sorted(counts, key=lambda c: (len(c), c))
    cid = {c: i for i, c in enumerate(contexts)}
    dists, totals, ndistinct = [], [], []
    for c in contexts:
        ent = sorted(counts[c].items(), key=lambda kv: (-kv[1], kv[0]))
        ndistinct.append(len(ent))
        totals.append(sum(counts[c].values()))
        dists.append(ent if top_k is None else ent[:top_k])
    return dict(contexts=contexts, dists=dists, totals=totals, ndistinct=ndistinct,
                position_contexts=[cid[c] for c in pos_ctx])


def min_dtype(value: int) -> str:
    for d in MIN_DTYPES:
        if value <= np.iinfo(UNSIGNED[d]).max:
            return d
    raise AssertionError(value)


# ---------------------------------------------------------------------------------------------
# Helpers to build files
# ---------------------------------------------------------------------------------------------

def build(tmp_path, docs, order, top_k=None, vocab_size=None, name="t.ngds", orders=None,
          compact=False):
    path = tmp_path / name
    if path.exists():
        path.unlink()
    docs = [np.asarray(d, dtype=np.int64) for d in docs]
    ngramds.build(docs, str(path), order=order, orders=orders, top_k=top_k,
                  vocab_size=vocab_size, progress=False, compact=compact)
    return path


def check_against_recount(f, docs, order, top_k, vocab_size):
    """Compare a parsed file against SEMANTICS.md computed from the documents."""
    docs = [[int(x) for x in d] for d in docs]
    flat = [x for d in docs for x in d]
    hdr = f["header"]
    V = vocab_size if vocab_size is not None else max(flat) + 1
    assert hdr["vocab_size"] == V
    assert hdr["num_tokens"] == len(flat)
    assert hdr["num_documents"] == len(docs)
    assert hdr["token_dtype"] == ("<u2" if V <= 65536 else "<u4")
    assert f["tokens"].tolist() == flat
    do = f["doc_offsets"]
    for d, doc in enumerate(docs):
        assert f["tokens"][do[d]:do[d + 1]].tolist() == doc

    t = [t for t in hdr["tables"] if t["order"] == order][0]
    assert t["top_k"] == top_k
    tab = f["tables"][order]
    m = order - 1
    ref = recount(docs, order, top_k)
    C = len(ref["contexts"])
    assert t["num_contexts"] == C
    assert t["num_entries"] == sum(len(d) for d in ref["dists"])
    # context_length_offsets
    for l in range(m + 1):
        assert tab["clo"][l] == sum(1 for c in ref["contexts"] if len(c) < l)
    # contexts, order, padding
    for c, ctx in enumerate(ref["contexts"]):
        row = tab["ctx"][c].tolist()
        assert row == list(ctx) + [0] * (m - len(ctx))
        assert lookup(tab, ctx) == c               # FORMAT.md 6
    # distributions, totals, top_k
    for c in range(C):
        s, e = tab["eo"][c], tab["eo"][c + 1]
        got = list(zip(tab["next_ids"][s:e].tolist(), tab["counts"][s:e].tolist()))
        assert got == ref["dists"][c], (c, ref["contexts"][c])
        assert tab["totals"][c] == ref["totals"][c]
        if top_k is not None:                       # invariant 5
            assert e - s == min(top_k, ref["ndistinct"][c])
    assert tab["position_contexts"].tolist() == ref["position_contexts"]
    # a context that cannot occur (id V) is not found by the binary search
    if m >= 1:
        assert lookup(tab, (V,)) is None


# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------

ORDERS = [1, 2, 3, 5]


@st.composite
def corpora(draw, big_vocab=False):
    if big_vocab:
        V = draw(st.sampled_from([65537, 70000, 1 << 20, 2**32 - 1]))
        # few distinct ids so that contexts repeat; include the extremes
        alphabet = draw(st.lists(st.sampled_from([0, 1, 65535, 65536, V - 1]),
                                 min_size=1, max_size=4, unique=True))
    else:
        V = draw(st.sampled_from([1, 2, 3, 5, 300, 65536]))
        top = min(V, 4)
        alphabet = list(range(top)) + ([V - 1] if V > top else [])
    tok = st.sampled_from(alphabet)
    docs = draw(st.lists(st.lists(tok, min_size=0, max_size=25), min_size=1, max_size=6))
    if not any(docs):
        docs[draw(st.integers(0, len(docs) - 1))] = draw(st.lists(tok, min_size=1, max_size=5))
    pass_vocab = draw(st.booleans()) or big_vocab or max(x for d in docs for x in d) + 1 != V
    return docs, (V if pass_vocab else None)


SETTINGS = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------

@SETTINGS
@given(data=corpora(), order=st.sampled_from(ORDERS),
       top_k=st.one_of(st.none(), st.integers(1, 4)))
def test_small_vocab_matches_recount(tmp_path, data, order, top_k):
    docs, V = data
    f = read_file(build(tmp_path, docs, order, top_k, V))
    check_against_recount(f, docs, order, top_k, V)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=corpora(big_vocab=True), order=st.sampled_from(ORDERS),
       top_k=st.one_of(st.none(), st.integers(1, 3)))
def test_big_vocab_matches_recount(tmp_path, data, order, top_k):
    docs, V = data
    f = read_file(build(tmp_path, docs, order, top_k, V))
    assert f["header"]["token_dtype"] == "<u4"
    check_against_recount(f, docs, order, top_k, V)


@SETTINGS
@given(data=corpora(), orders=st.lists(st.sampled_from(ORDERS), min_size=1, max_size=4,
                                       unique=True))
def test_several_orders_match_recount(tmp_path, data, orders):
    docs, V = data
    f = read_file(build(tmp_path, docs, None, None, V, orders=orders))
    assert [t["order"] for t in f["header"]["tables"]] == sorted(orders)  # ascending
    for order in orders:
        check_against_recount(f, docs, order, None, V)
    # writer conformance: only the highest table has position ids; links are *min* dtypes
    by = {s["name"]: s["dtype"] for s in f["header"]["sections"]}
    ordered = sorted(orders)
    assert [n for n in by if n.endswith("position_contexts")] == \
        [f"order{ordered[-1]}/position_contexts"]
    for low, high in zip(ordered, ordered[1:]):
        assert by[f"order{high}/lower_contexts"] == min_dtype(f["tables"][low]["C"] - 1)


@SETTINGS
@given(data=corpora(), orders=st.sampled_from([[1], [2, 3], [1, 3, 5], [2, 3, 4]]))
def test_compact_files_match_recount(tmp_path, data, orders):
    docs, V = data
    f = read_file(build(tmp_path, docs, None, None, V, orders=orders, compact=True))
    assert not [s for s in f["header"]["sections"] if s["name"].endswith("position_contexts")]
    for order in orders:
        check_against_recount(f, docs, order, None, V)


@pytest.mark.parametrize("V,dt", [(65535, "<u2"), (65536, "<u2"), (65537, "<u4")])
def test_token_dtype_boundary(tmp_path, V, dt):
    docs = [[0, V - 1, 0, V - 1], [], [V - 1]]
    f = read_file(build(tmp_path, docs, 2, None, V))
    assert f["header"]["token_dtype"] == dt
    by = {s["name"]: s["dtype"] for s in f["header"]["sections"]}
    for name in ("tokens", "order2/context_tokens", "order2/next_ids"):
        assert by[name] == dt
    check_against_recount(f, docs, 2, None, V)


@pytest.mark.parametrize("order", ORDERS)
def test_empty_documents(tmp_path, order):
    docs = [[], [1, 2, 1], [], [], [2, 2, 2, 1], []]
    f = read_file(build(tmp_path, docs, order, None, 3))
    assert f["D"] == 6
    assert f["doc_offsets"].tolist() == [0, 0, 3, 3, 3, 7, 7]
    check_against_recount(f, docs, order, None, 3)


def test_order1_every_position_has_empty_context(tmp_path):
    docs = [[3, 1, 3], [], [3, 0]]
    f = read_file(build(tmp_path, docs, 1, None, 4))
    tab = f["tables"][1]
    assert tab["C"] == 1 and tab["ctx"].shape == (1, 0)
    assert tab["clo"].tolist() == [0, 1]
    assert tab["position_contexts"].tolist() == [0] * 5
    assert list(zip(tab["next_ids"].tolist(), tab["counts"].tolist())) == [(3, 3), (0, 1), (1, 1)]


def test_context_lengths_are_distinct_contexts(tmp_path):
    # The length-1 context (0,) at a document start differs from length-2 (0, 0) etc.,
    # even though their zero-padded rows are equal.
    docs = [[0, 0, 0, 0]]
    f = read_file(build(tmp_path, docs, 3, None, 1))
    tab = f["tables"][3]
    assert tab["clo"].tolist() == [0, 1, 2, 3]
    assert tab["ctx"].tolist() == [[0, 0], [0, 0], [0, 0]]
    assert tab["position_contexts"].tolist() == [0, 1, 2, 2]
    assert tab["totals"].tolist() == [1, 1, 2]
    check_against_recount(f, docs, 3, None, 1)


def test_top_k_truncation_and_exact_totals(tmp_path):
    docs = [[0, 1, 0, 2, 0, 2, 0, 3, 0, 3, 0, 3, 0, 1]]
    f = read_file(build(tmp_path, docs, 2, 2, 4))
    tab = f["tables"][2]
    c = lookup(tab, (0,))
    s, e = tab["eo"][c], tab["eo"][c + 1]
    assert list(zip(tab["next_ids"][s:e].tolist(), tab["counts"][s:e].tolist())) == [(3, 3),
                                                                                      (1, 2)]
    assert tab["totals"][c] == 7                         # exact, not the stored sum 5
    check_against_recount(f, docs, 2, 2, 4)


# --- preamble / header / section-table checks -------------------------------------------------

@pytest.mark.parametrize("order", ORDERS)
def test_preamble_header_and_sections(tmp_path, order):
    docs = [[1, 2, 3, 1, 2, 3, 4], [], [4, 4, 4, 4, 4, 1]]
    path = build(tmp_path, docs, order, None, 5)
    buf = path.read_bytes()
    magic, version, flags, header_len, header_crc, reserved = PREAMBLE.unpack_from(buf, 0)
    assert magic == MAGIC
    assert version == 2
    assert flags == 0
    assert reserved == 0
    assert crc32(buf[32:32 + header_len]) == header_crc
    f = read_file(path)
    secs = f["header"]["sections"]
    expected = {"tokens", "doc_offsets"} | {
        f"order{order}/{n}" for n in ("context_length_offsets", "context_tokens",
                                      "entry_offsets", "next_ids", "counts", "totals",
                                      "position_contexts")}
    assert {s["name"] for s in secs} == expected
    for s in secs:
        assert s["offset"] % 64 == 0
        assert s["offset"] >= 32 + header_len
        assert s["offset"] + s["length"] <= len(buf)
        assert crc32(buf[s["offset"]:s["offset"] + s["length"]]) == s["crc32"]
    build_map = f["header"]["build"]
    assert isinstance(build_map, dict)


@pytest.mark.parametrize("order", ORDERS)
def test_writer_layout_statements(tmp_path, order):
    """Writer conformance to descriptive statements that a reader must NOT rely on:
    "bytes between sections are padding (zero when written by ngramds)" and
    "The file ends at the end of its last section"."""
    docs = [[1, 2, 3, 1, 2, 3, 4], [], [4, 4, 4, 4, 4, 1]]
    path = build(tmp_path, docs, order, None, 5)
    buf = path.read_bytes()
    header_len = PREAMBLE.unpack_from(buf, 0)[3]
    secs = sorted(msgpack.unpackb(buf[32:32 + header_len])["sections"],
                  key=lambda s: (s["offset"], s["length"]))
    assert max(s["offset"] + s["length"] for s in secs) == len(buf)
    covered = np.zeros(len(buf), dtype=bool)
    covered[:32 + header_len] = True
    for s in secs:
        covered[s["offset"]:s["offset"] + s["length"]] = True
    gaps = np.frombuffer(buf, dtype=np.uint8)[~covered]
    assert np.all(gaps == 0), "padding bytes are not zero"


def _min_dtype_expectations(f):
    """FORMAT.md 4, *min* dtypes, read literally: smallest type holding the stated value."""
    (n, tab), = f["tables"].items()
    X = f"order{n}/"
    return {
        "doc_offsets": min_dtype(f["N"]),                                      # holds N
        X + "entry_offsets": min_dtype(tab["E"]),                             # holds E
        X + "counts": min_dtype(int(tab["counts"].max()) if tab["E"] else 0),  # max count
        X + "totals": min_dtype(int(tab["totals"].max())),                    # max total
        X + "position_contexts": min_dtype(tab["C"] - 1),                     # holds C-1
    }


@pytest.mark.parametrize("reps", [1, 255, 256, 300, 70000])
def test_writer_min_dtypes(tmp_path, reps):
    """Writer conformance for *min* dtypes (a reader accepts any of the four)."""
    docs = [[7] * reps, [], [1, 2]]
    f = read_file(build(tmp_path, docs, 1, None, 8))
    by = {s["name"]: s["dtype"] for s in f["header"]["sections"]}
    for name, dt in _min_dtype_expectations(f).items():
        assert by[name] == dt, (name, by[name], dt)


@SETTINGS
@given(data=corpora(), order=st.sampled_from(ORDERS),
       top_k=st.one_of(st.none(), st.integers(1, 4)))
def test_writer_min_dtypes_random(tmp_path, data, order, top_k):
    docs, V = data
    f = read_file(build(tmp_path, docs, order, top_k, V))
    by = {s["name"]: s["dtype"] for s in f["header"]["sections"]}
    for name, dt in _min_dtype_expectations(f).items():
        assert by[name] == dt, (name, by[name], dt)


def test_many_contexts_position_contexts_dtype(tmp_path):
    # > 256 contexts forces position_contexts (holds C-1) beyond <u1
    rng = np.random.default_rng(0)
    docs = [rng.integers(0, 40, size=2000).tolist()]
    f = read_file(build(tmp_path, docs, 3, None, 40))
    assert f["tables"][3]["C"] > 256
    by = {s["name"]: s["dtype"] for s in f["header"]["sections"]}
    assert by["order3/position_contexts"] == min_dtype(f["tables"][3]["C"] - 1)
    check_against_recount(f, docs, 3, None, 40)


# --- rejection ----------------------------------------------------------------------------

def test_incomplete_marker_rejected(tmp_path):
    path = build(tmp_path, [[1, 2, 3], [], [3, 2]], 3, None, 4)
    read_file(path)                                   # the original is fine
    bad = tmp_path / "incomplete.ngds"
    buf = bytearray(path.read_bytes())
    buf[:8] = b"\x00" * 8
    bad.write_bytes(bytes(buf))
    with pytest.raises(IncompleteFile):
        read_file(bad)


@pytest.mark.parametrize("version", [0, 3])
def test_other_versions_rejected(tmp_path, version):
    path = build(tmp_path, [[1, 2, 3]], 2, None, 4)
    buf = bytearray(path.read_bytes())
    struct.pack_into("<I", buf, 8, version)
    bad = tmp_path / "v.ngds"
    bad.write_bytes(bytes(buf))
    with pytest.raises(SpecError, match="version"):
        read_file(bad)


@pytest.mark.parametrize("name,orders", [("v1_orders2-4", [2, 3, 4]),
                                         ("v1_orders1-2-4", [1, 2, 4])])
def test_version_1_files_match_recount(name, orders):
    """FORMAT.md 7: files written by ngramds 0.1 (tests/data) still read."""
    from pathlib import Path
    rng = np.random.default_rng(1)  # the documents of tests/data (see test_format_v2.py)
    docs = [rng.integers(0, 40, n).tolist() for n in (300, 3, 0, 120, 1)]
    docs[0] = (docs[0][:60] * 5)[:300]
    f = read_file(Path(__file__).resolve().parent.parent / "data" / f"{name}.ngds")
    assert f["preamble"]["version"] == 1
    for order in orders:
        check_against_recount(f, docs, order, None, 50)


def test_corruption_detected_in_header_and_every_section(tmp_path):
    path = build(tmp_path, [[1, 2, 3, 1, 2], [], [3, 3]], 3, 2, 4)
    buf = path.read_bytes()
    header_len = PREAMBLE.unpack_from(buf, 0)[3]
    targets = [32 + header_len // 2]
    for s in msgpack.unpackb(buf[32:32 + header_len])["sections"]:
        if s["length"]:
            targets.append(s["offset"] + s["length"] - 1)
    for i, pos in enumerate(targets):
        b = bytearray(buf)
        b[pos] ^= 0x01
        bad = tmp_path / f"corrupt{i}.ngds"
        bad.write_bytes(bytes(b))
        with pytest.raises(SpecError, match="CRC"):
            read_file(bad)


def test_truncated_file_rejected(tmp_path):
    path = build(tmp_path, [[1, 2, 3, 1, 2], [3, 3]], 2, None, 4)
    buf = path.read_bytes()
    bad = tmp_path / "trunc.ngds"
    bad.write_bytes(buf[:-1])
    with pytest.raises(SpecError, match="past end"):
        read_file(bad)


def test_bytes_after_the_last_section_rejected(tmp_path):
    path = build(tmp_path, [[1, 2, 3, 1, 2], [3, 3]], 2, None, 4)
    bad = tmp_path / "appended.ngds"
    bad.write_bytes(path.read_bytes() + b"\n")
    with pytest.raises(SpecError, match="after the last section"):
        read_file(bad)


def test_unknown_keys_and_sections_ignored(tmp_path):
    """Forward compatibility: rewrite the header with an unknown key and an unknown section."""
    path = build(tmp_path, [[1, 2, 3, 1, 2], [], [3, 3]], 2, None, 4)
    buf = path.read_bytes()
    header_len = PREAMBLE.unpack_from(buf, 0)[3]
    header = msgpack.unpackb(buf[32:32 + header_len])
    header["future_key"] = {"x": 1}
    header["tables"][0]["future"] = True
    end = len(buf)
    extra_off = (end + 63) // 64 * 64
    payload = b"\x01\x02\x03"
    header["sections"].append(dict(name="future/thing", offset=extra_off, length=3,
                                   dtype="<u1", shape=[3], crc32=crc32(payload), extra=1))
    hb = msgpack.packb(header, use_bin_type=True)
    first = min(s["offset"] for s in header["sections"])
    assert 32 + len(hb) <= first, "rewritten header does not fit before the first section"
    out = bytearray(buf)
    out[32:32 + len(hb)] = hb
    out[32 + len(hb):first] = b"\x00" * (first - 32 - len(hb))
    struct.pack_into("<Q", out, 16, len(hb))
    struct.pack_into("<I", out, 24, crc32(hb))
    out += b"\x00" * (extra_off - end) + payload
    bad = tmp_path / "future.ngds"
    bad.write_bytes(bytes(out))
    f = read_file(bad)
    check_against_recount(f, [[1, 2, 3, 1, 2], [], [3, 3]], 2, None, 4)


def test_prompt_lengths_section(tmp_path):
    """FORMAT.md 4: the optional `prompt_lengths` section, [D], min dtype (holds the largest
    prompt length), each at most its document's length; absent when not built with it."""
    docs = [[1, 2, 3, 1], [], [4, 4, 1], [2] * 300]
    tokens = np.concatenate([np.asarray(d, np.int64) for d in docs])
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])])
    lengths = np.array([2, 0, 3, 260])
    path = tmp_path / "p.ngds"
    ngramds.build(ngramds.Corpus(tokens, offsets, prompt_lengths=lengths), path, order=2,
                  progress=False)
    f = read_file(path)
    assert f["prompt_lengths"].tolist() == lengths.tolist()
    section = next(s for s in f["header"]["sections"] if s["name"] == "prompt_lengths")
    assert section["dtype"] == min_dtype(260) == "<u2"                # writer conformance
    assert read_file(build(tmp_path, docs, 2, name="q.ngds"))["prompt_lengths"] is None


# ---------------------------------------------------------------------------------------------
# Pruned files (FORMAT.md 4, "Pruned files")
# ---------------------------------------------------------------------------------------------

@SETTINGS
@given(data=corpora(), orders=st.sampled_from([[1, 2], [2, 3], [1, 3, 5], [2, 3, 4]]),
       spec=st.integers(2, 3), compact=st.booleans())
def test_pruned_files_match_the_pruned_recount(tmp_path, data, orders, spec, compact):
    docs, V = data
    path = tmp_path / "p.ngds"
    try:
        ngramds.build([np.asarray(d, np.int64) for d in docs], str(path), orders=orders,
                      vocab_size=V, progress=False, compact=compact, min_count=spec)
    except ngramds.InputError:
        return  # every context of an order below the threshold
    f = read_file(path)
    assert f["pruned"] and f["preamble"]["flags"] == 1
    for n in orders:
        want = 1 if n == orders[0] else spec
        ref = recount(docs, n, None)
        kept = [c for c, t in zip(ref["contexts"], ref["totals"]) if t >= want]
        tab = f["tables"][n]
        assert tab["min_count"] == want and tab["C"] == len(kept)
        rows = [tuple(int(x) for x in tab["ctx"][c, :len(k)]) for c, k in enumerate(kept)]
        assert rows == kept
        new_id = {c: i for i, c in enumerate(kept)}
        expect = [new_id.get(ref["contexts"][c], -1) for c in ref["position_contexts"]]
        assert tab["position_contexts"].tolist() == expect
        for i, c in enumerate(kept):
            j = ref["contexts"].index(c)
            lo, hi = tab["eo"][i], tab["eo"][i + 1]
            assert list(zip(tab["next_ids"][lo:hi].tolist(), tab["counts"][lo:hi].tolist())) \
                == ref["dists"][j] and tab["totals"][i] == ref["totals"][j]
