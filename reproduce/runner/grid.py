"""The resumable grid: run what is not finished of the runs
(:func:`reproduce.runner.runs.expand_grid`), and say which CSV rows a table should show.

A finished run (its folder has ``done``) is skipped; an unfinished one resumes from
``last.ckpt``. Each finished run writes ``row.json`` and is upserted into
``results/<benchmark>.csv`` before ``done`` (written last).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import yaml

from datamodules._common import atomic_write_text
from reproduce.runner.checkpoints import prune, resume_point
from reproduce.runner.runs import Run, RunLock, global_rank
from reproduce.runner.launch import Interrupted
from reproduce.runner.store import REPO_ROOT, now, save_artifacts, upsert_rows


def current_rows(rows: list[dict], preset: str, grid: list[Run]) -> list[dict]:
    """CSV rows of ``preset`` that the table should show: a row whose (model, setting, seed) is a
    cell of the current grid but whose run id differs was made with an earlier config and is
    dropped (it stays in the CSV), and so is a row whose (model, setting) the grid no longer has;
    extra seeds of a grid row (e.g. from an earlier ``--runs``) are kept."""
    cells = {r.cell: r.run_id for r in grid}
    grid_rows = {(r.model, r.setting_str) for r in grid}
    out = []
    for row in rows:
        if row.get("preset") != preset or (row.get("model"), row.get("setting")) not in grid_rows:
            continue
        want = cells.get((row.get("model"), row.get("setting"), str(row.get("seed"))))
        if want is not None and row.get("run_id") != want:
            continue
        out.append(row)
    return out


def read_row(run_dir: Path) -> tuple[dict | None, str | None]:
    """(the row in ``row.json``, None) or (None, why it cannot be read); no side effects."""
    try:
        row = json.loads((run_dir / "row.json").read_text())
        if not isinstance(row, dict) or "run_id" not in row:
            raise ValueError("not a row")
        return row, None
    except (OSError, ValueError) as e:
        return None, type(e).__name__


def finished_row(run_dir: Path) -> dict | None:
    """The row of a finished run (``done`` + a readable ``row.json``), else None. A ``done`` whose
    ``row.json`` is unreadable is withdrawn, with one line saying so: the run is then re-tested
    from its final checkpoint instead of aborting the grid."""
    done = run_dir / "done"
    if not done.is_file():
        return None
    row, why = read_row(run_dir)
    if row is None and global_rank() == 0:  # ranks > 0 only read
        print(f"warning: {run_dir / 'row.json'} is unreadable ({why}); the run will be "
              f"tested again from its checkpoint", file=sys.stderr)
        done.unlink(missing_ok=True)
    return row


def started_at(run_dir: Path) -> str:
    """When the run was first started (``started_at`` in its folder, written by its first
    attempt and kept by every resumption)."""
    path = run_dir / "started_at"
    try:
        stamp = path.read_text().strip()
        if stamp:
            return stamp
    except OSError:
        pass
    stamp = now()
    if global_rank() == 0:
        atomic_write_text(path, stamp + "\n")
    return stamp


def csv_rows(row: dict) -> list[dict]:
    """The results-CSV rows of a finished run's ``row.json``: the row itself, or a measurement
    cell's ``rows`` (:mod:`reproduce.runner.measurement`)."""
    return row["rows"] if isinstance(row.get("rows"), list) else [row]


def resync(csv_path: Path, runs: list[Run], runs_dir: Path, name: str) -> None:
    """The run folders are the source of truth: put every finished run's row back into the
    results CSV when it is missing there or differs (a deleted row, an older copy, two
    invocations that interleaved)."""
    rows = [save_artifacts(csv_path, x) for r in (finished_row(run.run_dir(runs_dir)) for run in runs) if r is not None
            for x in csv_rows(r)]
    if rows:
        n = upsert_rows(csv_path, rows)
        if n:
            print(f"[{name}] restored {n} row(s) of finished runs to {os.path.relpath(csv_path, Path.cwd())} "
                  f"from their run folders", file=sys.stderr)


