"""Layers of 3D Steerable CNNs: convolution, gated nonlinearity, batch norm, capsule dropout,
low-pass subsampling, invariant pooling and export to a plain 3D CNN.

Paper: Weiler et al. 2018, §4.3 (gated nonlinearity), §4.4.2 (low-pass before subsampling),
§4.4.3 (forward pass, export), supplement §1 (batch norm). Reference implementation:
``mariogeiger/se3cnn`` at 546bc68 (``blocks/gated_block.py``, ``batchnorm.py``, ``dropout.py``,
``filter.py``). Field-type, grid and rotation conventions: :mod:`models.steerable.group`.

Every layer ``f`` here is equivariant, ``f(π_in(R) x) = π_out(R) f(x)``, exactly (to float
round-off) for the 24 cube rotations ``R``, provided the grid sampled by a strided or pooled
layer is symmetric about the centre:

    **exactness condition** — at every layer with stride ``s > 1`` the sampled positions
    ``0, s, 2s, …`` must end on the last voxel of the (padded) grid, i.e.
    ``(n + 2·padding − size) ≡ 0 (mod s)`` for a strided convolution of an ``n``-voxel axis
    (for the low-pass stride of a :class:`GatedBlock`, ``n + 2·padding − size`` is the same
    quantity since its convolution runs at stride 1), and ``(n − 1) ≡ 0 (mod s)`` for a stride
    applied by :class:`LowPass3d` to ``n`` voxels. Odd grids with size 5, padding 4, stride 2
    work when ``n ≡ 1 (mod 4)`` at the strided layers. Otherwise the subsampling grid is
    shifted by one voxel against its rotated copy and equivariance is only approximate.

>>> import torch
>>> block = GatedBlock([(1, 0)], [(2, 0), (1, 1)], size=5, padding=2)
>>> block(torch.randn(1, 1, 7, 7, 7)).shape
torch.Size([1, 5, 7, 7, 7])
"""
from __future__ import annotations

import copy
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from models.geometry import gaussian_taps, lowpass
from models.steerable.group import check_channels, normalize_rs, rs_dim, rs_fields, rs_str
from models.steerable.kernels import SIGMA, SteerableKernel

Activation = Callable[[torch.Tensor], torch.Tensor] | None


# --------------------------------------------------------------------------- low pass
class LowPass3d(nn.Module):
    """Gaussian blur then subsampling, ``y = (G_σ * x)[::s, ::s, ::s]`` (§4.4.2; se3cnn
    ``low_pass_filter(x, scale, stride)``), on every channel independently, zero padding
    ``size//2``. Separable: three passes of 1-D taps. ``scale ≤ 1`` means no blur (then
    ``stride > 1`` is plain subsampling). Commutes with cube rotations (isotropic kernel).
    The filter is :func:`models.geometry.lowpass` (taps :func:`models.geometry.gaussian_taps`),
    the same function that blurs the Tetris data."""

    def __init__(self, scale: float, stride: int = 1):
        super().__init__()
        if int(stride) != stride or stride < 1:
            raise ValueError(f"LowPass3d: stride must be a positive integer, got {stride}")
        self.scale = float(scale)
        self.stride = int(stride)
        self.taps = gaussian_taps(self.scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, stride={self.stride}, taps={len(self.taps)}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"LowPass3d: expected (B, C, X, Y, Z), got shape {tuple(x.shape)}")
        return lowpass(x, self.scale, self.stride)


