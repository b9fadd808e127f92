"""The Lightning side of one run: trainer and loggers from the config's ``trainer`` section,
fit (or resume) then test, and the metrics that go into the run's row.

``trainer.select`` says which weights are tested: ``last`` (the final model) or
``{metric: val/map, mode: max}`` (the checkpoint with the best value of a validation metric).

Whatever the selection, ``checkpoints/last.ckpt`` is written every ``trainer.ckpt_every_n_epochs``
epochs and when training ends (:class:`LastCheckpoint`), so a kill loses at most that many epochs;
``best.ckpt`` is written whenever the selection metric improves. SIGTERM (and SIGUSR1 outside
SLURM) stop training at the next batch boundary with a ``last.ckpt`` of that point
(:class:`StopOnSignal`), and the run raises :class:`Interrupted`; Ctrl-C raises it too (no
checkpoint: the step it cut may be half done).
"""
from __future__ import annotations

import csv
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from pytorch_lightning.callbacks import Callback, LearningRateMonitor, ModelCheckpoint

from datamodules._common import atomic_write_text
from reproduce.runner.checkpoints import (AtomicCheckpointIO, check_checkpoint, clean_temporaries, pruned_to,
                                          recover, resume_point)
from reproduce.runner.launch import (_FORWARDED, Interrupted, Launch, Select, TrainerConfig,  # noqa: F401
                                     install_signal_handlers, on_stop_signal, threading_main, trainer_config)
from reproduce.runner.runs import Run, global_rank, launch_token
from reproduce.runner.store import REPO_ROOT, count_params


def set_tf32(enabled: bool) -> None:
    """TF32 for CUDA convolutions and matrix products. Off by default: the papers' numbers come from
    FP32 training (2017-2019 GPUs had no TF32), while torch enables TF32 in cuDNN convolutions by
    default on Ampere and later; ``trainer.tf32: true`` turns it on. No effect on CPU."""
    import torch
    torch.backends.cuda.matmul.allow_tf32 = bool(enabled)
    torch.backends.cudnn.allow_tf32 = bool(enabled)


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
    """W&B offline unless ``WANDB_MODE`` or ``WANDB_API_KEY`` say otherwise; the project name
    (:func:`reproduce.runner.wandb_log.wandb_project`)."""
    from reproduce.runner.wandb_log import wandb_project as project
    return project()


def wandb_logger(run: Run, run_dir: Path, data_source: str):
    """W&B logger of one run — its own W&B run (:mod:`reproduce.runner.wandb_log`), finished
    after the test (:func:`finish_wandb`): started here on rank 0 (resumed under the same id
    after a kill), with the best-value summaries of :func:`~reproduce.runner.wandb_log.define_metrics`;
    other ranks log nothing."""
    from pytorch_lightning.loggers import WandbLogger

    from reproduce.runner import wandb_log
    project = wandb_log.wandb_project()
    if global_rank() != 0:
        return WandbLogger(project=project, save_dir=str(run_dir))
    experiment = wandb_log.init_cell_run(run, run_dir, data_source)
    wandb_log.define_metrics(experiment, trainer_config(run.cfg).selection)
    return WandbLogger(experiment=experiment, save_dir=str(run_dir))


def log_model_summary(trainer, task) -> None:
    """The task's model summary (parameter counts, layers) into the cell's W&B run, rank 0
    (:func:`reproduce.runner.wandb_log.log_model_summary`)."""
    from pytorch_lightning.loggers import WandbLogger

    from reproduce.runner import wandb_log
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger) and global_rank() == 0:
            wandb_log.log_model_summary(logger.experiment, task)


def finish_wandb(trainer, summary: dict, logged: set[str] = frozenset(), checkpoint: tuple | None = None) -> None:
    """Write the run's row metrics into its W&B summary (numbers as numbers; ``logged``, the test
    metrics Lightning logged, not twice), log the tested checkpoint as an artifact when
    ``checkpoint`` = (run, run dir, path) is given, and finish the W&B run, so that the next grid
    cell gets a run of its own."""
    from pytorch_lightning.loggers import WandbLogger

    from reproduce.runner import wandb_log
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger) and global_rank() == 0:
            exp = logger.experiment
            if checkpoint is not None:
                wandb_log.log_checkpoint(exp, *checkpoint)
            wandb_log.finish_cell_run(exp, summary, logged)


