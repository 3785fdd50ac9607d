"""Known answers and oracles from other libraries for the interpreters."""

import pytest
import torch
import torch.nn.functional as F

from doublecross.interpreters import create_interpreter, minmax_normalise
from doublecross.interpreters.functional_adam import AdamState, adam_step
from doublecross.interpreters.mask import MaskState, gaussian_blur, gaussian_kernel_size, tv_beta
from doublecross.interpreters.rts_train import RtsTrainConfig, train_rts

captum_attr = pytest.importorskip("captum.attr", reason="captum is in the dev extra")


def _x(b=3, seed=0, size=64):
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("size, pool", [(64, 4), (32, 2)])
def test_grad_equals_captum_saliency(tiny_resnet, size, pool):
    x, t = _x(size=size), torch.tensor([1, 4, 7])
    ours = create_interpreter("grad", tiny_resnet).explain(x, t).map
    sal = captum_attr.Saliency(lambda inp: -F.log_softmax(tiny_resnet(inp), dim=1))
    s = sal.attribute(x.clone().requires_grad_(True), target=t, abs=True)
    ref = minmax_normalise(F.avg_pool2d(s.amax(1, keepdim=True), pool))
    assert ours.shape[-1] == size // pool
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-4)


def test_grad_logit_signal_and_graph_map_close_to_true_map(tiny_resnet):
    x, t = _x(), torch.tensor([0, 1, 2])
    ours = create_interpreter("grad", tiny_resnet, signal="logit").explain(x, t).map
    s = captum_attr.Saliency(tiny_resnet).attribute(x.clone().requires_grad_(True), target=t, abs=True)
    torch.testing.assert_close(ours, minmax_normalise(F.avg_pool2d(s.amax(1, keepdim=True), 4)), atol=1e-5, rtol=1e-4)
    # under the surrogate (graph mode) the map differs from the true one only slightly
    g = create_interpreter("grad", tiny_resnet)
    with_graph = g(x.clone().requires_grad_(True), t).map
    assert float((with_graph - g.explain(x, t).map).abs().mean()) < 0.05


def test_cam_hand_formula_and_captum_gradcam(tiny_resnet, tiny_densenet):
    x, t = _x(), torch.tensor([2, 5, 9])
    relu = torch.nn.ReLU()  # the DenseNet's last ReLU is functional: re-expressed as a module captum can hook

    def dense(inp):
        return tiny_densenet.net.fc(relu(tiny_densenet.net.body(tiny_densenet.normalise(inp))).mean((2, 3)))

    for model, forward, layer in ((tiny_resnet, tiny_resnet, tiny_resnet.net.body), (tiny_densenet, dense, relu)):
        torch.testing.assert_close(forward(x), model(x))
        cam = create_interpreter("cam", model).explain(x, t).map
        feats, _ = model.features_and_logits(x)
        w = model.linear.weight
        hand = torch.stack([(w[t[i]][:, None, None] * feats[i]).sum(0) for i in range(3)])[:, None]
        torch.testing.assert_close(cam, minmax_normalise(hand))
        gc = captum_attr.LayerGradCam(forward, layer).attribute(x, target=t, relu_attributions=False)
        hw = feats.shape[-1] * feats.shape[-2]
        torch.testing.assert_close(gc * hw, hand, atol=1e-4, rtol=1e-4)  # GradCAM = CAM / hw on GAP+linear
        assert cam.shape == (3, 1, 8, 8)


def test_cam_refuses_models_without_a_linear_head():
    from torch import nn

    from doublecross.models import Classifier

    clf = Classifier(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 62 * 62, 5)))
    with pytest.raises(TypeError, match="no single linear layer"):
        create_interpreter("cam", clf, head="linear")  # exact CAM only
    assert create_interpreter("cam", clf).explain(torch.rand(1, 3, 64, 64), 0).map.shape == (1, 1, 62, 62)
    mlp = Classifier(nn.Sequential(nn.Flatten(), nn.Linear(3 * 64 * 64, 5)))  # no spatial map at all
    with pytest.raises(TypeError, match="cannot reach the last feature map"):
        create_interpreter("cam", mlp)


