"""The event recorder against a fake server: creation, counting repeats, windows, failures."""

import asyncio

import pytest

from api import errors, registry
from client.clock import FakeClock
from client.events import EventRecorder
from client.rest import Client
from tests.client.fakeserver import make_pod, running_fake

EVENTS = registry.resolve("events")
NODES = registry.resolve("nodes")


@pytest.fixture
async def fake():
    async with running_fake() as server:
        yield server


@pytest.fixture
async def setup(fake):
    clock = FakeClock(start=1_800_000_000.0)
    # No client-level retries: the recorder's own retries (in virtual time) are under test.
    async with Client(fake.url, max_retries=0) as client:
        pod = await client.create("pods", make_pod("web-1", "shop"))
        recorder = EventRecorder(client, "navarch-scheduler", host="node-a", clock=clock, window=600)
        yield fake, recorder, clock, pod
        await recorder.stop()


def stored_events(fake):
    return sorted(fake.objects["events"].values(), key=lambda e: e["metadata"]["name"])


async def test_first_event_is_created_with_kubernetes_fields(setup):
    fake, recorder, clock, pod = setup
    recorder.event(pod, "Warning", "FailedScheduling", "0/3 nodes are available")
    await recorder.flush()
    [ev] = stored_events(fake)
    assert ev["metadata"]["namespace"] == "shop"
    assert ev["metadata"]["name"].startswith("web-1.")
    int(ev["metadata"]["name"].split(".", 1)[1], 16)
    assert ev["involvedObject"] == {"kind": "Pod", "apiVersion": "v1", "name": "web-1", "namespace": "shop",
                                    "uid": pod["metadata"]["uid"],
                                    "resourceVersion": pod["metadata"]["resourceVersion"]}
    assert (ev["type"], ev["reason"], ev["message"], ev["count"]) == (
        "Warning", "FailedScheduling", "0/3 nodes are available", 1)
    assert ev["source"] == {"component": "navarch-scheduler", "host": "node-a"}
    assert ev["firstTimestamp"] == ev["lastTimestamp"] == "2027-01-15T08:00:00Z"


async def test_repeats_within_the_window_patch_the_count(setup):
    fake, recorder, clock, pod = setup
    recorder.event(pod, "Normal", "Pulled", "image pulled")
    await recorder.flush()
    await clock.advance(30)
    recorder.event(pod, "Normal", "Pulled", "image pulled")
    recorder.event(pod, "Normal", "Pulled", "image pulled")
    await recorder.flush()
    [ev] = stored_events(fake)
    assert ev["count"] == 3
    assert ev["firstTimestamp"] == "2027-01-15T08:00:00Z"
    assert ev["lastTimestamp"] == "2027-01-15T08:00:30Z"
    assert fake.count("POST", "/events") == 1
    assert fake.count("PATCH", "/events/") == 2


async def test_different_message_or_expired_window_makes_a_new_event(setup):
    fake, recorder, clock, pod = setup
    recorder.event(pod, "Normal", "Scaled", "to 2")
    recorder.event(pod, "Normal", "Scaled", "to 3")
    await recorder.flush()
    await clock.advance(601)
    recorder.event(pod, "Normal", "Scaled", "to 2")
    await recorder.flush()
    evs = stored_events(fake)
    assert len(evs) == 3 and all(e["count"] == 1 for e in evs)
    assert len({e["metadata"]["name"] for e in evs}) == 3


async def test_deleted_event_is_recreated_on_repeat(setup):
    fake, recorder, clock, pod = setup
    recorder.event(pod, "Normal", "Started", "started")
    await recorder.flush()
    [ev] = stored_events(fake)
    fake.remove(EVENTS, "shop", ev["metadata"]["name"])
    recorder.event(pod, "Normal", "Started", "started")
    await recorder.flush()
    [again] = stored_events(fake)
    assert again["count"] == 1 and again["metadata"]["name"] != ev["metadata"]["name"]


async def test_cluster_scoped_objects_get_events_in_default(setup):
    fake, recorder, clock, pod = setup
    node = fake.put(NODES, {"metadata": {"name": "n1"}})
    recorder.normal(node, "NodeReady", "Node n1 status is now: NodeReady")
    await recorder.flush()
    [ev] = stored_events(fake)
    assert ev["metadata"]["namespace"] == "default"
    assert ev["involvedObject"]["kind"] == "Node" and "namespace" not in ev["involvedObject"]


async def test_transient_failures_retry_in_virtual_time_then_succeed(setup):
    fake, recorder, clock, pod = setup
    fake.fail_next += [errors.ServiceUnavailable("busy"), errors.TooManyRequests("slow down")]
    recorder.warning(pod, "BackOff", "restarting")
    await clock.settle()
    assert stored_events(fake) == []
    await clock.advance(1)   # first retry after 1 s
    for _ in range(500):     # its round trip takes real time
        if fake.count("POST", "/events") == 2 and clock.pending():
            break
        await asyncio.sleep(0.01)
    assert stored_events(fake) == [] and fake.count("POST", "/events") == 2
    await clock.advance(2)   # second after 2 s more
    await recorder.flush()
    assert len(stored_events(fake)) == 1


async def test_permanent_failures_drop_the_event_without_raising(setup):
    fake, recorder, clock, pod = setup
    fake.fail_next.append(errors.Forbidden("events is forbidden"))
    recorder.warning(pod, "BackOff", "restarting")
    await recorder.flush()
    assert stored_events(fake) == [] and recorder.written == 0
    recorder.warning(pod, "BackOff", "restarting")
    await recorder.flush()
    assert len(stored_events(fake)) == 1


async def test_recording_never_blocks_and_drops_when_full(fake):
    async with Client(fake.url) as client:
        recorder = EventRecorder(client, "c", queue_size=2, clock=FakeClock())
        pod = make_pod("p")
        for i in range(5):
            recorder.normal(pod, "R", f"m{i}")  # synchronous; the writer has not run yet
        assert recorder.dropped == 3
        await recorder.stop()
        assert recorder.written == 2
    with pytest.raises(ValueError):
        recorder.event(pod, "Error", "R", "m")
