"""Each method package names its library entry points, and its settings import without torch."""

import importlib
import subprocess
import sys

import pytest

METHODS = ["mindeye", "troi", "encoder", "latent", "neuropictor"]


@pytest.mark.parametrize("method", METHODS)
def test_every_public_name_resolves(method):
    package = importlib.import_module(f"fmrikit.methods.{method}")
    assert package.__all__ and all(callable(getattr(package, name)) for name in package.__all__)
    with pytest.raises(AttributeError):
        getattr(package, "not_a_function")


def test_the_documented_entry_point_is_the_function():
    from fmrikit.methods.troi import roi_train
    from fmrikit.methods.troi.stages import roi_train as defined

    assert roi_train is defined


def test_settings_and_the_cli_import_without_torch():
    code = ("import sys, fmrikit.methods.mindeye.settings, fmrikit.methods.troi.settings, "
            "fmrikit.methods.encoder.settings, fmrikit.methods.latent.settings, fmrikit.methods.neuropictor.settings; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
