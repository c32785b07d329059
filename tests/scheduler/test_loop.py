"""The scheduling loop in process, against a stand-in API at the client boundary: assumptions,
failed bindings, the share of nodes filtered, and pod status writes."""

from __future__ import annotations

import asyncio
from typing import Any

from api import errors
from client.clock import FakeClock
from scheduler.scheduler import Scheduler
from tests.scheduler.builders import node
from tests.unit.scheduler.builders import make_pod


class FakeAPI:
    """Records bindings and status patches; ``gate`` holds bindings until set; ``fail`` names
    pods whose next binding is refused."""

    def __init__(self) -> None:
        self.bindings: list[tuple[str, str]] = []
        self.patches: list[tuple[str, dict]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail: set[str] = set()

    async def bind(self, namespace: str, name: str, node_name: str) -> None:
        await self.gate.wait()
        if name in self.fail:
            self.fail.discard(name)
            raise errors.Conflict("injected binding failure")
        self.bindings.append((name, node_name))

    async def patch(self, resource: str, name: str, body: dict, namespace: str | None = None, **kw: Any) -> dict:
        self.patches.append((name, body))
        return {}

    async def create(self, resource: Any, obj: dict, *a: Any, **kw: Any) -> dict:
        return obj

    async def delete(self, *a: Any, **kw: Any) -> dict:
        return {}


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def normal(self, obj: dict, reason: str, message: str) -> None:
        self.events.append((obj["metadata"]["name"], reason, message))

    def warning(self, obj: dict, reason: str, message: str) -> None:
        self.events.append((obj["metadata"]["name"], reason, message))

    async def stop(self, flush: bool = True) -> None: ...


def scheduler(api: FakeAPI, *nodes: dict, clock: FakeClock | None = None) -> tuple[Scheduler, Recorder]:
    rec = Recorder()
    s = Scheduler(api, recorder=rec, clock=clock or FakeClock())  # type: ignore[arg-type]
    for n in nodes:
        s.cache.add_node(n)
    return s, rec


async def schedule_next(s: Scheduler) -> str | None:
    qp = await asyncio.wait_for(s.queue.pop(), 1)
    return await s.schedule_one(qp)


async def test_assumed_pods_hold_capacity_while_bindings_are_in_flight():
    api = FakeAPI()
    api.gate.clear()                     # no binding completes during the cycles
    s, rec = scheduler(api, node("a", cpu="1"), node("b", cpu="1"))
    for i in range(3):
        s.queue.add(make_pod(f"p{i}", cpu="1"))
    placed = [await schedule_next(s) for _ in range(3)]
    assert sorted(p for p in placed if p) == ["a", "b"]
    assert placed[2] is None
    assert s.queue.where("default/p2") == "unschedulable"
    assert rec.events[-1][1] == "FailedScheduling"
    assert rec.events[-1][2].startswith("0/2 nodes are available: 2 Insufficient cpu.")
    api.gate.set()
    await s.wait_for_bindings()
    assert sorted(n for _, n in api.bindings) == ["a", "b"]
    await asyncio.sleep(0)
    cond = [b for name, b in api.patches if name == "p2"][0]["status"]["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"]) == ("PodScheduled", "False", "Unschedulable")


async def test_failed_binding_forgets_the_assumption_and_requeues():
    api = FakeAPI()
    api.fail.add("p")
    clock = FakeClock()
    s, rec = scheduler(api, node("a", cpu="1"), clock=clock)
    s.queue.add(make_pod("p", cpu="1"))
    assert await schedule_next(s) == "a"
    await s.wait_for_bindings()
    assert s.cache.update_snapshot().get("a").requested.get("cpu", 0) == 0
    assert s.queue.where("default/p") == "backoff"
    assert any(r == "FailedScheduling" and m.startswith("Binding rejected:") for _, r, m in rec.events)
    await clock.advance(0.9)
    s.queue.flush_backoff_completed()
    assert s.queue.where("default/p") == "backoff"       # 1 s after the first attempt
    await clock.advance(0.2)
    s.queue.flush_backoff_completed()
    assert s.queue.where("default/p") == "active"
    assert await schedule_next(s) == "a"
    await s.wait_for_bindings()
    assert api.bindings == [("p", "a")]
    assert ("p", "Scheduled", "Successfully assigned default/p to a") in rec.events


async def test_large_clusters_filter_a_share_of_nodes_starting_where_the_last_cycle_stopped():
    api = FakeAPI()
    s, _ = scheduler(api, *(node(f"n{i:04d}") for i in range(1000)))
    s.queue.add(make_pod("p1", cpu="10m"))
    s.queue.add(make_pod("p2", cpu="10m"))
    await schedule_next(s)
    # 1000 nodes: 50 - 1000/125 = 42 % of them are enough.
    assert s.next_start_index == 420
    await schedule_next(s)
    assert s.next_start_index == 840
    await s.wait_for_bindings()


async def test_no_nodes_is_reported():
    api = FakeAPI()
    s, rec = scheduler(api)
    s.queue.add(make_pod("lonely"))
    assert await schedule_next(s) is None
    assert rec.events == [("lonely", "FailedScheduling", "0/0 nodes are available: no nodes available to "
                                                          "schedule pods.")]


async def test_room_made_by_preemption_is_kept_for_the_nominated_pod():
    api = FakeAPI()
    s, rec = scheduler(api, node("a", cpu="2"))
    victim = make_pod("victim", cpu="2", priority=0, node_name="a")
    s._on_pod_add(victim)
    s.queue.add(make_pod("high", cpu="2", priority=100))
    assert await schedule_next(s) is None
    assert s.nominated["default/high"][1] == "a"
    await asyncio.sleep(0)
    assert any(b.get("status", {}).get("nominatedNodeName") == "a" for name, b in api.patches if name == "high")
    s._on_pod_delete(victim)                     # the victim is gone; high backs off for 1 s
    s.queue.add(make_pod("mid", cpu="2", priority=50))
    assert await schedule_next(s) is None        # mid must not take high's room
    assert rec.events[-1][:2] == ("mid", "FailedScheduling")
    await s.clock.advance(1.5)
    s.queue.flush_backoff_completed()
    assert await schedule_next(s) == "a"
    await s.wait_for_bindings()
    assert api.bindings == [("high", "a")]
    assert "default/high" not in s.nominated
