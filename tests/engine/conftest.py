"""Engine tests run their tiny models on one thread."""

import pytest


@pytest.fixture(autouse=True, scope="module")
def _tiny_models_one_thread(one_thread):
    """Every engine test runs its tiny models on one thread (the ``one_thread`` fixture)."""
