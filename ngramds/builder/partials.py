"""Partial results (``ngramds build --partial``): a shard's tokens and sorted runs in a
directory, described by ``manifest.json`` (written last), and their validation before a merge.

A partial carries checksums: the CRC-32 and size of every file it holds, and a CRC-32 of the
manifest's own content. ``load_partial`` checks all of them, then the manifest's fields (types
and ranges), the arrays' shapes and dtypes, and each run's structure (keys strictly sorted,
fields in range, context numbers, counts and positions consistent) and that the runs were made
from the tokens beside them: a damaged or hand-edited partial is refused with one line, never
merged into a wrong file or followed out of bounds by compiled code.
"""
from __future__ import annotations

import json
import os
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from ..corpus.stream import MappedPiece, digest
from ..errors import InputError, os_errors_as
from ..file import format as fmt
from ..validation import check_int, is_int
from . import run_kernels
from .keys import KeyLayout
from .options import check_orders
from .runs import OUTPUT_CHUNK, Run

__all__ = ["PARTIAL_FORMAT", "PARTIAL_VERSION", "Partial", "PartialManifest", "write_partial",
           "load_partial"]

PARTIAL_FORMAT = "ngramds-partial"
PARTIAL_VERSION = 2   # 1: no checksums (refused)
MANIFEST = "manifest.json"
TOKENS = "tokens.npy"
CRC_BLOCK = 1 << 24
M64 = (1 << 64) - 1
RUN_DTYPES = {"keys": np.dtype("<u8"), "counts": np.dtype("<u4"), "ctx": np.dtype("<u4"),
              "local": np.dtype("<u4")}


@dataclass(frozen=True)
class FileRecord:
    """Size and CRC-32 of one file of a partial."""

    bytes: int
    crc32: int


@dataclass
class PartialManifest:
    """What ``manifest.json`` records (run paths relative to the partial's directory)."""

    num_tokens: int
    doc_offsets: list
    orders: list
    top_k: int | None
    bits: int
    vocab_size: int | None
    max_id: int
    dtype: str
    sources: list
    tokenizer: str | None
    runs: dict            # order -> [Run]
    files: dict           # relative path -> FileRecord

    def to_json(self) -> dict:
        body = {"format": PARTIAL_FORMAT, "version": PARTIAL_VERSION,
                **{k: v for k, v in asdict(self).items() if k not in ("runs", "files")},
                "runs": {str(n): [asdict(r) for r in rs] for n, rs in self.runs.items()},
                "files": {k: asdict(v) for k, v in self.files.items()}}
        return dict(body, checksum=_body_crc(body))


@dataclass
class Partial:
    """A validated partial result: its manifest, its runs (absolute paths) and tokens."""

    path: Path
    manifest: PartialManifest
    runs: dict            # order -> [Run]
    tokens: MappedPiece

    def files(self) -> list[Path]:
        """Every file of the partial (what a merge reads)."""
        return [self.path / MANIFEST] + [self.path / k for k in self.manifest.files]


def _body_crc(body: dict) -> int:
    return zlib.crc32(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


def file_record(path: Path) -> FileRecord:
    crc, size = 0, 0
    with open(path, "rb") as f:
        while block := f.read(CRC_BLOCK):
            crc = zlib.crc32(block, crc)
            size += len(block)
    return FileRecord(size, crc & 0xFFFFFFFF)


# -- writing --------------------------------------------------------------------------------
def write_partial(root: Path, stream, offsets, runs: dict, orders, top_k, given_vocab, bits,
                  max_id) -> None:
    """Tokens, document offsets and runs of a shard, checksummed, with the manifest last."""
    root.mkdir(parents=True, exist_ok=True)
    dtype = fmt.token_dtype(given_vocab or max_id + 1)
    with open(root / TOKENS, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": dtype.str, "fortran_order": False,
                                                 "shape": (stream.size,)})
        for _, t in stream.checked_chunks(OUTPUT_CHUNK, dtype):
            f.write(memoryview(np.ascontiguousarray(t)).cast("B"))
    rel_runs = {n: [Run(Path(r.path).relative_to(root).as_posix(), r.num_keys, r.num_contexts,
                        r.num_positions, r.digest) for r in rs] for n, rs in runs.items()}
    names = [TOKENS] + [f"{r.path}/{name}.npy" for rs in rel_runs.values() for r in rs
                        for name in Run.FILES]
    manifest = PartialManifest(
        num_tokens=stream.size, doc_offsets=[int(x) for x in offsets], orders=list(orders),
        top_k=top_k, bits=bits, vocab_size=given_vocab, max_id=int(max_id), dtype=dtype.str,
        sources=[str(s) for s in stream.sources], tokenizer=stream.tokenizer, runs=rel_runs,
        files={name: file_record(root / name) for name in names})
    tmp = root / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest.to_json()))
    os.replace(tmp, root / MANIFEST)  # a partial without a manifest is incomplete


