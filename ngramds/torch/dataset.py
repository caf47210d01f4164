"""NgramDataset: packed token windows with per-position soft targets, sharded and resumable."""
from __future__ import annotations

import os
import sys
import warnings
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ..errors import FormatError, InputError, InputWarning
from ..file.reader import NgramFile, open_file
from ..file.residency import PagePrefetch, in_background, larger_than_memory
from ..shuffle import sample_order
from ..targets import TargetConfig, Targets, batch_shapes
from ..targets.config import check_int, config_from_options
from ..targets.kernels import ONEHOT
from ..targets.assembly import (LAYOUTS, SAMPLINGS, device_items, fill_items, sample_layout,
                                window_position_ids)
from .partition import (MAX_WORKERS, Partition, SharedPasses, WorkerStart, consumed_position,
                        order_positions, pass_of, rank_samples, resolve_partition,
                        resumed_worker, worker_blocks, worker_delivered)

STATE_VERSION = 1
PAGES_AHEAD = 2  # batches of a worker whose pages it asks for ahead (prefetch_pages)
TARGETS_ON = ("loader", "device")
MAX_EPOCH = (1 << 63) - 1


class LoaderPass(NamedTuple):
    """A loader's pass: its ``epoch``, the global order position it starts at and the
    ``samples`` this rank delivers in it."""

    epoch: int
    start: int
    samples: int


