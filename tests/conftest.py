import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def nsd_tree(tmp_path):
    """A tiny NSD tree written from the format reference: subj01 NIfTI (3 sessions), subj02 HDF5 (2)."""
    from tests.nsd_fixture import write_tree

    return write_tree(tmp_path / "nsd")


@pytest.fixture(scope="session")
def sim_world(tmp_path_factory):
    """A tiny simulated world: subj01 NIfTI (2 sessions), subj02 HDF5 (1 session)."""
    from fmrikit.data.simulate import SimulationConfig, simulate

    cfg = SimulationConfig(n_subjects=2, sessions=[2, 1], trials_per_session=60, runs_per_session=3, n_shared=8,
                           image_size=32, noise=1.0, formats=["nifti", "hdf5"], seed=3)
    return simulate(tmp_path_factory.mktemp("sim") / "nsd", cfg)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models: threads only add synchronisation, which stalls badly on shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
