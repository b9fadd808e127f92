"""``reproduce/climate.py --predict CKPT --data-dir IN --out OUT``: segment CAM5 / ClimateNet netCDF
files with a trained checkpoint, writing the result on each input's own grid.

For every ``IN/*.nc`` (regular ``(time, lat, lon)`` or unstructured ``ncol`` columns, read by
:func:`datamodules.climate.open_cam5`: reversed latitudes, either longitude convention, fill
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
onto it exactly as for training (:func:`datamodules.climate.interpolator_for`) and normalised with
the published statistics; the class probabilities come back onto the input points by inverse-
distance weighting over the 4 nearest sampling vertices (:func:`datamodules.climate.idw_points`, a
convex combination). A model trained on ``native`` columns instead runs on each file's own
columns, its graph built on them (``DeepSphereUNet("points", coords=...)``), with no interpolation.
The checkpoint is read with ``torch.load(weights_only=True)``.

Every input is checked before any output is written (:func:`check_inputs`: layout, units, every
step read); unusable files are all named in one error, a line each, and nothing is written. Each
output is written to a temporary name and renamed into place.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from datamodules._common import InputError
from datamodules.climate import (CLASSES, VARIABLES, _quiet, idw_points, interpolator_for, netcdf_files,
                                 normalize, open_cam5, parse_sampling)
from models.deepsphere.graph import lonlat_vectors
from reproduce.runner import config as C
from reproduce.runner.evaluate import load_run, usable_checkpoint


def load_weights(bench, ckpt: Path):
    """(run, backbone state dict) of a checkpoint this runner wrote."""
    import torch

    ckpt = usable_checkpoint(ckpt, "--predict")
    run, _ = load_run(bench, ckpt, [])
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    sd = {k[len("backbone."):]: v for k, v in state["state_dict"].items() if k.startswith("backbone.")}
    if not sd:
        raise InputError(f"--predict: {ckpt} holds no backbone weights")
    return run, sd


def build_net(bench, run, sd, coords=None, device="cpu"):
    samp = parse_sampling(run.setting["sampling"])
    net = C.build(bench.model_class(run), bench._model_section(run), f"models.{run.model}",
                  in_channels=len(VARIABLES), num_classes=len(CLASSES),
                  sampling="points" if samp.kind == "native" else samp.name,
                  **({"coords": coords} if samp.kind == "native" else {}))
    try:
        net.load_state_dict(sd)
    except RuntimeError as e:
        raise InputError(f"--predict: the checkpoint does not fit the model of its config "
                         f"({str(e).splitlines()[0][:160]})") from None
    return net.to(device).eval()


def output_points(ds, grid: str) -> np.ndarray:
    """Unit vectors of the input's points in the file's own order: (lat, lon) flattened, or ncol."""
    lat = np.asarray(ds["lat"].values, np.float64)
    lon = np.asarray(ds["lon"].values, np.float64) % 360.0  # −180…180 and 0…360 give the same vectors
    if grid == "latlon":
        lo, la = np.meshgrid(lon, lat)
        return lonlat_vectors(lo.ravel(), la.ravel())
    return lonlat_vectors(lon, lat)


def predict(bench, ckpt: Path, data_dir: Path, out_dir: Path, gpus: int = 0) -> list[Path]:
    """Segment every ``data_dir/*.nc``; all inputs are checked first (:func:`check_inputs`), so a
    bad file stops the command before any output is written; each output is written atomically."""
    run, sd = load_weights(bench, ckpt)
    samp = parse_sampling(run.setting["sampling"])
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
    device = "cuda" if gpus else "cpu"
    net = None if samp.kind == "native" else build_net(bench, run, sd, device=device)
    written: list[Path] = []
    for path, f, into in checked:
        try:
            written.append(_segment(bench, run, sd, samp, net, ckpt, path, f, into, out_dir, device))
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


def _segment(bench, run, sd, samp, net, ckpt, path, f, into, out_dir, device) -> Path:
    """Segment one checked file and write ``out_dir/<name>`` atomically."""
    import torch
    import xarray as xr

    if samp.kind == "native":
        net = build_net(bench, run, sd, coords=f.vectors(), device=device)
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
               "prediction_model": f"{run.model} ({run.benchmark}, preset {run.preset}, seed {run.seed})",
               "prediction_sampling": samp.name, "prediction_source": str(path),
               "prediction_method": (f"fields: {into.method}; probabilities back: {back.method}; "
                                     f"LABELS = argmax"),
               "history": (str(attrs.get("history", "")) + "\n" if attrs.get("history") else "")
               + "segmented by equivariant-bench reproduce/climate.py --predict"})
    target = out_dir / path.name
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        out.to_netcdf(tmp, engine="netcdf4")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
