"""`doublecross reproduce`: specs, Q4 targets, transfer pass, claims from numbers, resumable runs, HTML report."""

import collections
import csv
import json
import os
import sqlite3
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from browser import CHROMIUM, check_page, screenshot
from doublecross.attacks import ATTACKS
from doublecross.cli import main
from doublecross.config import ConfigError
from doublecross.data.pairing import pair_farthest
from doublecross.experiments import claims as C
from doublecross.experiments.exemplars import exemplar_pool
from doublecross.experiments.reproduce import ReproduceConfig, reproduce
from doublecross.experiments.spec import EXPERIMENTS, load_experiment, load_runs, resolve
from doublecross.metrics import IOU_KS
from doublecross.report.paper_tables import Table

TINY = {
    "kind": "attack",
    "description": "tiny reproduce test preset",
    "model": "scenes-resnet",
    "int_loss_reduction": "mean",
    "linf": {
        "threat": {"eps": 0.0784313725490196, "alpha": 0.00784313725490196},
        "baseline": {"n_warm": 0, "n_total": 15},
        "interpreters": {
            "cam": {"n_warm": 15, "n_total": 10, "lam": 10.0},
            "rts": {"n_warm": 15, "n_total": 10, "lam": 100.0, "extra": {"encoder": 0.1}},
        },
    },
    "stadv": {
        "threat": {"tau": 0.0005, "lr": 0.05},
        "baseline": {"n_warm": 0, "n_total": 30},
        "interpreters": {
            "cam": {"n_warm": 30, "n_total": 4, "lam": 10.0},
            "rts": {"n_warm": 30, "n_total": 4, "lam": 100.0, "extra": {"encoder": 0.1}},
        },
    },
}


