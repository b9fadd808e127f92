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
from models.deepsphere.equivariance import (degree_signal, equivariance_ratios, graph_laplacian,
                                            rotate_nest)
from models.deepsphere.graph import (LAPLACIANS, OPTIMAL_SIGMA, SphereGraph, chebyshev_operator,
                                     clear_graph_cache, equiangular_graph, equiangular_vectors,
                                     healpix_graph, healpix_graph_v1, healpix_laplacian,
                                     healpix_pixels, healpix_rotation_permutation,
                                     healpix_vectors, icosahedral_graph, icosahedral_hierarchy,
                                     icosahedral_laplacian, icosahedral_size, icosahedral_vectors,
                                     knn_edges, knn_graph, laplacian, largest_eigenvalue,
                                     lonlat_vectors, optimal_kernel_width, points_graph,
                                     rescale_laplacian, resolve_lmax, to_torch_sparse)
from models.deepsphere.healpix import nest_image_index, nest_xy
from models.deepsphere.layers import (ChebConv, EquiangularPool, EquiangularUnpool, GlobalAvgPool,
                                      HealpixPool, HealpixUnpool,
                                      IcosahedralPool, IcosahedralUnpool, SphereBatchNorm, sym_spmm)
from models.deepsphere.nets import DeepSphereCNN, DeepSphereFCN
from models.deepsphere.unet import (JIANG_ENCODER, PAPER_ENCODER, DeepSphereUNet, count_parameters,
                                    paper_unet, sphere_levels)

__all__ = [
    "LAPLACIANS", "OPTIMAL_SIGMA", "SphereGraph", "chebyshev_operator", "clear_graph_cache",
    "equiangular_graph", "equiangular_vectors", "healpix_graph", "healpix_graph_v1",
    "healpix_laplacian", "healpix_pixels", "healpix_rotation_permutation", "healpix_vectors",
    "icosahedral_graph", "icosahedral_hierarchy", "icosahedral_laplacian", "icosahedral_size",
    "icosahedral_vectors", "knn_edges", "knn_graph", "laplacian",
    "largest_eigenvalue", "lonlat_vectors", "optimal_kernel_width", "points_graph",
    "rescale_laplacian", "resolve_lmax", "to_torch_sparse",
    "ChebConv", "EquiangularPool", "EquiangularUnpool", "GlobalAvgPool", "HealpixPool", "HealpixUnpool", "IcosahedralPool",
    "IcosahedralUnpool", "SphereBatchNorm", "sym_spmm",
    "DeepSphereCNN", "DeepSphereFCN",
    "DeepSphereUNet", "JIANG_ENCODER", "PAPER_ENCODER", "count_parameters", "paper_unet", "sphere_levels",
    "degree_signal", "equivariance_ratios", "graph_laplacian", "rotate_nest",
    "nest_image_index", "nest_xy",
]
