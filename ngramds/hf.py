"""HuggingFace ``transformers`` glue: :class:`NgramTrainer`, a ``Trainer`` that trains on an
:class:`~ngramds.torch.NgramDataset` with :func:`~ngramds.torch.ngram_loss`, right by
construction (needs ``transformers``; ``pip install transformers accelerate``).

What it fixes against a plain ``Trainer``: the train loader is an
:class:`~ngramds.torch.NgramLoader` built here, so ngramds shards by rank and accelerate does
not shard a second time, no collator strips the soft targets (``remove_unused_columns`` does
not matter), epochs follow the Trainer's; the loss is the micro-batch mean, which the Trainer
divides by the gradient-accumulation steps (all micro-batches are the same size), so the
loss and gradients of ``gradient_accumulation_steps=k`` equal those of one k-times larger batch;
checkpoints hold the loader's state (``ngramds_loader.json``), and
``train(resume_from_checkpoint=...)`` continues the epoch from it exactly instead of replaying
and skipping the batches already trained (the Trainer still counts them: steps and the logged
epoch go on as in an uninterrupted run).
"""
from __future__ import annotations

import inspect
import json
import os

try:
    from transformers import Trainer, TrainerCallback
    from transformers.trainer_utils import get_last_checkpoint
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ImportError("ngramds.hf needs transformers: pip install transformers accelerate") from exc

from .errors import InputError
from .torch import DEFAULT_ALPHA, NgramDataset, NgramLoader, ngram_loss

STATE_FILE = "ngramds_loader.json"  # in each checkpoint directory

__all__ = ["NgramTrainer"]


class NgramTrainer(Trainer):
    """``Trainer(model, args, train_dataset=NgramDataset(...), alpha=1.0, ...)``.

    ``alpha`` weighs the soft targets (see :func:`ngram_loss`). The model is called as
    ``model(input_ids=...)`` (plus ``position_ids`` and ``use_cache=False`` when the dataset has
    ``doc_info=True``: an HF model reads packed documents from ``position_ids`` only without a
    cache; ``use_cache`` is passed when the forward takes it) and must return logits for every
    position (``.logits`` or the first output); the loss follows
    the dataset's label layout (``layout="hf"`` included). Evaluation datasets are handled by
    ``Trainer`` as usual.

    Args:
        *args: ``Trainer``'s arguments, with ``train_dataset`` an :class:`NgramDataset`.
        alpha: the weight of the soft targets in :func:`ngramds.torch.ngram_loss`.
        **kwargs: ``Trainer``'s keyword arguments.
    """

    loss_is_scaled_for_ga = False  # a per-micro-batch mean: the Trainer divides it

    def __init__(self, *args, alpha: float = DEFAULT_ALPHA, **kwargs):
        super().__init__(*args, **kwargs)
        self.alpha = alpha
        # the loss is ours, not the model's: no num_items_in_batch (older transformers divide
        # by the accumulation steps only when the model takes no loss kwargs)
        self.model_accepts_loss_kwargs = False
        self._loader: NgramLoader | None = None
        self._resume_state: dict | None = None
        self._loader_resumed = False  # the loader continues from a checkpoint's state
        self._checkpoint: str | None = None
        self.add_callback(_SaveLoaderState(self))

    def train(self, resume_from_checkpoint=None, *args, **kwargs):
        checkpoint = resume_from_checkpoint
        if checkpoint is True and isinstance(self.train_dataset, NgramDataset):
            # the Trainer's own "last checkpoint", resolved here to read the loader's state
            out = self.args.output_dir
            checkpoint = (get_last_checkpoint(out) if out and os.path.isdir(out) else None) or True
            resume_from_checkpoint = checkpoint
        self._checkpoint = checkpoint if isinstance(checkpoint, str) else None
        if isinstance(checkpoint, str) and isinstance(self.train_dataset, NgramDataset):
            state_file = os.path.join(checkpoint, STATE_FILE)
            if os.path.isfile(state_file):
                with open(state_file) as f:
                    self._resume_state = json.load(f)
                if not hasattr(Trainer, "get_resumed_dataloader"):  # transformers < 5
                    self.args.ignore_data_skip = True  # the loader resumes; no replay and skip
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def get_resumed_dataloader(self, dataloader, num_batches: int):
        """The train loader resumed from the checkpoint's loader state is already past the
        ``num_batches`` trained: it is returned as it is (the Trainer still counts those
        batches, so the epoch it logs is right); other loaders are skipped as usual.

        Raises:
            InputError: the checkpoint holds no loader state (not written by NgramTrainer, or
                not on a file system every node shares): the epoch cannot go on exactly.
        """
        if dataloader is self._loader:
            if self._loader_resumed:
                return dataloader
            raise InputError(f"{self._checkpoint} holds no {STATE_FILE} (the NgramLoader's "
                             "position), so its epoch cannot be continued exactly: resume from "
                             "a checkpoint NgramTrainer wrote (on a file system every node "
                             "shares)")
        return super().get_resumed_dataloader(dataloader, num_batches)

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
        self._loader = NgramLoader(ds, batch_size=self._train_batch_size, **kwargs)
        self._loader_resumed = self._resume_state is not None
        if self._resume_state is not None:
            self._loader.load_state_dict(self._resume_state)
            self._resume_state = None
        return self._loader

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        extra = {}
        if "position_ids" in inputs:  # packed documents: the model finds them without a cache
            extra["position_ids"] = inputs["position_ids"]
            if _takes_use_cache(self.accelerator.unwrap_model(model)):
                extra["use_cache"] = False
        outputs = model(input_ids=inputs["input_ids"], **extra)
        logits = outputs.logits if hasattr(outputs, "logits") else outputs[0]
        loss = ngram_loss(logits, inputs, alpha=self.alpha)
        return (loss, outputs) if return_outputs else loss


def _takes_use_cache(model) -> bool:
    """Whether ``model``'s forward takes ``use_cache`` (as a parameter or in ``**kwargs``)."""
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False
    return "use_cache" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


class _SaveLoaderState(TrainerCallback):
    """Writes the train loader's state into each checkpoint (on the main process)."""

    def __init__(self, trainer: NgramTrainer):
        self.trainer = trainer

    def on_save(self, args, state, control, **kwargs):
        loader = self.trainer._loader
        if loader is not None and state.is_world_process_zero:
            folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            if os.path.isdir(folder):
                with open(os.path.join(folder, STATE_FILE), "w") as f:
                    json.dump(loader.state_dict(), f)
        return control
