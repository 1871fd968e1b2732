"""Training curves: drawn for a run of epochs, not for a closed-form fit's single row."""

import numpy as np
from PIL import Image

from fmrikit.viz.curves import read_log, save_training_curves


def test_curves_need_two_epochs(tmp_path):
    one = tmp_path / "one.tsv"
    one.write_text("epoch\talpha_median\tcv_r2_mean\n0\t1000\t0.264\n")
    assert save_training_curves(one, tmp_path / "one.png", "ridge") is None and not (tmp_path / "one.png").exists()
    assert read_log(one) == {"epoch": [0.0], "alpha_median": [1000.0], "cv_r2_mean": [0.264]}
    many = tmp_path / "many.tsv"
    many.write_text("epoch\tloss\tval_loss\tobjective\n1\t2.0\t2.5\tmse\n2\t1.0\t1.8\tmse\n3\t0.5\t1.6\tmse\n")
    png = save_training_curves(many, tmp_path / "many.png", "run")
    image = np.asarray(Image.open(png).convert("L"), float)
    assert image.shape[0] > 100 and image.std() > 5