# -- reading and validation -----------------------------------------------------------------
class _Damaged(Exception):
    pass


def load_partial(path) -> Partial:
    """The partial result in directory ``path``, every checksum and invariant checked;
    InputError (one line) for anything incomplete, damaged or inconsistent."""
    path = Path(path)
    with os_errors_as(f"cannot read the partial result {path}: disk error",
                      f"cannot read the partial result {path}"):
        try:
            return _load(path)
        except _Damaged as exc:
            raise InputError(f"{path}: {exc}; the partial result is damaged: rebuild it with "
                             "`ngramds build --partial`") from None


def _load(path: Path) -> Partial:
    if not path.is_dir():
        raise InputError(f"partial result {path} is not a directory")
    try:
        text = (path / MANIFEST).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path} is not a complete partial result (no {MANIFEST}); "
                         "rebuild it with `ngramds build --partial`") from None
    try:
        info = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _Damaged(f"{MANIFEST} is not valid JSON ({str(exc)[:80]})") from None
    if not isinstance(info, dict) or info.get("format") != PARTIAL_FORMAT:
        raise InputError(f"{path} is not an ngramds partial result")
    if info.get("version") != PARTIAL_VERSION:
        raise InputError(f"{path} is a partial result of version {info.get('version')!r}; this "
                         f"ngramds merges version {PARTIAL_VERSION} (with checksums): rebuild it "
                         "with this ngramds's `ngramds build --partial`")
    checksum = info.pop("checksum", None)
    if checksum != _body_crc(info):
        raise _Damaged(f"{MANIFEST} fails its checksum")
    m = _manifest(info)
    for name, rec in m.files.items():
        try:
            if file_record(path / name) != rec:
                raise _Damaged(f"{name} fails its checksum")
        except FileNotFoundError:
            raise _Damaged(f"{name} is missing") from None
    tokens = _array(path, TOKENS, (m.num_tokens,), np.dtype(m.dtype))
    piece = MappedPiece(str(path / TOKENS), int(tokens.offset), tokens.dtype, m.num_tokens)
    lo, hi, token_digest = _scan(tokens)
    del tokens
    if lo < 0 or hi != m.max_id:
        raise _Damaged(f"{TOKENS} holds ids {lo}..{hi}, the manifest says 0..{m.max_id}")
    runs = {}
    for n in m.orders:
        layout = KeyLayout(n, m.bits)
        runs[n] = [Run(str(path / r.path), r.num_keys, r.num_contexts, r.num_positions,
                       r.digest) for r in m.runs[n]]
        if sum(r.digest for r in runs[n]) & M64 != token_digest:
            raise _Damaged(f"the order-{n} runs were not made from {TOKENS}")
        for r in runs[n]:
            _check_run(path, r, layout, m.max_id)
    return Partial(path, m, runs, piece)


def _scan(tokens: np.ndarray) -> tuple[int, int, int]:
    lo, hi, h = None, None, 0
    for a in range(0, tokens.size, OUTPUT_CHUNK):
        t = np.asarray(tokens[a:a + OUTPUT_CHUNK])
        x, y = int(t.min()), int(t.max())
        lo, hi = (x, y) if lo is None else (min(lo, x), max(hi, y))
        h = (h + digest(t, a)) & M64
    return lo, hi, h


