"""Read the history back from a W&B offline run file (`run-<id>.wandb`).

wandb ≥ 0.19 keeps no Python reader for its transaction log, so this follows the documented
format: a 7-byte header (`:W&B`, a 2-byte magic, a version byte), then LevelDB-log records (32 KiB
blocks; each chunk: crc32, length, type FULL/FIRST/MIDDLE/LAST) holding `wandb_internal_pb2.Record`
protobufs, parsed with wandb's own generated classes."""
from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK, HEADER, CHUNK = 32768, 7, 7


def records(path: Path) -> list[bytes]:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", "not a W&B transaction log"
    out, buf, pos = [], b"", HEADER
    while pos + CHUNK <= len(data):
        left = BLOCK - pos % BLOCK
        if left < CHUNK:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + CHUNK])
        if length == 0 and kind == 0:
            break
        chunk = data[pos + CHUNK:pos + CHUNK + length]
        pos += CHUNK + length
        if kind == 1:
            out.append(chunk)
        elif kind == 2:
            buf = chunk
        elif kind == 3:
            buf += chunk
        elif kind == 4:
            out.append(buf + chunk)
    return out


def history(root: Path, job_id: str) -> list[dict]:
    """The history rows ({key: value, "_step": n}) of the job's offline runs under `root`."""
    from wandb.proto import wandb_internal_pb2 as pb

    rows = []
    for f in sorted(Path(root).glob(f"offline-run-*-{job_id}/run-{job_id}.wandb")):
        for raw in records(f):
            rec = pb.Record()
            rec.ParseFromString(raw)
            if rec.WhichOneof("record_type") == "history":
                rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                             for i in rec.history.item})
    return rows
