"""``build``: one entry point for every way of building a file (in memory, bounded, sharded,
distributed); picks the path and reads the corpus."""
from __future__ import annotations

import time
import warnings
from contextlib import nullcontext
from pathlib import Path

from ..corpus.pairs import check_pair_fields, pair_stream, read_pairs
from ..corpus.readers import input_files, load_corpus, load_stream, needs_spool
from ..corpus.types import check_corpus, check_prompt_lengths
from ..errors import InputError, InputWarning, strict_inputs
from ..file import format as fmt
from ..file.header import file_header, table_entries
from ..file.paths import check_distinct, check_output_path
from ..file.writer import write_atomic
from ..progress import Progress
from .bounded import build_bounded, spill_dir
from .links import file_tables
from .options import BuildOptions, build_options
from .tables import TABLE_STAGES, build_tables

__all__ = ["build", "build_from", "pair_fields"]

READ_SHARE = 8  # one read of the input (a row, a pair record) holds at most 1/8 of the limit


def build(source, output, *, order: int | None = None, orders=None, top_k: int | None = None,
          vocab_size: int | None = None, doc_offsets=None, doc_lengths=None,
          progress: bool = True, memory_limit: int | str | None = None, tmp_dir=None,
          engine: str = "local", scheduler: str | None = None, workers: int | None = None,
          partial: bool = False, strict: bool = False, compact: bool = False,
          min_count: int | str | dict | None = None, **input_options) -> Path:
    """Build an ngramds file at ``output`` and return its path.

    ``source`` is a :class:`Corpus`, a 1-D integer array (documents given by ``doc_offsets``,
    ``doc_lengths`` or ``eos_id``; else one document), an iterable of token-id sequences (one
    per document), or input file path(s) read with ``input_options`` (see
    :func:`ngramds.corpus.load_corpus`). The file stores one table for each of ``orders``
    (default 2, 3, 4: what the default Witten-Bell targets use), sharing one token stream, or
    only the table of ``order``.

    ``memory_limit`` (bytes, or a size such as "1G") bounds the build's memory by spilling
    sorted runs under ``tmp_dir`` (default: beside ``output``); ``engine="dask"`` runs those
    steps on a Dask cluster (``scheduler`` address, else ``workers`` local processes);
    ``partial`` writes a shard's runs to the directory ``output`` for
    :func:`ngramds.merge`. All give the same file as the in-memory build (docs/SCALE.md).
    Input that looks wrong (an EOS id that never occurs, ids that look like the other dtype,
    tiny line documents) warns with :class:`ngramds.errors.InputWarning`; ``strict`` makes it
    an InputError, before anything is written.

    ``compact`` leaves out the per-position context ids (spec/FORMAT.md: 2-8 bytes per token
    less); readers then find each position's context from its tokens: the previous position's
    context and ``prefix_offsets`` in the CPU loader, a search of packed keys on the device
    (docs/BENCHMARKS.md: compiled CPU targets about 0.7x as fast).

    Args:
        source: a :class:`Corpus`, a 1-D integer array, an iterable of documents (token-id
            sequences), a HuggingFace dataset, or input file path(s).
        output: the file to write (atomically), or with ``partial`` the shard's directory.
        order: store the table of this one order (1..16).
        orders: store these orders (default 2, 3, 4); give ``order`` or ``orders``.
        top_k: keep only the K most frequent next tokens per context (totals stay exact).
        vocab_size: the vocabulary size (default: the tokenizer's, else max id + 1).
        doc_offsets: document start offsets of an array ``source`` (with its length last).
        doc_lengths: document lengths of an array ``source``, or a file of them.
        progress: print a progress line.
        memory_limit: bytes (or "1G", ...) the build may hold; spills sorted runs beyond.
        tmp_dir: where to spill (default: beside ``output``).
        engine: "local" or "dask".
        scheduler: the Dask scheduler's address (``engine="dask"``).
        workers: Dask workers to start locally when no scheduler is given.
        partial: write a shard's sorted runs for :func:`ngramds.merge` instead of a file.
        strict: make input warnings errors, raised before anything is written.
        compact: leave out the per-position context ids.
        min_count: prune contexts seen fewer times: N (every stored order but the lowest),
            "4:2,3:2" or {4: 2, 3: 2} (spec/FORMAT.md, "Pruned files"; docs/BUILD.md).
        **input_options: options of the readers (``eos_id``, ``tokenizer``, ``dtype``,
            ``text_field``, ``include``, ...; see :func:`ngramds.corpus.load_corpus`).

    Returns:
        The path of the written file (or shard directory).

    Raises:
        InputError: unusable input or options (named in the message).
        FormatError: an input file is damaged or of an unknown kind.
        FileAccessError: an input cannot be read, or the output cannot be written (or is
            one of the inputs).
    """
    with strict_inputs(strict):
        options = build_options(order=order, orders=orders, top_k=top_k,
                                vocab_size=vocab_size, memory_limit=memory_limit,
                                tmp_dir=tmp_dir, engine=engine, scheduler=scheduler,
                                workers=workers, partial=partial, compact=compact,
                                progress=progress, min_count=min_count)
        return build_from(source, output, options, doc_offsets=doc_offsets,
                          doc_lengths=doc_lengths, **input_options)