@pytest.fixture
def tiny_preset(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return str(path)


def test_specs_load_and_compile_to_shared_runs():
    runs = load_runs()
    assert set(runs) == {"linf-benign", "stadv-benign", "linf-exemplar", "linf-shape"}
    specs = resolve("all")
    assert [s.name for s in specs] == list(EXPERIMENTS)
    assert load_experiment("q2").runs == load_experiment("transfer").runs == ("linf-benign",)  # shared, run once
    assert load_experiment("transfer").passes == ("transfer", "transfer-models") and load_experiment("q4").claims == (
        4,
    )
    with pytest.raises(ConfigError, match="q3"):
        load_experiment("q3")
    with pytest.raises(ConfigError, match="preset"):
        ReproduceConfig(models=("small-resnet",)).preset_for("small-resnet")


def test_pair_farthest_known_answer_and_use_limit():
    benign = torch.stack([torch.zeros(1, 2, 2), torch.full((1, 2, 2), 0.5), torch.ones(1, 2, 2)])
    targets = torch.ones(5, 1, 2, 2)  # every shape is farthest from image 0, then image 1
    assert pair_farthest(benign, targets, max_uses=3).tolist() == [0, 0, 0, 1, 1]
    assert pair_farthest(benign, torch.zeros(2, 1, 2, 2)).tolist() == [2, 2]
    with pytest.raises(ValueError, match="cannot pair"):
        pair_farthest(benign, torch.ones(10, 1, 2, 2), max_uses=3)


def test_exemplar_pool_is_outside_the_attack_set(scenes_resnet):
    from doublecross.data import create_dataset
    from doublecross.experiments.job import JobConfig
    from doublecross.experiments.runner import attack_set_with_indices

    x_att, _, _, _, indices = attack_set_with_indices(JobConfig(limit=6), scenes_resnet)
    ds = create_dataset("scenes", split="test")
    px, py = exemplar_pool(ds, scenes_resnet, exclude=set(indices), per_class=2)
    assert len(set(py.tolist())) == scenes_resnet.num_classes
    assert max(collections.Counter(py.tolist()).values()) <= 2
    flat = px.flatten(1)
    assert all((flat - a.flatten()).abs().amax(1).min() > 0 for a in x_att)  # no attacked image in the pool
    with torch.no_grad():
        assert (scenes_resnet(px).argmax(1) == py).all()  # correctly classified


def _summary(base_l1, adv_l1, base_iou, adv_iou, n=8, ok=8, base="pgd", adv="adv2", interps=("cam", "rts")):
    out = {}
    for i in interps:
        for meth, l1, iou in ((base, base_l1, base_iou), (adv, adv_l1, adv_iou)):
            out[(i, meth)] = {
                "n": n,
                "successes": ok,
                "success_rate": ok / n,
                "confidence": 0.9,
                "l1": l1,
                "l2": l1 * 1.2,
                "iou": iou,
                **{f"iou{k}": iou for k in IOU_KS},
            }
    return out


@pytest.mark.parametrize(
    ("adv_l1", "adv_iou", "verdict"), [(0.05, 0.8, "PASS"), (0.08, 0.7, "UNCLEAR"), (0.2, 0.4, "FAIL")]
)
def test_claim2_verdict_follows_the_numbers(adv_l1, adv_iou, verdict):
    ctx = SimpleNamespace(interpreters=["cam", "rts"], summary=lambda m, r: _summary(0.12, adv_l1, 0.5, adv_iou))
    claim = C.claim2(ctx, "m")
    assert claim.verdict == verdict and "L1 ratio" in claim.line()


def test_claim1_and_claim6_from_numbers():
    few = _summary(0.1, 0.05, 0.5, 0.8, n=8, ok=1)
    assert C.claim1(SimpleNamespace(interpreters=["cam"], summary=lambda m, r: few), "m").verdict == "UNCLEAR"
    s = _summary(0.1, 0.05, 0.5, 0.8)
    s[("cam", "adv2")] = {**s[("cam", "adv2")], "successes": 4, "success_rate": 0.5}
    assert C.claim1(SimpleNamespace(interpreters=["cam"], summary=lambda m, r: s), "m").verdict == "FAIL"

    def matrix(diag):
        cell = lambda v: {"n": 8, "successes": 8, "l1": v, "iou": 0.5}  # noqa: E731
        m = {("pgd", b): cell(0.2) for b in ("cam", "rts")}
        m.update({(a, b): cell(diag if a == b else 0.19) for a in ("cam", "rts") for b in ("cam", "rts")})
        return m

    for diag, verdict in ((0.05, "PASS"), (0.3, "FAIL")):
        ctx = SimpleNamespace(interpreters=["cam", "rts"], transfer=lambda m, d=diag: matrix(d))
        assert C.claim6(ctx, "m").verdict == verdict


def test_table_renders_markdown_csv_latex(tmp_path):
    t = Table(
        "x",
        "L1 & L2 of ADV²",
        ["interpreter", "L1"],
        [["CAM_1", "0.1 ± 0.02"]],
        ["n = 3; 50 %"],
        [{"interpreter": "cam", "l1": 0.1}],
    )
    paths = t.write(str(tmp_path))
    assert "| CAM_1 | 0.1 ± 0.02 |" in open(paths["md"]).read()
    tex = open(paths["tex"]).read()
    assert "L1 \\& L2 of ADV$^2$" in tex and "CAM\\_1" in tex and "$\\pm$" in tex and "50 \\%" in tex
    assert list(csv.DictReader(open(paths["csv"]))) == [{"interpreter": "cam", "l1": "0.1"}]


def _counting(monkeypatch, crash_at=None):
    calls = []
    real = ATTACKS.create

    def create(name, **kw):
        attack = real(name, **kw)
        run = attack.run

        def counted(*a, **k):
            calls.append(name)
            if crash_at is not None and len(calls) == crash_at:
                raise KeyboardInterrupt
            return run(*a, **k)

        attack.run = counted
        return attack

    monkeypatch.setattr(ATTACKS, "create", create)
    return calls


def test_reproduce_resumes_shares_runs_and_writes_a_report(tmp_path, tiny_preset, monkeypatch):
    out = str(tmp_path / "rep")
    base = {"limit": 3, "batch_size": 3, "interpreters": ("cam", "rts"), "preset": tiny_preset}
    calls = _counting(monkeypatch)
    reproduce(ReproduceConfig.from_dict({**base, "experiments": ("q1",)}), out, progress=False)
    assert collections.Counter(calls) == {"pgd": 1, "adv2": 2}
    everything = ReproduceConfig.from_dict(base)
    with pytest.raises(FileExistsError, match="--resume"):
        reproduce(everything, out, progress=False)
    with pytest.raises(ConfigError, match="limit"):
        reproduce(ReproduceConfig.from_dict({**base, "limit": 2}), out, resume=True, progress=False)
    monkeypatch.undo()
    # Q4 then StAdv (runs.yaml order), killed in the exemplar run: its PGD copied, 1 ADV² unit done
    calls = _counting(monkeypatch, crash_at=2)
    with pytest.raises(KeyboardInterrupt):
        reproduce(ReproduceConfig.from_dict({**base, "experiments": ("stadv", "q4")}), out, resume=True)
    assert collections.Counter(calls) == {"adv2": 2}, calls
    monkeypatch.undo()
    calls = _counting(monkeypatch)
    manifest = reproduce(everything, out, resume=True, progress=False)
    # only what was missing: the exemplar run's last ADV² unit, the shape run's (its PGD copied too), StAdv's 3
    assert collections.Counter(calls) == {"adv2": 5, "pgd": 1}, calls
    for run in ("linf-exemplar", "linf-shape"):
        db = sqlite3.connect(os.path.join(out, "scenes-resnet", run, "results.sqlite"))
        assert db.execute("SELECT seconds FROM units WHERE unit='pgd'").fetchall() == [(0.0,)]  # copied, not rerun
        db.close()
    db = sqlite3.connect(os.path.join(out, "scenes-resnet", "linf-shape", "results.sqlite"))
    uses = collections.Counter(
        json.loads(m)["image"]
        for (m,) in db.execute("SELECT metrics FROM samples WHERE unit='adv2-cam' AND method='adv2'")
    )
    assert max(uses.values()) <= 3  # each image paired with at most 3 shapes
    db.close()
    calls.clear()
    reproduce(everything, out, resume=True, progress=False)
    assert calls == []  # nothing redone

    assert set(manifest["claims"].values()) <= {"PASS", "FAIL", "UNCLEAR"}
    assert {k.split(":")[0] for k in manifest["claims"]} == set(EXPERIMENTS)
    for name in ("q1_q1", "q2_distance", "q2_iou", "q4_targets", "stadv_q1", "transfer_scenes-resnet"):
        for ext in ("md", "csv", "tex"):
            assert os.path.getsize(os.path.join(out, "tables", f"{name}.{ext}")) > 0
    md = open(os.path.join(out, "tables", "q2_distance.md")).read()
    assert "n = 3 attacked images" in md and "Seed 0" in md and "claim(s): 2, 3" in md
    assert any(
        line.startswith(f"- Claim 2 [scenes-resnet]: {v}")
        for v in ("PASS", "FAIL", "UNCLEAR")
        for line in md.splitlines()
    )
    with open(os.path.join(out, "tables", "transfer_scenes-resnet.csv")) as fh:
        cells = {(r["attacked"], r["evaluated"]) for r in csv.DictReader(fh)}
    assert cells == {(a, b) for a in ("pgd", "cam", "rts") for b in ("cam", "rts")}
    figures = set(os.listdir(os.path.join(out, "figures")))
    assert {
        "q2_iou_curves_scenes-resnet.png",
        "q2_grid_scenes-resnet.png",
        "q2_overlay_scenes-resnet.png",
        "stadv_overlay_scenes-resnet.png",
        "q4_exemplar_scenes-resnet.png",
        "q4_shape_scenes-resnet.png",
        "stadv_grid_scenes-resnet.png",
        "transfer_matrix_scenes-resnet.png",
    } <= figures
    report = open(os.path.join(out, "report.html")).read()
    assert report.count("data:image/png;base64,") == 9 and "src='http" not in report and "<script" not in report
    if CHROMIUM is None:
        pytest.skip("chromium is not installed: the browser check of report.html was skipped")
    seen = check_page(os.path.join(out, "report.html"))
    assert seen["images"] == 9 and seen["broken_images"] == 0 and seen["external_images"] == 0
    assert seen["links"] >= 7 and seen["broken_links"] == [] and seen["tables"] >= 8 and seen["height"] > 3000
    png = str(tmp_path / "shot.png")
    screenshot(os.path.join(out, "report.html"), png)
    from PIL import Image

    pixels = torch.from_numpy(np.asarray(Image.open(png).convert("L"), dtype=np.float32))
    assert pixels.std() > 10  # something was drawn, not a blank page


def test_cli_reproduce_prints_tables_and_verdicts(tmp_path, tiny_preset, capsys):
    out = str(tmp_path / "cli")
    argv = ["reproduce", "q1", "--interpreter", "cam", "--limit", "2", "--preset", tiny_preset, "--out", out, "--quiet"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "success rate and confidence" in text and "q1: claim 1 [scenes-resnet]" in text
    assert main(argv) == 2 and "--resume" in capsys.readouterr().err
    # regenerate everything from what is stored, running nothing: the missing runs show as incomplete
    assert main(["reproduce", "all", "--out", out, "--report-only", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "UNCLEAR  q4: claim 4 [scenes-resnet]" in text and "q1: claim 1 [scenes-resnet]" in text
    html = open(os.path.join(out, "report.html")).read()
    assert "Incomplete reproduction" in html and "linf-shape: 0/2 units" in html
    assert not os.path.exists(os.path.join(out, "scenes-resnet", "linf-shape"))  # nothing was run


def test_transfer_across_the_two_embedded_classifiers(tmp_path, tiny_preset):
    cfg = ReproduceConfig.from_dict(
        {
            "experiments": ("transfer",),
            "models": ("scenes-resnet", "scenes-densenet"),
            "limit": 2,
            "interpreters": ("cam",),
            "preset": tiny_preset,
        }
    )
    out = str(tmp_path / "x")
    reproduce(cfg, out, progress=False)
    for m1, m2 in (("scenes-resnet", "scenes-densenet"), ("scenes-densenet", "scenes-resnet")):
        with open(os.path.join(out, "tables", f"transfer_{m1}_to_{m2}.csv")) as fh:
            rows = list(csv.DictReader(fh))
        assert {r["attacked"] for r in rows} == {"pgd", "cam"} and {r["evaluated"] for r in rows} == {"cam"}
        assert all(0 <= float(r["fooled"]) <= 1 and 0 <= float(r["l1"]) <= 1 for r in rows if r["successes"] != "0")
    md = open(os.path.join(out, "tables", "transfer_scenes-resnet.md")).read()
    assert "scenes-densenet: n = 2" in md  # one table per model, the sample size of each stated


@pytest.mark.slow
def test_reproduce_all_on_scenes_resnet_shows_the_claims(tmp_path):
    """The acceptance run (`doublecross reproduce all --limit 16`) on scenes-resnet.

    Measured (16 images, class-balanced draw, issue 12): claims 1 and 6 PASS; 2, 4 and 5 UNCLEAR by the fixed
    thresholds (every ADV² map closer than PGD's / the references, but some ratios between 0.5 and 1: GRAD L2
    0.5004, StAdv-RTS, Q4 shape targets for GRAD / MASK / RTS at 0.6-0.8).
    None may FAIL, and the transfer diagonal must be the smallest cell of its column.
    """
    out = str(tmp_path / "all")
    manifest = reproduce(ReproduceConfig(limit=16), out, progress=False)
    verdicts = {
        n: manifest["claims"][f"{exp}: claim {n} [scenes-resnet]"]
        for exp, n in (("q1", 1), ("q2", 2), ("q4", 4), ("stadv", 5), ("transfer", 6))
    }
    assert verdicts[1] == verdicts[6] == "PASS" and "FAIL" not in verdicts.values(), verdicts
    with open(os.path.join(out, "tables", "transfer_scenes-resnet.csv")) as fh:
        cells = {(r["attacked"], r["evaluated"]): float(r["l1"]) for r in csv.DictReader(fh)}
    names = ("grad", "cam", "mask", "rts")
    for b in names:  # the diagonal is below every off-diagonal cell of its column
        assert all(cells[(b, b)] < cells[(a, b)] for a in names if a != b)


def test_baselines_are_shared_only_from_a_run_made_of_the_same_inputs(tmp_path, tiny_preset, caplog):
    """_copy_baseline reads the source run's provenance: other inputs (here the preset's text) -> no copy."""
    from doublecross.experiments.job import JobConfig
    from doublecross.experiments.provenance import resolve_provenance
    from doublecross.experiments.reproduce import _copy_baseline
    from doublecross.experiments.store import ResultStore

    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    cfg = JobConfig(preset=tiny_preset, interpreters=("cam",))
    with ResultStore(str(src / "results.sqlite")) as store:
        store.write_unit(0, "pgd", 0.0, [{"idx": 0, "interpreter": "", "method": "pgd", "metrics": {}}], {})
    (src / "provenance.json").write_text(json.dumps(resolve_provenance(cfg)))
    assert _copy_baseline(str(src), str(dst), cfg, cfg) == 1  # same inputs: the PGD unit is reused
    with open(tiny_preset, "a") as fh:
        fh.write("# edited after the source run\n")
    other = tmp_path / "dst2"
    other.mkdir()
    with caplog.at_level("WARNING"):
        assert _copy_baseline(str(src), str(other), cfg, cfg) == 0
    assert any("not reused" in r.getMessage() and "preset" in r.getMessage() for r in caplog.records)
