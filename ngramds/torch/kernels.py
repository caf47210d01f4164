"""The torch mirror of :mod:`ngramds.targets.kernels`, function for function under the same
names: the tail draws' hash and words, the gather of each context's entries, the mixture
weights and one order's part (spec/TARGETS.md), as batched tensor ops on any device. 64-bit
integer arithmetic throughout: the tail draws are bit for bit the compiled kernels'. No
bounds checks: :class:`ngramds.torch.NgramTargets` checks the tables once when it places
them and each batch before it gets here."""
from __future__ import annotations

import torch

from ..hashing import GOLDEN, MUL1, MUL2, SHIFTS
from ..targets.kernels import ALLNTS, BACKOFF, KNESER_NEY, RENORM, WITTEN_BELL, Mixing


def _signed(x: int) -> int:
    """The int64 whose bits are the uint64 ``x``."""
    x = int(x) & ((1 << 64) - 1)
    return x - (1 << 64) if x >= 1 << 63 else x


def _srl(x: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 bits."""
    return (x >> s) & ((1 << (64 - s)) - 1)


_GOLDEN, _MUL1, _MUL2 = (_signed(c) for c in (GOLDEN, MUL1, MUL2))
_S1, _S2, _S3 = SHIFTS


def splitmix64(x: torch.Tensor) -> torch.Tensor:
    """:func:`ngramds.hashing.splitmix64` on int64 tensors holding uint64 bits (wrapping
    arithmetic)."""
    x = x + _GOLDEN
    x = (x ^ _srl(x, _S1)) * _MUL1
    x = (x ^ _srl(x, _S2)) * _MUL2
    return x ^ _srl(x, _S3)


def _umod(h: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """uint64(h) mod m for 0 < m < 2^62, without unsigned types."""
    return ((_srl(h, 1) % m) * 2 + (h & 1)) % m


def position_keys(seed: int, epochs: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """The tail draws' word of (``seed``, ``epochs[i]``, ``positions[i]``) per position, as
    int64 bits (:func:`ngramds.targets.kernels.position_key`)."""
    return splitmix64(_signed(seed) ^ splitmix64(epochs ^ splitmix64(positions)))


def gather(entry_offsets: torch.Tensor, totals: torch.Tensor,
           ctx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(los, his, tots) [N]: each context's entry range and total, as the compiled
    :func:`~ngramds.targets.kernels.gather` finds them (the step to the context itself,
    ``ctx = context_ids[index]``, is an ``index_select`` of the caller's); a context -1
    (pruned: unseen) gets (0, 0, 0)."""
    live, c = ctx >= 0, ctx.clamp_min(0)
    return (torch.where(live, entry_offsets[c], 0), torch.where(live, entry_offsets[c + 1], 0),
            torch.where(live, totals[c], 0))


def mix_weights(mixing: Mixing, los: list, his: list, tots: list, w: torch.Tensor) -> None:
    """w[j] <- the weight of order j (ascending) at each position under ``mixing``, whose
    contexts' entry ranges and totals are ``los[j]``, ``his[j]``, ``tots[j]`` (Kneser-Ney:
    the undiscounted totals); float64 ``w`` [k, N]. The formulas of the compiled
    :func:`~ngramds.targets.kernels.mix_weights`, with each position's loop batched."""
    k, method = w.shape[0], mixing.method
    if method == BACKOFF:
        chosen = torch.zeros_like(tots[0])
        for j in range(k - 1, -1, -1):  # the highest order seen min_count times, else 0
            chosen = torch.where((tots[j] >= mixing.min_count) & (chosen == 0), j + 1, chosen)
        chosen = (chosen - 1).clamp_min(0)
        for j in range(k):
            w[j] = chosen == j
    elif method == WITTEN_BELL or method == KNESER_NEY:
        rest = torch.ones(w.shape[1], dtype=torch.float64, device=w.device)
        for j in range(k - 1, 0, -1):
            t = tots[j].double()
            d = (his[j] - los[j]).double()
            if method == WITTEN_BELL:
                lam = torch.where(t > 0, t / (t + mixing.escape * d), 0.0)  # (pruned: unseen)
                w[j] = rest * lam
                rest = rest * (1.0 - lam)
            else:
                lam = float(mixing.discounts[j]) * d / t
                w[j] = rest * (1.0 - lam)
                rest = rest * lam
        w[0] = rest
    else:
        for j in range(k):
            w[j] = float(mixing.lambdas[j])
    for j in range(k - 1, 0, -1):  # an unseen order (T = 0: pruned) gives its weight down
        unseen = tots[j] == 0
        w[j - 1] += torch.where(unseen, w[j], 0.0)
        w[j] = torch.where(unseen, 0.0, w[j])


def fill_component(next_ids: torch.Tensor, cum: torch.Tensor, los: torch.Tensor,
                   his: torch.Tensor, tots: torch.Tensor, labels: torch.Tensor,
                   keys: torch.Tensor, w: torch.Tensor, mode: int, r: int, salt: int,
                   label_free: bool, complete: bool,
                   width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One order's target scaled by its weight ``w`` [N]: (ids [N, S], probs float64 [N, S]),
    S = ``width`` (AllNTs) or r + 1 (CoCoNTs), rows of weight 0 holding (label, 0) — what
    the compiled :func:`~ngramds.targets.kernels.fill_component` writes into its slots.
    ``cum``: the table's cumulative counts (cum[e] = counts[0] + ... + counts[e-1]);
    ``keys``: :func:`position_keys`, mixed with ``salt`` when ``label_free``."""
    ids, probs = _component(next_ids, cum, los, his, tots, labels, keys, w, mode, r, salt,
                            label_free, complete, width)
    live = (w != 0)[:, None]
    return torch.where(live, ids, labels[:, None]), torch.where(live, probs, 0.0)


def _component(next_ids, cum_counts, lo, hi, tot, labels, keys, weight, mode, r, salt,
               label_free, complete, width):
    n = labels.shape[0]
    span = width if mode == ALLNTS else r
    # one gather of the cumulative counts around each context's first span entries
    at = torch.minimum(lo[:, None] + torch.arange(span + 1, device=lo.device), hi[:, None])
    cum = cum_counts.index_select(0, at.reshape(-1)).view(n, span + 1)
    cnt = cum[:, 1:] - cum[:, :-1]  # 0 past the context's last entry
    inside = cnt > 0
    entry = torch.minimum(at[:, :-1], (hi - 1)[:, None]).clamp_min(0)  # (0: an unseen row)
    nid = next_ids.index_select(0, entry.reshape(-1)).view(n, span).long()
    nid = torch.where(inside, nid, labels[:, None])
    kept_mass = cum[:, -1] - cum[:, 0]
    if mode == ALLNTS:
        return nid, cnt * (weight / kept_mass)[:, None]
    label_in_top = (inside & (nid == labels[:, None])).any(1)
    if mode == RENORM and not label_free:
        probs = torch.where(label_in_top[:, None], cnt * (weight / kept_mass)[:, None], 0.0)
        residual = torch.where(label_in_top, 0.0, weight)
        ids = torch.where(label_in_top[:, None], nid, labels[:, None])
        return (torch.cat([ids, labels[:, None]], 1),
                torch.cat([probs, residual[:, None]], 1))
    inv = weight / tot
    residual = tot - kept_mass
    start = at[:, -1]
    tail_mass = residual if complete else cum_counts[hi] - cum_counts[start]
    draw = (residual > 0) & (tail_mass > 0) & (label_in_top | label_free)
    h = splitmix64(keys ^ salt) if label_free else keys
    u = _umod(h, tail_mass.clamp_min(1))
    k = torch.searchsorted(cum_counts, cum[:, -1] + u, right=True) - 1
    k = torch.minimum(torch.maximum(k, start), hi - 1).clamp_min(0)
    tail_id = torch.where(draw, next_ids[k].long(), labels)
    return (torch.cat([nid, tail_id[:, None]], 1),
            torch.cat([cnt * inv[:, None], (residual * inv)[:, None]], 1))


def soft_weights(tots: list, k: float) -> torch.Tensor:
    """float32 t / (t + k) per position, computed in float64, t the top order's total
    (``tots``: one [N] per order, ascending; 0 where pruning left the context out): the
    compiled :func:`~ngramds.targets.kernels.soft_weights`, bit for bit."""
    t = tots[-1].double()
    return (t / (t + k)).float()
