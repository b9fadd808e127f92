"""Protocol ledgers: each benchmark's ``paper`` preset set against the reference code its paper's
numbers came from, element by element, rendered into one table per benchmark.

    python reproduce/protocols.py            # validate every configs/*/protocol.yaml, write results/protocols.md
    python reproduce/protocols.py --check    # exit 1 if results/protocols.md is not the render of the ledgers

The ledger format and its rules: reproduce/reports/protocols.py.
"""
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reproduce.reports.protocols import main

if __name__ == "__main__":
    sys.exit(main())
