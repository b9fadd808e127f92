"""How an invocation runs — devices, processes, nodes — decided from the command line before
anything is imported from torch or Lightning or written to disk.

The device options read as Lightning 2's ``Trainer`` arguments, with two short forms::

    --accelerator {cpu,gpu,cuda,auto}  --devices N|auto  --strategy {auto,ddp}  --precision P
    --gpus N       = --accelerator gpu --devices N
    --cpu-procs N  = --accelerator cpu --devices N   (DDP over N CPU processes, gloo)
    --num-nodes N  nodes, each running --devices processes

A short form and a long one may be given together when they agree (``--gpus 2 --devices 2``);
when they contradict each other (``--gpus 2 --accelerator cpu``, ``--gpus 2 --devices 4``) the
invocation stops with one ``error:`` line (:class:`~datamodules._common.InputError`), as it does
for a request this machine cannot meet: more GPUs than CUDA shows, or ``--num-nodes`` > 1
without anything that starts the other nodes' processes (SLURM, torchrun, or ``MASTER_ADDR`` +
``NODE_RANK`` set by hand; ``--launcher slurm`` submits the nodes itself).

``--precision`` is ``trainer.precision`` of the config (part of the run's identity). It applies
on GPUs; CPU runs train in float32, so a lower precision on the CPU is refused.
"""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from datamodules._common import InputError
from reproduce.runner.config import build

ACCELERATORS = ("cpu", "gpu", "cuda", "auto")
STRATEGIES = ("auto", "ddp")
#: Lightning 2's precision names (``Trainer(precision=...)``), plus the legacy integers
PRECISIONS = ("64-true", "64", "32-true", "32", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "16", "bf16")
FLOAT32 = ("32", "32-true")


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
    # DDP: equivariant batch norms on any backend; torch's BatchNorm on GPUs only (no SyncBatchNorm on CPU/gloo)
    sync_batchnorm: bool = True
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


@dataclass
class Launch:
    """How this invocation runs: devices and loggers (from the command line)."""

    gpus: int = 0
    num_nodes: int = 1
    cpu_procs: int = 1
    logger: str = "wandb"
    strategy: str = "auto"
    #: log each W&B run's tested checkpoint (with its config.yaml) as a ``model`` artifact
    log_checkpoints: bool = False

    @property
    def world(self) -> int:
        return (self.gpus or max(1, self.cpu_procs)) * self.num_nodes


def cuda_devices() -> int:
    """CUDA GPUs visible to torch (imports torch)."""
    import torch
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _count(text: str | None, option: str) -> int | str | None:
    """``--devices``' value: an int >= 1, or ``auto`` (``-1`` is Lightning's spelling of it)."""
    if text is None:
        return None
    t = str(text).strip().lower()
    if t in ("auto", "-1"):
        return "auto"
    try:
        n = int(t)
    except ValueError:
        raise InputError(f"{option} {text!r}: expected a number of devices (1, 2, ...) or 'auto'; a list of "
                         f"GPU indices is set with CUDA_VISIBLE_DEVICES") from None
    if n < 1:
        raise InputError(f"{option} must be at least 1 (or 'auto'), got {n}")
    return n


