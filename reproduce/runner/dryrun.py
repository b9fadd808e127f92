"""``--dry-run``: build every cell of a preset at its full model and input size, run optimiser
steps on a small synthetic batch, and project the wall time of the whole table.

Per cell (model × setting; the seeds of a cell share its network) the backbone and the Lightning
task are built from the config exactly as a run builds them, and ``1 + reps`` optimiser steps
(``training_step`` → ``backward`` → gradient clipping → the task's L1/L2 hook → ``step``) run on a
synthetic batch of ``n`` samples: the first step pays lazy set-up and is reported apart, the
others are timed (median) with their peak memory; with ``alt_tf32`` (``reproduce/gpu_check.py``)
the same network then steps with ``trainer.tf32`` the other way. Cells whose network, input and
optimiser differ only in float values (learning rates, dropout, penalties, noise levels) are
measured once. Nothing is written under ``--runs-dir`` or ``--results-dir``; no logger, no
checkpoint, no data is read or generated.

**Input.** A synthetic batch of the shape and dtype the benchmark's datamodule yields for that
cell (standard-normal inputs, uniform labels); the shapes and training-set sizes are declared in
:data:`INPUTS` with their sources. Not in the step: the data pipeline (file reads, CATH's
voxelisation of atom positions, SHREC'17 ray casting), validation, test and after-test metrics.

**Memory.** CUDA: ``torch.cuda.max_memory_allocated`` during a timed step (parameters, optimiser
state, gradients, activations). CPU: the process's peak resident set during the step (Linux
``VmHWM`` after resetting it through ``/proc/self/clear_refs``; includes the interpreter and
libraries), and the step's increase over the resident set before it (activations, gradients).

**Projection.** Time per step at the preset's batch ``B`` = measured step × ``B / n`` (linear in
the batch: exact when the cost is per sample, an over-estimate where a small batch under-uses the
device); steps per run = ``max_epochs`` × steps per epoch (training samples of the published set, for
every preset, / ``B``, rounded as the datamodule's ``drop_last`` does); a cell's hours = its runs × steps per run × time per step.
Memory at ``B`` = memory before the step + the step's increase × ``B / n`` (an upper estimate:
gradients do not grow with the batch).
"""
from __future__ import annotations

import csv
import io
import json
import math
import statistics
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from datamodules._common import InputError, atomic_write_text
from reproduce.runner import config as C
from reproduce.runner.runs import Run
from reproduce.runner.store import count_params, cpu_cores, machine
from reproduce.runner.trainer import set_tf32, trainer_config

# --------------------------------------------------------------------------- declared inputs
#: published training-set sizes (samples per epoch before augmentation copies)
MNIST_ROT_TRAIN = 10_000      # Larochelle et al. 2007 mnist_rotation_new: first 10,000 rows of train_valid
MNIST_ROT_VAL = 2_000         # ... the last 2,000 rows (added by data.combine_train_val)
COSMO_TRAIN_MAPS = 40         # Perraudin et al. 2019 §Data: 40 training maps (20 per class), 20 test
CLIMATE_TRAIN_FILES = 43_916  # ugscnn partition.py (seed 0, 0.7/0.1/0.2 of 62,738 files): train split
SHREC17_TRAIN = 35_764        # SHREC'17 evaluator all.csv: split == train (51,162 models in all)
CATH_RECORDS = 7_110          # Weiler et al. 2018 §5.5: 711 records per class, 10 classes, 10 splits


@dataclass
class InputSpec:
    """What one training batch of a cell looks like, and how many samples an epoch has."""

    x: tuple[int, ...]            # one sample's input shape (float32)
    classes: int                  # labels uniform in [0, classes)
    batch: int                    # the preset's training batch
    n_train: int                  # training samples per epoch (published set, see the source)
    drop_last: bool               # whether the last partial batch is dropped
    source: str                   # where the shape and the count come from
    y: tuple[int, ...] = ()       # one sample's label shape (segmentation: per vertex)
    ids: bool = False             # batches carry a third element (object ids)


