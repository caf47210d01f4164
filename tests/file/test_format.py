"""The format's limits and widths: a header bomb is refused in little memory, section dtypes
follow the data, and sections widened to 64 bits give the same results."""
import os
import struct
import subprocess
import sys
import zlib

import numpy as np

import ngramds
from cli_helpers import SUBPROCESS_ENV
from helpers import widened_sections
from ngramds.file import format as fmt
from ngramds.file.summary import summary
from ngramds.targets import TargetConfig, Targets

HEADER_BOMB = """
import resource, struct, sys, zlib
import ngramds
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    ngramds.open(sys.argv[1])
    print("opened")
except ngramds.FormatError as exc:
    print("refused:", exc)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024, "MiB")
"""


def test_a_header_of_millions_of_empty_maps_is_refused_in_little_memory(tmp_path):
    n = 16_000_000
    header = b"\xdd" + n.to_bytes(4, "big") + b"\x80" * n  # array32 of empty maps
    path = tmp_path / "bomb.ngds"
    path.write_bytes(struct.pack("<8sIIQII", b"\x93NGRAMDS", fmt.FORMAT_VERSION, 0, len(header),
                                 zlib.crc32(header), 0) + header)
    script = tmp_path / "bomb.py"
    script.write_text(HEADER_BOMB)
    r = subprocess.run([sys.executable, script, path], capture_output=True, text=True,
                       timeout=120, env={**os.environ, **SUBPROCESS_ENV})
    assert r.returncode == 0, r.stderr
    verdict, grown = r.stdout.splitlines()
    assert verdict.startswith("refused:")
    assert int(grown.split()[0]) < 100, r.stdout  # MiB beyond what the imports took


def test_forced_64bit_sections_give_identical_results(tmp_path, monkeypatch):
    """Every offsets/counts/ids section widened to uint64, as past 2^32 values would need."""
    rng = np.random.default_rng(5)
    docs = [rng.integers(0, 40, rng.integers(1, 300)) for _ in range(20)]
    ngramds.build(docs, tmp_path / "n.ngds", order=3, progress=False)
    with widened_sections(8):
        ngramds.build(docs, tmp_path / "w.ngds", order=3, progress=False)
    narrow, wide = ngramds.open(tmp_path / "n.ngds"), ngramds.open(tmp_path / "w.ngds", True)
    for name in ("doc_offsets", "order3/entry_offsets", "order3/counts", "order3/totals",
                 "order3/position_contexts"):
        assert wide.sections[name].dtype == np.dtype("<u8")
        assert np.array_equal(narrow.section(name), wide.section(name))
    assert summary(narrow)["tables"] == summary(wide)["tables"]
    for cfg in (TargetConfig("coconts", 3), TargetConfig("coconts", 3, "renorm"),
                TargetConfig("allnts", max_k=5)):
        a = Targets(narrow, cfg).compute(np.arange(0, 2000, 50), 40, seed=1, epoch=2)
        b = Targets(wide, cfg).compute(np.arange(0, 2000, 50), 40, seed=1, epoch=2)
        for x, y in zip(a, b):
            assert np.array_equal(x, y)


def test_dtypes_follow_the_data():
    assert fmt.uint_dtype(2**32 - 1) == np.dtype("<u4")
    assert fmt.uint_dtype(2**32) == np.dtype("<u8")
    assert fmt.uint_dtype(255) == np.dtype("<u1")
    assert fmt.token_dtype(65536) == np.dtype("<u2")
    assert fmt.token_dtype(65537) == np.dtype("<u4")
    assert fmt.token_dtype(2**32 - 1) == np.dtype("<u4")
