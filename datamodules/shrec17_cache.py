"""The SHREC'17 preprocessing cache: every (mesh, augmentation copy) computed once — the spherical
image (:mod:`datamodules.shrec17_render`) or voxel grid (:mod:`datamodules.voxelize`) of the mesh
read, cleaned and posed by :mod:`datamodules.meshes` — and stored as ``.npz``.

**Cache.** Every (mesh, augmentation copy) is computed once and stored as ``.npz`` (loaded with
``allow_pickle=False``) under ``cache_dir`` (default ``<data_dir>/cache``) ``/<key>/<split>/<id>_<copy>.npz``,
``key`` naming the input and hashing the preprocessing parameters (:meth:`datamodules.shrec17.Shrec17DataModule.cache_key`).
Each file stores the source's path, size and mtime: a changed mesh is recomputed. Files are written
to a temporary name and renamed, and a split is filled under a lock file, so DDP ranks and
concurrent runs never see half-written caches; a per-split manifest (``<split>.json``) lets later
runs skip the per-file check. A cache file that fails to load is recomputed when it is read.
``workers`` > 0 computes with a multiprocessing pool (:func:`fill_cache`).
Any error while preprocessing one mesh (trimesh, qhull) makes it a broken mesh, never a crash.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import multiprocessing as mp
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from datamodules._common import InputError, atomic_savez, atomic_write_text
from datamodules.meshes import BrokenMesh, draw_pose, load_normalized
from datamodules.shrec17_layout import Item
from datamodules.shrec17_render import sampling_vectors, sphere_channels
from datamodules.voxelize import voxelize_surface

BENCH = "shrec17"
#: bump when the cached numbers change meaning (part of the cache key)
CACHE_VERSION = 1


# --------------------------------------------------------------------------- cache
def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [int(st.st_size), int(st.st_mtime_ns)]


def _cache_state(path: Path, source: Path, stamp: list[int]) -> str | None:
    """``"ok"``, ``"broken: <reason>"`` for a valid cache file of ``source`` at ``stamp``, else
    None (missing, unreadable or stale)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["source"]) != str(source) or z["stamp"].tolist() != stamp:
                return None
            if "error" in z.files:
                return f"broken: {z['error']}"
            return "ok" if "x" in z.files else None
    except Exception:
        return None


def _compute_task(task: dict) -> tuple[str, str | None, int, float]:
    """Worker: preprocess one mesh and write the requested copies (or one ``error`` file).
    Returns (id, error or None, copies written, seconds)."""
    t0 = time.perf_counter()
    src, stamp = Path(task["source"]), task["stamp"]
    p = task["params"]
    meta = {"source": np.array(str(src)), "stamp": np.array(stamp, dtype=np.int64)}
    try:
        m = load_normalized(src)
        poses = [draw_pose(m.vertices, p["seed"], int(task["id"]), c, p["rotate"], p["translate"])
                 for c, _ in task["outs"]]
        if p["input"] == "sphere":
            xs = list(sphere_channels(m, sampling_vectors(p["sampling"]), poses, p["backend"]))
        else:
            xs = [voxelize_surface(pose.apply(m.vertices), m.faces, p["voxel_size"], p["voxel_double"],
                                   p["voxel_fit"]) for pose in poses]
    except InputError:
        raise
    except Exception as e:  # BrokenMesh, or anything a strange mesh makes trimesh / qhull raise
        why = str(e) if isinstance(e, BrokenMesh) else f"preprocessing failed ({type(e).__name__}: {e})"
        first = Path(task["outs"][0][1]).with_name(f"{task['id']}_0.npz")
        atomic_savez(first, False, error=np.array(why), **meta)
        return task["id"], why, 0, time.perf_counter() - t0
    for (_, out), x in zip(task["outs"], xs):
        atomic_savez(Path(out), p["input"] == "voxel", x=x, **meta)
    return task["id"], None, len(task["outs"]), time.perf_counter() - t0


