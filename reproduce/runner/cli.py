"""The command line every ``reproduce/<benchmark>.py`` shares, and its entry point :func:`main`.

Options: ``--preset --runs --seed --gpus --num-nodes --cpu-procs --data-dir --stand-in --logger
--results-dir --runs-dir --only --evaluate --list --table --max-epochs --dry-run --dry-run-batch
--dry-run-out``, the launcher options ``--cell --launcher --jobs --partition --time --account --wait``
(:mod:`reproduce.runner.launchers`), ``key.sub=value`` config overrides, plus the options a benchmark
adds for its own commands
(:meth:`~reproduce.runner.benchmark.Benchmark.add_arguments` / ``command``, run before anything else). Bad input raises :class:`datamodules._common.InputError`; :func:`main` prints
one line ``error: …`` and returns 2 before anything is written to ``results/``.

Exit status: 0 done; 2 bad input (before any run folder exists); 1 a file that cannot be written
or read while running (full disk, read-only folder: one ``error:`` line naming it); 128 + the
signal when stopped by one — 130 Ctrl-C, 143 SIGTERM, 138 SIGUSR1 (outside SLURM) — with one line
saying the grid is incomplete and that the same command resumes it (SIGTERM and SIGUSR1 save a
``last.ckpt`` first; under SLURM, Lightning's requeue on SIGUSR1 is left as it is).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from datamodules._common import InputError, is_stand_in
from reproduce.runner import config as C
from reproduce.runner.benchmark import Benchmark, Context
from reproduce.runner.grid import current_rows, list_grid, run_grid
from reproduce.runner.runs import expand_grid, global_rank, set_launch
from reproduce.runner.store import REPO_ROOT, code_version, hardware, read_rows
from reproduce.runner.launch import (ACCELERATORS, PRECISIONS, STRATEGIES, Interrupted, Launch, check_nodes,
                                     check_strategy, install_signal_handlers, precision_override, resolve_devices)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The script's text as written, and each option's default where it has one (``None`` and
    ``False`` defaults say theirs in words, or are off)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("%(default)" not in text and "default" not in text and action.option_strings
                and action.default not in (None, False, argparse.SUPPRESS)):
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """An argparse parser whose refusals are one ``error:`` line (as every other refusal of the
    runner), exit status 2, instead of the usage block and ``prog: error:``."""

    def error(self, message: str):
        self.exit(2, f"error: {message} ({self.prog} --help lists the options)\n")


def presets(name: str, config_root: Path = C.CONFIG_ROOT) -> list[str]:
    """The presets of a benchmark: the ``configs/<name>/<preset>.yaml`` that exist, in the order
    smoke, cpu, paper."""
    return [p for p in C.PRESETS if (Path(config_root) / name / f"{p}.yaml").is_file()]


def build_parser(bench, doc: str | None) -> argparse.ArgumentParser:
    """The shared options, and those of the benchmark's own commands (``bench.add_arguments``)."""
    p = Parser(prog=f"reproduce/{bench.name}.py", description=doc, formatter_class=HelpFormatter)
    choices = presets(bench.name, bench.config_root)
    p.add_argument("--preset", default=None, choices=choices,
                   help="configs/%s/<preset>.yaml (default: paper on GPUs, else cpu)" % bench.name)
    p.add_argument("--runs", type=int, default=None, help="repeats per row (default: the config's grid.runs)")
    p.add_argument("--seed", type=int, default=0, help="first seed; runs use seed..seed+R-1")
    p.add_argument("--max-epochs", type=int, default=None, help="override trainer.max_epochs "
                   "(default: the config's)")
    d = p.add_argument_group("devices (Lightning's Trainer arguments; reproduce/runner/launch.py)")
    d.add_argument("--accelerator", choices=ACCELERATORS, default=None,
                   help="default: gpu with --gpus, else cpu; auto: the GPUs when CUDA shows any")
    d.add_argument("--devices", default=None, metavar="N|auto",
                   help="processes per node: GPUs with a GPU accelerator, CPU processes (DDP, gloo) on the CPU "
                        "(default: 1)")
    d.add_argument("--gpus", type=int, default=None, metavar="N",
                   help="short for --accelerator gpu --devices N; N > 1 runs DDP (default: 0, the CPU)")
    d.add_argument("--cpu-procs", type=int, default=None, metavar="N",
                   help="short for --accelerator cpu --devices N: DDP over N CPU processes (default: 1)")
    d.add_argument("--num-nodes", type=int, default=1, metavar="N",
                   help="nodes, each running --devices processes; needs SLURM (srun or --launcher slurm), "
                        "torchrun, or MASTER_ADDR/NODE_RANK set on each node")
    d.add_argument("--strategy", choices=STRATEGIES, default="auto",
                   help="auto: DDP when more than one process; ddp: ask for it (other strategies are not "
                        "supported: every DDP rank re-runs this script's cell)")
    d.add_argument("--precision", choices=PRECISIONS, default=None, metavar="P",
                   help="trainer.precision on GPUs (%s; default: the config's, float32); CPU runs "
                        "train in float32" % ", ".join(PRECISIONS[:6]))
    p.add_argument("--data-dir", default=None,
                   help="folder with the benchmark's published files (default: a generated "
                        "stand-in under data/<benchmark>/)")
    p.add_argument("--stand-in", action="store_true",
                   help="write the offline stand-in into --data-dir (if not there) and use it")
    p.add_argument("--logger", choices=["wandb", "csv", "none"], default="wandb",
                   help="wandb: W&B (offline unless WANDB_MODE/WANDB_API_KEY say otherwise) + CSV; "
                        "csv: CSV only; none: no per-step logs (results CSV is always written)")
    p.add_argument("--log-checkpoints", action="store_true",
                   help="with --logger wandb: log each run's tested checkpoint and its config.yaml as a "
                        "W&B model artifact (off by default: checkpoints can be large)")
    p.add_argument("--results-dir", default=None,
                   help="where <benchmark>.csv/.md go (default: results/, smoke: results/smoke/)")
    p.add_argument("--runs-dir", default=str(REPO_ROOT / "runs"),
                   help="checkpoints and logs (default: runs/ in the repository)")
    p.add_argument("--keep-checkpoints", choices=["selected", "all"], default=None,
                   help="what a finished run keeps: selected = the tested checkpoint only (best.ckpt or "
                        "last.ckpt), all = last.ckpt too, with its optimizer state (default: selected for "
                        "smoke and cpu, all for paper)")
    p.add_argument("--only", default=None, help="comma-separated models to run (default: all)")
    p.add_argument("--evaluate", default=None, metavar="CKPT",
                   help="re-score a saved checkpoint on --data-dir (no training)")
    p.add_argument("--allow-mismatch", action="store_true",
                   help="with --evaluate: score data of another resolution, sampling or class count than "
                        "the checkpoint's (each difference is said in one line); refused without it")
    p.add_argument("--list", action="store_true",
                   help="check the config and overrides, print the grid and each run's state; train nothing")
    p.add_argument("--table", action="store_true",
                   help="rewrite results/<benchmark>.md (and figures) from its CSV; train nothing")
    p.add_argument("--dry-run", action="store_true",
                   help="build every cell at full size, time optimiser steps on a small synthetic batch, "
                        "project the table's wall time; writes no run, log or checkpoint")
    p.add_argument("--dry-run-batch", type=int, default=2, metavar="N",
                   help="batch of the --dry-run steps (0: the preset's own batch)")
    p.add_argument("--dry-run-out", default=None, metavar="DIR",
                   help="also write the --dry-run figures as <benchmark>-<preset>-dryrun.{csv,json} in DIR")
    g = p.add_argument_group("launching the grid's cells (reproduce/runner/launchers.py)")
    g.add_argument("--cell", default=None, metavar="RUN_ID",
                   help="run exactly this cell of the grid (its run id: the hash in its run folder's "
                        "name, see --list); what a launcher runs for each cell")
    g.add_argument("--launcher", choices=["local", "slurm"], default="local",
                   help="local: cells on this machine; slurm: one job array through "
                        "submitit, one task per cell")
    g.add_argument("--jobs", type=int, default=1,
                   help="local: cells run at once (1: one after another); slurm: array "
                        "tasks running at once (default: 1 locally, no cap on SLURM)")
    g.add_argument("--partition", default=None, help="slurm: partition")
    g.add_argument("--time", default=None,
                   help="slurm: time limit per cell (minutes, M:S, H:M:S or D-H:M:S as SLURM reads it)")
    g.add_argument("--account", default=None, help="slurm: account")
    g.add_argument("--wait", action="store_true",
                   help="slurm: wait for the cells and write the table (without it: return once submitted; "
                        "write it later with --table)")
    p.add_argument("overrides", nargs="*", help="config overrides, key.sub=value")
    bench.add_arguments(p)  # options of the benchmark's own commands (Benchmark.command)
    return p


