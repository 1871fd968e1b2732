"""The voxel-selection card: the TROI mask over the annotated ROI, and its evaluation's numbers and figure."""

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from fmrikit.analysis.evaluate import evaluate_mask
from fmrikit.report import build_report
from fmrikit.viz import maps


@pytest.fixture
def selection(project, sim_world, tmp_path, monkeypatch):
    """sub-01's dataset, a TROI-like mask (part of nsdgeneral plus voxels outside it) and its evaluation."""
    monkeypatch.setattr(maps.MapTarget, "renderer", property(lambda self: maps.MOSAIC))  # fast pictures
    root = tmp_path / "proj"
    (root / "sub-01").mkdir(parents=True)
    for path in (project / "sub-01").glob("sub-01_desc-preproc_*"):
        shutil.copy(path, root / "sub-01" / path.name)
    img = nib.load(root / "sub-01/sub-01_desc-preproc_mask.nii.gz")
    roi = img.get_fdata() > 0
    troi = roi.copy()
    troi[: roi.shape[0] // 2] = False  # keep one half of the annotated ROI
    outside = np.argwhere(~roi)[:40]
    troi[tuple(outside.T)] = True  # and 40 voxels outside it
    nib.save(nib.Nifti1Image(troi.astype(np.uint8), img.affine), root / "sub-01/sub-01_desc-troi_mask.nii.gz")
    (root / "sub-01/sub-01_desc-troi.json").write_text(json.dumps({"command": "roi-train", "n_voxels": int(troi.sum())}))
    evaluate_mask(root / "sub-01/sub-01_desc-troi_mask.nii.gz", sim_world / "truth/subj01/informative_mask.nii.gz",
                  root / "evaluate/troi", root=root)
    return root, roi, troi


def test_the_selection_is_drawn_over_the_annotated_roi_with_its_numbers(selection):
    root, roi, troi = selection
    result = build_report(root)
    html = result.page.read_text()
    overlays = sorted(result.files.glob("overlay*_sub-01_desc-troi_mask.png"))
    assert len(overlays) == 1 and f"report_files/{overlays[0].name}" in html
    img = np.asarray(Image.open(overlays[0]).convert("RGB"), int)
    for colour, voxels in zip(maps.OVERLAY_COLORS, (troi & roi, troi & ~roi, roi & ~troi)):
        rgb = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
        assert voxels.any() and (np.abs(img - rgb).sum(-1) < 40).sum() > 20
    card = html.split("sub-01_desc-troi (roi-train)")[1].split("class='card'")[0]
    results = json.loads((root / "evaluate/troi/results.json").read_text())
    for key in ("dice", "precision", "recall"):
        label, value = results["metrics"][key]["label"], results["metrics"][key]["value"]
        assert f"vs subj01/informative_mask: {label}</td><td class='num'>{value:.3f}</td>" in card
    assert "evaluate__troi__figure.png" in card  # the evaluation's overlay figure on the selection's card


def test_no_overlay_without_an_annotated_roi(selection):
    root, _, _ = selection
    for path in (root / "sub-01").glob("sub-01_desc-preproc_*"):
        path.unlink()
    result = build_report(root)
    assert not list(result.files.glob("overlay*"))
