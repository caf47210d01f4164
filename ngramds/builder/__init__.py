"""Build a file from a corpus: in memory (``tables``), or in bounded memory from sorted runs
spilled to disk (``runs`` + ``bounded``), sharded (partial results + merge) or on Dask; all give
the same bytes. ``dispatch.build`` is the one entry point."""
from .bounded import merge_partials
from .dispatch import build
from .options import DEFAULT_ORDERS

__all__ = ["build", "merge_partials", "DEFAULT_ORDERS"]
