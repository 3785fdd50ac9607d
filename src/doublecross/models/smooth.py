"""Smoothed *backward* surrogates of piecewise-linear activations (ADV² paper, spec §2.4).

A GRAD map is a first derivative of the classifier, so attacking it needs second derivatives;
for ReLU networks those vanish almost everywhere. The surrogate keeps the forward exactly
``relu(z)`` and replaces only the derivative ``1[z > 0]`` by ``h(z) = r'(z)`` of

    r(z) = z + sqrt(z² + τ)   (z < 0)        h(z) = 1 + z / sqrt(z² + τ)   (z < 0)
    r(z) =     sqrt(z² + τ)   (z ≥ 0)        h(z) =     z / sqrt(z² + τ)   (z ≥ 0)

with τ = 1e-4. ``h`` is built from differentiable tensor ops, so double backprop through it gives
``h'(z) = τ / (z² + τ)^{3/2}`` and a non-zero second-order gradient.

Every other piecewise-linear activation gets the same treatment [our decision, spec §2.4 extended]:
its forward is PyTorch's own (bit-identical) and each step ``1[z > a]`` of its derivative becomes
``h(z - a)``:

    ReLU                1[z>0]                          -> h(z)
    LeakyReLU(s)        s + (1-s)·1[z>0]                -> s + (1-s)·h(z)
    PReLU(w)            w + (1-w)·1[z>0]  (w per channel) -> w + (1-w)·h(z)    (∂/∂w exact: min(z, 0))
    Hardtanh(a, b)      1[z>a] - 1[z>b]                 -> h(z-a) - h(z-b)     (ReLU6: a, b = 0, 6)
    Hardsigmoid         (1[z>-3] - 1[z>3])/6            -> (h(z+3) - h(z-3))/6
    Hardswish           (1[z>-3] - 1[z>3])·(2z+3)/6 + 1[z>3]  -> same with h

Smooth activations (SiLU, GELU, Softplus, ELU, Mish, ...) have second derivatives of their own and
pass through untouched; max-pooling's double backward exists (a gather, like ReLU's mask) and is
left alone -- the activations around it carry the curvature.

Use it as a context: every activation evaluated inside -- modules (``nn.ReLU``, ``nn.ReLU6``,
``nn.Hardswish``, ...) and functional calls (``F.relu``, ``F.hardtanh``, ``torch.relu_``,
``Tensor.relu``, ...), in-place or not -- takes the surrogate::

    with smooth_activations():     # ``smooth_relu`` is the same context (historical name)
        logits = model(x)          # bit-identical logits, smooth backward

In-place variants are computed out of place and the result returned (torchvision uses the return
value, e.g. DenseNet's ``F.relu(features, inplace=True)``).

``exact_double_backward()`` is the companion for computations that need second derivatives but
must keep PyTorch's exact first derivative (MASK's unrolled steps): ops whose backward PyTorch
cannot differentiate (``hardsigmoid``) get an exact, piecewise-constant derivative built from
differentiable ops. ``check_double_backward`` names an op that has no double backward at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

DEFAULT_TAU = 1e-4


def relu_surrogate_derivative(z: torch.Tensor, tau: float = DEFAULT_TAU, symmetric: bool = False) -> torch.Tensor:
    """``h(z)``, the paper's smooth stand-in for ``1[z > 0]`` (elementwise, differentiable).

    Args:
        z: pre-activations, any shape.
        tau: smoothing constant τ (> 0).
        symmetric: use ``½(1 + z/√(z²+τ))`` instead (continuous at 0; not the paper's).
    """
    s = z / torch.sqrt(z * z + tau)
    if symmetric:
        return 0.5 * (1.0 + s)
    return torch.where(z < 0, 1.0 + s, s)


class _SurrogateDerivative(torch.autograd.Function):
    """``h(z)`` as one node: its backward is ``h'(z) = τ/(z² + τ)^{3/2}`` (½ of it when symmetric).

    Equal to differentiating :func:`relu_surrogate_derivative` op by op, but the double-backprop
    graph keeps only ``z`` per ReLU instead of every intermediate (√, ratio, mask, sum): the GRAD
    attack's peak memory is dominated by these saved tensors.
    """

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, tau: float, symmetric: bool) -> torch.Tensor:
        ctx.save_for_backward(z)
        ctx.tau, ctx.symmetric = tau, symmetric
        return relu_surrogate_derivative(z, tau, symmetric)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (z,) = ctx.saved_tensors
        d = ctx.tau * torch.rsqrt(z * z + ctx.tau) ** 3
        return grad * (0.5 * d if ctx.symmetric else d), None, None


class _SmoothReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, tau: float, symmetric: bool) -> torch.Tensor:
        ctx.save_for_backward(z)
        ctx.tau = tau
        ctx.symmetric = symmetric
        return torch.relu(z)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (z,) = ctx.saved_tensors
        return _SurrogateProduct.apply(grad, z, ctx.tau, ctx.symmetric), None, None


class _SurrogateProduct(torch.autograd.Function):
    """``grad · h(z)`` as one node (issue 15, memory): saves ``grad`` and ``z`` (which the ReLU node
    holds anyway) instead of ``grad`` and ``h(z)``, one activation-sized tensor less per ReLU in the
    double-backprop graph. Backward: ``(g·h(z), g·grad·h'(z))``, as the product of the two nodes gives.
    """

    @staticmethod
    def forward(ctx: Any, grad: torch.Tensor, z: torch.Tensor, tau: float, symmetric: bool) -> torch.Tensor:
        ctx.save_for_backward(grad, z)
        ctx.tau, ctx.symmetric = tau, symmetric
        return grad * relu_surrogate_derivative(z, tau, symmetric)

    @staticmethod
    def backward(ctx: Any, gout: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None, None]:
        grad, z = ctx.saved_tensors
        d = ctx.tau * torch.rsqrt(z * z + ctx.tau) ** 3
        d = 0.5 * d if ctx.symmetric else d
        return gout * relu_surrogate_derivative(z, ctx.tau, ctx.symmetric), gout * grad * d, None, None


def smooth_relu_fn(z: torch.Tensor, tau: float = DEFAULT_TAU, symmetric: bool = False) -> torch.Tensor:
    """``relu(z)`` forward with the surrogate backward ``grad · h(z)`` (out of place)."""
    if not (tau > 0 and math.isfinite(tau)):
        raise ValueError(f"tau must be a positive finite number, got {tau!r}")
    return _SmoothReLU.apply(z, tau, symmetric)


_RELU_FUNCS: set[Callable[..., Any]] = {
    F.relu,
    F.relu_,
    torch.relu,
    torch.relu_,
    torch.Tensor.relu,
    torch.Tensor.relu_,
}


class DoubleBackwardError(TypeError):
    """An operation in the network has no second derivative in PyTorch (named in the message)."""


def _step(z: torch.Tensor, tau: float | None, symmetric: bool) -> torch.Tensor:
    """``1[z > 0]``: smoothed to ``h(z)`` when ``tau`` is given, exact (piecewise constant) when ``None``."""
    if tau is None:
        return (z > 0).to(z.dtype)
    return _SurrogateDerivative.apply(z, tau, symmetric)


Derivative = Callable[[torch.Tensor, "float | None", bool], torch.Tensor]


class _SmoothActivation(torch.autograd.Function):
    """``forward_fn(z)`` with the backward ``grad · derivative(z)`` (differentiable in ``z``)."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, forward_fn: Callable, derivative: Derivative, tau, symmetric):  # type: ignore[no-untyped-def]
        ctx.save_for_backward(z)
        ctx.derivative, ctx.tau, ctx.symmetric = derivative, tau, symmetric
        return forward_fn(z)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor):  # type: ignore[no-untyped-def]
        (z,) = ctx.saved_tensors
        return grad * ctx.derivative(z, ctx.tau, ctx.symmetric), None, None, None, None


class _SmoothPReLU(torch.autograd.Function):
    """``prelu(z, w)`` with ∂/∂z = ``w + (1 - w)·step(z)`` (w on dim 1) and the exact ∂/∂w = Σ min(z, 0)."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, w: torch.Tensor, tau, symmetric):  # type: ignore[no-untyped-def]
        ctx.save_for_backward(z, w)
        ctx.tau, ctx.symmetric = tau, symmetric
        return F.prelu(z, w)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor):  # type: ignore[no-untyped-def]
        z, w = ctx.saved_tensors
        wb = w.view(1, -1, *([1] * (z.dim() - 2))) if z.dim() >= 2 and w.numel() > 1 else w.reshape(())
        gz = grad * (wb + (1 - wb) * _step(z, ctx.tau, ctx.symmetric))
        gw = None
        if ctx.needs_input_grad[1]:
            contrib = grad * torch.clamp(z, max=0)
            if w.numel() > 1:
                dims = [d for d in range(z.dim()) if d != 1]
                gw = contrib.sum(dim=dims).reshape(w.shape)
            else:
                gw = contrib.sum().reshape(w.shape)
        return gz, gw, None, None


def _arg(args: tuple, kwargs: dict, i: int, name: str, default: Any) -> Any:
    return args[i] if len(args) > i else kwargs.get(name, default)


def _plan_leaky(args: tuple, kwargs: dict) -> tuple[Callable, Derivative]:
    s = float(_arg(args, kwargs, 1, "negative_slope", 0.01))
    return (lambda z: F.leaky_relu(z, s)), (lambda z, tau, sym: s + (1 - s) * _step(z, tau, sym))


def _plan_hardtanh(args: tuple, kwargs: dict) -> tuple[Callable, Derivative]:
    lo = float(_arg(args, kwargs, 1, "min_val", -1.0))
    hi = float(_arg(args, kwargs, 2, "max_val", 1.0))
    return (lambda z: F.hardtanh(z, lo, hi)), (lambda z, tau, sym: _step(z - lo, tau, sym) - _step(z - hi, tau, sym))


def _plan_relu6(args: tuple, kwargs: dict) -> tuple[Callable, Derivative]:
    return F.relu6, (lambda z, tau, sym: _step(z, tau, sym) - _step(z - 6.0, tau, sym))


#: PyTorch's hardsigmoid backward multiplies by 1/6 rounded to float32, in every dtype.
_ONE_SIXTH = float(torch.tensor(1 / 6, dtype=torch.float32))


def _hardsigmoid_derivative(z: torch.Tensor, tau: float | None, sym: bool) -> torch.Tensor:
    return (_step(z + 3.0, tau, sym) - _step(z - 3.0, tau, sym)) * _ONE_SIXTH


def _plan_hardsigmoid(args: tuple, kwargs: dict) -> tuple[Callable, Derivative]:
    return F.hardsigmoid, _hardsigmoid_derivative


def _plan_hardswish(args: tuple, kwargs: dict) -> tuple[Callable, Derivative]:
    def derivative(z: torch.Tensor, tau: float | None, sym: bool) -> torch.Tensor:
        inside = _step(z + 3.0, tau, sym) - _step(z - 3.0, tau, sym)
        return inside * (2.0 * z + 3.0) / 6.0 + _step(z - 3.0, tau, sym)

    return F.hardswish, derivative


#: Piecewise-linear activations other than ReLU: functional entry point -> plan(args, kwargs)
#: giving the exact forward and the derivative with steps ``1[z > a]`` (smoothed or exact).
PIECEWISE_ACTIVATIONS: dict[Callable[..., Any], Callable[[tuple, dict], tuple[Callable, Derivative]]] = {
    F.leaky_relu: _plan_leaky,
    F.leaky_relu_: _plan_leaky,
    F.hardtanh: _plan_hardtanh,
    F.hardtanh_: _plan_hardtanh,
    F.relu6: _plan_relu6,
    F.hardsigmoid: _plan_hardsigmoid,
    F.hardswish: _plan_hardswish,
}

#: Ops whose backward PyTorch cannot differentiate; ``exact_double_backward`` replaces them.
NO_DOUBLE_BACKWARD: dict[Callable[..., Any], Callable[[tuple, dict], tuple[Callable, Derivative]]] = {
    F.hardsigmoid: _plan_hardsigmoid,
}


def _input(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs["input"]


class smooth_relu(TorchFunctionMode):  # noqa: N801 - used like a function/context manager
    """Context under which every piecewise-linear activation uses a smoothed backward (forward unchanged).

    Covers ReLU, ReLU6, LeakyReLU, PReLU, Hardtanh, Hardsigmoid and Hardswish, as modules and as
    functional / in-place / ``Tensor`` method calls (module docstring). Also available as
    :data:`smooth_activations`.

    Args:
        tau: smoothing constant τ (paper: 1e-4).
        symmetric: use the symmetric variant of ``h`` (off by default, not the paper's).
    """

    def __init__(self, tau: float = DEFAULT_TAU, symmetric: bool = False) -> None:
        super().__init__()
        if not (tau > 0 and math.isfinite(tau)):
            raise ValueError(f"tau must be a positive finite number, got {tau!r}")
        self.tau = float(tau)
        self.symmetric = symmetric

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if func in _RELU_FUNCS:
            return _SmoothReLU.apply(_input(args, kwargs), self.tau, self.symmetric)
        plan = PIECEWISE_ACTIVATIONS.get(func)
        if plan is not None:
            forward_fn, derivative = plan(args, kwargs)
            return _SmoothActivation.apply(_input(args, kwargs), forward_fn, derivative, self.tau, self.symmetric)
        if func is F.prelu:
            w = args[1] if len(args) > 1 else kwargs["weight"]
            return _SmoothPReLU.apply(_input(args, kwargs), w, self.tau, self.symmetric)
        return func(*args, **kwargs)


#: The context's descriptive name: every piecewise-linear activation, not only ReLU.
smooth_activations = smooth_relu


class exact_double_backward(TorchFunctionMode):  # noqa: N801 - used like a context manager
    """Context giving ops without a PyTorch double backward (``hardsigmoid``) an exact, differentiable backward.

    The first derivative is PyTorch's (piecewise constant, e.g. ``1[-3 < z < 3]/6``), built from
    ops autograd can differentiate again (their second derivative is 0, as for ReLU). Everything
    else passes through, so a ReLU network computes exactly what it computes without the context.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        plan = NO_DOUBLE_BACKWARD.get(func)
        if plan is not None:
            forward_fn, derivative = plan(args, kwargs)
            return _SmoothActivation.apply(_input(args, kwargs), forward_fn, derivative, None, False)
        return func(*args, **kwargs)


def find_missing_double_backward(out: torch.Tensor) -> str | None:
    """Name of an op in ``out``'s graph whose backward cannot be differentiated, or ``None``.

    ``out`` is a first derivative taken with ``create_graph=True``; PyTorch marks the backward of
    an op with no derivative formula by a ``NotImplemented`` node, which raises only when a second
    backward reaches it. Calling that node on a zero gradient gives PyTorch's message, whose
    ``aten::`` name we return (e.g. ``"aten::hardsigmoid_backward"``).
    """
    if out.grad_fn is None:
        return None
    stack, seen = [out.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if "NotImplemented" in node.name():
            try:
                node(torch.zeros_like(out))
            except RuntimeError as e:
                text = str(e)
                start = text.find("aten::")
                return text[start:].split()[0] if start >= 0 else text
            return node.name()
        stack.extend(nxt for nxt, _ in node.next_functions)
    return None


def check_double_backward(first_derivative: torch.Tensor, where: str) -> None:
    """Raise :class:`DoubleBackwardError` naming the op when ``first_derivative`` cannot be differentiated again.

    Args:
        first_derivative: a gradient computed with ``create_graph=True``.
        where: who needs the second derivative (for the message), e.g. ``"GRAD's attack"``.
    """
    if not first_derivative.requires_grad:
        raise DoubleBackwardError(
            f"{where} needs second derivatives, but the first derivative has no graph: an op in the network "
            "cannot be differentiated twice (e.g. a custom autograd.Function marked @once_differentiable)"
        )
    name = find_missing_double_backward(first_derivative)
    if name is not None:
        raise DoubleBackwardError(
            f"{where} needs second derivatives, but the network uses {name}, which has no double backward "
            "in PyTorch and no smoothed surrogate in doublecross (smoothed: ReLU, ReLU6, LeakyReLU, PReLU, "
            "Hardtanh, Hardsigmoid, Hardswish); replace that op or add a plan to "
            "doublecross.models.smooth.PIECEWISE_ACTIVATIONS"
        )
