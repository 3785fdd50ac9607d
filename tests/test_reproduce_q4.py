"""Issue 12: Q4 presets (``base:`` presets, ``preset_variant``), baselines shared across presets, claims with
degenerate maps, and the overlay version of the Fig.-17 grid."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from doublecross.attacks.presets import load_attack_preset
from doublecross.config import ConfigError, load_preset_dict, preset_chain
from doublecross.experiments import claims as C
from doublecross.experiments.job import JobConfig
from doublecross.experiments.provenance import provenance_changes, resolve_provenance
from doublecross.experiments.reproduce import ReproduceConfig, _copy_baseline
from doublecross.experiments.spec import load_runs
from doublecross.experiments.store import ResultStore
from doublecross.metrics import IOU_KS
from doublecross.metrics.degenerate import WARN_FRACTION


def test_q4_presets_extend_the_model_preset_and_change_adv2_only():
    for model in ("scenes-resnet",):  # scenes-densenet has no Q4 preset yet: its Q4 runs use scenes-densenet
        base, q4 = load_attack_preset(model), load_attack_preset(f"{model}-q4")
        assert preset_chain(f"{model}-q4") == [f"{model}-q4", model]
        assert "base" not in load_preset_dict(f"{model}-q4")
        # same maps (interpreter options, map sizes) and the same baselines: only ADV²'s settings differ
        assert q4.interpreter_options == base.interpreter_options and set(q4.threats) == {"linf"}
        assert load_preset_dict(f"{model}-q4")["map_sizes"] == load_preset_dict(model)["map_sizes"]
        lb, lq = base.for_threat("linf"), q4.for_threat("linf")
        assert (lq.params, lq.baseline) == (lb.params, lb.baseline)
        assert set(lq.interpreters) == set(lb.interpreters)
        assert any(lq.interpreters[i] != lb.interpreters[i] for i in ("grad", "cam", "mask", "rts"))


def test_base_presets_merge_key_by_key_and_reject_cycles(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    b.write_text(f"kind: attack\nbase: {a}\nlinf:\n  interpreters:\n    cam: {{lam: 99.0}}\n")
    a.write_text(
        "kind: attack\nmodel: m\nlinf:\n  threat: {eps: 0.1}\n  interpreters:\n    cam: {n_total: 5, lam: 1.0}\n"
    )
    merged = load_preset_dict(str(b))
    assert merged["linf"] == {"threat": {"eps": 0.1}, "interpreters": {"cam": {"n_total": 5, "lam": 99.0}}}
    assert merged["model"] == "m" and "base" not in merged
    # the run's provenance follows the base too: editing a.yaml is a change of b's inputs
    before = resolve_provenance(JobConfig(preset=str(b), interpreters=("cam",)))
    a.write_text(a.read_text().replace("n_total: 5", "n_total: 6"))
    changes = provenance_changes(before, resolve_provenance(JobConfig(preset=str(b), interpreters=("cam",))))
    assert changes and "n_total" in changes[0]
    a.write_text(f"kind: attack\nbase: {b}\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_preset_dict(str(b))


def test_q4_runs_use_the_q4_preset_where_one_is_shipped():
    runs = load_runs()
    assert runs["linf-exemplar"].preset_variant == runs["linf-shape"].preset_variant == "q4"
    assert runs["linf-benign"].preset_variant is None
    cfg = ReproduceConfig()
    assert cfg.job("scenes-resnet", runs["linf-shape"]).preset == "scenes-resnet-q4"
    assert cfg.job("scenes-resnet", runs["linf-benign"]).preset == "scenes-resnet"
    paper = ReproduceConfig(preset="table10-resnet50")
    assert paper.preset_for("resnet50", "q4") == "table10-resnet50-q4"
    assert ReproduceConfig(preset="table10-densenet169").preset_for("densenet169", "q4") == "table10-densenet169"
    assert ReproduceConfig().preset_for("scenes-densenet", "q4") == "scenes-densenet"


def _stored_baseline(src, cfg):
    src.mkdir()
    with ResultStore(str(src / "results.sqlite")) as store:
        store.write_unit(0, "pgd", 0.0, [{"idx": 0, "interpreter": "", "method": "pgd", "metrics": {}}], {})
    (src / "provenance.json").write_text(json.dumps(resolve_provenance(cfg)))


def test_baselines_are_shared_with_the_q4_preset_only_when_its_baseline_is_the_same(tmp_path):
    src_cfg = JobConfig(preset="scenes-resnet", interpreters=("cam",))
    _stored_baseline(tmp_path / "src", src_cfg)
    q4 = JobConfig(preset="scenes-resnet-q4", interpreters=("cam",), target_map="shape")
    (tmp_path / "dst").mkdir()
    assert _copy_baseline(str(tmp_path / "src"), str(tmp_path / "dst"), src_cfg, q4) == 1
    other = tmp_path / "other.yaml"  # same λ block, another PGD: its baseline cannot be reused
    other.write_text("kind: attack\nbase: scenes-resnet\nlinf:\n  baseline: {n_total: 299}\n")
    (tmp_path / "dst2").mkdir()
    dst = JobConfig(preset=str(other), interpreters=("cam",), target_map="shape")
    assert _copy_baseline(str(tmp_path / "src"), str(tmp_path / "dst2"), src_cfg, dst) == 0
    (tmp_path / "dst3").mkdir()  # another attack set: never
    assert (
        _copy_baseline(str(tmp_path / "src"), str(tmp_path / "dst3"), src_cfg, JobConfig(**{**q4.__dict__, "seed": 1}))
        == 0
    )


def _row(l1, iou, n=16, ok=16, degenerate=0):
    return {
        "n": n,
        "successes": ok,
        "success_rate": ok / n,
        "confidence": 0.9,
        "l1": l1,
        "l2": l1,
        "iou": iou,
        **{f"iou{k}": iou for k in IOU_KS},
        "degenerate": degenerate,
        "map_n": ok - degenerate,
    }


def test_degenerate_adv2_maps_keep_claims_2_and_4_from_passing():
    assert C.WARN_FRACTION == WARN_FRACTION

    def claim2(deg):
        s = {("cam", "pgd"): _row(0.2, 0.5), ("cam", "adv2"): _row(0.05, 0.8, degenerate=deg)}
        return C.claim2(SimpleNamespace(interpreters=["cam"], summary=lambda m, r: s), "m")

    assert claim2(0).verdict == "PASS" and claim2(1).verdict == "PASS"  # 1/16 ≤ 10 %
    c = claim2(4)
    assert c.verdict == "UNCLEAR" and "4/16 ADV² maps degenerate" in c.line()
    assert claim2(14).verdict == "UNCLEAR" and "only 2 non-degenerate" in claim2(14).line()

    def claim4(adv_l1, deg=0):
        s = {
            ("cam", "adv2"): _row(adv_l1, 0.8, degenerate=deg),
            ("cam", "pgd"): _row(0.3, 0.4),
            ("cam", "benign-ref"): _row(0.25, 0.45),
        }
        return C.claim4(SimpleNamespace(interpreters=["cam"], summary=lambda m, r: s), "m")

    assert claim4(0.1).verdict == "PASS" and "ratio 0.40" in claim4(0.1).line()
    assert claim4(0.1, deg=5).verdict == "UNCLEAR"
    assert claim4(0.2).verdict == "UNCLEAR" and claim4(0.25).verdict == "FAIL"


def test_overlay_grid_draws_each_map_over_the_input_it_explains(tmp_path):
    from PIL import Image

    from doublecross.report.overlay_grid import overlay_cells, overlay_grid

    g = torch.Generator().manual_seed(0)
    interps = ["grad", "cam"]
    x, xb = torch.rand(3, 32, 32, generator=g), torch.rand(3, 32, 32, generator=g)
    adv_x = {i: torch.rand(3, 32, 32, generator=g) for i in interps}
    maps = {k: {i: torch.rand(1, 8, 8, generator=g) for i in interps} for k in ("benign", "base", "adv")}
    im = {
        "x": x,
        "x_base": xb,
        "adv_x": adv_x,
        "cap_benign": "cat (true)",
        "cap_base": "dog (0.9)",
        "cap_adv": {i: f"dog {i}" for i in interps},
        **maps,
    }
    cells = overlay_cells(im, interps, ("PGD", "ADV²"))
    assert [name for name, _ in cells] == ["benign", "PGD", "ADV²"]
    # benign maps over x°, PGD maps over PGD's input, each ADV² map over the input crafted against its interpreter
    for (_name, row), inputs, key in zip(
        cells, ({i: x for i in interps}, {i: xb for i in interps}, adv_x), ("benign", "base", "adv"), strict=True
    ):
        assert row[0][1] is None  # the input alone first
        for (cx, cm, _), i in zip(row[1:], interps, strict=True):
            assert cx is inputs[i] and cm is maps[key][i]
    assert cells[2][1][2][2] == "dog cam"
    path = str(tmp_path / "o.png")
    overlay_grid(path, [im, im], interps, ("PGD", "ADV²"), "t")
    png = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    assert png.shape[0] > png.shape[1] > 100 and png.std() > 20  # 6 rows x 3 columns of drawn cells
