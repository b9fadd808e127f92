"""The shared reproduction runner: one small package, each part readable on its own.

* :mod:`~reproduce.runner.cli` — the options every ``reproduce/<benchmark>.py`` shares, :func:`main`;
* :mod:`~reproduce.runner.config` — presets, overrides, and the typed path config → object;
* :mod:`~reproduce.runner.lazy` — classes declared as ``"module:Name"``, their parameters read from the source;
* :mod:`~reproduce.runner.runs` — run identity and folder layout;
* :mod:`~reproduce.runner.grid` — the resumable (model × setting × seed) grid;
* :mod:`~reproduce.runner.launchers` — grid cells as jobs: local, ``--jobs K``, SLURM job arrays;
* :mod:`~reproduce.runner.trainer` — Lightning trainer, loggers, model selection, fit and test;
* :mod:`~reproduce.runner.evaluate` — ``--evaluate``: re-score a checkpoint;
* :mod:`~reproduce.runner.store` — results CSVs and provenance (hardware, code version, time);
* :mod:`~reproduce.runner.tables` — tables declared as data and their one renderer;
* :mod:`~reproduce.runner.benchmark` — what a benchmark declares;
* :mod:`~reproduce.runner.measurement` — benchmarks whose cells measure rows without Lightning.
"""
from reproduce.runner.benchmark import Benchmark, Context
from reproduce.runner.cli import main
from reproduce.runner.runs import Run

__all__ = ["Benchmark", "Context", "Run", "main"]
