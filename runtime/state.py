"""Persisted CRI records of sandboxes and containers under the runtime root.

Each record is a JSON-like dict written atomically (temp file, fsync, rename) to
``<root>/meta/sandboxes/<id>.json`` or ``<root>/meta/containers/<id>.json``, so a daemon killed at
any point leaves either the old or the new record, never a torn one. The driver's own per-object
directories live elsewhere (``<root>/sandboxes``, ``<root>/containers``). File work runs in
threads; callers ``await`` it.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import orjson

KINDS = ("sandboxes", "containers")


class StateStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.meta = self.root / "meta"

    def _path(self, kind: str, id_: str) -> Path:
        assert kind in KINDS, kind
        return self.meta / kind / f"{id_}.json"

    async def save(self, kind: str, record: dict) -> None:
        await asyncio.to_thread(self._write, self._path(kind, record["id"]), record)

    async def delete(self, kind: str, id_: str) -> None:
        await asyncio.to_thread(self._path(kind, id_).unlink, True)

    async def load(self) -> dict[str, dict[str, dict]]:
        """Every stored record by kind and id. Leftover temp files of an interrupted write are removed."""
        return await asyncio.to_thread(self._load)

    @staticmethod
    def _write(path: Path, record: dict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(orjson.dumps(record))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def _load(self) -> dict[str, dict[str, dict]]:
        out: dict[str, dict[str, dict]] = {}
        for kind in KINDS:
            records: dict[str, dict] = {}
            directory = self.meta / kind
            if directory.is_dir():
                for path in directory.iterdir():
                    if path.suffix == ".tmp":
                        path.unlink(missing_ok=True)
                    elif path.suffix == ".json":
                        record = orjson.loads(path.read_bytes())
                        records[record["id"]] = record
            out[kind] = records
        return out
