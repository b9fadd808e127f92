"""A grid cell is a job: the grid driver hands cells to a launcher, each cell runs as
``reproduce/<benchmark>.py <same options> --cell <run id>`` (every DDP rank of a cell runs that
same command, so Lightning's re-executed ranks can never pick another run).

* ``local`` (default): the cells one after another in this process, as they always ran; with
  DDP (``--gpus N`` / ``--cpu-procs N``, N > 1) each cell is a child command, so the processes
  Lightning starts for it run that cell and nothing else;
* ``--jobs K``: K cell commands at once on this machine, each logging to
  ``<run dir>/logs/cell.log``;
* ``--launcher slurm``: one SLURM job array through submitit, one array task per cell
  (``--gpus``/``--cpu-procs`` tasks per node on ``--num-nodes`` nodes, ``--partition``,
  ``--time``, ``--account``; ``--jobs K`` caps the tasks running at once). submitit keeps its
  own files under ``<runs dir>/<benchmark>/<preset>/slurm/``; each cell's output goes to
  ``<run dir>/logs/slurm-<job>-rank<r>.log``. The command returns once submitted; the same
  command with ``--table`` writes the table when the jobs have finished (``--wait``: wait
  for them and write it).

A cell command takes the run lock, resumes and writes the run's row like any run of the grid,
so a cell that is run twice, killed or requeued behaves as in the sequential grid.
"""
from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from datamodules._common import InputError
from reproduce.runner.grid import finished_row
from reproduce.runner.runs import Run
from reproduce.runner.store import REPO_ROOT

#: the submitit cluster ``--launcher slurm`` submits to ("local" runs the array on this machine)
CLUSTER = "slurm"

#: options of the grid driver that a cell command does not take (name -> takes a value)
DRIVER_OPTIONS = {"--jobs": True, "--launcher": True, "--partition": True, "--time": True, "--account": True,
                  "--wait": False, "--cell": True}