# --------------------------------------------------------------------------- convolution
class SteerableConv3d(nn.Module):
    """Steerable 3-D convolution: learned weights × kernel basis → filter bank → ``F.conv3d``.

    ``y = K_w ⋆ x + b`` with ``K_w`` from :class:`~models.steerable.kernels.SteerableKernel`
    (§4.2, §4.4), so ``K_w(Rx) = D_out(R) K_w(x) D_in(R)^T``. The bias ``b`` acts on scalar
    (``l = 0``) output fields only (a bias on ``l > 0`` components would break equivariance);
    it starts at zero.

    With ``stride > 1`` and ``lowpass_stride=True`` the input is first blurred by
    :class:`LowPass3d` (``scale = stride``, stride 1) and the convolution then strides,
    ``y = K_w ⋆_s (G_σ * x)`` — the cheap way to low-pass before subsampling (the blur runs once
    per input channel; the convolution only at the kept positions). ``lowpass_stride=False``
    is a plain strided convolution (the paper's "without low-pass" ablation).

    :meth:`export` gives the equivalent plain ``nn.Conv3d`` (§4.4.3).
    """

    def __init__(self, Rs_in, Rs_out, size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True, lowpass_stride: bool = True, mode: str = "compromise",
                 sigma: float = SIGMA):
        super().__init__()
        self.Rs_in = normalize_rs(Rs_in)
        self.Rs_out = normalize_rs(Rs_out)
        self.size, self.stride, self.padding = int(size), int(stride), int(padding)
        self.lowpass_stride = bool(lowpass_stride)
        self.kernel = SteerableKernel(self.Rs_in, self.Rs_out, size, mode=mode, sigma=sigma)
        scalar_idx, off = [], 0
        for m, l in self.Rs_out:
            if l == 0:
                scalar_idx += list(range(off, off + m))
            off += m * (2 * l + 1)
        self.register_buffer("scalar_index", torch.tensor(scalar_idx, dtype=torch.long),
                             persistent=False)
        self.bias = nn.Parameter(torch.zeros(len(scalar_idx))) if bias and scalar_idx else None
        self.blur = LowPass3d(self.stride, 1) if (self.stride > 1 and self.lowpass_stride) else None

    @property
    def in_channels(self) -> int:
        return rs_dim(self.Rs_in)

    @property
    def out_channels(self) -> int:
        return rs_dim(self.Rs_out)

    def extra_repr(self) -> str:
        return (f"{rs_str(self.Rs_in)} -> {rs_str(self.Rs_out)}, size={self.size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}, "
                f"lowpass_stride={self.lowpass_stride}")

    def full_bias(self) -> torch.Tensor | None:
        """Bias of every output channel (zeros on ``l > 0`` components)."""
        if self.bias is None:
            return None
        full = self.bias.new_zeros(self.out_channels)
        return full.index_put((self.scalar_index,), self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_channels(x, self.Rs_in, "SteerableConv3d")
        if self.blur is not None:
            x = self.blur(x)
        return F.conv3d(x, self.kernel(), self.full_bias(), stride=self.stride, padding=self.padding)

    @torch.no_grad()
    def export(self) -> nn.Module:
        """The assembled filter bank as a plain ``nn.Conv3d`` (same dtype/device, same output).
        With a low-pass stride the result is ``nn.Sequential(LowPass3d(stride), nn.Conv3d)``."""
        w = self.kernel.weight
        conv = nn.Conv3d(self.in_channels, self.out_channels, self.size, stride=self.stride,
                         padding=self.padding, bias=self.bias is not None,
                         device=w.device, dtype=w.dtype)
        conv.weight.copy_(self.kernel())
        if self.bias is not None:
            conv.bias.copy_(self.full_bias())
        if self.blur is not None:
            return nn.Sequential(LowPass3d(self.stride, 1), conv)
        return conv


# --------------------------------------------------------------------------- batch norm, dropout
class EquivariantBatchNorm(nn.Module):
    """Batch norm of steerable fields (se3cnn ``SE3BatchNorm``, paper supplement §1).

    For each field ``f`` (``2l+1`` components): scalars are centred, ``f ← f − μ``; every field is
    divided by ``√(E|f|² + ε)``, the mean of its squared norm over batch and space (``E`` of the
    centred scalars for ``l = 0``); then ``f ← γ f`` (``γ`` per field) and ``f ← f + β`` for
    scalar fields only. Rotations act on ``f`` by an orthogonal ``D`` and permute voxels, so the
    statistics are invariant and the layer is equivariant in train and eval mode.

    Training uses the batch statistics and updates the running ones,
    ``run ← (1 − momentum)·run + momentum·batch``; eval uses the running ones. The batch statistics are detached (no
    gradient flows through them); se3cnn's ``SE3BatchNorm`` / ``SE3BNConvolution`` detach only the
    running-average update and back-propagate through the batch mean and norm (a deviation listed
    in configs/cath/protocol.yaml). ``affine=False`` is the
    normalisation that se3cnn's ``SE3BNConvolution`` folds into the next convolution.

    ``sync`` (set by :func:`sync_equivariant_batchnorm`; the runner does so under DDP when
    ``trainer.sync_batchnorm`` is on): in training, the statistics are those of the global batch
    of every DDP process — sums and counts all-reduced (any backend, gloo included), the mean
    first, then the squared norms about it — so N processes normalise as one process would.
    """

    #: all-reduce the batch statistics over the DDP processes (when a process group is running)
    sync: bool = False

    def __init__(self, Rs, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True):
        super().__init__()
        self.Rs = normalize_rs(Rs)
        self.eps, self.momentum, self.affine = float(eps), float(momentum), bool(affine)
        n_scalar = sum(m for m, l in self.Rs if l == 0)
        n_fields = rs_fields(self.Rs)
        self.register_buffer("running_mean", torch.zeros(n_scalar))
        self.register_buffer("running_var", torch.ones(n_fields))
        if self.affine:
            self.weight = nn.Parameter(torch.ones(n_fields))
            self.bias = nn.Parameter(torch.zeros(n_scalar))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def extra_repr(self) -> str:
        return f"{rs_str(self.Rs)}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"

    def _world(self) -> int:
        if not self.sync or not torch.distributed.is_available() or not torch.distributed.is_initialized():
            return 1
        return torch.distributed.get_world_size()

    def _global_stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean of every scalar channel, E|f|² of every field about those means) over the batches
        of all processes: two all-reduces of sums and the global count."""
        import torch.distributed as dist
        B, n_sites = x.shape[0], x[0, 0].numel()
        xd = x.detach()
        sums, ix = [], 0
        for m, l in self.Rs:
            d = 2 * l + 1
            if l == 0:
                sums.append(xd[:, ix: ix + m].reshape(B, m, -1).double().sum(dim=(0, 2)))
            ix += m * d
        count = torch.tensor([float(B * n_sites)], device=x.device, dtype=torch.float64)
        buf = torch.cat([*sums, count])
        dist.all_reduce(buf)
        total = buf[-1]
        mean = (buf[:-1] / total).to(xd.dtype)
        sq, ix, im = [], 0, 0
        for m, l in self.Rs:
            d = 2 * l + 1
            f = xd[:, ix: ix + m * d].reshape(B, m, d, -1)
            if l == 0:
                f = f - mean[im: im + m].view(1, m, 1, 1)
                im += m
            sq.append(f.double().pow(2).sum(dim=2).sum(dim=(0, 2)))
            ix += m * d
        sq = torch.cat(sq)
        dist.all_reduce(sq)
        return mean, (sq / total).to(xd.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_channels(x, self.Rs, "EquivariantBatchNorm")
        B = x.shape[0]
        out = []
        synced = self._global_stats(x) if self.training and self._world() > 1 else None
        ix = im = iv = 0
        new_mean, new_var = [], []
        for m, l in self.Rs:
            d = 2 * l + 1
            f = x[:, ix: ix + m * d].reshape(B, m, d, -1)
            if l == 0:
                if synced is not None:
                    mean = synced[0][im: im + m]
                    new_mean.append(mean)
                elif self.training:
                    mean = f.detach().mean(dim=(0, 2, 3))
                    new_mean.append(mean)
                else:
                    mean = self.running_mean[im: im + m]
                f = f - mean.view(1, m, 1, 1)
                im += m
            if synced is not None:
                var = synced[1][iv: iv + m]
                new_var.append(var)
            elif self.training:
                var = f.detach().pow(2).sum(dim=2).mean(dim=(0, 2))
                new_var.append(var)
            else:
                var = self.running_var[iv: iv + m]
            scale = (var + self.eps).rsqrt()
            if self.affine:
                scale = scale * self.weight[iv: iv + m]
            f = f * scale.view(1, m, 1, 1)
            if self.affine and l == 0:
                f = f + self.bias[im - m: im].view(1, m, 1, 1)
            iv += m
            out.append(f.reshape(B, m * d, *x.shape[2:]))
            ix += m * d
        if self.training:
            with torch.no_grad():
                mom = self.momentum
                if new_mean:
                    self.running_mean.mul_(1 - mom).add_(torch.cat(new_mean).to(self.running_mean), alpha=mom)
                self.running_var.mul_(1 - mom).add_(torch.cat(new_var).to(self.running_var), alpha=mom)
        return out[0] if len(out) == 1 else torch.cat(out, dim=1)


def sync_equivariant_batchnorm(module: nn.Module, on: bool = True) -> int:
    """Switch the DDP all-reduce of every :class:`EquivariantBatchNorm` in ``module`` on (or
    off); returns how many there are. torch's ``SyncBatchNorm`` conversion (Lightning's
    ``sync_batchnorm``) only knows torch's own batch norms."""
    layers = [m for m in module.modules() if isinstance(m, EquivariantBatchNorm)]
    for m in layers:
        m.sync = bool(on)
    return len(layers)


