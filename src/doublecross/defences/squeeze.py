"""Feature squeezing (Xu, Evans & Qi, NDSS 2018, arXiv:1704.01155), spec §9 "Detection".

Squeezers (each output re-quantised to 8 bits, ``Q(v) = round(255·v)/255``):

* ``bit-b``, b = 1..5: ``round(x·(2^b - 1)) / (2^b - 1)``;
* ``median-2x2``, ``median-3x3``: per-channel median filter, reflect padding (``scipy.ndimage``);
* ``nlm-S-P-H``: non-local means (scikit-image ``denoise_nl_means``, fast mode) with search window S,
  patch P and strength H for (S, P, H) ∈ {(11,3,2), (11,3,4), (13,3,2), (13,3,4)}. Xu et al. used
  OpenCV's ``fastNlMeansDenoisingColored`` on 0-255 images; here [our decision] the search window S
  maps to skimage's ``patch_distance = S // 2`` and the strength to ``h = H/255`` on [0, 1] images.

Score of a squeezer set 𝒮: ``s(x) = max_{q∈𝒮} ‖softmax(z(x)) - softmax(z(q(x)))‖₁``. The detector
flags x when s(x) exceeds the 95th percentile of held-out benign scores.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy import ndimage
from skimage.restoration import denoise_nl_means

NLM_SETTINGS = ((11, 3, 2), (11, 3, 4), (13, 3, 2), (13, 3, 4))


def requantise(x: torch.Tensor) -> torch.Tensor:
    """Round to the 8-bit grid. Shape preserved."""
    return torch.round(x.clamp(0, 1) * 255) / 255


def bit_depth(x: torch.Tensor, bits: int) -> torch.Tensor:
    """``round(x·(2^b - 1))/(2^b - 1)``, re-quantised. Shape: (B, 3, H, W) -> same."""
    if not 1 <= bits <= 8:
        raise ValueError(f"bits must lie in 1..8, got {bits}")
    levels = 2**bits - 1
    return requantise(torch.round(x * levels) / levels)


def median(x: torch.Tensor, size: int) -> torch.Tensor:
    """Per-channel ``size×size`` median filter with reflect padding (scipy). Shape: (B, C, H, W) -> same."""
    if size < 1:
        raise ValueError(f"median size must be >= 1, got {size}")
    arr = x.detach().cpu().numpy()
    out = ndimage.median_filter(arr, size=(1, 1, size, size), mode="reflect")
    return requantise(torch.from_numpy(out).to(x))


def non_local_means(x: torch.Tensor, search: int, patch: int, strength: float) -> torch.Tensor:
    """scikit-image non-local means per image (channels together), re-quantised. (B, 3, H, W) -> same."""
    arr = x.detach().cpu().permute(0, 2, 3, 1).numpy().astype(np.float64)
    out = np.stack(
        [
            denoise_nl_means(
                img, patch_size=patch, patch_distance=search // 2, h=strength / 255, fast_mode=True, channel_axis=-1
            )
            for img in arr
        ]
    )
    return requantise(torch.from_numpy(out).permute(0, 3, 1, 2).to(x))


def squeezers() -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """Every squeezer of spec §9, by name (bit-1..bit-5, median-2x2/3x3, nlm-S-P-H)."""
    out: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}
    for b in range(1, 6):
        out[f"bit-{b}"] = lambda x, b=b: bit_depth(x, b)
    for s in (2, 3):
        out[f"median-{s}x{s}"] = lambda x, s=s: median(x, s)
    for s, p, h in NLM_SETTINGS:
        out[f"nlm-{s}-{p}-{h}"] = lambda x, s=s, p=p, h=h: non_local_means(x, s, p, h)
    return out


@torch.no_grad()
def squeeze_scores(
    model: torch.nn.Module, x: torch.Tensor, names: Sequence[str] | None = None, batch_size: int = 64
) -> dict[str, torch.Tensor]:
    """Per squeezer q: ``‖softmax(z(x)) - softmax(z(q(x)))‖₁``. Shapes: x (N, 3, H, W) -> {name: (N,)}."""
    table = squeezers()
    names = list(table) if names is None else list(names)
    for n in names:
        if n not in table:
            raise ValueError(f"unknown squeezer {n!r}; choose from {list(table)}")
    out: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size]
        p = torch.softmax(model(xb), 1)
        for n in names:
            out[n].append((p - torch.softmax(model(table[n](xb)), 1)).abs().sum(1))
    return {n: torch.cat(v) if v else torch.zeros(0) for n, v in out.items()}


def combination_scores(scores: dict[str, torch.Tensor], combo: Sequence[str]) -> torch.Tensor:
    """Joint score of a squeezer set: the max of its members' scores. -> (N,)."""
    if not combo:
        raise ValueError("a squeezer combination needs at least one squeezer")
    return torch.stack([scores[n] for n in combo], 0).amax(0)


def all_combinations(names: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset of ``names`` (2^n - 1 of them), smallest first."""
    return [c for r in range(1, len(names) + 1) for c in itertools.combinations(names, r)]


def benign_threshold(benign: torch.Tensor, percentile: float = 95.0) -> float:
    """The ``percentile``-th percentile of benign scores (linear interpolation, numpy's default)."""
    if benign.numel() == 0:
        raise ValueError("the threshold needs at least one benign score")
    return float(np.percentile(benign.double().numpy(), percentile))


def detection_rate(scores: torch.Tensor, threshold: float) -> float:
    """Fraction of scores strictly above the threshold (nan for an empty set)."""
    return float((scores > threshold).float().mean()) if scores.numel() else float("nan")
