import pytest

from fmrikit.checks import check_number, check_option
from fmrikit.errors import InputError


def test_check_option_returns_an_allowed_value():
    assert check_option("--method", "unclip", ("latent", "unclip")) == "unclip"


def test_check_option_names_the_closest_choice_and_every_choice():
    with pytest.raises(InputError) as info:
        check_option("--method", "unclp", ("latent", "unclip", "neuropictor"), path="cfg.json")
    line = info.value.one_line()
    assert line == ("cfg.json: unknown --method; did you mean 'unclip'? "
                    "(expected latent, unclip, neuropictor, got 'unclp')")


def test_check_option_without_a_close_choice_gives_no_hint():
    with pytest.raises(InputError) as info:
        check_option("space", "mni", ("func1pt8mm",))
    assert "did you mean" not in str(info.value) and "expected func1pt8mm" in str(info.value)


@pytest.mark.parametrize("value, bounds, expected", [
    (float("nan"), {"low": 0}, ">= 0"), (float("inf"), {}, "a finite number"), (-1, {"low": 0}, ">= 0"),
    (0.0, {"low": 0, "low_open": True}, "> 0"), (2, {"low": 0, "high": 1}, ">= 0 and <= 1"),
    (1.0, {"high": 1, "high_open": True}, "< 1"), ("abc", {"low": 0}, ">= 0")])
def test_check_number_refuses_nan_infinities_and_values_out_of_range(value, bounds, expected):
    with pytest.raises(InputError) as info:
        check_number("--lr", value, **bounds)
    assert info.value.one_line().startswith("--lr") and f"(expected {expected}, got " in info.value.one_line()


def test_check_number_returns_a_value_in_range():
    assert check_number("--lr", 1e-3, low=0, low_open=True) == 1e-3
    assert check_number("--epochs", 1, low=1) == 1 and check_number("--strength", 1.0, low=0, high=1) == 1.0
