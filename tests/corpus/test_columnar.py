"""Columnar corpora (parquet, Arrow, HuggingFace datasets): a row too large for the memory
limit is refused before it is read, naming the limit; a dictionary of splits or an iterable
dataset whose columns change mid-stream is a one-line error."""
import numpy as np
import pytest

import ngramds
from ngramds.corpus import columnar
from ngramds.corpus.readers import load_stream
from ngramds.errors import InputError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _ids_table(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return pa.table({"input_ids": [rng.integers(0, 50, n).tolist() for n in lengths]})


def test_an_oversized_parquet_row_is_refused_before_it_is_read(tmp_path, monkeypatch):
    """One row of 200,000 ids (1.6 MB as int64) under a read budget of 256 KiB: refused from
    the file's metadata, naming the budget and the memory limit, before any batch is read."""
    pq.write_table(_ids_table([200_000]), tmp_path / "big.parquet")
    read = []
    real = pq.ParquetFile.iter_batches
    monkeypatch.setattr(pq.ParquetFile, "iter_batches",
                        lambda self, *a, **k: read.append(1) or real(self, *a, **k))
    with pytest.raises(InputError, match=r"big\.parquet.*memory limit") as exc:
        load_stream([tmp_path / "big.parquet"], read_bytes=256 << 10)
    assert len(str(exc.value).splitlines()) == 1
    assert read == []  # refused from the metadata, nothing read


def test_an_oversized_row_among_small_ones_is_refused(tmp_path):
    """A row group whose average row fits but one row does not: the batch holding it is
    refused (rows are read in batches that fit the budget)."""
    pq.write_table(_ids_table([10] * 200 + [100_000] + [10] * 200), tmp_path / "m.parquet")
    with pytest.raises(InputError, match=r"m\.parquet.*row 201.*memory limit"):
        load_stream([tmp_path / "m.parquet"], read_bytes=256 << 10)


@pytest.mark.parametrize("kind", ["parquet", "arrow"])
def test_rows_within_the_budget_read_as_without_one(tmp_path, kind):
    table = _ids_table([30] * 500 + [3000] + [7] * 100)
    path = tmp_path / f"c.{kind}"
    if kind == "parquet":
        pq.write_table(table, path, row_group_size=128)
    else:
        with pa.ipc.new_file(path, table.schema) as w:
            w.write_table(table, max_chunksize=256)
    free = load_stream([path])
    bounded = load_stream([path], read_bytes=64 << 10, text_spool=tmp_path)
    assert np.array_equal(free.read(0, free.size), bounded.read(0, bounded.size))
    assert np.array_equal(free.doc_offsets, bounded.doc_offsets)


def test_an_oversized_arrow_row_is_refused(tmp_path):
    table = _ids_table([10, 100_000, 10])
    with pa.ipc.new_file(tmp_path / "c.arrow", table.schema) as w:
        w.write_table(table)
    with pytest.raises(InputError, match=r"c\.arrow.*row 2.*memory limit"):
        load_stream([tmp_path / "c.arrow"], read_bytes=256 << 10)


def test_build_with_a_memory_limit_bounds_a_row(tmp_path, monkeypatch):
    """Through build(): the share of --memory-limit one read may hold is named."""
    pq.write_table(_ids_table([40_000]), tmp_path / "big.parquet")
    from ngramds.builder import dispatch
    monkeypatch.setattr(dispatch, "READ_SHARE", 4096)  # 1G / 4096 = 256 KiB a read
    with pytest.raises(InputError, match=r"big\.parquet.*--memory-limit"):
        ngramds.build([tmp_path / "big.parquet"], tmp_path / "o.ngds", memory_limit="1G",
                      progress=False)
    assert not (tmp_path / "o.ngds").exists()


# -- HuggingFace datasets ------------------------------------------------------------------
def test_a_dataset_dict_asks_for_a_split(tmp_path):
    datasets = pytest.importorskip("datasets")
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"input_ids": [[1, 2]]}),
                               "test": datasets.Dataset.from_dict({"input_ids": [[3]]})})
    for obj in (dd, dd.to_iterable_dataset() if hasattr(dd, "to_iterable_dataset") else
                datasets.IterableDatasetDict({k: v.to_iterable_dataset() for k, v in
                                              dd.items()})):
        with pytest.raises(InputError, match=r"split.*'train', 'test'") as exc:
            ngramds.build(obj, tmp_path / "o.ngds", progress=False)
        assert len(str(exc.value).splitlines()) == 1


def test_an_iterable_dataset_whose_columns_change_is_one_line(tmp_path):
    datasets = pytest.importorskip("datasets")

    def rows():
        for i in range(3000):
            yield {"input_ids": [1, 2, i % 7]} if i < 1500 else {"input_ids": ["a", "b"]}

    ds = datasets.IterableDataset.from_generator(rows)
    with pytest.raises(InputError, match=r"input_ids") as exc:
        ngramds.build(ds, tmp_path / "o.ngds", progress=False)
    assert len(str(exc.value).splitlines()) == 1
    assert not (tmp_path / "o.ngds").exists()


def test_is_hf_dataset_is_cheap():
    assert not columnar.is_hf_dataset(object())
