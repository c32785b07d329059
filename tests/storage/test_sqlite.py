"""What only the SQLite driver promises: crash durability, physical compaction, its compactor,
one process per file, and watchers that fall behind catching up from the log."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys

import pytest

from apiserver.storage import StorageError
from apiserver.storage import sqlite as sqlite_driver
from apiserver.storage.sqlite import SQLiteBackend
from tests.storage.sqlite_writer import COUNTER

WAIT = 20.0
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
async def store(tmp_path):
    backend = await SQLiteBackend.open(str(tmp_path / "store.db"))
    yield backend
    await backend.close()


def _log_rows(path: str) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM log").fetchone()[0]


async def test_kill_9_keeps_every_acknowledged_write(tmp_path):
    path = str(tmp_path / "crash.db")
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.storage.sqlite_writer", path,
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    lines: list[str] = []
    try:
        while len(lines) < 2000:
            raw = await asyncio.wait_for(child.stdout.readline(), WAIT)
            if not raw:
                err = await child.stderr.read()
                pytest.fail(f"writer exited early: {err.decode(errors='replace')}")
            lines.append(raw.decode())
    finally:
        if child.returncode is None:
            os.kill(child.pid, signal.SIGKILL)
    # Whatever the child printed before dying was acknowledged; a torn last line was not.
    rest = await child.stdout.read()
    await child.wait()
    assert child.returncode == -signal.SIGKILL
    lines += [line + "\n" for line in rest.decode().split("\n")]
    acked = [line.split() for line in lines if line.endswith("\n") and line.strip()]
    creates = {key: int(rev) for kind, key, rev in acked if kind == "create"}
    updates = [int(value) for kind, value, _ in acked if kind == "update"]
    assert creates and updates

    backend = await SQLiteBackend.open(path)
    try:
        listed = {kv.key: kv for kv in (await backend.list("/registry/crash/objects/")).items}
        missing = sorted(set(creates) - set(listed))
        assert not missing, f"{len(missing)} acknowledged creates lost, e.g. {missing[:3]}"
        for key, rev in creates.items():
            assert listed[key].mod_revision == rev
            assert listed[key].value == key.encode() * 20
        counter = await backend.get(COUNTER)
        assert int(counter.value) >= max(updates)
        assert await backend.current_revision() >= max(creates.values())
        after = await backend.create("/registry/crash/after", b"x")
        assert after.mod_revision > max(creates.values())
    finally:
        await backend.close()


async def test_compaction_removes_superseded_rows_and_tombstones(store: SQLiteBackend):
    kv = await store.create("/k/a", b"0")
    for i in range(1, 20):
        kv = await store.update("/k/a", str(i).encode(), expected_revision=kv.mod_revision)
    await store.create("/k/b", b"x")
    await store.delete("/k/b")
    assert await asyncio.to_thread(_log_rows, store.path) == 22
    await store.compact(await store.current_revision())
    # Only /k/a's latest value survives.
    assert await asyncio.to_thread(_log_rows, store.path) == 1
    assert (await store.get("/k/a")).value == b"19"


async def test_second_open_of_the_same_file_is_refused(store: SQLiteBackend):
    with pytest.raises(StorageError, match="in use"):
        await SQLiteBackend.open(store.path)


async def test_slow_watcher_catches_up_from_the_log(store: SQLiteBackend, monkeypatch):
    monkeypatch.setattr(sqlite_driver, "_WATCH_BUFFER", 5)
    start = await store.current_revision()
    watch = store.watch("/k/", after_revision=start)
    first = await store.create("/k/first", b"x")
    (event,) = [await asyncio.wait_for(anext(watch), WAIT)]
    assert event.revision == first.mod_revision
    revisions = [(await store.create(f"/k/{i:03d}", b"x")).mod_revision for i in range(50)]
    got = [(await asyncio.wait_for(anext(watch), WAIT)).revision for _ in range(50)]
    assert got == revisions
    marker = await store.create("/k/marker", b"x")
    assert (await asyncio.wait_for(anext(watch), WAIT)).revision == marker.mod_revision
    await watch.aclose()