def resolve_launch(args: argparse.Namespace) -> Launch:
    """The devices of this invocation from the device options (:mod:`reproduce.runner.launch`);
    ``args.gpus``/``args.cpu_procs`` are set to what was resolved. Contradictions and requests this
    machine cannot meet are an :class:`InputError`, before any folder or W&B run exists."""
    gpus, procs = resolve_devices(args.accelerator, args.devices, args.gpus, args.cpu_procs)
    args.gpus, args.cpu_procs = gpus, procs
    check_nodes(args.num_nodes, args.launcher)
    if args.log_checkpoints and args.logger != "wandb":
        raise InputError(f"--log-checkpoints logs W&B artifacts; it needs --logger wandb, not {args.logger}")
    launch = Launch(gpus=gpus, num_nodes=args.num_nodes, cpu_procs=procs, logger=args.logger,
                    strategy=args.strategy, log_checkpoints=args.log_checkpoints)
    check_strategy(args.strategy, launch.world)
    return launch


def resolve_config(bench: Benchmark, args: argparse.Namespace) -> dict:
    preset = args.preset or ("paper" if args.gpus else "cpu")
    cfg = C.load_preset(bench.name, preset, bench.config_root)
    # --evaluate applies the overrides to the checkpoint's own config (evaluate.load_run)
    cfg = C.apply_overrides(cfg, [] if args.evaluate else args.overrides)
    if args.runs is not None:
        if args.runs < 1:
            raise InputError("--runs must be at least 1")
        cfg.setdefault("grid", {})["runs"] = args.runs
        for row in cfg["grid"].get("rows") or []:  # --runs N: N runs of every row
            if isinstance(row, dict):
                row.pop("runs", None)
    if args.max_epochs is not None:
        if args.max_epochs < 1:
            raise InputError(f"--max-epochs must be at least 1, got {args.max_epochs}")
        cfg.setdefault("trainer", {})["max_epochs"] = args.max_epochs
    precision = precision_override(getattr(args, "precision", None), getattr(args, "gpus", 0) or 0,
                                   (cfg.get("trainer") or {}).get("precision"))
    if precision is not None:
        cfg.setdefault("trainer", {})["precision"] = precision
    return bench.configure(cfg, args)


