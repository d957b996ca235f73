"""Dynamic micro-batching: concurrent requests are queued and run together in one forward pass.

The batcher task collects queued requests until ``max_batch`` records or ``max_wait_ms`` after
the first one, then runs the forward pass in a single worker thread (the event loop never
blocks); requests arriving meanwhile form the next batch. ``max_batch=1`` means one request
per forward pass (no batching). A request of more than ``max_batch`` records runs in chunks of
``max_batch``, and the chunks stop once every request waiting on them has timed out, so a
timed-out request frees the worker within one chunk.
"""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional

from .engine import Encoded


async def run_chunked(executor: ThreadPoolExecutor, run: Callable[[Encoded], list[Any]], enc: Encoded, size: int,
                      alive: Callable[[], bool]) -> list[Any]:
    """``run`` over ``enc`` in chunks of ``size`` records in ``executor``, stopping (with a short result) once ``alive()`` is false."""
    loop = asyncio.get_running_loop()
    if len(enc) <= size:
        return await loop.run_in_executor(executor, run, enc)
    out: list[Any] = []
    for start in range(0, len(enc), size):
        if not alive():
            break
        out += await loop.run_in_executor(executor, run, enc.slice(start, start + size))
    return out


class MicroBatcher:
    def __init__(self, run: Callable[[Encoded], list[Any]], max_batch: int = 64, max_wait_ms: float = 5.0,
                 executor: Optional[ThreadPoolExecutor] = None, on_batch: Optional[Callable[[int, int], None]] = None) -> None:
        self.run = run
        self.max_batch = max(1, int(max_batch))
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self.executor = executor or ThreadPoolExecutor(1, thread_name_prefix="modalfuse-infer")
        self.on_batch = on_batch
        self.queue: Optional[asyncio.Queue] = None
        self.task: Optional[asyncio.Task] = None

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        self.task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):
                pass

    async def submit(self, enc: Encoded) -> list[Any]:
        if self.queue is None:
            await self.start()
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((enc, future))
        return await future

    async def _loop(self) -> None:
        pending = None
        while True:
            first = pending or await self.queue.get()
            pending = None
            items, rows = [first], len(first[0])
            deadline = time.monotonic() + self.max_wait
            while rows < self.max_batch:
                try:
                    item = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    timeout = deadline - time.monotonic()
                    if timeout <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self.queue.get(), timeout)
                    except asyncio.TimeoutError:
                        break
                if rows + len(item[0]) > self.max_batch:
                    pending = item
                    break
                items.append(item)
                rows += len(item[0])
            live = [(enc, fut) for enc, fut in items if not fut.done()]  # timed-out requests are dropped
            if not live:
                continue
            merged = Encoded.concat([enc for enc, _ in live]) if len(live) > 1 else live[0][0]
            try:
                results = await run_chunked(self.executor, self.run, merged, self.max_batch,
                                            lambda: any(not fut.done() for _, fut in live))
            except Exception as err:  # handed to each waiting request
                for _, fut in live:
                    if not fut.done():
                        fut.set_exception(err)
                continue
            if self.on_batch:
                self.on_batch(len(merged), len(live))
            start = 0
            for enc, fut in live:
                n = len(enc)
                if not fut.done():
                    fut.set_result(results[start:start + n])
                start += n
