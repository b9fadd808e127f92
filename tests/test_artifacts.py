"""Files of a results row (reproduce/runner/store.py): an Artifact column is written beside the
CSV and the cell holds its relative path; a cell still holding a base64 ``.npz`` (rows written
before) becomes such a file; a missing file is one InputError naming it; no committed results CSV
holds file contents."""
import base64
from pathlib import Path

import numpy as np
import pytest

from datamodules._common import InputError
from reproduce.runner import store

ROOT = Path(__file__).resolve().parents[1]


def test_artifact_is_written_beside_the_csv_and_loads_back(tmp_path):
    csv_path = tmp_path / "bench.csv"
    maps = np.arange(12, dtype=np.uint8).reshape(3, 4)
    row = store.save_artifacts(csv_path, {"run_id": "abc", "acc": 0.5, "maps": store.Artifact(store.npz_bytes(maps=maps))})
    assert row == {"run_id": "abc", "acc": 0.5, "maps": "bench/abc.maps.npz"}
    np.testing.assert_array_equal(store.load_npz(tmp_path, row["maps"])["maps"], maps)
    store.upsert_row(csv_path, row)
    assert store.read_rows(csv_path)[0]["maps"] == "bench/abc.maps.npz"
    assert sorted(p.name for p in (tmp_path / "bench").iterdir()) == ["abc.maps.npz"]  # no temporary left


def test_embedded_npz_cell_of_an_older_row_becomes_a_file(tmp_path):
    data = store.npz_bytes(x=np.ones(3))
    old = {"run_id": "r1", "example": base64.b64encode(data).decode("ascii"), "note": "UEsDB but short"}
    row = store.save_artifacts(tmp_path / "b.csv", old)
    assert row["example"] == "b/r1.example.npz" and row["note"] == "UEsDB but short"
    assert (tmp_path / "b" / "r1.example.npz").read_bytes() == data


def test_missing_artifact_is_one_input_error_naming_the_file(tmp_path):
    with pytest.raises(InputError, match=r"b/r1\.x\.npz \(a file a results row names\) is missing"):
        store.load_npz(tmp_path, "b/r1.x.npz")


def test_committed_results_hold_paths_not_file_contents():
    for csv_path in sorted((ROOT / "results").glob("*.csv")):
        for row in store.read_rows(csv_path):
            for key, cell in row.items():
                assert not (cell or "").startswith("UEsDB") and len(cell or "") < 2000, (csv_path.name, key)
                if (cell or "").endswith(".npz"):
                    assert store.artifact_path(csv_path.parent, cell).is_file()
