"""benchmarks/gpu_check.sh, the one prepared run for a GPU machine, runs end to end on the CPU at tiny sizes."""

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dry_run_prints_every_section_of_the_table(tmp_path):
    proc = subprocess.run(["bash", str(ROOT / "benchmarks/gpu_check.sh"), "--dry-run", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = proc.stdout[proc.stdout.index("fmrikit gpu_check"):]
    for row in ("| decoder | pretrain", "| decoder | one NSD session (750 trials)", "| troi | stage 1",
                "| encoder | training", "| encoder | inference", "| neuropictor | plan (estimate)",
                "| torchrun | probe wall time", "| tests | pytest -m gpu"):
        assert row in table, row
    rows = json.loads((tmp_path / "gpu_check.json").read_text())["rows"]
    assert not [r for r in rows if r["measure"] == "FAILED"]
    rates = {r["measure"]: r["value"] for r in rows}
    assert all(v is None or v > 0 for v in rates.values())
