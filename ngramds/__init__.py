"""ngramds: corpus next-token distributions as memory-mapped training targets.

Code map (data flows left to right; each package imports only from the ones it names):

    corpus/  ->  builder/  ->  file/  ->  targets/  ->  torch/
    input        sort, count,  format,    soft targets  dataset, loader,
    readers,     runs, merge   writer +   (numpy,       loss (optional
    Corpus,      (corpus,      reader,    compiled;     torch adapter;
    split        file)         verify,    file)         targets, file)
    (file)                     summary

- ``corpus``: the :class:`Corpus` type and its checks, readers of token files, Megatron
  datasets and text, bounded token streams, the document split, the stdlib corpus.
- ``builder``: ``build`` (one entry point) -> in-memory tables, or sorted runs on disk merged
  in bounded memory, shards (partial results) and Dask; writes through ``file``.
- ``file``: the on-disk format of spec/FORMAT.md: header and sections written and read as a
  pair, atomic writes and temporaries, full verification, summaries.
- ``targets``: :class:`TargetConfig` (what to compute) and :class:`Targets` (compiled batches
  of spec/TARGETS.md) over an open file; torch-free.
- ``torch``: :class:`NgramDataset`, :class:`NgramLoader`, the losses.
- Below them all: ``errors``, ``progress``, ``hashing``, ``shuffle`` (keyed sample order),
  ``version``. On top: ``cli`` and the framework glue (``ngramds.hf``, ``ngramds.lightning``).
"""
from .builder import build, merge_partials as merge
from .corpus import Corpus, split_documents
from .errors import ChecksumError, FileAccessError, FormatError, InputError, NgramdsError
from .file.reader import NgramFile
from .file.reader import open_file as open  # noqa: A001  (ngramds.open is the public name)
from .targets import TargetConfig
from .version import __version__

__all__ = ["build", "merge", "open", "Corpus", "split_documents", "NgramFile", "TargetConfig",
           "NgramdsError", "InputError", "FormatError", "ChecksumError", "FileAccessError",
           "__version__"]
