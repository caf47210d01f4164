"""The `ngramds` command line: build, merge, info, verify, query, show."""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Callable


from .errors import InputError, NgramdsError
from .version import __version__

# (numpy, numba and the layers load in the commands, inside main()'s handling of Ctrl-C)


class CommandParser(argparse.ArgumentParser):
    """Usage mistakes in one line, like every other error (exit 2), named by the command
    (``ngramds``, ``ngramds-train``)."""

    def error(self, message):
        self.exit(2, f"{self.prog.split()[0]}: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    p = CommandParser(prog="ngramds", description=__doc__)
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="build a file of next-token distributions from a corpus")
    b.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="token files (.bin with --dtype, .npy), Megatron prefix.bin/.idx, "
                        ".parquet/.arrow (a text or token-id column), .txt/.jsonl (also "
                        ".gz/.bz2/.xz/.zst) with --tokenizer, directories of these; several "
                        "form one corpus in order")
    b.add_argument("-o", "--output", required=True, help="output file (written atomically)")
    b.add_argument("--orders", type=_orders, metavar="LIST",
                   help="orders n of the n-grams stored, e.g. 1-4 or 2,3,5 (default 2-4: "
                        "what Witten-Bell targets, the dataset's default, use)")
    b.add_argument("--order", type=int, help="store this one order only (1..16)")
    b.add_argument("--top-k", type=int, help="store only the K most frequent next tokens")
    b.add_argument("--compact", action="store_true",
                   help="no per-position context ids (2-8 bytes per token less; contexts are "
                        "then searched from the tokens: slower CPU targets, device targets "
                        "search on the device)")
    b.add_argument("--min-count", metavar="SPEC",
                   help="prune contexts seen fewer than N times: N (every stored order but "
                        "the lowest) or per order, e.g. 4:2,3:2 (docs/BUILD.md)")
    b.add_argument("--vocab-size", type=int, help="vocabulary size (default: from the data)")
    b.add_argument("--dtype", choices=["uint16", "uint32"], help="dtype of headerless files")
    b.add_argument("--force-dtype", action="store_true",
                   help="read headerless files with --dtype even where their ids look like "
                        "the other dtype's (refused by default)")
    b.add_argument("--eos-id", type=int,
                   help="token files: EOS ends its document; text: appended to each document")
    b.add_argument("--doc-lengths", metavar="FILE",
                   help="document lengths (.npy or one integer per line) for all tokens")
    b.add_argument("--tokenizer", metavar="JSON", help="HuggingFace tokenizer.json for text")
    b.add_argument("--field", "--text-field", dest="text_field", metavar="NAME",
                   help="JSONL field or parquet/Arrow column holding the text or token ids "
                        "(default: text, else a token-id list column such as input_ids)")
    b.add_argument("--text-unit", choices=["line", "file"],
                   help=".txt documents: one per line (default for files named) or one per "
                        "file (default for files found in a directory)")
    b.add_argument("--include", action="append", metavar="GLOB",
                   help="in directories, read only files whose path inside matches GLOB "
                        "(repeatable; default: every known input kind)")
    b.add_argument("--strict", action="store_true",
                   help="input warnings (EOS id never seen, dtype looks wrong, tiny line "
                        "documents) are errors")
    b.add_argument("--prompt-field", metavar="NAME",
                   help="JSONL prompt/response pairs (with --response-field): one document per "
                        "record, prompt tokens never labels in training items")
    b.add_argument("--response-field", metavar="NAME", help="the response's JSONL field")
    b.add_argument("--default-corpus", action="store_true",
                   help="build this Python's standard library source (no download); the "
                        "trained tokenizer is saved beside the output")
    b.add_argument("--val-fraction", type=float,
                   help="hold out this fraction of documents (never counted) ...")
    b.add_argument("--val-output", metavar="PATH",
                   help="... and build them into PATH (for held-out evaluation)")
    b.add_argument("--seed", type=int, default=0, help="seed of the validation split")
    b.add_argument("--threads", type=int, help="compiled-code threads (default: all cores)")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    _scale_options(b)
    b.add_argument("--partial", action="store_true",
                   help="write this shard's sorted runs to the directory OUTPUT, to combine "
                        "later with `ngramds merge`")

    g = sub.add_parser("merge", help="merge partial results (build --partial) into one file")
    g.add_argument("partials", nargs="+", metavar="PARTIAL", help="partial result directories, "
                   "in corpus order")
    g.add_argument("-o", "--output", required=True, help="output file (written atomically)")
    g.add_argument("--vocab-size", type=int, help="vocabulary size (default: from the shards)")
    g.add_argument("--compact", action="store_true", help="as `ngramds build --compact`")
    g.add_argument("--min-count", metavar="SPEC", help="as `ngramds build --min-count`")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    _scale_options(g)

    i = sub.add_parser("info", help="summarise a file")
    i.add_argument("file")
    i.add_argument("--json", action="store_true", help="print JSON")

    v = sub.add_parser("verify", help="recompute checksums and check structure")
    v.add_argument("file")

    q = sub.add_parser("query", help="show the next-token distribution of a context")
    q.add_argument("file")
    q.add_argument("context", nargs="*", type=int, metavar="ID",
                   help="context token ids, oldest first (fewer than order-1: document start)")
    q.add_argument("--tokenizer", metavar="JSON", help="decode ids (and encode --text)")
    q.add_argument("--text", help="context as text (its last order-1 tokens)")
    q.add_argument("--top", type=_count, default=10, help="entries to show (default 10)")
    q.add_argument("--order", type=int, help="table to ask (default: the order whose full "
                   "context has this many tokens if stored, else the highest)")

    s = sub.add_parser("show", help="show a training sample: each position's token and its "
                       "top targets, with the targets' entropy")
    s.add_argument("file")
    s.add_argument("--sample", type=_count, required=True, metavar="K",
                   help="sample number k (as NgramDataset's ds[k]): tokens k*L .. k*L+L, or "
                        "the k-th document-aligned sample")
    s.add_argument("--sampling", choices=["windows", "documents"], default="windows",
                   help="as NgramDataset's sampling (default windows)")
    s.add_argument("--seq-len", type=_count, default=64, metavar="L",
                   help="sample length (default 64)")
    s.add_argument("--tokenizer", metavar="JSON", help="decode ids")
    s.add_argument("--top", type=_count, default=5, help="targets per position (default 5)")
    s.add_argument("--seed", type=_count, default=0, help="dataset seed (tail draws)")
    s.add_argument("--epoch", type=_count, default=0, help="epoch (tail draws)")
    from .targets.config import add_target_flags
    add_target_flags(s.add_argument_group("targets (NgramDataset's: see ngramds.TargetConfig)"))
    return p


