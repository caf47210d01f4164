"""Plain-Python targets written from spec/TARGETS.md, using only NgramFile.distribution()."""
M64 = (1 << 64) - 1


def mix(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def context_at(f, p):
    """Context of position p (tokens of its document before it, at most order-1)."""
    import numpy as np
    d = int(np.searchsorted(f.doc_offsets, p, side="right")) - 1
    start = max(int(f.doc_offsets[d]), p - (f.order - 1))
    return [int(t) for t in f.tokens[start:p]]


def reference_target(f, p, mode, r=8, max_k=None, seed=0, epoch=0):
    """{id: probability} of the target at position p."""
    y = int(f.tokens[p])
    ctx = context_at(f, p)
    ids, counts = f.distribution(ctx)
    ids, counts = [int(i) for i in ids], [int(c) for c in counts]
    total = f.total(ctx)
    out = {}

    def add(i, pr):
        if pr:
            out[i] = out.get(i, 0.0) + pr

    if mode == "allnts":
        m = len(ids) if max_k is None else min(len(ids), max_k)
        kept = sum(counts[:m])
        for i, c in zip(ids[:m], counts[:m]):
            add(i, c / kept)
        return out
    R = min(r, len(ids))
    S = sum(counts[:R])
    top = ids[:R]
    if mode == "renorm":
        if y in top:
            for i, c in zip(top, counts[:R]):
                add(i, c / S)
        else:
            add(y, 1.0)
        return out
    for i, c in zip(top, counts[:R]):
        add(i, c / total)
    if S == total:
        return out
    residual = (total - S) / total
    if y not in top:
        add(y, residual)
        return out
    tail = counts[R:]
    if not tail:
        add(y, residual)
        return out
    h = mix(seed ^ mix(epoch ^ mix(p)))
    u = h % sum(tail)
    run = 0
    for i, c in zip(ids[R:], tail):
        run += c
        if run > u:
            add(i, residual)
            break
    return out
