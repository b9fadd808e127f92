"""What a climate config names, without torch or Lightning (the runner's ``--list`` checks a grid
with it): the segmentation classes and the samplings a model runs on.
"""
from __future__ import annotations

from datamodules._common import InputError
from models.deepsphere.sampling import Sampling

BENCH = "climate"
CLASSES = ("BG", "TC", "AR")  # 0, 1, 2 (deepsphere-pytorch logs ap[1] as TC, ap[2] as AR)

#: the samplings a climate model runs on (``native``: each file's own points, kept as they are)
SAMPLINGS = ("ico", "healpix", "equiangular", "native")


def parse_sampling(spec: str | Sampling) -> Sampling:
    """:meth:`Sampling.parse <models.deepsphere.sampling.Sampling.parse>` of ``ico:L``,
    ``healpix:NSIDE``, ``equiangular:B`` or ``native``; a bad value is this benchmark's
    :class:`InputError`.

    >>> parse_sampling("healpix:32").name, parse_sampling("ico:5").vertices().shape
    ('healpix:32', (10242, 3))
    """
    try:
        return Sampling.parse(spec, SAMPLINGS)
    except ValueError as e:
        raise InputError(f"{BENCH}: {e}") from None
