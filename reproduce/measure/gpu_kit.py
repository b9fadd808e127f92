"""GPU evidence kit: what the `paper` presets cost on this GPU, in one folder, within a time budget.

    python reproduce/gpu_check.py --out DIR                 # one GPU, at most --budget-s (530 s)
    python reproduce/gpu_check.py --device cpu --tiny --out DIR   # the same path on small sizes (~30 s)

Writes under DIR, each file as soon as its part is done:

1. ``steps.csv``: every `paper` cell's network built at its paper input size, one optimiser step
   timed on a synthetic batch (the preset's training batch unless ``--dry-run-batch N``) with its
   peak memory, FP32 (``trainer.tf32: false``, every preset's setting) and TF32
   (``torch.backends.cuda.matmul.allow_tf32`` and ``cudnn.allow_tf32`` on) on the same network —
   the ``--dry-run`` measurement of :mod:`reproduce.runner.dryrun` (one per distinct network and
   input); ``steps-<benchmark>.json`` with the method;
2. ``gpu_budget.md``: the projected hours of every paper table from those steps (also
   ``results/gpu_budget.md`` with ``--write-results``);
3. ``tetris/``: as many Tetris `paper` cells as the rest of the budget holds, each
   ``reproduce/tetris.py --preset paper --gpus 1 --logger csv --runs 1 --only MODEL --seed S`` with
   its runs, results and log under ``DIR/tetris`` (models in turn, seed by seed) →
   ``tetris_cells.csv``;
4. ``summary.json`` and ``summary.md``: what ran, what was skipped and why, the elapsed time.

Time: the measurements stop at ``--steps-budget-s`` (a measurement still running then is stopped by a
timer and marked ``skipped``); a Tetris cell starts only when the time left holds its measured cost
(its model's last wall time, or its projection plus the measured start-up before one has run), and
one still running near the end of ``--budget-s`` is sent SIGTERM (it saves a checkpoint, resumable
with the same command) — the kit ends within the budget and writes what it has. SIGTERM to the kit
does the same. ``--tiny``: the `smoke` presets (small inputs and networks) measured at batch 2 and
the Tetris `smoke` recipe: the whole path in about half a minute on a CPU.
"""
from __future__ import annotations

import time


import argparse
import csv
import io
import json
import math
import os
import signal
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from datamodules._common import InputError, atomic_write_text
from reproduce.runner import config as C
from reproduce.runner import dryrun as D
from reproduce.runner.benchmark import Context
from reproduce.runner.runs import expand_grid
from reproduce.runner.store import REPO_ROOT, code_version, now, read_rows
from reproduce.runner.trainer import Launch

BENCHMARKS = tuple(C.benchmark_names(trained=True))  # every configs/<name>/ whose paper preset is a grid
#: measured in this order (benchmarks not named here between the two): cosmology last, its Nside-1024
#: graphs take minutes of CPU time to build
MEASURE_FIRST, MEASURE_LAST = ("tetris", "rotated_mnist", "climate", "shrec17", "cath"), ("cosmology",)


def measure_order(names) -> list[str]:
    """``names`` in the order the kit measures them (:data:`MEASURE_FIRST`, the others, :data:`MEASURE_LAST`).

    >>> measure_order(["cosmology", "cath", "new", "tetris"])
    ['tetris', 'cath', 'new', 'cosmology']
    """
    first = {b: i for i, b in enumerate(MEASURE_FIRST)}
    return sorted(names, key=lambda b: (b in MEASURE_LAST, first.get(b, len(first))))
GRACE_S = 20.0  # a stopped Tetris cell's time to save its checkpoint; kept free at the end of the budget
TETRIS_COLUMNS = ["model", "seed", "wall_s", "rc", "projected_train_s", "test_acc", "last_line"]


