"""Issue 15 (speed): threads, chunking, device check, early stop, cheaper MASK iterations, GPU smoke script."""

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml
from torch import nn

from doublecross import progress
from doublecross.attacks import ATTACKS, AttackConfig
from doublecross.attacks.mask_cost import bracket_step_size, recheck
from doublecross.cli import main
from doublecross.config import ConfigError
from doublecross.experiments import chunking
from doublecross.experiments.job import JobConfig
from doublecross.experiments.runner import run_job
from doublecross.experiments.store import ResultStore
from doublecross.experiments.threads import DEFAULT_MAX, choose_threads, usable_cores
from doublecross.experiments.validate import check_device
from doublecross.interpreters import create_interpreter
from doublecross.models import Classifier, create_model
from doublecross.models.smooth import _SurrogateProduct, relu_surrogate_derivative
from doublecross.profiling import count_forwards
from doublecross.progress import step_reporter
from doublecross.threats import THREATS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRESET = {
    "kind": "attack",
    "description": "tiny speed preset",
    "model": "scenes-resnet",
    "int_loss_reduction": "mean",
    "linf": {
        "threat": {"eps": 0.0784, "alpha": 0.0078},
        "baseline": {"n_warm": 0, "n_total": 8},
        "interpreters": {"cam": {"n_warm": 4, "n_total": 3, "lam": 10.0}},
    },
}


@pytest.fixture(scope="module")
def model():
    return create_model("scenes-resnet")


@pytest.fixture
def preset(tmp_path):
    path = tmp_path / "speed.yaml"
    path.write_text(yaml.safe_dump(PRESET))
    return str(path)


# threads


