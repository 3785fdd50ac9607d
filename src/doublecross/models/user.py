"""Your own model: ``path/to/file.py:factory`` or ``package.module:factory`` becomes a :class:`Classifier`.

A *model spec* names a Python callable that returns an ``nn.Module`` classifier (raw logits, taking
normalised ``(B, 3, H, W)`` inputs): ``nets/mine.py:build`` (a file, imported under a private module
name) or ``torchvision.models:resnet18`` (an importable module). **Loading a ``.py`` file or a module
executes its code** -- exactly as ``python file.py`` would; only name files you trust. The weights
file, by contrast, is read safely (``weights_only=True`` or ``.safetensors``, :mod:`.weights`).

The factory is called with ``num_classes=K`` when ``num_classes`` is given and its signature
accepts that keyword (torchvision's builders do), with no argument otherwise; the network's
output width must then equal ``num_classes``. Inputs are normalised with ``mean``/``std``
(ImageNet's by default); ``normalise=False`` passes [0, 1] pixels unchanged, for a network that
normalises its input itself.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..config import ConfigError
from .weights import extract_state_dict, load_state_into, load_weights_file
from .wrapper import IMAGENET_MEAN, IMAGENET_STD, Classifier

log = logging.getLogger(__name__)

DEFAULT_INPUT_SIZE = 224


@dataclass(frozen=True)
class ModelOptions:
    """How to wrap a user model (the CLI's ``--num-classes --input-size --mean --std --no-normalise``).

    Attributes:
        num_classes: K, passed to the factory and checked against the network's output.
        input_size: the side S of the square inputs (default 224).
        mean: per-channel mean (default ImageNet's); ignored when ``normalise`` is false.
        std: per-channel std (default ImageNet's).
        normalise: whether the wrapper normalises at all (false: the network gets [0, 1] pixels).
        classes: class names (default none: a labelled folder's sub-folders are then taken in
            alphabetical order as classes 0 .. K-1).
    """

    num_classes: int | None = None
    input_size: int | None = None
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    normalise: bool = True
    classes: Sequence[str] | None = None

    def given(self) -> list[str]:
        """Names of the options set to something other than their default (for error messages)."""
        out = [k for k in ("num_classes", "input_size", "mean", "std", "classes") if getattr(self, k) is not None]
        return out + ([] if self.normalise else ["normalise"])


def is_model_spec(name: str) -> bool:
    """Whether ``name`` looks like ``file.py:factory`` or ``package.module:factory`` (not a registered name)."""
    if not isinstance(name, str) or name.count(":") < 1:
        return False
    module, _, attr = name.rpartition(":")
    if not module or not attr.isidentifier():
        return False
    if len(module) == 1 and module.isalpha():  # a Windows drive letter, "C:..."
        return False
    return module.endswith(".py") or all(part.isidentifier() for part in module.split("."))


def _import_file(path: str) -> Any:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model file not found: {path}")
    full = os.path.abspath(path)
    mod_name = "doublecross_user_" + hashlib.sha1(full.encode()).hexdigest()[:12]
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, full)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot import {path} as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    folder = os.path.dirname(full)
    sys.path.insert(0, folder)  # the file may import its neighbours
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(mod_name, None)
        raise
    finally:
        if sys.path and sys.path[0] == folder:
            sys.path.pop(0)
    return module


def resolve_factory(spec: str) -> Callable[..., nn.Module]:
    """The callable named by ``file.py:factory`` or ``package.module:factory`` (imports, i.e. runs, its code).

    Raises:
        ConfigError: malformed spec, unknown attribute, or not callable.
        FileNotFoundError: the ``.py`` file does not exist.
    """
    if not is_model_spec(spec):
        raise ConfigError(f"model spec must look like path/to/file.py:factory or package.module:factory, got {spec!r}")
    module_name, _, attr = spec.rpartition(":")
    if module_name.endswith(".py"):
        module = _import_file(module_name)
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise ConfigError(f"cannot import module {module_name!r} for model {spec!r}: {e}") from e
    factory = getattr(module, attr, None)
    if factory is None:
        public = sorted(n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n)))
        raise ConfigError(f"{module_name} has no attribute {attr!r}; callables there: {', '.join(public[:30])}")
    if not callable(factory):
        raise ConfigError(f"{spec} is not callable (a {type(factory).__name__})")
    return factory


def _accepts_num_classes(factory: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "num_classes" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def load_user_model(spec: str, weights: str | None = None, options: ModelOptions | None = None) -> Classifier:
    """Build the network of ``spec``, load ``weights`` (safely) and wrap it as a :class:`Classifier`.

    Args:
        spec: ``path/to/file.py:factory`` or ``package.module:factory`` (its code runs).
        weights: a state dict file (``.pt``/``.pth`` read with ``weights_only=True``, or
            ``.safetensors``); its ``state_dict``/``model`` entry is used when it is a checkpoint
            dict, and a ``module.`` prefix (DataParallel) is dropped. ``None``: the factory's own weights.
        options: :class:`ModelOptions` (input size, normalisation, number of classes, class names).

    Returns:
        The frozen, eval-mode classifier, named after the spec, with ``input_size`` (S, S).

    Raises:
        ConfigError: bad spec or options, the factory does not return an ``nn.Module``, or its
            output width differs from ``num_classes``.
        WeightsError: the weights file is unsafe, unreadable or does not fit.
    """
    opts = options or ModelOptions()
    factory = resolve_factory(spec)
    kwargs = {"num_classes": opts.num_classes} if opts.num_classes is not None and _accepts_num_classes(factory) else {}
    net = factory(**kwargs)
    if not isinstance(net, nn.Module):
        raise ConfigError(f"{spec} returned a {type(net).__name__}, not a torch.nn.Module")
    if weights is not None:
        load_state_into(net, extract_state_dict(load_weights_file(weights), weights), weights)
    size = opts.input_size or DEFAULT_INPUT_SIZE
    if size < 8:
        raise ConfigError(f"input size must be at least 8 px, got {size}")
    if opts.normalise:
        mean, std = tuple(opts.mean or IMAGENET_MEAN), tuple(opts.std or IMAGENET_STD)
    else:
        if opts.mean is not None or opts.std is not None:
            raise ConfigError("--no-normalise excludes --mean/--std")
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    net.eval()
    with torch.no_grad():
        try:
            probe = (torch.full((1, 3, size, size), 0.5) - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(
                std
            ).view(1, 3, 1, 1)
            out = net(probe)
        except Exception as e:  # noqa: BLE001 - the user's network, any failure is reported with context
            raise ConfigError(f"{spec} fails on a (1, 3, {size}, {size}) input (set --input-size?): {e}") from e
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise ConfigError(f"{spec} must return logits of shape (B, C); got {getattr(out, 'shape', type(out).__name__)}")
    k = out.shape[1]
    if opts.num_classes is not None and k != opts.num_classes:
        raise ConfigError(f"{spec} outputs {k} classes but --num-classes is {opts.num_classes}")
    classes = list(opts.classes) if opts.classes is not None else None  # unnamed: folders by alphabetical index
    if classes is not None and len(classes) != k:
        raise ConfigError(f"{len(classes)} class names given for a {k}-class model {spec}")
    # Neither --mean/--std nor --no-normalise: normalise with ImageNet's statistics, but let the wrapper
    # warn when the network looks like it normalises its inputs itself (they would be normalised twice).
    explicit = opts.mean is not None or opts.std is not None or not opts.normalise
    clf = Classifier(
        net,
        mean,
        std,
        classes=classes,
        input_size=(size, size),
        name=_display_name(spec),
        normalise=opts.normalise if explicit else None,
    )
    log.info("user model %s: %d classes, input %d px, mean %s std %s", spec, k, size, mean, std)
    return clf


def _display_name(spec: str) -> str:
    module, _, attr = spec.rpartition(":")
    stem = os.path.splitext(os.path.basename(module))[0] if module.endswith(".py") else module.rsplit(".", 1)[-1]
    return f"{stem}-{attr}"


def build_model(name: str, weights: str | None = None, options: ModelOptions | None = None) -> Classifier:
    """Any model the CLI accepts: a registered name, a checkpoint path, or a user spec (``file.py:factory``).

    ``options`` apply to user specs only (a registered model or checkpoint carries its own
    classes, input size and normalisation); giving them for another model is an error.
    """
    from .zoo import MODELS, create_model

    opts = options or ModelOptions()
    if name not in MODELS and is_model_spec(name) and not os.path.isfile(name):
        return load_user_model(name, weights, opts)
    if opts.given():
        raise ConfigError(
            f"{', '.join('--' + g.replace('_', '-') for g in opts.given())} only apply to your own model "
            f"(--model file.py:factory); {name!r} carries its own"
        )
    return create_model(name, weights=weights)


def declared_input_side(name: str, weights: str | None = None, options: ModelOptions | None = None) -> int | None:
    """The input side a model will have, without building it when cheap to know (None: unknown, 224 assumed).

    User specs: ``options.input_size`` (default 224); checkpoints of ours: their metadata.
    """
    from .checkpoint import load_checkpoint
    from .zoo import MODELS

    opts = options or ModelOptions()
    if name not in MODELS and is_model_spec(name) and not os.path.isfile(name):
        return opts.input_size or DEFAULT_INPUT_SIZE
    path = name if name not in MODELS and os.path.isfile(name) else weights
    if path and os.path.isfile(path) and name not in ("resnet50", "densenet169"):
        try:
            return int(load_checkpoint(path)[1]["input_size"][0])
        except (ValueError, KeyError, IndexError, TypeError):
            return None
    return None