def _scale_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--memory-limit", metavar="SIZE",
                   help="bound resident memory (e.g. 1G): spill sorted runs to --tmp-dir and "
                        "merge them; same output as in memory (docs/SCALE.md). Merges, "
                        "--partial and Dask builds given none use 1 GiB beyond what the "
                        "process holds")
    p.add_argument("--tmp-dir", metavar="DIR", help="where runs spill (default: beside the "
                   "output); needs about 30-50 bytes per token per order")
    p.add_argument("--engine", choices=["local", "dask"], default="local",
                   help="run the sort and merge tasks here or on a Dask cluster")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler (default: a local cluster of --workers processes)")
    p.add_argument("--workers", type=int, help="local Dask worker processes (default 2)")


def _orders(text: str) -> list[int]:
    """'1-4' or '2,3,4' -> [1, 2, 3, 4] / [2, 3, 4] (each in 1..MAX_ORDER)."""
    from .file.format import MAX_ORDER
    try:
        out = []
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            lo, hi = int(lo), int(hi or lo)
            if not 1 <= lo <= hi <= MAX_ORDER:
                raise argparse.ArgumentTypeError(
                    f"orders are integers in 1..{MAX_ORDER}, ranges ascending; got {text!r}")
            out += range(lo, hi + 1)
        return out
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected orders like 1-4 or 2,3,4, got {text!r}") from None