class StopOnSignal(Callback):
    """Records why Lightning stopped (SIGTERM → ``SIGTERMException``, Ctrl-C →
    ``KeyboardInterrupt``) and, on SIGTERM during ``fit``, saves ``last.ckpt`` at that batch
    boundary so that the rerun continues from there."""

    def __init__(self):
        self.signum: int | None = None
        self.checkpoint: Path | None = None

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        from pytorch_lightning.trainer.states import TrainerFn
        from pytorch_lightning.utilities.exceptions import SIGTERMException
        if isinstance(exception, KeyboardInterrupt):
            self.signum = signal.SIGINT
            return
        if not isinstance(exception, SIGTERMException):
            return
        self.signum = _FORWARDED.pop() if _FORWARDED else signal.SIGTERM
        if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking:
            last = [cb for cb in trainer.checkpoint_callbacks if isinstance(cb, LastCheckpoint)]
            if last:
                self.checkpoint = Path(last[0].dirpath) / "last.ckpt"
                trainer.save_checkpoint(self.checkpoint)  # the full state (optimizer too): a resume point


def seed_rank(seed: int) -> None:
    """Seed the global torch, numpy and ``random`` generators (not ``PL_GLOBAL_SEED``)."""
    import random

    import numpy as np
    import torch
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class RankSeed(Callback):
    """Under DDP, rank r's global generators are seeded with ``seed + r`` when ``fit`` sets up —
    after the model was built from ``seed`` (the same initial weights everywhere) and before the
    first batch — so dropout masks and augmentation draws (rotations) differ between the
    processes, as they differ between the batches of one process, and are reproducible.
    ``PL_GLOBAL_SEED``, the seed of Lightning's distributed sampler, stays the run seed: every
    rank must shuffle alike to split the data. One process: nothing changes."""

    def __init__(self, seed: int):
        self.seed = int(seed)

    def setup(self, trainer, pl_module, stage: str) -> None:
        if stage == "fit" and trainer.world_size > 1:
            seed_rank(self.seed + trainer.global_rank)


class LastCheckpoint(ModelCheckpoint):
    """``last.ckpt`` every ``every_n_epochs`` epochs (at the end of the training epoch, after its
    validation and best-model update) and when training ends, whatever selects the tested model.
    (Lightning's ``save_last=True`` writes it only alongside a top-k save: never during training
    with ``save_top_k=0``, and only in improving epochs with a monitored metric.)"""

    def __init__(self, dirpath: str, every_n_epochs: int):
        super().__init__(dirpath=dirpath, filename="last", monitor=None, save_top_k=1, save_last=False,
                         every_n_epochs=every_n_epochs, save_on_train_epoch_end=True,
                         enable_version_counter=False)

    def on_train_end(self, trainer, pl_module) -> None:
        if not trainer.fast_dev_run and self._last_global_step_saved != trainer.global_step:
            self._save_none_monitor_checkpoint(trainer, self._monitor_candidates(trainer))


def make_trainer(launch: Launch, run: Run, run_dir: Path, data_source: str, callbacks: list | None = None,
                 stop: StopOnSignal | None = None):
    import pytorch_lightning as pl
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
    ckpt_dir = str(run_dir / "checkpoints")
    checkpoints = [LastCheckpoint(ckpt_dir, t.ckpt_every_n_epochs)]
    if sel:  # listed first: trainer.checkpoint_callback is the selecting one
        checkpoints.insert(0, ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=sel.metric,
                                              mode=sel.mode, save_last=False, save_top_k=1,
                                              every_n_epochs=1, enable_version_counter=False))
    # the learning rate of every parameter group, per step or epoch as the schedule steps
    # (``lr-<optimizer>``); Lightning refuses the monitor without a logger
    monitors = [LearningRateMonitor()] if loggers else []
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
                      callbacks=[*checkpoints, stop or StopOnSignal(), RankSeed(run.seed), *monitors,
                                 *(callbacks or [])],
                      default_root_dir=str(run_dir), **kwargs)