def _pool_context():
    """Worker processes started from a clean server process, never forked from this one: a fork of a
    process whose torch/OpenMP threads hold a lock can hang in the child (seen with ``fork`` when the
    pool follows training in the same process)."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])  # the server imports this module once; workers fork from it
    return ctx


@dataclass
class CacheResult:
    """What :func:`fill_cache` found and did for one split."""

    usable: list[str]               # ids with every copy cached, in item order
    broken: dict[str, str]          # id -> reason
    computed: int                   # copies computed now
    reused: int                     # copies found valid in the cache
    seconds: float                  # time spent computing


def fill_cache(items: Sequence[Item], folder: Path, copies: int, params: dict, workers: int = 0,
               progress: bool = True, desc: str = "") -> CacheResult:
    """Make ``folder`` hold ``<id>_<c>.npz`` for every item and copy ``c < copies`` (or an
    ``error`` file for a broken mesh), computing what is missing or stale, under a lock file;
    then write the manifest ``folder.with_suffix('.json')``. See the module docstring."""
    from tqdm import tqdm

    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder.with_suffix(".json")
    sources = [(it.id, str(it.path.resolve()), _stamp(it.path)) for it in items]
    digest = hashlib.sha256(json.dumps([sources, copies, params], sort_keys=True).encode()).hexdigest()
    with open(folder.parent / f".{folder.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            m = _read_manifest(manifest)
            if m is not None and m.get("digest") == digest and all(
                    (folder / f"{i}_{c}.npz").is_file() for i in m["usable"] for c in range(copies)):
                return CacheResult(list(m["usable"]), dict(m["broken"]), 0, len(m["usable"]) * copies, 0.0)
            broken: dict[str, str] = {}
            tasks, reused = [], 0
            for (mid, src, stamp) in sources:
                first = folder / f"{mid}_0.npz"
                state = _cache_state(first, Path(src), stamp)
                if state is not None and state.startswith("broken: "):
                    broken[mid] = state[len("broken: "):]
                    continue
                outs = []
                for c in range(copies):
                    f = folder / f"{mid}_{c}.npz"
                    if (state == "ok" if c == 0 else _cache_state(f, Path(src), stamp) == "ok"):
                        reused += 1
                    else:
                        outs.append((c, str(f)))
                if outs:
                    tasks.append({"id": mid, "source": src, "stamp": stamp, "outs": outs, "params": params})
            t0 = time.perf_counter()
            computed = 0
            bar = tqdm(total=len(tasks), desc=desc or f"{BENCH} preprocess", unit="mesh", leave=False,
                       disable=not progress or not tasks)
            if workers > 0 and len(tasks) > 1:
                with _pool_context().Pool(min(workers, len(tasks))) as pool:
                    results = pool.imap_unordered(_compute_task, tasks, chunksize=1)
                    for mid, err, n, _ in results:
                        computed += n
                        if err is not None:
                            broken[mid] = err
                        bar.update()
            else:
                for task in tasks:
                    mid, err, n, _ = _compute_task(task)
                    computed += n
                    if err is not None:
                        broken[mid] = err
                    bar.update()
            bar.close()
            seconds = time.perf_counter() - t0
            usable = [mid for mid, _, _ in sources if mid not in broken]
            atomic_write_text(manifest, json.dumps({"digest": digest, "usable": usable, "broken": broken,
                                                    "copies": copies, "params": params}) + "\n")
            return CacheResult(usable, broken, computed, reused, seconds)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_manifest(path: Path) -> dict | None:
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(m, dict) and isinstance(m.get("usable"), list) and isinstance(m.get("broken"), dict)
    return m if ok else None


def recompute(item: Item, copy: int, path: Path, params: dict) -> None:
    """Compute copy ``copy`` of ``item`` into the cache file ``path`` again (one that failed to load)."""
    _compute_task({"id": item.id, "source": str(item.path.resolve()), "stamp": _stamp(item.path),
                   "outs": [(copy, str(path))], "params": params})
