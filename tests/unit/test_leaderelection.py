"""Leader election with several candidates against a fake Lease API, in virtual time."""

import asyncio
import copy

import pytest

from api import errors
from client.clock import FakeClock
from client.leaderelection import LeaderElector


class LeaseStore:
    """The Lease API's semantics in memory: get, create, update compare-and-swapped on resourceVersion."""

    def __init__(self):
        self.leases = {}
        self.rv = 0
        self.writes = []

    def client(self, identity):
        return FakeLeaseClient(self, identity)


class FakeLeaseClient:
    def __init__(self, store, identity):
        self.store = store
        self.identity = identity
        self.partitioned = False

    def _check(self):
        if self.partitioned:
            raise errors.ServiceUnavailable("partitioned")

    async def get(self, resource, name, namespace=None):
        assert resource == "leases.coordination.k8s.io"
        self._check()
        lease = self.store.leases.get((namespace, name))
        if lease is None:
            raise errors.not_found("leases", name, "coordination.k8s.io")
        return copy.deepcopy(lease)

    async def create(self, resource, obj, namespace=None):
        self._check()
        key = (namespace, obj["metadata"]["name"])
        if key in self.store.leases:
            raise errors.already_exists("leases", key[1], "coordination.k8s.io")
        return self._write(key, obj)

    async def update(self, resource, obj, namespace=None):
        self._check()
        key = (namespace, obj["metadata"]["name"])
        current = self.store.leases.get(key)
        if current is None:
            raise errors.not_found("leases", key[1], "coordination.k8s.io")
        if obj["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise errors.conflict("leases", key[1], "coordination.k8s.io")
        return self._write(key, obj)

    def _write(self, key, obj):
        obj = copy.deepcopy(obj)
        self.store.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.store.rv)
        self.store.leases[key] = obj
        self.store.writes.append((self.identity, copy.deepcopy(obj["spec"])))
        return copy.deepcopy(obj)


class Candidate:
    def __init__(self, store, identity, clock, log, **kw):
        self.client = store.client(identity)
        self.log = log
        self.elector = LeaderElector(self.client, "kube-system", "ctrl", identity, clock=clock,
                                     on_started_leading=self.work,
                                     on_stopped_leading=lambda: log.append((clock.monotonic(), identity, "stop")),
                                     **kw)
        self.identity = identity
        self.clock = clock
        self.work_cancelled = False
        self.task = None

    async def work(self):
        self.log.append((self.clock.monotonic(), self.identity, "start"))
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.work_cancelled = True
            raise

    def start(self):
        self.task = asyncio.create_task(self.elector.run())
        return self


def spec(store):
    return store.leases[("kube-system", "ctrl")]["spec"]


@pytest.fixture
def world():
    return LeaseStore(), FakeClock(), []


async def test_one_leader_among_two_and_renewals(world):
    store, clock, log = world
    a = Candidate(store, "a", clock, log).start()
    await clock.settle()
    b = Candidate(store, "b", clock, log).start()
    await clock.advance(60)
    assert a.elector.is_leader() and not b.elector.is_leader()
    assert b.elector.leader == "a"
    s = spec(store)
    assert (s["holderIdentity"], s["leaseDurationSeconds"], s["leaseTransitions"]) == ("a", 15, 0)
    assert s["renewTime"] > s["acquireTime"], "the leader renews"
    renewals = [w for w in store.writes if w[0] == "a"]
    assert 25 <= len(renewals) <= 31, "renewed about every retry period (2 s) over 60 s"
    assert all(w[0] == "a" for w in store.writes), "the follower never writes while the lease is live"
    assert [e[1:] for e in log] == [("a", "start")]
    for c in (a, b):
        c.elector.stop()
    await clock.advance(5)
    await asyncio.gather(a.task, b.task)


