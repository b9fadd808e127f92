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

What the checkpoint was trained on — its resolution, sampling and class count (the benchmark's
``geometry_keys``, e.g. ``data.nside``, ``data.grid_size``, ``data.num_classes``) — is kept: an
override that changes one, or data of another class count, is refused with one ``error:`` line
("the checkpoint's head has 10 outputs, data has 3 classes") unless ``--allow-mismatch`` asks for
it, and then each difference is said in one line. With fewer classes than the head has outputs,
data class k is scored as the checkpoint's class k; more classes than outputs are always refused.
"""
from __future__ import annotations

import functools
import json
import sys
from dataclasses import replace
from pathlib import Path

import yaml

from datamodules._common import ClassCountError, InputError, atomic_write_text, is_stand_in
from reproduce.runner import config as C
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


MISMATCH_FLAG = "--allow-mismatch"


def load_weights(bench, ckpt: Path, option: str) -> tuple[Run, dict]:
    """(run, backbone state dict) of a checkpoint this runner wrote, read with
    ``torch.load(weights_only=True)`` (e.g. climate ``--predict``: the network without its data)."""
    import torch

    ckpt = usable_checkpoint(ckpt, option)
    run, _ = load_run(bench, ckpt, [])
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    sd = {k[len("backbone."):]: v for k, v in state["state_dict"].items() if k.startswith("backbone.")}
    if not sd:
        raise InputError(f"{option}: {ckpt} holds no backbone weights")
    return run, sd


def weights_into(bench, run: Run, sd: dict, option: str, device: str = "cpu", **given):
    """The run's backbone (its ``models.<id>`` entry plus ``given`` arguments) holding ``sd``, in eval
    mode on ``device``; weights that do not fit are an :class:`InputError`."""
    net = C.build(bench.model_class(run), bench._model_section(run), f"models.{run.model}", **given)
    try:
        net.load_state_dict(sd)
    except RuntimeError as e:
        raise InputError(f"{option}: the checkpoint does not fit the model of its config "
                         f"({str(e).splitlines()[0][:160]})") from None
    return net.to(device).eval()


def _head_message(outputs: int, classes: int, where: str = "") -> str:
    return (f"the checkpoint's head has {outputs} output{'s' * (outputs != 1)}, data has {classes} "
            f"class{'es' * (classes != 1)}" + (f" ({where})" if where else ""))


def geometry_changes(bench, trained: dict, now: dict) -> list[tuple[str, object, object]]:
    """``(key, checkpoint's value, value now)`` for every key of ``bench.geometry_keys`` (what
    the checkpoint was trained on: resolution, sampling, class count) that ``now`` changes."""
    out = []
    for key in bench.geometry_keys:
        old, new = C.get(trained, key, None), C.get(now, key, None)
        if old != new:
            out.append((key, old, new))
    return out


def check_geometry(bench, trained: dict, now: dict, allow: bool, said: list | None = None) -> int | None:
    """Refuse (:class:`InputError`) a resolution, sampling or class count other than the
    checkpoint's unless ``allow`` (``--allow-mismatch``), then say each in one line. Returns the
    checkpoint's class count when the data's differs (the head keeps its outputs), else None;
    the lines said are appended to ``said``."""
    head = None
    said = [] if said is None else said
    for key, old, new in geometry_changes(bench, trained, now):
        if key == "data.num_classes" and old is not None and new is not None:
            _more_classes(int(old), int(new), f"data.num_classes={new}")
            if not allow:
                raise InputError(f"--evaluate: {_head_message(old, new, f'data.num_classes={new}')}; pass "
                                 f"{MISMATCH_FLAG} to score them as the checkpoint's {_classes(0, int(new) - 1)}")
            said.append(_allow_classes(bench, int(old), int(new)))
            head = int(old)
            continue
        if not allow:
            raise InputError(f"--evaluate: {key}={new} differs from the checkpoint's {old} (what it was trained "
                             f"on); pass {MISMATCH_FLAG} to evaluate with {key}={new} anyway")
        said.append(f"[{bench.name}] {MISMATCH_FLAG}: evaluating with {key}={new}; the checkpoint was trained "
                    f"with {old}")
        print(said[-1], file=sys.stderr)
    return head


def _classes(lo: int, hi: int) -> str:
    return f"class {lo}" if lo == hi else f"classes {lo}-{hi}"


def _more_classes(outputs: int, classes: int, where: str = "") -> None:
    """More classes than outputs cannot be scored, asked or not."""
    if classes > outputs:
        raise InputError(f"--evaluate: {_head_message(outputs, classes, where)}: "
                         f"{_classes(outputs, classes - 1)} of the data would have no output to be scored by")


def _allow_classes(bench, outputs: int, classes: int) -> str:
    _more_classes(outputs, classes)
    line = (f"[{bench.name}] {MISMATCH_FLAG}: {_head_message(outputs, classes)}; data class k (k = 0-{classes - 1}, "
            f"in the data's order) is scored as the checkpoint's class k")
    print(line, file=sys.stderr)
    return line


def datamodule_state(ckpt, datamodule: type) -> dict:
    """What a checkpoint saved of its datamodule (its ``state_dict`` hook, e.g. the class order a
    model was trained with), ``{}`` when nothing; the file is read once per path."""
    return dict(_datamodule_states(str(Path(ckpt).resolve())).get(datamodule.__qualname__) or {})


@functools.lru_cache(maxsize=4)  # asked for by the config check and by the datamodule build
def _datamodule_states(ckpt: str) -> dict:
    import torch
    return torch.load(ckpt, map_location="cpu", weights_only=True)


def evaluate(bench, ctx, ckpt: Path, overrides: list[str] | None = None, allow_mismatch: bool = False) -> dict:
    import pytorch_lightning as pl
    import torch

    ckpt = usable_checkpoint(ckpt, "--evaluate")
    run, run_dir = load_run(bench, ckpt, list(overrides or []))
    trained, _ = load_run(bench, ckpt, [])
    said: list[str] = []
    head = check_geometry(bench, trained.cfg, run.cfg, allow_mismatch, said)
    bench.check(ctx, run)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    dm = bench.build_datamodule(ctx, run)
    try:
        dm.prepare_data()
    except ClassCountError as e:
        outputs = int(C.get(trained.cfg, "data.num_classes", e.expected))
        _more_classes(outputs, e.found, e.source)
        if not allow_mismatch:
            raise InputError(f"--evaluate: {_head_message(outputs, e.found, e.source)}; pass {MISMATCH_FLAG} "
                             f"to score them as the checkpoint's {_classes(0, e.found - 1)}") from None
        said.append(_allow_classes(bench, outputs, e.found))
        head = outputs
        dm = bench.build_datamodule(ctx, replace(run, cfg=set_dotted(run.cfg, {"data.num_classes": e.found})))
        dm.prepare_data()
    ctx.data_source = (("stand-in" if is_stand_in(ctx.data_dir) else "real") if ctx.data_dir
                       else bench.default_data_source)
    dm_state = state.get(type(dm).__qualname__)
    if dm_state:
        dm.load_state_dict(dm_state)
    model_run = run if head is None else replace(run, cfg=set_dotted(run.cfg, {"data.num_classes": head}))
    backbone = bench.build_backbone(ctx, model_run)
    task = bench.build_task(ctx, model_run, backbone)
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
           **({"allowed_mismatch": [ln.split(": ", 1)[1] for ln in said]} if said else {}), **scored, **metrics}
    print(f"[{bench.name}] scored {scored.get('test_samples', '?')} test samples"
          + (f" from {_file_list(scored['test_files'])}" if scored.get("test_files") else ""), file=sys.stderr)
    print(json.dumps(out), flush=True)
    tag = config_hash([str(ctx.data_dir), list(overrides or [])], 8)
    path = run_dir / f"evaluate-{tag}.json"
    try:
        atomic_write_text(path, json.dumps(out, indent=1))
    except OSError as e:
        print(f"warning: the metrics above were not kept in {path} ({e.strerror or e})", file=sys.stderr)
    return out


def _file_list(files: list[str], shown: int = 20) -> str:
    """Every file, comma-separated, up to ``shown``; beyond, the first ``shown`` and the count
    of the others (the JSON lists them all)."""
    if len(files) <= shown:
        return ", ".join(files)
    return f"{', '.join(files[:shown])}, ... and {len(files) - shown} more ({len(files)} files, all in the JSON)"


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
