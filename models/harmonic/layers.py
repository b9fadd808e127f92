"""Layers of Harmonic Networks: harmonic convolution, C-ReLU, magnitude batch norm, mean
pooling and the invariant magnitude head.

Paper: Worrall, Garbin, Turmukhambetov & Brostow 2017, *Harmonic Networks: Deep Translation and
Rotation Equivariance* (CVPR), §3 (circular-harmonic filters, chained rotation orders, C-ReLU),
§4 / Fig. 6 (polar filters resampled onto the pixel grid). Reference implementation:
``danielewworrall/harmonicConvolutions`` (``harmonic_network_ops.py``, ``harmonic_network_lite.py``).

**Feature layout.** A feature map with rotation orders ``orders = (m_1, …, m_M)`` and ``C``
complex channels per order is a *real* tensor ``(B, M·2·C, H, W)`` laid out order-major, then
(real, imaginary), then channel: channel index ``(a·2 + p)·C + c`` holds part ``p`` (0 = Re,
1 = Im) of channel ``c`` of order ``orders[a]``. :func:`to_complex` / :func:`from_complex`
convert to and from a complex tensor ``(B, M, C, H, W)``. A real input image is order 0 with no
imaginary part: ``(B, C, H, W)`` and ``real_input=True``.

**Coordinates and rotation.** Tensor index ``(i, j)`` (row, column) of an ``n``-pixel axis has
plane coordinates ``(x, y) = (j − c, c − i)``, ``c = (n − 1)/2`` (x right, y up). ``(rθ·f)(p) =
f(rθ⁻¹ p)`` rotates a map counter-clockwise by θ about the grid centre; for θ = 90° this is
``torch.rot90(f, 1, dims=(-2, -1))`` exactly.

**Equivariance (paper eqs. 1–7, 8–11).** A filter ``W_m(r, φ) = R(r) e^{i(mφ + β)}`` satisfies
``W_m(rθ q) = e^{imθ} W_m(q)``, so cross-correlation maps an order-``k`` input to an order
``k + m`` output: ``[W_m ⋆ (e^{ikθ} rθ·F)] = e^{i(k+m)θ} rθ·[W_m ⋆ F]``. Every layer here maps a
map ``F`` whose order-``m`` part transforms as ``F_m ↦ e^{imθ} rθ·F_m`` to one with the same
law. C-ReLU and batch norm act on magnitudes, which are rotation invariant, and keep phases.

**Exactness condition.** On the pixel grid the law holds *exactly* (to float round-off) for
θ ∈ {90°, 180°, 270°} when (i) the filter's polar samples form a set closed under 90° turns —
``n_angles`` divisible by 4 (checked) — and the kernel size is odd, so that the pixel grid of the
filter is symmetric about its centre pixel; (ii) padding is symmetric (``padding = k//2``); (iii)
each 2×2 mean pooling sees an even-sized map, so its windows are permuted among themselves by
the turn (28 → 14 → 7 for MNIST). For other angles the resampled filters are only approximately
steerable and the input grid itself must be interpolated; that error is measured, not asserted.

>>> import torch
>>> conv = HConv2d(1, 8, 5, in_orders=(0,), out_orders=(0, 1), real_input=True)
>>> conv(torch.randn(2, 1, 28, 28)).shape  # 2 orders x (Re, Im) x 8 channels
torch.Size([2, 32, 28, 28])
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: Gaussian resampling bandwidth in pixels (reference ``get_interpolation_weights``: 0.5)
BANDWIDTH = 0.5


def default_n_angles(kernel_size: int) -> int:
    """Polar samples per ring: the reference's ``max(⌈πk⌉, 101)`` rounded up to a multiple of
    4, so the sample set is closed under 90° turns (exactness condition (i))."""
    n = max(math.ceil(math.pi * kernel_size), 101)
    return 4 * math.ceil(n / 4)


def ring_radii(m: int, n_rings: int) -> np.ndarray:
    """Ring radii in pixels, ``linspace(1 if m ≠ 0 else 0, n_rings − ½, n_rings)`` (reference
    ``get_interpolation_weights``): orders m ≠ 0 have no ring at the centre, where e^{imφ} is
    undefined."""
    return np.linspace(1.0 if m != 0 else 0.0, n_rings - 0.5, n_rings)


@lru_cache(maxsize=None)
def _ring_basis_np(kernel_size: int, m: int, n_rings: int, n_angles: int,
                   bandwidth: float) -> np.ndarray:
    k = kernel_size
    c = (k - 1) / 2.0
    jj, ii = np.meshgrid(np.arange(k), np.arange(k))
    px = (jj - c).reshape(-1)            # x of each pixel centre
    py = (c - ii).reshape(-1)            # y (up) of each pixel centre
    phi = 2 * np.pi * np.arange(n_angles) / n_angles
    out = np.zeros((n_rings, k * k), dtype=np.complex128)
    for r_idx, r in enumerate(ring_radii(m, n_rings)):
        sx, sy = r * np.cos(phi), r * np.sin(phi)                        # samples on the ring
        d2 = (px[None, :] - sx[:, None]) ** 2 + (py[None, :] - sy[:, None]) ** 2
        g = np.exp(-0.5 * d2 / bandwidth ** 2)
        g /= g.sum(axis=1, keepdims=True)                                # unit mass per sample
        out[r_idx] = (np.exp(1j * m * phi)[:, None] * g).mean(axis=0)   # DFT at frequency m
    return out.reshape(n_rings, k, k)


def ring_basis(kernel_size: int, m: int, n_rings: int, n_angles: int | None = None,
               bandwidth: float = BANDWIDTH) -> torch.Tensor:
    """The order-``m`` polar basis ``B_{m,r}(q)``, complex ``(n_rings, k, k)`` float64 (Fig. 6).

    ``B_{m,r}(q) = (1/N) Σ_j e^{imφ_j} g(q; r·u(φ_j))`` with ``u(φ) = (cos φ, sin φ)``,
    ``φ_j = 2πj/N`` and ``g(q; s) ∝ exp(−|q − s|²/2σ²)`` normalised over the k×k pixel centres
    for each sample ``s`` (Gaussian resampling of the ring onto the grid, σ = ``bandwidth``).
    Then ``B_{m,r}(rθ q) = e^{imθ} B_{m,r}(q)`` exactly for θ a multiple of 2π/N on a grid
    symmetric under θ, hence for quarter turns when 4 | N and k is odd. The reference takes an
    unnormalised DFT (no 1/N); the scale is absorbed by the initialisation of :class:`HConv2d`.
    """
    n = default_n_angles(kernel_size) if n_angles is None else int(n_angles)
    return torch.from_numpy(_ring_basis_np(int(kernel_size), int(m), int(n_rings), n, float(bandwidth)))


# --------------------------------------------------------------------------- layout helpers
def to_complex(x: torch.Tensor, n_orders: int) -> torch.Tensor:
    """``(B, M·2·C, H, W)`` real → ``(B, M, C, H, W)`` complex."""
    b, ch, h, w = x.shape
    if ch % (2 * n_orders):
        raise ValueError(f"to_complex: {ch} channels are not a multiple of 2 x {n_orders} orders")
    z = x.reshape(b, n_orders, 2, ch // (2 * n_orders), h, w)
    return torch.complex(z[:, :, 0], z[:, :, 1])


def from_complex(z: torch.Tensor) -> torch.Tensor:
    """``(B, M, C, H, W)`` complex → ``(B, M·2·C, H, W)`` real (inverse of :func:`to_complex`)."""
    b, m, c, h, w = z.shape
    return torch.stack([z.real, z.imag], dim=2).reshape(b, m * 2 * c, h, w)


def rotate_features(x: torch.Tensor, k: int, orders: Sequence[int] | None = None) -> torch.Tensor:
    """Act by a turn of ``k``·90° on a feature map: ``F_m ↦ e^{imθ} rθ·F_m``, θ = kπ/2.

    ``orders=None`` means a real (order-0, invariant) map, which is only rotated.
    """
    y = torch.rot90(x, k, dims=(-2, -1))
    if orders is None:
        return y
    z = to_complex(y, len(orders))
    phase = torch.tensor([1j ** (k * m) for m in orders], dtype=z.dtype, device=z.device)
    return from_complex(z * phase.view(1, -1, 1, 1, 1))


def _magnitude(x: torch.Tensor, n_orders: int, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(z as (B, M, 2, C, H, W), |z|_ε = √(Re² + Im² + ε) as (B, M, 1, C, H, W))``."""
    b, ch, h, w = x.shape
    z = x.reshape(b, n_orders, 2, ch // (2 * n_orders), h, w)
    return z, torch.sqrt(z.square().sum(dim=2, keepdim=True) + eps)


def _check(name: str, x: torch.Tensor, expected: int, what: str) -> None:
    if x.dim() != 4 or x.shape[1] != expected:
        raise ValueError(f"{name}: expected input (B, {expected}, H, W) ({what}), "
                         f"got {tuple(x.shape)}")


# --------------------------------------------------------------------------- convolution
class HConv2d(nn.Module):
    """Harmonic convolution between rotation-order streams (paper §3.1–3.2, eq. 2 and Fig. 2).

    For each output order ``m_out`` and input order ``m_in`` the filter has order
    ``f = m_out − m_in`` (orders add along a chain, §3.2)::

        W_f[o, i](q) = Σ_r R_{|f|}[o, i, r] B_{|f|, r}(q) · e^{iβ_{|f|}[o, i]}    (f ≥ 0)
        W_f = conj(W_{|f|})                                                          (f < 0)

        Y_{m_out}[o] = Σ_{m_in} Σ_i W_{m_out − m_in}[o, i] ⋆ X_{m_in}[i]         (complex)

    with a radial profile ``R`` learned per ring and a phase offset ``β`` learned per
    (output, input, |f|) — as in the reference, where negative orders use the conjugate filter.
    The complex cross-correlation is one real ``F.conv2d`` of the stacked (Re, Im) channels with
    the real block filter ``[[Re W, −Im W], [Im W, Re W]]`` (``[[Re W], [Im W]]`` for a real
    input), assembled from the precomputed bases :func:`ring_basis` by a broadcast product and
    concatenations of views.

    Args:
        in_channels, out_channels: complex channels *per order*.
        kernel_size: odd filter size (5 in the paper's MNIST model).
        in_orders, out_orders: rotation orders of the input and output streams.
        n_rings: radial rings (``k//2`` by default as in the reference; 4 for MNIST-rot).
        phase: learn ``β`` (the reference's last layer has ``phase=False``).
        real_input: the input is a real order-0 image ``(B, C, H, W)``.
        n_angles: polar samples per ring, a multiple of 4 (:func:`default_n_angles`).
        init: ``"fan_in"`` draws the radial weights ``N(0, init_gain² / fan_in)`` with ``fan_in``
            the summed energy of the assembled filters feeding one real output (He-style, so that
            ``Var Re y ≈ gain²·Var x``), on the basis with the 1/N of :func:`ring_basis`.
            ``"reference"`` is the reference's parameterisation (``harmonic_network_ops``
            ``get_weights`` / ``get_filters``): the basis without 1/N (its DFT is unnormalised, so
            the basis is N × :func:`ring_basis`) and radial weights ``N(0, (0.4·√(2 / (rings·in·out)))²)``
            (``std_mult`` 0.4, the ``conv2d`` default its MNIST model uses). The two give the same
            family of filters; under Adam the parameter scale sets the relative step ``lr/σ``.
        init_gain: the gain of ``"fan_in"``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5,
                 in_orders: Sequence[int] = (0, 1), out_orders: Sequence[int] = (0, 1),
                 n_rings: int | None = None, phase: bool = True, real_input: bool = False,
                 padding: int | None = None, n_angles: int | None = None,
                 bandwidth: float = BANDWIDTH, init_gain: float = math.sqrt(2.0), init: str = "fan_in"):
        super().__init__()
        if init not in ("fan_in", "reference"):
            raise ValueError(f"HConv2d: init must be 'fan_in' or 'reference', got {init!r}")
        if kernel_size % 2 != 1:
            raise ValueError(f"HConv2d: kernel_size must be odd, got {kernel_size}")
        n_angles = default_n_angles(kernel_size) if n_angles is None else int(n_angles)
        if n_angles % 4:
            raise ValueError(f"HConv2d: n_angles must be a multiple of 4 (exact quarter turns), "
                             f"got {n_angles}")
        self.in_orders, self.out_orders = tuple(int(m) for m in in_orders), tuple(int(m) for m in out_orders)
        if real_input and self.in_orders != (0,):
            raise ValueError("HConv2d: a real input must be the single order 0")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.real_input = int(kernel_size), bool(real_input)
        self.padding = kernel_size // 2 if padding is None else int(padding)
        self.n_rings = max(1, kernel_size // 2) if n_rings is None else int(n_rings)
        self.filter_orders = sorted({abs(o - i) for o in self.out_orders for i in self.in_orders})
        na = len(self.filter_orders)

        basis = torch.stack([ring_basis(kernel_size, m, self.n_rings, n_angles, bandwidth)
                             for m in self.filter_orders])                  # (na, rings, k, k)
        # (na, 1, 1, rings, 2·k·k): real parts then imaginary parts, ready to broadcast
        if init == "reference":  # the reference's unnormalised DFT over the N ring samples
            basis = basis * n_angles
        flat = torch.cat([basis.real.flatten(2), basis.imag.flatten(2)], dim=2)
        self.register_buffer("basis", flat.float()[:, None, None], persistent=False)

        self.radial = nn.Parameter(torch.empty(na, out_channels, in_channels, self.n_rings))
        self.phase = nn.Parameter(torch.empty(na, out_channels, in_channels)) if phase else None
        # energy of one ring's filter, summed over the filters feeding one output (He-style fan-in)
        energy = (basis.abs() ** 2).sum(dim=(-2, -1)).mean(dim=1)          # (na,)
        idx = {m: a for a, m in enumerate(self.filter_orders)}
        # Var Re(y) = σ² · Σ_inputs Σ_r ‖B_r‖² (halved for a real input: only Re W acts)
        fan = np.mean([sum(float(energy[idx[abs(o - i)]]) for i in self.in_orders)
                       for o in self.out_orders])
        fan *= in_channels * self.n_rings * (0.5 if real_input else 1.0)
        self.init = init
        if init == "reference":  # get_weights: std_mult · √(2 / prod([n_rings, in, out]))
            self._init_std = 0.4 * math.sqrt(2.0 / (self.n_rings * in_channels * out_channels))
        else:
            self._init_std = float(init_gain) / math.sqrt(max(fan, 1e-12))
        self.reset_parameters()

        # block layout: for output (order a, part p) and input (order b, part q) the source filter
        # ("re" | "im" | "-im", filter-order slot t). (y_re, y_im) = [[Re W, -Im W], [Im W, Re W]]
        # (x_re, x_im); a negative filter order uses conj(W): Im -> -Im.
        layout: list[list[tuple[str, int]]] = []
        for mo in self.out_orders:
            for p in (0, 1):
                row = []
                for mn in self.in_orders:
                    f = mo - mn
                    t = idx[abs(f)]
                    im, neg_im = ("im", "-im") if f >= 0 else ("-im", "im")
                    if real_input:
                        row.append(("re", t) if p == 0 else (im, t))
                    else:
                        row += [("re", t), (neg_im, t)] if p == 0 else [(im, t), ("re", t)]
                layout.append(row)
        self._layout = layout

    def reset_parameters(self) -> None:
        nn.init.normal_(self.radial, 0.0, self._init_std)
        if self.phase is not None:
            nn.init.uniform_(self.phase, 0.0, 2 * math.pi)   # U[0, 2π) as in the reference

    @property
    def in_real_channels(self) -> int:
        return self.in_channels * len(self.in_orders) * (1 if self.real_input else 2)

    @property
    def out_real_channels(self) -> int:
        return self.out_channels * len(self.out_orders) * 2

    def complex_filters(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(Re W_|f|, Im W_|f|)`` for each filter order in :attr:`filter_orders`, each
        ``(n_orders, out, in, k, k)``.

        Σ_r R[.., r]·B_r as a broadcast product and a sum (not ``einsum``/``bmm``): the tensors
        are small, and element-wise kernels stay single-threaded below PyTorch's grain size
        where a threaded BLAS call pays a thread wake-up on a busy machine."""
        k = self.kernel_size
        w = (self.radial.unsqueeze(-1) * self.basis).sum(dim=3)       # (na, out, in, 2·k·k)
        w_re, w_im = w[..., :k * k], w[..., k * k:]
        if self.phase is not None:  # multiply by e^{iβ}
            c, s = torch.cos(self.phase).unsqueeze(-1), torch.sin(self.phase).unsqueeze(-1)
            w_re, w_im = c * w_re - s * w_im, s * w_re + c * w_im
        shape = w_re.shape[:3] + (k, k)
        return w_re.reshape(shape), w_im.reshape(shape)

    def weight(self) -> torch.Tensor:
        """The real block filter ``(out_real_channels, in_real_channels, k, k)``, assembled by
        concatenating views of ``Re W``, ``Im W`` and ``−Im W`` (no gather)."""
        w_re, w_im = self.complex_filters()
        parts = {"re": w_re, "im": w_im, "-im": -w_im}
        rows = [torch.cat([parts[name][t] for name, t in row], dim=1) for row in self._layout]
        return torch.cat(rows, dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check("HConv2d", x, self.in_real_channels,
               f"{len(self.in_orders)} orders x {'1' if self.real_input else '(Re, Im)'} x "
               f"{self.in_channels} channels")
        return F.conv2d(x, self.weight(), padding=self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"orders={self.in_orders}->{self.out_orders}, n_rings={self.n_rings}, "
                f"phase={self.phase is not None}, real_input={self.real_input}")


# --------------------------------------------------------------------------- nonlinearities
class CReLU(nn.Module):
    """C-ReLU on magnitudes (paper §3.3): ``z ↦ ReLU(|z| + b) · z/|z|``, a bias ``b`` per order
    and channel. ``|z|`` is regularised as ``|z|_ε = √(|z|² + ε)`` (reference ``eps=1e-4``) so
    the map is 0 at ``z = 0`` with finite gradients. Magnitudes are rotation invariant, so the
    phase law ``F_m ↦ e^{imθ} rθ·F_m`` is kept.
    """

    def __init__(self, channels: int, orders: Sequence[int] = (0, 1), eps: float = 1e-4):
        super().__init__()
        self.orders, self.channels, self.eps = tuple(orders), int(channels), float(eps)
        m = len(self.orders)
        self.bias = nn.Parameter(torch.empty(m, channels))
        # TF's default get_variable initialiser on the reference's shape (…, M, 1, C): Glorot uniform
        bound = math.sqrt(6.0 / (m + m * channels))
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = len(self.orders)
        _check("CReLU", x, m * 2 * self.channels, f"{m} orders x (Re, Im) x {self.channels}")
        z, mag = _magnitude(x, m, self.eps)
        scale = F.relu(mag + self.bias.view(1, m, 1, self.channels, 1, 1)) / mag
        return (z * scale).reshape(x.shape)


class HBatchNorm(nn.Module):
    """Batch norm of magnitudes then ReLU, phases kept (reference ``h_batch_norm``):
    ``z ↦ ReLU(BN(|z|_ε)) · z/|z|_ε``, statistics per (order, channel) over batch and space,
    moving-average decay 0.99 (``momentum=0.01``), BN epsilon 1e-3."""

    def __init__(self, channels: int, orders: Sequence[int] = (0, 1), eps: float = 1e-4,
                 momentum: float = 0.01, bn_eps: float = 1e-3):
        super().__init__()
        self.orders, self.channels, self.eps = tuple(orders), int(channels), float(eps)
        self.bn = nn.BatchNorm2d(len(self.orders) * channels, eps=bn_eps, momentum=momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = len(self.orders)
        _check("HBatchNorm", x, m * 2 * self.channels, f"{m} orders x (Re, Im) x {self.channels}")
        z, mag = _magnitude(x, m, self.eps)
        b, _, _, c, h, w = mag.shape
        normed = F.relu(self.bn(mag.reshape(b, m * c, h, w))).reshape(mag.shape)
        return (z * (normed / mag)).reshape(x.shape)


class HMeanPool2d(nn.Module):
    """Complex mean pooling ``mean(Re) + i·mean(Im)`` over ``size×size`` windows (reference
    ``mean_pooling``). Exact under quarter turns when the map's side is a multiple of ``size``."""

    def __init__(self, size: int = 2):
        super().__init__()
        self.size = int(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, self.size, self.size)


class MagnitudeHead(nn.Module):
    """Invariant read-out (reference ``sum_magnitudes`` + ``reduce_mean``): per channel the sum
    over orders of ``|z|_ε``, averaged over space, plus a bias (initialised 0.01):
    ``logit_c = mean_{x,y} Σ_m |F_m[c](x, y)| + b_c``."""

    def __init__(self, channels: int, orders: Sequence[int] = (0, 1), eps: float = 1e-4,
                 bias_init: float = 1e-2):
        super().__init__()
        self.orders, self.channels, self.eps = tuple(orders), int(channels), float(eps)
        self.bias = nn.Parameter(torch.full((channels,), float(bias_init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = len(self.orders)
        _check("MagnitudeHead", x, m * 2 * self.channels, f"{m} orders x (Re, Im) x {self.channels}")
        _, mag = _magnitude(x, m, self.eps)
        return mag.sum(dim=(1, 2)).mean(dim=(-2, -1)) + self.bias
