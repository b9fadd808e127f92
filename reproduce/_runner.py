"""The shared reproduction runner: CLI, resumable (model x setting x seed) grid, results files.

Every ``reproduce/<benchmark>.py`` defines a :class:`Benchmark` subclass and calls
:func:`main`. The runner owns everything that is the same for all benchmarks:

* options ``--preset --runs --seed --gpus --num-nodes --data-dir --stand-in --logger
  --results-dir --runs-dir --only --evaluate --list`` and ``key.sub=value`` config overrides;
* run identity and layout (``CONVENTIONS.md``)::

      <runs-dir>/<benchmark>/<preset>/<model>/<setting>/seed<k>-<hash>/
          config.yaml        resolved config of this run
          checkpoints/last.ckpt, checkpoints/best.ckpt (when validation selects)
          logs/attempt<k>/metrics.csv  Lightning CSV log per (re)start;  wandb/ (offline unless WANDB_MODE says)
          row.json, done     written last: the run is finished

  A finished run is skipped, an unfinished one resumes from ``last.ckpt``;
* ``results/<benchmark>.csv``: one row per finished run, upserted atomically; the benchmark
  then rewrites ``results/<benchmark>.md`` from the rows of the preset that ran;
* Lightning scaling: ``--gpus N`` is DDP over N GPUs, ``--num-nodes M`` multi-node (SLURM is
  detected by Lightning), ``--cpu-procs N`` is DDP over N CPU processes (gloo).

Bad input raises :class:`datamodules._common.InputError`; :func:`main` prints one line and
exits with status 2 before anything is written to ``results/``.
"""
from __future__ import annotations

import argparse
import csv
import datetime as _dt
import io
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from datamodules._common import InputError, atomic_write_text, is_stand_in
from reproduce import _config

REPO_ROOT = Path(__file__).resolve().parent.parent

# Columns first in every results CSV, in this order (CONVENTIONS.md); benchmark columns follow.
CSV_FIRST = ["model", "setting", "seed", "preset", "data_source", "hardware", "code_version",
             "started_at", "params", "wall_s"]


# --------------------------------------------------------------------------- runs and rows
@dataclass
class Run:
    """One cell of the grid: a model, a setting of the grid axes, a seed, and its config."""

    benchmark: str
    model: str
    setting: dict
    seed: int
    preset: str
    cfg: dict = field(repr=False)

    @property
    def setting_str(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.setting.items()) or "default"

    @property
    def run_id(self) -> str:
        return _config.config_hash({"benchmark": self.benchmark, "model": self.model,
                                    "setting": self.setting, "seed": self.seed,
                                    "preset": self.preset, "cfg": self.cfg})

    def run_dir(self, runs_dir: Path) -> Path:
        safe = self.setting_str.replace("/", "_").replace(" ", "")
        return Path(runs_dir) / self.benchmark / self.preset / self.model / safe / \
            f"seed{self.seed}-{self.run_id}"


@dataclass
class Context:
    """What a benchmark needs to know about this invocation."""

    args: argparse.Namespace
    cfg: dict
    preset: str
    data_dir: Path | None
    data_source: str
    hardware: str
    results_dir: Path
    runs_dir: Path
    command: str
    started: str

    @property
    def is_rank_zero(self) -> bool:
        return global_rank() == 0


def global_rank() -> int:
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if var in os.environ:
            try:
                return int(os.environ[var])
            except ValueError:
                pass
    return 0


def code_version() -> str:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def hardware_string(args: argparse.Namespace) -> str:
    import torch
    if args.gpus:
        name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "GPU"
        return f"{args.gpus * args.num_nodes}x {name}"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    extra = f", {args.cpu_procs} DDP procs" if args.cpu_procs > 1 else ""
    return f"cpu x{cores}{extra}"


# --------------------------------------------------------------------------- CSV results
def read_rows(path: Path) -> list[dict]:
    if not Path(path).is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def upsert_row(path: Path, row: dict) -> None:
    """Insert or replace (by ``run_id``) one row of a results CSV, atomically."""
    rows = [r for r in read_rows(path) if r.get("run_id") != row.get("run_id")]
    rows.append({k: ("" if v is None else v) for k, v in row.items()})
    cols: list[str] = [c for c in CSV_FIRST if any(c in r for r in rows)]
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({c: r.get(c, "") for c in cols})
    atomic_write_text(path, buf.getvalue())


