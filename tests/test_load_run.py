"""Trained models outside the command line: ``load_run(run_dir)`` rebuilds backbone, task and
datamodule from a run folder's ``config.yaml`` and checkpoint, ``datamodule.model_batch`` gives
the model-ready batch, and the README's example runs as written. A smoke-size run folder is
made per benchmark in the test: the run's config as the runner writes it, the offline stand-in,
and a Lightning checkpoint (``Trainer.save_checkpoint``, datamodule state included) of weights
moved away from their initial values."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

#: benchmark → (model of its smoke grid, x's shape, y's shape, the task's output shape) with B the
#: batch, as the README's table says
CASES = {
    "tetris": ("cnn", "(B, 1, n, n, n)", "(B,)", "(B, 8)"),
    "rotated_mnist": ("cnn", "(B, 1, 28, 28)", "(B,)", "(B, 10)"),
    "cosmology": ("deepsphere_fcn", "(B, V, 1)", "(B,)", "(B, 2)"),
    "climate": ("ds_unweighted", "(B, 16, V)", "(B, V)", "(B, 3, V)"),
    "shrec17": ("ds_healpix", "(B, V, 6)", "(B,)", "(B, K)"),
    "cath": ("se3resnet34small", "(B, 1, n, n, n)", "(B,)", "(B, 10)"),
}


def make_run_dir(tmp: Path, name: str, model: str) -> tuple[Path, dict]:
    """A finished-looking run folder of ``name``'s smoke grid (first cell of ``model``)."""
    import pytorch_lightning as pl

    from reproduce.load import benchmark
    from reproduce.runner import config as C
    from reproduce.runner.benchmark import Context
    from reproduce.runner.grid import write_run_config
    from reproduce.runner.runs import expand_grid
    from reproduce.runner.trainer import Launch

    bench = benchmark(name)
    cfg = C.load_preset(name, "smoke", bench.config_root)
    run = next(r for r in expand_grid(bench, cfg) if r.model == model)
    data = tmp / "data" / name if bench.uses_data_dir else None
    ctx = Context(cfg=cfg, preset="smoke", launch=Launch(logger="none"), data_dir=data,
                  generate=data is not None, data_source="stand-in", hardware="cpu",
                  results_dir=tmp / "res", runs_dir=tmp / "runs", code_version="test")
    run_dir = run.run_dir(tmp / "runs")
    (run_dir / "checkpoints").mkdir(parents=True)
    write_run_config(run, run_dir, data)
    dm = bench.build_datamodule(ctx, run)
    dm.prepare_data()
    pl.seed_everything(run.seed, verbose=False)
    task = bench.build_task(ctx, run, bench.build_backbone(ctx, run))
    with torch.no_grad():
        for p in task.parameters():
            p.add_(0.125)  # not what a fresh build gives: the loaded weights must come from the file
    trainer = pl.Trainer(max_epochs=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(task, datamodule=dm)  # sets up (datamodule state, e.g. normalisation), trains nothing
    trainer.save_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    return run_dir, {k: v.detach().clone() for k, v in task.state_dict().items()}


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Trained models in Python"):]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


def readme_table() -> dict[str, list[str]]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Trained models in Python"):]
    section = section[:section.index("\n## ")] if "\n## " in section else section
    rows = {}
    for line in section.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] in CASES:
            rows[cells[0]] = cells
    return rows


def check(name: str, tmp: Path) -> None:
    model, x_shape, y_shape, out_shape = CASES[name]
    run_dir, saved = make_run_dir(tmp, name, model)
    example = readme_example().replace("runs/tetris/smoke/cnn/default/seed0-<hash>", str(run_dir))
    assert str(run_dir) in example
    scope: dict = {}
    exec(compile(example, "README.md", "exec"), scope)  # the README's example, as written
    r, x, y, out = scope["r"], scope["x"], scope["y"], scope["logits"]
    for k, v in r.task.state_dict().items():
        assert torch.equal(v, saved[k]), k
    b = len(y)
    dims = {"B": b, "n": x.shape[-1], "V": x.shape[1] if name in ("cosmology", "shrec17") else x.shape[-1],
            "K": r.cfg["data"]["num_classes"] if name == "shrec17" else None}

    def shape(text):
        return tuple(dims[t] if t in dims else int(t) for t in re.findall(r"\w+", text))

    assert tuple(x.shape) == shape(x_shape) and tuple(y.shape) == shape(y_shape), (x.shape, y.shape)
    assert tuple(out.shape) == shape(out_shape), out.shape
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    # the README's table says the same shapes
    row = readme_table()[name]
    assert row[1:4] == [x_shape, y_shape, out_shape], row
    # the task class loads the run folder's checkpoint itself (its backbone from config.yaml)
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    task = type(r.task).load_from_checkpoint(ckpt)
    assert all(torch.equal(v, saved[k]) for k, v in task.state_dict().items())


def test_load_run_tetris_readme_example_and_load_from_checkpoint(tmp_path):
    check("tetris", tmp_path)


@pytest.mark.slow  # stand-ins, graphs and the CATH network: about a minute each on 2 cores
@pytest.mark.parametrize("name", [n for n in CASES if n != "tetris"])
def test_load_run_every_benchmark(tmp_path, name):
    check(name, tmp_path)


def test_readme_table_lists_every_benchmark():
    assert set(readme_table()) == set(CASES)


def test_load_run_refuses_a_folder_that_is_no_run(tmp_path):
    from datamodules._common import InputError
    from reproduce.load import load_run
    with pytest.raises(InputError, match="not a run folder"):
        load_run(tmp_path)