def cell_argv(argv: list[str]) -> list[str]:
    """``argv`` without the driver's own options (``--jobs 3`` and ``--jobs=3`` alike)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name in DRIVER_OPTIONS:
            skip = DRIVER_OPTIONS[name] and "=" not in a
            continue
        out.append(a)
    return out


def script_of(bench) -> str:
    """The script that declares ``bench`` (``reproduce/<name>.py``), which a cell command runs."""
    return str(Path(inspect.getfile(type(bench))).resolve())


def cell_command(bench, argv: list[str], run: Run) -> list[str]:
    return [sys.executable, script_of(bench), *cell_argv(argv), "--cell", run.run_id]


def parse_time(text: str | None) -> int | None:
    """``--time`` in SLURM's formats, as whole minutes (seconds rounded up): ``M``, ``M:S``,
    ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``.

    >>> [parse_time(t) for t in ("90", "30:00", "1:30:00", "2-00:00:00", "1-12", "0:0:30")]
    [90, 30, 90, 2880, 2160, 1]
    >>> parse_time(None) is None
    True
    """
    if text is None:
        return None
    try:
        days, sep, rest = text.partition("-") if "-" in text else ("", "", text)
        parts = [int(p) for p in rest.split(":")]
        if any(p < 0 for p in parts) or not 1 <= len(parts) <= 3:
            raise ValueError(text)
        if sep:  # D-H, D-H:M, D-H:M:S
            h, m, sec = (parts + [0, 0])[:3]
            seconds = ((int(days) * 24 + h) * 60 + m) * 60 + sec
        else:  # M, M:S, H:M:S
            h, m, sec = parts if len(parts) == 3 else (0, *parts, 0)[:3]
            seconds = (h * 60 + m) * 60 + sec
    except ValueError:
        raise InputError(f"--time {text!r}: expected minutes, M:S, H:M:S or D-H:M:S (SLURM's formats)") from None
    minutes = -(-seconds // 60)
    if minutes < 1:
        raise InputError(f"--time {text!r} must be at least one minute")
    return minutes


def _line(bench, i: int, n: int, run: Run, what: str) -> None:
    print(f"[{bench.name}] cell {i + 1}/{n}: {run.model} {run.setting_str} seed={run.seed} ({run.run_id}) {what}",
          file=sys.stderr, flush=True)


def _stop(procs: list[subprocess.Popen], signum: int) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signum)
    for p in procs:
        try:
            p.wait(timeout=600)
        except subprocess.TimeoutExpired:
            p.kill()


def run_local(bench, ctx, todo: list[Run], argv: list[str], jobs: int) -> int:
    """Cell commands on this machine, ``jobs`` at once (1: in order, output to this console;
    more: each to ``<run dir>/logs/cell.log``). Returns 0, or the exit status of the first cell
    that failed (the others still run; a signal stops them all, each saving its checkpoint)."""
    queue = list(enumerate(todo))
    live: list[tuple[int, Run, subprocess.Popen, Path | None]] = []
    failed: list[tuple[Run, int, Path | None]] = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        while queue or live:
            while queue and len(live) < jobs:
                i, run = queue.pop(0)
                cmd = cell_command(bench, argv, run)
                if jobs == 1:
                    log = None
                    p = subprocess.Popen(cmd, env=env, cwd=REPO_ROOT)
                else:
                    log = run.run_dir(ctx.runs_dir) / "logs" / "cell.log"
                    log.parent.mkdir(parents=True, exist_ok=True)
                    with open(log, "a") as f:
                        p = subprocess.Popen(cmd, env=env, cwd=REPO_ROOT, stdout=f, stderr=subprocess.STDOUT)
                    _line(bench, i, len(todo), run, f"started (log {os.path.relpath(log, Path.cwd())})")
                live.append((i, run, p, log))
            time.sleep(0.2)
            for item in [x for x in live if x[2].poll() is not None]:
                live.remove(item)
                i, run, p, log = item
                if p.returncode == 0:
                    if jobs > 1:
                        _line(bench, i, len(todo), run, "finished")
                    continue
                failed.append((run, p.returncode, log))
                _line(bench, i, len(todo), run, f"failed with exit status {p.returncode}"
                      + (f"; see {os.path.relpath(log, Path.cwd())}" if log else ""))
                sig = p.returncode - 128 if p.returncode > 128 else -p.returncode if p.returncode < 0 else 0
                if sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
                    # stopped by a signal: stop the grid as the sequential one does
                    from reproduce.runner.trainer import Interrupted
                    _stop([x[2] for x in live], signal.SIGTERM)
                    raise Interrupted(sig)
    except BaseException:
        _stop([x[2] for x in live], signal.SIGTERM)
        raise
    if failed:
        print(f"[{bench.name}] {len(failed)} of {len(todo)} cell(s) failed; run the same command again to "
              f"retry them (finished cells are kept)", file=sys.stderr)
        return failed[0][1] if failed[0][1] in (1, 2) else 1
    return 0


def cell_job(cmd: list[str], log_dir: Path):
    """What a SLURM array task runs: the cell command with its output appended to
    ``<log_dir>/slurm-<job>_<task>-rank<r>.log`` (one file per DDP task), through submitit's
    own :class:`submitit.helpers.CommandFunction`; the task fails when the command does."""
    import shlex

    from submitit.helpers import CommandFunction
    log = (shlex.quote(str(log_dir)) + '/slurm-"${SLURM_ARRAY_JOB_ID:-${SLURM_JOB_ID:-${SUBMITIT_LOCAL_JOB_ID:-local}}}"'
           '_"${SLURM_ARRAY_TASK_ID:-0}"-rank"${SLURM_PROCID:-0}".log')
    line = (f"mkdir -p {shlex.quote(str(log_dir))} && PYTHONUNBUFFERED=1 EB_NO_PROGRESS=1 exec "
            f"{shlex.join(cmd)} >> {log} 2>&1")
    return CommandFunction(["bash", "-c", line], verbose=False, cwd=REPO_ROOT)


def slurm_executor(folder: Path, launch, args, name: str):
    """A submitit executor for this invocation's cells (``CLUSTER``: ``slurm`` or ``local``)."""
    try:
        import submitit
    except ImportError:
        raise InputError("--launcher slurm needs submitit (pip install submitit)") from None
    ex = submitit.AutoExecutor(folder=str(folder), cluster=CLUSTER)
    per_node = launch.gpus or max(1, launch.cpu_procs)
    params = {"name": name, "nodes": launch.num_nodes, "tasks_per_node": per_node}
    if launch.gpus:
        params["gpus_per_node"] = launch.gpus
    minutes = parse_time(args.time)
    if minutes is not None:
        params["timeout_min"] = minutes
    if args.partition:
        params["slurm_partition"] = args.partition
    if args.account:
        params["slurm_account"] = args.account
    if args.jobs > 1:
        params["slurm_array_parallelism"] = args.jobs
    ex.update_parameters(**params)
    return ex


def run_slurm(bench, ctx, todo: list[Run], argv: list[str], args) -> tuple[int, bool]:
    """Submit the cells as one job array; with ``args.wait`` wait for every task. Returns (exit
    status, whether the jobs have finished)."""
    folder = ctx.runs_dir / bench.name / ctx.preset / "slurm"
    ex = slurm_executor(folder, ctx.launch, args, f"{bench.name}-{ctx.preset}")
    work = [cell_job(cell_command(bench, argv, run), run.run_dir(ctx.runs_dir) / "logs") for run in todo]
    jobs = []
    with ex.batch():
        for fn in work:
            jobs.append(ex.submit(fn))
    ids = [j.job_id for j in jobs]
    print(f"[{bench.name}] submitted {len(jobs)} cell(s) as job(s) {', '.join(ids)}; submitit files in "
          f"{os.path.relpath(folder, Path.cwd())}, each cell's output in <run dir>/logs/slurm-*.log",
          file=sys.stderr)
    if not args.wait:
        print(f"[{bench.name}] when they have finished, the same command with --table writes the table",
              file=sys.stderr)
        return 0, False
    failed = 0
    for run, job in zip(todo, jobs):
        try:
            job.result()
        except Exception as e:  # noqa: BLE001 - a failed task: say which, go on with the others
            failed += 1
            print(f"[{bench.name}] cell {run.model} {run.setting_str} seed={run.seed} ({run.run_id}) failed: "
                  f"{str(e).strip().splitlines()[-1][:300] if str(e).strip() else type(e).__name__}", file=sys.stderr)
    return (1 if failed else 0), True


def finished_rows(ctx, runs: list[Run]) -> list[dict]:
    return [r for r in (finished_row(run.run_dir(ctx.runs_dir)) for run in runs) if r is not None]
