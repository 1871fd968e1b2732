import os

# Every model in the suite is tiny: one thread per process (a second one only adds waits, which stall badly on
# shared cores); set before numpy and torch start their thread pools, and inherited by the commands tests start.
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import pytest  # noqa: E402
import torch  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture
def nsd_tree(tmp_path):
    """A tiny NSD tree written from the format reference: subj01 NIfTI (3 sessions), subj02 HDF5 (2)."""
    from tests.nsd_fixture import write_tree

    return write_tree(tmp_path / "nsd")


@pytest.fixture(scope="session")
def sim_world(tmp_path_factory):
    """A tiny simulated world: subj01 NIfTI (2 sessions), subj02 HDF5 (1 session)."""
    pytest.importorskip("cortex", reason="the simulated world is drawn on pycortex's subject S1")
    from fmrikit.data.simulate import simulate
    from fmrikit.data.world.config import SimulationConfig

    cfg = SimulationConfig(n_subjects=2, sessions=[2, 1], trials_per_session=60, runs_per_session=3, n_shared=8,
                           image_size=32, noise=1.0, formats=["nifti", "hdf5"], seed=3)
    return simulate(tmp_path_factory.mktemp("sim") / "nsd", cfg)


@pytest.fixture(scope="session")
def project(sim_world, tmp_path_factory):
    """A project folder with the nsdgeneral datasets of the simulated subjects 1 (NIfTI source) and 2 (HDF5
    source); tests add models and flatmap caches to it but never change the datasets."""
    from fmrikit.data.preprocess import preprocess_nsd

    root = tmp_path_factory.mktemp("project")
    for subject in (1, 2):
        preprocess_nsd(sim_world, subject, root=root, flatmap=False)
    return root


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models: threads only add synchronisation, which stalls badly on shared cores (the suite's default
    already; kept for a run with OMP_NUM_THREADS above 1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