def test_functional_adam_matches_torch_adam():
    g = torch.Generator().manual_seed(0)
    p = torch.rand(2, 1, 4, 4, generator=g)
    ref = p.clone().requires_grad_(True)
    opt = torch.optim.Adam([ref], lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    m, st = p.clone(), AdamState.zeros_like(p)
    for _ in range(10):
        grad = torch.randn(p.shape, generator=g)
        ref.grad = grad.clone()
        opt.step()
        m, st = adam_step(m, grad, st, lr=0.1, clamp=None)
        torch.testing.assert_close(m, ref.detach(), atol=1e-6, rtol=1e-5)
    assert st.step == 10


def test_functional_adam_is_differentiable():
    m = torch.full((1, 4), 0.5, dtype=torch.float64)
    grad = torch.tensor([[0.3, -0.2, 1e-3, 0.0]], dtype=torch.float64, requires_grad=True)
    st = AdamState(torch.zeros_like(m), torch.full_like(m, 1e-3), 3)
    assert torch.autograd.gradcheck(lambda gr: adam_step(m, gr, st, clamp=None)[0], (grad,))
    out, _ = adam_step(m, grad, AdamState.zeros_like(m), clamp=None)  # nu = 0 at one entry: no NaN
    (d,) = torch.autograd.grad(out.sum(), grad)
    assert torch.isfinite(d).all()


def test_mask_constants_and_tv():
    assert gaussian_kernel_size(3.5) == 21 and gaussian_kernel_size(2.0) == 11
    m = torch.zeros(1, 1, 3, 3)
    m[0, 0, 0, 0] = 1.0
    # cells (0,0): dv=-1, dh=-1 -> (2+1e-8)^1.5; (0,1): dv=0, dh=0 ; (1,0): dv=0,dh=0; (1,1): 0
    torch.testing.assert_close(tv_beta(m, 3.0), torch.tensor([(2 + 1e-8) ** 1.5 + 3 * 1e-12]))


def test_mask_constants_at_224_match_the_paper(tiny_resnet):
    interp = create_interpreter("mask", tiny_resnet)
    c = interp.constants(224, 224)
    assert (c["k_in"], c["sigma_in"], c["k_m"], c["sigma_m"], c["jitter"]) == (21, 3.5, 11, 2.0, 4)
    assert c["l1"] == pytest.approx(1e-4) and c["tv"] == pytest.approx(1e-2)
    assert interp.native_size(224, 224) == (28, 28) and interp.native_size(32, 32) == (8, 8)


def test_mask_lowers_the_target_score(scenes_resnet, scene_batch):
    x, y, _ = scene_batch
    from doublecross.attacks.presets import interpreter_defaults

    interp = create_interpreter(
        "mask", scenes_resnet, **{**interpreter_defaults("scenes-resnet")["mask"], "steps": 300}
    )
    out = interp.explain(x, y)
    up, blurred, c = interp.prepare(x)
    with torch.no_grad():
        p_clean = F.softmax(scenes_resnet(x), 1).gather(1, y[:, None])[:, 0]
        deleted = interp.loss(out.state.m, up, blurred, y, (0, 0), c)  # includes p of the perturbed image
        penalty = c["l1"] * (1 - out.state.m).abs().flatten(1).sum(1) + c["tv"] * tv_beta(out.state.m)
    p_masked = deleted - penalty
    assert float(p_masked.mean()) < 0.5 * float(p_clean.mean())
    assert float(out.map.mean()) < 0.6  # a salient region, not everything


def test_mask_warm_start_continues_from_the_given_state(tiny_resnet):
    x, t = _x(2), torch.tensor([1, 3])
    m = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    given = MaskState(m, AdamState.zeros_like(m))
    # zero steps: the map is the given mask's complement, untouched
    torch.testing.assert_close(create_interpreter("mask", tiny_resnet, steps=0).explain(x, t, state=given).map, 1 - m)
    # 10 steps, then 10 more from that state, equal 20 steps in one run (same jitter draws, Adam moments carried)
    mask = create_interpreter("mask", tiny_resnet, steps=10)
    s20 = mask.run(x, t, None, 20, 0, torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(0)
    s10 = mask.run(x, t, None, 10, 0, gen)
    s10b = mask.run(x, t, s10, 10, 0, gen)
    assert s10b.adam.step == s20.adam.step == 20
    torch.testing.assert_close(s10b.m, s20.m, atol=0, rtol=0)
    # the interpreter's own call with a state continues it (its jitter generator restarts at its seed)
    warm = mask.explain(x, t, state=s10)
    expected = mask.run(x, t, s10, 10, 0, torch.Generator().manual_seed(mask.seed))
    torch.testing.assert_close(warm.map, 1 - expected.m, atol=0, rtol=0)
    assert warm.state.adam.step == 20 and not torch.equal(warm.map, mask.explain(x, t).map)


def test_rts_training_lowers_its_loss(tiny_resnet, tmp_path):
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 3, 64, 64, generator=g), torch.randint(0, 10, (64,), generator=g)
    meta = train_rts(tiny_resnet, x, y, str(tmp_path / "rts.pt"), RtsTrainConfig(steps=60, batch_size=16))
    assert meta["loss_last"] < meta["loss_first"]
    from doublecross.interpreters import create_interpreter as ci

    rts = ci("rts", tiny_resnet, weights=str(tmp_path / "rts.pt"))
    assert rts.explain(x[:2], [0, 1]).map.shape == (2, 1, 16, 16)
    with pytest.raises(FileExistsError):
        train_rts(tiny_resnet, x, y, str(tmp_path / "rts.pt"), RtsTrainConfig(steps=1, batch_size=4))


@pytest.mark.parametrize("perturbation", ["blur", "constant", "noise"])
def test_mask_composite_deletes_to_the_baseline_and_keeps_the_image(tiny_resnet, perturbation):
    interp = create_interpreter("mask", tiny_resnet, perturbation=perturbation)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    up, b, c = interp.prepare(x)
    h, w = interp.native_size(64, 64)
    deleted = interp.composite(torch.zeros(2, 1, h, w), up, b, (1, 2), c)
    torch.testing.assert_close(deleted, b[..., 1:65, 2:66].clamp(0, 1), rtol=0, atol=0)
    kept = interp.composite(torch.ones(2, 1, h, w), up, b, (1, 2), c)
    torch.testing.assert_close(kept, up[..., 1:65, 2:66])


def test_mask_constant_baseline_is_the_mean_colour(tiny_resnet):
    interp = create_interpreter("mask", tiny_resnet, perturbation="constant")
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    up, b, _ = interp.prepare(x)
    torch.testing.assert_close(b, up.mean(dim=(2, 3), keepdim=True).expand_as(up), rtol=0, atol=0)
    assert torch.equal(b[..., :1, :1], b[..., -1:, -1:])  # one colour everywhere


def test_mask_noise_baseline_is_seeded_shared_and_centred_on_the_mean(tiny_resnet):
    interp = create_interpreter("mask", tiny_resnet, perturbation="noise", seed=3)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    _, b1, _ = interp.prepare(x)
    _, b2, _ = interp.prepare(x)
    assert torch.equal(b1, b2)  # same seed, same noise
    _, b3, _ = create_interpreter("mask", tiny_resnet, perturbation="noise", seed=4).prepare(x)
    assert not torch.equal(b1, b3)
    _, single, _ = interp.prepare(x[1:])
    assert torch.equal(b1[1:], single)  # the batch shares one draw: a batch equals its singles
    grey = torch.full((1, 3, 64, 64), 0.5)
    _, bg, _ = interp.prepare(grey)
    assert abs(float(bg.mean()) - 0.5) < 0.01 and abs(float(bg.std()) - 0.2) < 0.01


def test_mask_runs_delete_with_the_evaluation_noise_whatever_the_jitter_generator(tiny_resnet, monkeypatch):
    """The attack's inner runs (their own jitter generator) must see the noise the evaluation uses."""
    interp = create_interpreter("mask", tiny_resnet, perturbation="noise", seed=5, steps=2)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(6))
    seen: list[torch.Tensor] = []
    composite = interp.composite

    def spy(m, up, b, offset, c):  # type: ignore[no-untyped-def]
        seen.append(b.detach())
        return composite(m, up, b, offset, c)

    monkeypatch.setattr(interp, "composite", spy)
    interp.explain(x, [0, 1])
    for seed in (1, 2):
        interp.run(x, torch.tensor([0, 1]), None, 2, 0, torch.Generator().manual_seed(seed))
    _, expected, _ = interp.prepare(x)
    assert len(seen) == 6 and all(torch.equal(b, expected) for b in seen)


def test_mask_perturbation_options_are_validated(tiny_resnet):
    with pytest.raises(ValueError, match="perturbation"):
        create_interpreter("mask", tiny_resnet, perturbation="zero")
    with pytest.raises(ValueError, match="blur_sigma"):
        create_interpreter("mask", tiny_resnet, perturbation="noise", blur_sigma=5.0)
    with pytest.raises(ValueError, match="noise_std"):
        create_interpreter("mask", tiny_resnet, perturbation="noise", noise_std=0.0)


def test_mask_blur_stays_the_default(tiny_resnet):
    interp = create_interpreter("mask", tiny_resnet)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    up, b, c = interp.prepare(x)
    assert interp.perturbation == "auto" and interp.perturbation_at(64) == "blur"  # 64 px: the spec's blur
    torch.testing.assert_close(b, gaussian_blur(up, int(c["k_in"]), c["sigma_in"]), rtol=0, atol=0)