def resolve_data_dir(bench: Benchmark, args: argparse.Namespace, preset: str) -> tuple[Path | None, bool]:
    """(data dir, whether to generate the stand-in there)."""
    if not bench.uses_data_dir:
        return None, False
    if args.data_dir is None:
        return REPO_ROOT / "data" / bench.name / f"stand-in-{preset}", True
    d = Path(args.data_dir).expanduser().resolve()
    if args.stand_in:
        return d, True
    if not d.exists():
        raise InputError(f"{bench.name}: --data-dir {d} does not exist (give the folder with the "
                         f"published files, or add --stand-in to generate the offline stand-in)")
    if not d.is_dir():
        raise InputError(f"{bench.name}: --data-dir {d} is not a directory")
    return d, False


def results_dir_for(args: argparse.Namespace, preset: str) -> Path:
    return (Path(args.results_dir) if args.results_dir else
            REPO_ROOT / "results" / ("smoke" if preset == "smoke" else "")).resolve()


def _only(args: argparse.Namespace) -> list[str] | None:
    if args.only is None:
        return None
    names = [m.strip() for m in args.only.split(",") if m.strip()]
    if not names:
        raise InputError(f"--only {args.only!r} names no model")
    return names


def check_writable(folder: Path, what: str, probe_bytes: int = 1 << 20) -> None:
    """Fail before any training when ``folder`` cannot be created or written, or has no room for
    a small probe file (a full disk shows here, not after hours of training). Folders it had to
    create for the probe are removed again."""
    folder = Path(folder)
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    probe = folder / f".write-probe-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"\0" * probe_bytes)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise InputError(f"{what} {folder} is not writable ({e.strerror or e}); choose another "
                         f"folder with {what}") from None
    finally:
        try:
            probe.unlink()
        except OSError:
            pass
        for p in created:  # deepest first
            try:
                p.rmdir()
            except OSError:
                break


