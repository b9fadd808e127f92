"""W&B for the runner: one W&B run per grid cell, one table run per (benchmark, preset).

W&B is offline unless ``WANDB_MODE`` or ``WANDB_API_KEY`` say otherwise; ``WANDB_PROJECT`` names
the project (default ``equivariant-bench``), ``WANDB_ENTITY`` the entity. What a dashboard finds:

* **a run per grid cell** (model × setting × seed), Lightning-trained or not (an SVM row's
  metrics go to a run of its own, :func:`log_custom_run`): id ``<benchmark>-<run id>-s<seed>``
  (a resumed cell continues its run), job type the preset, tags benchmark, model, preset, seed,
  data source. Its **group** is the cell without its seed, ``<benchmark>/<preset>/<model>/<setting>``
  plus the hash of its config: W&B's group mean averages the seeds of one setting only (CATH's
  reduction 1 and 4 are two groups), and a cell rerun with other hyper-parameters is a group of
  its own. Config: the run's resolved config plus ``run`` (model, setting, seed, preset, run id).
* **history**: Lightning's metrics against ``trainer/global_step``, the learning rate of each
  parameter group (``lr-<optimizer>``, Lightning's ``LearningRateMonitor``);
* **summary**: ``define_metric`` keeps the best value of every validation metric (``val/acc.max``,
  ``val/map.max``; the selection metric ``trainer.select`` in its own direction) and the lowest
  loss (``val/loss.min``, ``train/loss_epoch.min``) beside the last; test metrics once, as
  Lightning logs them (``test/acc``); the row's other columns (``final_train_acc``, ``params``,
  ``wall_s``, equivariance errors) as numbers — a column the CSV keeps as formatted text
  (``equivariance_error_cube: "5.21e-16"``) is a float here;
* **the model** of a Lightning-trained cell, logged before training starts (:func:`log_model_summary`):
  config ``model_summary`` = ``{params, trainable_params, non_trainable_params, backbone}`` (the
  backbone's parameter counts as numbers, its class name), the same counts in the summary
  (``model/params``, ``model/trainable_params``), and the layer summary — Lightning's
  ``ModelSummary`` of the task (layers to depth 2, parameters per layer) followed by the backbone
  as torch prints it — as the run file ``model_summary.txt`` and as ``model/summary`` (HTML);
* **checkpoints as artifacts**, only with ``--log-checkpoints``: artifact ``model-<run id>``
  (type ``model``, alias ``best`` or ``last``) holding ``config.yaml`` and the tested checkpoint,
  a run folder that :func:`reproduce.load.load_run` reads once downloaded;
* **one table run per (benchmark, preset)**, id ``<benchmark>-<preset>-tables``: every invocation
  that changes the tables logs them to the same run (each offline invocation is a folder
  ``offline-run-<time>-<id>``; ``wandb sync`` joins folders of one id into one run in time order;
  an invocation whose tables did not change logs nothing). Each declared table is logged under
  its title (``<benchmark>/<title>``) with numeric columns (``<column>: mean``, ``: std``, ``: n``,
  published values as numbers, the formatted text kept as ``<column>: text``), and
  ``<benchmark>/cells`` holds mean, std and n of every numeric column of the rows per (model, setting).
"""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

from datamodules._common import atomic_write_text
from reproduce.runner.config import config_hash
from reproduce.runner.runs import Run, global_rank
from reproduce.runner.store import count_params


def wandb_project() -> str:
    """W&B offline unless ``WANDB_MODE`` or ``WANDB_API_KEY`` say otherwise; the project name."""
    if "WANDB_MODE" not in os.environ and "WANDB_API_KEY" not in os.environ:
        os.environ["WANDB_MODE"] = "offline"
    os.environ.setdefault("WANDB_SILENT", "true")
    return os.environ.get("WANDB_PROJECT", "equivariant-bench")


def cell_hash(run: Run) -> str:
    """Hash of a grid cell without its seed: the runs that W&B should average together."""
    return config_hash({"benchmark": run.benchmark, "model": run.model, "setting": run.setting,
                        "preset": run.preset, "cfg": run.cfg}, 8)


