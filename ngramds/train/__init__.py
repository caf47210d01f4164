"""The training tool (console script ``ngramds-train``): a small GPT trained on an ngramds file
with one-hot or n-gram soft targets, evaluated by plain next-token loss on held-out documents,
and the plot of held-out loss of several runs.

- ``config``: :class:`RunConfig`, every option of one run with its default (torch-free).
- ``model``: the GPT (pre-LayerNorm, tied embeddings).
- ``loop``: :func:`train_run`, the README's integration as one function; JSON-lines log.
- ``plot``: held-out loss of runs against steps and wall-clock time (needs matplotlib).
- ``cli``: ``ngramds-train run | compare | plot``.

Needs ``torch`` (``pip install torch``); importing this package needs nothing.
"""
__all__ = ["RunConfig", "TARGET_KINDS"]


def __getattr__(name: str):
    """RunConfig and TARGET_KINDS, loaded on first use (they need the targets' kernels: the
    command line loads them inside its handling of Ctrl-C)."""
    if name in __all__:
        from . import config
        return getattr(config, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