def _tetris(run: Run) -> InputSpec:
    s = int(run.cfg["data"]["size"])
    return InputSpec((1, s, s, s), 8, 8, 8, False,
                     "datamodules/tetris.py: the 8 pieces on a size³ grid, one full batch per epoch")


def _rotated_mnist(run: Run) -> InputSpec:
    d, size = run.cfg["data"], run.setting.get("train_size", "all")
    n = MNIST_ROT_TRAIN if size == "all" else int(size)
    n += MNIST_ROT_VAL if d.get("combine_train_val") else 0
    return InputSpec((1, 28, 28), 10, int(d["batch_size"]), n, True,
                     "28×28 digits (.amat rows); 10,000 training digits (Larochelle et al. 2007) or the row's train_size")


def _cosmology(run: Run) -> InputSpec:
    d, order = run.cfg["data"], int(run.setting["order"])
    n = math.floor(COSMO_TRAIN_MAPS * 12 * order ** 2 * (1 - float(d.get("val_fraction", 0.2))))
    return InputSpec(((int(d["nside"]) // order) ** 2, 1), int(d["num_classes"]), int(d["batch_per_order2"]) * order ** 2,
                     n, True, "HEALPix blocks of (nside/order)² pixels, 12·order² per map (cosmo-tf1 hp_split); "
                              "40 training maps (Perraudin et al. 2019) less the validation fraction")


def _climate(run: Run) -> InputSpec:
    from datamodules.climate import parse_sampling
    s = parse_sampling(str(run.setting["sampling"]))
    if s.kind == "native":
        raise InputError("climate: the 'native' sampling has no fixed points (it keeps each file's columns)")
    v = s.num_vertices
    return InputSpec((16, v), 3, int(run.cfg["data"]["batch_size"]), CLIMATE_TRAIN_FILES, False,
                     "16 CAM5 fields on the sampling's vertices, labels per vertex (datamodules/climate.py); "
                     "43,916 training maps (ugscnn partition.py)", y=(v,))


def _shrec17(run: Run) -> InputSpec:
    from datamodules.shrec17_render import parse_sampling
    d, inp = run.cfg["data"], str(run.setting["input"])
    kind, _, arg = inp.partition(":")
    x = (1, int(arg), int(arg), int(arg)) if kind == "voxel" else (parse_sampling(inp).num_vertices, 6)
    return InputSpec(x, int(d["num_classes"]), int(d["batch_size"]), SHREC17_TRAIN * int(d.get("train_augmentations", 1)),
                     True, "6-channel spherical image (V, 6) or voxel grid (1, n, n, n) (datamodules/shrec17.py); "
                           "35,764 training models (all.csv) × data.train_augmentations", ids=True)


def _cath(run: Run) -> InputSpec:
    d, g = run.cfg["data"], int(run.cfg["data"]["grid_size"])
    per_class = CATH_RECORDS // 10 * len(d.get("train_splits") or range(7)) / 10
    n = 10 * math.ceil(per_class / int(run.setting.get("reduction", 1)))
    return InputSpec((1, g, g, g), int(d["num_classes"]), int(d["batch_size"]), n, True,
                     "voxel grid (1, g, g, g) after the on-device voxelisation (datamodules/cath.py); 711 records "
                     "per class × 7/10 (training splits 0–6 of 10; the exact split sizes are in the data file, read at run "
                     "time) / reduction")


#: benchmark → declared input of a cell (a benchmark without an entry cannot be dry-run)
INPUTS: dict[str, Callable[[Run], InputSpec]] = {
    "tetris": _tetris, "rotated_mnist": _rotated_mnist, "cosmology": _cosmology,
    "climate": _climate, "shrec17": _shrec17, "cath": _cath}


def synthetic_batch(spec: InputSpec, n: int, device, seed: int = 0) -> tuple:
    import torch
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, *spec.x), generator=g)
    y = torch.randint(0, spec.classes, (n, *spec.y), generator=g)
    batch = (x, y, torch.arange(n)) if spec.ids else (x, y)
    return tuple(t.to(device) for t in batch)