def resolve_devices(accelerator: str | None, devices: str | None, gpus: int | None, cpu_procs: int | None,
                    visible=cuda_devices) -> tuple[int, int]:
    """(GPUs per node, CPU processes per node) from the device options (see the module text);
    contradictions and GPU requests this machine cannot meet raise :class:`InputError`.

    >>> resolve_devices(None, None, None, None)
    (0, 1)
    >>> resolve_devices("gpu", "2", None, None, visible=lambda: 2)
    (2, 1)
    >>> resolve_devices(None, "3", None, None)
    (0, 3)
    >>> resolve_devices("cpu", None, 2, None)
    Traceback (most recent call last):
    ...
    datamodules._common.InputError: --gpus 2 asks for GPUs, --accelerator cpu for the CPU; give one of them
    """
    if gpus is not None and gpus < 0:
        raise InputError(f"--gpus must be 0 or more, got {gpus}")
    if cpu_procs is not None and cpu_procs < 1:
        raise InputError(f"--cpu-procs must be at least 1, got {cpu_procs}")
    if accelerator is not None and accelerator not in ACCELERATORS:
        raise InputError(f"--accelerator {accelerator!r}: expected one of {', '.join(ACCELERATORS)}")
    n = _count(devices, "--devices")
    if gpus and cpu_procs is not None and cpu_procs > 1:
        raise InputError("--gpus and --cpu-procs exclude each other")
    if gpus and accelerator == "cpu":
        raise InputError(f"--gpus {gpus} asks for GPUs, --accelerator cpu for the CPU; give one of them")
    if cpu_procs is not None and cpu_procs > 1 and accelerator in ("gpu", "cuda"):
        raise InputError(f"--cpu-procs {cpu_procs} runs CPU processes, --accelerator {accelerator} asks for "
                         f"GPUs; give --devices N with the accelerator instead")
    if gpus and n is not None and n != gpus:
        raise InputError(f"--gpus {gpus} and --devices {devices} disagree (--gpus N is --accelerator gpu "
                         f"--devices N); give one of them")
    if cpu_procs is not None and cpu_procs > 1 and n is not None and n != cpu_procs:
        raise InputError(f"--cpu-procs {cpu_procs} and --devices {devices} disagree (--cpu-procs N is "
                         f"--accelerator cpu --devices N); give one of them")
    if gpus == 0 and accelerator in ("gpu", "cuda"):
        raise InputError(f"--gpus 0 asks for the CPU, --accelerator {accelerator} for GPUs; give one of them")
    if gpus:
        want_gpu = True
    elif gpus == 0 or accelerator in (None, "cpu") or (cpu_procs is not None and cpu_procs > 1):
        want_gpu = False
    elif accelerator in ("gpu", "cuda"):
        want_gpu = True
    else:  # auto: the GPUs when CUDA shows any
        want_gpu = visible() > 0
    if not want_gpu:
        return 0, (cpu_procs or (1 if n in (None, "auto") else n))
    count = gpus or n or 1
    found = visible()
    if count == "auto":
        count = found
    if found < 1 or found < count:
        import torch
        raise InputError(f"{'--gpus ' + str(gpus) if gpus else '--accelerator ' + str(accelerator)}"
                         f"{' --devices ' + str(devices) if devices is not None and not gpus else ''}: this "
                         f"machine has {found} CUDA GPU(s) visible to torch {torch.__version__}; "
                         f"drop the GPU options to run on the CPU")
    return int(count), 1


def multi_node_launcher(env=os.environ) -> str | None:
    """What starts the processes of the other nodes, or None: ``slurm`` (inside a SLURM job of
    several nodes), ``torchrun``, ``manual`` (``MASTER_ADDR`` and ``NODE_RANK`` set, as Lightning's
    multi-node guide has it)."""
    if env.get("SLURM_JOB_ID") and env.get("SLURM_NNODES"):
        return "slurm"
    if env.get("TORCHELASTIC_RUN_ID") or ("RANK" in env and "WORLD_SIZE" in env and "MASTER_ADDR" in env):
        return "torchrun"
    if env.get("MASTER_ADDR") and "NODE_RANK" in env:
        return "manual"
    return None


def check_nodes(num_nodes: int, launcher: str, env=os.environ) -> None:
    """``--num-nodes`` > 1 needs something that starts the other nodes (see
    :func:`multi_node_launcher`); without it Lightning would wait for them forever."""
    if num_nodes < 1:
        raise InputError(f"--num-nodes must be at least 1, got {num_nodes}")
    if num_nodes == 1 or launcher == "slurm":
        return
    found = multi_node_launcher(env)
    if found is None:
        raise InputError(f"--num-nodes {num_nodes}: nothing here starts the other nodes' processes (not in a "
                         f"SLURM job, no torchrun, no MASTER_ADDR/NODE_RANK); submit with --launcher slurm, run "
                         f"inside `srun`, or start the command on each node with MASTER_ADDR, MASTER_PORT and "
                         f"NODE_RANK set")
    if found == "slurm":
        try:
            have = int(env["SLURM_NNODES"])
        except ValueError:
            return
        if have < num_nodes:
            raise InputError(f"--num-nodes {num_nodes}: this SLURM job has {have} node(s) "
                             f"(SLURM_NNODES={env['SLURM_NNODES']})")


