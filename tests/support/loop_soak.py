"""Child process of the event-loop soak: many fresh event loops under a low descriptor limit.

``python -m tests.support.loop_soak PROVIDER BASE_URL LOOPS`` lowers ``RLIMIT_NOFILE`` to 256, runs
``asyncio.run(reranker.arerank(...))`` LOOPS times, then LOOPS // 10 more loops closed with
``loop.close()`` alone (no async-generator shutdown), and prints one JSON line: open descriptors at
the start, after the ``asyncio.run`` loops and at the end, the failures, and the clients still held.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import sys

from core.providers.hosted.base import ApiReranker
from core.registry import create_reranker
from tests.support.fake_api import DOCS, QUERY

LIMIT = 256


def open_descriptors() -> int:
    """Descriptors this process holds now."""
    return len(os.listdir("/proc/self/fd"))


def main(provider: str, base_url: str, loops: int) -> dict[str, object]:
    """Run the soak; return its figures."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(LIMIT, hard), hard))
    config = {"api_key": "k", "base_url": base_url, "timeout": 10.0, "deadline": 20.0}
    config.update(max_retries=0, on_error="raise")
    if provider == "llm_reranker":
        config["cache_size"] = 0  # every call sends its requests
    reranker = create_reranker({"provider": provider, "config": config})
    assert isinstance(reranker, ApiReranker)
    reranker.warmup()
    start = open_descriptors()
    failures: list[str] = []
    for _ in range(loops):
        try:
            asyncio.run(reranker.arerank(QUERY, DOCS[:1]))
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
    after_run = open_descriptors()
    for _ in range(loops // 10):
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(reranker.arerank(QUERY, DOCS[:1]))
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
        finally:
            loop.close()
    gc.collect()
    return {
        "start": start,
        "after_asyncio_run": after_run,
        "end": open_descriptors(),
        "failures": failures[:3],
        "failed": len(failures),
        "clients_held": len(reranker._async_clients),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
