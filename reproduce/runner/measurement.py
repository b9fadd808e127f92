"""Benchmarks of the *measurement* kind: rows measured without Lightning (equivariance errors of
graphs, layer timings), through the same grid, store, command line and tables as the trained ones.

A measurement declares its config like a trained benchmark — ``configs/<name>/{paper,cpu,smoke}.yaml``
with a ``models:`` section naming what is measured (graphs, layers, speed sections) — and its report.
The grid is derived from the config: one cell per model × :meth:`Measurement.settings` (e.g. one per
HEALPix Nside) × seed, unless the config lists ``grid.rows`` itself. Each cell is a
:class:`~reproduce.runner.runs.Run` with its identity hash and folder, so ``--list``, ``--only``,
``--cell``, ``--jobs``, ``--table`` and resumption (finished cells are skipped) work as for training;
instead of training, a cell calls :meth:`Measurement.measure`, which returns *several* rows (one per
degree, per size, per timed operation). They go to ``results/<name>.csv`` with the cell's
provenance and ``run_id`` (a cell's rows are replaced together) and ``cell_wall_s`` (the cell's time).

``device``: a measurement whose figures depend on the device (timings) subclasses :class:`Timing`
(``device_sensitive = True``); its config then carries ``device`` (``cpu``, or ``cuda`` with
``--gpus 1``), part of every cell's identity, so rows of two devices never share a run, and its rows
say where they were measured (:meth:`Timing.where`).
"""
from __future__ import annotations

import abc
from typing import ClassVar

from datamodules._common import InputError
from reproduce.runner.benchmark import Benchmark, Context
from reproduce.runner.runs import Run
from reproduce.runner.store import machine


class Measurement(Benchmark, abc.ABC):
    """Subclass per measurement benchmark; declare ``name``, ``report`` and :meth:`measure`."""

    uses_data_dir: ClassVar[bool] = False
    default_data_source: ClassVar[str] = "synthetic"
    #: timings: the config's ``device`` is part of each cell's identity (``--gpus 1`` → ``cuda``)
    device_sensitive: ClassVar[bool] = False

    # -- grid ------------------------------------------------------------------------------------
    def model_ids(self, cfg: dict) -> list[str]:
        return list((cfg.get("models") or {}).keys())  # declared order: the order cells run in

    def settings(self, cfg: dict, model: str) -> list[tuple[dict, dict]]:
        """(setting, dotted config overrides) of each cell of ``model``; default one cell."""
        return [({}, {})]

    def grid(self, cfg: dict) -> list[tuple]:
        if (cfg.get("grid") or {}).get("rows"):
            return super().grid(cfg)
        if not self.model_ids(cfg):
            raise InputError(f"{self.name}: nothing to measure: no entry under 'models' in the config")
        return [(m, setting, overrides, None) for m in self.model_ids(cfg)
                for setting, overrides in self.settings(cfg, m)]

    def configure(self, cfg: dict, args) -> dict:
        refused = [o for o, bad in (("--gpus N > 1", args.gpus > 1), ("--num-nodes", args.num_nodes > 1),
                                    ("--cpu-procs", args.cpu_procs > 1), ("--evaluate", args.evaluate),
                                    ("--dry-run", args.dry_run)) if bad]
        if args.gpus and not self.device_sensitive:
            refused.append("--gpus (nothing here runs on a GPU)")
        if refused:
            raise InputError(f"{self.name} measures in one process and trains nothing: "
                             f"{', '.join(refused)} cannot be used")
        if self.device_sensitive:
            cfg["device"] = "cuda" if args.gpus else cfg.get("device", "cpu")
        return cfg

    # -- a cell ------------------------------------------------------------------------------------
    def is_custom(self, run: Run) -> bool:
        return True

    @staticmethod
    def device(run: Run) -> str:
        """The cell's device (``device_sensitive`` benchmarks; ``cpu`` unless the config says otherwise)."""
        return str(run.cfg.get("device", "cpu"))

    def check(self, ctx: Context, run: Run) -> None:
        if self.device_sensitive and self.device(run).startswith("cuda"):
            import torch
            if not torch.cuda.is_available():
                raise InputError(f"{self.name}: device {run.cfg['device']} but no CUDA device is available")
        self.check_cell(run)

    def check_cell(self, run: Run) -> None:
        """Validate a cell's config (build its typed sections) before anything is measured."""

    def custom_run(self, ctx: Context, run: Run, run_dir) -> list[dict]:
        return self.measure(ctx, run)

    @abc.abstractmethod
    def measure(self, ctx: Context, run: Run) -> list[dict]:
        """The rows of one cell (provenance and identity columns are added by the runner); every
        measurement benchmark defines it (a subclass without it cannot be instantiated)."""


class Timing(Measurement):
    """A measurement of timings (``reproduce/speed.py``, ``reproduce/scaling.py``): its figures depend
    on the device, so the device is part of each cell's identity, and every row says where it was
    measured."""

    device_sensitive = True

    def where(self, run: Run) -> dict:
        """The cell's ``device`` and the ``machine`` (:func:`~reproduce.runner.store.machine`), columns
        of each of its rows."""
        device = self.device(run)
        return {"device": device, "machine": machine(device)}
