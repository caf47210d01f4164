"""Targets on the training device: the loader ships token windows and the highest order's
context ids (a slice of the file, no compute); :class:`NgramTargets` holds the tables once per
device, follows the links to the lower orders' contexts and turns a batch into exactly the
targets of spec/TARGETS.md with the batched torch kernels of :mod:`ngramds.torch.kernels`
(the tail draws bit for bit those of the compiled CPU kernels)."""
from __future__ import annotations

import os
import warnings
import weakref
from collections import deque
from collections.abc import Mapping

import numpy as np
import torch

from ..errors import FormatError, InputError
from ..file.reader import NgramFile, open_file
from ..targets import TargetConfig, Targets
from ..targets.compute import key_radix, kneser_ney, packed_keys
from ..targets.kernels import BAD_CONTEXT, ERRORS, ONEHOT, Mixing, mixing
from . import kernels
from .dataset import NgramDataset

__all__ = ["NgramTargets"]

class _Table:
    """One order's arrays on the device: what the targets read, nothing per position."""

    def __init__(self, table, device, kn=None):
        eo = np.asarray(table.entry_offsets, np.int64)
        counts = np.asarray(table.counts).astype(np.int64) if kn is None else kn.counts
        totals = np.asarray(table.totals).astype(np.int64) if kn is None else kn.totals
        ids = np.asarray(table.next_ids)
        _check_table(table, eo, counts, totals, ids)
        cum = np.zeros(counts.size + 1, np.int64)
        np.cumsum(counts, out=cum[1:])
        id_dtype = torch.int32 if table.vocab_size <= 1 << 31 else torch.int64
        self.order, self.complete = table.order, table.top_k is None
        self.num_contexts = int(totals.size)
        self.entry_offsets = torch.from_numpy(eo).to(device)
        self.totals = torch.from_numpy(totals).to(device)
        self.cum = torch.from_numpy(cum).to(device)  # cum[i] = counts[0] + ... + counts[i-1]
        self.next_ids = torch.from_numpy(ids.astype(np.int64)).to(device, id_dtype)
        # Kneser-Ney: the undiscounted counts' sum per context and the discount
        self.base_totals = None if kn is None else torch.from_numpy(kn.base_totals).to(device)
        self.discount = None if kn is None else kn.discount

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in
                   (self.entry_offsets, self.totals, self.cum, self.next_ids) +
                   ((self.base_totals,) if self.base_totals is not None else ()))


def _check_table(table, eo, counts, totals, ids) -> None:
    """The invariants the device gathers rely on (they do not bound-check): once per table."""
    E = counts.size
    ok = (eo[0] == 0 and eo[-1] == E and bool(np.all(np.diff(eo) > 0))
          and bool(np.all(totals > 0)) and (E == 0 or int(counts.min()) > 0)
          and (ids.size == 0 or int(ids.max()) < table.vocab_size))
    if ok and E:
        sums = np.add.reduceat(counts, eo[:-1])
        ok = bool(np.all(sums <= totals)) and (table.top_k is not None or
                                                bool(np.all(sums == totals)))
    if not ok or int(totals.max(initial=0)) >= 1 << 62:
        raise FormatError(f"order {table.order}: the table is inconsistent; the file is "
                          "damaged (run `ngramds verify`)")


# What each batch is checked for (bits of a device-side error word; the lowest set bit is
# reported): the exception class and the message.
_FILE, _WINDOW, _START, _EPOCH, _CONTEXT, _SEARCH = 1, 2, 4, 8, 16, 32
_CHECKS = {
    _FILE: (InputError, "the batch is of another file (its file_crc is not {crc}, this file's "
                        "header CRC): use the NgramTargets of the dataset the loader reads"),
    _WINDOW: (FormatError, "the batch's window holds a token id outside 0..{last_id} (the "
                           "file's vocabulary): a damaged batch or another file's"),
    _START: (InputError, "a sample's start is outside the file's stream of {tokens} tokens "
                         "(its window of seq_len + 1 tokens must lie in it)"),
    _EPOCH: (InputError, "a sample's epoch is negative"),
    _CONTEXT: (FormatError, ERRORS[BAD_CONTEXT] + "; the file is damaged or the batch is "
                            "another's"),
    _SEARCH: (FormatError, "a position's context is not in the table; the file is damaged "
                           "(run `ngramds verify`) or the batch is another's"),
}


