import pytest

from scaling.errors import ArchScaleError
from scaling.validate import boolean, check_choice, check_keys, number, whole


def test_check_keys_names_the_field_and_suggests():
    check_keys({"a": 1}, ["a", "b"])
    with pytest.raises(ArchScaleError, match=r"^regime\.weight_decy: unknown regime field \(did you mean "
                                             r"'weight_decay'\?\); known: epochs, weight_decay$") as e:
        check_keys({"weight_decy": 1}, ["epochs", "weight_decay"], "regime", "regime field")
    assert e.value.field == "regime.weight_decy"


def test_check_choice():
    assert check_choice("rs-10", ["rs-10", "rs-100"], "regime", "regime") == "rs-10"
    with pytest.raises(ArchScaleError, match=r"unknown regime 'rs-35' \(did you mean 'rs-350'\?\); known: rs-10, rs-350"):
        check_choice("rs-35", ["rs-10", "rs-350"], "regime", "regime")


@pytest.mark.parametrize("value", [True, 1.0, "3", -1, None])
def test_whole_refuses(value):
    with pytest.raises(ArchScaleError, match=r"seed: expected a whole number >= 0"):
        whole(value, "seed", low=0)


def test_whole_optional_and_bounds():
    assert whole(None, "cpus", low=1, optional=True) is None
    assert whole(3, "cpus", low=1) == 3
    with pytest.raises(ArchScaleError, match=r"or leave it out"):
        whole(0, "cpus", low=1, optional=True)


def test_number_bounds():
    assert number(1, "lr", low=0) == 1.0 and isinstance(number(1, "lr", low=0), float)
    with pytest.raises(ArchScaleError, match=r"tolerance: expected a number > 0 \(0.1 = within 10 %\), got 0"):
        number(0, "tolerance", low=0, low_open=True, hint="0.1 = within 10 %")
    with pytest.raises(ArchScaleError, match=r"expected a number >= 0 and < 1, got 1"):
        number(1, "dropout", low=0, high=1, high_open=True)
    for bad in (True, float("nan"), float("inf"), "0.1"):
        with pytest.raises(ArchScaleError):
            number(bad, "x")


def test_boolean():
    assert boolean(False, "preact") is False
    with pytest.raises(ArchScaleError, match="preact: expected true or false, got 1"):
        boolean(1, "preact")
