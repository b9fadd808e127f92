"""The Lightning side of one run: trainer and loggers from the config's ``trainer`` section,
fit (or resume) then test, and the metrics that go into the run's row.

``trainer.select`` says which weights are tested: ``last`` (the final model) or
``{metric: val/map, mode: max}`` (the checkpoint with the best value of a validation metric).
"""
from __future__ import annotations

import csv
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from datamodules._common import atomic_write_text
from reproduce.runner.checkpoints import AtomicCheckpointIO, clean_temporaries, resume_point
from reproduce.runner.config import build
from reproduce.runner.runs import Run, global_rank
from reproduce.runner.store import REPO_ROOT


@dataclass
class Select:
    """Model selection on a validation metric."""

    metric: str
    mode: Literal["min", "max"] = "max"


@dataclass
class TrainerConfig:
    """The ``trainer`` section of a config."""

    max_epochs: int = 1
    gradient_clip_val: float | None = None
    check_val_every_n_epoch: int = 1
    log_every_n_steps: int = 10
    limit_val_batches: int | float | None = None
    precision: str | int | None = None      # GPUs only (CPU runs stay in float32)
    tf32: bool = False                      # GPUs only: TF32 convolutions/matmuls (off: FP32 as the papers ran)
    ckpt_every_n_epochs: int = 1
    sync_batchnorm: bool = True             # GPU DDP only: torch has no SyncBatchNorm on CPU/gloo
    select: Literal["last"] | Select = "last"

    def __post_init__(self) -> None:
        for name in ("max_epochs", "check_val_every_n_epoch", "log_every_n_steps", "ckpt_every_n_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    @property
    def selection(self) -> Select | None:
        """The validation metric that selects the tested checkpoint, or None (the last model)."""
        return self.select if isinstance(self.select, Select) else None


def trainer_config(cfg: dict) -> TrainerConfig:
    return build(TrainerConfig, cfg.get("trainer"), "trainer")


def set_tf32(enabled: bool) -> None:
    """TF32 for CUDA convolutions and matrix products. Off by default: the papers' numbers come from
    FP32 training (2017-2019 GPUs had no TF32), while torch enables TF32 in cuDNN convolutions by
    default on Ampere and later; ``trainer.tf32: true`` turns it on. No effect on CPU."""
    import torch
    torch.backends.cuda.matmul.allow_tf32 = bool(enabled)
    torch.backends.cudnn.allow_tf32 = bool(enabled)


def count_params(module) -> int:
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad))