def _count(text: str) -> int:
    """A non-negative integer."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _cmd_build(a) -> int:
    from .errors import strict_inputs
    with strict_inputs(a.strict):
        return _build(a)


def _build(a) -> int:
    from dataclasses import replace

    from .builder.dispatch import build_from
    from .builder.options import build_options
    from .corpus import load_corpus
    from .corpus.readers import input_files
    from .file.paths import check_distinct, check_output_path
    _check_threads(a.threads)
    if (a.val_fraction is None) != (a.val_output is None):
        raise NgramdsError("--val-fraction and --val-output go together")
    if a.default_corpus and a.inputs:
        raise NgramdsError("give either INPUT files or --default-corpus, not both")
    if a.partial and (a.val_fraction is not None or a.default_corpus or not a.inputs):
        raise NgramdsError("--partial builds a shard of INPUT files; it takes no "
                           "--val-fraction or --default-corpus")
    if not a.inputs and not a.default_corpus:
        raise NgramdsError("no INPUT given; name corpus files or use --default-corpus")
    # the build options checked once, by the library, before any work
    options = build_options(order=a.order, orders=a.orders, top_k=a.top_k,
                            vocab_size=a.vocab_size, compact=a.compact, progress=not a.quiet,
                            memory_limit=a.memory_limit, tmp_dir=a.tmp_dir, engine=a.engine,
                            scheduler=a.scheduler, workers=a.workers, partial=a.partial,
                            min_count=a.min_count)
    # every output checked before any work: usable, and none of them an input or another
    outputs = [("output", check_output_path(a.output, directory=a.partial))]
    if a.val_output is not None:
        outputs.append(("--val-output", check_output_path(a.val_output, what="--val-output")))
    tok_path = Path(a.output).with_suffix(".tokenizer.json") if a.default_corpus else None
    if tok_path is not None:
        from .corpus.stdlib import saved_tokenizer
        saved_tokenizer(tok_path)  # a file there must be a tokenizer: it is reused
        outputs.append(("tokenizer", tok_path))
    check_distinct(outputs, input_files(a.inputs, boundaries=a.doc_lengths,
                                        tokenizer=a.tokenizer, include=a.include))
    if a.threads:
        import numba
        numba.set_num_threads(a.threads)
    inputs = dict(dtype=a.dtype, force_dtype=a.force_dtype, eos_id=a.eos_id,
                  boundaries=a.doc_lengths,
                  tokenizer=a.tokenizer, text_field=a.text_field, text_unit=a.text_unit,
                  include=a.include)
    inputs.update(_pairs_fields(a))  # prompt/response pairs (corpus/pairs.py)
    if options.bounded and a.inputs and a.val_fraction is None:
        # token files stay on disk and are read in bounded chunks
        build_from(a.inputs, a.output, options, **inputs)
        if not a.partial and not a.quiet:  # the summary reads the whole file: not here
            print(f"ngramds: `ngramds info {a.output}` summarises the file", file=sys.stderr)
        return 0
    if a.default_corpus:
        from .corpus.stdlib import stdlib_corpus
        if not a.quiet:
            print(f"ngramds: tokenising the standard library (tokenizer: {tok_path})",
                  file=sys.stderr)
        corpus = stdlib_corpus(tok_path)
    elif a.prompt_field is not None:
        from .corpus.pairs import read_pairs
        corpus = read_pairs(a.inputs, a.tokenizer, a.prompt_field, a.response_field, a.eos_id)
    else:
        corpus = load_corpus(a.inputs, progress=not a.quiet, **inputs)
    if a.val_fraction is not None:
        from .corpus import split_documents
        corpus, val = split_documents(corpus, a.val_fraction, a.seed)
        if options.vocab_size is None:  # both files share one vocabulary
            options = replace(options, vocab_size=corpus.vocab_size or int(
                max(corpus.tokens.max(), val.tokens.max())) + 1)
        build_from(val, a.val_output, options)
    build_from(corpus, a.output, options)
    _print_summary(a.output, a.quiet)
    return 0


def _pairs_fields(a) -> dict:
    """The input options of --prompt-field/--response-field pairs ({} without them),
    checked before any work."""
    from .builder.dispatch import pair_fields
    pairs = pair_fields(a.prompt_field, a.response_field, partial=a.partial)
    if pairs and (a.default_corpus or not a.tokenizer):
        raise InputError("prompt/response pairs are JSONL INPUT files read with --tokenizer")
    return pairs


def _check_threads(threads) -> None:
    if threads is not None:
        import numba
        most = numba.config.NUMBA_NUM_THREADS
        if not 1 <= threads <= most:
            raise InputError(f"--threads must be in 1..{most} (this machine's cores), got "
                             f"{threads}")


def _print_summary(path, quiet: bool) -> None:
    if not quiet:
        from .file.reader import open_file
        from .file.summary import format_summary, summary
        print(format_summary(summary(open_file(path))))


def _cmd_merge(a) -> int:
    from .builder import merge_partials
    merge_partials(a.partials, a.output, vocab_size=a.vocab_size, memory_limit=a.memory_limit,
                   tmp_dir=a.tmp_dir, engine=a.engine, scheduler=a.scheduler,
                   workers=a.workers, progress=not a.quiet, compact=a.compact,
                   min_count=a.min_count)
    return 0


def _cmd_info(a) -> int:
    from .file.reader import open_file
    from .file.summary import format_summary, summary
    f = open_file(a.file)
    s = summary(f)
    s["target_entropy"] = _target_entropies(f)
    if a.json:
        print(json.dumps(s, indent=2, default=_json_value))
    else:
        print(format_summary(s))
        print(_format_entropies(s["target_entropy"]))
    return 0


ENTROPY_MODES = {"allnts": dict(targets="allnts"), "coconts": dict(targets="coconts"),
                 "coconts-renorm": dict(targets="coconts", residual="renorm")}


def _target_entropies(f) -> dict:
    """Mean entropy (nats) of the default targets of each mode (mixing "auto", r = 8) over
    label positions (all, or DEFAULT_POSITIONS evenly spaced): the soft loss's floor. None for
    a mode the file cannot give (r above its --top-k)."""
    from .targets import TargetConfig
    from .targets.entropy import mean_entropy
    out: dict = {"positions": {}}
    for name, options in ENTROPY_MODES.items():
        try:
            out[name], out["positions"][name] = mean_entropy(f, TargetConfig(**options))
        except InputError:
            out[name] = out["positions"][name] = None
    return out


def _format_entropies(e: dict) -> str:
    shown = "  ".join(f"{name} {value:.3f} ({e['positions'][name]:,} positions)"
                      for name, value in e.items() if name != "positions" and value is not None)
    return f"target entropy, nats (the soft loss's floor; one-hot's is 0): {shown}"


def _json_value(value):
    """JSON for what a header may hold besides JSON types (msgpack bin, ext): bytes as hex."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if hasattr(value, "data") and hasattr(value, "code"):  # msgpack ExtType
        return {"ext": value.code, "data": bytes(value.data).hex()}
    return repr(value)


