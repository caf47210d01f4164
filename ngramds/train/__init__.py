"""The training tool (console script ``ngramds-train``): a small GPT trained on an ngramds file
with one-hot or n-gram soft targets, evaluated by plain next-token loss on held-out documents,
and the plot of held-out loss of several runs.

- ``config``: :class:`RunConfig`, every option of one run with its default (torch-free).
- ``model``: the GPT (pre-LayerNorm, tied embeddings).
- ``loop``: :func:`train_run`, the README's integration as one function; JSON-lines log.
- ``plot``: held-out loss of runs against steps and wall-clock time (``ngramds[plot]``).
- ``cli``: ``ngramds-train run | compare | plot``.

Needs ``torch`` (``pip install 'ngramds[torch]'``); importing this package needs nothing.
"""
from .config import TARGET_KINDS, RunConfig

__all__ = ["RunConfig", "TARGET_KINDS"]