class Budget:
    """Wall-clock budget of the kit; :meth:`alarm` turns the end of a phase into :class:`D.OutOfTime`."""

    def __init__(self, seconds: float, start: float | None = None):
        self.start = time.monotonic() if start is None else start
        self.end = self.start + seconds
        self.stopped = ""  # why the kit stops early (SIGTERM), else ""

    def left(self, until: float | None = None) -> float:
        return (self.end if until is None else until) - time.monotonic()

    def alarm(self, until: float | None) -> None:
        """Raise :class:`D.OutOfTime` in the main thread at ``until`` (None: cancel)."""
        if until is None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            return
        signal.setitimer(signal.ITIMER_REAL, max(self.left(until), 0.001))

    def install(self) -> None:
        def on_alarm(signum, frame):
            raise D.OutOfTime("stopped at the end of the time budget")

        def on_term(signum, frame):
            self.stopped = "SIGTERM"
            raise D.OutOfTime("stopped by SIGTERM")
        signal.signal(signal.SIGALRM, on_alarm)
        signal.signal(signal.SIGTERM, on_term)


def load_bench(name: str):
    import importlib
    return importlib.import_module(f"reproduce.{name}").BENCH


def measure_steps(preset: str, device: str, batch: int, alt_tf32: bool, budget: Budget, until: float,
                  log, benchmarks=BENCHMARKS, on_benchmark=None) -> list[D.CellCost]:
    """The dry-run measurement of every cell of every benchmark's ``preset`` until ``until``."""
    out: list[D.CellCost] = []
    cost = 0.0
    for name in benchmarks:
        t0 = time.monotonic()
        bench = load_bench(name)
        cfg = C.load_preset(name, preset, bench.config_root)
        runs = expand_grid(bench, cfg)
        ctx = Context(cfg=cfg, preset=preset, launch=Launch(gpus=int(device == "cuda"), logger="none"),
                      data_dir=None, generate=False, data_source="", hardware=D.measured_on(device),
                      results_dir=Path("."), runs_dir=Path("."), code_version="")
        for run in runs:
            bench.check(ctx, run)
        cells: list[D.CellCost] = []
        budget.alarm(until)
        try:
            if budget.stopped:
                raise D.OutOfTime(budget.stopped)
            D.dry_run(bench, ctx, runs, batch=batch, device=device, deadline=until, cost_s=cost, alt_tf32=alt_tf32,
                      on_cell=lambda c: (cells.append(c), log(D.fmt_line(c))))
        except D.OutOfTime:  # between two measurements: the rest of this preset is not measured
            done = {(c.model, c.setting) for c in cells}
            for run, k in D.cell_runs(runs):
                if (run.model, run.setting_str) not in done:
                    cells.append(D.CellCost(name, run.model, run.setting_str, k, device, "skipped",
                                            f"stopped by {budget.stopped}" if budget.stopped else "the time budget ended"))
        finally:
            budget.alarm(None)
        cost = max([cost] + [c.build_s + (c.first_step_s + c.step_s) * (2 if alt_tf32 else 1)
                             for c in cells if c.status == "ok"])
        out += cells
        log(f"[{name}] {sum(c.status == 'ok' for c in cells)} measurements in {time.monotonic() - t0:.0f} s")
        if on_benchmark:
            on_benchmark(name, cells)
    return out


def write_steps(path: Path, cells: list[D.CellCost]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, D.COLUMNS, lineterminator="\n")
    w.writeheader()
    for c in cells:
        w.writerow({k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(c).items()})
    atomic_write_text(path, buf.getvalue())


def _fp32_tf32(c: D.CellCost, what: str) -> tuple[float, float]:
    """(FP32, TF32) figure of a cell: ``step_s``, ``peak_mb`` or ``cell_h``."""
    main, alt = getattr(c, what), getattr(c, "alt_" + what)
    return (alt, main) if c.tf32 else (main, alt)


def _table_hours(cells: list[D.CellCost], i: int) -> float:
    """Projected hours of a table, FP32 (``i`` 0) or TF32 (1); NaN when no cell was measured."""
    hours = [h for c in cells if c.status in ("ok", "same") and math.isfinite(h := _fp32_tf32(c, "cell_h")[i])]
    return sum(hours) if hours else math.nan


