"""Plain-Python targets written from spec/TARGETS.md, using only NgramFile.distribution()."""
M64 = (1 << 64) - 1


def mix(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def context_at(f, p, order=None):
    """Context of position p (tokens of its document before it, at most order-1)."""
    import numpy as np
    order = order or f.order
    d = int(np.searchsorted(f.doc_offsets, p, side="right")) - 1
    start = max(int(f.doc_offsets[d]), p - (order - 1))
    return [int(t) for t in f.tokens[start:p]]


def reference_target(f, p, mode, r=8, max_k=None, seed=0, epoch=0, order=None,
                     label_free=False, weight=1.0, out=None):
    """{id: probability} of the target at position p (of ``order``, default the highest),
    added with ``weight`` to ``out``. ``label_free``: a lower order of a mixture."""
    order = order or f.order
    y = int(f.tokens[p])
    ctx = context_at(f, p, order)
    ids, counts = f.distribution(ctx, order=order)
    ids, counts = [int(i) for i in ids], [int(c) for c in counts]
    total = f.total(ctx, order=order)
    out = {} if out is None else out

    def add(i, pr):
        if pr:
            out[i] = out.get(i, 0.0) + weight * pr

    if mode == "allnts":
        m = len(ids) if max_k is None else min(len(ids), max_k)
        kept = sum(counts[:m])
        for i, c in zip(ids[:m], counts[:m]):
            add(i, c / kept)
        return out
    R = min(r, len(ids))
    S = sum(counts[:R])
    top = ids[:R]
    if mode == "renorm" and not label_free:
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
    if y not in top and not label_free:
        add(y, residual)
        return out
    tail = counts[R:]
    if not tail:
        add(y, residual)
        return out
    h = mix(seed ^ mix(epoch ^ mix(p)))
    if label_free:
        h = mix(h ^ order)
    u = h % sum(tail)
    run = 0
    for i, c in zip(ids[R:], tail):
        run += c
        if run > u:
            add(i, residual)
            break
    return out


SPEC_ESCAPE = 10.0  # spec/TARGETS.md: witten-bell's default escape weight


def mixture_weights(f, p, orders, mixing, min_count=2, lambdas=None, escape=None):
    """{order: weight} at position p, from spec/TARGETS.md."""
    stats = {}
    for o in orders:
        ctx = context_at(f, p, o)
        stats[o] = (f.total(ctx, order=o), len(f.distribution(ctx, order=o)[0]))
    if mixing == "backoff":
        chosen = next((o for o in sorted(orders, reverse=True) if stats[o][0] >= min_count),
                      min(orders))
        return {o: float(o == chosen) for o in orders}
    if mixing == "fixed":
        return {o: lam / sum(lambdas) for o, lam in zip(orders, lambdas)}  # as given
    weights, rest = {}, 1.0
    escape = SPEC_ESCAPE if escape is None else escape
    for o in sorted(orders, reverse=True)[:-1]:
        total, distinct = stats[o]
        weights[o] = rest * total / (total + escape * distinct)
        rest *= escape * distinct / (total + escape * distinct)
    weights[min(orders)] = rest
    return weights


def reference_mixture(f, p, mode, orders, mixing, r=8, max_k=None, seed=0, epoch=0,
                      min_count=2, lambdas=None, escape=None):
    """{id: probability} of the mixed target at position p."""
    out = {}
    for o, w in mixture_weights(f, p, orders, mixing, min_count, lambdas, escape).items():
        if w:
            reference_target(f, p, mode, r, max_k, seed, epoch, order=o,
                             label_free=o != max(orders), weight=w, out=out)
    return out


def reference_soft_weight(f, p, orders, k):
    """The soft-term weight of position p (spec/TARGETS.md, "Soft-term weight"): T / (T + k)
    in float64, rounded to float32, T the total of p's context in the highest of ``orders``
    (the orders used): 0 where pruning left it out."""
    import numpy as np
    n = max(orders)
    total = f.total(context_at(f, p, n), order=n)
    return float(np.float32(float(total) / (float(total) + float(k))))