def prepare_ddp(task, t: TrainerConfig, launch: Launch) -> None:
    """Under DDP with ``trainer.sync_batchnorm``: the equivariant batch norms all-reduce their
    statistics (:func:`models.steerable.layers.sync_equivariant_batchnorm`, on any backend);
    torch's batch norms are converted by Lightning, on GPUs only (see :func:`make_trainer`)."""
    if launch.world > 1 and t.sync_batchnorm:
        from models.steerable.layers import sync_equivariant_batchnorm
        sync_equivariant_batchnorm(task)


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
    """The verified checkpoint to resume from (:func:`checkpoints.resume_point`), after
    :func:`checkpoints.recover` has put right a write that a kill interrupted. Damaged
    checkpoints are renamed ``*.damaged`` (rank 0) and said, never silently trained over; a
    fallback to ``last.ckpt.prev`` restores it as ``last.ckpt`` (the run keeps a ``last.ckpt``).
    Lightning's SLURM requeue checkpoints (``hpc_ckpt_<n>.ckpt`` in the run folder) are
    candidates too: the furthest trained one wins."""
    ckpt_dir = run_dir / "checkpoints"
    rank0 = global_rank() == 0
    tag = f"[{run.benchmark}]"
    rel = os.path.relpath(run_dir, REPO_ROOT)
    if rank0:
        for note in recover(ckpt_dir):
            print(f"{tag} {rel}: {note}", file=sys.stderr)
        clean_temporaries(ckpt_dir)
    hpc = tuple(sorted(run_dir.glob("hpc_ckpt_*.ckpt")))
    resume, damaged = resume_point(ckpt_dir, hpc)
    if rank0:
        for path, why in damaged.items():
            print(f"{tag} {path} is damaged ({why})", file=sys.stderr)
            os.replace(path, path.with_name(path.name + ".damaged"))
        last = ckpt_dir / "last.ckpt"
        if resume is not None and resume.name == "last.ckpt.prev" and not last.exists():
            os.replace(resume, last)
            print(f"{tag} resuming {rel} from last.ckpt.prev (restored as last.ckpt)", file=sys.stderr)
            resume = last
        elif resume is not None:
            print(f"{tag} resuming {rel} from {resume.name}", file=sys.stderr)
        elif damaged:
            print(f"{tag} no usable checkpoint in {rel}; restarting the run from scratch", file=sys.stderr)
    elif resume is not None and resume.name == "last.ckpt.prev":
        resume = ckpt_dir / "last.ckpt"  # rank 0 has renamed it (it launched this rank after)
    return resume


#: how long ranks > 0 wait for rank 0's resume decision before saying so (it may wait for a run lock)
RESUME_WAIT_NOTE_S = 60.0


def shared_resume(run: Run, run_dir: Path, world: int) -> Path | None:
    """The checkpoint every rank resumes from, decided by rank 0 alone (:func:`choose_resume`,
    which may rename damaged files and restore ``last.ckpt.prev``); ranks > 0 never look at
    the checkpoint folder while rank 0 changes it. The decision reaches them

    * through the environment (``EB_RESUME_<run id>``) when Lightning's launcher starts them:
      rank 0 decides before ``fit``, which is where Lightning starts the other processes;
    * through ``resume.json`` in the run folder, tagged with the launch (:func:`runs.launch_token`)
      when ``srun`` or torchrun started every rank at once: ranks > 0 wait for it.

    Without either (ranks started some other way) ranks > 0 only read (:func:`resume_point`)."""
    if world <= 1:
        return choose_resume(run, run_dir)
    key = f"EB_RESUME_{run.run_id}"
    decision = run_dir / "resume.json"
    token = launch_token()
    if global_rank() == 0:
        resume = choose_resume(run, run_dir)
        value = str(resume) if resume is not None else ""
        os.environ[key] = value  # inherited by the processes Lightning's launcher starts in fit
        if token is not None:
            atomic_write_text(decision, json.dumps({"launch": token, "resume": value}))
        return resume
    if key in os.environ:
        value = os.environ[key]
        return Path(value) if value else None
    if token is not None:
        t0, said = time.time(), False
        while True:
            try:
                got = json.loads(decision.read_text())
                if isinstance(got, dict) and got.get("launch") == token:
                    return Path(got["resume"]) if got.get("resume") else None
            except (OSError, ValueError):
                pass
            if not said and time.time() - t0 > RESUME_WAIT_NOTE_S:
                print(f"[{run.benchmark}] rank {global_rank()}: waiting for rank 0 to decide where "
                      f"{os.path.relpath(run_dir, REPO_ROOT)} resumes from", file=sys.stderr)
                said = True
            time.sleep(0.2)
    resume, _ = resume_point(run_dir / "checkpoints", tuple(sorted(run_dir.glob("hpc_ckpt_*.ckpt"))))
    if resume is not None and resume.name == "last.ckpt.prev":
        resume = run_dir / "checkpoints" / "last.ckpt"  # rank 0 restores it under that name
    return resume


