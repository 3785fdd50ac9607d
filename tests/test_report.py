"""The attack report: summary once, per-image table with class names, hyper-parameters, incomplete-run
warning, grids over every image with a perturbation colourbar, and a real browser rendering it."""

import base64
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile

import numpy as np
import pytest
import yaml

from doublecross.data.scenes import CLASSES
from doublecross.experiments.job import JobConfig
from doublecross.experiments.runner import run_job
from doublecross.report import build_report, grids
from doublecross.report import figures as figures_mod

PRESET = {
    "kind": "attack",
    "description": "tiny test preset",
    "model": "scenes-resnet",
    "int_loss_reduction": "mean",
    "linf": {
        "threat": {"eps": 0.031372549019607843, "alpha": 0.0078},
        "baseline": {"n_warm": 0, "n_total": 6},
        "interpreters": {"cam": {"n_warm": 3, "n_total": 3, "lam": 10.0}},
    },
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished run: 3 images in 2 batches (2 + 1), CAM only."""
    d = tmp_path_factory.mktemp("report")
    preset = d / "tiny.yaml"
    preset.write_text(yaml.safe_dump(PRESET))
    out = str(d / "run")
    cfg = JobConfig.from_dict({"limit": 3, "batch_size": 2, "interpreters": ("cam",), "preset": str(preset)})
    run_job(cfg, out, progress=False)
    return out


def _text(html: str) -> str:
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "IMG", html)


def test_report_sections(run, monkeypatch):
    monkeypatch.setattr(grids, "PAGE_ROWS", 2)  # 3 images -> two pages
    table, rows = build_report(run)
    html = _text(open(os.path.join(run, "report.html"), encoding="utf-8").read())
    # the summary's numbers appear once: the plain-text table is not repeated in the HTML
    assert "<pre>interp." not in html and table.splitlines()[2] not in html
    adv = next(r for r in rows if r["method"] == "adv2")
    assert html.count(f"{adv['l1']:.3f} ± {adv['l1_std']:.3f}") == 1
    # every image is drawn, over both batches, in pages
    assert os.path.isfile(os.path.join(run, "grid_cam.png")) and os.path.isfile(os.path.join(run, "grid_cam-p2.png"))
    assert html.count("<img ") == 2 and "Incomplete run" not in html
    # per-image table: one row per image, class names rather than numbers, one cell group per method
    per_image = html.split("<h2>Per image</h2>", 1)[1].split("</table>", 1)[0]
    body = re.findall(r"<tr><td>(\d+)</td><td>([^<]+)</td><td>([^<]+)</td>", per_image)
    assert [int(i) for i, _, _ in body] == [0, 1, 2]
    assert all(a in CLASSES and b in CLASSES and a != b for _, a, b in body)
    assert "PGD" in per_image and "ADV²" in per_image
    # resolved hyper-parameters of this run's preset
    hp = html.split("<h2>Hyper-parameters</h2>", 1)[1].split("</table>", 1)[0]
    assert "eps 0.03137 (8/255)" in hp and "lam 10" in hp and "n_total 6" in hp and "n_total 3" in hp


def test_report_warns_on_an_incomplete_run(run, tmp_path):
    part = str(tmp_path / "part")
    shutil.copytree(run, part)
    os.remove(os.path.join(part, "manifest.json"))
    db = sqlite3.connect(os.path.join(part, "results.sqlite"))
    with db:
        db.execute("DELETE FROM units WHERE batch=1 AND unit='adv2-cam'")
        db.execute("DELETE FROM samples WHERE batch=1 AND unit='adv2-cam'")
    db.close()
    _, rows = build_report(part)
    html = _text(open(os.path.join(part, "report.html"), encoding="utf-8").read())
    assert "Incomplete run" in html and "1 of 4 units are missing: batch 1 adv2-cam" in html
    assert "--resume --out" in html
    # class names still come from the model when the manifest is missing
    assert re.search(r"<td>0</td><td>[a-z]+</td>", html.split("<h2>Per image</h2>", 1)[1])
    assert {r["n"] for r in rows if r["interpreter"] == "cam"} == {2}


def test_grid_has_a_colourbar_for_the_perturbation(monkeypatch, tmp_path):
    import torch

    kept = []
    monkeypatch.setattr(figures_mod.plt, "close", lambda fig: kept.append(fig))
    x = torch.rand(3, 3, 16, 16)
    maps = {k: torch.rand(3, 1, 4, 4) for k in ("benign", "base", "adv2")}
    labels = {k: ["a", "b", "c"] for k in maps}
    mags = (torch.rand(3, 1, 16, 16) * 0.03, torch.rand(3, 1, 16, 16) * 0.02)
    figures_mod.grid_figure(str(tmp_path / "g.png"), "cam", x, x, x, maps, labels, magnitudes=mags, rows=3)
    fig = kept[0]
    bars = {ax.get_ylabel(): ax for ax in fig.axes if ax.get_label().startswith("colourbar")}
    assert set(bars) == {"map value", "perturbation |δ|"}
    assert bars["map value"].get_ylim() == pytest.approx((0.0, 1.0))
    assert bars["perturbation |δ|"].get_ylim()[1] == pytest.approx(float(max(m.max() for m in mags)), rel=1e-6)
    assert sum(1 for ax in fig.axes if ax.images and ax not in bars.values()) == 3 * 8  # all 3 rows drawn
    figures_mod.plt.close(fig)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian chromium (apt-get install chromium)")
def test_report_renders_in_headless_chromium(run):
    """A real browser renders report.html with its embedded grids (screenshot not blank, DOM has the images)."""
    build_report(run)
    page = "file://" + os.path.abspath(os.path.join(run, "report.html"))
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ]
    with tempfile.TemporaryDirectory() as profile:
        shot = os.path.join(profile, "shot.png")
        common = [CHROMIUM, *flags, f"--user-data-dir={profile}"]
        subprocess.run(common + [f"--screenshot={shot}", "--window-size=1200,1600", page],
                       capture_output=True, timeout=120, check=True)
        dom = subprocess.run(common + ["--dump-dom", page], capture_output=True, text=True, timeout=120,
                             check=True).stdout
        from PIL import Image

        img = Image.open(shot).convert("RGB")
        assert img.size == (1200, 1600)
        px = np.asarray(img.resize((300, 400)), dtype=int)
        vivid = float(((px.max(axis=2) - px.min(axis=2)) > 120).mean())
        assert vivid > 0.02, vivid  # the jet-coloured maps are on screen, not a blank or text-only page
    srcs = re.findall(r'<img[^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', dom)
    assert len(srcs) == 1 and base64.b64decode(srcs[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Per image" in dom and "Hyper-parameters" in dom
