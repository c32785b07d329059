"""The storage protocol, checked identically against every driver (see conftest ``backend``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from apiserver.storage import (
    Backend,
    Compacted,
    Event,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    KeyValue,
    RevisionConflict,
    StorageError,
)

# Guards against a hung watch; never a speed assertion.
WAIT = 20.0


async def take(it: AsyncIterator[Event], n: int) -> list[Event]:
    return [await asyncio.wait_for(anext(it), WAIT) for _ in range(n)]


def summary(events: list[Event]) -> list[tuple[str, str, bytes, int]]:
    return [(e.type, e.kv.key, e.kv.value, e.revision) for e in events]


# --------------------------------------------------------------------------------------- basics


async def test_get_missing_is_none(backend: Backend, prefix: str):
    assert await backend.get(prefix + "missing") is None


async def test_create_then_get(backend: Backend, prefix: str):
    kv = await backend.create(prefix + "a", b"one")
    assert kv.key == prefix + "a" and kv.value == b"one"
    assert kv.create_revision == kv.mod_revision > 0
    assert await backend.get(prefix + "a") == kv


async def test_create_existing_raises_and_keeps_value(backend: Backend, prefix: str):
    kv = await backend.create(prefix + "a", b"one")
    with pytest.raises(KeyExists) as info:
        await backend.create(prefix + "a", b"two")
    assert info.value.key == prefix + "a"
    assert await backend.get(prefix + "a") == kv


async def test_update_compare_and_swap(backend: Backend, prefix: str):
    key = prefix + "a"
    v1 = await backend.create(key, b"one")
    v2 = await backend.update(key, b"two", expected_revision=v1.mod_revision)
    assert v2.value == b"two"
    assert v2.create_revision == v1.create_revision
    assert v2.mod_revision > v1.mod_revision
    assert await backend.get(key) == v2

    with pytest.raises(RevisionConflict) as info:
        await backend.update(key, b"stale", expected_revision=v1.mod_revision)
    assert info.value.key == key
    assert info.value.current == v2
    assert await backend.get(key) == v2


async def test_update_missing_raises_not_found(backend: Backend, prefix: str):
    with pytest.raises(KeyNotFound):
        await backend.update(prefix + "nope", b"x", expected_revision=1)
    assert await backend.get(prefix + "nope") is None


async def test_delete_returns_last_value_at_deletion_revision(backend: Backend, prefix: str):
    key = prefix + "a"
    v1 = await backend.create(key, b"one")
    gone = await backend.delete(key)
    assert gone.key == key and gone.value == b"one"
    assert gone.create_revision == v1.create_revision
    assert gone.mod_revision > v1.mod_revision
    assert await backend.get(key) is None
    with pytest.raises(KeyNotFound):
        await backend.delete(key)


async def test_conditional_delete(backend: Backend, prefix: str):
    key = prefix + "a"
    v1 = await backend.create(key, b"one")
    v2 = await backend.update(key, b"two", expected_revision=v1.mod_revision)
    with pytest.raises(RevisionConflict) as info:
        await backend.delete(key, expected_revision=v1.mod_revision)
    assert info.value.current == v2
    assert await backend.get(key) == v2
    gone = await backend.delete(key, expected_revision=v2.mod_revision)
    assert gone.value == b"two"
    assert await backend.get(key) is None
    with pytest.raises(KeyNotFound):
        await backend.delete(key, expected_revision=v2.mod_revision)


async def test_recreate_after_delete_is_a_new_incarnation(backend: Backend, prefix: str):
    key = prefix + "a"
    v1 = await backend.create(key, b"one")
    gone = await backend.delete(key)
    v2 = await backend.create(key, b"again")
    assert v2.create_revision == v2.mod_revision > gone.mod_revision > v1.create_revision
    assert await backend.get(key) == v2
    watch = backend.watch(prefix, after_revision=v1.mod_revision - 1)
    try:
        created, deleted, recreated = await take(watch, 3)
        assert created.is_create and deleted.type == "DELETE" and recreated.is_create
        assert recreated.kv == v2 and recreated.prev_kv is None
    finally:
        await watch.aclose()


async def test_keys_sort_by_code_point(backend: Backend, prefix: str):
    names = ["b", "a", "\u00e9", "Z", "a-b", "a/b", "\u4e2d", "~"]
    for name in names:
        await backend.create(prefix + name, name.encode())
    listed = [kv.key for kv in (await backend.list(prefix)).items]
    assert listed == sorted(prefix + n for n in names)
    page = await backend.list(prefix, start_key=prefix + "\u00e9", limit=1)
    assert [kv.key for kv in page.items] == [prefix + "\u00e9"] and page.more


async def test_revisions_are_global_and_strictly_increasing(backend: Backend, prefix: str):
    start = await backend.current_revision()
    seen = [start]
    a = await backend.create(prefix + "a", b"1")
    seen.append(a.mod_revision)
    b = await backend.create(prefix + "b", b"1")
    seen.append(b.mod_revision)
    a = await backend.update(prefix + "a", b"2", expected_revision=a.mod_revision)
    seen.append(a.mod_revision)
    seen.append((await backend.delete(prefix + "b")).mod_revision)
    with pytest.raises(KeyExists):   # a failed write takes no revision
        await backend.create(prefix + "a", b"x")
    seen.append((await backend.create(prefix + "c", b"1")).mod_revision)
    assert seen == sorted(set(seen))
    assert seen[-1] - seen[1] == 4   # consecutive: nobody else writes in this store/prefix window
    assert await backend.current_revision() >= seen[-1]


# --------------------------------------------------------------------------------------- lists


async def test_list_prefix_is_exact_and_sorted(backend: Backend, prefix: str):
    for key in ["a/2", "a/1", "ab/1", "b/1", "a/3"]:
        await backend.create(prefix + key, key.encode())
    result = await backend.list(prefix + "a/")
    assert [kv.key for kv in result.items] == [prefix + "a/1", prefix + "a/2", prefix + "a/3"]
    assert [kv.value for kv in result.items] == [b"a/1", b"a/2", b"a/3"]
    assert not result.more
    assert result.revision == await backend.current_revision()
    whole = await backend.list(prefix)
    assert [kv.key for kv in whole.items] == sorted(prefix + k for k in ["a/1", "a/2", "a/3", "ab/1", "b/1"])


async def test_list_pages_with_limit_and_start_key(backend: Backend, prefix: str):
    keys = [f"{prefix}k{i:02d}" for i in range(10)]
    for key in keys:
        await backend.create(key, b"v")
    first = await backend.list(prefix, limit=4)
    assert [kv.key for kv in first.items] == keys[:4] and first.more
    # A write after the first page must not show up in later pages pinned to its revision.
    await backend.create(prefix + "k05x", b"late")
    pages = [first]
    while pages[-1].more:
        nxt = pages[-1].items[-1].key + "\x00"
        pages.append(await backend.list(prefix, start_key=nxt, limit=4, revision=first.revision))
        assert pages[-1].revision == first.revision
    assert [kv.key for page in pages for kv in page.items] == keys
    assert [len(p.items) for p in pages] == [4, 4, 2]
    exact = await backend.list(prefix, limit=10)
    assert len(exact.items) == 10 and exact.more   # the late key is the 11th
    everything = await backend.list(prefix, limit=11)
    assert len(everything.items) == 11 and not everything.more
    assert (await backend.list(prefix, start_key=prefix + "\uffff")).items == []
    assert (await backend.list(prefix, start_key=prefix[:-1] + "0")).items == []


async def test_list_at_old_revision(backend: Backend, prefix: str):
    a = await backend.create(prefix + "a", b"a1")
    b = await backend.create(prefix + "b", b"b1")
    then = b.mod_revision
    await backend.update(prefix + "a", b"a2", expected_revision=a.mod_revision)
    await backend.delete(prefix + "b")
    await backend.create(prefix + "c", b"c1")
    old = await backend.list(prefix, revision=then)
    assert old.revision == then
    assert old.items == [a, b]
    before_b = await backend.list(prefix, revision=a.mod_revision)
    assert before_b.items == [a]
    now = await backend.list(prefix)
    assert [(kv.key, kv.value) for kv in now.items] == [(prefix + "a", b"a2"), (prefix + "c", b"c1")]


async def test_list_at_future_revision_raises(backend: Backend, prefix: str):
    now = await backend.current_revision()
    with pytest.raises(FutureRevision):
        await backend.list(prefix, revision=now + 1000)


# --------------------------------------------------------------------------------------- watch


async def test_watch_replays_missed_events_then_live(backend: Backend, prefix: str):
    a = await backend.create(prefix + "a", b"1")
    since = a.mod_revision
    b = await backend.create(prefix + "b", b"1")
    a2 = await backend.update(prefix + "a", b"2", expected_revision=a.mod_revision)
    gone = await backend.delete(prefix + "b")
    await backend.create(prefix.rstrip("/") + "-other/x", b"not mine")
    watch = backend.watch(prefix, after_revision=since)
    try:
        replayed = await take(watch, 3)
        assert summary(replayed) == [
            ("PUT", prefix + "b", b"1", b.mod_revision),
            ("PUT", prefix + "a", b"2", a2.mod_revision),
            ("DELETE", prefix + "b", b"1", gone.mod_revision),
        ]
        assert replayed[0].is_create and replayed[0].prev_kv is None
        assert replayed[1].prev_kv == a and not replayed[1].is_create
        c = await backend.create(prefix + "c", b"1")
        a3 = await backend.update(prefix + "a", b"3", expected_revision=a2.mod_revision)
        live = await take(watch, 2)
        assert summary(live) == [
            ("PUT", prefix + "c", b"1", c.mod_revision),
            ("PUT", prefix + "a", b"3", a3.mod_revision),
        ]
        assert live[1].prev_kv == a2
    finally:
        await watch.aclose()


async def test_watch_delete_carries_previous_value(backend: Backend, prefix: str):
    start = await backend.current_revision()
    watch = backend.watch(prefix, after_revision=start)
    try:
        v1 = await backend.create(prefix + "a", b"first")
        v2 = await backend.update(prefix + "a", b"last", expected_revision=v1.mod_revision)
        gone = await backend.delete(prefix + "a")
        created, updated, deleted = await take(watch, 3)
        assert created.is_create and created.kv == v1
        assert updated.prev_kv == v1 and updated.kv == v2
        assert deleted.type == "DELETE"
        assert deleted.kv == KeyValue(prefix + "a", b"last", v1.create_revision, gone.mod_revision)
        assert deleted.prev_kv == v2
        assert deleted.revision == gone.mod_revision
    finally:
        await watch.aclose()


async def test_watch_starting_mid_load_has_no_gap_or_duplicate(backend: Backend, prefix: str):
    """Writers keep going while a watch from an old revision switches from replay to live."""
    start = await backend.current_revision()
    total = 300
    written: list[int] = []

    async def writer(n: int) -> None:
        for i in range(total // 3):
            kv = await backend.create(f"{prefix}w{n}-{i:03d}", b"x")
            written.append(kv.mod_revision)

    tasks = [asyncio.create_task(writer(n)) for n in range(3)]
    while len(written) < total // 4 and not any(t.done() for t in tasks):
        await asyncio.sleep(0.001)
    watch = backend.watch(prefix, after_revision=start)
    try:
        events = await take(watch, total)
        await asyncio.gather(*tasks)
        revisions = [e.revision for e in events]
        assert revisions == sorted(written)
        marker = await backend.create(prefix + "zz-marker", b"end")
        (last,) = await take(watch, 1)
        assert last.revision == marker.mod_revision
    finally:
        await watch.aclose()
        for t in tasks:
            t.cancel()


async def test_watches_are_independent_and_closable(backend: Backend, prefix: str):
    start = await backend.current_revision()
    w1 = backend.watch(prefix + "a/", after_revision=start)
    w2 = backend.watch(prefix, after_revision=start)
    try:
        await backend.create(prefix + "b/1", b"b")
        await backend.create(prefix + "a/1", b"a")
        (only_a,) = await take(w1, 1)
        assert only_a.kv.key == prefix + "a/1"
        assert [e.kv.key for e in await take(w2, 2)] == [prefix + "b/1", prefix + "a/1"]
        await w1.aclose()
        await backend.create(prefix + "a/2", b"a")
        (e,) = await take(w2, 1)
        assert e.kv.key == prefix + "a/2"
    finally:
        await w1.aclose()
        await w2.aclose()


async def test_close_fails_open_watches_and_later_calls(backend: Backend, prefix: str):
    start = await backend.current_revision()
    watch = backend.watch(prefix, after_revision=start)
    kv = await backend.create(prefix + "a", b"1")
    assert (await take(watch, 1))[0].revision == kv.mod_revision
    pending = asyncio.create_task(anext(watch))
    await asyncio.sleep(0)
    await backend.close()
    # An error, not a quiet end: a consumer that re-watches in a loop must not spin.
    with pytest.raises(StorageError):
        await asyncio.wait_for(pending, WAIT)
    with pytest.raises(StorageError):
        await anext(backend.watch(prefix, after_revision=start))
    with pytest.raises(StorageError):
        await backend.create(prefix + "b", b"x")
    with pytest.raises(StorageError):
        await backend.get(prefix + "a")


# --------------------------------------------------------------------------------------- compaction


async def test_compaction(backend: Backend, prefix: str):
    a = await backend.create(prefix + "a", b"1")
    b = await backend.create(prefix + "b", b"1")
    a2 = await backend.update(prefix + "a", b"2", expected_revision=a.mod_revision)
    await backend.delete(prefix + "b")
    c = await backend.create(prefix + "c", b"1")
    point = c.mod_revision
    a3 = await backend.update(prefix + "a", b"3", expected_revision=a2.mod_revision)
    await backend.compact(point)

    with pytest.raises(Compacted) as info:
        await backend.list(prefix, revision=b.mod_revision)
    assert info.value.requested == b.mod_revision
    assert info.value.compact_revision == point

    watch = backend.watch(prefix, after_revision=a.mod_revision)
    with pytest.raises(Compacted):
        await asyncio.wait_for(anext(watch), WAIT)
    await watch.aclose()

    # The compaction point itself is still readable, and so is everything after it.
    at_point = await backend.list(prefix, revision=point)
    assert [(kv.key, kv.value) for kv in at_point.items] == [(prefix + "a", b"2"), (prefix + "c", b"1")]
    now = await backend.list(prefix)
    assert now.items == [a3, c]
    watch = backend.watch(prefix, after_revision=point)
    try:
        (event,) = await take(watch, 1)
        assert event.kv == a3 and event.prev_kv == a2
    finally:
        await watch.aclose()
    # Compacting again at or below the point changes nothing.
    await backend.compact(point)
    assert (await backend.list(prefix)).items == [a3, c]


async def test_background_compactor(backend: Backend, prefix: str):
    kv = await backend.create(prefix + "a", b"0")
    for i in range(1, 30):
        kv = await backend.update(prefix + "a", str(i).encode(), expected_revision=kv.mod_revision)
    target = kv.mod_revision - 5

    async def compacted() -> None:
        while True:
            try:
                await backend.list(prefix, revision=target - 1)
            except Compacted as e:
                assert e.compact_revision >= target
                return
            await asyncio.sleep(0.01)

    backend.start_compactor(interval=0.01, keep_revisions=5)
    try:
        await asyncio.wait_for(compacted(), WAIT)
    finally:
        await backend.stop_compactor()
    history = await backend.list(prefix, revision=target)
    assert [(kv.value, kv.mod_revision) for kv in history.items] == [(b"24", target)]


# --------------------------------------------------------------------------------------- concurrency


async def test_concurrent_compare_and_swap_increments_are_exact(backend: Backend, prefix: str):
    key = prefix + "counter"
    await backend.create(key, b"0")
    conflicts = 0

    async def incrementer() -> None:
        nonlocal conflicts
        for _ in range(50):
            while True:
                kv = await backend.get(key)
                try:
                    await backend.update(key, str(int(kv.value) + 1).encode(),
                                         expected_revision=kv.mod_revision)
                    break
                except RevisionConflict:
                    conflicts += 1

    await asyncio.gather(*(incrementer() for _ in range(20)))
    final = await backend.get(key)
    assert final.value == b"1000"
    assert final.mod_revision - final.create_revision >= 1000


async def test_many_concurrent_creates(backend: Backend, prefix: str):
    keys = [f"{prefix}obj-{i:04d}" for i in range(500)]
    created = await asyncio.gather(*(backend.create(k, k.encode()) for k in keys))
    revisions = [kv.mod_revision for kv in created]
    assert len(set(revisions)) == len(keys)
    listed = await backend.list(prefix)
    assert [kv.key for kv in listed.items] == keys
    assert all(kv.value == kv.key.encode() for kv in listed.items)
    assert listed.revision >= max(revisions)
    results = await asyncio.gather(*(backend.create(k, b"dup") for k in keys[:50]),
                                   return_exceptions=True)
    assert all(isinstance(r, KeyExists) for r in results)


# --------------------------------------------------------------------------------------- reopen


async def test_reopen_keeps_data_and_compaction(backend: Backend, prefix: str, reopen):
    a = await backend.create(prefix + "a", b"1")
    a2 = await backend.update(prefix + "a", b"2", expected_revision=a.mod_revision)
    await backend.compact(a2.mod_revision)
    again = await reopen()
    assert await again.get(prefix + "a") == a2
    assert await again.current_revision() >= a2.mod_revision
    with pytest.raises(Compacted):
        await again.list(prefix, revision=a.mod_revision)
    b = await again.create(prefix + "b", b"1")
    assert b.mod_revision > a2.mod_revision