def tested_checkpoint(run: Run, run_dir: Path, selection: Select | None) -> Path | None:
    """The checkpoint the test loads: ``best.ckpt`` when a validation metric selects the model,
    else None (the trained weights in memory, which are ``last.ckpt``'s). A selected run without
    a usable ``best.ckpt`` (restored by :func:`checkpoints.recover` where a kill cut its write)
    is tested on its last weights, and the line printed says so."""
    if selection is None:
        return None
    best = run_dir / "checkpoints" / "best.ckpt"
    why = check_checkpoint(best)
    if why is None:
        return best
    if global_rank() == 0:
        print(f"[{run.benchmark}] warning: {best} is {why}; testing the last weights instead of the "
              f"{selection.metric}-selected ones", file=sys.stderr)
    return None


def fit_and_test(bench, ctx, run: Run) -> dict:
    """Fit (or resume) and test one run; returns its metric columns. A signal that stops it
    raises :class:`Interrupted` (:class:`StopOnSignal` saved ``last.ckpt`` on SIGTERM)."""
    import pytorch_lightning as pl

    run_dir = run.run_dir(ctx.runs_dir)
    elapsed = Elapsed(run_dir)
    pl.seed_everything(run.seed, workers=True, verbose=False)
    if bench.is_custom(run):
        out = bench.custom_run(ctx, run, run_dir)
        if isinstance(out, list):  # a measurement cell's rows (reproduce/runner/measurement.py)
            metrics = {"rows": out, "wall_s": round(elapsed.total(), 2)}
        else:
            metrics = {**out, "wall_s": round(elapsed.total(), 2)}
        if ctx.launch.logger == "wandb":
            from reproduce.runner.wandb_log import log_custom_run
            log_custom_run(run, run_dir, ctx.data_source, metrics)
        return metrics

    set_tf32(trainer_config(run.cfg).tf32)
    from reproduce.runner.progress import slow_step
    tag = f"[{run.benchmark}] {run.model} {run.setting_str} seed={run.seed}"
    dm = bench.build_datamodule(ctx, run)
    with slow_step(f"{tag}: building the model"):  # e.g. DeepSphere's graphs at a high Nside
        backbone = bench.build_backbone(ctx, run)
    task = bench.build_task(ctx, run, backbone)
    selection = trainer_config(run.cfg).selection
    prepare_ddp(task, trainer_config(run.cfg), ctx.launch)

    class SaveElapsed(Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            elapsed.save()

    stop = StopOnSignal()
    trainer = make_trainer(ctx.launch, run, run_dir, ctx.data_source,
                           [SaveElapsed(), *bench.callbacks(ctx, run)], stop=stop)
    log_model_summary(trainer, task)
    last = run_dir / "checkpoints" / "last.ckpt"
    kept = pruned_to(run_dir)  # a finished run whose checkpoints were pruned, tested again (row.json lost)
    resume = shared_resume(run, run_dir, ctx.launch.world) if kept is None else None
    try:
        if kept is None:  # a pruned run finished training: its kept checkpoint is tested again
            trainer.fit(task, datamodule=dm, ckpt_path=str(resume) if resume else None)
        final = final_train_metrics(trainer, run_dir)
        ckpt = tested_checkpoint(run, run_dir, selection)
        if ckpt is None and kept is not None:
            ckpt = run_dir / "checkpoints" / kept  # training finished; its tested weights are this file
        results = trainer.test(task, datamodule=dm, ckpt_path=str(ckpt) if ckpt else None, verbose=False)
    except SystemExit:  # Lightning ends a SIGTERM with SIGTERMException, Ctrl-C with sys.exit(1)
        if stop.signum is None:
            raise
        elapsed.save()
        raise Interrupted(stop.signum, stop.checkpoint) from None
    metrics = {k.replace("/", "_"): round(float(v), 6) for k, v in (results[0] if results else {}).items()}
    metrics.update(final)
    with slow_step(f"{tag}: measurements after the test"):
        metrics.update(bench.after_test(ctx, run, task, dm) or {})
    metrics["params"] = count_params(backbone)
    metrics["wall_s"] = round(elapsed.total(), 2)
    metrics["checkpoint"] = os.path.relpath(ckpt or last, REPO_ROOT) if (ckpt or last.is_file()) else ""
    finish_wandb(trainer, metrics, logged=set(results[0]) if results else set(),
                 checkpoint=(run, run_dir, ckpt or last) if ctx.launch.log_checkpoints else None)
    return metrics
