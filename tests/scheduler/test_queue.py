"""The scheduling queue in virtual time: order, backoff, unschedulable pods and their requeue."""

from __future__ import annotations

import asyncio

import pytest

from client.clock import FakeClock
from scheduler.plugins.prioritysort import PrioritySort
from scheduler.queue import ACTIVE, BACKOFF, GATED, UNSCHEDULABLE, SchedulingQueue
from tests.unit.scheduler.builders import make_pod


def queue(clock: FakeClock | None = None) -> SchedulingQueue:
    return SchedulingQueue(PrioritySort().less, clock=clock or FakeClock())


async def pop_now(q: SchedulingQueue):
    return await asyncio.wait_for(q.pop(), 1)


async def test_pops_by_priority_then_arrival():
    q = queue()
    for name, prio in (("a", 0), ("b", 10), ("c", 0), ("d", 10)):
        q.add(make_pod(name, priority=prio))
    assert [(await pop_now(q)).key for _ in range(4)] == ["default/b", "default/d", "default/a", "default/c"]


async def test_ordering_by_the_plugins_sort_key_pops_as_ordering_by_less():
    import random

    rng = random.Random(7)
    pods = []
    for i in range(200):
        p = make_pod(f"p{i}", priority=rng.choice([None, 0, 5, 10, -3]))
        stamp = rng.choice(["", f"2026-01-01T00:00:0{rng.randrange(3)}Z"])
        if stamp:
            p["metadata"]["creationTimestamp"] = stamp
        pods.append(p)
    by_less = queue()
    by_key = SchedulingQueue(PrioritySort().less, key=PrioritySort().sort_key, clock=FakeClock())
    for p in pods:
        by_less.add(p)
        by_key.add(p)
    first = [(await pop_now(by_less)).key for _ in pods]
    assert [(await pop_now(by_key)).key for _ in pods] == first
    assert first[0] != "default/p0", "the case is not trivially in arrival order"


@pytest.mark.parametrize("attempts,expected", [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (9, 10.0)])
def test_backoff_doubles_to_ten_seconds(attempts, expected):
    assert queue().backoff_duration(attempts) == expected


async def test_unschedulable_waits_for_an_event_then_backs_off():
    clock = FakeClock()
    q = queue(clock)
    q.add(make_pod("p"))
    qp = await pop_now(q)
    q.add_unschedulable(qp, q.scheduling_cycle, {"NodeResourcesFit"})
    assert q.where("default/p") == UNSCHEDULABLE
    await clock.advance(60)
    q.flush_backoff_completed()
    assert q.where("default/p") == UNSCHEDULABLE      # no event: stays
    assert q.move_all_to_active_or_backoff("NodeAdd") == 1
    assert q.where("default/p") == ACTIVE             # its 1 s backoff is long over
    qp = await pop_now(q)
    q.add_unschedulable(qp, q.scheduling_cycle, {"NodeResourcesFit"})
    q.move_all_to_active_or_backoff("NodeAdd")
    assert q.where("default/p") == BACKOFF            # second failure: 2 s
    await clock.advance(1.5)
    q.flush_backoff_completed()
    assert q.where("default/p") == BACKOFF
    await clock.advance(0.6)
    q.flush_backoff_completed()
    assert q.where("default/p") == ACTIVE


async def test_event_during_the_attempt_sends_the_pod_to_backoff():
    q = queue()
    q.add(make_pod("p"))
    qp = await pop_now(q)
    cycle = q.scheduling_cycle
    q.move_all_to_active_or_backoff("NodeAdd")        # arrives while p is being scheduled
    q.add_unschedulable(qp, cycle, {"NodeResourcesFit"})
    assert q.where("default/p") == BACKOFF


async def test_pod_events_only_move_pods_rejected_by_pod_aware_plugins():
    q = queue()
    for name, plugin in (("fit", "NodeResourcesFit"), ("anti", "InterPodAffinity")):
        q.add(make_pod(name))
        qp = await pop_now(q)
        q.add_unschedulable(qp, q.scheduling_cycle, {plugin})
    assert q.move_all_to_active_or_backoff("AssignedPodAdd", {"InterPodAffinity", "PodTopologySpread"}) == 1
    assert q.where("default/fit") == UNSCHEDULABLE
    assert q.where("default/anti") in (ACTIVE, BACKOFF)


async def test_unschedulable_pods_are_retried_after_five_minutes():
    clock = FakeClock()
    q = queue(clock)
    q.start()
    try:
        q.add(make_pod("p"))
        qp = await pop_now(q)
        q.add_unschedulable(qp, q.scheduling_cycle, {"NodeResourcesFit"})
        await clock.advance(290)
        assert q.where("default/p") == UNSCHEDULABLE
        await clock.advance(40)
        assert q.where("default/p") == ACTIVE
    finally:
        await q.close()


async def test_update_requeues_only_on_a_real_change():
    q = queue()
    p = make_pod("p", cpu="4")
    q.add(p)
    qp = await pop_now(q)
    q.add_unschedulable(qp, q.scheduling_cycle, {"NodeResourcesFit"})
    status_only = dict(p, status={"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False"}]})
    q.update(p, status_only)
    assert q.where("default/p") == UNSCHEDULABLE
    smaller = make_pod("p", cpu="1", uid=p["metadata"]["uid"])
    q.update(status_only, smaller)
    assert q.where("default/p") in (ACTIVE, BACKOFF)


async def test_gated_pods_wait_for_their_gates_to_go():
    q = queue()
    gated = make_pod("g")
    gated["spec"]["schedulingGates"] = [{"name": "example.com/wait"}]
    q.add(gated)
    assert q.where("default/g") == GATED
    assert q.counts() == {ACTIVE: 0, BACKOFF: 0, UNSCHEDULABLE: 0, GATED: 1}
    open_ = make_pod("g", uid=gated["metadata"]["uid"])
    q.update(gated, open_)
    assert (await pop_now(q)).key == "default/g"


async def test_deleted_pods_leave_every_queue():
    q = queue()
    a, b = make_pod("a"), make_pod("b")
    q.add(a)
    q.add(b)
    q.delete(a)
    assert (await pop_now(q)).key == "default/b"
    q.delete(b)                                       # while in flight
    assert q.in_flight_deleted("default/b")
    assert len(q) == 0


async def test_pop_waits_for_a_pod_and_close_wakes_it():
    q = queue()
    waiter = asyncio.create_task(q.pop())
    await asyncio.sleep(0)
    assert not waiter.done()
    q.add(make_pod("late"))
    assert (await asyncio.wait_for(waiter, 1)).key == "default/late"
    waiter = asyncio.create_task(q.pop())
    await asyncio.sleep(0)
    await q.close()
    assert await asyncio.wait_for(waiter, 1) is None
