"""NgramLoader: a DataLoader that remembers how far training got, for exact resumption."""
from __future__ import annotations

from torch.utils.data import DataLoader

from .dataset import NgramDataset


class NgramLoader(DataLoader):
    """``DataLoader`` over an :class:`NgramDataset` with ``state_dict``/``load_state_dict``.

    Counts the samples the training loop has received (in the main process), so a run resumed
    from its state continues with the next sample whatever ``num_workers`` it now uses.
    ``batch_size`` is the number of samples per batch; the dataset's is set to match, and in
    batched mode the dataset builds whole batches.
    """

    def __init__(self, dataset: NgramDataset, batch_size: int = 1, **kwargs):
        dataset.batch_size = batch_size
        super().__init__(dataset, batch_size=None if dataset.batched else batch_size, **kwargs)
        self._consumed = 0
        self._base = dataset._base

    def __iter__(self):
        ds = self.dataset
        self._base, self._consumed = ds._base, 0
        epoch = ds.epoch
        for batch in super().__iter__():
            self._consumed += int(batch["labels"].shape[0])
            yield batch
        if ds.epoch == epoch:
            self._base, self._consumed = 0, 0

    def state_dict(self) -> dict:
        """{"epoch", "consumed"}: enough to resume with any number of workers."""
        return {"epoch": self.dataset.epoch, "consumed": self._base + self._consumed}

    def load_state_dict(self, state: dict) -> None:
        """Continue after ``state['consumed']`` samples of ``state['epoch']``."""
        self.dataset.load_state_dict({"epoch": state["epoch"], "consumed": state["consumed"]})
