"""PyTorch integration: the dataset of soft targets, a resumable loader, and the losses.

Needs ``torch`` (install the build for your hardware first; see the README).
"""
from .dataset import NgramDataset
from .device import NgramTargets
from .documents import cu_seqlens
from .loader import NgramLoader
from .loss import DEFAULT_ALPHA, IGNORE_INDEX, ngram_loss, soft_cross_entropy
from .schedule import alpha_at, hold_for_epochs

__all__ = ["NgramDataset", "NgramLoader", "NgramTargets", "cu_seqlens", "soft_cross_entropy",
           "ngram_loss", "alpha_at", "hold_for_epochs", "DEFAULT_ALPHA", "IGNORE_INDEX"]
