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
- ``torch``: :class:`NgramDataset`, :class:`NgramLoader`, :class:`NgramTargets`, the losses.
- Below them all: ``errors``, ``validation`` (integer, size and choice checks), ``progress``,
  ``hashing``, ``shuffle`` (keyed sample order), ``prefetch`` (a memory hint for compiled
  kernels), ``version``. On top: ``cli``
  (``ngramds``), ``train`` (``ngramds-train``: a small GPT trained with one-hot or n-gram
  targets, held-out evaluation, the plot) and the framework glue (``ngramds.hf``).
"""


def _numba_cache_fallback() -> None:
    """numba caches compiled kernels beside this package, else in the user's cache directory,
    and fails at import where it can write neither (read-only install, no usable $HOME): then
    point it at a private temporary directory instead."""
    import os
    import stat
    import sys
    import tempfile

    def writable(path: str) -> bool:  # numba's own test
        try:
            os.makedirs(path, exist_ok=True)
            tempfile.TemporaryFile(dir=path).close()
            return True
        except OSError:
            return False

    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    here = os.path.dirname(os.path.abspath(__file__))
    packages = [here] + [os.path.join(here, d) for d in sorted(os.listdir(here))
                         if os.path.isfile(os.path.join(here, d, "__init__.py"))]
    if all(writable(os.path.join(p, "__pycache__")) for p in packages):
        return
    user = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    if writable(os.path.join(user, "numba")):
        return
    uid = getattr(os, "getuid", lambda: 0)()
    cache = os.path.join(tempfile.gettempdir(), f"ngramds-numba-cache-{uid}")
    try:
        os.makedirs(cache, mode=0o700, exist_ok=True)
        st = os.lstat(cache)
        private = stat.S_ISDIR(st.st_mode) and st.st_uid == uid and not st.st_mode & 0o077
    except OSError:
        private = False
    if not private:  # never load compiled code from a directory others can write
        cache = tempfile.mkdtemp(prefix="ngramds-numba-cache-")
    os.environ["NUMBA_CACHE_DIR"] = cache
    if "numba" in sys.modules:
        sys.modules["numba"].config.CACHE_DIR = cache


_numba_cache_fallback()

from .errors import ChecksumError, FileAccessError, FormatError, InputError, NgramdsError
from .version import __version__

# The public names of the layers load on first use (numpy, numba and the compiled kernels
# take seconds the first time): `import ngramds` and the command lines' imports stay light,
# so that a Ctrl-C while they load is the command's own one-line "interrupted".
_LAZY = {"build": ("builder", "build"), "merge": ("builder", "merge_partials"),
         "Corpus": ("corpus", "Corpus"), "split_documents": ("corpus", "split_documents"),
         "NgramFile": ("file.reader", "NgramFile"), "open": ("file.reader", "open_file"),
         "TargetConfig": ("targets", "TargetConfig")}
_SUBPACKAGES = ("builder", "corpus", "file", "targets", "torch", "train", "cli", "hf",
                "progress", "hashing", "shuffle", "prefetch")


def __getattr__(name: str):
    """The lazily loaded public names and subpackages (PEP 562)."""
    import importlib
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
        globals()[name] = value
        return value
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

__all__ = ["build", "merge", "open", "Corpus", "split_documents", "NgramFile", "TargetConfig",
           "NgramdsError", "InputError", "FormatError", "ChecksumError", "FileAccessError",
           "__version__"]