NO_PARTIAL_PAIRS = ("a partial result keeps no prompt lengths; build prompt/response pairs "
                    "without partial, --partial (memory_limit and engine are fine)")


def pair_fields(prompt_field: str | None, response_field: str | None, *,
                partial: bool = False) -> dict:
    """The input options of JSONL prompt/response pairs (``{}`` without them), checked: both
    fields or neither, two field names, no partial result."""
    if prompt_field is None and response_field is None:
        return {}
    if prompt_field is None or response_field is None:
        raise InputError("prompt_field and response_field (--prompt-field, --response-field) "
                         "go together")
    if partial:
        raise InputError(NO_PARTIAL_PAIRS)
    check_pair_fields(prompt_field, response_field)
    return {"prompt_field": prompt_field, "response_field": response_field}


def build_from(source, output, options: BuildOptions, *, doc_offsets=None, doc_lengths=None,
               **input_options) -> Path:
    """:func:`build` with its build options already checked (``ngramds build`` checks them
    once, before reading the corpus, for its one or two builds)."""
    pairs = pair_fields(input_options.pop("prompt_field", None),
                        input_options.pop("response_field", None), partial=options.partial)
    orders, vocab_size, progress = options.orders, options.vocab_size, options.progress
    partial = options.partial
    # fail before the work, not after it; never write over an input
    output = check_output_path(output, directory=partial)
    check_distinct([("output", output)], input_files(source, **input_options))
    eos_id = input_options.get("eos_id")
    if eos_id is not None and vocab_size is not None and eos_id >= vocab_size:
        warnings.warn(f"--eos-id {eos_id} is outside the vocabulary (--vocab-size "
                      f"{vocab_size}); is it right?", InputWarning, stacklevel=3)
    if partial and getattr(source, "prompt_lengths", None) is not None:
        raise InputError(NO_PARTIAL_PAIRS)
    if options.bounded:
        # text is tokenised batch by batch into token files in a locked temporary directory
        # (beside the output or under tmp_dir), removed when the build ends, whatever happens
        parent = options.tmp_dir or output.parent
        spool = spill_dir(parent, output.name, "tokenising text") \
            if needs_spool(source, **input_options) else nullcontext()
        with spool as text_spool:
            limit = options.memory_limit
            read_bytes = limit // READ_SHARE if limit else None
            if pairs:
                stream = pair_stream(source, input_options.get("tokenizer"), eos_id=eos_id,
                                     spool=text_spool, read_bytes=read_bytes,
                                     progress=progress, **pairs)
            else:
                stream = load_stream(source, doc_offsets=doc_offsets, doc_lengths=doc_lengths,
                                     text_spool=text_spool, progress=progress,
                                     read_bytes=read_bytes, **input_options)
            return build_bounded(stream, output, options=options)
    t0 = time.perf_counter()
    stages = ["reading input", *TABLE_STAGES * len(orders), "writing file"]
    bar = Progress(stages, enabled=progress)
    bar.step("reading input")
    if pairs:
        corpus = read_pairs(source, input_options.get("tokenizer"), eos_id=eos_id, **pairs)
    else:
        corpus = load_corpus(source, doc_offsets=doc_offsets, doc_lengths=doc_lengths,
                             progress=progress, **input_options)
    tokens, offsets, vocab_size = check_corpus(corpus, vocab_size)
    num_docs = offsets.size - 1
    arrays = {"tokens": tokens,
              "doc_offsets": offsets.astype(fmt.uint_dtype(tokens.size))}
    if corpus.prompt_lengths is not None:  # spec/FORMAT.md: the optional prompt_lengths
        prompts = check_prompt_lengths(corpus.prompt_lengths, offsets)
        arrays["prompt_lengths"] = prompts.astype(fmt.uint_dtype(int(prompts.max())))
    sections = {}
    for n in orders:
        bar.suffix = f" (order {n})" if len(orders) > 1 else ""
        sections[n] = build_tables(tokens, offsets, n, vocab_size, options.top_k, bar)
    arrays.update(file_tables(sections, compact=options.compact, min_count=options.min_count))
    del sections
    tables = table_entries(orders, options.top_k, arrays, options.min_count)
    header = file_header(vocab_size, tokens.size, num_docs, tables, corpus.sources,
                         corpus.tokenizer)
    bar.suffix = ""
    bar.step("writing file")
    size = write_atomic(Path(output), header, arrays)
    dt = time.perf_counter() - t0
    contexts = ", ".join(f"{t['num_contexts']:,}" for t in tables)
    bar.finish(f"ngramds: built {output}: {tokens.size:,} tokens, {num_docs:,} documents, "
               f"order {','.join(map(str, orders))}, {contexts} contexts, "
               f"{size / 2**20:.1f} MiB {bar.timing(dt, tokens.size)}")
    return Path(output)
