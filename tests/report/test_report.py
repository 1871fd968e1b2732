"""fmrikit report: the page shows what the project holds, with the files' own numbers, and nothing it lacks."""

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fmrikit.cli.main import app

runner = CliRunner()
TINY = ["--device", "cpu", "--seed", "0"]


def _ok(args):
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return res


@pytest.fixture(scope="module")
def chain(project, sim_world, tmp_path_factory, one_thread):
    """A project with the outputs of a short chain: decoder, subject decoder, encoder, clusters, an evaluation."""
    root = tmp_path_factory.mktemp("report") / "proj"
    shutil.copytree(project, root, ignore=shutil.ignore_patterns("models", "*_flatmap-*", "features", ".*"))
    for folder in [p for p in root.glob("sub-*/*") if p.is_dir()]:
        shutil.rmtree(folder)  # only the datasets of the shared project
    r = ["--root", str(root)]
    _ok(["pretrain", "decoder", "--subjects", "2", "--epochs", "2", "--hidden", "16", "--blocks", "1", *TINY, *r])
    _ok(["adapt-subject", "decoder", "--subject", "1", "--epochs", "2", *TINY, *r])
    _ok(["pretrain", "encoder", "--subjects", "1,2", "--epochs", "2", "--channels", "4", "--embed-dim", "8",
         "--voxels-per-image", "50", *TINY, *r])
    _ok(["cluster-embeddings", "--k", "3", "--max-images", "16", "--no-flatmap", *TINY, *r])
    _ok(["evaluate", "mask", "--mask", str(root / "sub-01/sub-01_desc-preproc_mask.nii.gz"), "--reference",
         str(sim_world / "truth/subj01/informative_mask.nii.gz"), *r])
    return root


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.ids = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        if "id" in attrs:
            self.ids.append(attrs["id"])


def _page(root, *args):
    res = _ok(["report", "--root", str(root), *args])
    html = (root / "report.html").read_text()
    links = _Links()
    links.feed(html)
    return res, html, links


def test_every_training_command_writes_its_curves(chain):
    for png in [chain / "models/decoder/training_log.png", chain / "models/encoder/training_log.png",
                chain / "sub-01/sub-01_desc-adapt_log.png"]:
        image = np.asarray(Image.open(png).convert("L"), float)
        assert image.shape[0] > 100 and image.std() > 5  # drawn, not blank


def test_every_picture_the_page_shows_exists_beside_it(chain):
    _, html, links = _page(chain)
    assert links.images and all((chain / src).is_file() for src in links.images)
    assert all(src.startswith("report_files/") for src in links.images)
    assert "http://" not in html and "https://" not in html  # opens from disk, no network
    assert any("training_log.png" in src for src in links.images)


def test_sections_appear_exactly_when_their_outputs_exist(chain, tmp_path):
    _, _, links = _page(chain)
    assert {"project", "subjects", "models", "encoder", "evaluations", "sub-01", "sub-02"} <= set(links.ids)
    assert "reconstructions" not in links.ids
    bare = tmp_path / "bare"
    shutil.copytree(chain / "sub-02", bare / "sub-02", ignore=shutil.ignore_patterns("*.png"))
    res, _, links = _page(bare)
    assert set(links.ids) == {"project", "subjects", "sub-02"}
    assert "no cross-subject decoder yet -> fmrikit pretrain decoder --subjects 2" in " ".join(res.output.split())


def test_numbers_on_the_page_are_those_of_the_files(chain):
    _, html, _ = _page(chain)
    run = json.loads((chain / "models/decoder/run.json").read_text())
    image = run["retrieval"]["sub-02"]["image_retrieval"]
    assert f"sub-02: image retrieval (of {run['retrieval']['sub-02']['n_candidates']}" in html
    assert f"{100 * image:.1f}%" in html
    results = json.loads(next((chain / "evaluate").glob("mask-*/results.json")).read_text())
    dice = results["metrics"]["dice"]["value"]
    assert re.search(rf"<td>Dice[^<]*</td><td class='num'>{dice:.4f}", html)
    sidecar = json.loads((chain / "sub-01/sub-01_desc-preproc_betas.json").read_text())
    assert f"<td>voxels</td><td class='num'>{sidecar['n_voxels']}</td>" in html


def test_next_steps_name_the_new_subject_and_its_command(chain):
    res, html, _ = _page(chain)
    text = " ".join(res.output.split())
    assert "sub-01" not in [line.split(":")[0] for line in text.split("next: ")[1:] if "roi-train" in line]  # adapted
    assert "fmrikit roi-train --subject 2" not in text  # a pretraining subject is not a new subject
    assert "report:" in text and "Next steps" in html or "next:" not in text


@pytest.mark.browser
def test_the_page_renders_in_a_real_browser(chain, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt install chromium)")
    _page(chain)
    shot = tmp_path / "page.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
                    f"--screenshot={shot}", "--window-size=1280,2400", (chain / "report.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(shot).convert("L"), float)
    assert pixels.shape == (2400, 1280) and pixels.std() > 10


@pytest.mark.browser
def test_the_screenshot_script_renders_one_png_per_section(chain, tmp_path):
    from pathlib import Path

    if shutil.which("chromium") is None and shutil.which("chromium-browser") is None:
        pytest.skip("chromium is not installed (apt install chromium)")
    _, html, _ = _page(chain)
    script = Path(__file__).resolve().parents[2] / "examples/report_screenshots.sh"
    subprocess.run(["bash", str(script), str(chain / "report.html"), str(tmp_path / "shots")], check=True,
                   capture_output=True, timeout=600)
    sections = re.findall(r"<section id='([\w-]+)'>", html)
    shots = sorted((tmp_path / "shots").glob("*.png"))
    assert [p.stem.split("-", 1)[1] for p in shots] == sections
    for shot in shots:
        pixels = np.asarray(Image.open(shot).convert("L"), float)
        assert pixels.shape[1] == 1280 and 100 < pixels.shape[0] < 16000 and pixels.std() > 10
    assert not list(chain.glob(".report.section-*.html"))  # the per-section copies are removed
