"""alpha_at: the soft term's weight over a run."""
import pytest
from hypothesis import given, strategies as st

from ngramds.torch.schedule import alpha_at


def test_hold_then_linear_to_zero():
    assert [alpha_at(s, 10, 1.0, 0.5) for s in range(11)] == \
        pytest.approx([1.0] * 6 + [0.8, 0.6, 0.4, 0.2, 0.0])
    assert alpha_at(3, 10, 0.5, hold=1.0) == 0.5 and alpha_at(10, 10, 0.5, hold=1.0) == 0.5
    assert alpha_at(0, 4, 1.0, hold=0.0) == 1.0 and alpha_at(2, 4, 1.0, hold=0.0) == 0.5
    assert alpha_at(99, 10) == 0.0  # past the end


@given(st.integers(1, 10_000), st.floats(0, 1), st.floats(0, 4))
def test_alpha_never_rises_and_stays_in_range(total, hold, alpha):
    values = [alpha_at(s, total, alpha, hold) for s in range(0, total + 1, max(1, total // 50))]
    assert all(0 <= v <= alpha for v in values)
    assert all(a >= b for a, b in zip(values, values[1:]))


@pytest.mark.parametrize("kw", [dict(step=-1), dict(total_steps=0), dict(alpha=float("nan")),
                                dict(hold=1.5), dict(step=1.5)])
def test_bad_arguments_are_refused(kw):
    args = dict(step=0, total_steps=10, alpha=1.0, hold=0.5) | kw
    with pytest.raises(ValueError):
        alpha_at(**args)


def test_hold_for_epochs():
    from ngramds.torch import hold_for_epochs
    assert hold_for_epochs(0.3) == hold_for_epochs(1) == 0.5
    assert hold_for_epochs(4) == 0.125 and hold_for_epochs(10) == pytest.approx(0.05)
    for bad in (0, -1, float("nan"), float("inf"), "2"):
        with pytest.raises(ValueError):
            hold_for_epochs(bad)
