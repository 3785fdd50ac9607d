"""Feature squeezing and LID: known answers and invariants (spec §9 "Detection")."""

import numpy as np
import pytest
import torch
from torch import nn

from doublecross.defences import lid, squeeze


def _on_grid(x):
    return torch.allclose(x * 255, torch.round(x * 255), atol=1e-4)


def test_bit_depth_known_answers():
    x = torch.tensor([0.0, 0.2, 0.3, 0.8, 1.0]).view(1, 1, 1, 5).expand(1, 3, 1, 5)
    torch.testing.assert_close(squeeze.bit_depth(x, 1)[0, 0, 0], torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0]))
    third = round(255 / 3) / 255  # 1/3 re-quantised to 8 bits
    expected = torch.tensor([0.0, third, third, 1 - third, 1.0])
    torch.testing.assert_close(squeeze.bit_depth(x, 2)[0, 0, 0], expected)
    with pytest.raises(ValueError, match="bits"):
        squeeze.bit_depth(x, 0)


def test_median_removes_an_impulse_and_keeps_constants():
    x = torch.zeros(1, 3, 7, 7)
    x[0, :, 3, 3] = 1.0
    assert torch.equal(squeeze.median(x, 3), torch.zeros_like(x))
    c = torch.full((2, 3, 6, 6), 100 / 255)
    torch.testing.assert_close(squeeze.median(c, 2), c)
    r = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    out = squeeze.median(torch.round(r * 255) / 255, 2)
    assert out.shape == r.shape and _on_grid(out)
    # a rank filter only returns values present in the image (per channel)
    vals = set((torch.round(r[0, 0] * 255)).flatten().tolist())
    assert set(torch.round(out[0, 0] * 255).flatten().tolist()) <= vals


def test_non_local_means_denoises_and_keeps_constants():
    c = torch.full((1, 3, 16, 16), 0.4)
    torch.testing.assert_close(squeeze.non_local_means(c, 11, 3, 4), torch.round(c * 255) / 255)
    g = torch.Generator().manual_seed(0)
    noisy = (0.5 + 0.02 * torch.randn(1, 3, 24, 24, generator=g)).clamp(0, 1)
    out = squeeze.non_local_means(noisy, 13, 3, 4)
    assert _on_grid(out) and float(out.std()) < 0.8 * float(noisy.std())


def test_every_spec_squeezer_is_there_and_outputs_are_8_bit():
    names = list(squeeze.squeezers())
    assert names == [
        "bit-1", "bit-2", "bit-3", "bit-4", "bit-5", "median-2x2", "median-3x3",
        "nlm-11-3-2", "nlm-11-3-4", "nlm-13-3-2", "nlm-13-3-4",
    ]  # fmt: skip
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    x0 = x.clone()
    for n, f in squeeze.squeezers().items():
        out = f(x)
        assert out.shape == x.shape and _on_grid(out) and float(out.min()) >= 0 and float(out.max()) <= 1, n
    assert torch.equal(x, x0)


def test_scores_combinations_threshold_and_rates():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
    torch.manual_seed(0)
    x = torch.rand(5, 3, 8, 8)
    s = squeeze.squeeze_scores(model, x, ["bit-1", "median-3x3"])
    assert set(s) == {"bit-1", "median-3x3"} and all(((v >= 0) & (v <= 2)).all() for v in s.values())
    torch.testing.assert_close(squeeze.combination_scores(s, ["bit-1", "median-3x3"]), torch.maximum(*s.values()))
    assert len(squeeze.all_combinations(list(squeeze.squeezers()))) == 2**11 - 1
    assert squeeze.benign_threshold(torch.arange(1.0, 101.0)) == pytest.approx(95.05)
    assert squeeze.detection_rate(torch.tensor([0.1, 0.5, 0.9, 1.0]), 0.5) == 0.5
    with pytest.raises(ValueError, match="unknown squeezer"):
        squeeze.squeeze_scores(model, x, ["blur"])


def _cube(n, d, ambient=30, seed=0):
    """n points uniform in a d-cube, embedded in R^ambient by one fixed orthonormal map."""
    q, _ = torch.linalg.qr(
        torch.randn(ambient, ambient, generator=torch.Generator().manual_seed(99), dtype=torch.float64)
    )
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) @ q[:d]


@pytest.mark.parametrize("d", [2, 6])
def test_lid_recovers_the_dimension_of_synthetic_data(d):
    ref = _cube(3000, d)
    pts = _cube(200, d, seed=1)
    est = float(lid.lid_mle(pts, ref, 20).median())
    assert abs(est - d) < 0.25 * d


def test_lid_excludes_the_point_only_when_it_is_in_the_reference():
    ref = _cube(300, 3)
    pts = ref[:5]
    inside = lid.lid_mle(pts, ref, 10, self_index=torch.arange(5))
    without = torch.stack([lid.lid_mle(pts[i : i + 1], torch.cat([ref[:i], ref[i + 1 :]]), 10)[0] for i in range(5)])
    torch.testing.assert_close(inside, without)
    outside = lid.lid_mle(_cube(5, 3, seed=7), ref, 10, self_index=torch.full((5,), -1))
    torch.testing.assert_close(outside, lid.lid_mle(_cube(5, 3, seed=7), ref, 10))
    with pytest.raises(ValueError, match="k="):
        lid.lid_mle(pts, ref[:10], 10, self_index=torch.arange(5))


def test_hooks_are_removed_after_use_and_after_an_error(tiny_resnet):
    layers = lid.default_layers(tiny_resnet)
    assert layers[-1].endswith("fc") and len(layers) >= 2

    def no_hooks():
        return all(not m._forward_hooks for m in tiny_resnet.modules())

    acts = lid.activations(tiny_resnet, torch.rand(3, 3, 64, 64), layers)
    assert [a.shape[0] for a in acts] == [3] * len(layers) and no_hooks()
    with pytest.raises(RuntimeError, match="boom"):
        with lid.layer_activations(tiny_resnet, layers):
            assert not no_hooks()
            raise RuntimeError("boom")
    assert no_hooks()
    with pytest.raises(ValueError, match="unknown layer"):
        lid.activations(tiny_resnet, torch.rand(1, 3, 64, 64), ["nope"])


def test_detector_separates_separable_features():
    rng = np.random.default_rng(0)
    f = np.concatenate([rng.normal(0, 1, (40, 3)), rng.normal(4, 1, (20, 3))])
    y = np.array([0] * 40 + [1] * 20)
    groups = np.concatenate([np.arange(20), np.arange(20), np.arange(20)])
    assert lid.cv_auc(f, y, groups) > 0.95
    det = lid.fit_detector(f, y)
    assert lid.detector_auc(det, f, y) > 0.95
    with pytest.raises(ValueError, match="benign and adversarial"):
        lid.fit_detector(f[:10], y[:10])