def precision_override(precision: str | None, gpus: int, cfg_precision) -> str | None:
    """The ``trainer.precision`` value ``--precision`` sets, or None to leave the config as it is
    (float32 asked for where the config sets nothing keeps the run's identity)."""
    if precision is None:
        return None
    p = str(precision)
    if p not in PRECISIONS:
        raise InputError(f"--precision {p!r}: expected one of {', '.join(PRECISIONS)}")
    if not gpus and p not in FLOAT32:
        raise InputError(f"--precision {p}: CPU runs train in float32 (trainer.precision applies on GPUs); "
                         f"drop --precision or run with --gpus")
    if p in FLOAT32 and cfg_precision in (None, "32", "32-true", 32):
        return None
    return p


def check_strategy(strategy: str, world: int) -> None:
    if strategy not in STRATEGIES:
        raise InputError(f"--strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    if strategy == "ddp" and world < 2:
        raise InputError("--strategy ddp needs more than one process (--devices N, --gpus N or --cpu-procs N "
                         "with N > 1, or --num-nodes > 1)")


class Interrupted(Exception):
    """Training or testing stopped by a signal; ``checkpoint`` is the ``last.ckpt`` saved then
    (None when none was), ``finished``/``total`` the grid's runs (set by the grid)."""

    def __init__(self, signum: int, checkpoint: Path | None = None):
        super().__init__(signal.Signals(signum).name)
        self.signum, self.checkpoint = int(signum), checkpoint
        self.finished: int | None = None
        self.total: int | None = None

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process ended by it (SIGINT 130,
        SIGTERM 143, SIGUSR1 138)."""
        return 128 + self.signum


#: the signal that stopped Lightning, when it was not SIGTERM itself (SIGUSR1 is forwarded as one)
_FORWARDED: list[int] = []


def on_stop_signal(signum, frame) -> None:
    """Handler of SIGTERM (and SIGUSR1 outside SLURM) for the whole invocation. Inside a
    Lightning ``fit``/``test`` Lightning's own handler runs first and stops at the next batch
    boundary (:class:`~reproduce.runner.trainer.StopOnSignal` saves the checkpoint): nothing to
    do here. Outside it the run has nothing unsaved, so :class:`Interrupted` is raised at once."""
    current = signal.getsignal(signal.SIGTERM)
    if signum == signal.SIGTERM:
        if current is not on_stop_signal:
            return  # Lightning's handler (which calls this one after its own) is in charge
        raise Interrupted(signum)
    if current is not on_stop_signal and callable(current):
        _FORWARDED.append(int(signum))
        current(signal.SIGTERM, frame)  # Lightning's graceful stop
        return
    raise Interrupted(signum)


def slurm_detected() -> bool:
    """Lightning's ``SLURMEnvironment.detect()``, imported only inside a SLURM job."""
    if "SLURM_NTASKS" not in os.environ:
        return False
    from pytorch_lightning.plugins.environments import SLURMEnvironment
    return SLURMEnvironment.detect()


def install_signal_handlers() -> None:
    """SIGTERM → :func:`on_stop_signal`; SIGUSR1 too, except under SLURM, where Lightning's
    ``SLURMEnvironment`` installs its own (checkpoint ``hpc_ckpt_<n>.ckpt`` and requeue; it only
    does so when no handler is installed, so none is installed here)."""
    if threading_main():
        signal.signal(signal.SIGTERM, on_stop_signal)
        if not slurm_detected():
            signal.signal(signal.SIGUSR1, on_stop_signal)


def threading_main() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()