class _Pending:
    """Error words of batches checked on a device, read back without a host sync: each is
    copied into pinned host memory behind an event; a word is read once its event has passed
    (or, with ``wait``, after waiting for it)."""

    def __init__(self):
        self.items: deque = deque()

    def push(self, word: torch.Tensor, batch: int) -> None:
        event = None
        if word.device.type == "cuda":
            host = torch.empty((), dtype=word.dtype, pin_memory=True)
            host.copy_(word, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
        else:  # the CPU (deferred for a test), or another accelerator: read now
            host = word.cpu()
        self.items.append((batch, host, event))

    def first_error(self, wait: bool) -> tuple[int, int] | None:
        """(batch number, error word) of the first landed word that holds an error (the
        words pending are dropped then); None when none has, so far."""
        while self.items:
            batch, host, event = self.items[0]
            if event is not None and not event.query():
                if not wait:
                    return None
                event.synchronize()
            self.items.popleft()
            code = int(host)
            if code:
                self.items.clear()
                return batch, code
        return None


def _free_bytes(device: torch.device) -> int | None:
    """Bytes free for new tensors on ``device`` (CUDA: the driver's free memory plus what
    torch's caching allocator holds unused); None where unknown (the CPU, other devices)."""
    if device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(device)
    return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))


def _table_bytes(f: NgramFile, plan) -> int:
    """Bytes of the arrays :class:`_Placed` puts on a device for ``plan`` (see
    :meth:`NgramTargets.table_bytes`), from the file's header alone."""
    kn = plan.mixing == "kneser-ney"
    total = 0
    for order in plan.orders:
        t = f.table(order)
        c, e = t.num_contexts, t.num_entries
        total += (c + 1) * 8 + c * 8 + (e + 1) * 8 + e * (4 if t.vocab_size <= 1 << 31 else 8)
        total += c * 8 if kn else 0
    chain = f.chain(plan.orders[0])
    for high, low in zip(chain, chain[1:]):
        total += high.num_contexts * (4 if low.num_contexts < 1 << 31 else 8)
    top = f.table()
    if top.position_contexts is None and key_radix(top) is not None and not f.pruned:
        total += top.num_contexts * 8
    return total


def _file_key(f: NgramFile) -> tuple:
    """What identifies a file's content for the cache of placed tables."""
    try:
        st = os.stat(f.path)
        return (os.path.realpath(f.path), st.st_dev, st.st_ino, st.st_size, f.header_crc)
    except (OSError, TypeError):  # removed since it was opened: this map only
        return ("<unnamed>", id(f), f.header_crc)


class _Placed:
    """One file's tables (the orders of a plan), links and packed keys on one device, shared
    by every :class:`NgramTargets` of this process that uses them (see ``_PLACED``)."""

    def __init__(self, f: NgramFile, plan, device: torch.device):
        kn = kneser_ney(f, plan) if plan.mixing == "kneser-ney" else [None] * len(plan.orders)
        self.tables = [_Table(f.table(o), device, part) for o, part in zip(plan.orders, kn)]
        # links from the highest stored table down to the lowest order used, checked once
        chain = f.chain(plan.orders[0])
        self.links: list[torch.Tensor] = []
        for high, low in zip(chain, chain[1:]):
            links = np.asarray(high.lower_contexts)
            if links.size and int(links.max()) >= low.num_contexts:
                raise FormatError(f"order {low.order}: a lower_contexts link is past the "
                                  "table; the file is damaged (run `ngramds verify`)")
            dtype = np.int32 if low.num_contexts < 1 << 31 else np.int64
            self.links.append(torch.from_numpy(links.astype(dtype)).to(device))
        # a compact file: the highest table's packed keys, searched for each position's context
        top = f.table()
        self.keys = torch.from_numpy(packed_keys(top)).to(device) \
            if top.position_contexts is None and key_radix(top) is not None and \
            not f.pruned else None  # (a pruned file's batches carry context ids)


# a batch's tensors that the targets are computed from (the rest is moved as it is)
_INPUTS = ("window", "context_ids", "history", "context_lengths", "start", "epoch", "file_crc")
_MAX_GRAPHS = 4  # batch shapes captured per NgramTargets; others run eagerly


class _Graph:
    """One batch shape's targets captured as a CUDA graph: a call copies the batch into the
    graph's own input tensors, replays the kernels (hundreds of small ones, launched in one
    go instead of one Python call each) and returns copies of its outputs, so a batch held by
    the caller is never overwritten by a later one. The kernels are those of an eager call:
    the targets are the same bit for bit."""

    def __init__(self, targets: "NgramTargets", inputs: dict, B: int, L: int, shift: bool):
        self.inputs = {k: v.clone() for k, v in inputs.items()}
        self.targets, device = targets, targets.device
        with torch.cuda.device(device):  # (the tables' device, whichever is current)
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):  # a warm-up off the capture, as CUDA graphs require
                targets._compute(self.inputs, B, L, shift)
                targets._word = None
            torch.cuda.current_stream(device).wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
                self.outputs = targets._compute(self.inputs, B, L, shift)
        self.word, targets._word = targets._word, None

    def replay(self, inputs: dict) -> dict:
        for k, v in inputs.items():
            self.inputs[k].copy_(v, non_blocking=True)
        with torch.cuda.device(self.targets.device):
            self.graph.replay()
        t = self.targets
        if self.word is not None:
            t._word = self.word.clone() if t._word is None else t._word | self.word
        return {k: v.clone() for k, v in self.outputs.items()}


