"""Run identity and layout (``docs/conventions.md``), and a grid's runs (:func:`expand_grid`).

A run is one cell of a benchmark's grid: a model, a setting of the grid axes, a seed, a preset
and the resolved config of that cell. Its identity is a hash of all of these, and its folder is
derived from it::

    <runs-dir>/<benchmark>/<preset>/<model>/<setting>/seed<k>-<hash>/
        config.yaml        resolved config of this run
        started_at         when its first attempt started (kept by resumptions); elapsed_s.txt
        checkpoints/last.ckpt, checkpoints/best.ckpt (when validation selects the model)
        logs/attempt<k>/metrics.csv  Lightning CSV log per (re)start;  wandb/
        logs/cell.log, logs/slurm-<job>_<task>-rank<r>.log  a launcher's cell output (launchers.py)
        resume.json        rank 0's resume decision for ranks that srun/torchrun started (DDP)
        row.json, done     written last: the run is finished
"""
from __future__ import annotations

import fcntl
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from datamodules._common import InputError
from reproduce.runner import config as C
from reproduce.runner.config import config_hash


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
    def cell(self) -> tuple[str, str, str]:
        """(model, setting, seed) as they read in a results CSV."""
        return self.model, self.setting_str, str(self.seed)

    @property
    def run_id(self) -> str:
        return config_hash({"benchmark": self.benchmark, "model": self.model,
                            "setting": self.setting, "seed": self.seed,
                            "preset": self.preset, "cfg": self.cfg})

    def run_dir(self, runs_dir: Path) -> Path:
        safe = self.setting_str.replace("/", "_").replace(" ", "")
        return Path(runs_dir) / self.benchmark / self.preset / self.model / safe / \
            f"seed{self.seed}-{self.run_id}"


#: processes per node and world size of this invocation (:func:`set_launch`, from its command line;
#: the processes Lightning's launcher starts parse the same command line and set the same values)
_LAUNCH = {"world": 1, "per_node": 1}
#: (LOCAL_RANK, node rank) that Lightning's launcher gave this process, seen while WORLD_SIZE was set:
#: its environment plugin deletes WORLD_SIZE when fit or test tears down, and the rank stays what it was
_LIGHTNING_RANK: set[tuple[int, int]] = set()


# --------------------------------------------------------------------------- the grid's runs
def expand_grid(bench, cfg: dict, seed: int = 0, only: list[str] | None = None) -> list[Run]:
    """The runs of the grid (``only`` keeps those models)."""
    known = set(bench.model_ids(cfg))
    if only is not None:
        bad = [m for m in only if m not in known]
        if bad:
            raise InputError(f"unknown model(s) {', '.join(bad)} for {bench.name}; "
                             f"valid: {', '.join(sorted(known))}")
    runs_per_row = _count(C.get(cfg, "grid.runs", 1), "grid.runs")
    # run identity = every hyper-parameter; not the grid itself nor free-text table notes
    base = {k: v for k, v in cfg.items() if k not in ("grid", "notes")}
    out = []
    for model, setting, overrides, *row_runs in bench.grid(cfg):
        n_runs = runs_per_row
        if row_runs and row_runs[0] is not None:
            n_runs = _count(row_runs[0], f"grid row {model} {setting} runs")
        if model not in known:
            raise InputError(f"config grid row names model '{model}', which has no entry "
                             f"under models: ({', '.join(sorted(known))})")
        if only is not None and model not in only:
            continue
        rcfg = C.set_dotted(base, overrides)
        # the chosen entry of `models:`, updated by `model.<key>` overrides of this grid row
        rcfg["model"] = C.deep_merge(cfg["models"][model], rcfg.get("model") or {})
        rcfg.pop("models", None)
        for i in range(n_runs):
            out.append(Run(bench.name, model, setting, seed + i, cfg["preset"], rcfg))
    return out


def _count(value, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"config {where}: expected an int >= 1, got {value!r}")
    return value


# --------------------------------------------------------------------------- ranks
def set_launch(world: int, per_node: int) -> None:
    """Record how many processes this invocation runs (``--gpus``/``--cpu-procs`` × ``--num-nodes``),
    so that :func:`global_rank` can tell an ``srun`` that started them from a leftover
    ``SLURM_PROCID``."""
    _LAUNCH.update(world=max(1, int(world)), per_node=max(1, int(per_node)))
    _LIGHTNING_RANK.clear()


