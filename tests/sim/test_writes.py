"""The write gate: a bound on writes in flight, handed out by priority."""

from __future__ import annotations

import asyncio

import pytest

from kubelet.sim.writes import LEASE, NODE, POD, WriteGate


async def test_bound_and_priority_order():
    gate = WriteGate(2)
    release = asyncio.Event()
    order: list[str] = []
    peak = 0

    async def write(name: str, priority: int) -> None:
        nonlocal peak
        async with gate.slot(priority):
            peak = max(peak, gate.in_flight)
            order.append(name)
            await release.wait()

    holders = [asyncio.create_task(write(f"first{i}", POD)) for i in range(2)]
    await asyncio.sleep(0)
    waiters = [asyncio.create_task(write(name, prio)) for name, prio in
               (("pod-a", POD), ("node", NODE), ("pod-b", POD), ("lease", LEASE))]
    await asyncio.sleep(0)
    assert gate.waiting() == 4 and order == ["first0", "first1"]
    release.set()
    await asyncio.gather(*holders, *waiters)
    assert order[2:] == ["lease", "node", "pod-a", "pod-b"]
    assert peak == 2 and gate.in_flight == 0


async def test_a_cancelled_waiter_gives_its_slot_on():
    gate = WriteGate(1)
    done: list[str] = []
    hold = asyncio.Event()

    async def write(name: str) -> None:
        async with gate.slot():
            await hold.wait()
            done.append(name)

    first = asyncio.create_task(write("first"))
    await asyncio.sleep(0)
    cancelled = asyncio.create_task(write("cancelled"))
    last = asyncio.create_task(write("last"))
    await asyncio.sleep(0)
    cancelled.cancel()
    hold.set()
    await asyncio.gather(first, last)
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert done == ["first", "last"] and gate.in_flight == 0


def test_needs_a_slot():
    with pytest.raises(ValueError):
        WriteGate(0)


async def test_lower_classes_are_not_starved_by_a_flood_of_leases():
    gate = WriteGate(1, starve_limit=4)
    order: list[str] = []
    hold = asyncio.Event()

    async def write(name: str, priority: int) -> None:
        async with gate.slot(priority):
            order.append(name)
            await hold.wait()

    tasks = [asyncio.create_task(write("lease0", LEASE))]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(write("pod", POD)), asyncio.create_task(write("node", NODE))]
    tasks += [asyncio.create_task(write(f"lease{i}", LEASE)) for i in range(1, 20)]
    await asyncio.sleep(0)
    assert gate.waiting() == 21
    hold.set()
    await asyncio.gather(*tasks)
    # Leases first, until the others have been passed over four times.
    assert order[:7] == ["lease0", "lease1", "lease2", "lease3", "lease4", "node", "pod"], order