# --------------------------------------------------------------------------- one cell
@dataclass
class CellCost:
    """The measured step of one cell and its projection to the preset's table."""

    benchmark: str
    model: str
    setting: str
    runs: int
    device: str
    status: str = "ok"             # ok | custom (not a gradient step) | same (as an earlier cell) | error
    note: str = ""
    params: int = 0
    batch: int = 0                 # the preset's training batch B
    measured_batch: int = 0        # the batch n that ran
    n_train: int = 0               # training samples per epoch the projection assumes (published set)
    build_s: float = math.nan      # building the backbone and task (graphs, kernel bases, tables)
    first_step_s: float = math.nan
    step_s: float = math.nan       # median of the timed steps at n
    peak_mb: float = math.nan      # peak memory during a timed step (CUDA: allocated; CPU: resident set)
    step_mb: float = math.nan      # its increase over the memory in use before the step
    peak_mb_at_batch: float = math.nan
    steps_per_run: int = 0
    step_s_at_batch: float = math.nan
    run_h: float = math.nan
    cell_h: float = math.nan
    tf32: bool = False             # trainer.tf32 of the figures above (the preset's; CUDA only)
    alt_step_s: float = math.nan   # the same step with TF32 the other way (``alt_tf32``), NaN if not measured
    alt_peak_mb: float = math.nan
    alt_cell_h: float = math.nan
    input_shape: str = ""
    input_source: str = ""


class OutOfTime(Exception):
    """Raised (e.g. by a timer signal) to stop a measurement at the end of a time budget."""