def group_name(run: Run) -> str:
    """``<benchmark>/<preset>/<model>/<setting>-<cell hash>``: the seeds of one setting.

    >>> r = Run("cath", "se3resnet34small", {"reduction": 4}, 1, "smoke", {"optim": {"lr": 0.01}})
    >>> group_name(r).rsplit("-", 1)[0]
    'cath/smoke/se3resnet34small/reduction=4'
    >>> group_name(r) == group_name(Run("cath", "se3resnet34small", {"reduction": 4}, 2, "smoke", r.cfg))
    True
    """
    return f"{run.benchmark}/{run.preset}/{run.model}/{run.setting_str}-{cell_hash(run)}"


def run_id(run: Run) -> str:
    return f"{run.benchmark}-{run.run_id}-s{run.seed}"


def init_cell_run(run: Run, run_dir: Path, data_source: str):
    """Start (or resume, same id) the W&B run of one grid cell; rank 0 only."""
    import wandb
    project = wandb_project()
    return wandb.init(
        project=project, entity=os.environ.get("WANDB_ENTITY") or None,
        group=group_name(run), job_type=run.preset,
        name=f"{run.benchmark}-{run.model}-{run.setting_str}-seed{run.seed}",
        tags=[run.benchmark, run.model, f"preset={run.preset}", f"seed={run.seed}", f"data={data_source}"],
        dir=str(run_dir), id=run_id(run), resume="allow",
        config={"run": {"model": run.model, "setting": run.setting, "seed": run.seed, "preset": run.preset,
                        "run_id": run.run_id, "cell": cell_hash(run), "data_source": data_source},
                **run.cfg},
        settings=wandb.Settings(silent=True))


#: validation metrics where lower is better (everything else the tasks log is higher-is-better)
LOWER_IS_BETTER = ("loss",)


def define_metrics(exp, selection=None) -> None:
    """History against ``trainer/global_step``; summaries with the best value of every
    validation metric and the lowest loss beside the last (``selection``, the
    :class:`~reproduce.runner.trainer.Select` of ``trainer.select``, in its own direction)."""
    step = "trainer/global_step"
    exp.define_metric(step)
    exp.define_metric("*", step_metric=step, step_sync=True)
    exp.define_metric("val/*", step_metric=step, step_sync=True, summary="max,last")
    for name in ("val/loss", "train/loss_epoch", "train/loss_step", "train/loss"):
        exp.define_metric(name, step_metric=step, step_sync=True, summary="min,last")
    if selection is not None:
        exp.define_metric(selection.metric, step_metric=step, step_sync=True, summary=f"{selection.mode},last")


def as_number(v):
    """A row value as W&B should see it: numbers (and numeric text such as ``'5.21e-16'``) as
    floats/ints, other text as text, anything else (None, lists) left out.

    >>> as_number("5.21e-16"), as_number(3), as_number("best.ckpt"), as_number(None)
    (5.21e-16, 3, 'best.ckpt', None)
    """
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        try:
            f = float(v)
        except ValueError:
            return v
        return f if math.isfinite(f) or v.strip().lower() in ("nan", "inf", "-inf") else v
    return None


def summary_update(metrics: dict, logged: set[str] = frozenset()) -> dict:
    """The row's metric columns for a W&B summary: numbers as numbers, the test metrics that
    Lightning already logged (``test/acc``, row column ``test_acc``) left out."""
    skip = {k.replace("/", "_") for k in logged}
    out = {}
    for k, v in metrics.items():
        if k in skip:
            continue
        x = as_number(v)
        if x is not None:
            out[k] = x
    return out