def _cmd_verify(a) -> int:
    from .file.reader import open_file
    open_file(a.file, verify=True)
    print(f"{a.file}: OK")
    return 0


def _cmd_query(a) -> int:
    from .corpus.readers import load_tokenizer
    from .file.reader import open_file
    f = open_file(a.file)
    tok = load_tokenizer(a.tokenizer) if a.tokenizer else None
    context = list(a.context)
    for t in context:
        if not 0 <= t < f.vocab_size:
            raise InputError(f"token id {t} is outside the vocabulary of {a.file} "
                             f"(0..{f.vocab_size - 1})")
    if a.text is not None:
        if tok is None:
            raise NgramdsError("--text needs --tokenizer to encode it")
        context = tok.encode(a.text, add_special_tokens=False).ids
    t = f.table_for(context, a.order)
    if len(context) > t.order - 1:
        context = context[len(context) - (t.order - 1):]
    ids, counts = t.distribution(context)
    total = t.total(context)
    show = (lambda t: repr(tok.decode([int(t)]))) if tok else (lambda t: "")
    ctx_text = " ".join(map(str, context)) or "(document start)"
    if tok is not None and context:
        ctx_text += f"  {tok.decode(context)!r}"
    print(f"order {t.order}, context {ctx_text}: seen {total:,} times, {ids.size:,} distinct "
          "next tokens stored")
    for rank, (t, c) in enumerate(zip(ids[:a.top], counts[:a.top]), 1):
        print(f"{rank:4d}  {int(t):8d}  {int(c):10,d}  {c / total:8.4f}  {show(t)}")
    return 0


