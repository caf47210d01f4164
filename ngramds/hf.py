"""HuggingFace ``transformers`` glue: :class:`NgramTrainer`, a ``Trainer`` that trains on an
:class:`~ngramds.torch.NgramDataset` with :func:`~ngramds.torch.ngram_loss`, right by
construction (needs ``transformers``; ``pip install 'ngramds[hf]'``).

What it fixes against a plain ``Trainer``: the train loader is an
:class:`~ngramds.torch.NgramLoader` built here, so ngramds shards by rank and accelerate does
not shard a second time, no collator strips the soft targets (``remove_unused_columns`` does
not matter), epochs follow the Trainer's; the loss is the micro-batch mean, which the Trainer
divides by the gradient-accumulation steps (all micro-batches are the same size), so the
loss and gradients of ``gradient_accumulation_steps=k`` equal those of one k-times larger batch.
"""
from __future__ import annotations

try:
    from transformers import Trainer
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ImportError("ngramds.hf needs transformers: pip install 'ngramds[hf]'") from exc

from .torch import DEFAULT_ALPHA, NgramDataset, NgramLoader, ngram_loss

__all__ = ["NgramTrainer"]


class NgramTrainer(Trainer):
    """``Trainer(model, args, train_dataset=NgramDataset(...), alpha=1.0, ...)``.

    ``alpha`` weighs the soft targets (see :func:`ngram_loss`). The model is called as
    ``model(input_ids=...)`` and must return logits for every position (``.logits`` or the
    first output). Evaluation datasets are handled by ``Trainer`` as usual.
    """

    loss_is_scaled_for_ga = False  # a per-micro-batch mean: the Trainer divides it

    def __init__(self, *args, alpha: float = DEFAULT_ALPHA, **kwargs):
        super().__init__(*args, **kwargs)
        self.alpha = alpha
        # the loss is ours, not the model's: no num_items_in_batch (older transformers divide
        # by the accumulation steps only when the model takes no loss kwargs)
        self.model_accepts_loss_kwargs = False

    def get_train_dataloader(self):
        ds = self.train_dataset
        if not isinstance(ds, NgramDataset):
            return super().get_train_dataloader()
        a = self.args
        kwargs = dict(num_workers=a.dataloader_num_workers, pin_memory=a.dataloader_pin_memory)
        if a.dataloader_num_workers > 0:
            kwargs.update(persistent_workers=a.dataloader_persistent_workers,
                          prefetch_factor=a.dataloader_prefetch_factor,
                          multiprocessing_context=a.dataloader_multiprocessing_context)
        return NgramLoader(ds, batch_size=self._train_batch_size, **kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(input_ids=inputs["input_ids"])
        logits = outputs.logits if hasattr(outputs, "logits") else outputs[0]
        loss = ngram_loss(logits, inputs, alpha=self.alpha)
        return (loss, outputs) if return_outputs else loss
