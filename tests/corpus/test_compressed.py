"""Compressed text inputs are read strictly: a stream cut anywhere (inside its first or a later
frame/member), trailing bytes that are not another stream, or damage inside, is one line
naming the file, and nothing is written; intact multi-frame/multi-stream inputs read whole."""
import bz2
import gzip
import json
import lzma

import pytest

import ngramds
from ngramds.cli import main

from helpers import train_small_tokenizer

TEXTS = [f"record {i} of the corpus, alpha beta gamma {i * 7}" for i in range(160)]


def _compressor(suffix: str):
    if suffix == ".zst":
        zstandard = pytest.importorskip("zstandard")
        return zstandard.ZstdCompressor().compress
    return {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}[suffix]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "tok.json"
    train_small_tokenizer(path, TEXTS)
    return path


def _jsonl(texts) -> bytes:
    return "".join(json.dumps({"text": t}) + "\n" for t in texts).encode()


def _two_frames(suffix: str) -> tuple[bytes, bytes]:
    """The corpus as two concatenated frames/members/streams of 80 records each."""
    compress = _compressor(suffix)
    return compress(_jsonl(TEXTS[:80])), compress(_jsonl(TEXTS[80:]))


def _build(path, tok, capsys, *extra) -> tuple[int, str]:
    out = path.parent / "o.ngds"
    code = main(["build", str(path), "-o", str(out), "--tokenizer", str(tok), "-q", *extra])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz", ".zst"])
def test_intact_multi_frame_input_reads_every_record(tmp_path, tok, capsys, suffix):
    first, second = _two_frames(suffix)
    path = tmp_path / f"c.jsonl{suffix}"
    path.write_bytes(first + second)
    code, err = _build(path, tok, capsys)
    assert code == 0, err
    with ngramds.open(tmp_path / "o.ngds") as f:
        assert f.num_documents == 160


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz", ".zst"])
@pytest.mark.parametrize("where", ["second frame", "first frame", "trailing garbage",
                                   "damaged inside"])
def test_cut_or_damaged_compressed_input_is_one_line_and_writes_nothing(tmp_path, tok, capsys,
                                                                        suffix, where):
    first, second = _two_frames(suffix)
    if where == "second frame":
        data = first + second[:20]
    elif where == "first frame":
        data = first[:len(first) // 2]
    elif where == "trailing garbage":
        data = first + second + b"this is not a compressed stream\n"
    else:  # a run of bytes in the middle of the first frame overwritten
        mid = len(first) // 2
        data = first[:mid] + bytes(b ^ 0x5A for b in first[mid:mid + 16]) + first[mid + 16:]
    path = tmp_path / f"c.jsonl{suffix}"
    path.write_bytes(data)
    for extra in ([], ["--memory-limit", "1G"]):
        code, err = _build(path, tok, capsys, *extra)
        assert code == 2, (where, extra, err)
        assert err.startswith("ngramds: error:") and len(err.splitlines()) == 1, err
        assert "c.jsonl" + suffix in err, err
        assert not (tmp_path / "o.ngds").exists()


def test_zst_skippable_frame_between_frames_is_read(tmp_path, tok, capsys):
    """A skippable frame (zstd's metadata frame) is part of a valid .zst stream."""
    first, second = _two_frames(".zst")
    skippable = (0x184D2A50).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"hello"
    (tmp_path / "c.jsonl.zst").write_bytes(first + skippable + second)
    code, err = _build(tmp_path / "c.jsonl.zst", tok, capsys)
    assert code == 0, err
    with ngramds.open(tmp_path / "o.ngds") as f:
        assert f.num_documents == 160


def test_xz_stream_padding_is_accepted(tmp_path, tok, capsys):
    """.xz allows null padding (multiples of 4 bytes) after a stream, as `xz -t` does."""
    first, second = _two_frames(".xz")
    (tmp_path / "c.jsonl.xz").write_bytes(first + bytes(8) + second + bytes(4))
    code, err = _build(tmp_path / "c.jsonl.xz", tok, capsys)
    assert code == 0, err
    with ngramds.open(tmp_path / "o.ngds") as f:
        assert f.num_documents == 160