# --------------------------------------------------------------------------- benchmark API
class Benchmark:
    """Subclass per benchmark; override what differs. Only ``name`` is required."""

    name: str = ""
    #: folder holding ``<name>/{smoke,cpu,paper}.yaml``
    config_root: Path = _config.CONFIG_ROOT
    #: how to describe generated data in tables when no real data was given
    default_data_source: str = "stand-in"

    # -- data --------------------------------------------------------------------------------
    def prepare_data(self, ctx: Context, data_dir: Path, generate: bool) -> None:
        """Check ``data_dir`` holds the benchmark's files (raise InputError naming what is
        missing), or write the offline stand-in there when ``generate`` is true."""

    def uses_data_dir(self) -> bool:
        return True

    def build_datamodule(self, ctx: Context, run: Run):  # -> LightningDataModule
        raise InputError(f"{self.name}: no datamodule defined")

    # -- model ---------------------------------------------------------------------------------
    def models(self, cfg: dict) -> list[str]:
        return sorted((cfg.get("models") or {}).keys())

    def build_backbone(self, ctx: Context, run: Run):
        raise InputError(f"{self.name}: no backbone defined for model '{run.model}'")

    def build_task(self, ctx: Context, run: Run, backbone):
        from models.tasks import Classify
        return Classify(backbone, num_classes=int(run.cfg["data"]["num_classes"]),
                        optim=run.cfg.get("optim", {}))

    def callbacks(self, ctx: Context, run: Run) -> list:
        """Extra Lightning callbacks for this run (e.g. early stopping)."""
        return []

    def custom_run(self, ctx: Context, run: Run, run_dir: Path) -> dict | None:
        """Rows that are not trained with Lightning (e.g. SVM baselines) return their metrics
        here; return None to train with Lightning."""
        return None

    def after_test(self, ctx: Context, run: Run, task, datamodule) -> dict:
        """Extra columns measured on the trained model (e.g. equivariance errors)."""
        return {}

    # -- grid and table ------------------------------------------------------------------------
    def grid(self, cfg: dict) -> list[tuple[str, dict, dict]]:
        """(model, setting, dotted config overrides) per row, from ``cfg['grid']['rows']``."""
        rows = []
        for i, r in enumerate(_config.get(cfg, "grid.rows")):
            if not isinstance(r, dict) or "model" not in r:
                raise InputError(f"config grid.rows[{i}] must be a mapping with a 'model' key")
            rows.append((r["model"], dict(r.get("setting") or {}), dict(r.get("overrides") or {})))
        return rows

    def write_table(self, ctx: Context, rows: list[dict]) -> None:
        """Rewrite ``results/<name>.md`` (and plots) from this preset's CSV rows."""


# --------------------------------------------------------------------------- CLI
def build_parser(bench: Benchmark, doc: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"reproduce/{bench.name}.py", description=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default=None,
                   help="smoke | cpu | paper (default: paper with --gpus, else cpu)")
    p.add_argument("--runs", type=int, default=None, help="repeats per row (default: config)")
    p.add_argument("--seed", type=int, default=0, help="first seed; runs use seed..seed+R-1")
    p.add_argument("--gpus", type=int, default=0, help="GPUs per node; >1 runs DDP")
    p.add_argument("--num-nodes", type=int, default=1, help="nodes (SLURM detected by Lightning)")
    p.add_argument("--cpu-procs", type=int, default=1, help="DDP over N CPU processes (gloo)")
    p.add_argument("--data-dir", default=None,
                   help="folder with the benchmark's published files (default: a generated "
                        "stand-in under data/<benchmark>/)")
    p.add_argument("--stand-in", action="store_true",
                   help="write the offline stand-in into --data-dir (if not there) and use it")
    p.add_argument("--logger", choices=["wandb", "csv", "none"], default="wandb",
                   help="W&B (offline unless WANDB_MODE/WANDB_API_KEY say otherwise) + CSV; "
                        "csv: CSV only; none: no per-step logs (results CSV is always written)")
    p.add_argument("--results-dir", default=None,
                   help="where <benchmark>.csv/.md go (default results/, smoke: results/smoke/)")
    p.add_argument("--runs-dir", default=str(REPO_ROOT / "runs"), help="checkpoints and logs")
    p.add_argument("--only", default=None, help="comma-separated models to run")
    p.add_argument("--evaluate", default=None, metavar="CKPT",
                   help="re-score a saved checkpoint on --data-dir (no training)")
    p.add_argument("--list", action="store_true", help="print the grid and each run's state")
    p.add_argument("--max-epochs", type=int, default=None, help="override trainer.max_epochs")
    p.add_argument("overrides", nargs="*", help="config overrides, key.sub=value")
    return p