def _env_int(name: str) -> int | None:
    try:
        return int(os.environ[name])
    except (KeyError, ValueError):
        return None


def rank_source() -> tuple[int, str]:
    """(this process's global rank, the launcher it was read from).

    The rank comes from the launcher that started the process, never from leftovers:

    * torchrun (and other ``torch.distributed`` launchers): ``RANK`` with ``WORLD_SIZE``;
    * Lightning's own subprocess launcher: it sets ``LOCAL_RANK``, ``NODE_RANK`` and
      ``WORLD_SIZE`` in the processes it starts (and ``LOCAL_RANK=0`` in itself); a node's first
      process before it has started the others has only ``NODE_RANK`` (set by the user on node k);
      rank = node rank × processes per node + local rank. Lightning deletes ``WORLD_SIZE`` when
      fit or test tears down; a local rank seen with it stays this process's rank afterwards
      (until the next :func:`set_launch`);
    * ``srun``: ``SLURM_PROCID``, only when ``SLURM_NTASKS`` equals this invocation's world size.
      Inside an interactive allocation every process inherits ``SLURM_PROCID=0`` (and
      ``SLURM_NTASKS`` of the allocation), so with Lightning starting the ranks it is not a rank;
    * else 0 (one process).
    """
    env = os.environ
    rank = _env_int("RANK")
    if rank is not None and "WORLD_SIZE" in env:
        return rank, "torchrun"
    local, node = _env_int("LOCAL_RANK"), _env_int("NODE_RANK")
    if node is None:
        node = _env_int("GROUP_RANK")
    several = _LAUNCH["world"] > 1 or (_env_int("WORLD_SIZE") or 1) > 1  # a leftover NODE_RANK of one process is no rank
    if several and local is not None and "WORLD_SIZE" in env:
        _LIGHTNING_RANK.add((local, node or 0))
    launched = local is not None and (local, node or 0) in _LIGHTNING_RANK  # also after Lightning's teardown
    if several and (launched or (node is not None and node > 0)):
        return (node or 0) * _LAUNCH["per_node"] + (local or 0), "lightning"
    procid, ntasks = _env_int("SLURM_PROCID"), _env_int("SLURM_NTASKS")
    if procid is not None and _LAUNCH["world"] > 1 and ntasks == _LAUNCH["world"]:
        return procid, "srun"
    return 0, "single"


def global_rank() -> int:
    """This process's rank under DDP (:func:`rank_source`), 0 otherwise."""
    return rank_source()[0]


def launch_token() -> str | None:
    """An identifier that every rank of one launch shares and a later launch does not (``srun``:
    job, step and restart count; torchrun: run id and restart count), or None when the ranks
    are not started together by such a launcher."""
    env = os.environ
    source = rank_source()[1]
    if source == "srun":
        return "slurm-" + "-".join(env.get(k, "") for k in ("SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_RESTART_COUNT"))
    if source == "torchrun" and "TORCHELASTIC_RUN_ID" in env:
        return "torchrun-" + env["TORCHELASTIC_RUN_ID"] + "-" + env.get("TORCHELASTIC_RESTART_COUNT", "0")
    return None


class RunLock:
    """An exclusive lock on a run folder (``<run dir>/lock``, ``flock``): a second invocation of
    the same command skips (or waits for) a run that a live process is training. The operating
    system drops the lock when its holder dies, so a stale lock is simply taken over."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "lock"
        self._f = None

    def acquire(self, wait: bool = False) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            f.close()
            return False
        f.seek(0)
        f.truncate()
        f.write(f"{socket.gethostname()} pid {os.getpid()}\n")
        f.flush()
        self._f = f
        return True

    def holder(self) -> str:
        try:
            return self.path.read_text().strip() or "another process"
        except OSError:
            return "another process"

    def release(self) -> None:
        if self._f is not None:
            fcntl.flock(self._f, fcntl.LOCK_UN)
            self._f.close()
            self._f = None
