"""The deepsphere-pytorch Chebyshev convolution, re-implemented from its published algorithm: the
peer the sphere speed section times against (:mod:`reproduce.measure.speed_sphere`) and the oracle
``tests/test_deepsphere_layers.py`` checks :class:`models.deepsphere.layers.ChebConv` against
(same outputs and gradients). Not used by any model.
"""
from __future__ import annotations

import torch


def deepsphere_pytorch_cheb_conv(laplacian: torch.Tensor, inputs: torch.Tensor,
                                 weight: torch.Tensor) -> torch.Tensor:
    """The deepsphere-pytorch algorithm, re-implemented for timing (``cheb_conv`` in
    ``deepsphere/layers/chebyshev.py`` of github.com/deepsphere/deepsphere-pytorch; the package
    is not installable here). Not used by any model.

    Its steps: ``(B, V, F_in)`` permuted to a contiguous ``(V, F_in·B)``; per order one
    ``torch.sparse.mm`` with the coalesced COO ``laplacian`` (``T_k = 2 L̃ T_{k−1} − T_{k−2}``),
    each new term concatenated to the stack of the previous ones along a new leading axis
    (``torch.cat``); the ``(K, V, F_in, B)`` stack permuted to a contiguous ``(B·V, F_in·K)``
    and multiplied by ``weight`` ``(K, F_in, F_out)`` viewed as ``(F_in·K, F_out)``. That view
    orders the rows ``(F_in, K)``, so ``weight = θ.transpose(0, 1).reshape(K, F_in, F_out)``
    gives the same map as our ``θ`` ``(K, F_in, F_out)`` (:class:`DeepSpherePyTorchChebConv`).
    Its autograd backward goes through each ``torch.sparse.mm`` of the COO tensor."""
    B, V, f_in = inputs.shape
    K, _, f_out = weight.shape
    x0 = inputs.permute(1, 2, 0).contiguous().view(V, f_in * B)
    stack = x0.unsqueeze(0)
    if K > 1:
        x1 = torch.sparse.mm(laplacian, x0)
        stack = torch.cat((stack, x1.unsqueeze(0)), 0)
        for _ in range(2, K):
            x2 = 2 * torch.sparse.mm(laplacian, x1) - x0
            stack = torch.cat((stack, x2.unsqueeze(0)), 0)
            x0, x1 = x1, x2
    stack = stack.view(K, V, f_in, B).permute(3, 1, 2, 0).contiguous().view(B * V, f_in * K)
    return stack.matmul(weight.view(f_in * K, f_out)).view(B, V, f_out)


class DeepSpherePyTorchChebConv(torch.nn.Module):
    """deepsphere-pytorch's ``ChebConv`` (algorithm re-implemented for timing) holding the same
    map as ``conv``: its COO Laplacian (``scipy_csr_to_sparse_tensor`` coalesces it), its weight
    layout (see :func:`deepsphere_pytorch_cheb_conv`), and the bias added in place."""

    def __init__(self, conv):
        super().__init__()
        self.laplacian = conv.laplacian.to_sparse_coo().coalesce()
        K, f_in, f_out = conv.weight.shape
        self.weight = torch.nn.Parameter(conv.weight.detach().transpose(0, 1).reshape(K, f_in, f_out).clone())
        self.bias = torch.nn.Parameter(conv.bias.detach().clone())

    def forward(self, x):
        out = deepsphere_pytorch_cheb_conv(self.laplacian, x, self.weight)
        out += self.bias
        return out
