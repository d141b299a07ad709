"""Async SDK clients owned per event loop, and closed with their loop.

An async client's connections belong to the loop that opened them, so each running loop gets its
own client. Beside it runs a started async generator (the keeper) whose ``finally`` closes the
client: ``asyncio.run`` (and ``asyncio.Runner``) call ``loop.shutdown_asyncgens()`` before closing
the loop, which runs it while the loop can still close the sockets. A loop closed without that
(``loop.close()`` alone) leaves its client behind until the next ``get``: such clients are dropped
then, and their sockets closed by the garbage collector.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

C = TypeVar("C")
logger = logging.getLogger("rerank_layer")


@dataclass
class _Owned(Generic[C]):
    """One loop's client, how to close it, and the keeper that closes it when the loop shuts down."""

    loop: weakref.ref[asyncio.AbstractEventLoop]
    client: C
    close: Callable[[], Awaitable[None]]
    keeper: AsyncGenerator[None, None] | None = None
    abandoned: bool = field(default=False)

    def alive(self) -> bool:
        loop = self.loop()
        return loop is not None and not loop.is_closed()


class LoopClients(Generic[C]):
    """One client per running event loop, made by ``make``: the client and a coroutine function closing it."""

    def __init__(self, make: Callable[[], tuple[C, Callable[[], Awaitable[None]]]]) -> None:
        self._make = make
        self._lock = threading.RLock()  # a keeper finished by _sweep forgets itself under the same lock
        self._owned: dict[int, _Owned[C]] = {}

    def __len__(self) -> int:
        """Clients held now (one per loop that has used one and not shut down)."""
        with self._lock:
            return len(self._owned)

    async def get(self) -> C:
        """The running loop's client, made (and its keeper started) on first use there."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self._sweep()
            owned = self._owned.get(id(loop))
            if owned is not None and owned.loop() is loop:
                return owned.client
            client, close = self._make()
            owned = self._owned[id(loop)] = _Owned(weakref.ref(loop), client, close)
            owned.keeper = _keep(weakref.ref(self), id(loop), owned)
        await owned.keeper.__anext__()  # registers it with the loop: shutdown_asyncgens will close it
        return client

    def _sweep(self) -> None:
        """Drop the clients of loops that are gone or closed without shutting down their async generators."""
        for key, owned in list(self._owned.items()):
            if not owned.alive():
                del self._owned[key]
                owned.abandoned = True
                if owned.keeper is not None:
                    _finish(owned.keeper)

    def _forget(self, key: int, owned: _Owned[C]) -> None:
        with self._lock:
            if self._owned.get(key) is owned:
                del self._owned[key]


async def _keep(
    holder: weakref.ref[LoopClients[C]], key: int, owned: _Owned[C]
) -> AsyncGenerator[None, None]:
    """Wait at ``yield`` until the loop shuts down its async generators, then close the client."""
    try:
        yield
    finally:
        clients = holder()
        if clients is not None:
            clients._forget(key, owned)
        if not owned.abandoned:
            try:
                await owned.close()
            except Exception as exc:  # a broken connection must not disturb the loop's shutdown
                logger.debug("closing an async client failed: %s", exc)


def _finish(keeper: AsyncGenerator[None, None]) -> None:
    """Run an abandoned keeper's ``finally`` now (it awaits nothing then), so it is never finalised later."""
    closing = keeper.aclose()
    try:
        closing.send(None)
    except StopIteration:
        pass
    except Exception as exc:
        logger.debug("finishing an async client keeper failed: %s", exc)
    finally:
        closing.close()
