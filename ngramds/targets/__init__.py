"""Soft targets (spec/TARGETS.md) from an open file, torch-free: :class:`TargetConfig` says
what to compute, :class:`Targets` computes batches of it in compiled code."""
from .compute import TargetBatch, Targets, batch_shapes
from .config import Plan, TargetConfig

__all__ = ["TargetConfig", "Plan", "Targets", "TargetBatch", "batch_shapes"]
