"""Segment CAM5 / ClimateNet netCDF files with a trained network, writing the result on each input's
own grid: what ``reproduce/climate.py --predict CKPT --data-dir IN --out OUT`` runs, beside the reader
of those files (:mod:`datamodules.climate`). The checkpoint side (its config, its weights, the
network they build) is the runner's (:func:`reproduce.runner.evaluate.load_weights`); this module
gets the network as a callable and never reads a checkpoint.

For every ``IN/*.nc`` (regular ``(time, lat, lon)`` or unstructured ``ncol`` columns, read by
:func:`datamodules.cam5.open_cam5`: reversed latitudes, either longitude convention, fill
values, several time steps), ``OUT/<same name>`` holds

* ``LABELS`` (int32, 0 BG, 1 TC, 2 AR), dims as the input's fields: ``([time,] lat, lon)`` or
  ``([time,] ncol)``;
* ``PROBABILITIES`` (float32), dims ``([time,] class, lat, lon)`` / ``([time,] class, ncol)``, the
  class probabilities (``class`` = 0, 1, 2; they sum to 1 at every point); ``LABELS`` is their argmax;
* the input's ``time`` / ``lat`` / ``lon`` variables (values, in the file's order, and attributes)
  and its global attributes, plus ``prediction_*`` attributes saying which checkpoint, sampling and
  interpolation produced it.

The model runs on the sampling it was trained on (the run's ``setting.sampling`` in the
checkpoint's ``config.yaml``; nothing of the training data is needed): fields are interpolated
onto it exactly as for training (:func:`datamodules.cam5.interpolator_for`) and normalised with
the published statistics; the class probabilities come back onto the input points by inverse-
distance weighting over the 4 nearest sampling vertices (:func:`datamodules.cam5.idw_points`, a
convex combination). A model trained on ``native`` columns instead runs on each file's own
columns, its graph built on them (``net_for(coords)``: ``DeepSphereUNet("points", coords=...)``),
with no interpolation.

Every input is checked before any output is written (:func:`check_inputs`: layout, units, every
step read); unusable files are all named in one error, a line each, and nothing is written. Each
output is written to a temporary name and renamed into place.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from datamodules._common import InputError, atomic_path
from datamodules.cam5 import _quiet, idw_points, interpolator_for, netcdf_files, open_cam5
from datamodules.climate import CLASSES, VARIABLES, normalize
from models.deepsphere.graph import lonlat_vectors

#: ``net_for(coords)``: the trained network in eval mode on the device, for the sampling it was trained
#: on (``coords`` None) or, for a model trained on native columns, built on a file's own ``coords``
NetFor = Callable[[Optional[np.ndarray]], Any]


def output_points(ds, grid: str) -> np.ndarray:
    """Unit vectors of the input's points in the file's own order: (lat, lon) flattened, or ncol."""
    lat = np.asarray(ds["lat"].values, np.float64)
    lon = np.asarray(ds["lon"].values, np.float64) % 360.0  # −180…180 and 0…360 give the same vectors
    if grid == "latlon":
        lo, la = np.meshgrid(lon, lat)
        return lonlat_vectors(lo.ravel(), la.ravel())
    return lonlat_vectors(lon, lat)


def predict(net_for: NetFor, samp, ckpt: Path, model: str, data_dir: Path, out_dir: Path,
            device: str = "cpu") -> list[Path]:
    """Segment every ``data_dir/*.nc`` with the network of ``net_for`` (trained on sampling ``samp``,
    from checkpoint ``ckpt``, described as ``model`` in the outputs' attributes); all inputs are
    checked first (:func:`check_inputs`), so a bad file stops the command before any output is
    written; each output is written atomically."""
    data_dir, out_dir = Path(data_dir).expanduser().resolve(), Path(out_dir).expanduser().resolve()
    if not data_dir.is_dir():
        raise InputError(f"--predict: --data-dir {data_dir} is not a directory")
    files = netcdf_files(data_dir)
    if not files:
        raise InputError(f"--predict: {data_dir} holds no netCDF files (*.nc)")
    if out_dir == data_dir:
        raise InputError("--predict: --out must differ from --data-dir (the outputs keep the input names)")
    checked = check_inputs(files, samp)  # every file, before anything is written
    out_dir.mkdir(parents=True, exist_ok=True)
    net = None if samp.kind == "native" else net_for(None)
    written: list[Path] = []
    for path, f, into in checked:
        try:
            written.append(_segment(net_for, samp, net, ckpt, model, path, f, into, out_dir, device))
        except OSError as e:
            left = [p.name for p, _, _ in checked[len(written):]]
            raise InputError(f"--predict: writing {out_dir / path.name} failed ({e.strerror or e}); "
                             f"{len(written)} file(s) written before it, not written: {', '.join(left)}") from None
    return written


def check_inputs(files: list[Path], samp) -> list[tuple]:
    """``[(path, Cam5File, interpolator)]``: every input opened, its layout, units and every step
    read and checked, before any output is written. Every unusable file is named in one
    :class:`InputError` (a line per file), so a folder is fixed in one go and never half done."""
    checked, failures = [], []
    for path in files:
        try:
            f = open_cam5(path)
            if samp.kind == "native":
                if f.grid != "points":
                    raise InputError(f"{path}: the model was trained on native (ncol) columns; this file "
                                     f"is on a lat/lon grid")
                into = idw_points(f.vectors(), f.vectors(), k=1)  # the identity; a missing value takes the nearest
            else:
                into = interpolator_for(f, samp)
            for t in range(f.n_time):
                f.read_step(t, require_labels=False)
            checked.append((path, f, into))
        except InputError as e:
            failures.append(str(e))
    if failures:
        if len(failures) == 1 and len(files) == 1:
            raise InputError(f"--predict: {failures[0]}; nothing was written")
        raise InputError(f"--predict: {len(failures)} of {len(files)} input files cannot be segmented; nothing "
                         f"was written:\n" + "\n".join(f"  {m}" for m in failures))
    return checked


def _segment(net_for: NetFor, samp, net, ckpt, model: str, path, f, into, out_dir, device) -> Path:
    """Segment one checked file and write ``out_dir/<name>`` atomically."""
    import torch
    import xarray as xr

    if samp.kind == "native":
        net = net_for(f.vectors())
    with _quiet(), xr.open_dataset(path, engine="netcdf4", decode_times=False) as ds:
        pts = output_points(ds, f.grid)
        back = idw_points(f.vectors() if samp.kind == "native" else samp.vertices(), pts, k=4)
        space = ("lat", "lon") if f.grid == "latlon" else ("ncol",)
        shape = tuple(ds.sizes[d] for d in space)
        timed = "time" in ds[VARIABLES[0]].dims
        coords = {c: (ds[c].dims, ds[c].values, dict(ds[c].attrs)) for c in ("time", "lat", "lon")
                  if c in ds.variables}
        attrs = dict(ds.attrs)
    probs = np.empty((f.n_time, len(CLASSES), *shape), np.float32)
    for t in range(f.n_time):
        fields, _ = f.read_step(t, require_labels=False)
        x = torch.from_numpy(normalize(into.fields(fields.reshape(len(VARIABLES), -1))))[None].to(device)
        with torch.no_grad():
            p = net(x).softmax(1)[0].double().cpu().numpy()
        q = back.fields(p)
        probs[t] = (q / q.sum(0, keepdims=True)).reshape(len(CLASSES), *shape)
    labels = probs.argmax(1).astype(np.int32)
    lead = ("time",) if timed else ()
    sel = slice(None) if timed else 0
    out = xr.Dataset(
        {"LABELS": (lead + space, labels[sel], {"long_name": "predicted class: 0 background, 1 TC, 2 AR",
                                                "flag_values": np.array([0, 1, 2], np.int32),
                                                "flag_meanings": "background tropical_cyclone atmospheric_river"}),
         "PROBABILITIES": (lead + ("class",) + space, probs[sel],
                           {"long_name": "predicted class probabilities (softmax), summing to 1 over class",
                            "units": "1"})},
        coords={**coords, "class": ("class", np.arange(len(CLASSES), dtype=np.int32),
                                    {"long_name": "class index: 0 BG, 1 TC, 2 AR"})},
        attrs={**attrs, "prediction_checkpoint": str(Path(ckpt).resolve()),
               "prediction_model": model,
               "prediction_sampling": samp.name, "prediction_source": str(path),
               "prediction_method": (f"fields: {into.method}; probabilities back: {back.method}; "
                                     f"LABELS = argmax"),
               "history": (str(attrs.get("history", "")) + "\n" if attrs.get("history") else "")
               + "segmented by equivariant-bench reproduce/climate.py --predict"})
    target = out_dir / path.name
    with atomic_path(target) as tmp:
        out.to_netcdf(tmp, engine="netcdf4")
    return target
