"""The seed helper: aggregation checked by hand, runs of a real command, failures named."""

import json
import sys

import numpy as np
import pytest

from fmrikit.cli.study import main
from fmrikit.analysis.study import Row, Study, StudyRunError, aggregate, collect, markdown, read_study, \
    run_study, write_rows
from fmrikit.errors import InputError


def _runs(values: dict[tuple[int, int], dict[str, float]]) -> dict[str, Study]:
    """Runs with variants A (reference), B and an oracle row, from {(world, model): {variant: metric}}."""
    return {f"world-{w}_model-{m}": Study([Row(v, {"dice": x}) for v, x in rows.items()]
                                          + [Row("truth", {"dice": 1.0}, oracle=True)])
            for (w, m), rows in values.items()}


def test_values_and_paired_differences_by_hand():
    a = {(0, 0): 0.50, (0, 1): 0.52, (1, 0): 0.40, (1, 1): 0.42, (2, 0): 0.61, (2, 1): 0.59}
    b = {k: v + 0.05 + (0.01 if k[1] else -0.01) for k, v in a.items()}  # B beats A by 0.05 in every world
    table = aggregate(_runs({k: {"A": a[k], "B": b[k]} for k in a}))
    assert table["reference"] == "A"
    entry = table["variants"]["A"]["dice"]
    assert entry["n"] == 6
    assert entry["mean"] == pytest.approx(np.mean(list(a.values())))
    assert entry["sd"] == pytest.approx(np.std(list(a.values()), ddof=1))
    diff = table["differences"]["B"]["dice"]
    per_world = [np.mean([b[w, m] - a[w, m] for m in (0, 1)]) for w in (0, 1, 2)]
    assert diff["n"] == 3 and diff["mean"] == pytest.approx(np.mean(per_world))
    assert diff["se"] == pytest.approx(np.std(per_world, ddof=1) / np.sqrt(3))
    assert diff["called"]  # between-world spread of A (0.1) does not hide a consistent difference
    assert "truth" not in table["differences"]
    text = markdown(table)
    assert "| oracle: truth |" in text and "+0.050" in text and " *" in text


def test_noisy_difference_is_not_called_and_one_run_never_is():
    a = {(w, 0): 0.5 for w in range(3)}
    b = {(0, 0): 0.6, (1, 0): 0.45, (2, 0): 0.5}
    diff = aggregate(_runs({k: {"A": a[k], "B": b[k]} for k in a}))["differences"]["B"]["dice"]
    assert diff["n"] == 3 and not diff["called"]
    single = aggregate(_runs({(0, 0): {"A": 0.5, "B": 0.9}}))
    assert single["differences"]["B"]["dice"]["se"] is None and not single["differences"]["B"]["dice"]["called"]
    assert "(n=1)" in markdown(single)


def test_rows_round_trip_and_checks(tmp_path):
    rows = [Row("A", {"x": 1.0, "y": None}), Row("B", {"x": float("nan")}), Row("o", {"x": 2.0}, oracle=True)]
    path = write_rows(tmp_path / "r" / "rows.json", rows, reference="B", labels={"x": "X"})
    study = read_study(path)
    assert study.reference == "B" and study.labels == {"x": "X"} and study.rows[2].oracle
    table = aggregate({"run": study})
    assert table["variants"]["B"]["x"]["n"] == 0 and table["variants"]["A"]["y"]["n"] == 0
    with pytest.raises(InputError, match="unique"):
        write_rows(tmp_path / "x.json", [Row("A", {}), Row("A", {})])
    with pytest.raises(InputError, match="compared variant"):
        write_rows(tmp_path / "x.json", [Row("A", {})], reference="Z")
    with pytest.raises(InputError, match="compared variant"):
        write_rows(tmp_path / "x.json", [Row("A", {}, versus="Z")])


def test_a_row_compared_with_its_own_baseline():
    runs = {f"world-{w}_model-0": Study([Row("A", {"x": 0.5}), Row("B", {"x": 0.1 * w}),
                                         Row("C", {"x": 0.1 * w + 0.3 + 0.01 * w}, versus="B")]) for w in range(3)}
    diffs = aggregate(runs)["differences"]
    assert diffs["B"]["versus"] == "A" and diffs["C"]["versus"] == "B"
    assert diffs["C"]["x"]["mean"] == pytest.approx(0.31) and diffs["C"]["x"]["called"]
    assert "| C | B | +0.310 ± 0.006 * |" in markdown(aggregate(runs))


SCRIPT = """
import os
from fmrikit.analysis.study import Row, write_rows
w, m = int(os.environ["WORLD_SEED"]), int(os.environ["SEED"])
assert os.path.isdir(os.environ["STUDY_RUN_DIR"])
print("running", w, m)
write_rows(os.environ["STUDY_ROWS"], [Row("base", {"score": 0.1 * w + 0.01 * m}),
                                      Row("better", {"score": 0.1 * w + 0.01 * m + 0.2 + 0.001 * w}),
                                      Row("truth", {"score": 1.0}, oracle=True)], labels={"score": "Score"})
"""


def test_run_study_runs_every_seed_pair_and_writes_one_table(tmp_path, capsys):
    table = run_study([sys.executable, "-c", SCRIPT], [0, 1, 2], [0, 1], tmp_path / "study")
    assert table["runs"] == [f"world-{w}_model-{m}" for w in (0, 1, 2) for m in (0, 1)]
    assert table["variants"]["base"]["score"]["mean"] == pytest.approx(np.mean([0.1 * w + 0.01 * m for w in (0, 1, 2)
                                                                                for m in (0, 1)]))
    assert table["differences"]["better"]["score"]["called"]
    assert "running 2 1" in (tmp_path / "study/world-2_model-1/run.log").read_text()
    assert json.loads((tmp_path / "study/table.json").read_text())["labels"] == {"score": "Score"}
    assert (tmp_path / "study/table.md").read_text() == markdown(table)
    assert main(["table", str(tmp_path / "study")]) == 0
    assert "| oracle: truth | 1.000 ± 0.000 (n=6) |" in capsys.readouterr().out
    assert collect(tmp_path / "study", ["world-0_model-0"])["runs"] == ["world-0_model-0"]


def test_a_failing_run_is_named(tmp_path, capsys):
    with pytest.raises(StudyRunError, match="exit status 3") as info:
        run_study([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], [0], [0], tmp_path / "s")
    assert info.value.path.endswith("world-0_model-0/run.log")
    assert main(["run", "--world-seeds", "0", "--out", str(tmp_path / "s"), "--", sys.executable, "-c",
                 "raise SystemExit(1)"]) == 2
    assert "exit status 1" in capsys.readouterr().err
    assert main(["run", "--world-seeds", "a", "--out", str(tmp_path / "s"), "--", "true"]) == 2