def run_grid(bench, ctx, runs: list[Run]) -> list[dict]:
    rows = []
    csv_path = ctx.results_dir / f"{bench.name}.csv"
    if ctx.is_rank_zero:
        resync(csv_path, runs, ctx.runs_dir, bench.name)
    todo = [r for r in runs if not (r.run_dir(ctx.runs_dir) / "done").is_file()]
    if ctx.is_rank_zero:
        print(f"[{bench.name}] preset={ctx.preset} data={ctx.data_source} hardware={ctx.hardware}: "
              f"{len(runs)} runs, {len(runs) - len(todo)} finished, {len(todo)} to do",
              file=sys.stderr)
    skipped = []
    # what is finished is read once, before any training: every DDP rank walks the grid on its
    # own and must take the same runs, whatever another invocation finishes meanwhile
    finished = [finished_row(run.run_dir(ctx.runs_dir)) for run in runs]
    for i, run in enumerate(runs):
        run_dir = run.run_dir(ctx.runs_dir)
        row = finished[i]
        if row is not None:
            rows.append(row)
            continue
        lock = RunLock(run_dir)
        if ctx.is_rank_zero:  # ranks > 0 never take run locks
            # one process: skip a run that another live invocation holds; DDP ranks must stay in
            # step, so rank 0 waits for it instead
            if not lock.acquire(wait=ctx.launch.world > 1):
                print(f"[{bench.name}] run {i + 1}/{len(runs)}: {run.model} {run.setting_str} seed={run.seed} "
                      f"is being trained by {lock.holder()}; skipped", file=sys.stderr)
                skipped.append(run)
                continue
        try:
            # finished by another process while we waited: one process skips it; DDP ranks all
            # decided from the folders as they found them, so rank 0 goes on in step with them
            # (it resumes from that run's final checkpoint: only the test is repeated)
            row = finished_row(run_dir) if ctx.launch.world == 1 else None
            if row is not None:
                rows.append(row)
                continue
            rows.append(_train(bench, ctx, run, i, len(runs), csv_path))
        except Interrupted as e:
            e.finished, e.total = len(rows), len(runs)
            raise
        finally:
            lock.release()
    if skipped and ctx.is_rank_zero:
        print(f"[{bench.name}] {len(skipped)} run(s) held by another process were skipped; rerun the "
              f"command when it has finished to include them", file=sys.stderr)
    return rows


def _train(bench, ctx, run: Run, i: int, n: int, csv_path: Path) -> dict:
    run_dir = run.run_dir(ctx.runs_dir)
    if ctx.is_rank_zero:
        print(f"[{bench.name}] run {i + 1}/{n}: {run.model} {run.setting_str} "
              f"seed={run.seed} -> {os.path.relpath(run_dir, REPO_ROOT)}", file=sys.stderr)
        write_run_config(run, run_dir, ctx.data_dir)
    started = started_at(run_dir)
    from reproduce.runner.trainer import fit_and_test  # Lightning: imported only to train
    metrics = fit_and_test(bench, ctx, run)
    row = {"model": run.model, "setting": run.setting_str, "seed": run.seed,
           "preset": run.preset, "data_source": ctx.data_source, "hardware": ctx.hardware,
           "code_version": ctx.code_version, "started_at": started,
           **{f"setting_{k}": v for k, v in run.setting.items()},
           **metrics, "run_id": run.run_id,
           "run_dir": os.path.relpath(run_dir, REPO_ROOT)}
    parts = row.pop("rows", None)
    if parts is not None:  # a measurement cell: several CSV rows, each with the cell's columns
        cell = {k: v for k, v in row.items() if k != "wall_s"}
        ident = {k: row[k] for k in ("model", "setting", "seed", "preset", "run_id")}
        row = {**ident, "cell_wall_s": row["wall_s"],
               "rows": [{**cell, **part, **ident, "cell_wall_s": row["wall_s"]} for part in parts]}
    if ctx.is_rank_zero:
        row = save_artifacts(csv_path, row)  # figure inputs as files beside the CSV, their paths in the row
        atomic_write_text(run_dir / "row.json", json.dumps(row, indent=1, default=str))
        upsert_rows(csv_path, csv_rows(row))
        atomic_write_text(run_dir / "done", started + "\n")  # written last: the run is finished
        if metrics.get("checkpoint"):  # smoke/cpu: only the tested checkpoint stays (--keep-checkpoints)
            prune(run_dir, Path(str(metrics["checkpoint"])).name, ctx.keep_checkpoints)
    return row


def write_run_config(run: Run, run_dir: Path, data_dir: Path | None) -> None:
    """``config.yaml`` of a run folder: what rebuilds the run (``--evaluate``,
    :func:`reproduce.load.load_run`) — benchmark, model, setting, seed, preset, the resolved
    config, and the data folder it was trained on (informative: another can be given)."""
    atomic_write_text(Path(run_dir) / "config.yaml", yaml.safe_dump(
        {"benchmark": run.benchmark, "model_name": run.model, "setting": run.setting,
         "seed": run.seed, "preset": run.preset, "config": run.cfg,
         "data_dir": str(data_dir) if data_dir is not None else None}, sort_keys=False))


def run_state(run_dir: Path) -> str:
    """done, retest (``done`` but ``row.json`` unreadable), resumable (a checkpoint that loads),
    damaged (checkpoints that do not), or todo."""
    if (run_dir / "done").is_file():
        why = read_row(run_dir)[1]
        return "done" if why is None else f"retest (row.json unreadable: {why})"
    ckpt, damaged = resume_point(run_dir / "checkpoints")
    if ckpt is not None:
        return "resumable" if ckpt.name == "last.ckpt" else "resumable (from last.ckpt.prev; last.ckpt damaged)"
    return "damaged (will restart)" if damaged else "todo"


def list_grid(ctx, runs: list[Run]) -> None:
    for run in runs:
        d = run.run_dir(ctx.runs_dir)
        print(f"{run_state(d):9s} {run.model:18s} {run.setting_str:28s} seed={run.seed}  "
              f"{os.path.relpath(d, REPO_ROOT)}")
