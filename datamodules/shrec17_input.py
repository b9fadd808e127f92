"""What a SHREC'17 grid row's ``setting.input`` names, without torch or Lightning (the runner's
``--list`` checks a grid with it): the samplings of the spherical input, ``voxel:N``, and which
input each model kind needs.
"""
from __future__ import annotations

from datamodules._common import InputError
from models.deepsphere.sampling import FORMS, Sampling

BENCH = "shrec17"
#: the samplings of the spherical input (the networks' vertex order, :mod:`models.deepsphere.sampling`)
SAMPLINGS = ("healpix", "equiangular")


def parse_sampling(spec: str | Sampling) -> Sampling:
    """:meth:`Sampling.parse <models.deepsphere.sampling.Sampling.parse>` of ``healpix:NSIDE``
    (NEST) or ``equiangular:B``; a bad value is this benchmark's :class:`InputError`."""
    try:
        return Sampling.parse(spec, SAMPLINGS)
    except ValueError as e:
        raise InputError(f"{BENCH}: {e}") from None


def parse_input(text: str) -> dict:
    """A grid row's ``setting.input`` → datamodule arguments: ``healpix:32`` / ``equiangular:64``
    (6-channel ray casting on that sampling) or ``voxel:64`` (occupancy grid of that edge)."""
    kind, _, arg = str(text).partition(":")
    if kind == "voxel" and arg.isdigit():
        return {"input": "voxel", "voxel_size": int(arg)}
    if kind in SAMPLINGS:
        return {"input": "sphere", "sampling": parse_sampling(text).name}
    raise InputError(f"shrec17: setting.input {text!r} must be {', '.join(FORMS[k] for k in SAMPLINGS)} or voxel:N")


#: model kinds and the input each needs ("sphere" any sampling, "equiangular" only, "voxel")
NEEDS = {"deepsphere": "sphere", "se3": "voxel", "esteves": "equiangular", "s2cnn": "equiangular"}


def check_input(kind: str | None, text: str | None, row: str) -> dict:
    """A grid row's ``setting.input`` checked against what its model kind needs (:data:`NEEDS`)."""
    if text is None:
        raise InputError(f"config grid row {row}: setting.input is required (healpix:32, equiangular:64 or voxel:64)")
    inp, need = parse_input(text), NEEDS.get(kind)
    if need == "voxel" and inp["input"] != "voxel" or need in ("sphere", "equiangular") and inp["input"] != "sphere" \
            or need == "equiangular" and parse_sampling(inp["sampling"]).kind != "equiangular":
        raise InputError(f"config grid row {row}: model kind {kind!r} needs {need} input, setting.input is {text!r}")
    return inp
