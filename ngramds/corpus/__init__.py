"""Corpora as the builder reads them: the :class:`Corpus` type and its checks, readers of token
files, Megatron datasets and text, bounded token streams, the document split and the built-in
standard-library corpus."""
from .readers import load_corpus, load_stream
from .split import split_documents
from .types import Corpus

__all__ = ["Corpus", "load_corpus", "load_stream", "split_documents"]
