"""Informers against a fake server: list+watch, reconnects, relist on 410, indexes, handlers."""

import asyncio

import pytest

from api import errors, registry
from client.clock import FakeClock
from client.informer import Informer, SharedInformerFactory, Store, object_key
from client.rest import Client
from tests.client.fakeserver import make_pod, running_fake

PODS = registry.resolve("pods")
NODES = registry.resolve("nodes")


async def eventually(predicate, deadline=10.0):
    """Wait (real time, bounded) until ``predicate()`` holds; fail with its last value otherwise."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


class Recorder:
    """A handler that records what it is told, as (kind, key[, old rv, new rv])."""

    def __init__(self):
        self.events = []

    def on_add(self, obj):
        self.events.append(("add", object_key(obj)))

    def on_update(self, old, new):
        self.events.append(("update", object_key(new), old["metadata"]["resourceVersion"],
                            new["metadata"]["resourceVersion"]))

    def on_delete(self, obj):
        self.events.append(("delete", object_key(obj)))

    def kinds(self):
        return [e[:2] for e in self.events]


@pytest.fixture
async def fake():
    async with running_fake() as server:
        yield server


@pytest.fixture
async def client(fake):
    async with Client(fake.url) as c:
        yield c


@pytest.fixture
async def informers():
    started = []
    yield started
    for informer in started:
        await informer.stop()


def new_informer(informers, client, resource=PODS, **kw):
    informer = Informer(client, resource, **kw)
    informers.append(informer)
    return informer


async def test_lists_in_pages_then_watches_from_the_list_version(fake, client, informers):
    for i in range(5):
        fake.put(PODS, make_pod(f"p{i}"))
    list_rv = str(fake.current_rv)
    informer = new_informer(informers, client, page_size=2)
    rec = Recorder()
    informer.add_event_handler(rec)
    informer.start()
    assert await informer.wait_for_cache_sync()
    assert sorted(informer.store.keys()) == [f"default/p{i}" for i in range(5)]
    assert fake.count("GET", "/pods", watch=False) == 3, "5 objects in pages of 2"
    await eventually(lambda: fake.count("GET", "/pods", watch=True) == 1)
    watch_query = [q for m, p, q in fake.requests if q.get("watch") == "true"][0]
    assert watch_query["resourceVersion"] == list_rv
    assert watch_query["allowWatchBookmarks"] == "true"
    await eventually(lambda: len(fake.watchers) == 1)

    fake.put(PODS, make_pod("new"))
    fake.put(PODS, make_pod("p0", labels={"changed": "yes"}))
    fake.remove(PODS, "default", "p1")
    await eventually(lambda: len(rec.events) == 8)
    assert rec.kinds() == [("add", f"default/p{i}") for i in range(5)] + [
        ("add", "default/new"), ("update", "default/p0"), ("delete", "default/p1")]
    assert informer.get("default/p0")["metadata"]["labels"] == {"changed": "yes"}
    assert informer.get("default/p1") is None
    assert informer.last_resource_version == str(fake.current_rv)


async def test_reconnects_from_last_version_when_the_watch_closes(fake, client, informers):
    fake.put(PODS, make_pod("a"))
    informer = new_informer(informers, client)
    rec = Recorder()
    informer.add_event_handler(rec)
    informer.start()
    await informer.wait_for_cache_sync()
    await eventually(lambda: len(fake.watchers) == 1)
    fake.put(PODS, make_pod("b"))
    await eventually(lambda: len(rec.events) == 2)
    fake.close_watches()
    await eventually(lambda: informer.watches == 2 and len(fake.watchers) == 1)
    second = [q for m, p, q in fake.requests if q.get("watch") == "true"][1]
    assert second["resourceVersion"] == str(fake.current_rv)
    fake.put(PODS, make_pod("c"))
    await eventually(lambda: len(rec.events) == 3)
    assert rec.kinds() == [("add", "default/a"), ("add", "default/b"), ("add", "default/c")]
    assert informer.lists == 1, "a closed watch resumes; it does not relist"


async def test_relist_on_410_delivers_the_difference(fake, client, informers):
    for name in ("stays", "changes", "vanishes"):
        fake.put(PODS, make_pod(name))
    informer = new_informer(informers, client)
    rec = Recorder()
    informer.add_event_handler(rec)
    informer.start()
    await informer.wait_for_cache_sync()
    await eventually(lambda: len(fake.watchers) == 1 and len(rec.events) == 3)
    rec.events.clear()
    # Changes the informer never hears about, then history is compacted away.
    fake.remove_silently(PODS, "default", "vanishes")
    fake.put_silently(PODS, make_pod("changes", labels={"v": "2"}))
    fake.put_silently(PODS, make_pod("appears"))
    fake.compact()
    fake.close_watches()  # the reconnect from the old version gets 410, then relists
    await eventually(lambda: informer.lists == 2)
    await informer.wait_for_handlers()
    assert sorted(rec.kinds()) == [("add", "default/appears"), ("delete", "default/vanishes"),
                                   ("update", "default/changes")]
    assert sorted(informer.store.keys()) == ["default/appears", "default/changes", "default/stays"]
    assert informer.get("default/changes")["metadata"]["labels"] == {"v": "2"}


async def test_410_error_event_mid_watch_relists(fake, client, informers):
    fake.put(PODS, make_pod("a"))
    informer = new_informer(informers, client)
    informer.start()
    await informer.wait_for_cache_sync()
    await eventually(lambda: len(fake.watchers) == 1)
    fake.expire_watches()
    await eventually(lambda: informer.lists == 2)


async def test_bookmarks_advance_the_resume_version_without_events(fake, client, informers):
    informer = new_informer(informers, client)
    rec = Recorder()
    informer.add_event_handler(rec)
    informer.start()
    await informer.wait_for_cache_sync()
    await eventually(lambda: len(fake.watchers) == 1)
    fake.put(NODES, {"metadata": {"name": "n1"}})  # another resource moves the revision on
    fake.send_bookmarks()
    await eventually(lambda: informer.last_resource_version == str(fake.current_rv))
    assert rec.events == []


async def test_indexes_namespaces_and_label_selection(fake, client, informers):
    fake.put(PODS, make_pod("a", "ns1", {"app": "web"}, node="n1"))
    fake.put(PODS, make_pod("b", "ns1", {"app": "db"}, node="n2"))
    fake.put(PODS, make_pod("c", "ns2", {"app": "web"}, node="n1"))
    fake.put(PODS, make_pod("pending", "ns2", {"app": "web"}))
    informer = new_informer(informers, client,
                            indexers={"node": lambda p: [p["spec"]["nodeName"]] if p["spec"].get("nodeName") else []})
    informer.start()
    await informer.wait_for_cache_sync()

    def names(objs):
        return sorted(o["metadata"]["name"] for o in objs)

    assert names(informer.by_index("node", "n1")) == ["a", "c"]
    assert names(informer.store.by_namespace("ns1")) == ["a", "b"]
    assert names(informer.list(selector="app=web")) == ["a", "c", "pending"]
    assert names(informer.list("ns2", {"app": "web"})) == ["c", "pending"]
    assert names(informer.list(selector={"matchExpressions": [
        {"key": "app", "operator": "In", "values": ["db"]}]})) == ["b"]
    informer.add_indexer("app", lambda p: [p["metadata"]["labels"].get("app", "")])
    assert names(informer.by_index("app", "web")) == ["a", "c", "pending"]
    await eventually(lambda: len(fake.watchers) == 1)
    fake.put(PODS, make_pod("a", "ns1", {"app": "web"}, node="n2"))
    fake.remove(PODS, "ns2", "c")
    await eventually(lambda: informer.get("ns2/c") is None)
    assert names(informer.by_index("node", "n1")) == []
    assert names(informer.by_index("node", "n2")) == ["a", "b"]
    assert names(informer.by_index("app", "web")) == ["a", "pending"]
    with pytest.raises(KeyError):
        informer.by_index("nope", "x")


async def test_get_copy_is_independent_of_the_cache():
    store = Store()
    store.put({"metadata": {"name": "a", "namespace": "n", "labels": {"x": "1"}}})
    mine = store.get_copy("n/a")
    mine["metadata"]["labels"]["x"] = "changed"
    assert store.get("n/a")["metadata"]["labels"] == {"x": "1"}
    assert store.get_by_name("n", "a") is store.get("n/a")


async def test_handler_order_late_handlers_and_failing_handlers(fake, client, informers):
    fake.put(PODS, make_pod("a"))
    informer = new_informer(informers, client)
    informer.start()
    await informer.wait_for_cache_sync()
    seen = []

    async def slow_add(obj):
        await asyncio.sleep(0.01)
        seen.append(("add", obj["metadata"]["name"]))

    def broken(obj):
        raise RuntimeError("handler bug")

    informer.add_event_handler(on_add=broken, on_update=broken)
    informer.add_event_handler(on_add=slow_add, on_update=lambda o, n: seen.append(("update", n["metadata"]["name"])),
                               on_delete=lambda o: seen.append(("delete", o["metadata"]["name"])))
    await eventually(lambda: len(fake.watchers) == 1)
    fake.put(PODS, make_pod("b"))
    fake.put(PODS, make_pod("a", labels={"x": "y"}))
    fake.remove(PODS, "default", "b")
    await eventually(lambda: len(seen) == 4)
    assert seen == [("add", "a"), ("add", "b"), ("update", "a"), ("delete", "b")], \
        "a late handler first gets the cached objects, then events in order, despite a failing peer"


async def test_list_failures_back_off_in_virtual_time(fake, client, informers):
    clock = FakeClock()
    fake.fail_next.append(errors.InternalError("storage down"))
    fake.fail_next.append(errors.ServiceUnavailable("still down"))
    informer = new_informer(informers, client, clock=clock)
    informer.start()
    await eventually(lambda: clock.pending() == 1)
    assert not informer.has_synced
    await clock.advance(1.0)   # first backoff is 0.8 s (+ up to 20 % jitter)
    await eventually(lambda: clock.pending() == 1 and fake.count("GET", "/pods") == 2)
    assert not informer.has_synced
    await clock.advance(1.0)
    assert not informer.has_synced, "second backoff doubles to 1.6 s"
    await clock.advance(1.0)
    assert await informer.wait_for_cache_sync(timeout=5)


async def test_wait_for_cache_sync_times_out_in_virtual_time(fake, client, informers):
    clock = FakeClock()
    informer = new_informer(informers, client, clock=clock)
    waiter = asyncio.create_task(informer.wait_for_cache_sync(timeout=30))
    await clock.advance(31)
    assert await waiter is False


async def test_resync_redelivers_cached_objects_as_updates(fake, client, informers):
    clock = FakeClock()
    fake.put(PODS, make_pod("a"))
    informer = new_informer(informers, client, clock=clock, resync=60)
    rec = Recorder()
    informer.add_event_handler(rec)
    informer.start()
    await informer.wait_for_cache_sync()
    await eventually(lambda: len(rec.events) == 1)
    await clock.advance(59)
    await informer.wait_for_handlers()
    assert len(rec.events) == 1
    await clock.advance(2)
    await informer.wait_for_handlers()
    rv = informer.get("default/a")["metadata"]["resourceVersion"]
    assert rec.events[1] == ("update", "default/a", rv, rv)


async def test_selector_informer_sees_only_matching_objects(fake, client, informers):
    fake.put(PODS, make_pod("web", labels={"app": "web"}))
    fake.put(PODS, make_pod("db", labels={"app": "db"}))
    informer = new_informer(informers, client, label_selector="app=web")
    informer.start()
    await informer.wait_for_cache_sync()
    assert informer.store.keys() == ["default/web"]
    await eventually(lambda: len(fake.watchers) == 1)
    fake.put(PODS, make_pod("web2", labels={"app": "web"}))
    fake.put(PODS, make_pod("db2", labels={"app": "db"}))
    await eventually(lambda: "default/web2" in informer.store)
    assert "default/db2" not in informer.store


async def test_shared_factory_gives_one_watch_per_resource(fake, client):
    factory = SharedInformerFactory(client)
    one = factory.informer_for(PODS)
    two = factory.informer_for("pods")
    assert one is two
    assert factory.informer_for(PODS, "ns1") is not one
    nodes = factory.informer_for(NODES, "ignored-for-cluster-scoped")
    assert nodes.namespace is None
    a, b = Recorder(), Recorder()
    one.add_event_handler(a)
    two.add_event_handler(b)
    factory.start()
    try:
        assert await factory.wait_for_cache_sync()
        late = factory.informer_for("deployments")
        assert await late.wait_for_cache_sync(), "informers asked for after start start at once"
        await eventually(lambda: len(fake.watchers) == 4)
        fake.put(PODS, make_pod("x"))
        await eventually(lambda: len(a.events) == 1 and len(b.events) == 1)
        all_ns_pod_watches = [p for m, p, q in fake.requests if q.get("watch") == "true" and p == "/api/v1/pods"]
        assert len(all_ns_pod_watches) == 1
    finally:
        await factory.stop()


async def test_restart_resumes_the_watch_and_relists_if_expired(fake, client, informers):
    fake.put(PODS, make_pod("a"))
    informer = new_informer(informers, client)
    rec = Recorder()
    informer.add_event_handler(rec)
    informer.start()
    await informer.wait_for_cache_sync()
    await eventually(lambda: len(fake.watchers) == 1)
    await informer.stop()
    fake.put(PODS, make_pod("b"))
    informer.start()
    await eventually(lambda: len(rec.events) == 2)
    assert informer.lists == 1, "history still covers the gap: the watch resumes"
    await informer.stop()
    fake.remove(PODS, "default", "a")
    fake.compact()
    informer.start()
    await eventually(lambda: len(rec.events) == 3)
    assert informer.lists == 2
    assert rec.kinds()[-1] == ("delete", "default/a")


async def test_transform_applies_to_listed_and_watched_objects(fake, client, informers):
    from client.informer import strip_managed_fields

    managed = [{"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {}}}]
    first = make_pod("listed")
    first["metadata"]["managedFields"] = managed
    fake.put(PODS, first)
    informer = new_informer(informers, client, transform=strip_managed_fields)
    informer.start()
    await informer.wait_for_cache_sync()
    await eventually(lambda: len(fake.watchers) == 1)
    second = make_pod("watched")
    second["metadata"]["managedFields"] = managed
    fake.put(PODS, second)
    await eventually(lambda: "default/watched" in informer.store)
    for key in ("default/listed", "default/watched"):
        assert "managedFields" not in informer.get(key)["metadata"]
        assert informer.get(key)["metadata"]["name"] == key.split("/")[1]
