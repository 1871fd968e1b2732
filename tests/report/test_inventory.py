"""What the report links: an evaluation is shown beside the output it scored, with the numbers of its file."""

import json

import numpy as np
from PIL import Image

from fmrikit.report import build_report
from fmrikit.report.inventory import inventory


def _recon_project(tmp_path):
    root = tmp_path / "proj"
    recon = root / "sub-01/sub-01_recon-latent-ridge_trials-shared"
    (recon / "images").mkdir(parents=True)
    (recon / "reconstruct.json").write_text(json.dumps({"n_inputs": 2, "parameters": {"method": "latent-ridge"}}))
    Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(recon / "contact_sheet.png")
    out = tmp_path / "results/recon/sub-01"
    out.mkdir(parents=True)
    Image.fromarray(np.full((20, 30, 3), 200, np.uint8)).save(out / "figure.png")
    record = {"schema": "fmrikit.evaluate/1", "kind": "recon", "n": 2, "outputs": ["results.json", "figure.png"],
              "metrics": {"pixcorr": {"label": "PixCorr", "value": 0.123456, "status": "ok", "chance": 0.0},
                          "clip": {"label": "CLIP", "value": None, "status": "skipped", "chance": 0.5}},
              "provenance": {"inputs": [{"path": str((recon / "images").resolve())}, {"path": "stimuli.h5"}]}}
    (out / "results.json").write_text(json.dumps(record))
    return root, recon, out


def test_a_recon_evaluation_sits_beside_its_reconstruction(tmp_path):
    root, recon, out = _recon_project(tmp_path)
    inv = inventory(root, extra=[tmp_path / "results"])
    card = inv.of("reconstruction")[0]
    assert ("recon/sub-01: PixCorr", "0.1235 (chance 0.0000)") in card.numbers
    assert ("recon/sub-01: skipped (no weights or network here)", "CLIP") in card.numbers
    assert [p for p, _ in card.images] == [recon / "contact_sheet.png", out / "figure.png"]
    html = build_report(root, extra=[tmp_path / "results"]).page.read_text()
    section = html.split("<section id='reconstructions'>")[1].split("</section>")[0]
    assert section.count("class='card'") == 1  # the evaluation is not repeated as a card of its own there
    assert "evaluations" in html and html.count("PixCorr") >= 2  # ... but still listed with all evaluations


def test_an_evaluation_of_something_else_is_not_linked(tmp_path):
    root, recon, out = _recon_project(tmp_path)
    record = json.loads((out / "results.json").read_text())
    record["provenance"]["inputs"][0]["path"] = str(tmp_path / "elsewhere/images")
    (out / "results.json").write_text(json.dumps(record))
    card = inventory(root, extra=[tmp_path / "results"]).of("reconstruction")[0]
    assert not any("PixCorr" in label for label, _ in card.numbers) and len(card.images) == 1


def test_an_encoding_evaluation_puts_its_r_map_first_on_the_predictions_card(tmp_path):
    root = tmp_path / "proj"
    enc = root / "sub-01/sub-01_encode-shared"
    enc.mkdir(parents=True)
    (enc / "encode.json").write_text(json.dumps({"parameters": {"n_images": 3, "shared": True}}))
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(enc / "sub-01_img-stim-5_pred.png")
    (enc / "sub-01_pred.h5").write_bytes(b"")
    out = tmp_path / "results/encoding/sub-01"
    out.mkdir(parents=True)
    for name in ("figure.png", "sub-01_r.png"):
        Image.fromarray(np.full((20, 30, 3), 200, np.uint8)).save(out / name)
    record = {"schema": "fmrikit.evaluate/1", "kind": "encoding", "n": 3,
              "outputs": ["results.json", "figure.png", "sub-01_r.png"],
              "metrics": {"median_r": {"label": "voxel r, median", "value": 0.25, "status": "ok", "chance": 0.0}},
              "provenance": {"inputs": [{"path": str((enc / "sub-01_pred.h5").resolve())}]}}
    (out / "results.json").write_text(json.dumps(record))
    card = inventory(root, extra=[tmp_path / "results"]).of("encoding")[0]
    assert ("images", "3") in card.numbers
    assert ("encoding/sub-01: voxel r, median", "0.2500 (chance 0.0000)") in card.numbers
    assert [p.name for p, _ in card.images] == ["sub-01_r.png", "figure.png", "sub-01_img-stim-5_pred.png"]
    assert card.images[0][1].startswith("encoding accuracy per voxel")
    assert card.images[2][1] == "predicted response to stim-5 (z-scored betas)"


def test_a_closed_form_fit_shows_its_numbers_not_a_curve(tmp_path):
    folder = tmp_path / "proj/sub-01/sub-01_desc-ridge_latentmapper"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"command": "pretrain latent-mapper"}))
    (folder / "training_log_image.tsv").write_text("epoch\talpha_median\tcv_r2_mean\n0\t1000\t0.264238\n")
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(folder / "training_log_image.png")  # drawn by an old run
    card = inventory(tmp_path / "proj").of("model")[0]
    assert ("fit image: cv_r2_mean", "0.2642") in card.numbers and ("fit image: alpha_median", "1000") in card.numbers
    assert card.images == [] and card.log is None
