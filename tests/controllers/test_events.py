"""The controller manager's event recorder: client-go's aggregation of similar events and its
per-object spam filter, against a real API server, in virtual time."""

from __future__ import annotations

import pytest

from client.clock import FakeClock
from controller_manager.events import COMBINED_PREFIX, CorrelatingRecorder


def make_rs(name: str, uid: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "uid": uid}}


@pytest.fixture
async def recorder(client):
    rec = CorrelatingRecorder(client, "replicaset-controller", clock=FakeClock())
    yield rec
    await rec.stop()


async def events_about(client, name: str) -> list[dict]:
    items = (await client.list("events", client.namespace))["items"]
    return sorted((e for e in items if e["involvedObject"]["name"] == name), key=lambda e: e["metadata"]["name"])


def rs_in(client, name: str, uid: str) -> dict:
    rs = make_rs(name, uid)
    rs["metadata"]["namespace"] = client.namespace
    return rs


async def test_similar_events_are_combined_then_spam_is_dropped(client, recorder):
    rs = rs_in(client, "web", "uid-web")
    for i in range(40):
        recorder.normal(rs, "SuccessfulCreate", f"Created pod: web-{i}")
    await recorder.flush()
    evs = await events_about(client, "web")
    single = [e for e in evs if not e["message"].startswith(COMBINED_PREFIX)]
    combined = [e for e in evs if e["message"].startswith(COMBINED_PREFIX)]
    # Nine distinct messages pass as they are; the tenth on is one combined Event; the burst of
    # 25 writes per object ends it.
    assert sorted(e["message"] for e in single) == sorted(f"Created pod: web-{i}" for i in range(9))
    assert [e["count"] for e in single] == [1] * 9
    assert len(combined) == 1
    assert combined[0]["message"] == COMBINED_PREFIX + "Created pod: web-9"
    assert combined[0]["count"] == 25 - 9
    assert recorder.filtered == 40 - 25


async def test_the_burst_refills_slowly_and_is_per_object(client, recorder):
    clock = recorder.clock
    web, db = rs_in(client, "web", "uid-web"), rs_in(client, "db", "uid-db")
    for _ in range(30):
        recorder.warning(web, "FailedCreate", "quota exceeded")
    recorder.warning(db, "FailedCreate", "quota exceeded")
    await recorder.flush()
    assert recorder.filtered == 5
    [ev] = await events_about(client, "web")
    assert ev["count"] == 25
    [ev] = await events_about(client, "db")
    assert ev["count"] == 1

    await clock.advance(299)
    recorder.warning(web, "FailedCreate", "quota exceeded")
    await recorder.flush()
    assert recorder.filtered == 6
    await clock.advance(2)                       # one token per five minutes
    recorder.warning(web, "FailedCreate", "quota exceeded")
    await recorder.flush()
    assert recorder.filtered == 6
    [ev] = await events_about(client, "web")
    assert ev["count"] == 26


async def test_few_events_are_written_as_they_come(client, recorder):
    rs = rs_in(client, "small", "uid-small")
    for i in range(3):
        recorder.normal(rs, "SuccessfulCreate", f"Created pod: small-{i}")
    recorder.normal(rs, "SuccessfulDelete", "Deleted pod: small-0")
    await recorder.flush()
    evs = await events_about(client, "small")
    assert sorted((e["reason"], e["message"], e["count"]) for e in evs) == [
        ("SuccessfulCreate", f"Created pod: small-{i}", 1) for i in range(3)] + [
        ("SuccessfulDelete", "Deleted pod: small-0", 1)]
    assert recorder.filtered == 0
