"""GPU evidence kit: what the `paper` presets cost on this GPU, in one folder, within a time budget.

    python reproduce/gpu_check.py --out DIR                 # one GPU, at most --budget-s (530 s)
    python reproduce/gpu_check.py --device cpu --tiny --out DIR   # the same path on small sizes (~30 s)

What it writes and how it keeps to the budget: reproduce/measure/gpu_kit.py.
"""
import time

T0 = time.monotonic()  # the budget counts from here, imports included

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reproduce.measure.gpu_kit import main

if __name__ == "__main__":
    sys.exit(main(t0=T0))