async def test_partitioned_leader_steps_down_before_the_other_takes_over(world):
    store, clock, log = world
    a = Candidate(store, "a", clock, log).start()
    await clock.settle()
    b = Candidate(store, "b", clock, log).start()
    await clock.advance(10)
    assert a.elector.is_leader()
    a.client.partitioned = True
    cut = clock.monotonic()
    await clock.advance(30)
    assert a.task.done(), "run() returns after losing the lease"
    assert a.work_cancelled
    assert b.elector.is_leader()
    (t_stop, who_stop, _), (t_start, who_start, _) = [e for e in log if e[0] >= cut]
    assert (who_stop, who_start) == ("a", "b")
    assert t_stop - cut <= 10 + 2 * 1.2, "a stops within the renew deadline (plus a retry period)"
    assert t_start - cut >= 15 - 2, "b waits the lease duration from the last change it saw"
    assert t_stop < t_start
    assert spec(store)["holderIdentity"] == "b" and spec(store)["leaseTransitions"] == 1
    b.elector.stop()
    await clock.advance(5)
    await b.task


async def test_release_on_shutdown_lets_the_successor_in_without_waiting_for_expiry(world):
    store, clock, log = world
    a = Candidate(store, "a", clock, log).start()
    await clock.settle()
    b = Candidate(store, "b", clock, log).start()
    await clock.advance(10)
    a.elector.stop()
    await clock.settle()
    assert a.task.done()
    assert not spec(store).get("holderIdentity"), "release clears the holder"
    released_at = clock.monotonic()
    await clock.advance(3)
    assert b.elector.is_leader(), "the successor takes a released lease at its next retry"
    start_b = [e for e in log if e[1:] == ("b", "start")][0][0]
    assert start_b - released_at <= 2 * 1.2
    assert [e[1:] for e in log] == [("a", "start"), ("a", "stop"), ("b", "start")]
    b.task.cancel()
    await asyncio.gather(b.task, return_exceptions=True)
    assert not spec(store).get("holderIdentity"), "cancelling run() releases too"


async def test_expiry_is_judged_by_the_observers_clock_not_renew_time(world):
    store, clock, log = world
    # A holder whose renewTime is an hour old: a candidate must still wait a full lease duration
    # from when it first saw this record, since other machines' clocks are not comparable.
    store.leases[("kube-system", "ctrl")] = {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "ctrl", "namespace": "kube-system", "resourceVersion": "1"},
        "spec": {"holderIdentity": "ghost", "leaseDurationSeconds": 15, "leaseTransitions": 4,
                 "acquireTime": "2000-01-01T00:00:00.000000Z", "renewTime": "2000-01-01T00:00:00.000000Z"}}
    new_leaders = []
    b = Candidate(store, "b", clock, log, on_new_leader=new_leaders.append).start()
    await clock.advance(14)
    assert not b.elector.is_leader()
    await clock.advance(4)
    assert b.elector.is_leader()
    assert spec(store)["leaseTransitions"] == 5
    assert new_leaders == ["ghost", "b"]
    b.elector.stop()
    await clock.advance(3)
    await b.task


async def test_a_changing_record_is_never_stolen(world):
    store, clock, log = world
    a = Candidate(store, "a", clock, log).start()
    await clock.settle()
    others = [Candidate(store, name, clock, log).start() for name in ("b", "c", "d")]
    for _ in range(10):
        await clock.advance(7)
        leaders = [c.identity for c in [a, *others] if c.elector.is_leader()]
        assert leaders == ["a"]
    for c in [a, *others]:
        c.elector.stop()
    await clock.advance(5)


async def test_settings_are_checked():
    with pytest.raises(ValueError):
        LeaderElector(object(), "ns", "l", "me", lease_duration=10, renew_deadline=10)
    with pytest.raises(ValueError):
        LeaderElector(object(), "ns", "l", "")


async def test_a_leader_whose_work_fails_steps_down_and_releases(world):
    store, clock, log = world

    async def crash():
        await clock.sleep(5)
        raise RuntimeError("controller bug")

    a = LeaderElector(store.client("a"), "kube-system", "ctrl", "a", clock=clock, on_started_leading=crash,
                      on_stopped_leading=lambda: log.append("a stopped"))
    b = Candidate(store, "b", clock, log)
    task = asyncio.create_task(a.run())
    await clock.settle()
    b.start()
    await clock.advance(4)
    assert a.is_leader()
    await clock.advance(2)
    assert task.done() and not a.is_leader() and log == ["a stopped"]
    assert not spec(store).get("holderIdentity")
    await clock.advance(3)
    assert b.elector.is_leader()
    b.elector.stop()
    await clock.advance(3)
    await b.task