def _shape_only(obj):
    """A config with every float replaced by whether it is zero: learning rates, dropout rates,
    penalties and spectrum scales do not change what a step costs, sizes (integers) do."""
    if isinstance(obj, dict):
        return {k: _shape_only(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_shape_only(v) for v in obj]
    if isinstance(obj, float):
        return "0.0" if obj == 0 else "float"
    return obj


def _cost_key(bench, ctx, run: Run, spec: InputSpec) -> str:
    """Cells with equal networks, inputs and optimisation cost the same per step (cosmology's noise
    levels, CATH's reductions): measured once. Float values count only as zero or not
    (:func:`_shape_only`); the learning-rate schedule does not count."""
    t = run.cfg.get("trainer", {})
    optim = {k: v for k, v in (run.cfg.get("optim") or {}).items() if k != "schedule"}  # no cost beside a step
    return C.config_hash(_shape_only([run.cfg.get("model"), run.cfg.get("task"), optim,
                                      t.get("gradient_clip_val"), t.get("precision"), t.get("tf32"),
                                      bench.model_args(ctx, run), [spec.x, spec.y, spec.classes, spec.batch, spec.ids]]))


def build_task(bench, ctx, run: Run):
    """Backbone and task as a run builds them; the task's data-derived arguments (climate class
    weights, cosmology's weight-count-scaled L2) are those of the config check (no data is read):
    element-wise terms whose cost is negligible beside the network."""
    backbone = bench.build_backbone(ctx, run)
    args = {**bench.task_args(ctx, run, None), "backbone": backbone}
    return backbone, C.build(bench.task_class(), run.cfg.get("task"), "task", **args)


def measure(bench, ctx, run: Run, spec: InputSpec, n: int, device: str, reps: int = 1,
            alt_tf32: bool = False) -> dict:
    """Build the cell and run ``1 + reps`` optimiser steps on ``n`` synthetic samples; with
    ``alt_tf32``, ``1 + reps`` more with ``trainer.tf32`` the other way (the same network)."""
    import torch
    from reproduce.measure.timing import timed_peak

    tcfg = trainer_config(run.cfg)
    set_tf32(tcfg.tf32)
    torch.manual_seed(run.seed)
    t0 = time.perf_counter()
    backbone, task = build_task(bench, ctx, run)
    task.to(device).train()
    build_s = time.perf_counter() - t0
    opt = task.configure_optimizers()["optimizer"]
    batch = synthetic_batch(spec, n, device, run.seed)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16 if "bf16" in str(tcfg.precision) else torch.float16)
                if tcfg.precision not in (None, 32, "32", "32-true") and device == "cuda" else None)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        if autocast is not None:
            with autocast:
                loss = task.training_step(batch, 0)
        else:
            loss = task.training_step(batch, 0)
        loss.backward()
        if tcfg.gradient_clip_val:
            torch.nn.utils.clip_grad_norm_(task.parameters(), tcfg.gradient_clip_val)
        task.on_before_optimizer_step(opt)
        opt.step()

    with warnings.catch_warnings():  # self.log without a trainer: nothing to log to, by design
        warnings.filterwarnings("ignore", message=r".*self\.log\(\).*")
        try:
            first, _, _ = timed_peak(step, device)
            timed = [timed_peak(step, device) for _ in range(max(1, reps))]
            alt = []
            if alt_tf32:
                set_tf32(not tcfg.tf32)
                timed_peak(step, device)  # the other mode may choose other kernels: not timed
                alt = [timed_peak(step, device) for _ in range(max(1, reps))]
        finally:
            set_tf32(tcfg.tf32)
    params = count_params(backbone)
    del task, backbone, opt, batch
    _free(device)
    peak = max(t[1] for t in timed)
    base = min(t[2] for t in timed)
    return {"params": int(params), "build_s": build_s, "first_step_s": first, "step_s": statistics.median(t[0] for t in timed),
            "peak_mb": peak, "step_mb": max(peak - base, 0.0), "base_mb": base,
            "alt_step_s": statistics.median(t[0] for t in alt) if alt else math.nan,
            "alt_peak_mb": max(t[1] for t in alt) if alt else math.nan}


def cell_runs(runs: list[Run]) -> list[tuple[Run, int]]:
    """(first run, number of runs) per (model, setting), in grid order."""
    out: dict[tuple, list] = {}
    for r in runs:
        out.setdefault((r.model, r.setting_str), [r, 0])[1] += 1
    return [(r, k) for r, k in out.values()]


