"""The image records file: ``images.json`` in the store's root, shared by every process using it.

The whole file is rewritten atomically (temporary file, fsync, rename) under an exclusive flock
on ``lock``, after re-reading it if another process (``navarch image import`` beside a running
runtime) changed it since. Readers notice such changes by the file's stat (inode, mtime, size).
``state`` is replaced, never mutated in place, so a reader may hold on to it without a lock.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path

import orjson

STATE_FILE = "images.json"
LOCK_FILE = "lock"
STATE_VERSION = 1


def empty_state() -> dict:
    return {"version": STATE_VERSION, "images": {}}


class RecordFile:
    def __init__(self, root: Path):
        self.path = Path(root) / STATE_FILE
        self.lock_path = Path(root) / LOCK_FILE
        self.lock_path.touch(exist_ok=True)
        self.state: dict = empty_state()
        self._stamp: tuple | None = None

    def _file_stamp(self) -> tuple | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _read(self) -> dict:
        try:
            state = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return empty_state()
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise RuntimeError(f"{self.path}: unknown image records format")
        return state

    def refresh(self) -> bool:
        """Re-read the file if it changed since we last saw it; True if it did."""
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        self.state, self._stamp = self._read(), stamp
        return True

    def update(self, mutate: Callable[[dict], object]) -> object:
        """Apply ``mutate`` to a copy of the current records and write them; returns its result.

        Blocking (flock, fsync): call from a thread, one call at a time per process.
        """
        with self.lock_path.open("rb+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            stamp = self._file_stamp()
            state = self._read() if stamp != self._stamp else orjson.loads(orjson.dumps(self.state))
            result = mutate(state)
            tmp = self.path.with_suffix(".tmp")
            with tmp.open("wb") as f:
                f.write(orjson.dumps(state, option=orjson.OPT_INDENT_2))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            self.state, self._stamp = state, self._file_stamp()
            return result