def _array(path: Path, name: str, shape: tuple, dtype: np.dtype) -> np.ndarray:
    try:
        arr = np.load(path / name, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise _Damaged(f"{name} is not a readable .npy file ({str(exc)[:80]})") from None
    if not isinstance(arr, np.ndarray) or arr.shape != shape or arr.dtype != dtype \
            or not arr.flags.c_contiguous:
        raise _Damaged(f"{name} holds {getattr(arr, 'dtype', '?')} "
                       f"{getattr(arr, 'shape', '?')}, not {dtype} {shape}")
    return arr


def _check_run(path: Path, run: Run, layout: KeyLayout, max_id: int) -> None:
    rel = Path(run.path).relative_to(path).as_posix()
    if not run.num_contexts <= run.num_keys <= run.num_positions or \
            (run.num_positions and not run.num_contexts):
        raise _Damaged(f"run {rel}: {run.num_keys} keys of {run.num_contexts} contexts over "
                       f"{run.num_positions} positions is impossible")
    arrays = [_array(path, f"{rel}/{name}.npy", shape, RUN_DTYPES[name]) for name, shape in
              (("keys", (run.num_keys, layout.num_words)), ("counts", (run.num_keys,)),
               ("ctx", (run.num_keys,)), ("local", (run.num_positions,)))]
    m = layout.order - 1
    code = run_kernels.check_run(*arrays, layout.ctx_mask, layout.words, layout.shifts,
                                 (1 << int(m).bit_length()) - 1, (1 << layout.bits) - 1, m,
                                 max_id, run.num_contexts)
    del arrays
    if code != run_kernels.RUN_OK:
        raise _Damaged(f"run {rel}: {run_kernels.RUN_ERRORS[code]}")


# -- the manifest's fields ------------------------------------------------------------------
def _manifest(d: dict) -> PartialManifest:
    """The typed, range-checked fields of a manifest; _Damaged names the first bad one."""
    num_tokens = _int(d, "num_tokens", 1, 1 << 62)
    offsets = _ints(d, "doc_offsets", 0, num_tokens)
    if len(offsets) < 2 or offsets[0] != 0 or offsets[-1] != num_tokens or \
            any(b < a for a, b in zip(offsets, offsets[1:])):
        raise _Damaged(f"{MANIFEST}: doc_offsets do not rise from 0 to num_tokens")
    orders = _ints(d, "orders", 1, fmt.MAX_ORDER)
    try:
        orders = check_orders(orders)
    except InputError as exc:
        raise _Damaged(f"{MANIFEST}: {exc}") from None
    top_k = None if d.get("top_k", 0) is None else _int(d, "top_k", 1, fmt.MAX_VOCAB)
    bits = _int(d, "bits", 1, 32)
    vocab = None if d.get("vocab_size", 0) is None else _int(d, "vocab_size", 1, fmt.MAX_VOCAB)
    max_id = _int(d, "max_id", 0, (1 << bits) - 1)
    if vocab is not None and max_id >= vocab:
        raise _Damaged(f"{MANIFEST}: max_id {max_id} is not below vocab_size {vocab}")
    dtype = _str(d, "dtype")
    if dtype != fmt.token_dtype(vocab or max_id + 1).str:
        raise _Damaged(f"{MANIFEST}: token dtype {dtype!r} does not match the vocabulary")
    sources = d.get("sources")
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise _Damaged(f"{MANIFEST}: field 'sources' is missing or not a list of names")
    tokenizer = d.get("tokenizer", 0)
    if tokenizer is not None and not isinstance(tokenizer, str):
        raise _Damaged(f"{MANIFEST}: field 'tokenizer' is missing or not a name")
    raw_runs = d.get("runs")
    if not isinstance(raw_runs, dict) or sorted(raw_runs) != sorted(map(str, orders)):
        raise _Damaged(f"{MANIFEST}: field 'runs' does not list runs of orders {orders}")
    runs = {}
    for n in orders:
        rs = raw_runs[str(n)]
        if not isinstance(rs, list) or not rs:
            raise _Damaged(f"{MANIFEST}: no runs of order {n}")
        runs[n] = [Run(_relative(r, "path"), _int(r, "num_keys", 0, 1 << 62),
                       _int(r, "num_contexts", 0, 1 << 62), _int(r, "num_positions", 1, 1 << 62),
                       _int(r, "digest", 0, M64)) for r in rs]
        if sum(r.num_positions for r in runs[n]) != num_tokens:
            raise _Damaged(f"{MANIFEST}: the order-{n} runs do not cover num_tokens")
    raw_files = d.get("files")
    if not isinstance(raw_files, dict):
        raise _Damaged(f"{MANIFEST}: field 'files' is missing or not a map")
    files = {}
    for name, rec in raw_files.items():
        _relative({"file": name}, "file")
        files[name] = FileRecord(_int(rec, "bytes", 0, 1 << 62), _int(rec, "crc32", 0, M64))
    needed = {TOKENS} | {f"{r.path}/{x}.npy" for rs in runs.values() for r in rs
                         for x in Run.FILES}
    if not needed <= set(files):
        raise _Damaged(f"{MANIFEST}: no checksum for {sorted(needed - set(files))[0]}")
    return PartialManifest(num_tokens, offsets, orders, top_k, bits, vocab, max_id, dtype,
                           sources, tokenizer, runs, files)


def _int(d, key: str, lo: int, hi: int) -> int:
    """The manifest's integer field ``key``, in [lo, hi]; _Damaged otherwise."""
    return check_int(key, d.get(key) if isinstance(d, dict) else None, lo, hi, error=_Damaged,
                     message=MANIFEST + ": field {name!r} is missing or not an integer in "
                     "{lo}..{hi} (got {value!s:.40})")


def _ints(d: dict, key: str, lo: int, hi: int) -> list:
    v = d.get(key)
    if not isinstance(v, list) or not all(is_int(x) and lo <= x <= hi for x in v):
        raise _Damaged(f"{MANIFEST}: field {key!r} is missing or not a list of integers in "
                       f"{lo}..{hi}")
    return v


def _str(d: dict, key: str) -> str:
    v = d.get(key)
    if not isinstance(v, str):
        raise _Damaged(f"{MANIFEST}: field {key!r} is missing or not a string")
    return v


def _relative(d, key: str) -> str:
    """A path inside the partial: relative, without '..'."""
    v = _str(d, key) if isinstance(d, dict) else None
    p = PurePosixPath(v)
    if not v or p.is_absolute() or ".." in p.parts or "\\" in v:
        raise _Damaged(f"{MANIFEST}: {key} {v!r} is not a path inside the partial")
    return v
