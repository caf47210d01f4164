"""ngramds: corpus next-token distributions as memory-mapped training targets."""
from .bounded import merge_partials as merge
from .builder import Corpus, build
from .errors import ChecksumError, FileAccessError, FormatError, InputError, NgramdsError
from .reader import NgramFile
from .reader import open_file as open  # noqa: A001  (ngramds.open is the public name)
from .split import split_documents

__version__ = "0.1.0"

__all__ = ["build", "merge", "open", "Corpus", "split_documents", "NgramFile", "NgramdsError",
           "InputError", "FormatError", "ChecksumError", "FileAccessError", "__version__"]