def resolve_config(bench: Benchmark, args: argparse.Namespace) -> dict:
    preset = args.preset or ("paper" if args.gpus else "cpu")
    cfg = _config.load_preset(bench.name, preset, bench.config_root)
    cfg = _config.apply_overrides(cfg, args.overrides)
    if args.runs is not None:
        if args.runs < 1:
            raise InputError("--runs must be at least 1")
        cfg.setdefault("grid", {})["runs"] = args.runs
    if args.max_epochs is not None:
        cfg.setdefault("trainer", {})["max_epochs"] = args.max_epochs
    return cfg


def expand_grid(bench: Benchmark, cfg: dict, args: argparse.Namespace, all_models: bool = False) -> list[Run]:
    """The runs of the grid (``args.only`` filters models unless ``all_models``)."""
    known = set(bench.models(cfg))
    only = None
    if args.only and not all_models:
        only = [m.strip() for m in args.only.split(",") if m.strip()]
        bad = [m for m in only if m not in known]
        if bad:
            raise InputError(f"unknown model(s) {', '.join(bad)} for {bench.name}; "
                             f"valid: {', '.join(sorted(known))}")
    runs_per_row = int(_config.get(cfg, "grid.runs", 1))
    # run identity = every hyper-parameter; not the grid itself nor free-text table notes
    base = {k: v for k, v in cfg.items() if k not in ("grid", "notes")}
    out = []
    for model, setting, overrides in bench.grid(cfg):
        if model not in known:
            raise InputError(f"config grid row names model '{model}', which has no entry "
                             f"under models: ({', '.join(sorted(known))})")
        if only and model not in only:
            continue
        rcfg = _config.set_dotted(base, overrides)
        # the chosen entry of `models:`, updated by `model.<key>` overrides of this grid row
        rcfg["model"] = _config.deep_merge(cfg["models"][model], rcfg.get("model") or {})
        rcfg.pop("models", None)
        for i in range(runs_per_row):
            out.append(Run(bench.name, model, setting, args.seed + i, cfg["preset"], rcfg))
    return out


def current_rows(rows: list[dict], preset: str, grid: list[Run]) -> list[dict]:
    """CSV rows of ``preset`` that the table should show: a row whose (model, setting, seed) is a cell
    of the current grid but whose run id differs was made with an earlier config and is dropped
    (it stays in the CSV); rows of cells outside the grid (e.g. extra seeds of an earlier ``--runs``)
    are kept."""
    cells = {(r.model, r.setting_str, str(r.seed)): r.run_id for r in grid}
    out = []
    for row in rows:
        if row.get("preset") != preset:
            continue
        want = cells.get((row.get("model"), row.get("setting"), str(row.get("seed"))))
        if want is not None and row.get("run_id") != want:
            continue
        out.append(row)
    return out


def resolve_data_dir(bench: Benchmark, args: argparse.Namespace, cfg: dict) -> tuple[Path | None, bool]:
    """(data dir, whether to generate the stand-in there)."""
    if not bench.uses_data_dir():
        return None, False
    if args.data_dir is None:
        return REPO_ROOT / "data" / bench.name / f"stand-in-{cfg['preset']}", True
    d = Path(args.data_dir).expanduser().resolve()
    if args.stand_in:
        return d, True
    if not d.exists():
        raise InputError(f"{bench.name}: --data-dir {d} does not exist (give the folder with the "
                         f"published files, or add --stand-in to generate the offline stand-in)")
    if not d.is_dir():
        raise InputError(f"{bench.name}: --data-dir {d} is not a directory")
    return d, False


def _wait_for_stand_in(data_dir: Path, timeout_s: float = 3600) -> None:
    t0 = time.time()
    while not is_stand_in(data_dir):
        if time.time() - t0 > timeout_s:
            raise InputError(f"rank {global_rank()}: stand-in in {data_dir} never appeared")
        time.sleep(2)


