"""Checking a checkpoint's description before building its network: no allocation from a 1 KB file.

A checkpoint's metadata says how to build the network (``arch_kwargs``, ``classes``, ``input_size``).
Trusting it lets a 1 KB file with ``arch_kwargs: {width: 4096}`` allocate 18.5 GB before the weights
are even compared. Here the keyword names are checked against the architecture's signature and
their values against bounds, the network is first built on PyTorch's ``meta`` device (shapes only,
no memory), and its parameter shapes must equal the file's tensors; only then is it built for real,
at a size the file itself already proves.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from .weights import WeightsError

#: Inclusive bounds of integer architecture arguments (a width of 256 is already ~16x the embedded models).
ARG_BOUNDS: dict[str, tuple[int, int]] = {
    "width": (1, 512),
    "depth": (1, 32),
    "growth": (1, 256),
    "layers": (1, 64),
    "num_classes": (1, 100_000),
}
DEFAULT_BOUNDS = (1, 4096)  # any other integer argument
MAX_CLASSES = 100_000
MAX_SIDE = 4096


def check_meta(meta: Mapping[str, Any], path: str) -> None:
    """Validate ``classes``, ``mean``, ``std`` and ``input_size`` of a checkpoint's metadata.

    Raises:
        WeightsError: naming the field and the value.
    """
    classes = meta.get("classes")
    if not isinstance(classes, list) or not 1 <= len(classes) <= MAX_CLASSES:
        raise WeightsError(f"{path}: 'classes' must be a list of 1 to {MAX_CLASSES} names")
    for key in ("mean", "std"):
        v = meta.get(key)
        ok = isinstance(v, list) and len(v) in (1, 3)
        ok = ok and all(isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a) for a in v)
        if not ok or (key == "std" and any(a <= 0 for a in v)):
            rule = " > 0" if key == "std" else ""
            raise WeightsError(f"{path}: {key!r} must be 1 or 3 finite numbers{rule}, got {v!r}")
    size = meta.get("input_size")
    if not (
        isinstance(size, list)
        and len(size) == 2
        and all(isinstance(a, int) and not isinstance(a, bool) and 1 <= a <= MAX_SIDE for a in size)
    ):
        raise WeightsError(f"{path}: 'input_size' must be [height, width] in 1..{MAX_SIDE}, got {size!r}")


def check_arch_kwargs(factory: Callable[..., nn.Module], kwargs: Any, arch: str, path: str) -> dict[str, Any]:
    """``kwargs`` as a dict of known, bounded arguments of ``factory``.

    Raises:
        WeightsError: not a mapping, an argument the architecture does not take, or an integer
            outside :data:`ARG_BOUNDS` (e.g. ``width: 4096``).
    """
    if kwargs is None:
        return {}
    if not isinstance(kwargs, Mapping):
        raise WeightsError(f"{path}: 'arch_kwargs' must be a mapping, got {type(kwargs).__name__}")
    params = inspect.signature(factory).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    out = {}
    for key, value in kwargs.items():
        if key == "num_classes" or (key not in params and not accepts_any):
            allowed = sorted(k for k in params if k != "num_classes")
            raise WeightsError(f"{path}: arch_kwargs.{key} is not an argument of {arch!r} (it takes {allowed})")
        if isinstance(value, bool) or isinstance(value, (str, type(None))):
            out[key] = value
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise WeightsError(f"{path}: arch_kwargs.{key} must be finite, got {value!r}")
        if isinstance(value, int):
            lo, hi = ARG_BOUNDS.get(key, DEFAULT_BOUNDS)
            if not lo <= value <= hi:
                raise WeightsError(f"{path}: arch_kwargs.{key} = {value} is outside [{lo}, {hi}]")
        elif not isinstance(value, float):
            raise WeightsError(f"{path}: arch_kwargs.{key} must be a number, string or bool, got {value!r}")
        out[key] = value
    return out


def build_checked(
    factory: Callable[..., nn.Module], kwargs: dict[str, Any], state: Mapping[str, torch.Tensor], path: str
) -> nn.Module:
    """Build ``factory(**kwargs)`` only after its shapes, built on the meta device, match ``state``.

    Raises:
        WeightsError: the file's tensors do not fit the described network (missing/extra keys
            or another shape), before any real memory is allocated for it.
    """
    try:
        with torch.device("meta"):
            probe = factory(**kwargs)
    except (TypeError, ValueError, RuntimeError) as e:
        raise WeightsError(f"{path}: cannot build the described network: {e}") from None
    want = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
    missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
    wrong = sorted(k for k in set(want) & set(have) if want[k] != have[k])
    if missing or extra or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if extra:
            parts.append(f"{len(extra)} unexpected (e.g. {extra[0]})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} of another shape (e.g. {k}: file {have[k]}, network {want[k]})")
        raise WeightsError(f"{path}: the weights do not fit the network its metadata describes: {', '.join(parts)}")
    return factory(**kwargs)
