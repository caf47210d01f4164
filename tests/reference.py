"""Plain-Python references, written from spec/SEMANTICS.md only."""
from collections import Counter, defaultdict


def contexts_of(docs, order):
    """Yield (context tuple, next token) for every position of every document."""
    m = order - 1
    for doc in docs:
        doc = [int(t) for t in doc]
        for j, tok in enumerate(doc):
            yield tuple(doc[max(0, j - m):j]), tok


def reference_table(docs, order, top_k=None):
    """{context: (sorted [(id, count)], total)} exactly as the spec defines it."""
    counts = defaultdict(Counter)
    for ctx, tok in contexts_of(docs, order):
        counts[ctx][tok] += 1
    table = {}
    for ctx, c in counts.items():
        entries = sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))
        table[ctx] = (entries[:top_k] if top_k else entries, sum(c.values()))
    return table


def context_sort_key(ctx):
    """Contexts are stored sorted by length, then lexicographically."""
    return (len(ctx), ctx)
