"""Network building blocks shared by every learner: MLPs and the polyak target update."""
from __future__ import annotations

import platform
from typing import Iterable

import torch
from torch import nn
from torch.autograd.function import once_differentiable

ONEDNN_MIN_MACS = 1 << 24  # batch × in × out from which oneDNN beats MKL here (see `Linear`)
# oneDNN's inner-product ops are internal to PyTorch: used only where this build has them.
_ONEDNN = (platform.machine().lower() in ("x86_64", "amd64") and torch.backends.mkldnn.is_available()
           and hasattr(torch.ops.mkldnn, "_linear_pointwise")
           and hasattr(torch.ops.aten, "mkldnn_linear_backward_input")
           and hasattr(torch.ops.aten, "mkldnn_linear_backward_weights"))


class _OneDNNLinear(torch.autograd.Function):
    """y = x Wᵀ + b and its gradients as oneDNN inner products (float32, the same products as F.linear)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        x = x.contiguous()
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return torch.ops.mkldnn._linear_pointwise(x, weight.contiguous(), bias, "none", [], "")

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad = grad.contiguous().to_mkldnn()
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.mkldnn_linear_backward_input(x.shape, grad, weight.contiguous())
            grad_x = grad_x.to_dense() if grad_x.is_mkldnn else grad_x
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            grad_w, grad_b = torch.ops.aten.mkldnn_linear_backward_weights(grad, x.to_mkldnn(), weight, ctx.has_bias)
        return grad_x, grad_w, grad_b if ctx.has_bias else None


class Linear(nn.Linear):
    """``nn.Linear`` whose large float32 products on an x86 CPU run on oneDNN instead of the BLAS.

    Same parameters, state_dict and math (float32 products; only the summation order inside a
    product differs, as between any two BLAS kernels). Why: PyTorch's CPU wheels do float32 matmuls
    with MKL, which picks slower kernels than oneDNN on non-Intel CPUs for large products; on small ones
    oneDNN's fixed cost loses, hence the threshold on batch × in × out. Measurements: README, "Speed notes".

    The oneDNN path is first-order only: under autocast, and for double backward or ``torch.func``
    transforms (none of which this project uses), products take the plain path or raise a clear error.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (_ONEDNN and torch.backends.mkldnn.enabled and x.device.type == "cpu" and x.dim() == 2
                and x.dtype == torch.float32 == self.weight.dtype and not torch.is_autocast_enabled("cpu")
                and x.shape[0] * self.in_features * self.out_features >= ONEDNN_MIN_MACS):
            return _OneDNNLinear.apply(x, self.weight, self.bias)
        return super().forward(x)


class OutputLinear(Linear):
    """The output layer of every network: float32 also inside an autocast region (``--precision bf16``
    runs the hidden layers in bfloat16), so Q-values, logits, actions and VAE moments, and the
    targets and losses computed from them, stay float32. Outside autocast it is `Linear`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_autocast_enabled(x.device.type):
            with torch.autocast(x.device.type, enabled=False):
                return super().forward(x.float())
        return super().forward(x)


def mlp(in_dim: int, hidden: Iterable[int], out_dim: int) -> nn.Sequential:
    """`Linear` layers with ReLU between them (none after the last, an `OutputLinear`)."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    return nn.Sequential(*layers, OutputLinear(in_dim, out_dim))


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging: θ_target ← τ·θ + (1 − τ)·θ_target."""
    torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), tau)


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy for use as a target network (no gradients)."""
    import copy
    return copy.deepcopy(module).requires_grad_(False)


def adam(parameters, lr: float = 1e-3, eps: float = 1e-8) -> torch.optim.Adam:
    """Adam with the fused kernel (one pass over all parameters; the same update rule)."""
    return torch.optim.Adam(parameters, lr=lr, eps=eps, fused=True)
