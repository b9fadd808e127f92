"""GPU evidence kit: what the `paper` presets cost on this GPU, in one folder, within a time budget.

    python reproduce/gpu_check.py [--out DIR] [--budget-s 540] [--write-results]
    python reproduce/gpu_check.py --device cpu --tiny --out /tmp/check   # the same on small sizes

1. every `paper` cell's backbone at its paper input size and the preset's training batch: build
   time, step time and peak memory, with TF32 off (the runner's default, ``trainer.tf32``) and on
   (the ``--dry-run`` measurement, :mod:`reproduce.runner.dryrun`; one measurement per distinct
   network and input) → ``steps.csv``;
2. the projected GPU-hours of every paper table from those steps → ``gpu_budget.md`` (in
   ``results/`` with ``--write-results``, else in the out folder);
3. as many Tetris `paper` cells as the rest of the budget holds, each a
   ``reproduce/tetris.py --preset paper --gpus 1 --logger csv --only MODEL --seed S --runs 1``
   with its runs and results under the out folder (models in turn, seed by seed) →
   ``tetris_cells.csv`` and ``tetris/results/tetris.{csv,md}``.

Budget guard: no new measurement or Tetris cell starts when the time left is below its measured
cost (the dearest measurement so far; for a Tetris cell its model's last wall time, or its
projection plus the measured start-up before one has run); a cell still running at the end of the
budget is stopped and stays resumable. ``--tiny`` runs the `smoke` presets (small inputs and
networks) instead of `paper`: what the tests run on the CPU. ``summary.json`` says what ran.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datamodules._common import InputError, atomic_write_text
from reproduce.runner import config as C
from reproduce.runner import dryrun as D
from reproduce.runner.benchmark import Context
from reproduce.runner.grid import expand_grid
from reproduce.runner.store import REPO_ROOT, code_version, machine, now
from reproduce.runner.trainer import Launch

BENCHMARKS = ("tetris", "rotated_mnist", "cosmology", "climate", "shrec17", "cath")


def load_bench(name: str):
    import importlib
    return importlib.import_module(f"reproduce.{name}").BENCH


def measure_steps(preset: str, device: str, deadline: float, log,
                  benchmarks=BENCHMARKS) -> list[tuple[bool, D.CellCost]]:
    """(tf32, cell) for every cell of every benchmark's preset, TF32 off then on per benchmark."""
    out, cost = [], 0.0
    for name in benchmarks:
        bench = load_bench(name)
        for tf32 in (False, True):
            cfg = C.apply_overrides(C.load_preset(name, preset, bench.config_root), [f"trainer.tf32={str(tf32).lower()}"])
            runs = expand_grid(bench, cfg)
            ctx = Context(cfg=cfg, preset=preset, launch=Launch(gpus=int(device == "cuda"), logger="none"),
                          data_dir=None, generate=False, data_source="", hardware=machine(device),
                          results_dir=Path("."), runs_dir=Path("."), code_version="")
            for run in runs:
                bench.check(ctx, run)
            cells = D.dry_run(bench, ctx, runs, batch=0, device=device, deadline=deadline, cost_s=cost,
                              on_cell=lambda c, t=tf32: log(f"tf32={'on' if t else 'off'} " + D.fmt_line(c)))
            cost = max([cost] + [c.build_s + c.first_step_s + c.step_s for c in cells if c.status == "ok"])
            out += [(tf32, c) for c in cells]
    return out