def _field_index(Rs) -> torch.Tensor:
    """Channel → field index, ``(C,)`` long."""
    idx, f = [], 0
    for m, l in normalize_rs(Rs):
        for _ in range(m):
            idx += [f] * (2 * l + 1)
            f += 1
    return torch.tensor(idx, dtype=torch.long)


class CapsuleDropout(nn.Module):
    """Drops whole fields ("capsules", se3cnn ``SE3Dropout``): in training each field of each
    sample is kept with probability ``1 − p`` (one mask per sample and field, shared by all its
    components and voxels) and scaled by ``1/(1 − p)``; identity in eval mode. A field is
    multiplied by a scalar, so equivariance holds for any fixed mask."""

    def __init__(self, Rs, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"CapsuleDropout: p must be in [0, 1], got {p}")
        self.Rs = normalize_rs(Rs)
        self.p = float(p)
        self.register_buffer("field_index", _field_index(self.Rs), persistent=False)

    def extra_repr(self) -> str:
        return f"{rs_str(self.Rs)}, p={self.p}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_channels(x, self.Rs, "CapsuleDropout")
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return x * 0
        keep = torch.empty(x.shape[0], rs_fields(self.Rs), device=x.device, dtype=x.dtype)
        keep.bernoulli_(1 - self.p).div_(1 - self.p)
        return x * keep[:, self.field_index].view(x.shape[0], -1, 1, 1, 1)