class Elapsed:
    """Wall time of a run summed over its resumptions (kept in the run dir)."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "elapsed_s.txt"
        try:
            self.before = float(self.path.read_text())
        except (OSError, ValueError):
            self.before = 0.0
        self.t0 = time.time()

    def total(self) -> float:
        return self.before + time.time() - self.t0

    def save(self) -> None:
        if global_rank() == 0:
            atomic_write_text(self.path, f"{self.total():.3f}")


def wandb_project() -> str:
    """W&B offline unless ``WANDB_MODE`` or ``WANDB_API_KEY`` say otherwise; the project name."""
    if "WANDB_MODE" not in os.environ and "WANDB_API_KEY" not in os.environ:
        os.environ["WANDB_MODE"] = "offline"
    os.environ.setdefault("WANDB_SILENT", "true")
    return os.environ.get("WANDB_PROJECT", "equivariant-bench")


def wandb_logger(run: Run, run_dir: Path, data_source: str):
    """W&B logger of one run — its own W&B run, finished after the test (:func:`finish_wandb`):
    offline unless ``WANDB_MODE`` or ``WANDB_API_KEY`` say otherwise. The W&B run is started
    here on rank 0 (resumed under the same id after a kill); other ranks log nothing."""
    project = wandb_project()
    from pytorch_lightning.loggers import WandbLogger
    if global_rank() != 0:
        return WandbLogger(project=project, save_dir=str(run_dir))
    import wandb
    experiment = wandb.init(
        project=project,
        group=f"{run.benchmark}/{run.model}", job_type=run.preset,
        name=f"{run.benchmark}-{run.model}-{run.setting_str}-seed{run.seed}",
        tags=[run.benchmark, run.model, f"preset={run.preset}", f"seed={run.seed}", f"data={data_source}"],
        dir=str(run_dir), id=f"{run.benchmark}-{run.run_id}-s{run.seed}", resume="allow",
        config={"run": {"model": run.model, "setting": run.setting, "seed": run.seed,
                        "preset": run.preset}, **run.cfg},
        settings=wandb.Settings(silent=True))
    return WandbLogger(experiment=experiment, save_dir=str(run_dir))


def finish_wandb(trainer, summary: dict) -> None:
    """Write the run's row metrics into its W&B summary and finish the W&B run, so that the next
    grid cell gets a run of its own."""
    from pytorch_lightning.loggers import WandbLogger
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger) and global_rank() == 0:
            exp = logger.experiment
            exp.summary.update({k: v for k, v in summary.items() if isinstance(v, (int, float, str))})
            exp.finish()


@dataclass
class Launch:
    """How this invocation runs: devices and loggers (from the command line)."""

    gpus: int = 0
    num_nodes: int = 1
    cpu_procs: int = 1
    logger: str = "wandb"

    @property
    def world(self) -> int:
        return (self.gpus or max(1, self.cpu_procs)) * self.num_nodes


def make_trainer(launch: Launch, run: Run, run_dir: Path, data_source: str, callbacks: list | None = None):
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger

    t = trainer_config(run.cfg)
    loggers: list = []
    if launch.logger != "none":
        # one folder per attempt, so that resuming after a kill never overwrites earlier logs
        attempt = len(list((run_dir / "logs").glob("attempt*"))) if global_rank() == 0 else 0
        loggers.append(CSVLogger(save_dir=str(run_dir), name="logs", version=f"attempt{attempt}"))
    if launch.logger == "wandb":
        loggers.append(wandb_logger(run, run_dir, data_source))
    sel = t.selection
    ckpt = ModelCheckpoint(dirpath=str(run_dir / "checkpoints"), filename="best",
                           monitor=sel.metric if sel else None, mode=sel.mode if sel else "max",
                           save_last=True, save_top_k=1 if sel else 0,
                           every_n_epochs=t.ckpt_every_n_epochs, enable_version_counter=False)
    accelerator, devices = ("gpu", launch.gpus) if launch.gpus else ("cpu", max(1, launch.cpu_procs))
    kwargs: dict[str, Any] = dict(
        max_epochs=t.max_epochs, gradient_clip_val=t.gradient_clip_val,
        check_val_every_n_epoch=t.check_val_every_n_epoch, log_every_n_steps=t.log_every_n_steps,
        limit_val_batches=t.limit_val_batches, num_sanity_val_steps=0,
        enable_progress_bar=not os.environ.get("EB_NO_PROGRESS"), enable_model_summary=False)
    if t.precision is not None and launch.gpus:
        kwargs["precision"] = t.precision
    # SyncBatchNorm needs CUDA (torch raises "SyncBatchNorm layers only work with GPU modules"
    # under CPU/gloo DDP), so BatchNorm statistics are synchronised across GPUs only
    if t.sync_batchnorm and launch.world > 1 and launch.gpus:
        kwargs["sync_batchnorm"] = True
    return pl.Trainer(accelerator=accelerator, devices=devices, num_nodes=launch.num_nodes,
                      strategy="ddp" if launch.world > 1 else "auto", logger=loggers or False,
                      plugins=[AtomicCheckpointIO()],
                      callbacks=[ckpt, *(callbacks or [])], default_root_dir=str(run_dir), **kwargs)


def final_train_metrics(trainer, run_dir: Path) -> dict:
    """Epoch-level training metrics of the last epoch as row columns ``final_train_<name>``
    (``train/loss_epoch`` → ``final_train_loss``): from the trainer, or — when this attempt
    trained nothing because an earlier one had finished — from the run's CSV logs."""
    def columns(metrics) -> dict:
        return {"final_" + k.replace("/", "_").removesuffix("_epoch"): round(float(v), 6)
                for k, v in metrics.items() if k.startswith("train/") and not k.endswith("_step")
                and not (isinstance(v, str) and v == "")}  # a CSV log leaves other rows' cells blank

    out = columns(trainer.callback_metrics)
    logs = sorted((Path(run_dir) / "logs").glob("attempt*/metrics.csv"), key=lambda p: int(p.parent.name[7:]))
    for log in reversed(logs if not out else []):
        with open(log, newline="") as f:
            for r in csv.DictReader(f):
                out.update(columns(r))
        if out:
            break
    return out


