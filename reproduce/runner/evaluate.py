"""``--evaluate CKPT --data-dir DIR``: re-score a saved checkpoint on other data of the same
format, without training.

The run's own resolved config (``config.yaml`` beside ``checkpoints/``) rebuilds the datamodule,
backbone and task — not the command line's preset — with the benchmark's ``evaluate_defaults``
and then the command line's ``key=value`` overrides applied on top (e.g. ``data.test_dir=...``;
the model's keys as ``model.<key>`` or ``models.<id>.<key>``, checked like a training run's). State the datamodule saved in the
checkpoint (e.g. training normalisation statistics, Lightning's ``state_dict`` hook) is restored,
so an evaluation folder needs only the files it scores. A checkpoint or config that cannot be
used is one ``error:`` line. The result (metrics, how many samples were scored, from where) is
printed as JSON and kept in the run folder as ``evaluate-<hash>.json`` (a folder that cannot be
written costs that copy only: one ``warning:`` line, the printed metrics stand, exit 0).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from datamodules._common import InputError, atomic_write_text, is_stand_in
from reproduce.runner.checkpoints import check_checkpoint
from reproduce.runner.config import apply_overrides, config_hash, parse_override, set_dotted
from reproduce.runner.runs import Run


def load_run(bench, ckpt: Path, overrides: list[str]) -> tuple[Run, Path]:
    """The run a checkpoint belongs to, from its ``config.yaml``, with ``overrides`` applied."""
    run_dir = ckpt.parent.parent
    meta_path = run_dir / "config.yaml"
    if not meta_path.is_file():
        raise InputError(f"--evaluate: {meta_path} not found; a checkpoint must sit in "
                         f"<run dir>/checkpoints/ next to the run's config.yaml")
    try:
        meta = yaml.safe_load(meta_path.read_text())
        if not isinstance(meta, dict):
            raise ValueError("not a mapping")
        if meta.get("benchmark") != bench.name:
            raise InputError(f"--evaluate: {ckpt} is a '{meta.get('benchmark')}' checkpoint, not {bench.name}")
        cfg = set_dotted(meta["config"], bench.evaluate_defaults)
        cfg = apply_overrides(cfg, [_model_key(text, str(meta["model_name"])) for text in overrides])
        run = Run(bench.name, str(meta["model_name"]), dict(meta["setting"] or {}), int(meta["seed"]),
                  str(meta["preset"]), cfg)
    except InputError:
        raise
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as e:
        raise InputError(f"--evaluate: {meta_path} is not a run config this runner wrote "
                         f"({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    return run, run_dir


def _model_key(text: str, model: str) -> str:
    """A run's config holds its model's entry as ``model``: ``models.<model>.<key>=v`` (as the
    presets spell it) is ``model.<key>=v``; another model's entry is an error."""
    keys, _ = parse_override(text)
    if keys[0] != "models":
        return text
    if len(keys) < 3:
        raise InputError(f"--evaluate: override '{text}' must name a key of the model, "
                         f"e.g. models.{model}.<key>=value or model.<key>=value")
    if keys[1] != model:
        raise InputError(f"--evaluate: override '{text}' is for model '{keys[1]}', but the checkpoint "
                         f"is a '{model}' run (use models.{model}.<key> or model.<key>)")
    return "model." + text.split(".", 2)[2]


def usable_checkpoint(ckpt, option: str) -> Path:
    """The resolved path of a checkpoint that exists and loads, else an :class:`InputError`
    naming the command line ``option`` that gave it."""
    ckpt = Path(ckpt).expanduser().resolve()
    if not ckpt.is_file():
        raise InputError(f"{option}: checkpoint {ckpt} does not exist")
    why = check_checkpoint(ckpt)
    if why is not None:
        raise InputError(f"{option}: {ckpt} is not a usable checkpoint: {why}")
    return ckpt


def evaluate(bench, ctx, ckpt: Path, overrides: list[str] | None = None) -> dict:
    import pytorch_lightning as pl
    import torch

    ckpt = usable_checkpoint(ckpt, "--evaluate")
    run, run_dir = load_run(bench, ckpt, list(overrides or []))
    bench.check(ctx, run)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    dm = bench.build_datamodule(ctx, run)
    dm.prepare_data()
    ctx.data_source = (("stand-in" if is_stand_in(ctx.data_dir) else "real") if ctx.data_dir
                       else bench.default_data_source)
    dm_state = state.get(type(dm).__qualname__)
    if dm_state:
        dm.load_state_dict(dm_state)
    backbone = bench.build_backbone(ctx, run)
    task = bench.build_task(ctx, run, backbone)
    try:
        task.load_state_dict(state["state_dict"])
    except RuntimeError as e:
        raise InputError(f"--evaluate: {ckpt} does not fit the model of its config "
                         f"({str(e).splitlines()[0][:160]})") from None
    trainer = pl.Trainer(accelerator="gpu" if ctx.launch.gpus else "cpu", devices=1, logger=False,
                         enable_progress_bar=False, enable_model_summary=False)
    results = trainer.test(task, datamodule=dm, verbose=False)
    metrics = {k.replace("/", "_"): float(v) for k, v in results[0].items()}
    metrics.update(bench.after_test(ctx, run, task, dm) or {})
    scored = _scored(dm)
    out = {"checkpoint": str(ckpt), "data_dir": str(ctx.data_dir), "data_source": ctx.data_source,
           **scored, **metrics}
    print(f"[{bench.name}] scored {scored.get('test_samples', '?')} test samples"
          + (f" from {', '.join(scored['test_files'])}" if scored.get("test_files") else ""), file=sys.stderr)
    print(json.dumps(out), flush=True)
    tag = config_hash([str(ctx.data_dir), list(overrides or [])], 8)
    path = run_dir / f"evaluate-{tag}.json"
    try:
        atomic_write_text(path, json.dumps(out, indent=1))
    except OSError as e:
        print(f"warning: the metrics above were not kept in {path} ({e.strerror or e})", file=sys.stderr)
    return out


def _scored(dm) -> dict:
    """How many test samples the datamodule served, and from which files when it says."""
    out = {}
    try:
        out["test_samples"] = len(dm.test_dataloader().dataset)
    except (TypeError, AttributeError):
        pass
    files = getattr(dm, "test_files", None)
    if files:
        out["test_files"] = [str(f) for f in files]
    return out
