"""One call from Python: ``doublecross.attack(model, x, target, interpreter="cam")``.

It does what one unit of ``doublecross attack`` does for a batch you hold in memory: wrap the
model, build the interpreter with the preset's options, take the benign map as the target map
m_t, run ADV² (``adv2``, or ``adv2-bilevel`` for MASK) with the preset's (ε, α, λ, steps) for that
interpreter and threat, and, on request, the threat's baseline (PGD / regular StAdv) beside it.

Spec references: ADV² loss ℓprd + λ·ℓint (ADV2.md §4), map distances (§7).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .attacks import ATTACKS, AttackConfig
from .attacks.presets import AttackPreset, load_attack_preset
from .config import ConfigError, to_dict
from .data.targets import shape_maps
from .interpreters import Interpreter, create_interpreter
from .interpreters.base import Target, as_targets
from .metrics import map_metrics, target_confidence
from .models.wrapper import Classifier, check_images
from .models.zoo import create_model
from .threats import THREATS

log = logging.getLogger(__name__)



@dataclass
class AttackOutcome:
    """What :func:`attack` returns for a batch of B images.

    Attributes:
        x_adv: adversarial images (B, 3, H, W) in [0, 1], on the 8-bit grid.
        success: (B,) bool: argmax = target (and p_t ≥ κ_sel).
        target: (B,) target classes; ``label``: (B,) the benign classes the benign map explains.
        pred: (B,) predicted classes at ``x_adv``; ``confidence``: (B,) p_target at ``x_adv``.
        logits: (B, C) at ``x_adv``.
        maps: ``benign`` (map of x for its label), ``target`` (m_t, what the attack aimed for) and
            ``adversarial`` (map of ``x_adv`` for the target), each (B, 1, h, w) in [0, 1].
        metrics: per-image (B,) tensors: ``l1``, ``l2``, ``iou`` (mean IoU_k), ``iou10`` … ``iou90``
            between the adversarial map and m_t, plus the perturbation sizes (``linf``, ``l2_pert``, …).
        method: ``adv2`` / ``adv2-stadv`` / ``pgd`` / ``stadv``.
        interpreter, threat, preset: names used.
        config: the resolved hyper-parameters: the attack config and the threat's parameters.
        baseline: the threat's baseline (PGD / StAdv) evaluated the same way, when asked for.
        class_names: the model's class names (``None`` if unknown).
    """

    x_adv: torch.Tensor
    success: torch.Tensor
    target: torch.Tensor
    label: torch.Tensor
    pred: torch.Tensor
    confidence: torch.Tensor
    logits: torch.Tensor
    maps: dict[str, torch.Tensor]
    metrics: dict[str, torch.Tensor]
    method: str
    interpreter: str
    threat: str
    preset: str
    config: dict[str, Any] = field(default_factory=dict)
    baseline: AttackOutcome | None = None
    class_names: list[str] | None = None

    @property
    def success_rate(self) -> float:
        """Fraction of successful images."""
        return float(self.success.float().mean())

    def _name(self, c: int) -> str:
        names = self.class_names
        return names[c] if names and 0 <= c < len(names) else str(c)

    def summary(self) -> str:
        """One line per image: label -> target, prediction (p_t), success, L1 and IoU to m_t."""
        runs = [self] + ([self.baseline] if self.baseline is not None else [])
        lines = []
        for i in range(len(self.x_adv)):
            parts = [f"#{i} {self._name(int(self.label[i]))} -> {self._name(int(self.target[i]))}:"]
            for r in runs:
                parts.append(
                    f"{r.method} {'ok' if bool(r.success[i]) else 'FAIL'} p_t={float(r.confidence[i]):.2f} "
                    f"L1={float(r.metrics['l1'][i]):.3f} IoU={float(r.metrics['iou'][i]):.2f}"
                )
            lines.append("  ".join(parts))
        return "\n".join(lines)


def as_classifier(model: Classifier | nn.Module | str, class_names: list[str] | None = None) -> Classifier:
    """A :class:`Classifier` from a registered name / checkpoint path, a ``Classifier`` or any ``nn.Module``.

    A plain ``nn.Module`` is wrapped with ``normalise=False``: it receives the [0, 1] pixels as they
    are. Wrap it yourself, ``Classifier(net, mean=..., std=...)``, if it expects normalised inputs.
    """
    if isinstance(model, str):
        return create_model(model)
    if isinstance(model, Classifier):
        return model
    if isinstance(model, nn.Module):
        return Classifier(model, classes=class_names, name=type(model).__name__, normalise=False)
    raise TypeError(f"model must be a Classifier, an nn.Module or a model name, got {type(model).__name__}")


def resolve_preset(preset: AttackPreset | str | None, model: Classifier, input_side: int | None = None) -> AttackPreset:
    """The preset object: given, loaded by name / YAML path, or the one the CLI would choose.

    Without a preset: the model's own (``scenes-resnet``, …), else ``table10-<model>``, else the generic
    preset for the input size (``generic-small`` up to 96 px, ``generic`` above), as
    :func:`doublecross.attacks.generic.default_preset` picks for ``doublecross attack``.
    """
    if isinstance(preset, AttackPreset):
        return preset
    if preset is None:
        from .attacks.generic import default_preset

        preset = default_preset(model.name, input_side)
        log.info("attack: using preset %s", preset)
    if not isinstance(preset, str):
        raise TypeError(f"preset must be a name, a YAML path or an AttackPreset, got {type(preset).__name__}")
    return load_attack_preset(preset)


def _scaled(cfg: AttackConfig, scale: float) -> AttackConfig:
    """``cfg`` with ``n_warm`` and ``n_total`` multiplied by ``scale`` (rounded; a non-zero count stays ≥ 1)."""
    if isinstance(scale, bool) or not (isinstance(scale, (int, float)) and 0 < scale < float("inf")):
        raise ConfigError(f"steps_scale must be a positive number, got {scale!r}")
    if scale == 1:
        return cfg

    def n(v: int) -> int:
        return max(1, round(v * scale)) if v > 0 else 0

    return dataclasses.replace(cfg, n_warm=n(cfg.n_warm), n_total=n(cfg.n_total))


def _outcome(
    res: Any, interp: Interpreter, amap: torch.Tensor, logits: torch.Tensor, success: torch.Tensor,
    maps: dict[str, torch.Tensor], method: str, common: dict[str, Any], size: dict[str, torch.Tensor],
) -> AttackOutcome:
    mets = map_metrics(amap, maps["target"])
    mets.update({("l2_pert" if k == "l2" else k): v for k, v in size.items()})
    return AttackOutcome(
        x_adv=res.x_adv, success=success, target=res.target, pred=logits.argmax(1),
        confidence=target_confidence(logits, res.target), logits=logits,
        maps={**maps, "adversarial": amap}, metrics=mets, method=method, **common,
    )


def attack(
    model: Classifier | nn.Module | str,
    x: torch.Tensor,
    target: Target,
    interpreter: str | Interpreter = "cam",
    *,
    preset: AttackPreset | str | None = None,
    threat: str = "linf",
    label: Target | None = None,
    target_map: str | torch.Tensor = "benign",
    baseline: bool = False,
    attack_options: dict[str, Any] | None = None,
    threat_options: dict[str, Any] | None = None,
    interpreter_options: dict[str, Any] | None = None,
    steps_scale: float = 1.0,
    class_names: list[str] | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> AttackOutcome:
    """ADV²: make ``model`` predict ``target`` on ``x`` while ``interpreter`` still shows m_t.

    Minimises ℓprd(f(x̂), t) + λ·ℓint(g(x̂; t), m_t) over x̂ in the threat's set (L∞ ball of radius
    ε with PGD steps of size α, or a StAdv flow), with the preset's (ε, α, λ, steps) for this
    interpreter and threat (ADV2.md §4, §5).

    Args:
        model: a :class:`Classifier`, any ``nn.Module`` classifier on [0, 1] inputs, or a model name.
        x: images (B, 3, H, W) or one image (3, H, W) in [0, 1]; left untouched.
        target: the class to reach: an int for all, or one per image.
        interpreter: ``grad``, ``cam``, ``mask``, ``rts`` (or any registered name), or an
            :class:`Interpreter` built on ``model``.
        preset: an attack preset name, a YAML path or an :class:`AttackPreset`; default the
            model's own calibrated preset, else the paper's ``table10-resnet50``.
        threat: ``linf`` (additive, ε-ball) or ``stadv`` (spatial flow).
        label: the benign class(es) the benign map explains; default the model's prediction on ``x``.
        target_map: ``benign`` (m_t = the benign map, the paper's setting), ``shape`` (random
            circle / rectangle) or a tensor (B, 1, h, w) in [0, 1] at the interpreter's native size.
        baseline: also run the threat's baseline (PGD / regular StAdv) and evaluate it the same way.
        attack_options: overrides of the preset's :class:`AttackConfig` fields (e.g. ``{"n_total": 50}``).
        threat_options: overrides of the threat's parameters (e.g. ``{"eps": 8 / 255}``).
        interpreter_options: overrides of the interpreter's options (when built by name).
        steps_scale: multiplies the step counts (``n_warm``, ``n_total``) of ADV² and the baseline,
            e.g. 0.1 for a quick look (fewer steps: lower success, maps less close).
        class_names: names for a plain ``nn.Module``'s classes (used in :meth:`AttackOutcome.summary`).
        seed: seeds torch and the attack's own randomness.
        device: where to run (default: where the model's parameters are).

    Returns:
        An :class:`AttackOutcome` (adversarial images, success, maps, per-image metrics).

    Shape:
        x: (B, 3, H, W) -> x_adv: (B, 3, H, W); maps (B, 1, h, w); metrics (B,).
    """
    clf = as_classifier(model, class_names)
    if device is not None:
        clf = clf.to(device)
    dev = clf.mean.device
    if isinstance(x, torch.Tensor) and x.dim() == 3:
        x = x[None]
    x = check_images(x).to(dev)
    p = resolve_preset(preset, clf, input_side=int(x.shape[-1]))
    settings = p.for_threat(THREATS.check(threat))
    if isinstance(interpreter, str):
        iname = interpreter
        kwargs = {**p.interpreter_options.get(iname, {}), **(interpreter_options or {})}
        interp = create_interpreter(iname, clf, **kwargs)
    elif isinstance(interpreter, Interpreter):
        interp, iname = interpreter, interpreter.name
        if interp.model is not clf:
            raise ValueError("the interpreter must be built on the attacked model (pass that Classifier as model)")
    else:
        raise TypeError(f"interpreter must be a name or an Interpreter, got {type(interpreter).__name__}")
    acfg = _scaled(settings.for_interpreter(iname), steps_scale)
    if attack_options:
        acfg = AttackConfig.from_dict({**to_dict(acfg), **attack_options}, source="attack_options")
    base_cfg = _scaled(settings.baseline, steps_scale)
    extra = dict(threat_options or {})
    thr = settings.create_threat(acfg)
    if extra:
        thr = THREATS.create(threat, **{**settings.params, **acfg.threat_options, **extra})
    torch.manual_seed(seed)
    with torch.no_grad():
        pred0 = clf(x).argmax(1)
    classes = clf.num_classes or int(clf(x[:1]).shape[1])  # a plain module: C from its output
    t = as_targets(target, x.shape[0], classes, dev)
    y = pred0 if label is None else as_targets(label, x.shape[0], classes, dev)  # default: the prediction
    benign = interp.explain(x, y)
    if isinstance(target_map, torch.Tensor):
        m_t = target_map.to(dev)
    elif target_map == "benign":
        m_t = benign.map
    elif target_map == "shape":
        h, w = interp.native_size(*x.shape[-2:])
        m_t = shape_maps(len(x), (h, w), x.shape[-1], torch.Generator().manual_seed(seed)).to(dev)
    else:
        raise ConfigError(f"target_map must be 'benign', 'shape' or a tensor, got {target_map!r}")
    maps = {"benign": benign.map, "target": m_t}
    common = {
        "label": y, "interpreter": iname, "threat": threat, "preset": p.name,
        "class_names": clf.classes, "config": {"attack": to_dict(acfg), "threat": thr.config()},
    }
    adv = ATTACKS.create(interp.attack_kind, threat=thr, config=acfg, seed=seed)
    res = adv(clf, x, t, interp, m_t)
    out = _outcome(res, interp, res.map, res.logits, res.success, maps, thr.adv2_name, common, res.size)
    if baseline:
        bthr = settings.create_threat()
        bres = ATTACKS.create("pgd", threat=bthr, config=base_cfg)(clf, x, t)
        ev = interp.explain(bres.x_adv, t)
        bcommon = {**common, "config": {"attack": to_dict(base_cfg), "threat": bthr.config()}}
        out.baseline = _outcome(
            bres, interp, ev.map, ev.logits, adv.is_success(ev.logits, t), maps, bthr.baseline, bcommon, bres.size
        )
    return out