def dry_run(bench, ctx, runs: list[Run], batch: int = 2, device: str = "cpu", reps: int = 1,
            on_cell: Callable[[CellCost], None] | None = None, deadline: float | None = None,
            cost_s: float = 0.0, alt_tf32: bool = False) -> list[CellCost]:
    """Measure every cell of ``runs`` (see the module docstring); ``batch`` 0 = the preset's batch.

    ``deadline`` (a :func:`time.monotonic` time): a cell is not started (status ``skipped``) when the
    time left is below the dearest measurement so far (``cost_s`` before the first). A measurement
    interrupted by :class:`OutOfTime` is ``skipped`` too, and so is every later one."""
    if bench.name not in INPUTS:
        raise InputError(f"{bench.name}: no declared input shape for --dry-run (reproduce/runner/dryrun.py INPUTS)")
    seen: dict[str, CellCost] = {}
    out, stopped = [], False
    for run, n_runs in cell_runs(runs):
        c = CellCost(bench.name, run.model, run.setting_str, n_runs, device, tf32=bool(trainer_config(run.cfg).tf32))
        if bench.is_custom(run):
            c.status, c.note = "custom", "not a gradient step"
        else:
            spec = INPUTS[bench.name](run)
            n = min(spec.batch, batch) if batch > 0 else spec.batch
            c.batch, c.measured_batch, c.n_train = spec.batch, n, spec.n_train
            c.input_shape, c.input_source = "×".join(map(str, spec.x)), spec.source
            per_epoch = spec.n_train // spec.batch if spec.drop_last and spec.n_train > spec.batch \
                else math.ceil(spec.n_train / spec.batch)
            c.steps_per_run = int(trainer_config(run.cfg).max_epochs) * per_epoch
            key = _cost_key(bench, ctx, run, spec) + f"-{n}"
            if key not in seen and stopped:
                c.status, c.note = "skipped", f"not measured ({stopped})"
            elif key not in seen and deadline is not None and time.monotonic() + cost_s > deadline:
                c.status, c.note = "skipped", f"budget: {max(deadline - time.monotonic(), 0):.0f} s left, a cell costs ~{cost_s:.0f} s"
            elif key in seen:
                prev = seen[key]
                c.status, c.note = "same", f"network, input and optimiser as {prev.model} {prev.setting}"
                for k in ("params", "measured_batch", "build_s", "first_step_s", "step_s", "peak_mb", "step_mb",
                          "peak_mb_at_batch", "alt_step_s", "alt_peak_mb"):
                    setattr(c, k, getattr(prev, k))
            else:
                t0, oom = time.monotonic(), []
                while True:  # out of memory: halve the batch (the projection stays linear in it)
                    try:
                        m = measure(bench, ctx, run, spec, n, device, reps, alt_tf32)
                        break
                    except OutOfTime as e:
                        _free(device)
                        m, stopped = None, str(e) or "stopped"
                        break
                    except Exception as e:
                        if not _oom(e):
                            raise
                        _free(device)
                        oom.append(n)
                        if n == 1:
                            m = None
                            break
                        n = max(1, n // 2)
                c.measured_batch = n
                if m is None and stopped:
                    c.status, c.note = "skipped", stopped
                elif m is None:
                    c.status, c.note = "error", "out of memory at batch 1"
                else:
                    c.note = f"out of memory at batch {', '.join(map(str, oom))}" if oom else ""
                    for k in ("params", "build_s", "first_step_s", "step_s", "peak_mb", "step_mb", "alt_step_s",
                              "alt_peak_mb"):
                        setattr(c, k, m[k])
                    c.peak_mb_at_batch = m["base_mb"] + m["step_mb"] * spec.batch / n
                    seen[key] = c
                cost_s = max(cost_s, time.monotonic() - t0)
            c.step_s_at_batch = c.step_s * spec.batch / c.measured_batch
            c.run_h = c.steps_per_run * c.step_s_at_batch / 3600
            c.cell_h = c.run_h * n_runs
            c.alt_cell_h = c.alt_step_s * spec.batch / c.measured_batch * c.steps_per_run * n_runs / 3600
        out.append(c)
        if on_cell:
            on_cell(c)
    return out


def _free(device: str) -> None:
    import gc
    gc.collect()
    if device == "cuda":
        import torch
        torch.cuda.empty_cache()


def _oom(e: Exception) -> bool:
    text = str(e).lower()
    return "out of memory" in text or "can't allocate memory" in text or type(e).__name__ == "OutOfMemoryError"


# --------------------------------------------------------------------------- reporting
COLUMNS = ["benchmark", "model", "setting", "runs", "device", "status", "note", "params", "batch",
           "measured_batch", "n_train", "build_s", "first_step_s", "step_s", "peak_mb", "step_mb", "peak_mb_at_batch",
           "steps_per_run", "step_s_at_batch", "run_h", "cell_h", "tf32", "alt_step_s", "alt_peak_mb", "alt_cell_h",
           "input_shape", "input_source"]


def fmt_line(c: CellCost) -> str:
    head = f"[{c.benchmark}] dry-run {c.model} {c.setting} ×{c.runs}"
    if c.status == "custom":
        return f"{head}: not a gradient step"
    if c.status in ("error", "skipped"):
        return f"{head}: {c.note}"
    same = f" ({c.note})" if c.status == "same" else ""
    alt = "" if c.alt_step_s != c.alt_step_s else \
        f"; TF32 {'off' if c.tf32 else 'on'}: step {c.alt_step_s:.3g} s, peak {c.alt_peak_mb:.0f} MiB → {c.alt_cell_h:.3g} h"
    return (f"{head}: input {c.input_shape}, build {c.build_s:.3g} s, step {c.step_s:.3g} s at batch {c.measured_batch} "
            f"(first {c.first_step_s:.3g} s), peak {c.peak_mb:.0f} MiB (+{c.step_mb:.0f} in the step, "
            f"~{c.peak_mb_at_batch:.0f} at batch {c.batch}); {c.n_train} samples/epoch, {c.steps_per_run} steps/run × {c.runs} runs "
            f"→ {c.cell_h:.3g} h{alt}{same}")


def total_hours(cells: list[CellCost], alt: bool = False) -> float:
    """Projected hours of the measured cells (``alt``: with TF32 the other way)."""
    return sum(h for c in cells if c.status in ("ok", "same") and (h := c.alt_cell_h if alt else c.cell_h) == h)


def measured_on(device: str) -> str:
    """The hardware in words: the GPU's name, or ``2 CPU cores (x86_64), 1 thread``."""
    import platform

    import torch
    if device == "cuda":
        return machine(device)
    k, t = cpu_cores(), torch.get_num_threads()
    return (f"{k} CPU core{'s' * (k != 1)} ({platform.processor() or platform.machine()}), "
            f"{t} thread{'s' * (t != 1)}")


def _finite(obj):
    """NaN → None, so that the JSON files are strict JSON (``null`` where nothing was measured)."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return None if isinstance(obj, float) and not math.isfinite(obj) else obj


def summary(cells: list[CellCost], preset: str, hardware: str) -> dict:
    return {"preset": preset, "hardware": hardware, "total_h": total_hours(cells),
            "custom_cells": sum(c.status == "custom" for c in cells),
            "errors": [f"{c.model} {c.setting}: {c.note}" for c in cells if c.status == "error"],
            "method": __doc__.split("**Projection.**", 1)[1].strip().replace("\n", " "),
            "cells": [asdict(c) for c in cells]}


def write(out_dir: Path, name: str, cells: list[CellCost], preset: str, hardware: str) -> list[Path]:
    """``<name>.csv`` (one row per cell) and ``<name>.json`` (cells, totals, method) under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
    w.writeheader()
    for c in cells:
        w.writerow({k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(c).items()})
    paths = [out_dir / f"{name}.csv", out_dir / f"{name}.json"]
    atomic_write_text(paths[0], buf.getvalue())
    atomic_write_text(paths[1], json.dumps(_finite(summary(cells, preset, hardware)), indent=1, allow_nan=False) + "\n")
    return paths


def main(bench, ctx, runs: list[Run], batch: int, out_dir: str | None) -> int:
    """The ``--dry-run`` command: one line per cell on stdout, the table's total, optional files."""
    import torch
    device = "cuda" if ctx.launch.gpus and torch.cuda.is_available() else "cpu"
    hardware = measured_on(device)
    cells = dry_run(bench, ctx, runs, batch, device, on_cell=lambda c: print(fmt_line(c), flush=True))
    print(f"[{bench.name}] dry-run {ctx.preset}: {len(cells)} cells, projected {total_hours(cells):.3g} h of "
          f"training on one {'GPU' if device == 'cuda' else 'process'}, measured on {hardware} "
          f"(linear in the batch; training steps only)", flush=True)
    if out_dir:
        for p in write(Path(out_dir), f"{bench.name}-{ctx.preset}-dryrun", cells, ctx.preset, hardware):
            print(f"[{bench.name}] wrote {p}", file=sys.stderr)
    return 1 if any(c.status == "error" for c in cells) else 0
