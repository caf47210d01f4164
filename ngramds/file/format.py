"""The on-disk layout: preamble, msgpack header and section table (see spec/FORMAT.md)."""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import msgpack
import numpy as np

from ..errors import FormatError
from ..validation import is_int

MAGIC = b"\x93NGRAMDS"
FORMAT_VERSION = 2
ALIGNMENT = 64
PREAMBLE = struct.Struct("<8sIIQII")  # magic, version, flags, header_len, header_crc32, reserved
PREAMBLE_SIZE = PREAMBLE.size  # 32
MAX_HEADER_BYTES = 1 << 26
MAX_HEADER_OBJECTS = 1 << 18  # msgpack values a header may hold (a real one holds hundreds)
MAX_ORDER = 16
MAX_VOCAB = (1 << 32) - 1

# dtypes a section may have, by their spec name
DTYPES = {name: np.dtype(name) for name in ("<u1", "<u2", "<u4", "<u8")}


def table_prefix(order: int) -> str:
    """Section-name prefix of the table of one order, e.g. 'order4/'."""
    return f"order{order}/"


def align(offset: int) -> int:
    """Round ``offset`` up to the next multiple of ALIGNMENT."""
    return -(-offset // ALIGNMENT) * ALIGNMENT


def crc32(data) -> int:
    """CRC-32 (as zlib computes it) of a bytes-like object or contiguous array."""
    if isinstance(data, np.ndarray):
        if data.nbytes == 0:
            return 0
        data = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    return zlib.crc32(data) & 0xFFFFFFFF


def dtype_name(dtype: np.dtype) -> str:
    """Spec name of an unsigned integer dtype: '<u1', '<u2', '<u4' or '<u8'."""
    if dtype.kind != "u" or dtype.byteorder == ">":
        raise FormatError(f"sections must be little-endian unsigned integers, got {dtype}")
    return f"<u{dtype.itemsize}"


_min_uint_bytes = 1  # a test hook: 8 gives 64-bit sections (as past 2^32) from a small corpus


def uint_dtype(max_value: int) -> np.dtype:
    """Smallest unsigned little-endian dtype that holds ``max_value``."""
    for name in ("<u1", "<u2", "<u4", "<u8"):
        if DTYPES[name].itemsize >= _min_uint_bytes and max_value <= np.iinfo(name).max:
            return DTYPES[name]
    raise FormatError(f"value {max_value} does not fit in 64 bits")


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 for vocabularies up to 65536 ids, uint32 above."""
    return DTYPES["<u2"] if vocab_size <= 1 << 16 else DTYPES["<u4"]


@dataclass
class Section:
    """One entry of the section table."""

    name: str
    offset: int
    length: int
    dtype: np.dtype
    shape: tuple
    crc32: int

    def to_header(self) -> dict:
        return {"name": self.name, "offset": self.offset, "length": self.length,
                "dtype": dtype_name(self.dtype), "shape": list(self.shape), "crc32": self.crc32}


def encode_header(header: dict) -> bytes:
    return msgpack.packb(header, use_bin_type=True)


PRUNED = 1  # preamble flag: some table is pruned (spec/FORMAT.md, "Pruned files")


def header_flags(header: dict) -> int:
    """The preamble flags of a file with this header: PRUNED when a table has min_count > 1."""
    return PRUNED if any(t.get("min_count", 1) > 1 for t in header["tables"]) else 0


def pack_preamble(header_bytes: bytes, magic: bytes = MAGIC, flags: int = 0) -> bytes:
    return PREAMBLE.pack(magic, FORMAT_VERSION, flags, len(header_bytes), crc32(header_bytes),
                         0)


CRC_PLACEHOLDER = 0xFFFFFFFF  # encodes to msgpack's widest integer form for a CRC-32


def layout(header_fields: dict, specs: list) -> list[Section]:
    """Place sections after the header; ``specs`` lists (name, length, dtype, shape) in file
    order. Offsets leave room for a header with every CRC at its widest encoding, so they do not
    depend on the CRC values: sections can be written (and checksummed) before the header.
    The header's size depends on the offsets it records, so iterate to a fixed point."""
    start = align(PREAMBLE_SIZE + 1024)
    while True:
        sections, offset = [], start
        for name, length, dtype, shape in specs:
            sections.append(Section(name, offset, length, np.dtype(dtype), tuple(shape),
                                    CRC_PLACEHOLDER))
            offset = align(offset + length)
        widest = encode_header(dict(header_fields, sections=[s.to_header() for s in sections]))
        needed = align(PREAMBLE_SIZE + len(widest))
        if needed <= start:
            return sections
        start = needed


def read_preamble(buf: bytes, file_size: int) -> tuple[int, int, int]:
    """Check magic and version; return (version, header_len, header_crc32) (the flags:
    :func:`read_flags`)."""
    if len(buf) < PREAMBLE_SIZE or buf[:8] != MAGIC:
        if buf[:8] == b"\x00" * 8 and file_size >= PREAMBLE_SIZE:
            raise FormatError("file is an incomplete ngramds build (no magic yet); rebuild it")
        raise FormatError("not an ngramds file (bad magic); give a file written by `ngramds build`")
    magic, version, flags, header_len, header_crc, reserved = PREAMBLE.unpack(
        buf[:PREAMBLE_SIZE])
    if version > FORMAT_VERSION:
        raise FormatError(f"format version {version} is newer than this ngramds supports "
                          f"({FORMAT_VERSION}); upgrade ngramds")
    if version < 1:
        raise FormatError(f"invalid format version {version}; the file is damaged")
    if flags & ~PRUNED or reserved or (flags and version < 2):
        raise FormatError("unknown flags set in the preamble; the file is damaged or written "
                          "by a newer ngramds")
    if header_len > MAX_HEADER_BYTES or PREAMBLE_SIZE + header_len > file_size:
        raise FormatError(f"header length {header_len} runs past the end of the file "
                          f"({file_size} bytes); the file is truncated or damaged")
    return version, header_len, header_crc


def read_flags(buf: bytes) -> int:
    """The preamble's flags (checked by :func:`read_preamble`)."""
    return PREAMBLE.unpack(buf[:PREAMBLE_SIZE])[2]


def decode_header(header_bytes: bytes, header_crc: int) -> dict:
    if crc32(header_bytes) != header_crc:
        raise FormatError("header checksum mismatch; the file is damaged, rebuild it")
    count_objects(header_bytes, MAX_HEADER_OBJECTS)  # bounds the decoded header's memory
    try:
        header = msgpack.unpackb(header_bytes, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several types
        raise FormatError(f"header is not valid msgpack ({exc}); the file is damaged") from None
    if not isinstance(header, dict):
        raise FormatError("header is not a map; the file is damaged")
    return header


# msgpack type bytes -> (bytes of a length field, fixed payload bytes) of scalars, and the
# bytes of the element count of arrays (elements) and maps (pairs)
_SCALARS = {0xc4: (1, 0), 0xc5: (2, 0), 0xc6: (4, 0), 0xc7: (1, 1), 0xc8: (2, 1),
            0xc9: (4, 1), 0xca: (0, 4), 0xcb: (0, 8), 0xcc: (0, 1), 0xcd: (0, 2),
            0xce: (0, 4), 0xcf: (0, 8), 0xd0: (0, 1), 0xd1: (0, 2), 0xd2: (0, 4),
            0xd3: (0, 8), 0xd4: (0, 2), 0xd5: (0, 3), 0xd6: (0, 5), 0xd7: (0, 9),
            0xd8: (0, 17), 0xd9: (1, 0), 0xda: (2, 0), 0xdb: (4, 0)}
_ARRAYS = {0xdc: 2, 0xdd: 4}
_MAPS = {0xde: 2, 0xdf: 4}


def count_objects(buf: bytes, limit: int) -> int:
    """Number of msgpack values (containers and scalars) in the value ``buf`` starts with,
    counted without decoding; FormatError as soon as it exceeds ``limit`` (a few megabytes of
    one-byte empty maps would otherwise decode to gigabytes). Malformed input is left to the
    decoder to report."""
    pos, pending, count, n = 0, 1, 0, len(buf)
    while pending and pos < n:
        b = buf[pos]
        pos += 1
        pending -= 1
        count += 1
        if count > limit:
            raise FormatError(f"header holds more than {limit:,} msgpack values; the file is "
                              "damaged or hostile")
        if b <= 0x7f or b >= 0xe0 or b in (0xc0, 0xc2, 0xc3):
            continue
        if b <= 0x8f:
            pending += 2 * (b & 0x0F)
        elif b <= 0x9f:
            pending += b & 0x0F
        elif b <= 0xbf:
            pos += b & 0x1F
        elif b in _SCALARS:
            size, fixed = _SCALARS[b]
            pos += size + fixed + int.from_bytes(buf[pos:pos + size], "big")
        elif b in _ARRAYS:
            pending += int.from_bytes(buf[pos:pos + _ARRAYS[b]], "big")
            pos += _ARRAYS[b]
        elif b in _MAPS:
            pending += 2 * int.from_bytes(buf[pos:pos + _MAPS[b]], "big")
            pos += _MAPS[b]
        else:
            break  # 0xc1: never used; the decoder reports it
    return count


def parse_sections(header: dict, file_size: int, data_start: int) -> dict[str, Section]:
    """Validate the section table against the file size; return sections by name."""
    table = header.get("sections")
    if not isinstance(table, list):
        raise FormatError("header has no section table; the file is damaged")
    sections: dict[str, Section] = {}
    for entry in table:
        try:
            name, offset, length = entry["name"], entry["offset"], entry["length"]
            dtype_name, shape, crc = entry["dtype"], tuple(entry["shape"]), entry["crc32"]
        except (TypeError, KeyError):
            raise FormatError("malformed section table entry; the file is damaged") from None
        ints = [offset, length, crc, *shape]
        if not isinstance(name, str) or not all(is_int(v) and v >= 0 for v in ints):
            raise FormatError("malformed section table entry; the file is damaged")
        if dtype_name not in DTYPES:
            raise FormatError(f"section {name!r} has unsupported dtype {dtype_name!r}")
        dtype = DTYPES[dtype_name]
        if offset % ALIGNMENT or offset < data_start:
            raise FormatError(f"section {name!r} is misaligned or overlaps the header")
        if length != int(np.prod(shape, dtype=object)) * dtype.itemsize:
            raise FormatError(f"section {name!r}: length {length} does not match shape {shape}")
        if offset + length > file_size:
            raise FormatError(f"section {name!r} runs past the end of the file ({file_size} "
                              "bytes); the file is truncated")
        if name in sections:
            raise FormatError(f"section {name!r} appears twice; the file is damaged")
        sections[name] = Section(name, offset, length, dtype, shape, crc)
    spans = sorted((s.offset, s.offset + s.length, s.name) for s in sections.values())
    for (_, end, a), (start, _, b) in zip(spans, spans[1:]):
        if start < end:
            raise FormatError(f"sections {a!r} and {b!r} overlap; the file is damaged")
    return sections
