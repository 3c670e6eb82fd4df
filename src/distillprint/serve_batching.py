"""Micro-batching for ``distillprint serve``: many HTTP handler threads, one backend.

Handler threads hand requests to an asyncio loop running in its own thread. Workers on that
loop take the first waiting request, wait a few milliseconds for company, and send up to
``max_batch`` requests to one ``backend.generate`` call, so a local model answers concurrent
clients in batches instead of one by one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from distillprint.backends.base import Backend, generate_per_request
from distillprint.core_types import Generation, GenerationRequest
from distillprint.errors import BackendError

#: concurrent ``generate`` calls for backends that take one request at a time (API proxies,
#: answer logs); batching backends get one call at a time so a model is never oversubscribed.
UNBATCHED_CONCURRENCY = 16


@dataclass
class _Pending:
    request: GenerationRequest
    future: asyncio.Future[Generation]


class MicroBatcher:
    """Owns the backend from ``start`` to ``stop``, including closing it."""

    def __init__(
        self,
        backend: Backend,
        *,
        max_batch: int | None = None,
        window_s: float = 0.005,
        concurrency: int | None = None,
    ) -> None:
        self.backend = backend
        self.max_batch = max(1, min(max_batch or backend.max_batch_size, backend.max_batch_size))
        self.window_s = window_s
        default = 1 if self.max_batch > 1 else UNBATCHED_CONCURRENCY
        self.concurrency = concurrency or backend.max_concurrency or default
        #: size of every batch sent to the backend, in order.
        self.batch_sizes: list[int] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="distillprint-batcher", daemon=True
        )
        self._queue: asyncio.Queue[_Pending] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._stopped = False

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start_workers(), self._loop).result()

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """Blocking; safe from any thread. Raises whatever the backend raised."""
        return asyncio.run_coroutine_threadsafe(self._submit(requests), self._loop).result()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Release waiting clients and close the backend; also for a batcher never started
        (a server that could not bind its port), whose backend would otherwise stay open."""
        if self._stopped:
            return
        self._stopped = True
        if not self._thread.is_alive():
            self._loop.run_until_complete(self.backend.aclose())
            self._loop.close()
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout_s)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout_s)
        self._loop.close()

    async def _start_workers(self) -> None:
        self._queue = asyncio.Queue()
        self._workers = [asyncio.create_task(self._work()) for _ in range(self.concurrency)]

    async def _submit(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        assert self._queue is not None, "start() first"
        loop = asyncio.get_running_loop()
        pending = [_Pending(request, loop.create_future()) for request in requests]
        for item in pending:
            self._queue.put_nowait(item)
        return list(await asyncio.gather(*(item.future for item in pending)))

    async def _next_batch(self) -> list[_Pending]:
        assert self._queue is not None
        batch = [await self._queue.get()]
        # Sleep-then-drain rather than wait_for(queue.get()): on Python 3.11 a timed-out
        # wait_for can swallow an item that arrived at the same moment.
        if self.max_batch > 1 and self._queue.qsize() < self.max_batch - 1:
            await asyncio.sleep(self.window_s)
        while len(batch) < self.max_batch and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def _work(self) -> None:
        while True:
            batch = await self._next_batch()
            self.batch_sizes.append(len(batch))
            try:
                await self._run(batch)
            finally:  # on shutdown, release the clients still waiting on this batch
                for item in batch:
                    if not item.future.done():
                        item.future.cancel()

    async def _run(self, batch: list[_Pending]) -> None:
        try:
            results = await generate_per_request(self.backend, [item.request for item in batch])
            if len(results) != len(batch):
                raise BackendError(
                    f"backend returned {len(results)} generations for {len(batch)} requests"
                )
        except Exception as exc:  # every client in the batch gets the backend's error
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        for item, result in zip(batch, results, strict=True):
            if item.future.done():
                continue
            if isinstance(result, Exception):  # only this client's request failed
                item.future.set_exception(result)
            else:
                item.future.set_result(result)

    async def _shutdown(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        assert self._queue is not None
        while not self._queue.empty():
            self._queue.get_nowait().future.cancel()
        await self.backend.aclose()
