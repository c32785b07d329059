"""The work queue's guarantees, driven in virtual time by a fake clock."""

import asyncio

import pytest

from client.clock import FakeClock
from client.workqueue import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    PrometheusMetrics,
    ShutDown,
    WorkQueue,
    default_rate_limiter,
    run_workers,
)


def make_queue(clock=None, **kw):
    clock = clock or FakeClock()
    return WorkQueue("test", clock=clock, **kw), clock


async def test_key_added_many_times_before_processing_is_handed_out_once():
    q, clock = make_queue()
    for _ in range(5):
        q.add("ns/a")
    q.add("ns/b")
    q.add("ns/a")
    assert len(q) == 2
    assert await q.get() == "ns/a"
    assert await q.get() == "ns/b"
    assert len(q) == 0
    getter = asyncio.create_task(q.get())
    await clock.settle()
    assert not getter.done()
    getter.cancel()


async def test_key_added_while_processing_is_requeued_after_done():
    q, clock = make_queue()
    q.add("k")
    key = await q.get()
    q.add("k")
    q.add("k")
    assert len(q) == 0, "a key being processed must not be handed to another worker"
    assert q.is_processing("k")
    q.done(key)
    assert len(q) == 1
    assert await q.get() == "k"
    q.done("k")
    assert len(q) == 0


async def test_workers_never_process_one_key_concurrently():
    q, clock = make_queue()
    active: set[str] = set()
    overlaps: list[str] = []
    processed: list[str] = []

    async def reconcile(key):
        if key in active:
            overlaps.append(key)
        active.add(key)
        await clock.sleep(1)
        processed.append(key)
        active.discard(key)

    workers = asyncio.create_task(run_workers(q, reconcile, 4))
    q.add("a")
    q.add("b")
    await clock.settle()
    # Both are in flight; more adds of "a" must wait for the running one.
    q.add("a")
    q.add("a")
    await clock.advance(0.5)
    assert processed == []
    await clock.advance(0.6)
    assert sorted(processed) == ["a", "b"]
    await clock.advance(1.0)
    assert sorted(processed) == ["a", "a", "b"]
    assert overlaps == []
    q.shut_down()
    await workers