def test_choose_threads_order(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert choose_threads(5) == (5, "--threads")
    assert choose_threads() == (3, "OMP_NUM_THREADS")
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert choose_threads() == (min(usable_cores(), DEFAULT_MAX), "default")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads"):
            choose_threads(bad)
    monkeypatch.setenv("OMP_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="OMP_NUM_THREADS"):
        choose_threads()


def test_run_records_its_threads_and_restores_torch(tmp_path, preset):
    before = torch.get_num_threads()
    cfg = JobConfig.from_dict({"limit": 2, "batch_size": 2, "interpreters": ("cam",), "preset": preset})
    manifest = run_job(cfg, str(tmp_path / "run"), progress=False, threads=1)
    assert (manifest["threads"], manifest["threads_source"]) == (1, "--threads")
    assert json.load(open(tmp_path / "run" / "manifest.json"))["threads"] == 1
    assert torch.get_num_threads() == before
    manifest = run_job(cfg, str(tmp_path / "run2"), progress=False)  # Python callers keep their own setting
    assert (manifest["threads"], manifest["threads_source"]) == (before, "caller")


# chunking


def test_chunked_attack_and_explain_equal_the_whole_batch(model):
    torch.manual_seed(0)
    x, t = torch.rand(3, 3, 64, 64), torch.tensor([1, 2, 3])
    cam = create_interpreter("cam", model)
    m_t = cam.explain(x, t).map
    attack = ATTACKS.create(
        "adv2", threat=THREATS.create("linf"), config=AttackConfig(n_warm=2, n_total=3, lam=1.0), history_every=1
    )
    steps: dict[str, list[float]] = {"whole": [], "parts": []}
    with step_reporter(steps["whole"].append):
        whole = attack(model, x, t, cam, m_t)
    with step_reporter(steps["parts"].append):
        parts = chunking.attack_in_chunks(attack, model, x, t, 2, cam, m_t)
    for f in ("x_adv", "success", "logits", "map", "perturbation"):
        torch.testing.assert_close(getattr(parts, f), getattr(whole, f), atol=1e-5, rtol=0)
    assert set(parts.size) == set(whole.size)
    assert sum(steps["parts"]) == pytest.approx(sum(steps["whole"]))  # the step bar ends at the unit's steps
    assert [r["step"] for r in parts.history] == [r["step"] for r in whole.history] == [0, 1, 2]
    for rp, rw in zip(parts.history, whole.history, strict=True):  # the merged history is the whole batch's
        assert set(rp) == set(rw)
        for key in rw:
            assert rp[key] == pytest.approx(rw[key], rel=1e-4, abs=1e-6), key
    torch.testing.assert_close(chunking.explain_in_chunks(cam, x, t, 1).map, m_t, atol=1e-6, rtol=0)


def test_out_of_memory_halves_the_chunk():
    seen = []

    def fn(sl):
        seen.append(sl.stop - sl.start)
        if sl.stop - sl.start > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return torch.arange(sl.start, sl.stop)

    def fn_steps(sl):
        progress.step(10)
        return fn(sl)

    reported: list[float] = []
    with step_reporter(reported.append):
        out = chunking.run_chunked(fn_steps, 8, 8, torch.cat)
    assert out.tolist() == list(range(8)) and seen[:2] == [8, 4]
    assert sum(reported) == pytest.approx(10)  # steps of the failed tries are taken back
    with pytest.raises(ValueError, match="other"):
        chunking.run_chunked(lambda sl: (_ for _ in ()).throw(ValueError("other")), 4, 4, torch.cat)


def test_plan_chunk_from_max_memory(model):
    x1, t1 = torch.rand(1, 3, 64, 64), torch.tensor([1])
    per = chunking.image_bytes(model, create_interpreter("grad", model), x1, t1)
    assert per > chunking.image_bytes(model, None, x1, t1) > 0  # double backprop saves more than a forward
    dev = torch.device("cpu")
    assert chunking.plan_chunk(16, None, per, dev) == 16
    assert chunking.plan_chunk(16, 1e-3, per, dev) == 1  # less than the process holds: one image at a time
    assert chunking.plan_chunk(16, 1e4, per, dev) == 16
    with pytest.raises(ValueError, match="max_memory"):
        chunking.plan_chunk(16, 0, per, dev)


def test_max_memory_run_gives_the_same_results(tmp_path, preset):
    cfg = JobConfig.from_dict({"limit": 2, "batch_size": 2, "interpreters": ("cam",), "preset": preset})
    run_job(cfg, str(tmp_path / "a"), progress=False)
    run_job(cfg, str(tmp_path / "b"), progress=False, max_memory=1e-3)  # forces chunks of one image
    sa, sb = ResultStore(str(tmp_path / "a" / "results.sqlite")), ResultStore(str(tmp_path / "b" / "results.sqlite"))
    # a batch of 1 may sum a convolution in another order than a batch of 2; PGD's sign steps can turn
    # such a float difference into one 8-bit level on a few pixels, so "equal" is: nearly every element
    for unit, name in (("pgd", "x"), ("adv2-cam", "adv_x"), ("adv2-cam", "adv_map")):
        a, b = sa.array(0, unit, name), sb.array(0, unit, name)
        assert a.shape == b.shape
        assert float((a - b).abs().gt(1e-5).float().mean()) < 0.01, (unit, name)
    sa.close()
    sb.close()


# device


def test_check_device():
    assert check_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="bogus"):
        check_device("bogus")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            check_device("cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_cuda_run_without_cuda_fails_before_creating_the_run(tmp_path, preset):
    with pytest.raises(ConfigError, match="cuda"):
        run_job(JobConfig.from_dict({"device": "cuda", "preset": preset}), str(tmp_path / "run"), progress=False)
    assert not os.path.exists(tmp_path / "run")


def test_gpu_smoke_skips_cleanly_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the script would run")
    env = {**os.environ, "PYTHONPATH": os.path.join(ROOT, "src"), "PYTHON": sys.executable}
    res = subprocess.run(["bash", os.path.join(ROOT, "bench", "gpu_smoke.sh")], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("SKIP: CUDA is not available")


# early stop


def test_early_stop_keeps_the_first_success_and_saves_passes(model):
    torch.manual_seed(0)
    x, t = torch.rand(4, 3, 64, 64), torch.tensor([1, 2, 3, 4])
    th = THREATS.create("linf", eps=0.0784, alpha=0.0078)
    runs = {}
    for stop in (False, True):
        attack = ATTACKS.create("pgd", threat=th, config=AttackConfig(n_warm=0, n_total=30, early_stop=stop))
        with count_forwards(model) as c:
            runs[stop] = (attack(model, x, t), c.images)
    (full, n_full), (early, n_early) = runs[False], runs[True]
    assert bool(full.success.all()) and bool(early.success.all())
    assert n_early < n_full  # 30 steps x 4 images + 4 for the final evaluation without it
    # a stopped sample sits nearer x: it stopped where it first succeeded
    assert bool((early.size["linf"] <= full.size["linf"] + 1e-6).all())
    assert AttackConfig().early_stop is False


def test_early_stop_with_stadv_keeps_adam_shapes(model):
    torch.manual_seed(0)
    x, t = torch.rand(3, 3, 64, 64), torch.tensor([1, 2, 3])
    attack = ATTACKS.create("pgd", threat=THREATS.create("stadv"), config=AttackConfig(n_total=40, early_stop=True))
    res = attack(model, x, t)
    assert res.x_adv.shape == x.shape


# cheaper MASK iterations


class _Margin(nn.Module):
    """logits (c - mean(x), 0): the margin for class 0 exceeds κ iff mean(x) < c - κ."""

    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = c

    def forward(self, x):
        s = x.mean(dim=(1, 2, 3))
        return torch.stack([self.c - s, torch.zeros_like(s)], 1)


def test_bracket_step_size_known_answer():
    model = Classifier(_Margin(1.0), mean=(0, 0, 0), std=(1, 1, 1))
    th = THREATS.create("linf", eps=1.0)
    x0 = torch.zeros(2, 3, 4, 4)
    r, h, t = torch.zeros_like(x0), -torch.ones_like(x0), torch.tensor([0, 0])
    # keep iff a < 1 - κ = 0.5; sample 0 doubles from 0.2 to 0.4 (one test), sample 1 from 0.4 to 0.8 fails
    with count_forwards(model) as c:
        a = bracket_step_size(model, th, x0, r, h, t, torch.tensor([0.2, 0.4]), 1.0, 0.5, 3)
    assert torch.allclose(a, torch.tensor([0.4, 0.4]))  # sample 1: 0.8 no, 0.4 yes, 0.6 no -> 0.4
    assert (c.calls, c.images) == (3, 4)  # sample 0 is forwarded once, sample 1 three times
    a = bracket_step_size(model, th, x0, r, h, t, torch.tensor([0.0, 0.9]), 1.0, 0.5, 4)
    assert torch.allclose(a, torch.tensor([0.375, 0.375]))  # from α_max = 1: 1, 0.5, 0.25, 0.375


def test_recheck_takes_the_better_true_map(model):
    torch.manual_seed(0)
    x0 = torch.round(torch.rand(2, 3, 64, 64) * 255) / 255
    t = torch.tensor([1, 2])
    mask = create_interpreter("mask", model, perturbation="noise", steps=3)
    attack = ATTACKS.create("adv2-bilevel", threat=THREATS.create("linf"), config=AttackConfig())
    best, last = torch.zeros_like(x0), torch.full_like(x0, 4 / 255)
    ev_b, ev_l = mask.explain(x0, t), mask.explain(torch.clamp(x0 + 4 / 255, 0, 1), t)
    target = ev_b.map.clone()
    target[1] = ev_l.map[1]  # sample 0 is closest at best, sample 1 at last
    attack.config = AttackConfig(kappa_sel=0.0)
    # success for every candidate: judge by distance alone
    attack.is_success = lambda logits, tt: torch.ones(len(tt), dtype=torch.bool)
    v, (logits, amap) = recheck(attack, mask, x0, best, last, (ev_l.logits, ev_l.map), t, target)
    assert torch.equal(v[0], best[0]) and torch.equal(v[1], last[1])
    torch.testing.assert_close(amap, target)


def test_warm_resets_report_the_interpreters_own_map(model):
    torch.manual_seed(0)
    x, t = torch.rand(2, 3, 64, 64), torch.tensor([1, 2])
    mask = create_interpreter("mask", model, perturbation="noise", steps=6)
    m_t = torch.full((2, 1, 8, 8), 0.5)
    cfg = AttackConfig(n_warm=2, n_total=4, n_step=1, n_plain=1, n_reset=2, n_bs=3, kappa_bs=0.0)
    for extra in ({"reset_steps": 2}, {"bisection": "bracket", "n_bracket": 2}):
        attack = ATTACKS.create(
            "adv2-bilevel", threat=THREATS.create("linf", eps=0.0784), config=cfg.__class__(**{**cfg.__dict__, **extra})
        )
        res = attack(model, x, t, mask, m_t)
        fresh = mask.explain(res.x_adv, t)
        torch.testing.assert_close(res.map, fresh.map, atol=1e-5, rtol=0)
        torch.testing.assert_close(res.logits, fresh.logits, atol=1e-4, rtol=0)


def test_surrogate_product_gradients():
    torch.manual_seed(0)
    g = torch.randn(5, dtype=torch.float64, requires_grad=True)
    z = torch.randn(5, dtype=torch.float64, requires_grad=True)
    for sym in (False, True):
        assert torch.autograd.gradcheck(lambda a, b, s=sym: _SurrogateProduct.apply(a, b, 1e-2, s), (g, z))
        ref = (g * relu_surrogate_derivative(z, 1e-2, sym)).sum()
        ours = _SurrogateProduct.apply(g, z, 1e-2, sym).sum()
        for a, b in zip(torch.autograd.grad(ref, (g, z)), torch.autograd.grad(ours, (g, z)), strict=True):
            torch.testing.assert_close(a, b)


# CLI


def test_cli_threads_memory_and_early_stop(tmp_path, preset, capsys, monkeypatch):
    out = str(tmp_path / "cli")
    argv = ["attack", "--interpreter", "cam", "--limit", "2", "--preset", preset, "--quiet"]
    with pytest.raises(SystemExit):
        main(argv + ["--threads", "0", "--out", out])
    assert "positive integer" in capsys.readouterr().err
    assert main(argv + ["--threads", "1", "--max-memory", "64", "--early-stop", "--out", out]) == 0
    assert json.load(open(os.path.join(out, "manifest.json")))["threads"] == 1
    out2 = str(tmp_path / "cli2")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert main(argv + ["--out", out2]) == 0
    assert json.load(open(os.path.join(out2, "manifest.json")))["threads_source"] == "OMP_NUM_THREADS"
    assert yaml.safe_load(open(os.path.join(out, "config.yaml")))["early_stop"] is True


def test_run_on_images_without_object_masks(tmp_path, preset):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = torch.Generator().manual_seed(0)
    for i in range(2):
        arr = (torch.rand(64, 64, 3, generator=rng) * 255).to(torch.uint8).numpy()
        Image.fromarray(arr).save(folder / f"{i}.png")
    cfg = JobConfig.from_dict(
        {"images": str(folder), "limit": 2, "batch_size": 2, "interpreters": ("cam",), "preset": preset}
    )
    manifest = run_job(cfg, str(tmp_path / "run"), progress=False, threads=1)
    assert manifest["images"] == 2
