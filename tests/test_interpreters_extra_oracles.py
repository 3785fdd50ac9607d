"""Oracles for the issue-14 interpreters: captum / pytorch-grad-cam maps on the benign path, plus known answers."""

import pytest
import torch
import torch.nn.functional as F

from doublecross.interpreters import create_interpreter, minmax_normalise
from doublecross.interpreters.ig import ig_alphas_and_weights
from doublecross.interpreters.mask import gaussian_blur, gaussian_kernel_size
from doublecross.interpreters.smoothgrad import smoothgrad_noise

captum_attr = pytest.importorskip("captum.attr", reason="captum is in the dev extra")


def _x(b=3, seed=0, size=64):
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _post(r, pool=4):
    """The gradient family's map from a raw attribution: 𝒩(AvgPool_p(max_ch |r|))."""
    return minmax_normalise(F.avg_pool2d(r.abs().amax(1, keepdim=True), pool))


def _net(model):
    return lambda inp: model.net(model.normalise(inp))  # no [0, 1] check: SmoothGrad's copies leave the range


@pytest.mark.parametrize("layer", [-1, -2])
def test_gradcam_equals_captum_layer_gradcam(tiny_resnet, layer):
    x, t = _x(), torch.tensor([1, 4, 7])
    ours = create_interpreter("gradcam", tiny_resnet, layer=layer).explain(x, t).map
    module = tiny_resnet.net.body if layer == -1 else tiny_resnet.net.body[1]  # 8x8 / 16x16 feature maps
    ref = captum_attr.LayerGradCam(tiny_resnet, module).attribute(x, target=t, relu_attributions=True)
    assert ours.shape == ref.shape == (3, 1, 8 * -layer, 8 * -layer)
    assert float(ref.detach().amax()) > 0 and float(ours.std()) > 0.05  # a real map, not a constant one
    torch.testing.assert_close(ours, minmax_normalise(ref), atol=1e-5, rtol=1e-4)


def test_gradcam_on_the_last_layer_is_relu_cam(tiny_resnet, tiny_densenet):
    """With GAP + linear, ∂z_c/∂A = W[c]/hw: Grad-CAM = 𝒩(ReLU(CAM_c)), i.e. CAM up to scale and the clip at 0."""
    x, t = _x(4, seed=1), torch.tensor([0, 3, 6, 9])
    for model in (tiny_resnet, tiny_densenet):
        feats, _ = model.features_and_logits(x)
        raw_cam = torch.einsum("bkhw,bk->bhw", feats, model.linear.weight[t])[:, None]
        gc = create_interpreter("gradcam", model).explain(x, t).map
        torch.testing.assert_close(gc, minmax_normalise(torch.relu(raw_cam)), atol=1e-5, rtol=1e-4)
        cam = create_interpreter("cam", model).explain(x, t).map
        positive = raw_cam.flatten(1).amin(1) > 0  # where CAM has no negative cell the two maps differ by an offset
        assert not torch.equal(gc[~positive], cam[~positive]) or positive.all()


def test_gradcam_pp_equals_pytorch_grad_cam(tiny_resnet):
    gradcam_lib = pytest.importorskip("pytorch_grad_cam", reason="grad-cam is in the dev extra")
    cv2 = pytest.importorskip("cv2")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    x, t = _x(), [2, 5, 8]
    for layer, module in ((-1, tiny_resnet.net.body), (-2, tiny_resnet.net.body[1])):
        ours = create_interpreter("gradcam++", tiny_resnet, layer=layer).explain(x, t).map
        with gradcam_lib.GradCAMPlusPlus(model=tiny_resnet, target_layers=[module]) as cam:
            targets = [ClassifierOutputTarget(c) for c in t]
            ref = cam(input_tensor=x.clone().requires_grad_(True), targets=targets)  # (B, 64, 64): ReLU, scale, resize
            acts, grads = (
                v[0].numpy() for v in (cam.activations_and_grads.activations, cam.activations_and_grads.gradients)
            )
            native = cam.get_cam_image(x, module, targets, acts, grads)  # (B, h, w), before ReLU and scaling
        assert float(ours.std()) > 0.05
        torch.testing.assert_close(
            ours, minmax_normalise(torch.relu(torch.as_tensor(native))[:, None]), atol=1e-5, rtol=1e-4
        )
        up = torch.stack([torch.as_tensor(cv2.resize(m[0].numpy(), (64, 64))) for m in ours])  # their resize
        up = minmax_normalise(up[:, None])[:, 0]  # the library rescales after resizing (an upsampled max < 1)
        torch.testing.assert_close(up, torch.as_tensor(ref), atol=2e-5, rtol=1e-4)