# (pid, device, file, orders, Kneser-Ney) -> the tables placed there, while any NgramTargets
# holds them: each process (each DDP rank) places a file's tables once per device
_PLACED: "weakref.WeakValueDictionary[tuple, _Placed]" = weakref.WeakValueDictionary()


class NgramTargets:
    """Computes the targets of a batch of a device-mode :class:`NgramDataset`
    (``targets_on="device"``) on ``device``: ``NgramTargets(ds, device="cuda")(batch)``
    returns the batch with ``input_ids``, ``labels``, ``target_ids`` and ``target_probs``
    on the device, equal to what the dataset computes in its workers otherwise.

    ``backend``: ``"torch"`` computes with batched torch ops on the device; ``"compiled"``
    (the CPU only) with the compiled kernels of :class:`ngramds.targets.Targets` on
    ``torch.get_num_threads()`` threads, reading the mapped file where it lies (a compact
    file's batch is checked to be the file's, then its contexts are found in the file);
    ``"auto"`` (the default) the compiled kernels on the CPU, torch ops elsewhere. Both give
    the same targets.

    Device memory (``"torch"``): per stored context of each order used 16 bytes (entry
    offset, total), per stored entry 12 bytes (next id, cumulative count), per context of
    each table above the lowest order used 4 bytes (its ``lower_contexts`` link; 8 past 2^31
    contexts); for a compact file, per context of the highest table 8 bytes (its packed key,
    searched for each position's context); with ``mixing="kneser-ney"``, 8 more per context
    of each order used (its undiscounted total); nothing per position.
    :meth:`table_bytes` gives the sum before anything is placed; on CUDA a construction whose
    tables would not fit the free memory is refused (InputError naming the CPU path). The
    tables are placed once per process and device: every ``NgramTargets`` of the same file,
    orders and mixing there shares them. ``"compiled"`` copies no table: it holds 1 byte per
    8 entries of the tables whose distributions are long (the tail draws' block sums; with
    ``mixing="kneser-ney"``, the discounted counts, 8 bytes per entry, as the loader's
    kernels do).

    Each batch is checked (its keys and shapes; token ids < V; starts whose windows lie in the
    token stream; epochs >= 0; context ids in the table; ``file_crc``, which the dataset
    stamps on every batch, equal to this file's header CRC). On the CPU a failed check raises
    at once (InputError / FormatError, one line). On another device the checks run there and
    are read back without a host sync: a failed one raises at a later call, once its result
    has reached the host (naming the batch), or at :meth:`check`, which waits for it; the bad
    batch's ids are clamped in the meantime, so nothing reads outside a table and no id >= V
    reaches the model. Host tensors are copied to CUDA asynchronously from pinned memory
    (pinned here when the loader did not pin them).

    Args:
        source: the device-mode :class:`NgramDataset` (its file, options and seed), or a
            file (an :class:`ngramds.NgramFile` or a path).
        config: the target options (default: the dataset's, else ``TargetConfig()``).
        seed: the tail draws' seed (default: the dataset's, else 0).
        device: where the targets are computed and returned (default: the CPU).
        backend: "auto", "torch" or "compiled" (the CPU only).
        cuda_graphs: on CUDA (``"torch"``), capture each batch shape's targets as a CUDA
            graph at its second call (which synchronises once) and replay it from then on,
            for up to 4 shapes: the same kernels launched at once, several times faster.
            Each graph keeps one call's intermediate tensors on the device. False: launch
            each op eagerly.
        compile: compile the torch backend's ops of each batch shape with ``torch.compile``
            (fused kernels, the same targets; tested bit for bit on the CPU, not yet measured
            on a GPU). The first call of a shape compiles (about 15 s on a CPU core); the
            batch checks are deferred, as on a device, also on the CPU.

    Raises:
        InputError: a bad ``backend``, tables that would not fit a CUDA device's free memory,
            and, when called, a batch that is not this file's or not well formed.
        FormatError: a damaged file.
    """

    def __init__(self, source: NgramDataset | NgramFile | str, config: TargetConfig | None = None,
                 *, seed: int | None = None, device: str | torch.device | None = None,
                 backend: str = "auto", cuda_graphs: bool = True, compile: bool = False):
        if isinstance(source, NgramDataset):
            f, config = source.file, config or source.config
            seed = source.seed if seed is None else seed
        else:
            f = source if isinstance(source, NgramFile) else open_file(source)
            config = config or TargetConfig()
        self.file, self.config, self.seed = f, config, int(seed or 0)
        self.plan = config.resolve(f)
        self.device = torch.device(device or "cpu")
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        if backend not in ("auto", "torch", "compiled"):
            raise InputError(f"backend must be 'auto', 'torch' or 'compiled', not {backend!r}")
        if backend == "compiled" and self.device.type != "cpu":
            raise InputError("backend='compiled' runs on the CPU only; use 'torch' (or "
                             f"'auto') on {self.device.type}")
        if backend == "auto":
            backend = "compiled" if self.device.type == "cpu" else "torch"
        if compile and backend != "torch":
            raise InputError("compile=True compiles the torch backend's ops: use it on a GPU, "
                             "or with backend='torch'")
        self.backend = backend
        self.compiled: Targets | None = None
        self.tables: list[_Table] = []
        self.links: list[torch.Tensor] = []
        self.keys: torch.Tensor | None = None
        self._placed: _Placed | None = None
        self.mixing: Mixing | None = None  # the torch backend's (its tables' discounts)
        if backend == "compiled":
            self.compiled = Targets(f, config)
        else:
            self._place()
        self.vocab_size = f.vocab_size
        self.top_contexts = f.num_ids  # (a pruned file's global ids: every table's)
        chain = f.chain(self.plan.orders[0])
        self._chain = chain
        self._levels = [chain.index(f.table(o)) for o in self.plan.orders]  # 0: the highest
        top = f.table()
        self._ships = ("context_ids",) if top.position_contexts is not None or \
            key_radix(top) is None or f.pruned else ("history", "context_lengths")
        # checks read back later (a device) or at once (the CPU)
        self._defer = self.device.type != "cpu"
        self._pending = _Pending()
        self._word: torch.Tensor | None = None
        self._batches = 0
        if compile:  # checks deferred as on a device: no host sync inside the compiled graph
            self._defer = True
        self._fused = torch.compile(self._compute_ops, fullgraph=True, dynamic=False) \
            if compile else None
        # batch shape -> its captured targets (CUDA, the torch backend); calls per shape
        self._graphs: dict | None = {} if cuda_graphs and self.device.type == "cuda" and \
            backend == "torch" else None
        self._seen: dict = {}

    def _place(self) -> None:
        """The tables on the device: the ones this process placed there already, else placed
        now, once their size is known to fit."""
        f, plan, device = self.file, self.plan, self.device
        key = (os.getpid(), str(device), _file_key(f), tuple(plan.orders),
               plan.mixing == "kneser-ney")
        placed = _PLACED.get(key)
        if placed is None:
            need, free = _table_bytes(f, plan), _free_bytes(device)
            if free is not None and need > free:
                raise InputError(
                    f"the n-gram tables need {need / 2**20:,.1f} MiB on {device}, but "
                    f"{free / 2**20:,.1f} MiB are free: compute the targets on the CPU instead "
                    "(NgramTargets(ds) runs the compiled kernels on the mapped file, or "
                    "NgramDataset(..., targets_on='loader') in the workers)")
            placed = _Placed(f, plan, device)
            _PLACED[key] = placed
        self._placed = placed
        self.tables, self.links, self.keys = placed.tables, placed.links, placed.keys
        self.mixing = mixing(plan, [t.discount or 0.0 for t in self.tables])

    @staticmethod
    def table_bytes(source: NgramDataset | NgramFile | str,
                    config: TargetConfig | None = None) -> int:
        """Bytes that ``NgramTargets(source, config, backend="torch")`` places on its device
        (tables, links, keys: :attr:`nbytes` once placed), computed from the file's header
        without placing anything.

        Args:
            source: a dataset (its file and target options), an open file or a path.
            config: target options (default: the dataset's, else the defaults).
        Returns:
            The bytes, for any device.
        """
        if isinstance(source, NgramDataset):
            f, config = source.file, config or source.config
        else:
            f = source if isinstance(source, NgramFile) else open_file(source)
        return _table_bytes(f, (config or TargetConfig()).resolve(f))

    def _pack_keys(self) -> None:
        """The compiled backend's packed keys (host memory), for :meth:`contexts`."""
        top = self.file.table()
        if self.keys is None and top.position_contexts is None and \
                key_radix(top) is not None:
            self.keys = torch.from_numpy(packed_keys(top)).to(self.device)

    @property
    def nbytes(self) -> int:
        """Bytes of the tables, links and keys on the device (with ``"compiled"``, what it
        holds besides the mapped file)."""
        held = 0
        if self.compiled is not None:
            kn = self.compiled.kn or []
            held = sum(a.nbytes for a in self.compiled.prefixes) + sum(
                a.nbytes for t in kn for a in (t.counts, t.totals, t.base_totals, t.prefix))
        return held + sum(t.nbytes for t in self.tables) + \
            sum(x.numel() * x.element_size() for x in self.links + [
                self.keys if self.keys is not None else torch.empty(0)])

    # -- checks ---------------------------------------------------------------------------
    def check(self) -> None:
        """Raise the error of any batch checked so far whose check failed (on a device, waits
        for the checks' results; nothing to wait for on the CPU). Call it after the last
        batch of a run, or wherever the loop synchronises anyway.

        Raises:
            InputError | FormatError: the first failed check, naming the batch.
        """
        self._push()
        self._report(wait=True)

    def _flag(self, bad: torch.Tensor, code: int) -> None:
        """A check: ``bad`` marks what fails it; raised now on the CPU, else folded into the
        batch's error word."""
        if not self._defer:
            if bool(bad.any()):
                raise self._error(code)
            return
        hit = bad.any().long() * code
        self._word = hit if self._word is None else self._word | hit

    def _push(self) -> None:
        if self._word is not None:
            self._pending.push(self._word, self._batches)
            self._word = None

    def _report(self, wait: bool) -> None:
        found = self._pending.first_error(wait)
        if found is not None:
            batch, code = found
            e = self._error(code & -code)
            raise type(e)(f"batch {batch} on {self.device}: {e} (checked on the device; "
                          "reported once its result reached the host)")

    def _error(self, code: int) -> Exception:
        cls, message = _CHECKS[code]
        return cls(message.format(crc=self.file.header_crc, last_id=self.vocab_size - 1,
                                  tokens=self.file.num_tokens))

    def _shape(self, batch) -> tuple[int, int]:
        """(B, L) of a batch whose keys, types and shapes are those NgramDataset ships; a
        one-line InputError naming the difference otherwise."""
        if not isinstance(batch, Mapping):
            raise InputError("NgramTargets takes a batch dict of NgramDataset(..., "
                             f"targets_on='device'), got {type(batch).__name__}")
        needed = ("window", *self._ships, "start", "epoch")
        missing = [k for k in needed if k not in batch]
        if missing:
            raise InputError(f"the batch has no {', '.join(missing)}: NgramTargets takes the "
                             "batches of NgramDataset(..., targets_on='device') of this file, "
                             f"which carry {', '.join(needed)}")
        for key in needed + (("file_crc",) if "file_crc" in batch else ()):
            t = batch[key]
            if not isinstance(t, torch.Tensor):
                raise InputError(f"the batch's {key} is a {type(t).__name__}, not a tensor")
            if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
                raise InputError(f"the batch's {key} is {t.dtype}: token ids, starts, epochs "
                                 "and context ids are integers")
        window = batch["window"]
        if window.dim() != 2 or window.shape[1] < 2:
            raise InputError(f"the batch's window is {list(window.shape)}; expected [B, L+1] "
                             "with L >= 1")
        B, L = window.shape[0], window.shape[1] - 1
        if B == 0:
            raise InputError("the batch is empty (0 samples): give NgramTargets the batches "
                             "the loader yields")
        m = self.file.table().order - 1
        for key, shape in (("start", (B,)), ("epoch", (B,)), ("file_crc", (B,)),
                           ("context_ids", (B, L)), ("context_lengths", (B, L)),
                           ("history", (B, m))):
            if key in batch and tuple(batch[key].shape) != shape:
                raise InputError(f"the batch's {key} is {list(batch[key].shape)}; expected "
                                 f"{list(shape)} for its window {list(window.shape)}")
        return B, L

    def _move(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` on the device: from the host to CUDA asynchronously, from pinned memory
        (pinned here unless the loader pinned it)."""
        if t.device == self.device:
            return t
        if self.device.type == "cuda" and t.device.type == "cpu" and not t.is_pinned():
            t = t.pin_memory()
        return t.to(self.device, non_blocking=True)

    def _ids(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` on the device as int64 (the loader's uint16 / uint32 widened there through
        their signed views, which every device supports)."""
        t = self._move(t)
        if t.dtype == torch.uint16:
            return t.view(torch.int16).long() & 0xFFFF
        if t.dtype == torch.uint32:
            return t.view(torch.int32).long() & 0xFFFFFFFF
        return t.long()

    # -- targets --------------------------------------------------------------------------
    def __call__(self, batch: dict) -> dict:
        """The batch (device mode) with its targets, every tensor on the device.

        Raises:
            InputError | FormatError: a batch that is not a device-mode batch of this file
                (on a device other than the CPU, possibly at a later call: see the class).
        """
        self._report(wait=False)
        B, L = self._shape(batch)
        self._batches += 1
        try:
            return self._call(batch, B, L)
        finally:
            self._push()

    def _call(self, batch: dict, B: int, L: int) -> dict:
        inputs = {k: self._move(batch[k]) for k in _INPUTS if k in batch}
        shift = "label_shift" in batch
        out = {k: (self._move(v) if isinstance(v, torch.Tensor) else v)
               for k, v in batch.items() if k not in _INPUTS}
        graph = self._graph_for(inputs, B, L, shift)
        out.update(self._compute(inputs, B, L, shift) if graph is None else graph.replay(inputs))
        return out

    def _graph_for(self, inputs: dict, B: int, L: int, shift: bool) -> _Graph | None:
        """The CUDA graph of this batch shape, captured at its second call (None: compute
        eagerly: no graphs here, a first call, past ``_MAX_GRAPHS`` shapes, or a capture
        this CUDA stack refused, which turns graphs off with a warning)."""
        if self._graphs is None:
            return None
        key = (B, L, shift, tuple((k, v.dtype) for k, v in inputs.items()))
        graph = self._graphs.get(key)
        if graph is not None:
            return graph
        self._seen[key] = self._seen.get(key, 0) + 1
        if self._seen[key] < 2 or len(self._graphs) >= _MAX_GRAPHS:
            return None
        try:
            graph = self._graphs[key] = _Graph(self, inputs, B, L, shift)
        except RuntimeError as e:
            warnings.warn(f"ngramds: the targets' CUDA graph could not be captured "
                          f"({str(e).splitlines()[0]}); computing them eagerly",
                          RuntimeWarning, stacklevel=4)
            self._graphs, self._word = None, None
        return graph

    def _compute(self, inputs: dict, B: int, L: int, shift: bool) -> dict:
        """The targets of a batch's device tensors ``inputs`` (the keys of ``_INPUTS`` it
        has): input_ids, labels, target_ids, target_probs (and soft_weight). No host sync:
        what a CUDA graph captures. With ``compile=True``, by the ops compiled for the
        shape."""
        if self._fused is None:
            return self._compute_ops(inputs, B, L, shift)
        self._pack_keys()  # (a host-to-device copy, once: not in the compiled graph)
        return self._fused(inputs, B, L, shift)

    def _compute_ops(self, inputs: dict, B: int, L: int, shift: bool) -> dict:
        window = self._ids(inputs["window"])
        starts = self._ids(inputs["start"])
        epoch = self._ids(inputs["epoch"])
        if "file_crc" in inputs:
            self._flag(self._ids(inputs["file_crc"]) != self.file.header_crc, _FILE)
        v = self.vocab_size
        self._flag((window < 0) | (window >= v), _WINDOW)
        self._flag((starts < 0) | (starts > self.file.num_tokens - L - 1), _START)
        self._flag(epoch < 0, _EPOCH)
        if self._defer:  # no id >= V for the model (nor for a search) before it is reported
            window = window.clamp(0, v - 1)
        if "context_ids" in inputs:
            ctx = self._ids(inputs["context_ids"]).reshape(B * L)
        elif self.compiled is not None:  # a compact file's batch: the file's compiled search
            self._check_compact_batch(inputs, starts)
            ctx = None
        else:  # a compact file's batch: the contexts are searched here
            ctx = self._contexts(window, self._ids(inputs["history"]),
                                 self._ids(inputs["context_lengths"])).reshape(B * L)
        labels = window[:, 1:]
        dev = self.device
        positions = starts[:, None] + torch.arange(1, L + 1, device=dev)
        weights = torch.empty(B * L, dtype=torch.float32, device=dev) \
            if self.plan.soft_weight else None
        ids, probs = self._targets(ctx, labels.reshape(-1), positions.reshape(-1),
                                   epoch[:, None].expand(B, L).reshape(-1), weights)
        ids, probs, inputs = ids.view(B, L, -1), probs.view(B, L, -1), window[:, :-1]
        if shift:  # the dataset's HF layout (see NgramDataset's layout)
            labels = inputs
            if ids.shape[-1]:
                ids = torch.cat([inputs[:, :1, None].expand(B, 1, ids.shape[-1]),
                                 ids[:, :-1]], 1)
                probs = torch.cat([torch.zeros_like(probs[:, :1]), probs[:, :-1]], 1)
        out = dict(input_ids=inputs, labels=labels, target_ids=ids, target_probs=probs)
        if weights is not None:  # the soft-term weights, moved as the targets are
            weights = weights.view(B, L)
            if shift:
                weights = torch.cat([torch.zeros_like(weights[:, :1]), weights[:, :-1]], 1)
            out["soft_weight"] = weights
        return out

    def _check_compact_batch(self, batch: dict, starts: torch.Tensor) -> None:
        """A compact file's batch for the compiled search, which finds each position's context
        from the file's own tokens: the batch must be what the file ships at its starts
        (window, history, context lengths), else FormatError."""
        L = batch["window"].shape[1] - 1
        s = starts.cpu().numpy()
        if s.size and (s.min() < 0 or s.max() + L >= self.file.num_tokens):
            raise InputError("a sample's start is outside the file's token stream")
        expect = self.compiled.device_inputs(s, L)
        for key in ("window", "history", "context_lengths"):
            got = batch[key].cpu().numpy()
            if got.shape != expect[key].shape:
                raise InputError(f"the batch's {key} is {list(got.shape)}; the file ships "
                                 f"{list(expect[key].shape)} for these samples")
            if not np.array_equal(got, expect[key]):
                raise FormatError(f"the batch's {key} is not the file's at its starts: a "
                                  "damaged batch or another file's")

    def contexts(self, window: torch.Tensor, history: torch.Tensor,
                 lengths: torch.Tensor) -> torch.Tensor:
        """The highest table's context ids [B, L] of a compact file's batch: each position's
        context (its last ``lengths`` tokens, from ``history`` [B, m] and ``window``
        [B, L+1]) packed like :func:`packed_keys`, then one search of the table's keys.
        A context not in the table: FormatError (on a device, deferred: see the class)."""
        try:
            return self._contexts(window, history, lengths)
        finally:
            self._push()

    def _contexts(self, window: torch.Tensor, history: torch.Tensor,
                  lengths: torch.Tensor) -> torch.Tensor:
        self._pack_keys()
        if self.keys is None:
            raise InputError("this batch carries no context ids, and the file's contexts are "
                             "not searchable on the device (a compact file whose keys "
                             "exceed 63 bits, or another file than the dataset's)")
        keys, v, m = self.keys, self.vocab_size, self.file.table().order - 1
        B, L = lengths.shape
        if history.shape != (B, m) or window.shape != (B, L + 1):
            raise InputError(f"a compact batch needs history [B, {m}] and window [B, L+1] "
                             f"for context_lengths [B, L]; got {tuple(history.shape)}, "
                             f"{tuple(window.shape)}, {tuple(lengths.shape)}")
        tokens = torch.cat([history, window], 1)
        # a length is 0 (a document start) or one more than the previous one, up to m
        grown = torch.cat([lengths[:, :1], (lengths[:, :-1] + 1).clamp(max=m)], 1)
        bad = (lengths < 0) | (lengths > m) | ((lengths != 0) & (lengths != grown))
        start = m + torch.arange(1, L + 1, device=lengths.device) - lengths.clamp(0, m)
        key = lengths.clamp(0, m)
        for t in range(m):
            tok = tokens.gather(1, (start + t).clamp(max=tokens.shape[1] - 1))
            used = t < lengths
            bad |= used & ((tok < 0) | (tok >= v))  # (a digit past V would alias a key)
            key = key * v + torch.where(used, tok.clamp(0, v - 1), 0)
        ids = torch.searchsorted(keys, key.reshape(-1)).clamp(max=keys.numel() - 1)
        self._flag(bad.reshape(-1) | (keys[ids] != key.reshape(-1)), _SEARCH)
        return ids.view(B, L)

    def targets(self, ctx: torch.Tensor | None, labels: torch.Tensor, positions: torch.Tensor,
                epochs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(target_ids [N, K], target_probs [N, K]) of N positions: ``ctx`` [N] their context
        ids in the highest stored order (None: searched in the file, compiled backend only),
        ``labels`` [N], ``positions`` [N] in the token stream, ``epochs`` [N]. A context id
        outside the table: FormatError (on a device, deferred: see the class)."""
        try:
            return self._targets(ctx, labels, positions, epochs)
        finally:
            self._push()

    def _targets(self, ctx, labels, positions, epochs, weights=None):
        """:meth:`targets`; ``weights`` (float32 [N], plans with soft weights): filled with
        each position's soft-term weight."""
        plan, n = self.plan, labels.shape[0]
        if plan.mode == ONEHOT:
            return (torch.empty(n, 0, dtype=torch.int64, device=labels.device),
                    torch.empty(n, 0, dtype=torch.float32, device=labels.device))
        if self.compiled is not None:
            return self._compiled_targets(ctx, labels, positions, epochs, weights)
        if ctx is None:
            raise InputError("the torch backend needs each position's context id")
        c = ctx.long()
        self._flag((c < 0) | (c >= self.top_contexts), _CONTEXT)
        if self._defer:  # no read outside the table before it is reported
            c = c.clamp(0, self.top_contexts - 1)
        levels = [c]  # the highest table's contexts, then each lower table's (checked links)
        for links in self.links if not self.file.pruned else []:
            levels.append(links.index_select(0, levels[-1]).long())
        if self.file.pruned:
            levels = self._pruned_levels(c)
        contexts = [levels[level] for level in self._levels]  # of each order used
        los, his, tots = zip(*(kernels.gather(t.entry_offsets, t.totals, c)
                               for t, c in zip(self.tables, contexts)))
        # Kneser-Ney weighs by the undiscounted totals
        mixed = [tot if t.base_totals is None else t.base_totals[c]
                 for t, tot, c in zip(self.tables, tots, contexts)]
        if weights is not None:  # from the stored totals of the orders' contexts
            weights.copy_(kernels.soft_weights(mixed, plan.alpha_count))
        w = torch.empty((len(self.tables), n), dtype=torch.float64, device=labels.device)
        kernels.mix_weights(self.mixing, los, his, mixed, w)
        keys = kernels.position_keys(self.seed, epochs, positions)
        top = len(self.tables) - 1
        blocks = [kernels.fill_component(t.next_ids, t.cum, los[j], his[j], tots[j], labels,
                                         keys, w[j], plan.mode, plan.top_r, t.order, j != top,
                                         t.complete, plan.width)
                  for j, t in enumerate(self.tables)]
        if plan.blocks == 1 and len(blocks) > 1:  # backoff: the chosen order's block
            ids, probs = blocks[0]
            for cid, cprob in blocks[1:]:
                chosen = cprob.sum(1, keepdim=True) > 0
                ids, probs = torch.where(chosen, cid, ids), torch.where(chosen, cprob, probs)
            return ids, probs.float()
        return (torch.cat([b[0] for b in blocks], 1),
                torch.cat([b[1] for b in blocks], 1).float())

    def _pruned_levels(self, g: torch.Tensor) -> list:
        """A pruned file's contexts of each table of the chain (-1: pruned there) from the
        global ids ``g`` (spec/FORMAT.md, "Pruned files"): a stored context's link, else the
        global id where it lies in the table's range."""
        levels = []
        for j, table in enumerate(self._chain):
            base = self.file.id_bases[table.order]
            here = torch.where((g >= base) & (g < base + table.num_contexts), g - base, -1)
            if j:
                prev = levels[-1]
                linked = self.links[j - 1].index_select(0, prev.clamp_min(0)).long()
                here = torch.where(prev >= 0, linked, here)
            levels.append(here)
        self._flag(levels[-1] < 0, _CONTEXT)  # the lowest order used keeps every context
        if self._defer:
            levels[-1] = levels[-1].clamp_min(0)
        return levels

    def _compiled_targets(self, ctx, labels, positions, epochs, weights=None):
        """:meth:`targets` by the compiled CPU kernels (one call per epoch in the batch)."""
        labels, positions, epochs = (np.ascontiguousarray(x.cpu().long().numpy())
                                     for x in (labels, positions, epochs))
        if ctx is not None:
            ctx = np.ascontiguousarray(ctx.cpu().long().numpy())
        n, slots, threads = labels.shape[0], self.plan.slots, torch.get_num_threads()
        ids = torch.empty(n, slots, dtype=torch.int64)
        probs = torch.empty(n, slots, dtype=torch.float32)
        w = None if weights is None else np.empty(n, np.float32)
        if n and epochs.min() == epochs.max():
            self.compiled.compute_at(positions, labels, self.seed, int(epochs[0]), ids.numpy(),
                                     probs.numpy(), threads, contexts=ctx, soft_weights=w)
        else:
            for epoch in np.unique(epochs).tolist():
                rows = np.flatnonzero(epochs == epoch)
                part_ids, part_probs = np.empty((rows.size, slots), np.int64), \
                    np.empty((rows.size, slots), np.float32)
                part_w = None if w is None else np.empty(rows.size, np.float32)
                self.compiled.compute_at(positions[rows], labels[rows], self.seed, epoch,
                                         part_ids, part_probs, threads,
                                         contexts=None if ctx is None else ctx[rows],
                                         soft_weights=part_w)
                ids.numpy()[rows], probs.numpy()[rows] = part_ids, part_probs
                if w is not None:
                    w[rows] = part_w
        if weights is not None:
            weights.copy_(torch.from_numpy(w))
        return ids, probs
