import os

from fmrikit.devices import THREAD_VARIABLES, limit_threads, usable_cpus


def test_usable_cpus_is_the_affinity_capped_by_the_cgroup_quota(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    assert usable_cpus(tmp_path / "absent") == affinity
    (tmp_path / "unlimited").write_text("max 100000\n")
    assert usable_cpus(tmp_path / "unlimited") == affinity
    (tmp_path / "half").write_text("50000 100000\n")  # half a CPU still gets one thread
    assert usable_cpus(tmp_path / "half") == 1
    (tmp_path / "many").write_text(f"{(affinity + 3) * 100000} 100000\n")
    assert usable_cpus(tmp_path / "many") == affinity


def test_limit_threads_keeps_a_users_choice(monkeypatch):
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    limit_threads()
    assert os.environ.get("OMP_NUM_THREADS") is None
    monkeypatch.delenv("MKL_NUM_THREADS")
    limit_threads()
    assert {os.environ[name] for name in THREAD_VARIABLES} == {str(usable_cpus())}