def test_gradcam_pp_differs_from_gradcam_and_is_twice_differentiable_at_an_inner_layer(tiny_resnet):
    x, t = _x(), torch.tensor([1, 2, 3])
    pp = create_interpreter("gradcam++", tiny_resnet, layer=-2)
    assert not torch.allclose(
        pp.explain(x, t).map, create_interpreter("gradcam", tiny_resnet, layer=-2).explain(x, t).map
    )
    xi = x.clone().requires_grad_(True)
    out = pp(xi, t)
    (g,) = torch.autograd.grad(out.map.pow(2).sum(), xi)
    assert torch.isfinite(g).all() and float(g.abs().sum()) > 0
    assert float((out.map.detach() - pp.explain(x, t).map).abs().mean()) < 0.05  # surrogate ≈ true map
    assert pp.selection == "exact" and create_interpreter("gradcam++", tiny_resnet).selection == "cheap"


def test_gradcam_bad_layer_and_variant():
    from doublecross.interpreters.gradcam import GradCamInterpreter
    from doublecross.models import Classifier
    from doublecross.models.small import SmallResNet

    torch.manual_seed(0)
    model = Classifier(SmallResNet(num_classes=10, width=4, depth=1))
    with pytest.raises(ValueError, match="out of range"):
        create_interpreter("gradcam", model, layer=7).explain(_x(1), 0)
    with pytest.raises(TypeError, match="layer"):
        create_interpreter("gradcam", model, layer=1.5)
    with pytest.raises(ValueError, match="variant"):
        GradCamInterpreter(model, variant="scorecam")


def test_smoothgrad_equals_averaged_captum_saliency(tiny_resnet):
    x, t = _x(), torch.tensor([3, 1, 0])
    sg = create_interpreter("smoothgrad", tiny_resnet, samples=5, sigma=0.2, seed=7, chunk=2)
    ours = sg.explain(x, t).map
    noise = smoothgrad_noise(5, (3, 64, 64), 0.2, 7, x.device)
    sal = captum_attr.Saliency(lambda inp: -F.log_softmax(_net(tiny_resnet)(inp), dim=1))
    total = sum(sal.attribute((x + e).requires_grad_(True), target=t, abs=True) for e in noise)
    torch.testing.assert_close(ours, _post(total / 5), atol=1e-5, rtol=1e-4)
    # NoiseTunnel(Saliency) draws its own noise: the same estimator, so close to ours on many samples
    nt = captum_attr.NoiseTunnel(sal)
    torch.manual_seed(0)
    ref = nt.attribute(
        x.clone().requires_grad_(True), nt_type="smoothgrad", nt_samples=32, stdevs=0.2, target=t, abs=True
    )
    many = create_interpreter("smoothgrad", tiny_resnet, samples=32, sigma=0.2, seed=1).explain(x, t).map
    other = create_interpreter("smoothgrad", tiny_resnet, samples=32, sigma=0.2, seed=2).explain(x, t).map
    # the gap to captum's estimate is Monte-Carlo noise: no larger than between two of our own seeds
    assert float((many - _post(ref)).abs().mean()) < 1.5 * float((many - other).abs().mean())
    plain = create_interpreter("grad", tiny_resnet).explain(x, t).map
    assert float((many - _post(ref)).abs().mean()) < 0.5 * float((many - plain).abs().mean())


def test_smoothgrad_seed_samples_and_graph_subset(tiny_resnet):
    x, t = _x(2), torch.tensor([4, 4])
    a = create_interpreter("smoothgrad", tiny_resnet, samples=4, seed=0).explain(x, t).map
    b = create_interpreter("smoothgrad", tiny_resnet, samples=4, seed=1).explain(x, t).map
    assert not torch.allclose(a, b)
    # chunking does not change the map; the graph map with graph_samples = k uses the first k draws
    torch.testing.assert_close(a, create_interpreter("smoothgrad", tiny_resnet, samples=4, chunk=3).explain(x, t).map)
    sub = create_interpreter("smoothgrad", tiny_resnet, samples=4, graph_samples=2)
    two = create_interpreter("smoothgrad", tiny_resnet, samples=2).explain(x, t).map
    graph_map = sub(x.clone().requires_grad_(True), t).map
    assert float((graph_map.detach() - two).abs().mean()) < 0.05  # the surrogate's map ≈ the 2-sample true map
    torch.testing.assert_close(sub.explain(x, t).map, a)
    for bad in ({"samples": 0}, {"sigma": 0.0}, {"samples": 2, "graph_samples": 3}, {"signal": "prob"}):
        with pytest.raises(ValueError):
            create_interpreter("smoothgrad", tiny_resnet, **bad)


