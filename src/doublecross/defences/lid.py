"""LID detection (Ma et al., ICLR 2018, arXiv:1801.02613), spec §9 "Detection".

Maximum-likelihood LID of a point x with respect to a reference batch, from its k nearest
neighbour distances d_1 ≤ … ≤ d_k (Euclidean, on one layer's flattened activations):

    LID(x) = -( (1/k) · Σ_{i≤k} log(d_i / d_k) )^{-1}

The point itself is excluded from its neighbours only when it is in the reference batch (the
authors always dropped the nearest neighbour, a bug: spec §10, item 12). Activations come from
forward hooks on a list of layers (removed afterwards, also on error). The detector: one LID per
layer as features, min-max scaling, logistic regression (scikit-learn), k chosen by grouped
cross-validation in {10, 20, 30, 40, 50}; negatives are benign images and benign + U(±ε) noise,
positives the adversarial inputs (Ma et al.'s protocol).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

BLOCK_TYPES = ("BasicBlock", "Bottleneck", "DenseLayer", "_DenseLayer", "Transition", "_Transition")
K_CHOICES = (10, 20, 30, 40, 50)


def lid_mle(
    points: torch.Tensor, reference: torch.Tensor, k: int, self_index: torch.Tensor | None = None
) -> torch.Tensor:
    """LID estimates of ``points`` against ``reference``.

    Args:
        points: (N, D) features.
        reference: (R, D) benign reference features.
        k: number of neighbours (k < R, or k < R - 1 when points are in the reference).
        self_index: (N,) int64, the row of each point in ``reference`` or -1 if it is not there.

    Returns:
        (N,) LID values (float64).
    """
    if points.dim() != 2 or reference.dim() != 2 or points.shape[1] != reference.shape[1]:
        raise ValueError(
            f"points and reference must be (N, D) and (R, D), got {tuple(points.shape)}, {tuple(reference.shape)}"
        )
    inside = self_index is not None and bool((self_index >= 0).any())
    if not 1 <= k <= reference.shape[0] - (1 if inside else 0):
        raise ValueError(f"k={k} needs more reference points than {reference.shape[0]}")
    d = torch.cdist(points.double(), reference.double())
    if self_index is not None:
        rows = (self_index >= 0).nonzero().flatten()
        d[rows, self_index[rows]] = float("inf")
    knn = d.topk(k, dim=1, largest=False).values.clamp_min(1e-12)  # ascending
    ratio = torch.log(knn / knn[:, -1:]).mean(1)
    return -1.0 / torch.clamp(ratio, max=-1e-12)


def default_layers(model: nn.Module) -> list[str]:
    """Residual / dense blocks and transitions, then the final linear layer (ResNet-50: 16 + 1)."""
    names = [n for n, m in model.named_modules() if type(m).__name__ in BLOCK_TYPES]
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if linears:
        names.append(linears[-1])
    if not names:
        raise ValueError(f"no residual/dense block found in {type(model).__name__}; pass the layers to hook")
    return names


@contextmanager
def layer_activations(model: nn.Module, layers: Sequence[str]) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Record the flattened outputs of ``layers`` (module names) while inside; hooks removed on exit.

    Yields:
        name -> list of (B, D) activations, one entry per forward.
    """
    modules = dict(model.named_modules())
    missing = [n for n in layers if n not in modules]
    if missing:
        raise ValueError(f"unknown layer(s) {missing}; e.g. {list(modules)[1:8]}")
    store: dict[str, list[torch.Tensor]] = {n: [] for n in layers}
    handles = []
    try:
        for n in layers:
            handles.append(
                modules[n].register_forward_hook(
                    lambda _m, _i, out, n=n: store[n].append(out.detach().flatten(1).clone())
                )
            )
        yield store
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def activations(model: nn.Module, x: torch.Tensor, layers: Sequence[str], batch_size: int = 100) -> list[torch.Tensor]:
    """Per layer, the flattened activations of ``x``. (N, 3, H, W) -> [(N, D_l) for each layer]."""
    with layer_activations(model, layers) as store:
        for i in range(0, len(x), batch_size):
            model(x[i : i + batch_size])
    return [torch.cat(store[n]) for n in layers]


def lid_features(acts: list[torch.Tensor], ref_acts: list[torch.Tensor], k: int) -> np.ndarray:
    """One LID per layer against the reference batch. -> (N, L) float64 array."""
    return torch.stack([lid_mle(a, r, k) for a, r in zip(acts, ref_acts, strict=True)], 1).numpy()


def uniform_noise(x: torch.Tensor, eps: torch.Tensor, seed: int) -> torch.Tensor:
    """``Q(clip(x + U(-ε, ε)))`` with a per-sample ε (N,). Shape preserved."""
    gen = torch.Generator().manual_seed(seed)
    u = (torch.rand(x.shape, generator=gen) * 2 - 1) * eps.view(-1, 1, 1, 1)
    return torch.round((x + u).clamp(0, 1) * 255) / 255


def _pipeline():  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    return make_pipeline(MinMaxScaler(), LogisticRegression(max_iter=1000))


def cv_auc(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, folds: int = 5) -> float:
    """Mean ROC AUC over grouped folds (the points of one image stay in one fold)."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold

    n_groups = len(np.unique(groups))
    aucs = []
    for tr, te in GroupKFold(n_splits=min(folds, n_groups)).split(features, labels, groups):
        if len(np.unique(labels[tr])) < 2 or len(np.unique(labels[te])) < 2:
            continue
        clf = _pipeline().fit(features[tr], labels[tr])
        aucs.append(roc_auc_score(labels[te], clf.predict_proba(features[te])[:, 1]))
    return float(np.mean(aucs)) if aucs else float("nan")


def fit_detector(features: np.ndarray, labels: np.ndarray):  # type: ignore[no-untyped-def]
    """Min-max scaling + logistic regression fitted on (N, L) features and (N,) 0/1 labels."""
    if len(np.unique(labels)) < 2:
        raise ValueError("the LID detector needs benign and adversarial training points")
    return _pipeline().fit(features, labels)


def detector_auc(detector, features: np.ndarray, labels: np.ndarray) -> float:  # type: ignore[no-untyped-def]
    """ROC AUC of a fitted detector. -> float."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, detector.predict_proba(features)[:, 1]))
