"""Speed benchmark: every equivariant layer against a plain floor measured in the same run.

    python reproduce/speed.py                 # all sections, writes results/speed.md
    python reproduce/speed.py --only steerable,harmonic --device cuda
    python reproduce/speed.py --quick         # seconds; what the test suite runs

Sections (one module each, ``reproduce/_speed_<name>.py`` with ``measure(quick, device)``):
steerable (SteerableConv3d vs Conv3d), harmonic (HConv2d vs Conv2d), sphere (Chebyshev graph conv vs
bare sparse matmuls and vs the deepsphere-pytorch algorithm, scaling with Nside, HEALPix graph build
vs a bare k-NN query), cath (voxeliser and training throughput), shrec17 (ray casting and voxelising,
meshes per second).
Ratios are time / floor: the peers (escnn, e3nn, deepsphere-pytorch) sit at about 1.0-1.16x.
This is a benchmark, not a timed test: numbers depend on the machine and are written with it.
"""
from __future__ import annotations

import datetime as _dt
import importlib
import os
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from datamodules._common import atomic_write_text
from reproduce.runner import tables as T
from reproduce.runner.cli import HelpFormatter, Parser, refuse_shared_options
from reproduce.runner.store import REPO_ROOT, code_version, machine

SECTIONS = ("steerable", "harmonic", "sphere", "cath", "shrec17")
FIRST_COLS = ["what", "time_ms", "floor_ms", "ratio"]


def fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def section_md(title: str, rows: list[dict]) -> str:
    cols = [c for c in FIRST_COLS if any(c in r for r in rows)]
    for r in rows:
        cols += [k for k in r if k not in cols]
    return f"## {title}\n\n" + T.md_table(cols, [[fmt(r.get(c, "")) for c in cols] for r in rows]) + "\n"


def previous_sections(path: str) -> dict[str, str]:
    """Sections already in ``path`` (so ``--only x`` rewrites x and keeps the others)."""
    if not Path(path).is_file():
        return {}
    blocks: dict[str, str] = {}
    name = None
    for line in Path(path).read_text().splitlines(keepends=True):
        if line.startswith("<!-- section: "):
            name = line[len("<!-- section: "):].split(";")[0].strip()
            blocks[name] = ""
        if name is not None:
            blocks[name] += line
    return blocks


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="reproduce/speed.py", description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated of {', '.join(SECTIONS)}")
    p.add_argument("--device", default="cpu", help="torch device to time on: cpu, cuda, cuda:1, ...")
    p.add_argument("--quick", action="store_true", help="tiny sizes (seconds), for tests")
    p.add_argument("--out", default=None, help="markdown output (default results/speed.md; "
                                               "--quick: print only)")
    args = refuse_shared_options(p, argv, "a timing of layers against their plain floors: no grid, presets, training, data folder or W&B logs; the device is --device")
    names = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in names if s not in SECTIONS]
    if bad:
        print(f"error: unknown section(s) {', '.join(bad)}; valid: {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is available", file=sys.stderr)
        return 2
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    out = args.out or (None if args.quick else str(REPO_ROOT / "results" / "speed.md"))
    blocks = previous_sections(out) if out else {}
    for name in names:
        mod = importlib.import_module(f"reproduce._speed_{name}")
        title, rows = mod.measure(quick=args.quick, device=args.device)
        md = section_md(title, rows)
        print(md, flush=True)
        blocks[name] = (f"<!-- section: {name}; machine: {machine(args.device)}; "
                        f"{_dt.date.today().isoformat()}; load average at start {load:.1f} -->\n"
                        + md)
    body = "".join(blocks[n] for n in SECTIONS if n in blocks)
    head = (f"# Speed: equivariant layers vs plain floors (same run)\n\n"
            f"- Regenerate: `python reproduce/speed.py{' --quick' if args.quick else ''}"
            f"{' --device ' + args.device if args.device != 'cpu' else ''}`\n"
            f"- Machine: {machine(args.device)}; torch {torch.__version__}\n"
            f"- Code version: {code_version()}; written {_dt.date.today().isoformat()}\n"
            f"- Ratio = time of the layer / time of the floor measured in the same process. "
            f"Peers (escnn, e3nn, deepsphere-pytorch) sit at about 1.0-1.16x their floor.\n"
            f"- Each section's comment line names the machine, the date and the load average (1 min)\n"
            f"  when it was measured: on a loaded machine the absolute times are inflated and the\n"
            f"  ratios noisy; rerun on a quiet machine or a GPU (`--device cuda`) for clean figures.\n\n")
    if out:
        atomic_write_text(out, head + body)
        print(f"written {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