def _cmd_show(a) -> int:
    import numpy as np

    from .corpus.readers import load_tokenizer
    from .file.reader import open_file
    from .targets import Targets, batch_shapes
    from .targets.assembly import fill_items, sample_layout
    from .targets.config import config_from_args
    from .targets.entropy import mean_entropy, target_entropy
    from .targets.packing import IGNORE_INDEX
    f = open_file(a.file)
    if a.seq_len < 1:
        raise InputError("--seq-len must be at least 1")
    config = config_from_args(a)
    L, k = a.seq_len, a.sample
    packing, n = sample_layout(f, L, a.sampling)
    if k >= n:
        raise InputError(f"--sample {k} is outside the {n:,} samples of seq_len {L} "
                         f"(0..{n - 1})" if n else f"the file has no sample of seq_len {L}")
    tok = load_tokenizer(a.tokenizer) if a.tokenizer else None
    t = Targets(f, config)
    out = [np.empty(shape, dtype) for shape, dtype in batch_shapes(t.plan, 1, L)]
    prompts = f.prompt_lengths is not None  # prompt tokens are no labels, as in training
    weights = np.empty((1, L), np.float32) if t.plan.soft_weight else None
    fill_items(t, np.array([k], np.int64), L, a.seed, a.epoch, out, packing=packing,
               mask_prompt=prompts, soft_weights=weights)
    where = "document-aligned" if packing is not None else f"tokens {k * L}..{k * L + L}"
    inputs, labels, ids, probs = (x[0] for x in out)
    entropy = target_entropy(ids, probs)
    labelled = labels != IGNORE_INDEX
    floor, npos = mean_entropy(f, config, seed=a.seed, epoch=a.epoch)
    text = (lambda i: f" {tok.decode([int(i)])!r}") if tok else (lambda i: "")
    plan = t.plan
    print(f"sample {k} of {n:,}: {where}, seq_len {L}; targets "
          f"{config.targets}"
          f"{f' r={config.top_r} {config.residual}' if config.targets == 'coconts' else ''}, "
          f"orders {','.join(map(str, plan.orders))}, mixing {plan.mixing}"
          f"{f' (escape {plan.escape:g})' if plan.mixing == 'witten-bell' else ''}, "
          f"seed {a.seed}, epoch {a.epoch}")
    print(f"{'t':>4} {'input':>8} {'label':>8} {'H nats':>8}  top targets (id:probability)")
    for i in range(L):
        merged: dict = {}
        for j, p in zip(ids[i].tolist(), probs[i].tolist()):
            if p > 0:
                merged[j] = merged.get(j, 0.0) + p
        top = sorted(merged.items(), key=lambda x: (-x[1], x[0]))[:a.top]
        shown = "  ".join(f"{j}:{p:.3f}{text(j)}" for j, p in top)
        inp, lab = int(inputs[i]), int(labels[i])
        if lab == IGNORE_INDEX:
            why = "prompt" if packing is None else \
                "end of a piece, padding" + (" or prompt" if prompts else "")
            print(f"{i:4d} {inp:8d} {lab:8d} {'':>8}  (no label: {why})"
                  f"{f'   |{text(inp)}' if tok else ''}")
            continue
        words = f"   |{text(inp)} ->{text(lab)}" if tok else ""
        if weights is not None:  # (alpha_count: the soft term's share is alpha times this)
            words = f"  (soft weight {weights[0, i]:.3f}){words}"
        print(f"{i:4d} {inp:8d} {lab:8d} {entropy[i]:8.3f}  {shown}{words}")
    mean = float(entropy[labelled].mean()) if labelled.any() else 0.0
    print(f"mean entropy: {mean:.3f} nats over this sample's targets, {floor:.3f} "
          f"over {npos:,} positions of the file (the soft loss's floor)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code (130 after Ctrl-C, at any
    moment: also while the heavy modules load)."""
    return run_command("ngramds", _parser, {
        "build": _cmd_build, "merge": _cmd_merge, "info": _cmd_info, "verify": _cmd_verify,
        "query": _cmd_query, "show": _cmd_show}, argv)


def run_command(prog: str, parser: Callable[[], argparse.ArgumentParser],
                handlers: dict[str, Callable[[argparse.Namespace], int]],
                argv: list[str] | None) -> int:
    """Parse ``argv`` with ``parser()`` and run its command's handler (the ``ngramds`` and
    ``ngramds-train`` entry points).

    Returns:
        The handler's exit code; 2 after a usage mistake or an NgramdsError (printed in one
        line as ``prog: error: ...``; raised with ``--debug``), 141 when the reader of the
        output went away, 130 after Ctrl-C (also while the heavy modules load). Warnings
        print in one line as ``prog: warning: ...``.
    """
    try:
        return _run(prog, parser, handlers, argv)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def _run(prog, parser, handlers, argv) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # usage errors (2), --help and --version (0)
        return exc.code if isinstance(exc.code, int) else 2
    handler = handlers[args.command]

    def one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(str(message).split())
        print(f"{prog}: warning: {text}", file=file or sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = one_line_warning
        try:
            code = handler(args)
            sys.stdout.flush()
            return code
        except NgramdsError as exc:
            if args.debug:
                raise
            print(f"{prog}: error: {' '.join(str(exc).split())}", file=sys.stderr)
            return 2
        except BrokenPipeError:
            # the reader of the output went away (e.g. `| head`): stop quietly, and keep the
            # interpreter's final flush from reporting it again
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError, AttributeError):
                pass
            return 141
        except KeyboardInterrupt:
            print(f"{prog}: interrupted", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