def choose_resume(run: Run, run_dir: Path) -> Path | None:
    """The verified checkpoint to resume from (:func:`checkpoints.resume_point`); damaged ones
    are renamed ``*.damaged`` (rank 0) and said, never silently trained over."""
    ckpt_dir = run_dir / "checkpoints"
    rank0 = global_rank() == 0
    if rank0:
        clean_temporaries(ckpt_dir)
    resume, damaged = resume_point(ckpt_dir)
    if rank0:
        for path, why in damaged.items():
            print(f"[{run.benchmark}] {path} is damaged ({why})", file=sys.stderr)
            os.replace(path, path.with_name(path.name + ".damaged"))
        rel = os.path.relpath(run_dir, REPO_ROOT)
        if resume is not None:
            print(f"[{run.benchmark}] resuming {rel} from {resume.name}", file=sys.stderr)
        elif damaged:
            print(f"[{run.benchmark}] no usable checkpoint in {rel}; restarting the run from scratch",
                  file=sys.stderr)
    return resume


def fit_and_test(bench, ctx, run: Run) -> dict:
    """Fit (or resume) and test one run; returns its metric columns."""
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import Callback

    run_dir = run.run_dir(ctx.runs_dir)
    elapsed = Elapsed(run_dir)
    pl.seed_everything(run.seed, workers=True, verbose=False)
    if bench.is_custom(run):
        return {**bench.custom_run(ctx, run, run_dir), "wall_s": round(elapsed.total(), 2)}

    set_tf32(trainer_config(run.cfg).tf32)
    dm = bench.build_datamodule(ctx, run)
    backbone = bench.build_backbone(ctx, run)
    task = bench.build_task(ctx, run, backbone)
    selection = trainer_config(run.cfg).selection

    class SaveElapsed(Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            elapsed.save()

    trainer = make_trainer(ctx.launch, run, run_dir, ctx.data_source,
                           [SaveElapsed(), *bench.callbacks(ctx, run)])
    last = run_dir / "checkpoints" / "last.ckpt"
    resume = choose_resume(run, run_dir)
    trainer.fit(task, datamodule=dm, ckpt_path=str(resume) if resume else None)
    final = final_train_metrics(trainer, run_dir)
    best = run_dir / "checkpoints" / "best.ckpt"
    ckpt = str(best) if (selection and best.is_file()) else None
    results = trainer.test(task, datamodule=dm, ckpt_path=ckpt, verbose=False)
    metrics = {k.replace("/", "_"): round(float(v), 6) for k, v in (results[0] if results else {}).items()}
    metrics.update(final)
    metrics.update(bench.after_test(ctx, run, task, dm) or {})
    metrics["params"] = count_params(backbone)
    metrics["wall_s"] = round(elapsed.total(), 2)
    metrics["checkpoint"] = os.path.relpath(ckpt or last, REPO_ROOT) if (ckpt or last.is_file()) else ""
    finish_wandb(trainer, metrics)
    return metrics

