import pytest

from fmrikit.checks import check_option
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
