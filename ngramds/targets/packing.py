"""Document-aligned samples (spec/TARGETS.md, "Document-aligned samples"): documents cut into
pieces of at most L tokens, packed whole into samples in corpus order, and the compiled fill
of a batch of them. Torch-free."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from ..errors import FormatError, InputError
from .kernels import BAD_SAMPLE, BAD_TOKEN, OK, check

IGNORE_INDEX = -100  # the label of positions not predicted (PyTorch's ignore_index)
PAD_ID = 0  # input id of padding positions (never attended to by a causal model's tokens)


class Packing(NamedTuple):
    """Pieces (token stream start, length) and sample k = pieces [first[k], first[k+1])."""

    starts: np.ndarray   # int64 [P]
    lengths: np.ndarray  # int64 [P]
    first: np.ndarray    # int64 [S+1]

    @property
    def num_samples(self) -> int:
        return self.first.size - 1


def pack_documents(doc_offsets: np.ndarray, seq_len: int) -> Packing:
    """Pieces and samples of documents ``doc_offsets`` (the file's) for samples of ``seq_len``
    tokens: a document of n >= 2 tokens gives ceil((n-1)/(L-1)) pieces, piece j its tokens
    [j(L-1), min(n, j(L-1)+L)) (consecutive pieces share one token, so each label token is in
    exactly one piece with a token before it); documents of fewer than 2 tokens give none.
    Pieces go into samples in corpus order, next-fit: a piece that does not fit in the room
    left in the current sample starts the next one."""
    if seq_len < 2:
        raise InputError(f"sampling='documents' needs seq_len >= 2 (a token and its label), "
                         f"got {seq_len}")
    off = np.asarray(doc_offsets, dtype=np.int64)
    n = np.diff(off)
    if n.size and int(n.min()) < 0:
        raise FormatError("document offsets are not sorted; the file is damaged (run "
                          "`ngramds verify`)")
    step = seq_len - 1
    m = np.where(n >= 2, (n - 2) // step + 1, 0)
    total = int(m.sum())
    if total == 0:
        raise InputError("sampling='documents' needs a document of at least 2 tokens; the "
                         "file has none")
    doc = np.repeat(np.arange(n.size, dtype=np.int64), m)
    j = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(m) - m, m)
    starts = off[doc] + j * step
    lengths = np.minimum(seq_len, n[doc] - j * step)
    first = np.empty(total + 1, np.int64)
    count = _next_fit(lengths, seq_len, first)
    return Packing(starts, lengths, first[:count + 1].copy())


@njit(cache=True)
def _next_fit(lengths, capacity, first):
    """first[s] <- the first piece of sample s; returns the number of samples."""
    s, used = 0, capacity
    for j in range(lengths.shape[0]):
        if used + lengths[j] > capacity:
            first[s] = j
            s += 1
            used = 0
        used += lengths[j]
    first[s] = lengths.shape[0]
    return s


@njit(cache=True, nogil=True)
def fill_packed(tokens, vocab_size, starts, lengths, first, samples, input_ids, labels,
                positions, position_ids):
    """Row b of the [B, L] outputs <- sample samples[b]: its pieces back to back, then padding
    (input PAD_ID, label IGNORE_INDEX, position -1, position ids counting from 0 again).
    Labels follow their token within a piece (the last token of a piece has IGNORE_INDEX);
    positions hold each label's token position (-1 where there is none)."""
    n_tok, seq_len = tokens.shape[0], input_ids.shape[1]
    for b in range(samples.shape[0]):
        k = samples[b]
        if k < 0 or k + 1 >= first.shape[0]:
            return BAD_SAMPLE
        o = 0
        for j in range(first[k], first[k + 1]):
            a, n = starts[j], lengths[j]
            if a < 0 or n < 2 or a + n > n_tok or o + n > seq_len:
                return BAD_SAMPLE
            for i in range(n):
                t = np.int64(tokens[a + i])
                if t >= vocab_size:
                    return BAD_TOKEN
                input_ids[b, o + i] = t
                position_ids[b, o + i] = i
                if i > 0:
                    labels[b, o + i - 1] = t
                    positions[b, o + i - 1] = a + i
            labels[b, o + n - 1] = IGNORE_INDEX
            positions[b, o + n - 1] = -1
            o += n
        for i in range(o, seq_len):
            input_ids[b, i] = PAD_ID
            labels[b, i] = IGNORE_INDEX
            positions[b, i] = -1
            position_ids[b, i] = i - o
    return OK


def in_prompt(doc_offsets: np.ndarray, prompt_lengths: np.ndarray,
              positions: np.ndarray) -> np.ndarray:
    """bool, the shape of ``positions`` (token positions in 0..N-1): the token there is one of
    its document's first prompt_lengths[d] tokens."""
    flat = np.asarray(positions, dtype=np.int64).reshape(-1)
    d = np.searchsorted(doc_offsets, flat.astype(doc_offsets.dtype), side="right") - 1
    d = np.clip(d, 0, prompt_lengths.size - 1)
    inside = flat - doc_offsets[d].astype(np.int64) < prompt_lengths[d].astype(np.int64)
    return inside.reshape(np.shape(positions))


def hide_window_prompts(f, starts: np.ndarray, seq_len: int, labels: np.ndarray,
                        target_ids: np.ndarray, target_probs: np.ndarray) -> np.ndarray:
    """Windows of the file ``f`` (with prompt lengths) starting at ``starts``: rows whose label
    is a prompt token get label -100 and soft targets (id 0) of probability 0, in place.
    Returns which tokens of each window (bool [B, L+1]) are prompt tokens."""
    window = np.asarray(starts, np.int64)[:, None] + np.arange(seq_len + 1)
    hidden = in_prompt(f.doc_offsets, f.prompt_lengths, window)
    rows = hidden[:, 1:]
    labels[rows] = IGNORE_INDEX
    target_ids[rows] = 0
    target_probs[rows] = 0.0
    return hidden


def packed_batch(targets, packing: Packing, samples: np.ndarray, seed: int, epoch: int,
                 out: list, mask_prompt: bool = False, threads: int = 1,
                 soft_weights: np.ndarray | None = None) -> np.ndarray:
    """Document-aligned samples ``samples`` of ``packing`` into ``out`` = [input_ids, labels,
    target_ids, target_probs] (the arrays of ``batch_shapes``; shifted layout): targets at
    every labelled position, id 0 and probability 0 elsewhere; with ``mask_prompt`` prompt
    tokens are no labels; ``soft_weights`` (float32 [B, L]): the soft-term weights of the
    labelled positions, 0 elsewhere. Returns the position ids (int64 [B, L])."""
    f = targets.file
    inputs, labels, ids, probs = out
    B, L = labels.shape
    positions, position_ids = np.empty((B, L), np.int64), np.empty((B, L), np.int64)
    code = fill_packed(f.tokens, f.vocab_size, packing.starts, packing.lengths, packing.first,
                       np.ascontiguousarray(samples, np.int64), inputs, labels, positions,
                       position_ids)
    check(code)
    width = ids.shape[-1]
    ids[:], probs[:] = 0, 0.0
    if mask_prompt:
        hidden = positions >= 0
        hidden[hidden] = in_prompt(f.doc_offsets, f.prompt_lengths, positions[hidden])
        labels[hidden], positions[hidden] = IGNORE_INDEX, -1
    live = np.flatnonzero(positions.reshape(-1) >= 0)
    got_weights = None
    if soft_weights is not None:
        soft_weights[:] = 0.0
        got_weights = np.empty(live.size, np.float32)
    if width and live.size:
        got_ids = np.empty((live.size, width), np.int64)
        got_probs = np.empty((live.size, width), np.float32)
        targets.compute_at(positions.reshape(-1)[live], labels.reshape(-1)[live], seed, epoch,
                           got_ids, got_probs, threads, soft_weights=got_weights)
        ids.reshape(-1, width)[live] = got_ids
        probs.reshape(-1, width)[live] = got_probs
        if got_weights is not None:
            soft_weights.reshape(-1)[live] = got_weights
    return position_ids