def log_checkpoint(exp, run: Run, run_dir: Path, ckpt: Path | None) -> None:
    """The tested checkpoint and ``config.yaml`` as a ``model`` artifact (``--log-checkpoints``)."""
    import wandb
    if ckpt is None or not Path(ckpt).is_file():
        return
    ckpt = Path(ckpt)
    art = wandb.Artifact(f"model-{run.benchmark}-{run.run_id}", type="model",
                         metadata={"benchmark": run.benchmark, "model": run.model, "setting": run.setting,
                                   "seed": run.seed, "preset": run.preset, "checkpoint": ckpt.name})
    art.add_file(str(run_dir / "config.yaml"), name="config.yaml")
    art.add_file(str(ckpt), name=f"checkpoints/{ckpt.name}")
    exp.log_artifact(art, aliases=["best" if ckpt.stem == "best" else "last"])


def model_summary(task, max_depth: int = 2) -> tuple[dict, str]:
    """The numbers and the text of a Lightning task's model summary: the parameter counts of its
    backbone (total, trainable — the results column ``params`` —, non-trainable) and the backbone's
    class; the text is Lightning's ``ModelSummary`` (layers to ``max_depth``) followed by the
    backbone as torch prints it (every layer)."""
    from pytorch_lightning.utilities.model_summary import ModelSummary
    backbone = task.backbone
    total, trainable = sum(p.numel() for p in backbone.parameters()), count_params(backbone)
    numbers = {"params": int(total), "trainable_params": int(trainable), "non_trainable_params": int(total - trainable),
               "backbone": type(backbone).__name__}
    text = (f"{ModelSummary(task, max_depth=max_depth)}\n\nbackbone ({type(backbone).__module__}."
            f"{type(backbone).__qualname__}):\n{backbone}\n")
    return numbers, text


def log_model_summary(exp, task) -> dict:
    """Log the model summary of a cell's task to its W&B run ``exp`` (see the module text): the
    counts in its config and summary, the text as the run file ``model_summary.txt`` and as
    ``model/summary`` (HTML). Returns the numbers."""
    import html

    import wandb
    numbers, text = model_summary(task)
    exp.config.update({"model_summary": numbers}, allow_val_change=True)
    exp.summary.update({f"model/{k}": v for k, v in numbers.items() if k != "backbone"})
    path = Path(exp.dir) / "model_summary.txt"
    atomic_write_text(path, text)
    exp.save(str(path), base_path=exp.dir, policy="now")
    exp.log({"model/summary": wandb.Html(f"<pre>{html.escape(text)}</pre>", inject=False, data_is_not_path=True)})
    return numbers


def finish_cell_run(exp, metrics: dict, logged: set[str] = frozenset()) -> None:
    exp.summary.update(summary_update(metrics, logged))
    exp.finish()


def stage_key(column: str) -> str:
    """A row column under the key Lightning logs it as (``test_acc`` → ``test/acc``), so that a
    custom row's metrics share the dashboard's columns with the Lightning rows'.

    >>> stage_key("test_acc_rotated"), stage_key("wall_s"), stage_key("final_train_acc")
    ('test/acc_rotated', 'wall_s', 'final_train_acc')
    """
    stage, _, rest = column.partition("_")
    return f"{stage}/{rest}" if stage in ("train", "val", "test") and rest else column


def log_custom_run(run: Run, run_dir: Path, data_source: str, metrics: dict) -> None:
    """A grid cell not trained with Lightning (an SVM row, a measurement cell): its own W&B run
    holding its row's metrics, the stage metrics under Lightning's keys (``test/acc``), and a
    measurement cell's ``rows`` as a table; rank 0 only."""
    if global_rank() != 0:
        return
    exp = init_cell_run(run, run_dir, data_source)
    rows = metrics.get("rows")
    values = {stage_key(k): v for k, v in summary_update({k: v for k, v in metrics.items() if k != "rows"}).items()}
    if isinstance(rows, list) and rows:  # a measurement cell: its rows as a table, numbers as numbers
        import wandb
        cols = list(dict.fromkeys(k for r in rows for k in r))
        exp.log({"rows": wandb.Table(columns=cols, data=[[as_number(r.get(c)) for c in cols] for r in rows])})
    exp.log({k: v for k, v in values.items() if isinstance(v, (int, float))})
    exp.summary.update(values)
    exp.finish()


