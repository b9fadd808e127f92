"""Trained models outside the command line (a notebook, a script): :func:`load_run`.

A run folder (``runs/<benchmark>/<preset>/<model>/<setting>/seed<k>-<hash>/``, or a W&B model
artifact downloaded with ``--log-checkpoints``) holds ``config.yaml`` — benchmark, model,
setting, seed, preset and the resolved config — and ``checkpoints/``. :func:`load_run` rebuilds
from them what the run trained, exactly as the runner built it (the benchmark's own
``build_datamodule`` / ``build_backbone`` / ``build_task``), loads the weights (``weights_only``)
and the datamodule's saved state (e.g. normalisation statistics), and returns a
:class:`LoadedRun`::

    from reproduce.load import load_run
    r = load_run("runs/tetris/smoke/steerable/default/seed0-<hash>")
    x, y = r.batch("test")             # one model-ready test batch (datamodule.model_batch)
    logits = r.predict(x)              # task in eval mode, no gradients
    r.task, r.backbone, r.datamodule   # the LightningModule, the plain nn.Module, the datamodule

``Classify.load_from_checkpoint(path)`` (and ``Segment`` / ``Retrieve``) goes through the same
path when the checkpoint sits in a run folder.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from datamodules._common import InputError

__all__ = ["LoadedRun", "load_run", "benchmark", "run_dir_of"]


def benchmark(name: str):
    """The :class:`~reproduce.runner.Benchmark` of ``reproduce/<name>.py`` (its ``BENCH``)."""
    try:
        module = importlib.import_module(f"reproduce.{name}")
    except ModuleNotFoundError as e:
        if e.name == f"reproduce.{name}":
            raise InputError(f"no benchmark '{name}' (no reproduce/{name}.py)") from None
        raise
    bench = getattr(module, "BENCH", None)
    if bench is None:
        raise InputError(f"reproduce/{name}.py declares no BENCH")
    return bench


def run_dir_of(path: str | Path) -> Path:
    """The run folder of ``path``: the folder itself, or the one whose ``checkpoints/`` holds
    the checkpoint file ``path``."""
    path = Path(path).expanduser().resolve()
    if path.is_file():
        path = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    if not (path / "config.yaml").is_file():
        raise InputError(f"{path} is not a run folder (no config.yaml); give runs/<benchmark>/<preset>/"
                         f"<model>/<setting>/seed<k>-<hash>/ or a checkpoint inside its checkpoints/")
    return path


@dataclass
class LoadedRun:
    """A trained run rebuilt from its folder (:func:`load_run`)."""

    bench: Any
    run: Any            # reproduce.runner.runs.Run: model, setting, seed, preset, cfg
    run_dir: Path
    checkpoint: Path
    task: Any           # models.tasks.Classify / Segment / Retrieve, in eval mode
    datamodule: Any

    @property
    def backbone(self):
        """The plain ``torch.nn.Module`` (no Lightning)."""
        return self.task.backbone

    @property
    def cfg(self) -> dict:
        return self.run.cfg

    def batch(self, stage: str = "test"):
        """One model-ready ``(x, y)`` batch of ``stage`` (``train``, ``val`` or ``test``):
        the datamodule is set up for it and the batch passed through its ``model_batch``."""
        dm = self.datamodule
        dm.setup("fit" if stage in ("train", "val") else stage)
        loader = {"train": dm.train_dataloader, "val": dm.val_dataloader, "test": dm.test_dataloader}[stage]()
        return dm.model_batch(next(iter(loader)))

    def predict(self, x):
        """The task's output for ``x`` (eval mode, no gradients, on the task's device)."""
        import torch
        self.task.eval()
        with torch.no_grad():
            return self.task(x.to(self.task.device))


def _checkpoint(run_dir: Path, which: str | Path) -> Path:
    ckpts = run_dir / "checkpoints"
    if which in ("best", "last"):
        order = ["best.ckpt", "last.ckpt"] if which == "best" else ["last.ckpt"]
        for name in order:
            if (ckpts / name).is_file():
                return ckpts / name
        raise InputError(f"{ckpts} has no {' or '.join(order)}")
    path = Path(which).expanduser()
    path = path if path.is_absolute() or path.is_file() else ckpts / path
    if not path.is_file():
        raise InputError(f"checkpoint {path} does not exist")
    return path.resolve()


def load_run(run_dir: str | Path, checkpoint: str | Path = "best", data_dir: str | Path | None = None,
             overrides: list[str] | tuple[str, ...] = (), map_location: str = "cpu") -> LoadedRun:
    """Rebuild a trained run from its folder: backbone, task (weights loaded, eval mode) and
    datamodule (its saved state restored; not set up — :meth:`LoadedRun.batch` does that).

    ``run_dir``: the run folder, or a checkpoint inside its ``checkpoints/``. ``checkpoint``:
    ``"best"`` (``best.ckpt`` where validation selected the model, else ``last.ckpt``),
    ``"last"``, or a file. ``data_dir``: the data to read (default: the folder the run was
    trained on, as ``config.yaml`` records it, else the benchmark's default stand-in folder).
    ``overrides``: ``key=value`` config changes as on the command line (e.g.
    ``data.test_batch_size=4``); what the weights were trained on (resolution, class count)
    cannot change."""
    import torch

    from reproduce.runner.benchmark import Context
    from reproduce.runner.config import apply_overrides
    from reproduce.runner.runs import Run
    from reproduce.runner.store import REPO_ROOT
    from reproduce.runner.trainer import Launch

    given = Path(run_dir).expanduser()
    run_dir = run_dir_of(given)
    ckpt = _checkpoint(run_dir, given.resolve() if given.is_file() else checkpoint)
    meta = yaml.safe_load((run_dir / "config.yaml").read_text())
    if not isinstance(meta, dict) or "benchmark" not in meta or "config" not in meta:
        raise InputError(f"{run_dir / 'config.yaml'} is not a run config this runner wrote")
    bench = benchmark(str(meta["benchmark"]))
    from reproduce.runner.evaluate import _model_key
    cfg = apply_overrides(meta["config"], [_model_key(o, str(meta["model_name"])) for o in overrides])
    run = Run(bench.name, str(meta["model_name"]), dict(meta.get("setting") or {}), int(meta["seed"]),
              str(meta["preset"]), cfg)
    if not bench.uses_data_dir:
        data = None
    elif data_dir is not None:
        data = Path(data_dir).expanduser().resolve()
    elif meta.get("data_dir"):
        data = Path(meta["data_dir"])
    else:
        data = REPO_ROOT / "data" / bench.name / f"stand-in-{run.preset}"
    ctx = Context(cfg=cfg, preset=run.preset, launch=Launch(logger="none"), data_dir=data, generate=False,
                  data_source="", hardware="", results_dir=run_dir, runs_dir=run_dir, code_version="",
                  evaluate=ckpt)
    state = torch.load(ckpt, map_location=map_location, weights_only=True)
    dm = bench.build_datamodule(ctx, run)
    dm_state = state.get(type(dm).__qualname__)
    if dm_state:
        dm.load_state_dict(dm_state)
    backbone = bench.build_backbone(ctx, run)
    task = bench.build_task(ctx, run, backbone)
    try:
        task.load_state_dict(state["state_dict"])
    except (KeyError, RuntimeError) as e:
        raise InputError(f"{ckpt} does not fit the model of {run_dir / 'config.yaml'} "
                         f"({str(e).splitlines()[0][:160]})") from None
    task.eval()
    return LoadedRun(bench=bench, run=replace(run), run_dir=run_dir, checkpoint=ckpt, task=task, datamodule=dm)
