"""``reproduce/climate.py --predict CKPT --data-dir IN --out OUT``: segment every ``IN/*.nc`` with a
trained checkpoint; ``OUT/<same name>`` holds ``LABELS`` (0 BG, 1 TC, 2 AR) and ``PROBABILITIES`` on
the input's own grid (:mod:`datamodules.climate_predict` says how). Options here are declared
without importing torch (the script's ``--help``)."""
from __future__ import annotations

import sys
from pathlib import Path


def add_arguments(parser) -> None:
    """The options of ``--predict``."""
    parser.add_argument("--predict", default=None, metavar="CKPT",
                        help="segment every --data-dir/*.nc with a trained checkpoint; writes LABELS and "
                             "PROBABILITIES on each input's own grid to --out")
    parser.add_argument("--out", default=None, help="output folder of --predict")


def run(bench, args) -> int | None:
    """Run ``--predict`` when it is asked for (None: it is not, the grid goes on)."""
    from datamodules._common import InputError
    if args.out is not None and not args.predict:
        raise InputError("--out is the output folder of --predict CKPT")
    if not args.predict:
        return None
    if not args.data_dir or not args.out:
        raise InputError("--predict CKPT needs --data-dir (the netCDF files to segment) and --out (a folder)")
    from datamodules.climate import CLASSES, VARIABLES, parse_sampling
    from datamodules.climate_predict import predict
    from reproduce.runner.evaluate import load_weights, weights_into
    run_, sd = load_weights(bench, Path(args.predict), "--predict")
    samp, device = parse_sampling(run_.setting["sampling"]), "cuda" if args.gpus else "cpu"
    native = samp.kind == "native"

    def net_for(coords):  # the trained network; built on a file's own columns when trained on native ones
        return weights_into(bench, run_, sd, "--predict", device, in_channels=len(VARIABLES),
                            num_classes=len(CLASSES), sampling="points" if native else samp.name,
                            **({"coords": coords} if native else {}))
    model = f"{run_.model} ({run_.benchmark}, preset {run_.preset}, seed {run_.seed})"
    for path in predict(net_for, samp, Path(args.predict), model, Path(args.data_dir), Path(args.out), device):
        print(f"[climate] wrote {path}", file=sys.stderr)
    return 0