def write_steps(path: Path, rows: list[tuple[bool, D.CellCost]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, ["tf32", *D.COLUMNS], lineterminator="\n")
    w.writeheader()
    for tf32, c in rows:
        w.writerow({"tf32": tf32, **{k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(c).items()}})
    atomic_write_text(path, buf.getvalue())


def budget_md(rows: list[tuple[bool, D.CellCost]], preset: str, hardware: str) -> str:
    """The projected GPU-hours per table (TF32 off and on) and per cell."""
    def h(x: float) -> str:
        return "–" if not x == x else f"{x:.3g}"

    lines = [f"# Projected GPU-hours of the `{preset}` tables", "",
             f"Measured by `python reproduce/gpu_check.py` on {hardware}, {now()[:10]}, code {code_version()}. "
             "Training steps only (no data loading, validation or test): the step at the preset's batch × "
             "`max_epochs` × steps per epoch of the published training set × runs per row. "
             "`trainer.tf32` is off in every preset (FP32, as the papers trained); the TF32 column is what "
             "`trainer.tf32=true` would cost.", "",
             "| table | cells | GPU-hours, FP32 | GPU-hours, TF32 | not measured |", "|---|---|---|---|---|"]
    for name in BENCHMARKS:
        cells = {t: [c for tt, c in rows if tt == t and c.benchmark == name] for t in (False, True)}
        if not cells[False]:
            continue
        missing = [c for c in cells[False] + cells[True] if c.status in ("skipped", "error")]
        custom = sum(c.status == "custom" for c in cells[False])
        note = (f"{len(missing)} cell measurements skipped or failed" if missing else "") + \
               (f"{'; ' if missing else ''}{custom} SVM cells (not a gradient step)" if custom else "")
        lines.append(f"| {name} | {len(cells[False])} | {h(D.total_hours(cells[False]))} | "
                     f"{h(D.total_hours(cells[True]))} | {note or '–'} |")
    lines += ["", "| table | model | setting | runs | batch | step s, FP32 | step s, TF32 | peak MiB, FP32 | "
                  "steps/run | GPU-hours, FP32 |", "|---|---|---|---|---|---|---|---|---|---|"]
    tf = {(c.benchmark, c.model, c.setting): c for t, c in rows if t}
    for t, c in rows:
        if t or c.status == "custom":
            continue
        on = tf.get((c.benchmark, c.model, c.setting))
        lines.append(f"| {c.benchmark} | {c.model} | {c.setting} | {c.runs} | {c.measured_batch or c.batch} | "
                     f"{h(c.step_s)} | {h(on.step_s if on else math.nan)} | {h(c.peak_mb)} | {c.steps_per_run} | "
                     f"{h(c.cell_h)}{'' if c.status in ('ok', 'same') else ' (' + c.note + ')'} |")
    return "\n".join(lines) + "\n"


def tetris_cells(out: Path, preset: str, device: str, deadline: float, projected: dict[str, float], log,
                 limit: int | None = None) -> list[dict]:
    """Tetris cells, models in turn seed by seed, while the budget lasts (see the module docstring)."""
    cfg = C.load_preset("tetris", preset)
    models = [r["model"] for r in cfg["grid"]["rows"]]
    order = [(m, s) for s in range(int(cfg["grid"]["runs"])) for m in models][:limit]
    cmd0 = [sys.executable, str(REPO_ROOT / "reproduce" / "tetris.py"), "--preset", preset, "--logger", "csv",
            "--runs-dir", str(out / "tetris" / "runs"), "--results-dir", str(out / "tetris" / "results"),
            "--runs", "1"] + (["--gpus", "1"] if device == "cuda" else [])
    env = {**os.environ, "EB_NO_PROGRESS": "1"}
    walls: dict[str, float] = {}
    startup = 30.0  # seconds a process takes besides its training steps, until one has been measured
    rows = []
    for model, seed in order:
        cost = walls.get(model, projected.get(model, 0.0) + startup)
        left = deadline - time.monotonic()
        if left < cost:
            log(f"tetris: {left:.0f} s left, the next cell ({model} seed {seed}) costs ~{cost:.0f} s: stop")
            break
        t0 = time.monotonic()
        try:
            p = subprocess.run(cmd0 + ["--only", model, "--seed", str(seed)], env=env, cwd=REPO_ROOT,
                               timeout=max(left, 1), capture_output=True, text=True)
            rc, tail = p.returncode, (p.stderr or "").strip().splitlines()[-1:]
            atomic_write_text(out / "tetris" / "logs" / f"{model}-seed{seed}.log", (p.stdout or "") + (p.stderr or ""))
        except subprocess.TimeoutExpired:
            rc, tail = "timeout", ["stopped at the end of the budget (resumable)"]
        wall = time.monotonic() - t0
        rows.append({"model": model, "seed": seed, "wall_s": round(wall, 2), "rc": rc,
                     "projected_train_s": round(projected.get(model, math.nan), 2), "last_line": " ".join(tail)})
        log(f"tetris: {model} seed {seed}: rc {rc}, {wall:.0f} s")
        if rc != 0:
            break
        walls[model] = wall
        startup = max(0.0, wall - projected.get(model, 0.0))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="reproduce/gpu_check.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO_ROOT / "runs" / "gpu_check"), help="folder of everything it writes")
    p.add_argument("--budget-s", type=float, default=540.0, help="wall-clock budget in seconds (default 540)")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--tiny", action="store_true", help="the smoke presets (small sizes) instead of paper")
    p.add_argument("--write-results", action="store_true", help="write results/gpu_budget.md (else into --out)")
    p.add_argument("--benchmarks", default=",".join(BENCHMARKS),
                   help=f"comma-separated benchmarks to measure (default: all, {','.join(BENCHMARKS)})")
    p.add_argument("--max-tetris-cells", type=int, default=None, metavar="N",
                   help="run at most N Tetris cells (default: as many as the budget holds; 0: none)")
    args = p.parse_args(argv)
    try:
        return run(args)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def run(args) -> int:
    import torch
    start = time.monotonic()
    deadline = start + args.budget_s
    if args.budget_s <= 0:
        raise InputError(f"--budget-s must be positive, got {args.budget_s}")
    benchmarks = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    bad = [b for b in benchmarks if b not in BENCHMARKS]
    if bad or not benchmarks:
        raise InputError(f"--benchmarks {args.benchmarks!r}: expected some of {', '.join(BENCHMARKS)}")
    if args.max_tetris_cells is not None and args.max_tetris_cells < 0:
        raise InputError(f"--max-tetris-cells must be 0 or more, got {args.max_tetris_cells}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is visible (use --device cpu --tiny for the CPU check)")
    out = Path(args.out).resolve()
    from reproduce.runner.cli import check_writable
    check_writable(out, "--out")
    preset, hardware = ("smoke" if args.tiny else "paper"), machine(args.device)
    log_lines: list[str] = []

    def log(line: str) -> None:
        print(line, flush=True)
        log_lines.append(line)

    steps = measure_steps(preset, args.device, deadline, log, benchmarks)
    write_steps(out / "steps.csv", steps)
    budget = REPO_ROOT / "results" / "gpu_budget.md" if args.write_results else out / "gpu_budget.md"
    atomic_write_text(budget, budget_md(steps, preset, hardware))
    log(f"wrote {budget}")
    projected = {c.model: c.run_h * 3600 for t, c in steps if not t and c.benchmark == "tetris" and c.status == "ok"}
    cells = tetris_cells(out, preset, args.device, deadline, projected, log, args.max_tetris_cells)
    buf = io.StringIO()
    w = csv.DictWriter(buf, ["model", "seed", "wall_s", "rc", "projected_train_s", "last_line"], lineterminator="\n")
    w.writeheader()
    w.writerows(cells)
    atomic_write_text(out / "tetris_cells.csv", buf.getvalue())
    summary = {"preset": preset, "device": args.device, "hardware": hardware, "code": code_version(),
               "budget_s": args.budget_s, "elapsed_s": round(time.monotonic() - start, 1),
               "measurements": sum(c.status == "ok" for _, c in steps),
               "skipped": sum(c.status == "skipped" for _, c in steps),
               "tetris_cells_done": sum(r["rc"] == 0 for r in cells), "gpu_budget": str(budget), "log": log_lines}
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1) + "\n")
    log(f"gpu_check: {summary['elapsed_s']} s of {args.budget_s:.0f}; {summary['measurements']} measurements, "
        f"{summary['tetris_cells_done']} Tetris cells; files in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
