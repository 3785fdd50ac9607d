"""Cheaper double backward through frozen convolutions and eval-mode batch norm (issue 15, MASK cost).

MASK's unrolled inner steps (spec §4.7) differentiate a gradient of the classifier again, with
respect to the input only: the classifier's parameters are frozen. PyTorch's double backward of a
convolution (``_convolution_double_backward``) nevertheless computes the weight term
``gW = conv(ggI, gO)`` for every convolution -- one convolution's worth of work per layer and
unrolled step, thrown away -- and the double backward of eval-mode batch norm goes through the
general training-mode formula. Under :class:`lean_double_backward`:

* ``conv2d(x, W, b)`` with ``W`` and ``b`` not requiring grad has the backward
  ``∂/∂x = conv_transpose2d(gO, W)`` written with differentiable ops, whose own backward is
  ``conv2d(ggI, W)`` (the input term only);
* ``batch_norm(x, running_mean, running_var, w, b, training=False)`` with frozen ``w``, ``b`` has
  the backward ``gO · w/√(running_var + eps)`` (per channel), whose own backward is the same product.

The forwards are PyTorch's own (bit-identical); the first derivatives equal PyTorch's up to float
rounding (a transposed convolution instead of ``convolution_backward``'s input kernel); the second
derivatives with respect to the input are the same formulas minus the discarded weight terms.
Anything else (trainable weights, string padding, training-mode batch norm) passes through.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


class _FrozenConv2d(torch.autograd.Function):
    """``conv2d(x, W, b)`` with constant ``W``, ``b``; backward ``conv_transpose2d(gO, W)`` (differentiable)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor, b: Any, stride: Any, padding: Any, dilation: Any,
                groups: int) -> torch.Tensor:  # fmt: skip
        out = F.conv2d(x, w, b, stride, padding, dilation, groups)
        ctx.save_for_backward(w)
        ctx.conf = (_pair(stride), _pair(padding), _pair(dilation), groups, tuple(x.shape[-2:]))
        return out

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, ...]:
        (w,) = ctx.saved_tensors
        stride, padding, dilation, groups, size = ctx.conf
        # output_padding: the rows/columns the strided convolution dropped, so the shape is x's
        extra = tuple(
            size[i] - ((g.shape[-2 + i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (w.shape[-2 + i] - 1) + 1)
            for i in range(2)
        )
        gx = F.conv_transpose2d(g, w, None, stride, padding, extra, groups, dilation)
        return gx, None, None, None, None, None, None


class _EvalBatchNorm(torch.autograd.Function):
    """Eval-mode ``batch_norm`` with constant statistics and affine; backward ``gO · w/√(var + eps)``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, w: Any, b: Any,
                eps: float) -> torch.Tensor:  # fmt: skip
        scale = torch.rsqrt(var + eps)
        if w is not None:
            scale = scale * w
        ctx.save_for_backward(scale)
        return F.batch_norm(x, mean, var, w, b, False, 0.0, eps)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, ...]:
        (scale,) = ctx.saved_tensors
        return g * scale.view((1, -1) + (1,) * (g.dim() - 2)), None, None, None, None, None


def _frozen(*ts: Any) -> bool:
    return all(t is None or not t.requires_grad for t in ts)


def _arg(args: tuple, kwargs: dict, i: int, name: str, default: Any) -> Any:
    return args[i] if len(args) > i else kwargs.get(name, default)


class lean_double_backward(TorchFunctionMode):  # noqa: N801 - used like a context manager
    """Context: frozen ``conv2d`` and eval-mode ``batch_norm`` get a backward without weight terms (module doc)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if func is F.conv2d:
            x, w = _arg(args, kwargs, 0, "input", None), _arg(args, kwargs, 1, "weight", None)
            b = _arg(args, kwargs, 2, "bias", None)
            padding = _arg(args, kwargs, 4, "padding", 0)
            if x.requires_grad and _frozen(w, b) and not isinstance(padding, str) and x.dim() == 4:
                stride, dilation = _arg(args, kwargs, 3, "stride", 1), _arg(args, kwargs, 5, "dilation", 1)
                return _FrozenConv2d.apply(x, w, b, stride, padding, dilation, _arg(args, kwargs, 6, "groups", 1))
        elif func is F.batch_norm:
            names = ("input", "running_mean", "running_var")
            x, mean, var = (_arg(args, kwargs, i, n, None) for i, n in enumerate(names))
            w, b = _arg(args, kwargs, 3, "weight", None), _arg(args, kwargs, 4, "bias", None)
            training = _arg(args, kwargs, 5, "training", False)
            if not training and mean is not None and var is not None and x.requires_grad and _frozen(w, b, mean, var):
                return _EvalBatchNorm.apply(x, mean, var, w, b, float(_arg(args, kwargs, 7, "eps", 1e-5)))
        return func(*args, **kwargs)