@pytest.mark.parametrize("method", ["riemann_trapezoid", "riemann_right", "riemann_left", "riemann_middle"])
def test_ig_equals_captum_integrated_gradients(tiny_resnet, method):
    x, t = _x(), torch.tensor([5, 6, 7])
    ours = create_interpreter("ig", tiny_resnet, steps=6, method=method, chunk=4).explain(x, t).map
    ref = captum_attr.IntegratedGradients(tiny_resnet).attribute(
        x, baselines=torch.zeros_like(x), target=t, n_steps=6, method=method
    )
    torch.testing.assert_close(ours, _post(ref), atol=1e-5, rtol=1e-4)


def test_ig_blurred_baseline_and_completeness(tiny_resnet):
    x, t = _x(), torch.tensor([5, 6, 7])
    ours = create_interpreter("ig", tiny_resnet, steps=5, baseline="blur", blur_sigma=3.0).explain(x, t).map
    base = gaussian_blur(x, gaussian_kernel_size(3.0), 3.0)
    ig = captum_attr.IntegratedGradients(tiny_resnet)
    ref = ig.attribute(x, baselines=base, target=t, n_steps=5, method="riemann_trapezoid")
    torch.testing.assert_close(ours, _post(ref), atol=1e-5, rtol=1e-4)
    a, w = ig_alphas_and_weights(5, "riemann_trapezoid")
    assert a == [0, 0.25, 0.5, 0.75, 1] and w == [0.125, 0.25, 0.25, 0.25, 0.125]
    a, w = ig_alphas_and_weights(4, "riemann_middle")
    assert a == [0.125, 0.375, 0.625, 0.875] and w == [0.25] * 4
    for bad in ({"steps": 0}, {"method": "gausslegendre"}, {"baseline": "white"}, {"graph_steps": 0}):
        with pytest.raises(ValueError):
            create_interpreter("ig", tiny_resnet, **bad)


def test_input_x_grad_equals_captum(tiny_resnet, tiny_densenet):
    x, t = _x(), torch.tensor([0, 8, 9])
    for model in (tiny_resnet, tiny_densenet):
        ours = create_interpreter("input-x-grad", model).explain(x, t).map
        ref = captum_attr.InputXGradient(model).attribute(x.clone().requires_grad_(True), target=t)
        torch.testing.assert_close(ours, _post(ref), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name, kw", [("input-x-grad", {}), ("ig", {"steps": 3}), ("smoothgrad", {"samples": 2})])
def test_gradient_family_graph_map_close_to_true_map_with_second_order_signal(tiny_resnet, name, kw):
    """Under the surrogate the graph map stays close to the true map and has a non-zero double-backprop gradient."""
    x, t = _x(), torch.tensor([1, 2, 3])
    interp = create_interpreter(name, tiny_resnet, **kw)
    xi = x.clone().requires_grad_(True)
    out = interp(xi, t)
    assert float((out.map.detach() - interp.explain(x, t).map).abs().mean()) < 0.05
    target = torch.zeros_like(out.map)
    (g,) = torch.autograd.grad((out.map - target).abs().mean(), xi)
    assert torch.isfinite(g).all() and float(g.abs().sum()) > 0
    torch.testing.assert_close(out.logits.detach(), tiny_resnet(x))


def test_any_cnn_mobilenet_mlp_head():
    """Automatic feature access (no adapter, MLP head, Hardswish): Grad-CAM(++) equal captum / stay differentiable."""
    import torchvision

    from doublecross.models import Classifier

    torch.manual_seed(0)
    model = Classifier(torchvision.models.mobilenet_v3_small(weights=None, num_classes=10), input_size=(64, 64))
    assert not model.has_linear_head()
    x, t = _x(2), torch.tensor([3, 7])
    name, index = model.feature_split().feature
    gc = create_interpreter("gradcam", model)
    assert gc.selection == "exact"  # ∂z/∂A goes through the MLP head: the graph map uses the surrogate
    ref = captum_attr.LayerGradCam(model, dict(model.net.named_modules())[name]).attribute(
        x, target=t, relu_attributions=True
    )
    torch.testing.assert_close(gc.explain(x, t).map, minmax_normalise(ref), atol=1e-5, rtol=1e-4)
    for interp in (gc, create_interpreter("gradcam++", model), create_interpreter("ig", model, steps=2)):
        xi = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(interp(xi, t).map.pow(2).sum(), xi)
        assert torch.isfinite(g).all() and float(g.abs().sum()) > 0, interp.name