# --------------------------------------------------------------------------- training
def make_trainer(ctx: Context, run: Run, run_dir: Path, monitor: bool):
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger

    tcfg = dict(run.cfg.get("trainer") or {})
    args = ctx.args
    loggers: list = []
    if args.logger != "none":
        # one folder per attempt, so that resuming after a kill never overwrites earlier logs
        attempt = len(list((run_dir / "logs").glob("attempt*"))) if global_rank() == 0 else 0
        loggers.append(CSVLogger(save_dir=str(run_dir), name="logs", version=f"attempt{attempt}"))
    if args.logger == "wandb":
        loggers.append(_wandb_logger(ctx, run, run_dir))
    every = int(tcfg.pop("ckpt_every_n_epochs", 1))
    callbacks = [ModelCheckpoint(dirpath=str(run_dir / "checkpoints"), filename="best",
                                 monitor="val/acc" if monitor else None, mode="max",
                                 save_last=True, save_top_k=1 if monitor else 0,
                                 every_n_epochs=every, enable_version_counter=False)]
    devices: Any
    if args.gpus:
        accelerator, devices = "gpu", args.gpus
    else:
        accelerator, devices = "cpu", max(1, args.cpu_procs)
    world = (devices if isinstance(devices, int) else 1) * args.num_nodes
    strategy = "ddp" if world > 1 else "auto"
    kwargs = dict(max_epochs=int(tcfg.pop("max_epochs", 1)),
                  gradient_clip_val=tcfg.pop("gradient_clip_val", None),
                  check_val_every_n_epoch=int(tcfg.pop("check_val_every_n_epoch", 1)),
                  log_every_n_steps=int(tcfg.pop("log_every_n_steps", 10)),
                  limit_val_batches=tcfg.pop("limit_val_batches", None),
                  num_sanity_val_steps=0,
                  enable_progress_bar=not os.environ.get("EB_NO_PROGRESS"),
                  enable_model_summary=False)
    precision = tcfg.pop("precision", None)
    if precision is not None and args.gpus:
        kwargs["precision"] = precision
    tcfg.pop("select", None)
    # SyncBatchNorm needs CUDA (torch raises "SyncBatchNorm layers only work with GPU modules" under
    # CPU/gloo DDP), so BatchNorm statistics are synchronised across GPUs only
    if tcfg.pop("sync_batchnorm", True) and world > 1 and args.gpus:
        kwargs["sync_batchnorm"] = True
    if tcfg:
        raise InputError(f"unknown trainer option(s) in config: {', '.join(sorted(tcfg))}")
    return pl.Trainer(accelerator=accelerator, devices=devices, num_nodes=args.num_nodes,
                      strategy=strategy, logger=loggers or False, callbacks=callbacks,
                      default_root_dir=str(run_dir), **kwargs)


def _wandb_logger(ctx: Context, run: Run, run_dir: Path):
    if "WANDB_MODE" not in os.environ and "WANDB_API_KEY" not in os.environ:
        os.environ["WANDB_MODE"] = "offline"
    os.environ.setdefault("WANDB_SILENT", "true")
    from pytorch_lightning.loggers import WandbLogger
    return WandbLogger(project=os.environ.get("WANDB_PROJECT", "equivariant-bench"),
                       group=f"{run.benchmark}/{run.model}", job_type=run.preset,
                       name=f"{run.benchmark}-{run.model}-{run.setting_str}-seed{run.seed}",
                       tags=[run.benchmark, run.model, f"preset={run.preset}", f"seed={run.seed}",
                             f"data={ctx.data_source}"],
                       save_dir=str(run_dir), id=f"{run.benchmark}-{run.run_id}-s{run.seed}",
                       config={"run": {"model": run.model, "setting": run.setting,
                                       "seed": run.seed, "preset": run.preset}, **run.cfg})


