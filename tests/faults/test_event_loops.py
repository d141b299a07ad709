"""Group 3: fresh event loops leave no SDK client, socket or descriptor behind.

Each provider runs in a child process whose descriptor limit is 256: 500 ``asyncio.run`` calls, then
50 loops closed without shutting down their async generators. Before the fix every loop kept its
client and sockets (+1 to +4 descriptors a loop), and calls failed once the limit was reached.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fake_api import FakeApiServer

ROOT = Path(__file__).resolve().parents[2]
LOOPS = 500
PROVIDERS = ("cohere", "zero_entropy", "llm_reranker")


@pytest.mark.timeout(240)
def test_fresh_event_loops_leave_no_descriptors_behind(server: FakeApiServer) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "tests.support.loop_soak"]
    children = {
        provider: subprocess.Popen(
            [*command, provider, _base_url(provider, server), str(LOOPS)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for provider in PROVIDERS
    }
    for provider, child in children.items():
        stdout, stderr = child.communicate(timeout=220)
        assert child.returncode == 0, f"{provider}: {stderr[-2000:]}"
        figures = json.loads(stdout.strip().splitlines()[-1])
        assert figures["failed"] == 0, f"{provider}: {figures['failures']}"
        assert figures["after_asyncio_run"] - figures["start"] <= 20, f"{provider}: {figures}"
        assert figures["end"] - figures["start"] <= 20, f"{provider}: {figures}"
        assert figures["clients_held"] <= 1, f"{provider}: {figures}"
        assert "Task exception was never retrieved" not in stderr, f"{provider}: {stderr[-2000:]}"
        assert "Event loop is closed" not in stderr, f"{provider}: {stderr[-2000:]}"


def _base_url(provider: str, server: FakeApiServer) -> str:
    return server.url + ("/v1" if provider == "llm_reranker" else "")