class NgramDataset(IterableDataset):
    """Samples of ``seq_len`` tokens with the corpus's next-token distributions as targets.

    Sample k covers tokens [k*L, k*L+L]: ``input_ids`` = tokens[k*L : k*L+L], ``labels`` =
    tokens[k*L+1 : k*L+L+1]; there are floor((N-1)/L) samples. Each item is a dict of
    ``input_ids`` and ``labels`` (int64 [L]), ``index`` (the sample number k), ``target_ids``
    (int64 [L, K]) and ``target_probs`` (float32 [L, K]); K is 0 for ``targets="onehot"``.

    Target options: ``config``, a :class:`ngramds.TargetConfig` (default ``TargetConfig()``),
    or its fields as keywords, a shortcut (``NgramDataset(path, L, targets="allnts")`` is
    ``NgramDataset(path, L, config=TargetConfig(targets="allnts"))``; not both; an unknown
    keyword is an InputError naming the target options). What each option means:
    :class:`ngramds.TargetConfig` and spec/TARGETS.md.

    Order: one global order of the samples per epoch, a permutation keyed by (seed, epoch) when
    ``shuffle``. Rank r of W takes global positions r, r+W, r+2W, ... of it; with ``drop_last``
    each rank gets floor(S / W) samples, else ceil(S / W), the last positions wrapping around
    to the start of the order (as ``DistributedSampler`` pads), so every rank has as many
    batches. Rank and world size come from the arguments, else ``torch.distributed``, else the
    ``RANK``/``WORLD_SIZE`` environment, fixed when the dataset (or :class:`NgramLoader`'s
    iteration) starts and carried to workers of any start method. Within a rank, blocks of
    ``batch_size`` samples go to DataLoader workers round-robin, so the delivery order is the
    same for any worker count when ``batch_size`` equals the loader's.

    Epochs: every new pass over the data is the next epoch (``set_epoch`` sets it; a loop that
    never calls it still gets a new order each pass, also with persistent workers).
    :meth:`state_dict` / :meth:`load_state_dict` resume exactly, also with another world size.

    ``batched=True`` yields whole batches of ``batch_size`` (use ``DataLoader(batch_size=None)``,
    or :class:`NgramLoader`, which does so unless ``batched=False`` was given): one compiled
    call per batch and no per-sample collation; the delivery order is the same.

    ``targets_on="device"``: items carry no targets but what computes them, a slice of the
    file: ``window`` (the L+1 tokens) and ``context_ids`` ([L]: the highest stored order's
    context ids), each uint16 when its values fit, else int32 (int64 past 2^31), then
    ``start`` and ``epoch``; :class:`ngramds.torch.NgramTargets` turns a batch
    of them into the same targets on the training device. A compact file (no ids stored)
    ships ``history`` ([m]: the tokens before the window) and ``context_lengths`` ([L], uint8)
    instead of ``context_ids`` when its contexts pack into 63 bits (else the workers search
    the ids): the device finds the contexts (:meth:`Targets.device_inputs`).

    ``doc_info=True`` adds ``position_ids`` (int64 [L]): 0 at the window's first token and at
    every token that starts a document, else one more than the previous position (for
    intra-document attention; :func:`ngramds.torch.cu_seqlens` gives a batch's boundaries).

    ``layout="hf"``: ``labels`` equal ``input_ids`` (HF models shift them), row t of the soft
    targets is the target of token t (row 0: probability 0), and items carry ``label_shift``
    (1); :func:`ngram_loss` then shifts by itself. The default ``"shifted"``: ``labels[t]``
    follows ``input_ids[t]``.

    ``sampling="documents"`` (fine-tuning): samples start at document starts and hold whole
    documents packed in corpus order up to ``seq_len`` tokens (a longer document is cut into
    pieces of L tokens that share one token, so every label is predicted once), padded with id
    0; a piece's last token and the padding have label -100 and soft targets of probability 0.
    ``position_ids`` restart at every piece (and at the padding). The order, partition, epochs
    and resume work on these samples as on windows. See spec/TARGETS.md.

    Prompt masking (files built with prompt lengths, e.g. from
    :func:`ngramds.corpus.pairs.read_pairs`): ``mask_prompt`` (default: when the file has
    them) gives the labels that are prompt tokens -100 and soft targets of probability 0.

    ``ds[k]`` is the item of sample number k (not the k-th of the epoch's order) with the
    targets of the current epoch (:attr:`epoch`): what a pass of that epoch yields for it.

    Args:
        source: the file (a path or an open :class:`ngramds.NgramFile`).
        seq_len: L, the tokens of a sample.
        config: the target options (default ``TargetConfig()``).
        shuffle: a new keyed order of the samples every epoch (else corpus order).
        seed: the key of the order and of the tail draws.
        rank: this process's rank (default: ``torch.distributed``, else ``RANK``, else 0).
        world_size: the number of ranks (default: as ``rank``).
        drop_last: each rank gets floor(S / W) samples (else ceil, wrapping around).
        batch_size: the loader's batch size (the unit of the workers' round-robin).
        batched: yield whole batches (default: items; :class:`NgramLoader` batches unless False).
        targets_on: "loader" (the workers compute the targets) or "device"
            (:class:`ngramds.torch.NgramTargets` computes them).
        verify: check every checksum of the file first.
        doc_info: add ``position_ids``.
        layout: "shifted" or "hf".
        sampling: "windows" or "documents".
        mask_prompt: label no prompt token (default: when the file has prompt lengths).
        prefetch_pages: "windows" (or True): each process asks the kernel
            (``madvise(MADV_WILLNEED)``) for the pages of its next batches' windows ahead
            (tokens and context ids), so a file larger than the page cache reads them in
            parallel, not a page fault at a time; "tables": also, in a background thread, the
            table rows their targets read (tables larger than the page cache); False: never;
            "auto" (the default): "windows" when the file is larger than half the memory
            (or the cgroup's limit). Changes no item. docs/SCALE.md, "Files larger than RAM".
        **target_options: the fields of :class:`ngramds.TargetConfig`, instead of ``config``.

    Raises:
        InputError: an option out of range or unknown, options that do not go together, or
            a corpus too short for one sample.
        FormatError: a damaged file (or, later, one changed or truncated while in use).
    """

    def __init__(self, source: str | os.PathLike | NgramFile, seq_len: int, *,
                 config: TargetConfig | None = None, shuffle: bool = True, seed: int = 0,
                 rank: int | None = None, world_size: int | None = None,
                 drop_last: bool = True, batch_size: int = 1, batched: bool | None = None,
                 targets_on: str = "loader", verify: bool = False, doc_info: bool = False,
                 layout: str = "shifted", sampling: str = "windows",
                 mask_prompt: bool | None = None, prefetch_pages: bool | str = "auto",
                 **target_options):
        check_int("seq_len", seq_len, 1, 1 << 40)
        check_int("batch_size", batch_size, 1, 1 << 40)
        check_int("seed", seed, 0, (1 << 64) - 1)
        if targets_on not in TARGETS_ON:
            raise InputError(f"targets_on must be one of {TARGETS_ON}, got {targets_on!r}")
        if layout not in LAYOUTS:
            raise InputError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        if sampling not in SAMPLINGS:
            raise InputError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
        if sampling == "documents" and targets_on == "device":
            raise InputError("sampling='documents' computes its targets in the loader; use "
                             "targets_on='loader' (targets_on='device' is for windows)")
        self.targets_on, self.layout, self.doc_info = targets_on, layout, bool(doc_info)
        self.sampling = sampling
        self.config = config_from_options(config, target_options)
        self.path = source.path if isinstance(source, NgramFile) else source
        self._file = source if isinstance(source, NgramFile) else open_file(source, verify)
        self._pid = os.getpid()
        f = self._file
        self._identity = _identity(f)
        self._targets = Targets(f, self.config)
        plan = self._targets.plan
        self.seq_len, self.targets = seq_len, self.config.targets
        self.top_r, self.residual = self.config.top_r, self.config.residual
        self.mode, self.orders, self.mixing, self.max_k = (plan.mode, list(plan.orders),
                                                           plan.mixing, plan.max_k)
        if mask_prompt is None:
            mask_prompt = f.prompt_lengths is not None
        elif mask_prompt and f.prompt_lengths is None:
            raise InputError(f"mask_prompt=True, but {self.path} has no prompt lengths (build "
                             "it from prompt/response pairs: ngramds.corpus.pairs.read_pairs)")
        if mask_prompt and targets_on == "device":
            raise InputError("prompt masking happens in the loader: with targets_on='device' "
                             "give mask_prompt=False (or use targets_on='loader')")
        self.mask_prompt = bool(mask_prompt)
        self.prefetch_pages = _page_mode(prefetch_pages, sampling, self._identity[2])
        self._packing, self.num_samples = sample_layout(f, seq_len, sampling)
        if self.num_samples < 1:
            raise InputError(f"the corpus has {f.num_tokens} tokens, too few for one sample of "
                             f"seq_len {seq_len} (needs seq_len + 1)")
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.batch_size, self.batched = batch_size, bool(batched)
        self._batched_given = batched
        self._given = (rank, world_size)
        self.partition: Partition = resolve_partition(rank, world_size)
        self._shared = SharedPasses()   # epoch, resume position, pass counters of every copy
        self._counter: int | None = None  # this copy's pass counter (set by its first pass)
        self._local_resume = None       # a worker's own state (torchdata), for its next pass
        self._end_cursor()

    def _end_cursor(self) -> None:
        """No pass in progress in this copy: ``_pass`` (epoch, start) of the pass in progress,
        ``_base``, ``_next_block``, ``_in_block``: the position a worker's state records."""
        self._pass, self._next_block, self._in_block, self._base = None, None, 0, 0

    @property
    def file(self) -> NgramFile:
        """The dataset's :class:`NgramFile` (mapped again in a process that unpickled the
        dataset)."""
        return self._file if self._file is not None else open_file(self.path)

    def loader_copy(self, batch_size: int) -> "NgramDataset":
        """The copy an :class:`NgramLoader` of ``batch_size`` iterates (whole batches unless
        ``batched=False`` was given): this dataset is left as it is, the copy shares its file
        map and its shared state (epoch, resume position, pass counters)."""
        check_int("batch_size", batch_size, 1, 1 << 40)
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy.batch_size = batch_size
        copy.batched = True if self._batched_given is None else self.batched
        copy._counter, copy._local_resume = None, None
        copy._end_cursor()
        return copy

    # -- partition ----------------------------------------------------------------------
    def refresh_partition(self) -> Partition:
        """Re-read rank and world size from ``torch.distributed`` / the environment (unless
        given as arguments); :class:`NgramLoader` does it when an iteration starts."""
        self.partition = resolve_partition(*self._given)
        return self.partition

    def _rank_count(self, start: int = 0) -> int:
        """Samples this rank delivers in a pass starting at global position ``start``."""
        return rank_samples(self.num_samples, self.partition.world_size, self.drop_last, start)

    def rank_samples(self) -> int:
        """Samples this rank delivers per epoch."""
        return self._rank_count(0)

    def __len__(self) -> int:
        n = self.rank_samples()
        return -(-n // self.batch_size) if self.batched else n

    # -- epochs and state -----------------------------------------------------------------
    @property
    def epoch(self) -> int:
        """The epoch of the next pass (of the pass in progress, in the copy that runs it)."""
        if self._pass is not None:
            return self._pass[0]
        shared = self._shared
        return shared.epoch + (shared.passes(self._counter) if self._counter is not None else 0)

    def set_epoch(self, epoch: int) -> None:
        """Make ``epoch`` the next pass's epoch, from its beginning; right after
        :meth:`load_state_dict` of the same epoch it keeps the resumed position.

        Raises:
            InputError: called by a loader of accelerate's ``prepare()`` (or a plain
                transformers ``Trainer``'s), which would shard the data a second time.
        """
        _refuse_accelerate_loaders(sys._getframe(1))
        check_int("epoch", epoch, 0, MAX_EPOCH)
        shared = self._shared
        if shared.resume_epoch != epoch or shared.any_started():
            shared.drop_resume()
            self._local_resume = None
        shared.epoch = int(epoch)
        shared.restart()
        self._end_cursor()

    # -- the loader's passes (NgramLoader runs one per iteration; it owns the epoch) ------
    def begin_pass(self) -> LoaderPass:
        """Start a loader's pass: rank and world size are read again
        (:meth:`refresh_partition`) and every copy's pass counter restarts, so every worker's
        next pass is this one."""
        self.refresh_partition()
        self._shared.restart()
        return self._next_pass()

    def end_pass(self, epoch: int) -> None:
        """A loader's pass of ``epoch`` is complete: the next one is the next epoch, from its
        beginning."""
        shared = self._shared
        shared.epoch = epoch + 1
        shared.drop_resume()
        shared.restart()

    def state_at(self, loader_pass: LoaderPass | None = None, delivered: int = 0) -> dict:
        """The state (as :meth:`state_dict`'s) after ``delivered`` samples of this rank in
        ``loader_pass`` (from :meth:`begin_pass`); without one, at the start of the next pass."""
        if loader_pass is None:
            loader_pass, delivered = self._next_pass(), 0
        epoch, start, _ = loader_pass
        return self._state(epoch, consumed_position(start, delivered, self.partition.world_size,
                                                    self.num_samples))

    def _next_pass(self) -> LoaderPass:
        epoch = self._shared.epoch
        start = self._shared.resume_start(epoch)
        return LoaderPass(epoch, start, self._rank_count(start))

    def state_dict(self) -> dict:
        """Where the epoch stands, in terms of the global sample order: ``consumed`` samples of
        ``epoch`` are delivered (by all ranks together: they consume in lockstep), plus what
        the position depends on (checked by :meth:`load_state_dict`).

        Called in a DataLoader worker (as torchdata's StatefulDataLoader does), it also records
        that worker's own position, so restoring each worker's state continues it exactly.
        """
        if self._pass is None:
            return self._state(self.epoch, self._shared.resume_start(self.epoch))
        info = get_worker_info()
        workers = info.num_workers if info else 1
        epoch, start = self._pass
        delivered = min(worker_delivered(self._base, self.batch_size, workers, self._next_block,
                                         self._in_block), self._rank_count(start))
        world = self.partition.world_size
        state = self._state(epoch, consumed_position(start, delivered, world, self.num_samples))
        state["worker"] = {"start": start, "base": self._base, "next_block": self._next_block,
                           "in_block": self._in_block, "num_workers": workers,
                           "rank": self.partition.rank}
        return state

    def _state(self, epoch: int, consumed: int) -> dict:
        return {"version": STATE_VERSION, "epoch": int(epoch),
                "consumed": int(min(consumed, self.num_samples)),
                "num_samples": self.num_samples, "seq_len": self.seq_len, "seed": self.seed,
                "shuffle": self.shuffle, "file_crc": self._identity[3],
                "world_size": self.partition.world_size, "drop_last": self.drop_last,
                "batch_size": self.batch_size, "sampling": self.sampling,
                "targets": self._target_options()}

    def _target_options(self) -> dict:
        """The target options (every field of :class:`TargetConfig`), as a state records
        them: plain Python values, sequences as lists."""
        return self.config.options()

    def load_state_dict(self, state: dict) -> None:
        """Resume after ``state['consumed']`` samples of the global order of
        ``state['epoch']``: with any number of workers and any world size, every remaining
        sample is delivered once. A state of another file or sample layout is refused."""
        epoch, consumed = self.check_state(state)
        shared = self._shared
        shared.epoch = epoch
        worker = state.get("worker")
        info = get_worker_info()
        if info is not None:  # a worker restoring its own state: its own counter only
            if self._counter is not None:
                shared.reset(self._counter)
            self._local_resume = (epoch, consumed, worker, state.get("batch_size"))
        else:
            shared.set_resume(epoch, consumed)
            shared.restart()
            self._local_resume = None
        self._end_cursor()

    def check_state(self, state) -> tuple[int, int]:
        """(epoch, consumed) of a state of this dataset's file and sample layout; InputError
        naming the difference otherwise."""
        if not isinstance(state, dict):
            raise InputError(f"a dataset state is a dict from state_dict(), got "
                             f"{type(state).__name__}")
        missing = [k for k in ("version", "epoch", "consumed", "num_samples", "seq_len", "seed",
                               "shuffle", "file_crc") if k not in state]
        if missing:
            raise InputError(f"not an ngramds dataset state (missing {', '.join(missing)}); "
                             "save it with state_dict() of this ngramds version")
        for key in ("version", "epoch", "consumed", "num_samples", "seq_len", "seed", "shuffle",
                    "file_crc", "sampling"):
            if key in state:
                _check_plain(key, state[key])
        if state["version"] != STATE_VERSION:
            raise InputError(f"dataset state version {state['version']!r} is not supported "
                             f"(this ngramds writes {STATE_VERSION})")
        mine = self._state(0, 0)
        state = {"sampling": "windows", **state}  # states of older versions: windows
        for key, what in (("file_crc", "another file (or a rebuilt one)"),
                          ("sampling", "another sampling"),
                          ("seq_len", "another seq_len"), ("num_samples", "another file"),
                          ("seed", "another seed"), ("shuffle", "another shuffle setting")):
            if state[key] != mine[key]:
                raise InputError(f"the state is of {what}: its {key} is {state[key]!r}, this "
                                 f"dataset's is {mine[key]!r}; resume with the same file and "
                                 "sample layout")
        _warn_if_targets_differ(state.get("targets"), mine["targets"],
                                self._targets.plan.mixing == "witten-bell")
        epoch = check_int("state epoch", state["epoch"], 0, MAX_EPOCH)
        consumed = check_int("state consumed", state["consumed"], 0, self.num_samples)
        worker = state.get("worker")
        if worker is not None:  # a worker's own position (torchdata)
            if not isinstance(worker, dict):
                raise InputError("the state's worker position is not a dict")
            s = self.num_samples
            for key, lo, hi in (("start", 0, s), ("base", 0, s), ("in_block", 0, s),
                                ("num_workers", 1, MAX_WORKERS), ("rank", 0, 1 << 20)):
                check_int(f"state worker {key}", worker.get(key), lo, hi)
            if worker.get("next_block") is not None:
                check_int("state worker next_block", worker["next_block"], 0, s)
        return epoch, consumed

    # -- iteration ----------------------------------------------------------------------
    def _open(self) -> Targets:
        """This process's targets over its own map of the file, which must be the file the
        dataset was made with (same identity, same size)."""
        if self._file is None or self._pid != os.getpid():
            f = open_file(self.path)
            if _identity(f)[1:] != self._identity[1:]:
                raise FormatError(f"{self.path} changed since the dataset opened it (rebuilt, "
                                  "replaced or truncated); make a new dataset for the new file")
            self._file, self._pid = f, os.getpid()
            self._targets = Targets(f, self.config)
        try:
            st = os.stat(self.path)
        except OSError:
            st = None  # removed or renamed: the map stays valid
        if st is not None and st.st_ino == self._identity[1] and st.st_size < self._identity[2]:
            raise FormatError(f"{self.path} was truncated to {st.st_size} bytes while in use "
                              f"({self._identity[2]} expected); reading it would crash")
        return self._targets

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_file"] = state["_targets"] = None  # each process maps the file itself
        return state

    def _batch(self, targets: Targets, epoch: int, globals_: np.ndarray) -> dict:
        """The batch at order positions ``globals_`` of ``epoch``."""
        samples = sample_order(globals_ % self.num_samples, self.num_samples, self.seed, epoch,
                               self.shuffle)
        return self._items(targets, epoch, samples)

    def _items(self, targets: Targets, epoch: int, samples: np.ndarray) -> dict:
        """The batch of sample numbers ``samples`` with the targets of ``epoch``
        (:mod:`ngramds.targets.assembly`), as tensors."""
        if self.targets_on == "device":
            arrays = device_items(targets, samples, self.seq_len, epoch)
            if self._hands_over_batches():
                batch = dict(zip(arrays, _shared_tensors([(a.shape, a.dtype)
                                                          for a in arrays.values()])))
                for name, a in arrays.items():
                    batch[name].numpy()[...] = a
            else:
                batch = {k: torch.from_numpy(v) for k, v in arrays.items()}
            position_ids = window_position_ids(targets.file.doc_offsets, arrays["start"],
                                               self.seq_len) if self.doc_info else None
        else:
            tensors, threads = self._out_tensors(targets, samples.size)
            weights = tensors[4] if len(tensors) > 4 else None  # soft-term weights, asked for
            position_ids = fill_items(targets, samples, self.seq_len, self.seed, epoch,
                                      [t.numpy() for t in tensors[:4]], packing=self._packing,
                                      mask_prompt=self.mask_prompt, layout=self.layout,
                                      position_ids=self.doc_info, threads=threads,
                                      soft_weights=None if weights is None else weights.numpy())
            batch = {"input_ids": tensors[0], "labels": tensors[1],
                     "index": torch.from_numpy(samples), "target_ids": tensors[2],
                     "target_probs": tensors[3]}
            if weights is not None:
                batch["soft_weight"] = weights
        if self.layout == "hf":
            batch["label_shift"] = torch.ones(samples.size, dtype=torch.int64)
        if position_ids is not None:
            batch["position_ids"] = torch.from_numpy(position_ids)
        return batch

    def _hands_over_batches(self) -> bool:
        """A worker building whole batches: each goes to the training process in one
        shared-memory segment (:func:`_shared_tensors`)."""
        return self.batched and get_worker_info() is not None

    def _out_tensors(self, targets: Targets, size: int) -> tuple[list, int]:
        """The batch's tensors (in shared memory when a worker builds whole batches) and the
        threads to compute its targets with (every core in the training process)."""
        shapes = batch_shapes(targets.plan, size, self.seq_len)
        if targets.plan.soft_weight:  # (TargetConfig.alpha_count > 0)
            shapes.append(((size, self.seq_len), np.float32))
        if self._hands_over_batches():
            tensors = _shared_tensors(shapes)
        else:
            tensors = [torch.from_numpy(np.empty(shape, dtype)) for shape, dtype in shapes]
        return tensors, 1 if get_worker_info() is not None else os.cpu_count() or 1

    def __getitem__(self, k: int) -> dict:
        """The item of sample number ``k`` (negative counts from the end) with the targets of
        the current :attr:`epoch`; IndexError outside the samples."""
        check_int("sample number", k, -(1 << 62), 1 << 62)
        n = self.num_samples
        if not -n <= k < n:
            raise IndexError(f"sample {k} is outside the {n} samples")
        batch = self._items(self._open(), self.epoch, np.array([k % n], dtype=np.int64))
        return {key: v[0] for key, v in batch.items()}

    def _begin(self, wid: int, workers: int, n: int) -> tuple[int, WorkerStart]:
        """Start this copy's pass as worker ``wid`` of ``workers`` (``n``: the DataLoader's
        worker count, 0 in the main process): its epoch and where this worker's share starts."""
        shared = self._shared
        self._counter = shared.counter(n, wid)
        started = shared.start_pass(self._counter)
        epoch, start = pass_of(shared.epoch, started, *shared.resume)
        first = WorkerStart(start, 0, wid, 0)
        local, self._local_resume = self._local_resume, None
        if local is not None and local[0] == epoch and started == 1:
            first = resumed_worker(local[2], workers, self.partition.rank, self.batch_size,
                                   local[3]) or WorkerStart(local[1], 0, wid, 0)
        return epoch, first

    def _page_prefetch(self, targets: Targets) -> PagePrefetch | None:
        """What asks for the pages of this process's next batches (None: off)."""
        if self.prefetch_pages is None:
            return None
        # (a pruned file's position ids are global ids: its tables are not advised)
        tables = self.prefetch_pages == "tables" and targets.plan.mode != ONEHOT and \
            not targets.file.pruned
        pages = PagePrefetch(targets.file, targets.chain if tables else None,
                             targets.plan.orders)
        pages.random_reads()
        return pages

    def _advise(self, pages: PagePrefetch, epoch: int, globals_: np.ndarray) -> None:
        """Ask for the pages of the batch at order positions ``globals_``: its windows now
        (the kernel reads them while this process works), its table rows in the background
        (they are found from the windows' context ids)."""
        starts = sample_order(globals_ % self.num_samples, self.num_samples, self.seed, epoch,
                              self.shuffle) * self.seq_len
        pages.windows(starts, self.seq_len + 1, pages.file.order - 1)  # (and the history)
        if pages.chain:
            in_background(pages.window_tables, starts, self.seq_len + 1)

    def __iter__(self):
        info = get_worker_info()
        if info is None:
            self.refresh_partition()
        wid, workers = (info.id, info.num_workers) if info else (0, 1)
        targets = self._open()
        rank, world = self.partition
        epoch, first = self._begin(wid, workers, info.num_workers if info else 0)
        start, skip = first.start, first.skip
        self._pass, self._base, self._next_block, self._in_block = (epoch, start), first.base, \
            None, 0
        total, pages = self._rank_count(start), self._page_prefetch(targets)
        step = workers * self.batch_size  # (between this worker's blocks)
        for block, lo, hi in worker_blocks(total, self.batch_size, workers, first):
            if pages is not None:  # ask for the pages of this worker's next batches ahead
                for k in range(0 if block == first.block else PAGES_AHEAD, PAGES_AHEAD + 1):
                    a = lo + k * step
                    if a < total:
                        self._advise(pages, epoch, order_positions(
                            start, rank, world, a, min(a + self.batch_size, total)))
            batch = self._batch(targets, epoch, order_positions(start, rank, world, lo, hi))
            if self.batched:
                self._next_block, self._in_block = block + workers, 0
                yield batch
            else:
                for j in range(skip, hi - lo):
                    done = j + 1 == hi - lo
                    self._next_block = block + workers if done else block
                    self._in_block = 0 if done else j + 1
                    yield {k: v[j] for k, v in batch.items()}
            skip = 0
        self._end_cursor()


def _page_mode(prefetch_pages, sampling: str, size: int) -> str | None:
    """The pages a dataset of a file of ``size`` bytes asks for ahead: None, "windows" or
    "tables"."""
    if prefetch_pages == "auto":
        return "windows" if sampling == "windows" and larger_than_memory(size) else None
    if prefetch_pages is False or prefetch_pages is None:
        return None
    if prefetch_pages is True:
        prefetch_pages = "windows"
    if prefetch_pages not in ("windows", "tables"):
        raise InputError(f"prefetch_pages must be 'auto', True, False, 'windows' or 'tables', "
                         f"got {prefetch_pages!r}")
    if sampling != "windows":
        raise InputError("prefetch_pages asks for the pages of window samples; use it with "
                         "sampling='windows'")
    return prefetch_pages


def _warn_if_targets_differ(saved, mine: dict, witten_bell: bool) -> None:
    """A resumed run whose target options differ from the saved run's (the sample order does
    not depend on them, so this is a warning): a deliberate change, or a new default, such as
    Witten-Bell's escape weight, 1 before ngramds 0.3.0 (whose states do not record them)."""
    if saved is None:
        if witten_bell and mine["escape"] != 1.0:
            warnings.warn("this dataset state was saved by ngramds < 0.3.0, whose Witten-Bell "
                          f"targets used escape=1; these use escape={mine['escape']:g}. Pass "
                          "escape=1 to resume with the same targets", InputWarning,
                          stacklevel=3)
        return
    if not isinstance(saved, dict):
        raise InputError("the state's target options are not a dict")
    for key, value in saved.items():
        _check_plain(f"target option {key}", value, lists=True)
    before = TargetConfig().options()  # an option newer than the state had its default
    changed = [f"{k} {saved.get(k, before.get(k))!r} -> {v!r}" for k, v in mine.items()
               if saved.get(k, before.get(k)) != v]
    if changed:
        warnings.warn("resuming with other target options than the saved run's: "
                      + ", ".join(changed), InputWarning, stacklevel=3)


def _refuse_accelerate_loaders(caller) -> None:
    """InputError when ``caller`` (the frame that called :meth:`NgramDataset.set_epoch`) is
    accelerate's loader code: every loader ``accelerator.prepare()`` makes (and the plain
    transformers ``Trainer``'s) calls its dataset's ``set_epoch`` when a pass starts, in every
    process; it would shard the rank's share a second time and drop the loader's state."""
    if not caller.f_globals.get("__name__", "").startswith("accelerate."):
        return
    frame = caller
    for _ in range(8):  # the Trainer calls the prepared loader's set_epoch
        frame = frame.f_back
        if frame is None:
            break
        if frame.f_globals.get("__name__", "") == "transformers.trainer":
            raise InputError(
                "a plain transformers Trainer trains an NgramDataset wrong (accelerate shards it "
                "a second time and the loss ignores the soft targets): use "
                "ngramds.hf.NgramTrainer(model=..., args=..., train_dataset=ds) "
                "(docs/RECIPES.md, \"HuggingFace Trainer\")")
    raise InputError(
        "an NgramLoader (or a DataLoader over an NgramDataset) went through accelerate's "
        "prepare(), which would shard it a second time and drop its state: prepare only the "
        "model and optimizer (model, opt = accelerator.prepare(model, opt)) and iterate the "
        "NgramLoader itself (docs/RECIPES.md, \"accelerate\")")


_PLAIN = (int, float, str, np.generic, type(None))  # bool is an int


def _check_plain(name: str, value, lists: bool = False) -> None:
    """A state's ``name`` is a single plain value (Python or numpy scalar; with ``lists`` also
    a list of them), as state_dict() writes it; InputError otherwise (an array, a tensor)."""
    if isinstance(value, _PLAIN) or lists and isinstance(value, (list, tuple)) and \
            all(isinstance(x, _PLAIN) for x in value):
        return
    raise InputError(f"the state's {name} is a {type(value).__name__}, not a single value; "
                     "resume from a state saved by state_dict() (plain values)")


def _identity(f: NgramFile) -> tuple:
    """(device, inode, size, header CRC) of an open file."""
    st = os.stat(f.path)
    return (st.st_dev, st.st_ino, st.st_size, f.header_crc)


def _shared_tensors(shapes: list) -> list[torch.Tensor]:
    """Tensors of ``shapes`` [(shape, numpy dtype)] in one shared-memory buffer: handing a
    batch from a worker to the training process then copies nothing and maps one segment."""
    sizes = [-(-int(np.prod(shape)) * np.dtype(dtype).itemsize // 8) * 8  # (aligned)
             for shape, dtype in shapes]
    buffer = torch.empty(sum(sizes), dtype=torch.uint8).share_memory_()
    tensors, offset = [], 0
    for (shape, dtype), size in zip(shapes, sizes):
        torch_dtype = torch.from_numpy(np.empty(0, dtype)).dtype
        count = int(np.prod(shape)) * np.dtype(dtype).itemsize
        tensors.append(buffer[offset:offset + count].view(torch_dtype).view(shape))
        offset += size
    return tensors
