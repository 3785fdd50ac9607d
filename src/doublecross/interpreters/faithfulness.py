"""Faithfulness of benign maps against ground-truth object masks (``scenes``, Fashion-MNIST garments).

Two localisation scores, computed on maps upsampled bilinearly to the input size:

* ``topk_mask_iou``: with ``k`` the object's area fraction, IoU between the top-k pixels of the
  map (ties broken by flat index) and the object mask.
* ``pointing_game``: a hit when the map's maximum lies within ``tolerance`` pixels of the object
  (Zhang et al. 2016's 15 px at 224, scaled with the input size).

``centred_blob`` is the trivial baseline every interpreter must beat; ``random_maps`` (i.i.d.
uniform cells) is chance level. Each interpreter's row also counts its degenerate maps
(constant or all-zero, :func:`~doublecross.metrics.maps.is_degenerate`): their top-k cells are
picked by flat index, so a high share of them makes the IoU meaningless.

Fashion-MNIST has no object masks; ``foreground_masks`` takes the garment as the non-black pixels
(any channel above ``threshold``; the background of the IDX images is exactly 0, the 2 px padding too).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import progress
from ..metrics.maps import is_degenerate

#: Pixel value (in [0, 1]) above which a Fashion-MNIST pixel counts as garment.
FOREGROUND_THRESHOLD = 0.05


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling of maps (B, 1, h, w) to (B, 1, H, W)."""
    return F.interpolate(maps.float(), size=size, mode="bilinear", align_corners=False)


def topk_mask_iou(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """IoU of the map's top-k pixels with the mask, k = mask area. Shapes: (B,1,h,w), (B,1,H,W) -> (B,)."""
    up = upsample(maps, tuple(masks.shape[-2:])).flatten(1)
    gt = masks.flatten(1) > 0.5
    out = torch.empty(len(up))
    for i in range(len(up)):
        k = int(gt[i].sum())
        order = torch.sort(up[i], descending=True, stable=True).indices[:k]
        top = torch.zeros_like(gt[i])
        top[order] = True
        union = (top | gt[i]).sum()
        out[i] = (top & gt[i]).sum() / union if union > 0 else 0.0
    return out


def pointing_game(maps: torch.Tensor, masks: torch.Tensor, tolerance: int | None = None) -> torch.Tensor:
    """1.0 where the map's argmax is within ``tolerance`` px of the object, else 0.0. -> (B,)."""
    h, w = masks.shape[-2:]
    tol = round(15 * h / 224) if tolerance is None else tolerance
    up = upsample(maps, (h, w)).flatten(1)
    near = (
        F.max_pool2d((masks > 0.5).float(), 2 * tol + 1, stride=1, padding=tol).flatten(1)
        if tol > 0
        else (masks > 0.5).float().flatten(1)
    )
    idx = up.argmax(dim=1)
    return near.gather(1, idx[:, None])[:, 0]


def centred_blob(batch: int, height: int, width: int, sigma_frac: float = 0.25) -> torch.Tensor:
    """A centred Gaussian blob map (B, 1, H, W), σ = sigma_frac · side: the trivial baseline."""
    ys = (torch.arange(height) + 0.5 - height / 2) / (sigma_frac * height)
    xs = (torch.arange(width) + 0.5 - width / 2) / (sigma_frac * width)
    blob = torch.exp(-0.5 * (ys[:, None] ** 2 + xs[None, :] ** 2))
    return blob.expand(batch, 1, height, width).clone()


def foreground_masks(x: torch.Tensor, threshold: float = FOREGROUND_THRESHOLD) -> torch.Tensor:
    """Non-black pixels: ``max_ch x > threshold``. Shape: (B, C, H, W) -> (B, 1, H, W) float {0, 1}."""
    return (x.amax(dim=1, keepdim=True) > threshold).float()


def random_maps(batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """I.i.d. uniform maps (B, 1, h, w) from a seeded generator: the chance-level baseline."""
    return torch.rand(batch, 1, height, width, generator=torch.Generator().manual_seed(seed))


def mean_and_sem(v: torch.Tensor) -> tuple[float, float]:
    """Mean and standard error of the mean of a 1-D tensor."""
    n = v.numel()
    sd = float(v.std(unbiased=True)) if n > 1 else 0.0
    return float(v.mean()), sd / math.sqrt(max(1, n))


def evaluate_interpreters(
    model,
    interpreters: dict,
    x: torch.Tensor,
    y: torch.Tensor,  # type: ignore[no-untyped-def]
    masks: torch.Tensor,
    batch_size: int = 32,
    random_baseline: bool = False,
) -> list[dict[str, float | str | int]]:
    """Mean top-k IoU, pointing hit rate and degenerate share of each interpreter's benign map for the true class.

    Args:
        model: the wrapped classifier (for the centred-blob row's bookkeeping only).
        interpreters: name -> interpreter.
        x, y, masks: images (N, 3, H, W), labels (N,), object masks (N, 1, H, W).
        random_baseline: add a ``random`` row (uniform maps at H/4, seeded), chance level.

    Returns:
        One row per interpreter (keys ``interpreter, iou, iou_sem, pointing, degenerate, n``), a
        ``centre-blob`` baseline row and, if asked, a ``random`` row.
    """
    rows = []
    h, w = x.shape[-2:]
    for name, interp in interpreters.items():
        ious, hits, degenerate = [], [], []
        for i in range(0, len(x), batch_size):
            maps = interp.explain(x[i : i + batch_size], y[i : i + batch_size]).map
            ious.append(topk_mask_iou(maps, masks[i : i + batch_size]))
            hits.append(pointing_game(maps, masks[i : i + batch_size]))
            degenerate.append(is_degenerate(maps))
            progress.step(len(maps))  # images done, for a caller's progress bar
        rows.append(_row(name, torch.cat(ious), torch.cat(hits), torch.cat(degenerate)))
    baselines = {"centre-blob": centred_blob(len(x), h, w)}
    if random_baseline:
        baselines["random"] = random_maps(len(x), max(1, h // 4), max(1, w // 4))
    for name, maps in baselines.items():
        rows.append(_row(name, topk_mask_iou(maps, masks), pointing_game(maps, masks), is_degenerate(maps)))
    return rows


def _row(name: str, iou: torch.Tensor, hit: torch.Tensor, degenerate: torch.Tensor) -> dict[str, float | str | int]:
    mean, sem = mean_and_sem(iou)
    return {
        "interpreter": name,
        "iou": mean,
        "iou_sem": sem,
        "pointing": float(hit.mean()),
        "degenerate": float(degenerate.float().mean()),
        "n": len(iou),
    }