def budget_md(cells: list[D.CellCost], preset: str, hardware: str, device: str, batch: int, command: str = "",
              code: str | None = None) -> str:
    """The projected hours per table (FP32 and TF32) and per cell."""
    def h(x: float) -> str:
        return "–" if not math.isfinite(x) else f"{x:.3g}"

    def mib(x: float) -> str:
        return "–" if not math.isfinite(x) else f"{x:.0f}"

    unit = "GPU-hours" if device == "cuda" else "hours"
    at = ("of the preset's training batch" if batch == 0 else
          f"of {batch} samples (the preset's batch if smaller), scaled linearly to the preset's batch")
    lines = [f"# Projected {unit} of the `{preset}` tables", "",
             f"Measured on {hardware} by `python reproduce/gpu_check.py{command}` ({now()[:10]}, code {code or code_version()}): "
             f"one optimiser step of each cell's network at its `{preset}` input size on a synthetic batch "
             f"{at}, × steps per epoch of the published training set × `max_epochs` × runs. "
             "Training steps only: no data loading, validation or test. One device (on a CPU, one process) "
             "holds the whole batch; a DDP run over G GPUs takes about 1/G of the time for the same GPU-hours.", ""]
    if device == "cuda":
        lines += ["FP32: `trainer.tf32: false`, the setting of every preset (the papers trained without TF32). "
                  "TF32: the same network with `torch.backends.cuda.matmul.allow_tf32` and "
                  "`torch.backends.cudnn.allow_tf32` on (`trainer.tf32=true`).", ""]
    else:
        lines += ["On a CPU there is no TF32: one column.", ""]
    lines += ["| table | cells | " + (f"{unit}, FP32 | {unit}, TF32 |" if device == "cuda" else f"{unit} |")
              + " not in the total |", "|---|---|---|" + ("---|" if device == "cuda" else "") + "---|"]
    for name in BENCHMARKS:
        mine = [c for c in cells if c.benchmark == name]
        if not mine:
            continue
        missing = [c for c in mine if c.status in ("skipped", "error")]
        custom = [c for c in mine if c.status == "custom"]
        note = "; ".join(x for x in (f"{len(missing)} cells not measured" if missing else "",
                                     f"{len(custom)} cells without gradient steps ({', '.join(sorted({c.model for c in custom}))})"
                                     if custom else "") if x) or "–"
        fp, tf = (_table_hours(mine, i) for i in (0, 1))
        lines.append(f"| {name} | {len(mine)} | {h(fp)} | " + (f"{h(tf)} | " if device == "cuda" else "") + f"{note} |")
    lines += ["", "| table | model | setting | runs | batch | input | step s, FP32 | " + ("step s, TF32 | " if device == "cuda" else "")
              + "peak MiB | steps/run | " + f"{unit} |",
              "|---|---|---|---|---|---|---|" + ("---|" if device == "cuda" else "") + "---|---|---|"]
    for c in sorted(cells, key=lambda c: BENCHMARKS.index(c.benchmark)):
        if c.status == "custom":
            continue
        (s32, stf), (p32, _), (h32, _) = (_fp32_tf32(c, k) for k in ("step_s", "peak_mb", "cell_h"))
        state = "" if c.status in ("ok", "same") else f" ({c.status}: {c.note})"
        lines.append(f"| {c.benchmark} | {c.model} | {c.setting} | {c.runs} | {c.batch} | {c.input_shape or '–'} | "
                     f"{h(s32 * c.batch / c.measured_batch if c.measured_batch else math.nan)} | "
                     + (f"{h(stf * c.batch / c.measured_batch if c.measured_batch else math.nan)} | " if device == "cuda" else "")
                     + f"{mib(p32 if batch == 0 else c.peak_mb_at_batch)} | {c.steps_per_run} | {h(h32)}{state} |")
    lines += ["", "Step times and peak memory are at the preset's batch" +
              ("." if batch == 0 else f" (projected from batch {batch}: the step linearly, the memory as the "
                                      "memory before the step plus the step's increase × batch / measured batch).")]
    return "\n".join(lines) + "\n"


