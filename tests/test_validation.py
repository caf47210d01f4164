"""The shared checks of integers, numbers, sizes and choices: a bool is never an integer."""
import numpy as np
import pytest

from ngramds.errors import FormatError, InputError
from ngramds.validation import check_choice, check_int, is_int, is_number, parse_size


def test_a_bool_is_neither_an_integer_nor_a_number():
    assert is_int(3) and is_int(np.int64(3)) and is_int(np.uint8(0))
    assert not is_int(True) and not is_int(np.bool_(True)) and not is_int(3.0)
    assert is_number(0.5) and is_number(np.float32(1)) and is_number(2)
    assert not is_number(False) and not is_number("1")


def test_check_int_names_the_value_and_its_range():
    assert check_int("n", np.int32(5), 1, 9) == 5 and type(check_int("n", np.int32(5), 1, 9)) is int
    for bad in (0, 10, True, 2.0, None):
        with pytest.raises(InputError, match=r"^n must be an integer in 1\.\.9, got "):
            check_int("n", bad, 1, 9)
    with pytest.raises(FormatError, match=r"^field 'n' = 'x'$"):
        check_int("n", "x", 1, 9, error=FormatError, message="field {name!r} = {value!r}")


def test_sizes_and_choices():
    assert parse_size("1G") == 1 << 30 and parse_size("512MiB") == 512 << 20
    assert parse_size(1000) == 1000 and parse_size("1.5K") == 1536
    for bad in ("lots", "0", "-1G", "inf", "nan", True, 0, 1 << 62):
        with pytest.raises(InputError, match="size"):
            parse_size(bad)
    assert check_choice("engine", "dask", ("local", "dask")) == "dask"
    with pytest.raises(InputError, match=r"engine must be one of \('local', 'dask'\), got 'x'"):
        check_choice("engine", "x", ("local", "dask"))
