import pytest

from survey.stats import rate, wilson


def test_wilson_matches_hand_computed_values():
    # 9 of 10: p = 0.9, z = 1.96 → (0.5958, 0.9821), computed by hand from the Wilson formula
    low, high = wilson(9, 10)
    assert low == pytest.approx(0.5958, abs=1e-4)
    assert high == pytest.approx(0.9821, abs=1e-4)


def test_all_satisfied_interval_stays_below_one_but_reaches_it():
    low, high = wilson(50, 50)
    assert high == pytest.approx(1.0)
    assert low == pytest.approx(0.9287, abs=1e-4)


def test_n_one_and_zero():
    assert wilson(1, 1)[0] == pytest.approx(0.2065, abs=1e-4)
    assert wilson(0, 0) is None
    empty = rate(0, 0)
    assert empty.value is None and empty.meets(0.9) is None and empty.small_sample


def test_small_sample_flag_at_thirty():
    assert rate(29, 29).small_sample
    assert not rate(27, 30).small_sample
    assert rate(27, 30).meets(0.9) is True
    assert rate(26, 30).meets(0.9) is False


def test_impossible_counts_are_refused():
    with pytest.raises(ValueError):
        wilson(5, 3)