def table_rows(bench: Benchmark, cfg: dict, results_dir: Path, seed: int = 0) -> list[dict]:
    """The CSV rows a table of this preset shows (rows of an earlier config of a grid cell left out)."""
    rows = read_rows(results_dir / f"{bench.name}.csv")
    return current_rows(rows, cfg["preset"], expand_grid(bench, cfg, seed))


def render_table(bench: Benchmark, cfg: dict, results_dir: Path, seed: int = 0) -> Path | None:
    """Rewrite ``results/<name>.md`` from the CSV rows of this preset and grid."""
    from reproduce.runner.tables import render
    return render(bench, cfg, table_rows(bench, cfg, results_dir, seed), results_dir)


def quiet_libraries() -> None:
    """Keep the console to progress bars, the runner's own lines and real warnings: Lightning's
    informational lines (devices, tips, "fit stopped") and warnings that say nothing about this
    suite's runs are switched off."""
    import logging
    import warnings
    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    # "Received SIGTERM": the runner's own line says what a signal did
    logging.getLogger("pytorch_lightning.trainer.connectors.signal_connector").setLevel(logging.WARNING)
    # a full-state save (the SIGTERM resume point) is what is meant; Lightning says so at info level
    connector = logging.getLogger("pytorch_lightning.trainer.connectors.checkpoint_connector")
    if not any(isinstance(f, _NotWeightsOnlyDefault) for f in connector.filters):
        connector.addFilter(_NotWeightsOnlyDefault())
    for message in (r".*isinstance\(treespec, LeafSpec\)` is deprecated",  # Lightning internals
                    r"You defined a `validation_step` but have no `val_dataloader`",  # protocols without validation
                    r"The number of training batches \(\d+\) is smaller than the logging interval",
                    r"Checkpoint directory .* exists and is not empty",  # a resumed run's own checkpoints
                    # protocols without a validation split give Lightning an empty loader on purpose
                    r"Total length of `\w+` across ranks is zero",
                    # the datamodules shard evaluation themselves (datamodules._common.eval_sampler:
                    # every test item scored once), which is what this advice asks for
                    r"Using `DistributedSampler` with the dataloaders\. During `trainer\.(test|validate)\(\)`"):
        warnings.filterwarnings("ignore", message=message)


class _NotWeightsOnlyDefault:
    """Drops Lightning's "`weights_only` was not set, defaulting to `False`" (a full checkpoint is saved)."""

    def filter(self, record) -> bool:
        return not str(record.getMessage()).startswith("`weights_only` was not set")


def main(bench: Benchmark, doc: str | None = None, argv: list[str] | None = None) -> int:
    args = build_parser(bench, doc).parse_intermixed_args(argv)  # overrides may stand between options
    args.t0 = time.time()  # the summary's wall time of this invocation
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what a cell command repeats
    quiet_libraries()
    install_signal_handlers()
    try:
        return _main(bench, args)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (Interrupted, KeyboardInterrupt) as e:
        stop = e if isinstance(e, Interrupted) else Interrupted(2)
        print(interrupted_line(bench, stop), file=sys.stderr)
        return stop.exit_code
    except OSError as e:  # a full disk, a read-only folder: the file and the reason, no traceback
        print(f"error: {e.filename}: {e.strerror}" if e.filename and e.strerror else f"error: {e}",
              file=sys.stderr)
        return 1


def interrupted_line(bench: Benchmark, e: Interrupted) -> str:
    """One line: which signal, how far the grid got, what was saved, how to resume."""
    name = "Ctrl-C" if e.signum == 2 else e.args[0]
    grid = (f"the grid is incomplete ({e.finished} of {e.total} runs finished)" if e.total is not None
            else "the command did not finish")
    saved = (f"; saved {os.path.relpath(e.checkpoint, Path.cwd())}" if e.checkpoint is not None else "")
    return f"[{bench.name}] stopped by {name}: {grid}{saved}; run the same command again to resume"