# --------------------------------------------------------------------------- gated block
def _split_activation(activation) -> tuple[Activation, Activation]:
    if activation is None:
        return None, None
    if isinstance(activation, tuple):
        if len(activation) != 2:
            raise ValueError("activation must be (scalar_activation, gate_activation)")
        return activation
    return activation, activation


class GatedBlock(nn.Module):
    """Convolution + gated nonlinearity (§4.3; se3cnn ``GatedBlock``).

    One :class:`SteerableConv3d` maps ``Rs_in`` to ``Rs_out`` plus one extra scalar *gate* per
    non-scalar output field. Then scalar fields ``s ← φ(s + b)`` (ReLU), gates ``g ← σ(g + b)``
    (sigmoid), and each non-scalar field ``f_u ← f_u · g_u``; the gates are not output. A scalar
    times a field is equivariant, so the block is. Order of operations (as in se3cnn):

    1. optional :class:`EquivariantBatchNorm` of the *input* without affine parameters
       (``batch_norm=True``; se3cnn ``SE3BNConvolution`` folds exactly this into the kernel);
    2. convolution (biases on scalars and gates, present when an activation is);
    3. gate nonlinearity (``activation=None`` or ``(None, None)`` skips it: a linear block);
    4. stride: with ``lowpass=True`` the convolution runs at stride 1 and the gated output is
       blurred and subsampled by :class:`LowPass3d` (``scale = stride``; se3cnn
       ``smooth_stride``); with ``lowpass=False`` the convolution itself strides.
       ``lowpass_order="before"`` instead blurs the *input* and lets the convolution stride
       (``SteerableConv3d(lowpass_stride=True)``): still a low-pass before subsampling, about
       stride³ times cheaper, but the gate nonlinearity is then not low-passed (used by the
       reduced CPU presets; ``"after"`` is the reference order);
    5. optional :class:`CapsuleDropout` of the output fields (``dropout > 0``).
    """

    def __init__(self, Rs_in, Rs_out, size: int, stride: int = 1, padding: int = 0,
                 lowpass: bool = True, activation=(F.relu, torch.sigmoid),
                 batch_norm: bool = False, bn_momentum: float = 0.1, dropout: float = 0.0,
                 mode: str = "compromise", sigma: float = SIGMA, bias: bool = True,
                 lowpass_order: str = "after"):
        super().__init__()
        if lowpass_order not in ("after", "before"):
            raise ValueError(f"GatedBlock: lowpass_order must be 'after' or 'before', got {lowpass_order!r}")
        self.Rs_in = normalize_rs(Rs_in)
        self.Rs_out = normalize_rs(Rs_out)
        self.scalar_act, self.gate_act = _split_activation(activation)
        n_gates = sum(m for m, l in self.Rs_out if l > 0) if self.gate_act is not None else 0
        self.n_gates = n_gates
        Rs_conv = self.Rs_out + ([(n_gates, 0)] if n_gates else [])
        use_bias = bias and (self.scalar_act is not None or self.gate_act is not None)
        smooth = lowpass and stride > 1 and lowpass_order == "after"
        pre_blur = lowpass and stride > 1 and lowpass_order == "before"
        self.bn = EquivariantBatchNorm(self.Rs_in, momentum=bn_momentum, affine=False) if batch_norm else None
        self.conv = SteerableConv3d(self.Rs_in, Rs_conv, size, stride=1 if smooth else stride,
                                    padding=padding, bias=use_bias, lowpass_stride=pre_blur,
                                    mode=mode, sigma=sigma)
        self.pool = LowPass3d(stride, stride) if smooth else None
        self.dropout = CapsuleDropout(self.Rs_out, dropout) if dropout > 0 else None

    def gate(self, y: torch.Tensor) -> torch.Tensor:
        """Apply the scalar activation and the gates to the conv output (fields + gates)."""
        if self.scalar_act is None and self.gate_act is None:
            return y
        B, sp = y.shape[0], y.shape[2:]
        out_dim = rs_dim(self.Rs_out)
        gates = self.gate_act(y[:, out_dim:]) if self.n_gates else None
        pieces, off, goff = [], 0, 0
        for m, l in self.Rs_out:
            d = 2 * l + 1
            f = y[:, off: off + m * d]
            if l == 0:
                if self.scalar_act is not None:
                    f = self.scalar_act(f)
            elif gates is not None:
                g = gates[:, goff: goff + m]
                f = (f.reshape(B, m, d, *sp) * g.unsqueeze(2)).reshape(B, m * d, *sp)
                goff += m
            pieces.append(f)
            off += m * d
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_channels(x, self.Rs_in, "GatedBlock")
        if self.bn is not None:
            x = self.bn(x)
        y = self.gate(self.conv(x))
        if self.pool is not None:
            y = self.pool(y)
        if self.dropout is not None:
            y = self.dropout(y)
        return y