async def test_exponential_backoff_doubles_from_5ms_to_cap():
    limiter = ItemExponentialFailureRateLimiter()
    delays = [limiter.when("k") for _ in range(20)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert all(b == min(a * 2, 1000.0) for a, b in zip(delays, delays[1:], strict=False))
    assert delays[-1] == 1000.0
    assert limiter.num_requeues("k") == 20
    assert limiter.when("other") == 0.005
    limiter.forget("k")
    assert limiter.num_requeues("k") == 0
    assert limiter.when("k") == 0.005
    for _ in range(200):
        assert limiter.when("many") <= 1000.0


async def test_backoff_is_configurable():
    limiter = default_rate_limiter(FakeClock(), base=1.0, max_delay=4.0)
    assert [limiter.when("k") for _ in range(4)] == [1.0, 2.0, 4.0, 4.0]


async def test_token_bucket_limits_overall_rate_after_burst():
    clock = FakeClock()
    bucket = BucketRateLimiter(qps=10, burst=100, clock=clock)
    assert all(bucket.when(i) == 0.0 for i in range(100))
    assert bucket.when("x") == pytest.approx(0.1)
    assert bucket.when("y") == pytest.approx(0.2)
    await clock.advance(10)
    assert bucket.when("z") == 0.0


async def test_add_rate_limited_waits_the_backoff_in_virtual_time():
    q, clock = make_queue()
    q.add_rate_limited("k")  # 5 ms
    assert len(q) == 0
    await clock.advance(0.004)
    assert len(q) == 0
    await clock.advance(0.002)
    assert len(q) == 1
    key = await q.get()
    q.done(key)
    for _ in range(3):
        q.add_rate_limited("k")
    # Failures 2..4 ask 10, 20, 40 ms; the earliest pending delay wins.
    assert q.num_requeues("k") == 4
    await clock.advance(0.011)
    assert len(q) == 1
    q.forget("k")
    assert q.num_requeues("k") == 0


async def test_add_after_hands_keys_out_in_ready_order():
    q, clock = make_queue()
    q.add_after("late", 3)
    q.add_after("early", 1)
    q.add_after("middle", 2)
    q.add_after("now", 0)
    assert await q.get() == "now"
    await clock.advance(0.5)
    assert len(q) == 0
    await clock.advance(1.0)
    assert len(q) == 1
    await clock.advance(5)
    assert [await q.get() for _ in range(3)] == ["early", "middle", "late"]


async def test_add_after_earliest_delay_wins():
    q, clock = make_queue()
    q.add_after("k", 10)
    q.add_after("k", 2)
    q.add_after("k", 5)
    await clock.advance(2.5)
    assert len(q) == 1
    assert await q.get() == "k"
    q.done("k")
    await clock.advance(20)
    assert len(q) == 0, "superseded delays must not add the key again"


async def test_shut_down_hands_out_queued_keys_then_raises():
    q, clock = make_queue()
    q.add("a")
    q.add_after("delayed", 1)
    waiter_q, _ = make_queue(clock)
    waiter = asyncio.create_task(waiter_q.get())
    await clock.settle()
    q.shut_down()
    waiter_q.shut_down()
    q.add("b")
    assert await q.get() == "a"
    with pytest.raises(ShutDown):
        await q.get()
    with pytest.raises(ShutDown):
        await waiter
    await clock.advance(2)
    assert len(q) == 0


async def test_shut_down_with_drain_waits_for_in_flight_keys():
    q, clock = make_queue()
    q.add("a")
    q.add("b")
    a = await q.get()
    drain = asyncio.create_task(q.shut_down_with_drain())
    await clock.settle()
    assert not drain.done()
    b = await q.get()
    q.done(a)
    await clock.settle()
    assert not drain.done(), "b is still in flight"
    q.done(b)
    await clock.settle()
    assert drain.done() and drain.result() is True


async def test_shut_down_with_drain_times_out_in_virtual_time():
    q, clock = make_queue()
    q.add("a")
    await q.get()
    drain = asyncio.create_task(q.shut_down_with_drain(timeout=5))
    await clock.advance(4)
    assert not drain.done()
    await clock.advance(2)
    assert drain.done() and drain.result() is False


async def test_run_workers_requeues_failures_with_backoff_and_forgets_success():
    q, clock = make_queue()
    attempts: list[tuple[str, float]] = []

    async def reconcile(key):
        attempts.append((key, clock.monotonic()))
        if len(attempts) < 4:
            raise RuntimeError("not yet")

    workers = asyncio.create_task(run_workers(q, reconcile, 2))
    q.add("k")
    await clock.advance(1)
    assert len(attempts) == 4
    gaps = [round(b[1] - a[1], 3) for a, b in zip(attempts, attempts[1:], strict=False)]
    assert gaps == [0.005, 0.01, 0.02]
    assert q.num_requeues("k") == 0
    q.shut_down()
    await workers


async def test_run_workers_requeue_after_returned_delay():
    q, clock = make_queue()
    seen: list[float] = []

    def reconcile(key):
        seen.append(clock.monotonic())
        return 30.0 if len(seen) < 3 else None

    workers = asyncio.create_task(run_workers(q, reconcile))
    q.add("k")
    await clock.advance(100)
    assert [round(t - seen[0]) for t in seen] == [0, 30, 60]
    q.shut_down()
    await workers


class RecordingMetrics:
    def __init__(self):
        self.calls: list[tuple] = []

    def depth(self, name, value):
        self.calls.append(("depth", value))

    def add(self, name):
        self.calls.append(("add",))

    def queue_latency(self, name, seconds):
        self.calls.append(("latency", seconds))

    def work_duration(self, name, seconds):
        self.calls.append(("work", seconds))

    def retry(self, name):
        self.calls.append(("retry",))


async def test_metrics_hooks_report_depth_latency_duration_and_retries():
    metrics = RecordingMetrics()
    q, clock = make_queue(metrics=metrics)
    q.add("a")
    q.add("a")
    await clock.advance(2)
    key = await q.get()
    await clock.advance(3)
    q.done(key)
    q.add_rate_limited("a")
    assert metrics.calls == [("add",), ("depth", 1), ("depth", 0), ("latency", 2.0), ("work", 3.0),
                             ("retry",)]


async def test_prometheus_metrics_use_client_go_names():
    import prometheus_client
    registry = prometheus_client.CollectorRegistry()
    metrics = PrometheusMetrics.shared(registry)
    assert PrometheusMetrics.shared(registry) is metrics
    q, clock = make_queue(metrics=metrics)
    q.add("a")
    q.add("b")
    q.done(await q.get())
    q.add_rate_limited("c")
    sample = registry.get_sample_value
    assert sample("workqueue_adds_total", {"name": "test"}) == 2
    assert sample("workqueue_depth", {"name": "test"}) == 1
    assert sample("workqueue_retries_total", {"name": "test"}) == 1
    assert sample("workqueue_queue_duration_seconds_count", {"name": "test"}) == 1
    assert sample("workqueue_work_duration_seconds_count", {"name": "test"}) == 1
