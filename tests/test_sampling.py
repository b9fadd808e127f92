"""The one Sampling type (models/deepsphere/sampling.py): every form parsed and refused with one
message, vertices and counts, the pooling hierarchy, graph defaults and operators; the
datamodules and scripts that take a sampling go through it."""
import numpy as np
import pytest
import torch

from datamodules._common import InputError
from models.deepsphere.graph import (chebyshev_operator, equiangular_graph, equiangular_vectors,
                                     healpix_laplacian, healpix_vectors, icosahedral_laplacian,
                                     icosahedral_vectors)
from models.deepsphere.layers import EquiangularPool, HealpixPool, IcosahedralPool, IcosahedralUnpool
from models.deepsphere.sampling import GRAPH_DEFAULTS, Sampling


@pytest.mark.parametrize("spec, kind, res, n", [("healpix:4", "healpix", 4, 192), ("ico:2", "ico", 2, 162),
                                               ("equiangular:8", "equiangular", 8, 256), (" ico:0 ", "ico", 0, 12)])
def test_parse_name_vertices_and_count(spec, kind, res, n):
    s = Sampling.parse(spec)
    assert (s.kind, s.res, s.name, s.num_vertices) == (kind, res, spec.strip(), n)
    ref = {"healpix": healpix_vectors, "ico": icosahedral_vectors, "equiangular": equiangular_vectors}[kind](res)
    v = s.vertices()
    np.testing.assert_array_equal(v, ref)
    assert v.shape == (n, 3) and not v.flags.writeable and s.vertices() is v
    assert Sampling.parse(s) == s and s.tag == spec.strip().replace(":", "")


@pytest.mark.parametrize("spec, allowed, message", [
    ("ico", ("ico", "healpix"), "unknown sampling 'ico'. Valid values are ico:L, healpix:NSIDE"),
    ("cube:3", ("healpix", "equiangular"), "unknown sampling 'cube:3'. Valid values are healpix:NSIDE, equiangular:B"),
    ("ico:5", ("healpix", "equiangular"), "unknown sampling 'ico:5'"),
    ("healpix:x", ("healpix",), "unknown sampling 'healpix:x'"),
    ("native:3", ("native",), "unknown sampling 'native:3'. Valid values are native"),
    ("healpix:12", ("healpix",), "sampling 'healpix:12': HEALPix Nside must be a power of 2"),
    ("healpix:0", ("healpix",), "HEALPix Nside must be a power of 2"),
    ("equiangular:0", ("equiangular",), "the equiangular bandwidth must be >= 1"),
])
def test_one_validation_one_message(spec, allowed, message):
    with pytest.raises(ValueError, match=message):
        Sampling.parse(spec, allowed)


def test_point_sets_have_no_fixed_vertices():
    s = Sampling.parse("native", ("native",))
    assert s.name == "native" and s.levels(3) == [s] * 4
    with pytest.raises(ValueError, match="no fixed points"):
        s.vertices()
    with pytest.raises(ValueError, match="no fixed points"):
        s.num_vertices


def test_levels_and_their_limits():
    assert [str(s) for s in Sampling.parse("equiangular:8").levels(3)] == \
        ["equiangular:8", "equiangular:4", "equiangular:2", "equiangular:1"]
    assert [str(s) for s in Sampling.parse("ico:3").levels(2)] == ["ico:3", "ico:2", "ico:1"]
    for spec, depth, message in (("ico:2", 3, "cannot be pooled 3 times"), ("healpix:4", 3, "cannot be halved 3 times"),
                                 ("equiangular:6", 2, "cannot be halved 2 times")):
        with pytest.raises(ValueError, match=message):
            Sampling.parse(spec).levels(depth)


def test_pooling_modules_map_a_level_to_the_next():
    for spec, kind in (("healpix:4", HealpixPool), ("ico:2", IcosahedralPool), ("equiangular:4", EquiangularPool)):
        s = Sampling.parse(spec)
        pool, unpool = s.pooling("avg")
        x = torch.randn(2, s.num_vertices, 3)
        assert isinstance(pool, kind)
        y = pool(x)
        assert y.shape == (2, s.coarser().num_vertices, 3) and unpool(y).shape == x.shape
    assert isinstance(Sampling.parse("ico:2").pooling(ico_unpool="interp")[1], IcosahedralUnpool)


def test_graph_defaults_and_operators_are_the_graph_modules():
    assert Sampling.parse("ico:1").graph_defaults() == GRAPH_DEFAULTS["ico"] == (6, "mean_distance")
    assert Sampling.parse("healpix:2").graph_defaults(k=20) == (20, "optimal")
    assert Sampling.parse("points", ("points",)).graph_defaults(kernel_width=0.1) == (5, 0.1)
    pairs = [(Sampling.parse("healpix:2").operator(), healpix_laplacian(2, 8, None, 0, "normalized", "knn", "optimal")),
             (Sampling.parse("healpix:2").operator(graph="v1"), healpix_laplacian(2, 8, None, 0, "normalized", "v1")),
             (Sampling.parse("ico:1").operator(), icosahedral_laplacian(1, 6, "normalized", "mean_distance")),
             (Sampling.parse("equiangular:2").operator(k=4, kernel_width="inverse_distance"),
              chebyshev_operator(equiangular_graph(2, 4, "inverse_distance").W, "normalized")[0])]
    for a, b in pairs:
        assert torch.equal(a.to_dense(), b.to_dense())
    with pytest.raises(ValueError, match="graph must be 'knn'"):
        Sampling.parse("ico:1").operator(graph="v1")
    with pytest.raises(ValueError, match="needs coords"):
        Sampling.parse("points", ("points",)).operator()


def test_benchmarks_parse_through_it():
    from datamodules.climate import parse_sampling as climate_sampling
    from datamodules.shrec17_render import parse_sampling as shrec_sampling
    from datamodules.shrec17 import parse_input

    assert climate_sampling("native").kind == "native" and climate_sampling("healpix:8").num_vertices == 768
    with pytest.raises(InputError, match="^climate: sampling 'healpix:6': HEALPix Nside must be a power of 2$"):
        climate_sampling("healpix:6")
    with pytest.raises(InputError, match="^shrec17: unknown sampling 'ico:3'. Valid values are healpix:NSIDE, equiangular:B$"):
        shrec_sampling("ico:3")
    with pytest.raises(InputError, match="HEALPix Nside must be a power of 2"):
        parse_input("healpix:12")
    assert parse_input("equiangular:16") == {"input": "sphere", "sampling": "equiangular:16"}