# --------------------------------------------------------------------------- heads, export
class InvariantPool(nn.Module):
    """Rotation-invariant global pooling ``(B, C, X, Y, Z) → (B, Σ m)``, one number per field:
    the spatial mean of a scalar field, the spatial mean of the point-wise norm ``|f(x)|`` of a
    field with ``l > 0``. Fields in ``Rs`` order."""

    def __init__(self, Rs):
        super().__init__()
        self.Rs = normalize_rs(Rs)

    def extra_repr(self) -> str:
        return rs_str(self.Rs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_channels(x, self.Rs, "InvariantPool")
        B = x.shape[0]
        out, off = [], 0
        for m, l in self.Rs:
            d = 2 * l + 1
            f = x[:, off: off + m * d].reshape(B, m, d, -1)
            out.append(f[:, :, 0].mean(-1) if l == 0 else f.norm(dim=2).mean(-1))
            off += m * d
        return out[0] if len(out) == 1 else torch.cat(out, dim=1)


def export_network(net: nn.Module) -> nn.Module:
    """A deep copy of ``net`` with every :class:`SteerableConv3d` replaced by its
    :meth:`~SteerableConv3d.export` (plain ``nn.Conv3d``), e.g. for deployment without the
    basis machinery (§4.4.3). Other modules (gates, batch norm, pooling) are kept as they are."""
    if isinstance(net, SteerableConv3d):
        return net.export()
    out = copy.deepcopy(net)
    targets = [name for name, mod in out.named_modules() if isinstance(mod, SteerableConv3d)]
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = out.get_submodule(parent_name) if parent_name else out
        parent._modules[child] = parent._modules[child].export()
    return out


__all__ = [
    "LowPass3d", "SteerableConv3d", "EquivariantBatchNorm", "sync_equivariant_batchnorm", "CapsuleDropout",
    "GatedBlock", "InvariantPool", "export_network",
]
