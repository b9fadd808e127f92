"""Reading W&B offline run folders back, record by record, with W&B's own protobuf schema
(``wandb.proto.wandb_internal_pb2``; the ``.wandb`` file is a LevelDB-style log of 32 KiB blocks,
each record a CRC, a length, a type and a serialised ``Record``). Used by the tests that check
what a dashboard gets after ``wandb sync``."""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path


def records(path: Path) -> list:
    """The ``Record`` messages of one ``run-*.wandb`` file, in order."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    pos, block, buf, out = 7, 32768, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # block trailer
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        buf += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST
            rec = pb.Record()
            rec.ParseFromString(buf)
            out.append(rec)
            buf = b""
    return out


@dataclass
class OfflineRun:
    """One ``offline-run-*`` folder: its run record, config, history rows, final summary."""

    folder: Path
    run_id: str = ""
    name: str = ""
    group: str = ""
    job_type: str = ""
    tags: list = field(default_factory=list)
    config: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    metrics: list = field(default_factory=list)   # define_metric records
    artifacts: list = field(default_factory=list)

    def table(self, key: str) -> dict:
        """The last ``wandb.Table`` logged under ``key`` (``{"columns": [...], "data": [...]}``)."""
        # a logged table is a reference {"_type": "table-file", "path": ...}, nested under its key
        refs = [row[f"{key}/path"] for row in self.history if row.get(f"{key}/_type") == "table-file"]
        assert refs, f"{self.folder}: no table {key!r} in the history"
        return json.loads((self.folder / "files" / refs[-1]).read_text())


def read_run(folder: Path) -> OfflineRun:
    (file,) = sorted(Path(folder).glob("run-*.wandb"))
    out = OfflineRun(Path(folder))
    for rec in records(file):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            out.run_id, out.name, out.group, out.job_type = r.run_id, r.display_name, r.run_group, r.job_type
            out.tags = list(r.tags)
            out.config.update({u.key: json.loads(u.value_json) for u in r.config.update})
        elif kind == "config":
            out.config.update({u.key: json.loads(u.value_json) for u in rec.config.update})
        elif kind == "history":
            out.history.append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json)
                                for i in rec.history.item})
        elif kind == "summary":
            for u in rec.summary.update:
                key = u.key or "/".join(u.nested_key)
                out.summary[key] = json.loads(u.value_json)
        elif kind == "metric":
            out.metrics.append(rec.metric)
        elif kind == "artifact":
            out.artifacts.append(rec.artifact)
    return out


def offline_runs(root: Path) -> list[OfflineRun]:
    """Every offline run under ``root`` (however deep), oldest first."""
    return [read_run(d) for d in sorted(Path(root).rglob("offline-run-*"), key=lambda d: d.name) if d.is_dir()]