class _Elapsed:
    """Wall time summed over resumptions (stored in the run dir)."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / "elapsed_s.txt"
        self.before = float(self.path.read_text()) if self.path.is_file() else 0.0
        self.t0 = time.time()

    def total(self) -> float:
        return self.before + time.time() - self.t0

    def save(self) -> None:
        if global_rank() == 0:
            atomic_write_text(self.path, f"{self.total():.3f}")


def count_params(module) -> int:
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad))


def train_one(bench: Benchmark, ctx: Context, run: Run) -> dict:
    """Fit (or resume) and test one run; returns its metrics columns."""
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import Callback

    run_dir = run.run_dir(ctx.runs_dir)
    elapsed = _Elapsed(run_dir)
    pl.seed_everything(run.seed, workers=True, verbose=False)
    custom = bench.custom_run(ctx, run, run_dir)
    if custom is not None:
        return {**custom, "wall_s": round(elapsed.total(), 2)}

    dm = bench.build_datamodule(ctx, run)
    backbone = bench.build_backbone(ctx, run)
    task = bench.build_task(ctx, run, backbone)
    monitor = (run.cfg.get("trainer") or {}).get("select", "last") == "best"

    class SaveElapsed(Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            elapsed.save()

    trainer = make_trainer(ctx, run, run_dir, monitor)
    trainer.callbacks.append(SaveElapsed())
    trainer.callbacks.extend(bench.callbacks(ctx, run))
    last = run_dir / "checkpoints" / "last.ckpt"
    trainer.fit(task, datamodule=dm, ckpt_path=str(last) if last.is_file() else None)
    best = run_dir / "checkpoints" / "best.ckpt"
    ckpt = str(best) if (monitor and best.is_file()) else None
    results = trainer.test(task, datamodule=dm, ckpt_path=ckpt, verbose=False)
    metrics = {k.replace("/", "_"): round(float(v), 6) for k, v in (results[0] if results else {}).items()}
    extra = bench.after_test(ctx, run, task, dm) or {}
    metrics.update(extra)
    metrics["params"] = count_params(backbone)
    metrics["wall_s"] = round(elapsed.total(), 2)
    metrics["checkpoint"] = os.path.relpath(ckpt or last, REPO_ROOT) if (ckpt or last.is_file()) else ""
    return metrics


def run_grid(bench: Benchmark, ctx: Context, runs: list[Run]) -> list[dict]:
    rows = []
    csv_path = ctx.results_dir / f"{bench.name}.csv"
    todo = [r for r in runs if not (r.run_dir(ctx.runs_dir) / "done").is_file()]
    if ctx.is_rank_zero:
        print(f"[{bench.name}] preset={ctx.preset} data={ctx.data_source} hardware={ctx.hardware}: "
              f"{len(runs)} runs, {len(runs) - len(todo)} finished, {len(todo)} to do",
              file=sys.stderr)
    for i, run in enumerate(runs):
        run_dir = run.run_dir(ctx.runs_dir)
        done = run_dir / "done"
        if done.is_file():
            rows.append(json.loads((run_dir / "row.json").read_text()))
            continue
        if ctx.is_rank_zero:
            print(f"[{bench.name}] run {i + 1}/{len(runs)}: {run.model} {run.setting_str} "
                  f"seed={run.seed} -> {os.path.relpath(run_dir, REPO_ROOT)}", file=sys.stderr)
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(
                {"benchmark": run.benchmark, "model_name": run.model, "setting": run.setting,
                 "seed": run.seed, "preset": run.preset, "config": run.cfg}, sort_keys=False))
        started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        metrics = train_one(bench, ctx, run)
        row = {"model": run.model, "setting": run.setting_str, "seed": run.seed,
               "preset": run.preset, "data_source": ctx.data_source, "hardware": ctx.hardware,
               "code_version": ctx.args._code_version, "started_at": started,
               **{f"setting_{k}": v for k, v in run.setting.items()},
               **metrics, "run_id": run.run_id,
               "run_dir": os.path.relpath(run_dir, REPO_ROOT)}
        if ctx.is_rank_zero:
            atomic_write_text(run_dir / "row.json", json.dumps(row, indent=1, default=str))
            upsert_row(csv_path, row)
            atomic_write_text(done, started + "\n")  # written last: the run is finished
        rows.append(row)
    return rows


def list_grid(ctx: Context, runs: list[Run]) -> None:
    for run in runs:
        d = run.run_dir(ctx.runs_dir)
        state = "done" if (d / "done").is_file() else (
            "resumable" if (d / "checkpoints" / "last.ckpt").is_file() else "todo")
        print(f"{state:9s} {run.model:18s} {run.setting_str:28s} seed={run.seed}  "
              f"{os.path.relpath(d, REPO_ROOT)}")


# --------------------------------------------------------------------------- evaluate
def evaluate(bench: Benchmark, ctx: Context, ckpt: Path) -> dict:
    import pytorch_lightning as pl
    import torch

    ckpt = Path(ckpt).expanduser().resolve()
    if not ckpt.is_file():
        raise InputError(f"--evaluate: checkpoint {ckpt} does not exist")
    run_dir = ckpt.parent.parent
    meta_path = run_dir / "config.yaml"
    if not meta_path.is_file():
        raise InputError(f"--evaluate: {meta_path} not found; a checkpoint must sit in "
                         f"<run dir>/checkpoints/ next to the run's config.yaml")
    meta = yaml.safe_load(meta_path.read_text())
    if meta.get("benchmark") != bench.name:
        raise InputError(f"--evaluate: {ckpt} is a '{meta.get('benchmark')}' checkpoint, "
                         f"not {bench.name}")
    run = Run(bench.name, meta["model_name"], meta["setting"], int(meta["seed"]), meta["preset"],
              meta["config"])
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    dm = bench.build_datamodule(ctx, run)
    backbone = bench.build_backbone(ctx, run)
    task = bench.build_task(ctx, run, backbone)
    task.load_state_dict(state["state_dict"])
    trainer = pl.Trainer(accelerator="gpu" if ctx.args.gpus else "cpu", devices=1, logger=False,
                         enable_progress_bar=False, enable_model_summary=False)
    results = trainer.test(task, datamodule=dm, verbose=False)
    metrics = {k.replace("/", "_"): float(v) for k, v in results[0].items()}
    metrics.update(bench.after_test(ctx, run, task, dm) or {})
    out = {"checkpoint": str(ckpt), "data_dir": str(ctx.data_dir), "data_source": ctx.data_source,
           **metrics}
    tag = _config.config_hash(str(ctx.data_dir), 8)
    atomic_write_text(run_dir / f"evaluate-{tag}.json", json.dumps(out, indent=1))
    print(json.dumps(out))
    return out


# --------------------------------------------------------------------------- entry point
def main(bench: Benchmark, doc: str | None = None, argv: list[str] | None = None) -> int:
    parser = build_parser(bench, doc)
    args = parser.parse_args(argv)
    try:
        return _main(bench, args)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _main(bench: Benchmark, args: argparse.Namespace) -> int:
    cfg = resolve_config(bench, args)
    preset = cfg["preset"]
    for name, val in (("--gpus", args.gpus), ("--cpu-procs", args.cpu_procs - 1),
                      ("--num-nodes", args.num_nodes - 1)):
        if val < 0:
            raise InputError(f"{name} must be non-negative")
    if args.gpus and args.cpu_procs > 1:
        raise InputError("--gpus and --cpu-procs exclude each other")
    runs = expand_grid(bench, cfg, args)
    if not runs and not args.evaluate:
        raise InputError(f"nothing to run: the grid of {bench.name}/{preset} is empty"
                         + (f" for --only {args.only}" if args.only else ""))
    data_dir, generate = resolve_data_dir(bench, args, cfg)
    if args.evaluate and args.data_dir is None and bench.uses_data_dir():
        raise InputError("--evaluate needs --data-dir (the data to score the checkpoint on)")
    results_dir = Path(args.results_dir) if args.results_dir else (
        REPO_ROOT / "results" / ("smoke" if preset == "smoke" else ""))
    args._code_version = code_version()
    ctx = Context(args=args, cfg=cfg, preset=preset, data_dir=data_dir, data_source="",
                  hardware=hardware_string(args), results_dir=results_dir.resolve(),
                  runs_dir=Path(args.runs_dir).resolve(),
                  command="python " + " ".join(shlex.quote(a) for a in
                                               [f"reproduce/{bench.name}.py", *sys.argv[1:]]),
                  started=_dt.date.today().isoformat())
    if args.list:
        list_grid(ctx, runs)
        return 0
    if data_dir is not None:
        if generate and global_rank() > 0:
            _wait_for_stand_in(data_dir)
        bench.prepare_data(ctx, data_dir, generate)
        ctx.data_source = "stand-in" if is_stand_in(data_dir) else "real"
    else:
        ctx.data_source = bench.default_data_source
    if args.evaluate:
        evaluate(bench, ctx, Path(args.evaluate))
        return 0
    rows = run_grid(bench, ctx, runs)
    if ctx.is_rank_zero:
        all_rows = current_rows(read_rows(ctx.results_dir / f"{bench.name}.csv"), preset,
                                expand_grid(bench, cfg, args, all_models=True))
        bench.write_table(ctx, all_rows)
        print(f"[{bench.name}] {len(rows)} runs; table: "
              f"{os.path.relpath(ctx.results_dir / (bench.name + '.md'), Path.cwd())}",
              file=sys.stderr)
    return 0
