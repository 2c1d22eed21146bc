"""The loop's queue of quick reads (api.read_queue): reads run in order, in their request's
context, a slice per turn of the loop, so that a request arriving behind many reads (a
write) runs its first step after one slice, not after all of them."""

from __future__ import annotations

import asyncio
import contextvars
import time

import pytest

from tessera.api import read_queue
from tessera.collection.no_wait import WouldWait

REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="-")


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_a_request_behind_many_reads_runs_after_one_slice() -> None:
    ran: list[str] = []

    def read(n: int) -> int:
        _busy(2 * read_queue.SLICE_S)  # one read fills a slice
        ran.append(f"read {n}")
        return n

    async def write() -> None:
        ran.append("write")

    async def main() -> list[int]:
        queue = read_queue.for_loop()
        reads = [queue.submit(lambda n=n: read(n)) for n in range(10)]
        # The write arrives after every read has joined the queue, as on a busy server.
        writing = asyncio.get_running_loop().create_task(write())
        results = await asyncio.gather(*reads)
        await writing
        return results

    assert asyncio.run(main()) == list(range(10))
    assert ran.index("write") <= 2, ran
    assert [r for r in ran if r != "write"] == [f"read {n}" for n in range(10)]


def test_without_the_queue_the_same_write_waits_for_every_read() -> None:
    """What the queue is for: the reads run in their handlers' turns, the write's comes last."""
    ran: list[str] = []

    async def handler(n: int) -> None:
        _busy(2 * read_queue.SLICE_S)
        ran.append(f"read {n}")

    async def write() -> None:
        ran.append("write")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(handler(n)) for n in range(10)]
        tasks.append(loop.create_task(write()))
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert ran.index("write") == 10


def test_reads_run_in_their_own_context_and_raise_their_own_errors() -> None:
    def whose() -> str:
        return REQUEST.get()

    def fails() -> None:
        raise ValueError("bad read")

    def blocked() -> None:
        raise WouldWait()

    async def request(name: str) -> str:
        REQUEST.set(name)
        return await read_queue.for_loop().submit(whose)

    async def main() -> list[str]:
        names = await asyncio.gather(*(request(f"r{n}") for n in range(5)))
        with pytest.raises(ValueError, match="bad read"):
            await read_queue.for_loop().submit(fails)
        with pytest.raises(WouldWait):
            await read_queue.for_loop().submit(blocked)
        assert REQUEST.get() == "-"  # a read's context is a copy: nothing leaks back
        return names

    assert asyncio.run(main()) == [f"r{n}" for n in range(5)]


def test_a_read_whose_request_went_away_is_not_run() -> None:
    ran: list[int] = []

    async def main() -> None:
        queue = read_queue.for_loop()
        first = queue.submit(lambda: ran.append(1))
        gone = queue.submit(lambda: ran.append(2))
        last = queue.submit(lambda: ran.append(3))
        gone.cancel()
        await first
        await last

    asyncio.run(main())
    assert ran == [1, 3]


def test_each_loop_has_its_own_queue() -> None:
    async def which() -> read_queue.ReadQueue:
        queue = read_queue.for_loop()
        assert await queue.submit(lambda: 7) == 7
        return queue

    assert asyncio.run(which()) is not asyncio.run(which())
