"""The fake clock: virtual time that moves only when a test says so."""

import asyncio

from client.clock import FakeClock, RealClock


async def test_sleepers_wake_in_time_order_only_when_advanced():
    clock = FakeClock(start=1000.0)
    woke = []

    async def sleeper(name, seconds):
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    tasks = [asyncio.create_task(sleeper(n, s)) for n, s in (("c", 3), ("a", 1), ("b", 2))]
    await clock.settle()
    assert clock.pending() == 3 and woke == []
    await clock.advance(1.5)
    assert woke == [("a", 1.0)]
    assert clock.now() == 1001.5 and clock.monotonic() == 1.5
    await clock.advance(10)
    assert woke == [("a", 1.0), ("b", 2.0), ("c", 3.0)]
    await asyncio.gather(*tasks)


async def test_timers_scheduled_during_an_advance_fire_within_it():
    clock = FakeClock()
    ticks = []

    async def ticker():
        while True:
            await clock.sleep(1)
            ticks.append(clock.monotonic())

    task = asyncio.create_task(ticker())
    await clock.advance(5)
    assert ticks == [1.0, 2.0, 3.0, 4.0, 5.0]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert clock.pending() == 0, "a cancelled sleeper leaves no timer behind"


async def test_step_and_run_until():
    clock = FakeClock()
    assert await clock.step() is False
    done = asyncio.create_task(clock.sleep(42))
    assert await clock.step() is True and done.done() and clock.monotonic() == 42
    flag = []

    async def later():
        await clock.sleep(100)
        flag.append(1)

    asyncio.create_task(later())
    assert await clock.run_until(lambda: bool(flag))
    assert clock.monotonic() == 142
    assert await clock.run_until(lambda: False, limit=10) is False


async def test_real_clock_moves():
    clock = RealClock()
    before = clock.monotonic()
    await clock.sleep(0.01)
    assert clock.monotonic() > before
    assert abs(clock.now() - __import__("time").time()) < 5