def tetris_cells(out: Path, preset: str, device: str, budget: Budget, projected: dict[str, float], log,
                 limit: int | None, overrides: list[str], only: list[str] | None = None, on_cell=None) -> list[dict]:
    """Tetris cells, models in turn seed by seed, while the budget lasts (see the module docstring)."""
    cfg = C.load_preset("tetris", preset)
    models = [r["model"] for r in cfg["grid"]["rows"] if not only or r["model"] in only]
    order = [(m, s) for s in range(int(cfg["grid"]["runs"])) for m in models][:limit]
    results = out / "tetris" / "results"
    cmd0 = [sys.executable, str(REPO_ROOT / "reproduce" / "tetris.py"), "--preset", preset, "--logger", "csv",
            "--runs-dir", str(out / "tetris" / "runs"), "--results-dir", str(results), "--runs", "1"] \
        + (["--gpus", "1"] if device == "cuda" else [])
    env = {**os.environ, "EB_NO_PROGRESS": "1"}
    walls: dict[str, float] = {}
    startup = 30.0  # seconds a cell takes besides its training steps, until one has been measured
    rows: list[dict] = []
    for model, seed in order:
        cost = walls.get(model, projected.get(model, 0.0) + startup)
        left = budget.left() - GRACE_S
        if budget.stopped or left < cost:
            log(f"tetris: {max(left, 0):.0f} s left, the next cell ({model} seed {seed}) costs ~{cost:.0f} s: stop"
                if not budget.stopped else f"tetris: {budget.stopped}: stop")
            break
        t0 = time.monotonic()
        log_path = out / "tetris" / "logs" / f"{model}-seed{seed}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "w") as f:
            p = subprocess.Popen(cmd0 + ["--only", model, "--seed", str(seed)] + overrides, env=env, cwd=REPO_ROOT,
                                 stdout=f, stderr=subprocess.STDOUT, text=True)
            try:
                try:
                    rc = p.wait(timeout=max(left, 1))
                except subprocess.TimeoutExpired:
                    raise D.OutOfTime("the time budget ended") from None
            except D.OutOfTime as e:  # the budget's end or SIGTERM to the kit: the cell saves a checkpoint
                p.terminate()
                try:
                    p.wait(timeout=GRACE_S)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                rc = f"stopped ({e}; resumable)"
        wall = time.monotonic() - t0
        tail = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()][-1:]
        acc = [r.get("test_acc", "") for r in read_rows(results / "tetris.csv")
               if r.get("model") == model and str(r.get("seed")) == str(seed)]
        rows.append({"model": model, "seed": seed, "wall_s": round(wall, 2), "rc": rc,
                     "projected_train_s": round(projected.get(model, math.nan), 2),
                     "test_acc": acc[-1] if acc else "", "last_line": " ".join(tail)[:300]})
        log(f"tetris: {model} seed {seed}: rc {rc}, {wall:.0f} s" + (f", test accuracy {acc[-1]}" if acc else ""))
        if on_cell:
            on_cell(rows)
        if rc != 0:
            break
        walls[model] = wall
        startup = max(0.0, wall - projected.get(model, 0.0))
    return rows


