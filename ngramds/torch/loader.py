"""NgramLoader: a DataLoader that owns the epoch and remembers how far training got."""
from __future__ import annotations

from torch.utils.data import DataLoader

from .dataset import LoaderPass, NgramDataset


class NgramLoader(DataLoader):
    """``DataLoader`` over an :class:`NgramDataset`, with ``set_epoch``, ``state_dict`` and
    ``load_state_dict``.

    Each iteration is one epoch: a complete pass advances to the next epoch by itself (so
    Lightning, HF Trainer and plain loops get a new order each epoch; ``set_epoch`` sets it
    explicitly). Rank and world size are read from ``torch.distributed`` when an iteration
    starts. The loader counts the samples the training loop has received (in the main
    process), so a run resumed from its state continues with the next sample whatever
    ``num_workers`` and world size it now uses. ``batch_size`` is the number of samples per
    batch; the loader iterates its own copy of the dataset with that batch size, building
    whole batches (batched mode) unless the dataset was made with ``batched=False``. The
    dataset given is not changed (a ``DataLoader`` over it still gets its own items); the
    copy shares its epoch and resume position, so ``set_epoch``, ``state_dict`` and
    ``load_state_dict`` of either act on both.

    Args:
        dataset: the :class:`NgramDataset`.
        batch_size: samples per batch.
        **kwargs: any other ``DataLoader`` option (``num_workers``, ``pin_memory``,
            ``persistent_workers``, ``multiprocessing_context``, ...).

    Raises:
        TypeError: ``dataset`` is not an :class:`NgramDataset`.
        InputError: a bad ``batch_size``.
    """

    def __init__(self, dataset: NgramDataset, batch_size: int = 1, **kwargs):
        if not isinstance(dataset, NgramDataset):
            raise TypeError(f"NgramLoader loads an NgramDataset, got {type(dataset).__name__}")
        dataset = dataset.loader_copy(batch_size)
        super().__init__(dataset, batch_size=None if dataset.batched else batch_size, **kwargs)
        self._pass: LoaderPass | None = None  # the iteration in progress
        self._consumed = 0    # samples of it the loop has received

    def __iter__(self):
        ds = self.dataset
        self._pass, self._consumed = ds.begin_pass(), 0
        remaining = self._batches(self._pass.samples)
        for batch in super().__iter__():
            self._consumed += int(batch["index"].shape[0])
            remaining -= 1
            if remaining == 0:  # the pass is complete once the last batch is handed over:
                # frameworks that stop at len(loader) never ask for the end of the iteration
                ds.end_pass(self._pass.epoch)
                self._pass = None
            yield batch

    def _batches(self, samples: int) -> int:
        """Batches that ``samples`` samples of this rank make."""
        if self.dataset.batched or not self.drop_last:
            return -(-samples // self.dataset.batch_size)
        return samples // self.dataset.batch_size

    def __len__(self) -> int:
        return self._batches(self.dataset.rank_samples())

    def set_epoch(self, epoch: int) -> None:
        """Make ``epoch`` the next iteration's epoch (see :meth:`NgramDataset.set_epoch`)."""
        self.dataset.set_epoch(epoch)

    def state_dict(self) -> dict:
        """The dataset's state at the last batch the loop received: enough to resume with any
        number of workers and any world size."""
        return self.dataset.state_at(self._pass, self._consumed)

    def load_state_dict(self, state: dict) -> None:
        """Continue after the state's position (see :meth:`NgramDataset.load_state_dict`)."""
        self.dataset.load_state_dict(state)
        self._pass, self._consumed = None, 0