def _main(bench: Benchmark, args: argparse.Namespace) -> int:
    launch = resolve_launch(args)  # before anything else: a request that cannot be met writes nothing
    status = bench.command(args)  # a command only this benchmark has (e.g. climate --predict)
    if status is not None:
        return status
    cfg = resolve_config(bench, args)
    preset = cfg["preset"]
    if args.seed < 0 or args.seed > 2**32 - 1:
        raise InputError(f"--seed must be between 0 and 2**32 - 1, got {args.seed}")
    results_dir = results_dir_for(args, preset)
    runs = expand_grid(bench, cfg, args.seed, _only(args))
    if args.dry_run and (args.table or args.list or args.evaluate):
        raise InputError("--dry-run excludes --table, --list and --evaluate")
    if args.dry_run_batch < 0:
        raise InputError(f"--dry-run-batch must be 0 (the preset's batch) or more, got {args.dry_run_batch}")
    check_launcher_options(args)
    if args.cell is not None and not args.table:
        runs = [r for r in runs if r.run_id == args.cell]
        if not runs:
            raise InputError(f"--cell {args.cell} is not a run of the {bench.name}/{preset} grid"
                             f"{' for --only ' + args.only if args.only else ''} (--list shows each run's "
                             f"folder, which ends in seed<k>-<run id>)")
    if args.table:
        path = render_table(bench, cfg, results_dir, args.seed)
        print(f"[{bench.name}] table: {os.path.relpath(path, Path.cwd()) if path else 'none'}",
              file=sys.stderr)
        summary(bench, args, preset, path, results_dir, "none")
        return 0
    if not runs and not args.evaluate:
        raise InputError(f"nothing to run: the grid of {bench.name}/{preset} is empty"
                         + (f" for --only {args.only}" if args.only else ""))
    data_dir, generate = resolve_data_dir(bench, args, preset)
    if args.allow_mismatch and not args.evaluate:
        raise InputError("--allow-mismatch goes with --evaluate CKPT")
    if args.evaluate and args.data_dir is None and bench.uses_data_dir:
        raise InputError("--evaluate needs --data-dir (the data to score the checkpoint on)")
    set_launch(launch.world, launch.world // launch.num_nodes)
    ctx = Context(cfg=cfg, preset=preset, launch=launch, data_dir=data_dir, generate=generate,
                  data_source="", hardware=hardware(args.gpus, args.num_nodes, args.cpu_procs),
                  results_dir=results_dir, runs_dir=Path(args.runs_dir).resolve(),
                  code_version=code_version(), evaluate=Path(args.evaluate) if args.evaluate else None,
                  keep_checkpoints=args.keep_checkpoints or ("all" if preset == "paper" else "selected"))
    if args.evaluate:
        from reproduce.runner.evaluate import evaluate
        evaluate(bench, ctx, Path(args.evaluate), args.overrides, allow_mismatch=args.allow_mismatch)
        return 0
    for run in runs:  # an unknown or mistyped key stops here, --list included
        bench.check(ctx, run)
    if args.list:
        list_grid(ctx, runs)
        return 0
    if args.dry_run:
        from reproduce.runner import dryrun
        return dryrun.main(bench, ctx, runs, args.dry_run_batch, args.dry_run_out)
    if global_rank() == 0:
        check_writable(ctx.results_dir, "--results-dir")
        check_writable(ctx.runs_dir, "--runs-dir")
    if delegates(args, launch):
        return drive_cells(bench, ctx, args, runs)
    if data_dir is not None:
        from reproduce.runner.progress import slow_step
        with slow_step(f"[{bench.name}] preparing the data in {data_dir}"):  # stand-in, caches, checks
            bench.prepare_data(ctx, runs)  # every rank; ensure_stand_in lets one write at a time
        ctx.data_source = "stand-in" if is_stand_in(data_dir) else "real"
    else:
        ctx.data_source = bench.default_data_source
    rows = run_grid(bench, ctx, runs)
    if args.cell is not None:  # one cell of a launcher's grid: the driver (or --table) writes the table
        return 0
    if ctx.is_rank_zero:
        path = render_table(bench, cfg, results_dir, args.seed)
        if args.logger == "wandb" and bench.report is not None:
            from reproduce.runner.wandb_log import log_tables
            log_tables(bench, cfg, table_rows(bench, cfg, results_dir, args.seed), ctx.runs_dir)
        summary(bench, args, preset, path, results_dir, args.logger, len(rows), len(runs))
    return 0


def summary(bench: Benchmark, args: argparse.Namespace, preset: str, table: Path | None, results_dir: Path,
            logger: str, finished: int | None = None, total: int | None = None) -> None:
    """The closing lines: the headline table and where the files are (:mod:`reproduce.runner.summary`)."""
    from reproduce.runner.summary import print_summary
    print_summary(bench.name, preset, table, results_dir, Path(args.runs_dir), logger,
                  time.time() - getattr(args, "t0", time.time()), finished, total)


def check_launcher_options(args: argparse.Namespace) -> None:
    if args.jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {args.jobs}")
    if args.cell is not None and (args.jobs > 1 or args.launcher != "local"):
        raise InputError("--cell runs one cell itself; --jobs and --launcher hand a grid's cells out")
    slurm_only = [o for o, v in (("--partition", args.partition), ("--time", args.time),
                                 ("--account", args.account), ("--wait", args.wait)) if v]
    if slurm_only and args.launcher != "slurm":
        raise InputError(f"{', '.join(slurm_only)}: only with --launcher slurm")
    if args.launcher == "slurm":
        from reproduce.runner.launchers import parse_time
        parse_time(args.time)


def delegates(args: argparse.Namespace, launch: Launch) -> bool:
    """Whether this invocation hands its cells to a launcher (:mod:`reproduce.runner.launchers`)
    instead of running them itself: with ``--launcher slurm`` or ``--jobs K > 1``, and with DDP
    started here (each cell is then a command of its own, which Lightning re-executes for its
    ranks). A cell command, ``--evaluate``/``--list``/``--table``, and ranks that ``srun`` or
    torchrun started run in this process."""
    from reproduce.runner.runs import rank_source
    if args.cell is not None:
        return False
    return args.launcher == "slurm" or args.jobs > 1 or (launch.world > 1 and rank_source()[1] == "single")


def drive_cells(bench: Benchmark, ctx: Context, args: argparse.Namespace, runs: list) -> int:
    """The grid driver: each unfinished cell as ``--cell <run id>`` through the launcher, then
    the table from the finished runs' rows (at once for local launchers and ``--wait``)."""
    from reproduce.runner import launchers as L
    from reproduce.runner.grid import resync
    csv_path = ctx.results_dir / f"{bench.name}.csv"
    resync(csv_path, runs, ctx.runs_dir, bench.name)
    todo = [r for r in runs if L.finished_row(r.run_dir(ctx.runs_dir)) is None]
    how = (f"--launcher slurm" if args.launcher == "slurm" else
           f"{args.jobs} at once" if args.jobs > 1 else "one after another")
    print(f"[{bench.name}] preset={ctx.preset} hardware={ctx.hardware}: {len(runs)} runs, "
          f"{len(runs) - len(todo)} finished, {len(todo)} to do as cells ({how})", file=sys.stderr)
    finished = True
    status = 0
    if todo and args.launcher == "slurm":
        status, finished = L.run_slurm(bench, ctx, todo, args.argv, args)
    elif todo:
        if ctx.data_dir is not None:  # once here, not in every cell at the same time
            from reproduce.runner.progress import slow_step
            with slow_step(f"[{bench.name}] preparing the data in {ctx.data_dir}"):
                bench.prepare_data(ctx, todo)
        status = L.run_local(bench, ctx, todo, args.argv, args.jobs)
    if finished:
        rows = L.finished_rows(ctx, runs)
        path = render_table(bench, ctx.cfg, ctx.results_dir, args.seed)
        if args.logger == "wandb" and bench.report is not None:
            from reproduce.runner.wandb_log import log_tables
            log_tables(bench, ctx.cfg, table_rows(bench, ctx.cfg, ctx.results_dir, args.seed), ctx.runs_dir)
        summary(bench, args, ctx.preset, path, ctx.results_dir, args.logger, len(rows), len(runs))
    return status