def write_tetris(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, TETRIS_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def main(argv: list[str] | None = None, t0: float | None = None) -> int:
    """The kit's command line (``reproduce/gpu_check.py``); ``t0``: when the budget started (the script's start)."""
    p = argparse.ArgumentParser(prog="reproduce/gpu_check.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder of everything it writes")
    p.add_argument("--budget-s", type=float, default=530.0,
                   help="wall-clock budget in seconds, counted from the start of the process (default 530: "
                        "done within 9 minutes)")
    p.add_argument("--steps-budget-s", type=float, default=None,
                   help="time for the step measurements (default: 60%% of --budget-s); Tetris cells use the rest")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--tiny", action="store_true",
                   help="the smoke presets measured at batch 2 and the Tetris smoke recipe (a CPU check)")
    p.add_argument("--dry-run-batch", type=int, default=None, metavar="N",
                   help="measure at batch N and scale linearly (default: the preset's batch; 2 with --tiny)")
    p.add_argument("--no-tf32", action="store_true", help="measure with the preset's TF32 setting only")
    p.add_argument("--write-results", action="store_true", help="also write results/gpu_budget.md")
    p.add_argument("--benchmarks", default=",".join(BENCHMARKS),
                   help=f"comma-separated benchmarks to measure (default: all, {','.join(BENCHMARKS)})")
    p.add_argument("--max-tetris-cells", type=int, default=None, metavar="N",
                   help="run at most N Tetris cells (default: as many as the budget holds; 0: none)")
    p.add_argument("--tetris-only", default=None, metavar="MODEL[,MODEL]",
                   help="Tetris cells of these models only (default: every row of the preset)")
    args = p.parse_args(argv)
    try:
        return run(args, t0)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def run(args, t0: float | None = None) -> int:
    import torch
    budget = Budget(args.budget_s, t0)
    if not args.budget_s > 0:
        raise InputError(f"--budget-s must be positive, got {args.budget_s}")
    steps_s = 0.6 * args.budget_s if args.steps_budget_s is None else args.steps_budget_s
    if not 0 < steps_s <= args.budget_s:
        raise InputError(f"--steps-budget-s must be positive and at most --budget-s ({args.budget_s:g}), got {steps_s:g}")
    benchmarks = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    bad = [b for b in benchmarks if b not in BENCHMARKS]
    if bad or not benchmarks:
        raise InputError(f"--benchmarks {args.benchmarks!r}: expected some of {', '.join(BENCHMARKS)}")
    benchmarks = measure_order(benchmarks)
    if args.max_tetris_cells is not None and args.max_tetris_cells < 0:
        raise InputError(f"--max-tetris-cells must be 0 or more, got {args.max_tetris_cells}")
    tetris_only = [m.strip() for m in args.tetris_only.split(",") if m.strip()] if args.tetris_only else None
    if tetris_only:
        known = [r["model"] for r in C.load_preset("tetris", "smoke" if args.tiny else "paper")["grid"]["rows"]]
        if any(m not in known for m in tetris_only):
            raise InputError(f"--tetris-only {args.tetris_only!r}: expected some of {', '.join(known)}")
    batch = args.dry_run_batch if args.dry_run_batch is not None else (2 if args.tiny else 0)
    if batch < 0:
        raise InputError(f"--dry-run-batch must be 0 (the preset's batch) or more, got {batch}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is visible to torch (--device cpu --tiny checks the kit on a CPU)")
    out = Path(args.out).resolve()
    from reproduce.runner.cli import check_writable
    check_writable(out, "--out")
    preset, hardware, code = ("smoke" if args.tiny else "paper"), D.measured_on(args.device), code_version()
    log_lines: list[str] = []

    def log(line: str) -> None:
        print(line, flush=True)
        log_lines.append(line)

    budget.install()
    steps: list[D.CellCost] = []
    tetris: list[dict] = []
    paths = {"steps": out / "steps.csv", "budget": out / "gpu_budget.md", "tetris": out / "tetris_cells.csv"}
    results_budget = REPO_ROOT / "results" / "gpu_budget.md"

    def write_budget(cells) -> None:
        command = "".join(f" {flag}" for flag, on in (("--device cpu", args.device == "cpu"), ("--tiny", args.tiny),
                                                      (f"--dry-run-batch {args.dry_run_batch}", args.dry_run_batch is not None),
                                                      ("--no-tf32", args.no_tf32)) if on)
        text = budget_md(cells, preset, hardware, args.device, batch, command, code)
        atomic_write_text(paths["budget"], text)
        if args.write_results:
            atomic_write_text(results_budget, text)

    def on_benchmark(name, cells) -> None:
        write_steps(paths["steps"], steps + cells)
        steps.extend(cells)
        write_budget(steps)
        atomic_write_text(out / f"steps-{name}.json",
                          json.dumps(D._finite(D.summary(cells, preset, hardware)), indent=1, allow_nan=False) + "\n")

    try:
        log(f"gpu_check: {preset} presets on {hardware}; budget {args.budget_s:.0f} s "
            f"({steps_s:.0f} s for the step measurements)")
        measure_steps(preset, args.device, batch, not args.no_tf32, budget, budget.start + steps_s, log,
                      benchmarks, on_benchmark)
        log(f"wrote {paths['steps']}, {paths['budget']}" + (f", {results_budget}" if args.write_results else ""))
        projected = {c.model: c.run_h * 3600 for c in steps if c.benchmark == "tetris" and math.isfinite(c.run_h)}
        write_tetris(paths["tetris"], [])
        if args.max_tetris_cells != 0 and not budget.stopped:
            tetris = tetris_cells(out, preset, args.device, budget, projected, log, args.max_tetris_cells,
                                  ["trainer.max_epochs=1"] if args.tiny else [], tetris_only,
                                  on_cell=lambda rows: write_tetris(paths["tetris"], rows))
    except D.OutOfTime as e:  # SIGTERM between two parts
        log(f"gpu_check: {e}")
    finally:
        budget.alarm(None)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    elapsed = time.monotonic() - budget.start
    summary = {"preset": preset, "device": args.device, "hardware": hardware, "code": code,
               "finished_at": now(), "budget_s": args.budget_s, "steps_budget_s": steps_s,
               "elapsed_s": round(elapsed, 1), "stopped": budget.stopped or None, "measured_batch": batch or "preset",
               "measurements": sum(c.status == "ok" for c in steps),
               "same_as_measured": sum(c.status == "same" for c in steps),
               "skipped": sum(c.status == "skipped" for c in steps),
               "errors": [f"{c.benchmark} {c.model} {c.setting}: {c.note}" for c in steps if c.status == "error"],
               "hours_fp32": {b: _table_hours([c for c in steps if c.benchmark == b], 0) for b in benchmarks},
               "hours_tf32": {b: _table_hours([c for c in steps if c.benchmark == b], 1) for b in benchmarks},
               "tetris_cells_done": sum(r["rc"] == 0 for r in tetris), "tetris_cells": tetris,
               "files": {k: str(v) for k, v in paths.items()}, "log": log_lines}
    atomic_write_text(out / "summary.json", json.dumps(D._finite(summary), indent=1, allow_nan=False) + "\n")
    md = [f"# gpu_check: {preset} presets on {hardware}", "",
          f"- finished {summary['finished_at']}, code {summary['code']}, {elapsed:.0f} s of a {args.budget_s:.0f} s budget"
          + (f" (stopped by {budget.stopped})" if budget.stopped else ""),
          f"- step measurements: {summary['measurements']} measured, {summary['same_as_measured']} cells with the same "
          f"network and input, {summary['skipped']} skipped, {len(summary['errors'])} errors ({paths['steps'].name})",
          f"- projected hours per table ({paths['budget'].name}): "
          + ", ".join(f"{b} {h:.3g}" for b, h in summary["hours_fp32"].items())
          + ("" if args.device != "cuda" else " (FP32); " + ", ".join(f"{b} {h:.3g}" for b, h in summary["hours_tf32"].items())
             + " (TF32)"),
          f"- Tetris {preset} cells: {summary['tetris_cells_done']} done of {len(tetris)} started ({paths['tetris'].name})"]
    md += [f"  - {r['model']} seed {r['seed']}: rc {r['rc']}, {r['wall_s']:.0f} s, test accuracy {r['test_acc'] or '–'}"
           for r in tetris]
    atomic_write_text(out / "summary.md", "\n".join(md) + "\n")
    log(f"gpu_check: {elapsed:.0f} s of {args.budget_s:.0f}; {summary['measurements']} measurements, "
        f"{summary['tetris_cells_done']} Tetris cells; files in {out}")
    return 0 if not summary["errors"] else 1

