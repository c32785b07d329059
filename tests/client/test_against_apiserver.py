"""The client library against the real API server (``python -m navarch apiserver`` on SQLite)."""

import asyncio

import pytest

from api import errors
from client.events import EventRecorder
from client.informer import Informer, SharedInformerFactory, object_key
from client.leaderelection import LeaderElector
from client.rest import Client
from client.workqueue import WorkQueue, run_workers
from tests.client.fakeserver import make_pod
from tests.fixtures.apiserver import ApiServer

WATCH_CACHE_SIZE = 50


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory):
    server = ApiServer(tmp_path_factory.mktemp("client-apiserver"),
                       extra_args=["--watch-cache-size", str(WATCH_CACHE_SIZE)]).start()
    yield server
    server.stop()


@pytest.fixture
async def client(apiserver):
    async with await Client.from_kubeconfig(apiserver.kubeconfig) as c:
        yield c


@pytest.fixture
async def namespace(client, request):
    name = "t-" + request.node.name.replace("_", "-")[:50].strip("-").lower()
    await client.create("namespaces", {"metadata": {"name": name}})
    return name


async def eventually(predicate, deadline=20.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


async def test_crud_paging_and_typed_errors(client, namespace):
    for i in range(7):
        await client.create("pods", make_pod(f"p{i}", namespace, {"i": str(i % 2)}))
    with pytest.raises(errors.AlreadyExists):
        await client.create("pods", make_pod("p0", namespace))
    page = await client.list("pods", namespace, limit=3)
    assert len(page["items"]) == 3 and page["metadata"].get("continue")
    everything = await client.list_all("pods", namespace, page_size=3)
    assert sorted(p["metadata"]["name"] for p in everything["items"]) == [f"p{i}" for i in range(7)]
    odd = await client.list_all("pods", namespace, label_selector={"i": "1"})
    assert len(odd["items"]) == 3
    pod = await client.get("pods", "p0", namespace)
    stale = dict(pod)
    await client.patch("pods", "p0", {"metadata": {"labels": {"x": "y"}}}, namespace)
    with pytest.raises(errors.Conflict):
        await client.update("pods", stale, namespace)
    with pytest.raises(errors.Invalid):
        await client.create("pods", {"metadata": {"name": "bad"}, "spec": {"containers": []}}, namespace)
    await client.delete_collection("pods", namespace, label_selector="i=0")
    left = await client.list_all("pods", namespace)
    assert all(p["metadata"]["labels"]["i"] == "1" or p["metadata"].get("deletionTimestamp")
               for p in left["items"])
    with pytest.raises(errors.NotFound):
        await client.get("pods", "nope", namespace)


async def test_watch_stream_and_gone_from_an_expired_version(client, namespace):
    start = (await client.list("pods", namespace))["metadata"]["resourceVersion"]
    await client.create("pods", make_pod("w", namespace))
    seen = []
    async for etype, obj in client.watch("pods", namespace, resource_version=start, timeout_seconds=1):
        seen.append((etype, obj["metadata"]["name"]))
    assert seen == [("ADDED", "w")], "the stream ends when the server's timeout runs out"
    # Push the watch cache past its capacity so that ``start`` is no longer served.
    for i in range(WATCH_CACHE_SIZE + 10):
        await client.patch("pods", "w", {"metadata": {"labels": {"n": str(i)}}}, namespace)
    with pytest.raises(errors.Gone):
        async for _ in client.watch("pods", namespace, resource_version=start, timeout_seconds=5):
            pass


async def test_informer_follows_and_relists_after_410(client, namespace):
    for name in ("stays", "changes", "vanishes"):
        await client.create("pods", make_pod(name, namespace))
    informer = Informer(client, "pods", namespace, page_size=2)
    events = []
    informer.add_event_handler(on_add=lambda o: events.append(("add", object_key(o))),
                               on_update=lambda o, n: events.append(("update", object_key(n))),
                               on_delete=lambda o: events.append(("delete", object_key(o))))
    informer.start()
    try:
        assert await informer.wait_for_cache_sync(timeout=20)
        await client.create("pods", make_pod("live", namespace))
        await eventually(lambda: len(events) == 4)
        await informer.stop()
        events.clear()
        # While stopped: changes, then enough writes to expire the informer's resourceVersion.
        await client.delete("pods", "vanishes", namespace, grace_period_seconds=0)
        await client.patch("pods", "changes", {"metadata": {"labels": {"v": "2"}}}, namespace)
        await client.create("pods", make_pod("appears", namespace))
        for i in range(WATCH_CACHE_SIZE + 10):
            await client.patch("pods", "stays", {"metadata": {"annotations": {"n": str(i)}}}, namespace)
        lists = informer.lists
        informer.start()
        await eventually(lambda: informer.lists == lists + 1)
        await informer.wait_for_handlers()
        ns = namespace
        assert set(events) == {("delete", f"{ns}/vanishes"), ("update", f"{ns}/changes"),
                               ("add", f"{ns}/appears"), ("update", f"{ns}/stays")}
        assert sorted(informer.store.keys()) == sorted(f"{ns}/{n}" for n in ("stays", "changes", "appears", "live"))
    finally:
        await informer.stop()


async def test_controller_loop_with_factory_and_work_queue(client, namespace):
    factory = SharedInformerFactory(client, namespace=namespace)
    pods = factory.informer_for("pods")
    queue = WorkQueue("labeller")
    pods.add_event_handler(on_add=lambda o: queue.add(object_key(o)),
                           on_update=lambda o, n: queue.add(object_key(n)))

    async def reconcile(key):
        ns, name = key.split("/")
        pod = pods.get(key)
        if pod is None or pod["metadata"].get("labels", {}).get("seen") == "yes":
            return
        await client.patch("pods", name, {"metadata": {"labels": {"seen": "yes"}}}, ns)

    factory.start()
    workers = asyncio.create_task(run_workers(queue, reconcile, 2))
    try:
        assert await factory.wait_for_cache_sync(timeout=20)
        for i in range(5):
            await client.create("pods", make_pod(f"c{i}", namespace))
        await eventually(lambda: len(pods.list(selector="seen=yes")) == 5)
    finally:
        queue.shut_down()
        await workers
        await factory.stop()


async def test_leader_election_on_a_real_lease(client, namespace):
    log = []

    def elector(identity):
        return LeaderElector(client, namespace, "ctrl", identity, lease_duration=4, renew_deadline=3,
                             retry_period=0.5,
                             on_started_leading=lambda: log.append(("start", identity)),
                             on_stopped_leading=lambda: log.append(("stop", identity)))

    a, b = elector("a"), elector("b")
    ta = asyncio.create_task(a.run())
    await asyncio.wait_for(a.wait_until_leading(), 20)
    tb = asyncio.create_task(b.run())
    await asyncio.sleep(1.5)
    assert a.is_leader() and not b.is_leader() and b.leader == "a"
    lease = await client.get("leases.coordination.k8s.io", "ctrl", namespace)
    assert lease["spec"]["holderIdentity"] == "a" and lease["spec"]["leaseDurationSeconds"] == 4
    a.stop()
    await asyncio.wait_for(ta, 20)
    await asyncio.wait_for(b.wait_until_leading(), 20)
    lease = await client.get("leases.coordination.k8s.io", "ctrl", namespace)
    assert lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseTransitions"] == 1
    b.stop()
    await asyncio.wait_for(tb, 20)
    assert log == [("start", "a"), ("stop", "a"), ("start", "b"), ("stop", "b")]


async def test_event_recorder_counts_repeats(client, namespace):
    pod = await client.create("pods", make_pod("evented", namespace))
    recorder = EventRecorder(client, "navarch-test", host="h1")
    for _ in range(3):
        recorder.warning(pod, "BackOff", "Back-off restarting failed container")
    recorder.normal(pod, "Pulled", "Container image pulled")
    await recorder.stop()
    events = (await client.list_all("events", namespace))["items"]
    by_reason = {e["reason"]: e for e in events}
    assert by_reason["BackOff"]["count"] == 3 and by_reason["Pulled"]["count"] == 1
    assert by_reason["BackOff"]["involvedObject"]["uid"] == pod["metadata"]["uid"]
    assert by_reason["BackOff"]["metadata"]["name"].startswith("evented.")
