"""DeepSphere: graph-based spherical CNNs in plain ``torch.nn``.

Papers: Perraudin, Defferrard, Kacprzak, Sgier, Astron. & Comput. 27:130 (2019) ("V1",
cosmology); Defferrard, Milani, Gusset, Perraudin, ICLR 2020 ("V2" k-NN graphs, equivariance
error). Modules: :mod:`.graph` (samplings, k-NN / V1 graphs, optimal kernel widths, Laplacians,
Chebyshev rescaling, HEALPix rotation permutations), :mod:`.layers` (``ChebConv``, HEALPix
pooling/unpooling, batch norm, global pooling), :mod:`.nets` (``DeepSphereFCN``,
``DeepSphereCNN``), :mod:`.unet` (``DeepSphereUNet``, climate segmentation on icosahedral,
HEALPix or point-set samplings; icosahedral pooling in :mod:`.layers`), :mod:`.equivariance` (the ICLR equivariance-error figure: degree-ℓ signals,
harmonic rotation of NEST maps, ratios ``‖RLf − LRf‖/‖Lf‖``), :mod:`.healpix` (NEST face
coordinates: a base-pixel patch as an image). Tensors are ``(B, V, F)``;
HEALPix vertices are in NESTED order.
"""
#: where each name lives: imported from its module when first read (PEP 562), so that a light
#: module such as :mod:`.sampling` (numpy only) is imported without torch (the runner's --list)
_HOME = {
    **dict.fromkeys(('degree_signal', 'equivariance_ratios', 'graph_laplacian', 'rotate_nest'), 'equivariance'),
    **dict.fromkeys(('LAPLACIANS', 'OPTIMAL_SIGMA', 'SphereGraph', 'chebyshev_operator', 'clear_graph_cache',
                     'equiangular_graph', 'equiangular_vectors', 'healpix_graph', 'healpix_graph_v1',
                     'healpix_laplacian', 'healpix_pixels', 'healpix_rotation_permutation', 'healpix_vectors',
                     'icosahedral_graph', 'icosahedral_hierarchy', 'icosahedral_laplacian', 'icosahedral_size',
                     'icosahedral_vectors', 'knn_edges', 'knn_graph', 'laplacian', 'largest_eigenvalue',
                     'lonlat_vectors', 'optimal_kernel_width', 'points_graph', 'rescale_laplacian', 'resolve_lmax',
                     'to_torch_sparse'), 'graph'),
    **dict.fromkeys(('nest_image_index', 'nest_xy'), 'healpix'),
    **dict.fromkeys(('ChebConv', 'EquiangularPool', 'EquiangularUnpool', 'GlobalAvgPool', 'HealpixPool', 'HealpixUnpool',
                     'IcosahedralPool', 'IcosahedralUnpool', 'SphereBatchNorm', 'sym_spmm'), 'layers'),
    **dict.fromkeys(('DeepSphereCNN', 'DeepSphereFCN'), 'nets'),
    **dict.fromkeys(('JIANG_ENCODER', 'PAPER_ENCODER', 'DeepSphereUNet', 'count_parameters', 'paper_unet',
                     'sphere_levels'), 'unet'),
}

__all__ = list(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_HOME))
