"""What a benchmark declares, and the invocation context the runner hands it.

A ``reproduce/<name>.py`` script subclasses :class:`Benchmark` and mostly *declares*:

* ``datamodule`` — the LightningDataModule class; the config's ``data`` section becomes its
  keyword arguments through the typed path of :func:`reproduce.runner.config.build`, plus what
  :meth:`Benchmark.datamodule_args` supplies (data folder, stand-in flag, grid setting, seed);
* ``models`` — the model registry, ``kind`` → backbone class; an entry of the config's
  ``models`` section names its ``kind`` and the class's keyword arguments;
* ``task`` — the Lightning task of :mod:`models.tasks` (``Classify``, ``Segment``, ``Retrieve``);
* ``report`` — the results tables, as data (:class:`reproduce.runner.tables.Report`).

Each of these four may be declared as the object or as its ``"module:Name"``
(``datamodule = "datamodules.tetris:TetrisDataModule"``): a name is imported when first read
(:class:`reproduce.runner.lazy.Lazy`), and :meth:`Benchmark.check` validates a run's config
against the source of the named classes without importing them, so that ``--list`` answers
without torch and Lightning (:mod:`reproduce.runner.lazy`).

* ``measurements`` — what is measured on the trained model beyond the task's own metrics
  (:mod:`reproduce.runner.after_test`: ``Invariance``, ``InferenceTime``), run by the default
  ``after_test``;

and overrides hooks only for what is specific to it (``after_test`` for columns no declared
measurement gives, ``custom_run`` for rows not trained with Lightning, ``callbacks``;
``add_arguments`` + ``command`` for a command line option only it has, e.g. climate ``--predict``).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from datamodules._common import InputError
from reproduce.runner import config as C
from reproduce.runner.lazy import Lazy, resolve
from reproduce.runner.runs import Run, global_rank
from reproduce.runner.launch import Launch, trainer_config


@dataclass
class Context:
    """What a benchmark needs to know about this invocation."""

    cfg: dict                 # the resolved preset config (before grid rows)
    preset: str
    launch: Launch
    data_dir: Path | None
    generate: bool            # write the offline stand-in into data_dir
    data_source: str          # "real", "stand-in", or the benchmark's default_data_source
    hardware: str
    results_dir: Path
    runs_dir: Path
    code_version: str
    evaluate: Path | None = None
    #: what a finished run keeps: "selected" (the tested checkpoint) or "all" (checkpoints.prune)
    keep_checkpoints: str = "all"

    @property
    def is_rank_zero(self) -> bool:
        return global_rank() == 0


class Benchmark:
    """Subclass per benchmark; declare, and override only what differs."""

    name: ClassVar[str] = ""
    #: folder holding ``<name>/{smoke,cpu,paper}.yaml``
    config_root: ClassVar[Path] = C.CONFIG_ROOT
    #: data_source written in rows when the benchmark reads no data folder
    default_data_source: ClassVar[str] = "stand-in"
    #: whether the benchmark reads ``--data-dir`` (False: data generated from the run seed)
    uses_data_dir: ClassVar[bool] = True
    #: each of these four: the object, or its ``"module:Name"`` (imported when first read)
    datamodule: ClassVar[type | str | None] = None
    models: ClassVar[dict[str, Any]] = {}
    task: ClassVar[type | str | None] = None
    report: ClassVar[Any] = None
    #: measurements on the trained model (:mod:`reproduce.runner.after_test`), run by ``after_test``
    measurements: ClassVar[tuple] = ()
    #: dotted config values ``--evaluate`` sets on the checkpoint's config before the command
    #: line's overrides (e.g. score the whole test split whatever the training run scored)
    evaluate_defaults: ClassVar[dict] = {}
    #: dotted config keys that fix what a checkpoint was trained on (resolution, sampling, class
    #: count): ``--evaluate`` refuses to change them unless ``--allow-mismatch`` asks for it
    geometry_keys: ClassVar[tuple[str, ...]] = ("data.num_classes",)
    #: the task a benchmark that declares none trains
    DEFAULT_TASK: ClassVar[str] = "models.tasks:Classify"
    _LAZY: ClassVar[tuple[str, ...]] = ("datamodule", "task", "report")
    #: the docstring of the script that declares the benchmark (set for each subclass)
    script_doc: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # the docstring of the script declaring the class: its "Reproduces:" paragraph heads the table
        cls.script_doc = getattr(sys.modules.get(cls.__module__), "__doc__", None)
        for attr in cls._LAZY:  # a "module:Name" declaration: imported when first read
            if isinstance(cls.__dict__.get(attr), str):
                setattr(cls, attr, Lazy(cls.__dict__[attr]))

    def declared(self, attr: str) -> Any:
        """The declaration of ``datamodule``, ``task`` or ``report`` as written: the object, or its
        ``"module:Name"`` (not imported)."""
        for klass in type(self).__mro__:
            if attr in klass.__dict__:
                value = klass.__dict__[attr]
                if isinstance(value, property):  # computed by the benchmark: its value
                    return getattr(self, attr)
                return value.ref if isinstance(value, Lazy) else value
        return None

    # -- data ----------------------------------------------------------------------------------
    def datamodule_args(self, ctx: Context, run: Run) -> dict:
        """Arguments of the datamodule that do not come from the config's ``data`` section."""
        return {"data_dir": ctx.data_dir, "stand_in": ctx.generate} if self.uses_data_dir else {}

    def build_datamodule(self, ctx: Context, run: Run):
        if self.datamodule is None:
            raise InputError(f"{self.name}: no datamodule declared")
        return C.build(self.datamodule, run.cfg.get("data"), "data", **self.datamodule_args(ctx, run))

    def prepare_data(self, ctx: Context, runs: list[Run]) -> None:
        """Write or validate the data once per distinct datamodule (``data`` section and
        :meth:`datamodule_args`, e.g. a row's sampling), before any training (the datamodule's own
        ``prepare_data``: stand-in manifest, every split read, caches filled)."""
        seen = set()
        for run in runs:
            key = C.config_hash([run.cfg.get("data"), self.datamodule_args(ctx, run)])
            if key in seen or self.datamodule is None:
                continue
            seen.add(key)
            self.build_datamodule(ctx, run).prepare_data()

    # -- model and task ------------------------------------------------------------------------
    def model_ids(self, cfg: dict) -> list[str]:
        return sorted((cfg.get("models") or {}).keys())

    def model_declared(self, run: Run):
        """The backbone of the run's ``kind`` as declared in :attr:`models` (a class or its
        ``"module:Name"``, not imported)."""
        kind = (run.cfg.get("model") or {}).get("kind")
        if kind not in self.models:
            raise InputError(f"{self.name}: models.{run.model}.kind '{kind}' is unknown; valid kinds: "
                             f"{', '.join(sorted(self.models)) or 'none'}")
        return self.models[kind]

    def model_class(self, run: Run):
        return resolve(self.model_declared(run))

    def model_args(self, ctx: Context, run: Run) -> dict:
        """Arguments of the backbone that do not come from its ``models.<id>`` entry."""
        return {"num_classes": int(C.get(run.cfg, "data.num_classes"))}

    def _model_section(self, run: Run) -> dict:
        return {k: v for k, v in (run.cfg.get("model") or {}).items() if k != "kind"}

    def build_backbone(self, ctx: Context, run: Run):
        return C.build(self.model_class(run), self._model_section(run), f"models.{run.model}",
                       **self.model_args(ctx, run))

    def task_args(self, ctx: Context, run: Run, backbone) -> dict:
        return {"backbone": backbone, "num_classes": int(C.get(run.cfg, "data.num_classes")),
                "optim": run.cfg.get("optim") or {}}

    def task_declared(self):
        """The task as declared (its ``"module:Name"`` or the class; :attr:`DEFAULT_TASK` if none)."""
        return self.declared("task") or self.DEFAULT_TASK

    def task_class(self):
        return resolve(self.task_declared())

    def build_task(self, ctx: Context, run: Run, backbone):
        return C.build(self.task_class(), run.cfg.get("task"), "task", **self.task_args(ctx, run, backbone))

    def check(self, ctx: Context, run: Run) -> None:
        """Validate a run's config against the classes it will build, without building them:
        an unknown or mistyped key is an :class:`InputError` before any training. Classes declared
        as ``"module:Name"`` are read from their source, not imported (:mod:`reproduce.runner.lazy`)."""
        from models.optim import Optim
        trainer_config(run.cfg)
        C.build(Optim, run.cfg.get("optim"), "optim")
        datamodule = self.declared("datamodule")
        if datamodule is not None:
            C.check_args(datamodule, run.cfg.get("data"), "data", self.datamodule_args(ctx, run))
        C.check_args(self.model_declared(run), self._model_section(run), f"models.{run.model}",
                     self.model_args(ctx, run))
        if not self.is_custom(run):  # custom rows (e.g. an SVM) have no Lightning task
            C.check_args(self.task_declared(), run.cfg.get("task"), "task", self.task_args(ctx, run, None))

    # -- hooks ---------------------------------------------------------------------------------
    def is_custom(self, run: Run) -> bool:
        """Whether this run is not trained with Lightning (see :meth:`custom_run`)."""
        return False

    def custom_run(self, ctx: Context, run: Run, run_dir: Path) -> dict:
        """Metrics of a row not trained with Lightning (e.g. an SVM baseline)."""
        raise InputError(f"{self.name}: run {run.model} is custom but no custom_run is defined")

    def callbacks(self, ctx: Context, run: Run) -> list:
        """Extra Lightning callbacks for this run."""
        return []

    def declared_measurements(self, ctx: Context, run: Run, task, datamodule) -> dict:
        """The columns of the declared :attr:`measurements` on the trained model."""
        from reproduce.runner.after_test import measure_all
        return measure_all(self.measurements, ctx, run, task, datamodule)

    def after_test(self, ctx: Context, run: Run, task, datamodule) -> dict:
        """Extra columns measured on the trained model: the declared :attr:`measurements`; a
        benchmark overrides it for columns that no declared measurement gives."""
        return self.declared_measurements(ctx, run, task, datamodule)

    # -- the benchmark's own commands --------------------------------------------------------------
    def configure(self, cfg: dict, args) -> dict:
        """The resolved preset config, adjusted from the parsed command line before the grid
        expands (e.g. a measurement's ``device`` from ``--gpus``); an :class:`InputError` for an
        option this benchmark cannot honour. Default: unchanged."""
        return cfg

    def add_arguments(self, parser) -> None:
        """Add options of commands only this benchmark has (e.g. climate ``--predict``) to the
        shared :mod:`argparse` parser (:func:`reproduce.runner.cli.build_parser`)."""

    def command(self, args) -> int | None:
        """Run the benchmark's own command when ``args`` (the parsed command line) asks for it and
        return its exit status; ``None`` (the default) lets the shared flow go on. Called first,
        before the preset is resolved; an :class:`InputError` is one ``error:`` line, exit 2."""
        return None

    # -- grid ------------------------------------------------------------------------------------
    def grid(self, cfg: dict) -> list[tuple]:
        """(model, setting, dotted config overrides[, runs]) per row, from ``cfg['grid']['rows']``;
        a row's optional ``runs:`` replaces ``grid.runs`` for that row (``--runs N`` replaces both)."""
        rows = []
        for i, r in enumerate(C.get(cfg, "grid.rows")):
            if not isinstance(r, dict) or "model" not in r:
                raise InputError(f"config grid.rows[{i}] must be a mapping with a 'model' key")
            extra = set(r) - {"model", "setting", "overrides", "runs"}
            if extra:
                raise InputError(f"config grid.rows[{i}]: unknown key(s) {', '.join(sorted(extra))} "
                                 f"(valid: model, setting, overrides, runs)")
            rows.append((r["model"], dict(r.get("setting") or {}), dict(r.get("overrides") or {}),
                         r.get("runs")))
        return rows