# --------------------------------------------------------------------------- the table run
def table_run_id(bench_name: str, preset: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{bench_name}-{preset}-tables")


def cells_table(rows: list[dict]) -> tuple[list[str], list[list]]:
    """Mean, std and n of every numeric metric column per (model, setting) of the rows.

    >>> cols, data = cells_table([{"model": "a", "setting": "default", "seed": 0, "test_acc": "0.5"},
    ...                           {"model": "a", "setting": "default", "seed": 1, "test_acc": "0.7"}])
    >>> cols, [round(x, 3) if isinstance(x, float) else x for x in data[0]]
    (['model', 'setting', 'runs', 'test_acc: mean', 'test_acc: std', 'test_acc: n'], ['a', 'default', 2, 0.6, 0.141, 2])
    """
    from reproduce.runner.tables import floats, mean_std_n
    ident = {"model", "setting", "seed", "preset", "data_source", "hardware", "code_version", "started_at",
             "run_id", "run_dir", "checkpoint", "world_size"}
    metrics: list[str] = []
    for r in rows:
        for k, v in r.items():
            if k in ident or k.startswith("setting_") or k in metrics:
                continue
            x = as_number(v)
            if isinstance(x, (int, float)):
                metrics.append(k)
    cells: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        cells.setdefault((str(r.get("model", "")), str(r.get("setting", ""))), []).append(r)
    columns = ["model", "setting", "runs"] + [f"{m}: {s}" for m in metrics for s in ("mean", "std", "n")]
    data = []
    for (model, setting), rs in cells.items():
        line: list = [model, setting, len(rs)]
        for m in metrics:
            mean, std, n = mean_std_n(floats(rs, m))
            line += [None if n == 0 else mean, None if n == 0 else std, n]
        data.append(line)
    return columns, data


def table_payload(bench, cfg: dict, rows: list[dict]) -> dict[str, tuple[list[str], list[list]]]:
    """``{<benchmark>/<title>: (columns, data)}`` of every declared table (numeric columns,
    :func:`reproduce.runner.tables.numeric_table`) and ``<benchmark>/cells``."""
    from reproduce.runner.tables import numeric_table, table_data
    out = {}
    for title, heads, body in table_data(bench, cfg, rows):
        out[f"{bench.name}/{title}"] = numeric_table(heads, body)
    if rows:
        out[f"{bench.name}/cells"] = cells_table(rows)
    return out


def log_tables(bench, cfg: dict, rows: list[dict], runs_dir: Path) -> bool:
    """Log the tables to the (benchmark, preset) table run, resumed by its stable id; nothing
    when they are what the last invocation logged (``tables/wandb.json`` keeps its hash and the
    next step). Returns whether anything was logged."""
    payload = table_payload(bench, cfg, rows)
    if not payload:
        return False
    import wandb
    project = wandb_project()
    folder = Path(runs_dir) / bench.name / cfg["preset"] / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    state_path = folder / "wandb.json"
    digest = config_hash([project, payload])
    try:
        state = json.loads(state_path.read_text())
        if not isinstance(state, dict):
            state = {}
    except (OSError, ValueError):
        state = {}
    if state.get("hash") == digest:
        return False
    step = int(state.get("step", -1)) + 1 if isinstance(state.get("step", -1), int) else 0
    run = wandb.init(project=project, entity=os.environ.get("WANDB_ENTITY") or None, job_type="table",
                     id=table_run_id(bench.name, cfg["preset"]), resume="allow",
                     group=f"{bench.name}/{cfg['preset']}/tables", name=f"{bench.name}-{cfg['preset']}-table",
                     dir=str(folder), tags=[bench.name, f"preset={cfg['preset']}"],
                     config={"benchmark": bench.name, "preset": cfg["preset"]},
                     settings=wandb.Settings(silent=True))
    run.log({key: wandb.Table(columns=cols, data=data) for key, (cols, data) in payload.items()}, step=step)
    run.summary.update({"finished_runs": len(rows)})
    run.finish()
    atomic_write_text(state_path, json.dumps({"hash": digest, "step": step}))
    return True
