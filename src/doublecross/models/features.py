"""Automatic feature access: the last spatial feature map, the per-resolution stages and the head of any CNN.

A probe runs the network once on the actual input with a forward hook on every submodule and
records each module call's output in completion order. From that record:

* **spatial maps** are 4-D outputs ``(B, K, h, w)`` laid out channel-first: ``h ≤ H``, ``w ≤ W`` and
  the strides ``H/h`` and ``W/w`` agree within 30 % (a channel-last ``(B, h, w, K)`` tensor, as
  inside ConvNeXt blocks, fails this);
* the **feature map** ``A`` is the last spatial map with more than one cell (the last one at all
  if every map is 1×1) that the logits depend on, adaptive pooling outputs excluded (they belong
  to the head: VGG's 7×7 pooling resamples ``A``) -- the output of the outermost module that
  produced it, e.g. ``layer4`` rather than its last block;
* the **stages** are, walking back from ``A``, the last map at each finer resolution
  (fine -> coarse, the last being ``A``), what RTS's decoder reads;
* the **head** is *linear* when the last ``nn.Linear`` whose output is the logits reads
  ``mean_hw(A)`` (checked numerically: global average pooling -> optional flatten / dropout ->
  one ``nn.Linear``); then CAM is exact. Otherwise (an MLP after pooling as in MobileNetV3,
  VGG's 7×7 pooling, a LayerNorm after pooling as in ConvNeXt) the head is *general*.

At run time only the modules named by the split get hooks, for the duration of one forward, and
the logits are the network's own output: the split reproduces the logits exactly by
construction. Splits are cached per input size by :class:`~doublecross.models.wrapper.Classifier`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

#: (module name, call index): the ``index``-th call of the module in one forward.
Key = tuple[str, int]
#: One recorded module call: its key, its output and its first positional input.
Record = tuple[Key, torch.Tensor, "torch.Tensor | None"]


_ADAPTIVE_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


class FeatureAccessError(TypeError):
    """The network exposes no spatial feature map feeding its logits (the message says what was searched)."""


@dataclass(frozen=True)
class FeatureSplit:
    """Where a network's features live, for one input size.

    Attributes:
        feature: the module call whose output is ``A`` (B, K, h, w).
        stages: module calls giving the per-resolution maps, fine -> coarse; the last is ``feature``.
        head: name of the ``nn.Linear`` when the head is exactly ``Linear(mean_hw(A))``, else ``None``.
        head_modules: class names of the modules run after ``A`` (for messages), e.g.
            ``("AdaptiveAvgPool2d", "Linear")``.
        num_classes: number of logits.
    """

    feature: Key
    stages: tuple[Key, ...]
    head: str | None
    head_modules: tuple[str, ...]
    num_classes: int

    @property
    def linear_head(self) -> bool:
        return self.head is not None

    def describe(self) -> str:
        """One line, e.g. ``feature map = layer4, head = AdaptiveAvgPool2d -> Linear (linear)``."""
        kind = f"linear: {self.head}" if self.head else "not a single linear layer after global pooling"
        chain = " -> ".join(self.head_modules) or "functional ops only"
        return f"feature map = output of {self.feature[0]!r}, head = {chain} ({kind})"


def _is_spatial(t: object, batch: int, height: int, width: int) -> bool:
    if not (isinstance(t, torch.Tensor) and t.dim() == 4 and t.is_floating_point() and t.shape[0] == batch):
        return False
    h, w = t.shape[-2:]
    if h < 1 or w < 1 or h > height or w > width:
        return False
    return abs(math.log((height / h) / (width / w))) < math.log(1.3)


def _record(net: nn.Module, x: torch.Tensor) -> tuple[list[Record], torch.Tensor]:
    """Run ``net(x)`` with a hook on every submodule: [(key, output, first input)] in completion order, logits."""
    records: list[Record] = []
    calls: dict[str, int] = {}
    handles = []

    def make_hook(name: str):  # type: ignore[no-untyped-def]
        def hook(module, inputs, output):  # type: ignore[no-untyped-def]
            k = calls.get(name, 0)
            calls[name] = k + 1
            if isinstance(output, torch.Tensor):
                first = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
                records.append(((name, k), output, first))

        return hook

    try:
        for name, module in net.named_modules():
            if name:
                handles.append(module.register_forward_hook(make_hook(name)))
        logits = net(x)
    finally:
        for h in handles:
            h.remove()
    return records, logits


def probe_split(net: nn.Module, x: torch.Tensor) -> FeatureSplit:
    """Find ``A``, the stages and the head of ``net`` on input ``x`` (already normalised).

    Shape:
        x: (B, C, H, W), the network's own input.

    Raises:
        FeatureAccessError: no 4-D spatial map feeds the logits, or the output is not (B, num_classes).
    """
    modules = dict(net.named_modules())
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        records, logits = _record(net, x)
    cls = type(net).__name__
    if not (isinstance(logits, torch.Tensor) and logits.dim() == 2 and logits.shape[0] == x.shape[0]):
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise FeatureAccessError(f"{cls} must return logits of shape (B, num_classes), got {got}")
    b, _, height, width = x.shape
    spatial = [i for i, (_, out, _) in enumerate(records) if _is_spatial(out, b, height, width)]
    # candidates for A: not the head's adaptive pooling (VGG's 7x7 resamples A), maps with more than
    # one cell first, latest first
    features = [i for i in spatial if not isinstance(modules[records[i][0][0]], _ADAPTIVE_POOLS)]
    ordered = [i for i in reversed(features) if records[i][1].shape[-2:].numel() > 1]
    ordered += [i for i in reversed(features) if records[i][1].shape[-2:].numel() == 1]
    a_idx = None
    for i in ordered[:8]:
        out = records[i][1]
        if out.requires_grad:
            (g,) = torch.autograd.grad(logits.sum(), out, retain_graph=True, allow_unused=True)
            if g is not None:
                a_idx = i
                break
    if a_idx is None:
        raise FeatureAccessError(
            f"cannot reach the last feature map of {cls}: searched the outputs of {len(modules) - 1} submodules "
            f"({len(records)} calls) on a {tuple(x.shape)} input for a channel-first (B, K, h, w) map that the "
            "logits depend on, and found none; register an Adapter (doublecross.models.register_adapter) "
            "for this architecture"
        )
    a_key, a, _ = records[a_idx]
    # stages: walking back from A, the last map at each strictly finer resolution (1x1 maps skipped)
    stages = [a_key]
    cur = tuple(a.shape[-2:])
    for i in reversed(spatial):
        if i >= a_idx:
            continue
        key, out, _ = records[i]
        size = tuple(out.shape[-2:])
        if size[0] * size[1] > 1 and size[0] >= cur[0] and size[1] >= cur[1] and size != cur:
            stages.append(key)
            cur = size
    stages.reverse()
    # leaf modules run after A (for the head description)
    after = [
        type(modules[key[0]]).__name__
        for key, _, _ in records[a_idx + 1 :]
        if next(iter(modules[key[0]].children()), None) is None
    ]
    head = _linear_head(records, modules, logits, a)
    return FeatureSplit(a_key, tuple(stages), head, tuple(after), int(logits.shape[1]))


def _linear_head(
    records: list[Record],
    modules: dict[str, nn.Module],
    logits: torch.Tensor,
    a: torch.Tensor,
) -> str | None:
    """Name of the ``nn.Linear`` computing the logits from ``mean_hw(A)``, or ``None``."""
    for key, out, inp in reversed(records):
        if isinstance(modules[key[0]], nn.Linear) and out.shape == logits.shape and torch.equal(out, logits):
            if inp is None:
                return None
            q = inp.detach().flatten(1)
            pooled = a.detach().float().mean(dim=(2, 3))
            if q.shape != pooled.shape:
                return None
            scale = float(pooled.abs().max()) + 1e-12
            return key[0] if torch.allclose(q.float(), pooled, rtol=1e-4, atol=1e-5 * scale) else None
    return None


def capture(net: nn.Module, x: torch.Tensor, keys: list[Key]) -> tuple[list[torch.Tensor], torch.Tensor]:
    """One forward of ``net(x)`` returning the outputs of the module calls ``keys`` and the logits.

    Hooks live only for this forward (removed even on error). The outputs keep their graph.

    Raises:
        FeatureAccessError: a module call in ``keys`` did not happen (the forward changed since the probe).
    """
    wanted: dict[str, set[int]] = {}
    for name, k in keys:
        wanted.setdefault(name, set()).add(k)
    got: dict[Key, torch.Tensor] = {}
    calls: dict[str, int] = {}
    modules = dict(net.named_modules())
    handles = []

    def make_hook(name: str):  # type: ignore[no-untyped-def]
        def hook(module, inputs, output):  # type: ignore[no-untyped-def]
            k = calls.get(name, 0)
            calls[name] = k + 1
            if k in wanted[name]:
                got[(name, k)] = output

        return hook

    try:
        for name in wanted:
            handles.append(modules[name].register_forward_hook(make_hook(name)))
        logits = net(x)
    finally:
        for h in handles:
            h.remove()
    missing = [k for k in keys if k not in got]
    if missing:
        raise FeatureAccessError(f"module calls {missing} did not happen in this forward of {type(net).__name__}")
    return [got[k] for k in keys], logits
